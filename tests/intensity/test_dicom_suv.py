"""The DICOM reader's ``meta["pet"]`` feeds SUV; one frame of reference means no registration."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.intensity import normalize, to_suv
from medfuse.io import load_volume
from medfuse.registration import register
from tests.io.dicom_fixtures import pet_tags_default, write_series

AFFINE = np.array([[-2.0, 0, 0, 60.0], [0, -2.0, 0, 60.0], [0, 0, 3.0, -20.0], [0, 0, 0, 1.0]])


def test_suv_oracle_through_a_dicom_series(tmp_path):
    stored = np.full((8, 8, 5), 500, np.int32)
    stored[2:6, 2:6, 1:4] = 1500
    write_series(tmp_path / "pet", stored, AFFINE, modality="PT", slopes=10.0)  # 500 -> 5000 Bq/mL
    pet = load_volume(tmp_path / "pet")
    assert pet.modality == "PT"
    suv = to_suv(pet)
    assert float(suv.array[0, 0, 0]) == pytest.approx(1.38168, abs=1e-4)
    assert normalize(pet).meta["normalization"]["method"] == "suv"


def test_deidentified_pet_without_weight_is_normalized_by_percentiles(tmp_path, caplog):
    stored = np.full((8, 8, 5), 500, np.int32)
    stored[2:6, 2:6, 1:4] = 1500
    write_series(tmp_path / "pet", stored, AFFINE, modality="PT", pet_tags=pet_tags_default(weight_kg=None))
    out = normalize(load_volume(tmp_path / "pet"))
    assert out.meta["normalization"]["method"] == "percentile"
    assert "patient weight" in caplog.text


def test_hybrid_series_sharing_a_frame_of_reference_skip_registration(tmp_path, caplog):
    rng = np.random.default_rng(0)
    ct = rng.integers(0, 2000, (12, 12, 6)).astype(np.int32)
    pet = rng.integers(0, 3000, (8, 8, 4)).astype(np.int32)
    pet_affine = AFFINE.copy()
    pet_affine[:3, :3] *= 1.5
    write_series(tmp_path / "ct", ct, AFFINE, modality="CT", frame_of_reference_uid="1.2.3.4.5", intercepts=-1024)
    write_series(tmp_path / "pet", pet, pet_affine, modality="PT", frame_of_reference_uid="1.2.3.4.5")
    ct_v, pet_v = load_volume(tmp_path / "ct"), load_volume(tmp_path / "pet")
    caplog.set_level("INFO", logger="medfuse")
    result = register(ct_v, pet_v)
    assert result.skipped and "registration skipped" in caplog.text
    assert result.resampled.shape == ct_v.shape
    np.testing.assert_array_equal(result.resampled.affine, ct_v.affine)
