"""Agreement with ../shared/calibration/metrics_calibration.csv (six Harvard pairs, mean and max fusion)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from medfuse.metrics import METRICS, visual_information_fidelity

pytestmark = pytest.mark.harvard

CALIBRATION = Path(__file__).resolve().parents[2].parent / "shared" / "calibration" / "metrics_calibration.csv"
OTHER = {"ct_mri": "ct.png", "pet_mri": "pet.png", "spect_mri": "spect.png"}
COLUMNS = ["EN", "SD", "SF", "AG", "EI", "MI", "Qabf", "SSIM", "VIF", "SCD"]


def _rows():
    if not CALIBRATION.is_file():
        return []
    with CALIBRATION.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _case(harvard_dir, row):
    from medfuse.io import load_volume

    pair = harvard_dir / row["task"] / row["pair"]
    a = load_volume(pair / "mri.png").array.astype(np.float64)
    b = load_volume(pair / OTHER[row["task"]]).array.astype(np.float64)  # colour: Pillow's Y
    f = (a + b) / 2 if row["fusion"] == "mean" else np.maximum(a, b)
    return a, b, f


@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"{r['task']}-{r['pair']}-{r['fusion']}")
def test_calibration_values(harvard_dir, row):
    a, b, f = _case(harvard_dir, row)
    for key in COLUMNS:
        expected = float(row[key])
        if key == "VIF":
            # the CSV used scipy Gaussian filtering ('reflect', same-size maps): reproduced exactly
            assert visual_information_fidelity(a, b, f, borders="reflect") == pytest.approx(expected, rel=1e-5)
            # the default is Sheikh & Bovik's 'valid' reference code: a documented difference of a few %
            assert METRICS[key](a, b, f) == pytest.approx(expected, rel=0.06)
        else:
            assert METRICS[key](a, b, f) == pytest.approx(expected, rel=1e-5), key


def test_calibration_file_present_when_data_is(harvard_dir):
    assert len(_rows()) == 12
