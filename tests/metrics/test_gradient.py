"""SF, AG, EI and Qabf: definitions by hand, analytic cases."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.metrics import average_gradient, edge_intensity, edge_preservation, spatial_frequency


def _q_max() -> float:
    """Qabf of a perfect copy: both sigmoids at G = 1, A = 1 with the standard constants."""
    return 0.9994 / (1 + np.exp(-15 * (1 - 0.5))) * 0.9879 / (1 + np.exp(-22 * (1 - 0.8)))


def test_fused_only_metrics_vanish_on_a_constant_image():
    c = np.full((40, 50), 100.0)
    assert spatial_frequency(c) == average_gradient(c) == edge_intensity(c) == 0.0


def test_spatial_frequency_and_average_gradient_on_a_ramp():
    ramp = np.tile(np.arange(0.0, 64.0, 2.0), (20, 1))  # +2 per column, constant down the rows
    assert spatial_frequency(ramp) == pytest.approx(2.0)  # RF = 2, CF = 0
    assert average_gradient(ramp) == pytest.approx(np.sqrt(4.0 / 2.0))


def test_edge_intensity_of_a_ramp_is_the_sobel_gain():
    ramp = np.tile(np.arange(0.0, 64.0, 2.0), (20, 1))
    inner = np.zeros(ramp.shape, bool)
    inner[:, 1:-1] = True  # away from the reflected borders
    # Sobel: [1, 2, 1] smoothing (sum 4) times the central difference (2 x slope 2) = 16
    assert edge_intensity(ramp, inner) == pytest.approx(16.0)


def test_qabf_perfect_copy_and_bounds(images):
    a, b = images
    assert edge_preservation(a, a, a) == pytest.approx(_q_max())
    for f in ((a + b) / 2, np.maximum(a, b)):
        assert 0.0 <= edge_preservation(a, b, f) < _q_max()
    # max fusion keeps the stronger edges, mean fusion halves them
    assert edge_preservation(a, b, np.maximum(a, b)) > edge_preservation(a, b, (a + b) / 2)


def test_qabf_flat_fused_image_preserves_nothing(images):
    a, b = images
    assert edge_preservation(a, b, np.full_like(a, 128.0)) < 1e-3
    flat = np.full((32, 32), 5.0)
    assert edge_preservation(flat, flat, flat) == 0.0  # no source gradient: 0 by convention


def test_qabf_cannot_see_a_negative(images):
    """Gradient strength and arctan(gy/gx) ignore a sign flip: the negative scores like a copy
    (up to the pixels with gx = 0, where the orientation +-pi/2 follows the sign of gy)."""
    a, _ = images
    assert edge_preservation(a, a, 255 - a) == pytest.approx(edge_preservation(a, a, a), rel=0.01)


def test_qabf_orientation_convention():
    from medfuse.metrics.gradient import _strength_orientation

    x = np.zeros((9, 9))
    x[4:, :] = 10.0  # horizontal edge: gx = 0, gy > 0 on it
    g, alpha = _strength_orientation(x)
    assert alpha[4, 4] == pytest.approx(np.pi / 2)
    assert alpha[0, 0] == 0.0 and g[0, 0] == 0.0  # no gradient: orientation 0
    assert _strength_orientation(-x)[1][4, 4] == pytest.approx(-np.pi / 2)


def test_mask_restricts_to_pairs_inside(images):
    a, b = images
    f = (a + b) / 2
    mask = np.zeros(a.shape, bool)
    mask[:, :100] = True
    assert spatial_frequency(f, mask) == pytest.approx(spatial_frequency(f[:, :100]))
    assert average_gradient(f, mask) == pytest.approx(average_gradient(f[:, :100]))
    full = np.ones(a.shape, bool)
    assert edge_preservation(a, b, f, full) == pytest.approx(edge_preservation(a, b, f))
