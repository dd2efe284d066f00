"""SSIM, MS_SSIM and VIF: analytic cases and agreement with scikit-image and MONAI."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.metrics import (
    ms_ssim,
    multiscale_structural_similarity,
    ssim,
    structural_similarity,
    vif,
    visual_information_fidelity,
)


def test_ssim_is_scikit_image_with_data_range_255(images):
    skm = pytest.importorskip("skimage.metrics")
    a, b = images
    f = (a + b) / 2
    expected = skm.structural_similarity(a, f, data_range=255) + skm.structural_similarity(b, f, data_range=255)
    assert structural_similarity(a, b, f) == pytest.approx(expected, abs=1e-12)
    # a mask covering everything gives scikit-image's own border-free mean
    assert ssim(a, f, np.ones(a.shape, bool)) == pytest.approx(skm.structural_similarity(a, f, data_range=255))


def test_ssim_analytic_cases(images, noise):
    a, _ = images
    assert structural_similarity(a, a, a) == pytest.approx(2.0)
    x = noise[0]
    assert structural_similarity(x, x, 255 - x) < -1.5  # a textured image and its negative
    assert abs(structural_similarity(*noise)) < 0.05


def test_ms_ssim_matches_monai(images):
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    a, b = images
    a, b = np.pad(a, 8), np.pad(b, 8)  # 208 px: MS-SSIM needs >= 176
    metric = monai_metrics.MultiScaleSSIMMetric(spatial_dims=2, data_range=255.0, kernel_size=11, kernel_sigma=1.5)
    for x, y in ((a, (a + b) / 2), (b, np.maximum(a, b))):
        ref = metric(torch.tensor(y)[None, None].double(), torch.tensor(x)[None, None].double()).item()
        assert ms_ssim(x, y) == pytest.approx(ref, rel=1e-5)


def test_ms_ssim_analytic_cases(images):
    a, _ = images
    a = np.pad(a, 8)
    assert multiscale_structural_similarity(a, a, a) == pytest.approx(2.0)
    # anti-correlated structure: negative contrast terms are clipped, so the score is 0, not NaN
    assert multiscale_structural_similarity(a, a, 255 - a) == 0.0


def test_ms_ssim_too_small_gives_nan_with_a_warning(caplog):
    x = np.zeros((100, 100))
    assert np.isnan(ms_ssim(x, x))
    assert "176" in caplog.text


def test_vif_analytic_cases(images, noise):
    a, b = images
    assert vif(a, a) == pytest.approx(1.0)
    assert visual_information_fidelity(a, a, a) == pytest.approx(2.0)
    assert vif(noise[0], noise[1]) < 0.02  # independent noise carries no information
    flat = np.full((64, 64), 7.0)
    assert vif(flat, flat) == 0.0  # no reference variance: 0/0 reported as 0
    # a contrast stretch around the mean can exceed 1 (VIF rewards enhancement)
    assert vif(a, np.clip(2 * (a - a.mean()) + a.mean(), -1e9, 1e9)) > 1.0


def test_vif_borders_option(images):
    a, b = images
    f = (a + b) / 2
    valid = visual_information_fidelity(a, b, f)
    reflect = visual_information_fidelity(a, b, f, borders="reflect")
    assert valid != reflect and abs(valid - reflect) / reflect < 0.1
    with pytest.raises(ValueError, match="borders"):
        vif(a, f, borders="same")
    with pytest.raises(ValueError, match="41"):
        vif(a[:40, :40], f[:40, :40])


def test_full_masks_change_nothing(images):
    a, b = images
    f = np.maximum(a, b)
    full = np.ones(a.shape, bool)
    assert vif(a, f, full) == pytest.approx(vif(a, f))
    assert vif(a, f, full, borders="reflect") == pytest.approx(vif(a, f, borders="reflect"))
    pa, pf, pfull = np.pad(a, 8), np.pad(f, 8), np.ones((208, 208), bool)
    assert ms_ssim(pa, pf, pfull) == pytest.approx(ms_ssim(pa, pf))
