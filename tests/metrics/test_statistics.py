"""SD, MSE, RMSE, PSNR, SCD: hand computations and scikit-image agreement."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.metrics import (
    mean_squared_error,
    peak_signal_to_noise_ratio,
    root_mean_squared_error,
    standard_deviation,
    sum_of_correlations_of_differences,
)


def test_standard_deviation_is_population_std(images):
    a, _ = images
    assert standard_deviation(a) == pytest.approx(np.std(a))
    assert standard_deviation(np.full((8, 8), 3.0)) == 0.0


def test_errors_average_the_two_sources(images):
    a, b = images
    f = (a + b) / 2
    e_a, e_b = np.mean((a - f) ** 2), np.mean((b - f) ** 2)
    assert mean_squared_error(a, b, f) == pytest.approx((e_a + e_b) / 2)
    assert root_mean_squared_error(a, b, f) == pytest.approx((np.sqrt(e_a) + np.sqrt(e_b)) / 2)
    assert peak_signal_to_noise_ratio(a, b, f) == pytest.approx(10 * np.log10(255**2 / ((e_a + e_b) / 2)))


def test_agreement_with_skimage(images):
    skm = pytest.importorskip("skimage.metrics")
    a, b = images
    f = np.maximum(a, b)
    assert mean_squared_error(a, b, f) == pytest.approx(
        (skm.mean_squared_error(a, f) + skm.mean_squared_error(b, f)) / 2
    )
    # with A == B the fusion PSNR is the ordinary PSNR of F against A
    assert peak_signal_to_noise_ratio(a, a, f) == pytest.approx(skm.peak_signal_noise_ratio(a, f, data_range=255))


def test_identical_images():
    x = np.random.default_rng(0).uniform(0, 255, (32, 32))
    assert mean_squared_error(x, x, x) == 0.0
    assert root_mean_squared_error(x, x, x) == 0.0
    assert peak_signal_to_noise_ratio(x, x, x) == float("inf")
    # F - B = 0 has no variance: both correlations count as 0
    assert sum_of_correlations_of_differences(x, x, x) == 0.0


def test_scd_extremes(images, noise):
    a, b = images
    # F = A + B: F - B = A and F - A = B, both correlations are 1
    assert sum_of_correlations_of_differences(a, b, a + b) == pytest.approx(2.0)
    assert sum_of_correlations_of_differences(a, a, 255 - a) == pytest.approx(-2.0)
    assert abs(sum_of_correlations_of_differences(*noise)) < 0.05
    assert -2.0 <= sum_of_correlations_of_differences(a, b, np.maximum(a, b)) <= 2.0


def test_masked_statistics_equal_the_cropped_image(images):
    a, b = images
    f = (a + b) / 2
    mask = np.zeros(a.shape, bool)
    mask[50:150, 20:90] = True
    crop = (slice(50, 150), slice(20, 90))
    assert standard_deviation(f, mask) == pytest.approx(standard_deviation(f[crop]))
    for fn in (mean_squared_error, root_mean_squared_error, peak_signal_to_noise_ratio,
               sum_of_correlations_of_differences):
        assert fn(a, b, f, mask) == pytest.approx(fn(a[crop], b[crop], f[crop]))


def test_mismatched_shapes_raise_instead_of_broadcasting(images):
    from medfuse.errors import SpaceMismatchError

    a, b = images
    with pytest.raises(SpaceMismatchError, match="register/resample"):
        mean_squared_error(a, b, a[:1])  # (1, W) would broadcast silently
