"""Head masks per modality agree with the phantom's head (labels > 0) on every contrast."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.intensity import head_mask, otsu_threshold
from medfuse.registration import resample_to_reference


@pytest.fixture(scope="module")
def phantom_scans():
    from medfuse.phantom import make_case

    scans = {}
    for modality, spacing in (("ct", (3.0, 3.0, 4.0)), ("pet", 4.0), ("spect", 5.0)):
        case = make_case(modality, seed=4, rotation_deg=0, translation_mm=0, mri_spacing=3.0,
                         moving_spacing=spacing)
        scans["mri"] = (case.mri, case.labels)
        scans[modality] = (case.moving, case.labels)
    return scans


@pytest.mark.parametrize("name", ["mri", "ct", "pet", "spect"])
def test_head_mask_matches_phantom_head(phantom_scans, name):
    volume, labels = phantom_scans[name]
    head = (resample_to_reference(labels, volume, interpolation="nearest", default_value=0).array > 0)
    mask = head_mask(volume)
    dice = 2 * np.count_nonzero(mask & head) / (mask.sum() + head.sum())
    assert dice > 0.93, f"{name}: head mask Dice {dice:.3f}"


def test_otsu_threshold_separates_two_classes():
    values = np.r_[np.full(500, 10.0), np.full(300, 100.0)]
    assert 10.0 < otsu_threshold(values) < 100.0
