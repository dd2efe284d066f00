"""The metric registry, compute_metrics on 2D images and the per-slice 3D path."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.errors import SpaceMismatchError
from medfuse.metrics import (
    FUSED_METRICS,
    METRICS,
    SOURCE_METRICS,
    compute_metrics,
    compute_volume_metrics,
    resolve_metric_names,
)

ISSUE_KEYS = ["MI", "NMI", "FMI", "QNCIE", "Qabf", "SSIM", "MS_SSIM", "MSE", "RMSE", "PSNR", "VIF", "SCD", "CE",
              "EN", "SD", "SF", "AG", "EI"]


def test_registry_has_every_key_with_metadata():
    assert list(METRICS) == ISSUE_KEYS
    assert set(SOURCE_METRICS) | set(FUSED_METRICS) == set(ISSUE_KEYS)
    assert set(FUSED_METRICS) == {"EN", "SD", "SF", "AG", "EI"}
    lower = {k for k, m in METRICS.items() if not m.higher_is_better}
    assert lower == {"MSE", "RMSE", "CE"}
    for key, info in METRICS.items():
        assert info.key == key and info.description and info.function.__doc__
        assert info.value_range[0] < info.value_range[1]
        assert info.direction in ("higher", "lower")


def test_resolve_metric_names():
    assert resolve_metric_names(None) == ISSUE_KEYS
    assert resolve_metric_names("all") == ISSUE_KEYS
    assert resolve_metric_names("en, qabf,ms-ssim,EN") == ["EN", "Qabf", "MS_SSIM"]
    with pytest.raises(ValueError, match="did you mean 'QNCIE'"):
        resolve_metric_names(["QNCI"])


def test_compute_metrics_2d_all_keys_in_range(images):
    a, b = images
    a, b = np.pad(a, 8), np.pad(b, 8)  # 208 px so that MS_SSIM has its 5 scales
    scores = compute_metrics((a, b), (a + b) / 2)
    assert list(scores) == ISSUE_KEYS
    for key, value in scores.items():
        lo, hi = METRICS[key].value_range
        assert np.isfinite(value) and lo <= value <= hi, key


def test_full_mask_equals_no_mask(images):
    a, b = images
    a, b = np.pad(a, 8), np.pad(b, 8)
    f = np.maximum(a, b)
    assert compute_metrics((a, b), f, mask=np.ones(a.shape, bool)) == pytest.approx(compute_metrics((a, b), f))


def test_shape_mismatch_says_what_to_do(images):
    a, b = images
    with pytest.raises(SpaceMismatchError, match="register/resample"):
        compute_metrics((a, b[:100]), a)


def test_unit_range_input_is_warned_about(images, caplog):
    a, b = images
    compute_metrics((a / 255, b / 255), (a + b) / 510, ["EN"])
    assert "0..255" in caplog.text


def _volume(seed: int) -> np.ndarray:
    """A 64x64x8 'head': a textured ellipsoid on a zero background, arbitrary units."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in (64, 64, 8)), indexing="ij")
    head = (x / 0.8) ** 2 + (y / 0.7) ** 2 + (z / 1.6) ** 2 < 1
    from scipy import ndimage

    tex = ndimage.gaussian_filter(rng.normal(size=head.shape), (2, 2, 0))
    return np.where(head, 1000 + 400 * tex + 300 * x, 0.0)


SUBSET = ["MI", "NMI", "QNCIE", "Qabf", "SSIM", "MSE", "PSNR", "VIF", "SCD", "CE", "EN", "SD", "SF", "AG", "EI"]


def test_volume_metrics_are_the_mean_of_masked_slices():
    a, b = _volume(1), _volume(2) * 0.01  # different units: each volume is scaled on its own
    f = (a / a.max() + b / b.max()) / 2
    mask = a > 0
    mask[..., 0] = False  # one slice without head: skipped
    got = compute_volume_metrics((a, b), f, SUBSET, mask)
    from medfuse.metrics import scale_to_255

    sa, sb, sf = (scale_to_255(v, mask) for v in (a, b, f))
    per_slice = [compute_metrics((sa[..., k], sb[..., k]), sf[..., k], SUBSET, mask[..., k]) for k in range(1, 8)]
    for key in SUBSET:
        assert got[key] == pytest.approx(np.mean([s[key] for s in per_slice])), key
    # compute_metrics dispatches 3D inputs to the same path
    assert compute_metrics((a, b), f, SUBSET, mask) == pytest.approx(got)


def test_volume_metrics_ignore_units_and_use_a_default_head_mask():
    a, b = _volume(3), _volume(4)
    f = np.maximum(a, b)
    got = compute_volume_metrics((a, b), f, ["MI", "SSIM", "EN"])
    scaled = compute_volume_metrics((a * 7.0, b * 0.5), f * 3.0, ["MI", "SSIM", "EN"])
    assert scaled == pytest.approx(got)
    assert all(np.isfinite(v) for v in got.values())


def test_volume_without_enough_mask_raises():
    a = _volume(1)
    mask = np.zeros(a.shape, bool)
    mask[30:33, 30:33, :] = True
    with pytest.raises(ValueError, match="head mask"):
        compute_volume_metrics((a, a), a, ["EN"], mask)


def test_volume_with_small_slices_gives_nan_ms_ssim(caplog):
    """MS_SSIM needs 176 px per side: one warning for the volume, not one per slice."""
    a = _volume(1)
    out = compute_volume_metrics((a, a), a, ["MS_SSIM", "EN"], a > 0)
    assert np.isnan(out["MS_SSIM"]) and np.isfinite(out["EN"])
    assert caplog.text.count("MS_SSIM needs") == 1
