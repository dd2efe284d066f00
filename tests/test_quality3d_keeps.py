"""benchmarks/quality3d.py's "keeps both scans" figure (issue 24, item 5) on volumes made here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from quality3d import keeps_both  # noqa: E402


def _volumes():
    rng = np.random.default_rng(0)
    shape = (32, 32, 8)
    mask = np.zeros(shape, bool)
    mask[4:28, 4:28] = True
    a = np.where(mask, 0.4 + 0.05 * rng.standard_normal(shape), 0.0)
    a[6:10, 6:10] = 0.9  # the MRI's bright spot
    b = np.where(mask, 0.2 + 0.05 * rng.standard_normal(shape), 0.0)
    b[20:26, 18:26] = 1.0  # the PET's hot region
    return a, b, mask


def test_a_source_keeps_itself_and_the_other_loses_its_region():
    a, b, mask = _volumes()
    k = keeps_both(a, b, a, mask)
    assert abs(k["keepA"] - 1.0) < 1e-9 and abs(k["keepB"]) < 0.1
    k = keeps_both(a, b, np.maximum(a, b), mask)
    # max keeps the MRI's spot, and the hot region's contrast only in part: the MRI's brighter
    # background raises the rest of the head (0.73 here: 1.0 - 0.42 against the PET's 1.0 - 0.22)
    assert k["keepA"] > 0.8 and 0.6 < k["keepB"] < 0.85
    k = keeps_both(a, b, 0.5 * (a + b), mask)
    assert 0.4 < k["keepA"] < 0.7 and 0.4 < k["keepB"] < 0.7


def test_colour_volume_is_read_by_a_linear_fit():
    a, b, mask = _volumes()
    rgb = np.stack([b, 0.5 * a, 0.2 * a + 0.3 * b], axis=-1)  # both recoverable linearly
    k = keeps_both(a, b, rgb, mask)
    assert abs(k["keepA"] - 1.0) < 1e-6 and abs(k["keepB"] - 1.0) < 1e-6
    k = keeps_both(a, b, np.stack([b, b, b], axis=-1), mask)  # the colour scan alone
    assert k["keepB"] > 0.99 and k["keepA"] < 0.3
