"""The functional scan's hottest regions stay bright in a network's fused image (medfuse.hotspots)."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.hotspots import HOT_QUANTILES, keep_hot_regions


def _hot_keep(b: np.ndarray, f: np.ndarray) -> float:
    """Fused / source luminance over the source's hottest 1% (benchmarks/hotspots.py's measure)."""
    hot = b >= np.quantile(b[b > 0.05 * b.max()], 0.99)
    return float(f[hot].mean() / b[hot].mean())


def test_floor_by_hand():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.1, 0.5, (64, 64)).astype(np.float32)
    b[30:34, 30:34] = 0.9  # a hot focus, 0.4% of the image
    f = np.full_like(b, 0.3)
    out = keep_hot_regions(f.copy(), b)
    lo, hi = np.quantile(b[b > 0.05 * b.max()], HOT_QUANTILES)
    cold = b <= lo
    assert np.array_equal(out[cold], f[cold])  # below the ramp nothing changes
    assert np.allclose(out[30:34, 30:34], 0.9)  # above it the fused value reaches the source's
    assert np.all(out >= f) and np.all(out <= np.maximum(f, b) + 1e-7)  # never lower, never past the sources
    # a fused value already brighter than the source is left alone
    bright = np.full_like(b, 0.95)
    assert np.array_equal(keep_hot_regions(bright.copy(), b), bright)
    # continuous in b: a small change of b moves the result little (no edge at the ramp's ends)
    out2 = keep_hot_regions(f.copy(), b + 1e-4)
    assert float(np.abs(out2 - out).max()) < 0.01


def test_empty_or_flat_functional_scan_changes_nothing():
    f = np.full((8, 8), 0.4, np.float32)
    assert np.array_equal(keep_hot_regions(f.copy(), np.zeros_like(f)), f)
    assert np.array_equal(keep_hot_regions(f.copy(), np.full_like(f, 0.2)), f)


def test_a_spect_focus_on_grey_matter_stays_bright(harvard_dir):
    """A real SPECT-MRI pair we did not make (AANLIB, second collection): its hottest focus lies on dark grey
    matter; the shipped SPECT-MRI network without the floor turned it grey (fused luminance 0.52 of the SPECT's
    over its hottest 1%), with the floor it keeps 0.95 and changes 1.6% of the pixels."""
    pytest.importorskip("torch")
    from PIL import Image

    from medfuse.color import split_luminance
    from medfuse.inference import fuse_slices, load_model, shipped_weights_path

    case = harvard_dir / "spect_mri" / "cdd-spect-30"
    mri = np.asarray(Image.open(case / "mri.png").convert("L"), np.float32) / 255
    spect_y = split_luminance(np.asarray(Image.open(case / "spect.png").convert("RGB"), np.float32))[0] / 255
    model, _ = load_model(shipped_weights_path("light", "spect_mri"))
    plain = fuse_slices(model, mri, spect_y.astype(np.float32), pair="spect_mri", keep_hot=False)
    kept = fuse_slices(model, mri, spect_y.astype(np.float32), pair="spect_mri")
    assert _hot_keep(spect_y, plain) < 0.8  # the defect this guards against
    assert _hot_keep(spect_y, kept) > 0.95
    cold = spect_y <= np.quantile(spect_y[spect_y > 0.05 * spect_y.max()], HOT_QUANTILES[0])
    assert np.array_equal(kept[cold], plain[cold])  # only the hot regions change
    assert float(np.mean(kept != plain)) < 0.1
