"""PET SUV (body weight) from the DICOM-derived ``meta["pet"]`` dict: the oracle and every refusal."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.errors import ImplausibleSUVInputsError, SUVUnavailableError
from medfuse.intensity import PET_META_KEYS, suv_factor, to_suv
from medfuse.volume import Volume


def pet_meta(**changes):
    """The oracle case: 70 kg, 370 MBq, 3600 s from injection to scan start, F-18."""
    meta = dict(
        units="BQML",
        decay_correction="START",
        corrected_image=["ATTN", "DECY", "SCAT"],
        series_datetime="2024-03-05T11:00:00.000000",
        acquisition_datetime="2024-03-05T11:00:00.000000",
        radiopharmaceutical_start_datetime="2024-03-05T10:00:00.000000",
        radiopharmaceutical_start_time="100000.000000",
        total_dose_bq=370e6,
        half_life_s=6586.2,
        patient_weight_kg=70.0,
    )
    assert set(meta) == set(PET_META_KEYS)
    meta.update(changes)
    assert all(isinstance(v, (str, float, list, type(None))) for v in meta.values())  # JSON-safe, like the reader's
    return meta


def test_oracle():
    assert 5000 * suv_factor(pet_meta()) == pytest.approx(1.38168, abs=5e-6)


def test_start_time_without_date_and_midnight_crossing():
    meta = pet_meta(radiopharmaceutical_start_datetime=None)
    assert 5000 * suv_factor(meta) == pytest.approx(1.38168, abs=5e-6)
    crossing = pet_meta(
        radiopharmaceutical_start_datetime=None,
        radiopharmaceutical_start_time="233000",
        series_datetime="2024-03-06T00:30:00",
        acquisition_datetime="2024-03-06T00:30:00",
    )
    assert suv_factor(crossing) == pytest.approx(suv_factor(pet_meta()), rel=1e-12)


def test_series_time_reset_after_acquisition_uses_acquisition_time():
    reset = pet_meta(series_datetime="2024-03-05T13:00:00")  # post-processing moved the series time 2 h later
    assert suv_factor(reset) == pytest.approx(suv_factor(pet_meta()), rel=1e-12)


def test_vendor_extras():
    ge = pet_meta(series_datetime="2024-03-05T13:00:00", acquisition_datetime="2024-03-05T10:45:00",
                  ge_private_scan_datetime="2024-03-05T11:00:00")
    assert suv_factor(ge) == pytest.approx(suv_factor(pet_meta()), rel=1e-12)
    philips = pet_meta(units="CNTS", philips_activity_concentration_factor=2.5)
    assert suv_factor(philips) == pytest.approx(2.5 * suv_factor(pet_meta()), rel=1e-12)
    with pytest.raises(SUVUnavailableError, match="CNTS"):
        suv_factor(pet_meta(units="CNTS", philips_activity_concentration_factor=None))


def test_decay_correction_codes():
    start = suv_factor(pet_meta())
    admin = suv_factor(pet_meta(decay_correction="ADMIN"))
    assert 5000 * admin == pytest.approx(0.94595, abs=5e-6)  # not decayed: 31.5% lower
    assert admin / start == pytest.approx(2 ** (-3600 / 6586.2), rel=1e-9)
    with pytest.raises(SUVUnavailableError, match="Decay Correction is 'NONE'"):
        suv_factor(pet_meta(decay_correction="NONE"))


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(patient_weight_kg=None), "no patient weight"),
        (dict(patient_weight_kg=0.0), "no patient weight"),
        (dict(total_dose_bq=None), "no injected dose"),
        (dict(units="CNTS"), "Units is 'CNTS'"),
        (dict(units="PROPCNTS"), "Units is 'PROPCNTS'"),
        (dict(units=None), "Units is 'missing'"),
        (dict(corrected_image=["DECY"]), r"lacks \['ATTN'\]"),
        (dict(half_life_s=None), "half-life"),
        (dict(series_datetime=None, acquisition_datetime=None), "scan start time"),
        (dict(radiopharmaceutical_start_datetime=None, radiopharmaceutical_start_time=None), "injection time"),
        (dict(radiopharmaceutical_start_datetime="yesterday"), "not an ISO date-time"),
    ],
)
def test_missing_or_unusable_inputs_raise_suv_unavailable(changes, match):
    with pytest.raises(SUVUnavailableError, match=match):
        suv_factor(pet_meta(**changes))


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(patient_weight_kg=70000.0), "weight 70000 kg"),
        (dict(patient_weight_kg=-3.0), "weight -3 kg"),
        (dict(total_dose_bq=370.0), "dose 370 Bq"),  # MBq typed into a Bq field
        (dict(half_life_s=109.77), "half-life 109.77 s"),  # minutes typed into seconds
        (dict(radiopharmaceutical_start_datetime="2024-03-05T02:00:00"), "9 h|32400 s"),
        (dict(radiopharmaceutical_start_datetime="2024-03-05T12:00:00"), "-3600 s"),
    ],
)
def test_implausible_inputs_raise(changes, match):
    with pytest.raises(ImplausibleSUVInputsError, match=match):
        suv_factor(pet_meta(**changes))


def test_gml_is_already_suv_and_to_suv_keeps_geometry():
    assert suv_factor(pet_meta(units="GML", patient_weight_kg=None)) == 1.0
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    pet = Volume(np.full((4, 4, 4), 5000.0, np.float32), affine, "PT", {"pet": pet_meta()})
    suv = to_suv(pet)
    np.testing.assert_allclose(suv.array, 1.38168, atol=1e-5)
    np.testing.assert_array_equal(suv.affine, affine)
    assert suv.meta["units"] == "SUVbw"
    with pytest.raises(SUVUnavailableError, match="no PET header metadata"):
        to_suv(Volume(np.ones((4, 4, 4), np.float32), modality="PT"))
