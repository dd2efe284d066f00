"""PET tags: the SUV inputs of a PET series (units, decay correction, dose, half-life, injection and
acquisition times, weight, GE and Philips private scan time and scale factors)."""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from medfuse.io.dicom.files import _private, _quiet_pydicom, _text

__all__ = []


def _dicom_datetime(date: str | None, time: str | None) -> _dt.datetime | None:
    """Combine DA + TM strings (or a DT string when ``time`` is None) into a naive datetime."""
    from pydicom.valuerep import DA, DT, TM

    try:
        if date and time is None:
            value = DT(str(date).strip())
            return value.replace(tzinfo=None) if value is not None else None
        if not date or not time:
            return None
        d, t = DA(str(date).strip()), TM(str(time).strip())
        if d is None or t is None:
            return None
        return _dt.datetime.combine(d, t)
    except (ValueError, TypeError, OverflowError):
        return None


def _iso(value: _dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def _float_or_none(ds, keyword: str) -> float | None:
    if ds is None or keyword not in ds or ds[keyword].value in (None, ""):
        return None
    try:
        v = float(ds[keyword].value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _pet_meta(datasets: Sequence[Any]) -> dict[str, Any]:
    """SUV inputs of a PET series (see bad-inputs.md section 3); missing values are ``None``."""
    first = datasets[0]
    with _quiet_pydicom():
        acq = []
        for ds in datasets:
            t = _dicom_datetime(_text(ds, "AcquisitionDate"), _text(ds, "AcquisitionTime"))
            if t is None and _text(ds, "AcquisitionDateTime"):
                t = _dicom_datetime(_text(ds, "AcquisitionDateTime"), None)
            if t is not None:
                acq.append(t)
        rp = None
        seq = first.get("RadiopharmaceuticalInformationSequence")
        if seq:
            rp = seq[0]
        start_dt = (
            _dicom_datetime(_text(rp, "RadiopharmaceuticalStartDateTime"), None) if rp is not None else None
        )
        corrected = first.get("CorrectedImage")
        if corrected is None:
            corrected_list: list[str] = []
        elif isinstance(corrected, str):
            corrected_list = [corrected.strip()] if corrected.strip() else []
        else:
            corrected_list = [str(c).strip() for c in corrected]
        ge_scan = _private(first, 0x0009, "GEMS_PETD_01", 0x0D)
        ge_dt = _dicom_datetime(str(ge_scan).strip(), None) if ge_scan else None
        philips_suv = _private(first, 0x7053, "Philips PET Private Group", 0x00)
        philips_act = _private(first, 0x7053, "Philips PET Private Group", 0x09)

        def _f(v):
            if isinstance(v, bytes) and len(v) == 8:  # FD read as UN (implicit VR, unknown creator)
                v = struct.unpack("<d", v)[0]
            try:
                return float(v) if v is not None and np.isfinite(float(v)) else None
            except (TypeError, ValueError):
                return None

        return {
            "units": _text(first, "Units"),
            "decay_correction": _text(first, "DecayCorrection"),
            "corrected_image": corrected_list,
            "series_datetime": _iso(_dicom_datetime(_text(first, "SeriesDate"), _text(first, "SeriesTime"))),
            "acquisition_datetime": _iso(min(acq)) if acq else None,
            "radiopharmaceutical_start_datetime": _iso(start_dt),
            "radiopharmaceutical_start_time": _text(rp, "RadiopharmaceuticalStartTime")
            if rp is not None
            else None,
            "total_dose_bq": _float_or_none(rp, "RadionuclideTotalDose"),
            "half_life_s": _float_or_none(rp, "RadionuclideHalfLife"),
            "patient_weight_kg": _float_or_none(first, "PatientWeight"),
            # vendor extras for the SUV rules of section 3 (None when absent)
            "ge_private_scan_datetime": _iso(ge_dt),
            "philips_suv_factor": _f(philips_suv),
            "philips_activity_concentration_factor": _f(philips_act),
        }
