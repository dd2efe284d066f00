"""PET standardized uptake value (SUV, body weight) from the DICOM header fields.

The DICOM reader stores what SUV needs in ``volume.meta["pet"]``, a plain dict (JSON-safe, no
patient identifiers) with exactly these keys; any value may be ``None`` when the tag is absent:

==================================== ============================================================
key                                  DICOM source, format
==================================== ============================================================
``units``                            Units (0054,1001): ``"BQML"``, ``"CNTS"``, ``"GML"``, ...
``decay_correction``                 Decay Correction (0054,1102): ``"START"``, ``"ADMIN"``, ``"NONE"``
``corrected_image``                  Corrected Image (0028,0051): list of str, e.g. ``["ATTN", "DECY"]``
``series_datetime``                  Series Date + Time (0008,0021/0031), ISO ``"YYYY-MM-DDTHH:MM:SS.ffffff"``
``acquisition_datetime``             Acquisition Date + Time (0008,0022/0032), ISO as above
``radiopharmaceutical_start_datetime`` Radiopharmaceutical Start DateTime (0018,1078), ISO as above
``radiopharmaceutical_start_time``   Radiopharmaceutical Start Time (0018,1072), DICOM TM ``"HHMMSS.ffffff"``
``total_dose_bq``                    Radionuclide Total Dose (0018,1074), Bq (float)
``half_life_s``                      Radionuclide Half Life (0018,1075), s (float)
``patient_weight_kg``                Patient's Weight (0010,1030), kg (float)
==================================== ============================================================

Optional vendor extras (used when present): ``ge_private_scan_datetime`` (GE (0009,100D), ISO),
``philips_activity_concentration_factor`` (Philips (7053,1009)).

The voxel values of such a volume are activity concentrations in Bq/mL (per-slice rescale
already applied by the reader). ``SUVbw = value * suv_factor(meta)`` with
``suv_factor = weight_g / decayed_dose_Bq`` (QIBA vendor-neutral pseudo-code, see
``shared/reference/bad-inputs.md`` section 3):

- Units must be ``BQML`` (``GML`` is SUV already: factor 1). ``CNTS`` with the Philips activity
  concentration factor (7053,1009) is converted to Bq/mL by it (the reader has applied the
  rescale slope, so ``value * factor`` is ``stored * slope * factor``, QIBA's rule). Other units
  (``CNTS`` without it, ``PROPCNTS``, ...) give :class:`~medfuse.errors.SUVUnavailableError`.
- Corrected Image, when recorded, must contain ``ATTN`` and ``DECY``.
- Decay Correction ``START``: the dose is decayed from injection to the scan start; ``ADMIN``: the
  images are already corrected to the injection time, the dose is not decayed; ``NONE``: refused.
- Scan start = Series date/time unless it is after the Acquisition date/time (series times are
  reset by post-processing), then the GE private scan date/time when recorded, else the
  Acquisition date/time.
- Injection = Radiopharmaceutical Start DateTime, else Start Time on the scan date; a start time
  after the scan start means the scan crossed midnight (one day is subtracted).
- Missing weight or dose: :class:`~medfuse.errors.SUVUnavailableError`, never SUV 0 or inf.
  Values outside :data:`WEIGHT_RANGE_KG`, :data:`DOSE_RANGE_BQ`, :data:`MAX_UPTAKE_S`, or a half-life
  not within 1% of a PET radionuclide's: :class:`~medfuse.errors.ImplausibleSUVInputsError`
  (a unit error, most likely: MBq typed into a Bq field, minutes into seconds, g into kg).

Oracle: 70 kg, 370 MBq, 3600 s from injection to scan start, T1/2 6586.2 s (F-18), 5000 Bq/mL
gives SUVbw 1.38168.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from medfuse.errors import ImplausibleSUVInputsError, SUVUnavailableError
from medfuse.volume import Volume

__all__ = [
    "suv_factor",
    "to_suv",
    "PET_META_KEYS",
    "WEIGHT_RANGE_KG",
    "DOSE_RANGE_BQ",
    "MAX_UPTAKE_S",
    "PET_HALF_LIVES_S",
]

log = logging.getLogger(__name__)

#: the keys of ``volume.meta["pet"]`` (the DICOM reader fills all of them, ``None`` when absent)
PET_META_KEYS = (
    "units",
    "decay_correction",
    "corrected_image",
    "series_datetime",
    "acquisition_datetime",
    "radiopharmaceutical_start_datetime",
    "radiopharmaceutical_start_time",
    "total_dose_bq",
    "half_life_s",
    "patient_weight_kg",
)
#: plausible patient weight (kg)
WEIGHT_RANGE_KG = (2.0, 300.0)
#: plausible injected activity (Bq): 10 MBq to 3 GBq covers clinical PET tracers (FDG: 37-740 MBq)
DOSE_RANGE_BQ = (1.0e7, 3.0e9)
#: plausible time from injection to scan start (s): 0 (dynamic scans) to 6 h
MAX_UPTAKE_S = 6 * 3600.0
#: half-lives (s) of PET radionuclides; a header half-life must lie within 1% of one of them
PET_HALF_LIVES_S = {
    "F-18": 6586.2,
    "C-11": 1221.66,
    "N-13": 597.9,
    "O-15": 122.24,
    "Ga-68": 4062.6,
    "Rb-82": 76.38,
    "Cu-64": 45721.1,
    "Zr-89": 282276.0,
    "I-124": 360806.4,
}


def _parse_iso(value: Any, key: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as err:
        raise SUVUnavailableError(
            f"PET header field {key}={value!r} is not an ISO date-time (expected 'YYYY-MM-DDTHH:MM:SS.ffffff'); "
            "SUV needs valid series/acquisition/injection times"
        ) from err


def _parse_tm(value: Any) -> tuple[int, int, int, int] | None:
    """DICOM TM ``HHMMSS.ffffff`` (minutes, seconds, fraction optional) -> (h, m, s, microseconds)."""
    if value in (None, ""):
        return None
    text = str(value).strip().replace(":", "")
    main, _, frac = text.partition(".")
    try:
        if not main.isdigit() or len(main) not in (2, 4, 6):
            raise ValueError(text)
        h = int(main[0:2])
        m = int(main[2:4]) if len(main) >= 4 else 0
        s = int(main[4:6]) if len(main) >= 6 else 0
        us = int((frac + "000000")[:6]) if frac else 0
        if h > 23 or m > 59 or s > 60:
            raise ValueError(text)
    except ValueError as err:
        raise SUVUnavailableError(
            f"PET header field radiopharmaceutical_start_time={value!r} is not a DICOM time (HHMMSS.ffffff); "
            "SUV needs the injection time"
        ) from err
    return h, m, min(s, 59), us


def _number(meta: dict, key: str, what: str) -> float:
    value = meta.get(key)
    try:
        number = float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number == 0.0:
        raise SUVUnavailableError(
            f"PET header has no {what} ({key}={value!r}); SUV (body weight) cannot be computed. De-identification "
            "often removes it; re-export with the 'Retain Patient Characteristics' option, or normalize by percentiles"
        )
    return number


def _scan_start(meta: dict) -> datetime:
    series = _parse_iso(meta.get("series_datetime"), "series_datetime")
    acquisition = _parse_iso(meta.get("acquisition_datetime"), "acquisition_datetime")
    if series is None and acquisition is None:
        raise SUVUnavailableError(
            "PET header has neither a series nor an acquisition date/time; SUV needs the scan start time"
        )
    if series is None:
        return acquisition
    if acquisition is not None and series > acquisition:
        ge = _parse_iso(meta.get("ge_private_scan_datetime"), "ge_private_scan_datetime")
        log.info(
            "PET series time is after the acquisition time (series re-created by post-processing); using the "
            "%s as the scan start for SUV", "GE private scan time" if ge is not None else "acquisition time"
        )
        return ge if ge is not None else acquisition
    return series


def _injection(meta: dict, scan: datetime) -> datetime:
    start = _parse_iso(meta.get("radiopharmaceutical_start_datetime"), "radiopharmaceutical_start_datetime")
    if start is not None:
        return start
    tm = _parse_tm(meta.get("radiopharmaceutical_start_time"))
    if tm is None:
        raise SUVUnavailableError(
            "PET header has no radiopharmaceutical start (injection) date/time or time; SUV needs the injection time"
        )
    h, m, s, us = tm
    start = scan.replace(hour=h, minute=m, second=s, microsecond=us)
    if start > scan:  # the start time has no date: injection before midnight, scan after it
        start -= timedelta(days=1)
    return start


def suv_factor(pet_meta: dict) -> float:
    """The factor that turns PET activity concentration (Bq/mL) into SUV body weight (g/mL).

    Args:
        pet_meta: the ``volume.meta["pet"]`` dict described in this module's docstring.

    Returns:
        ``weight_g / decayed_dose_Bq`` (``1.0`` for ``Units == "GML"``, already SUV; times the
        Philips activity concentration factor for ``CNTS``). Multiply the voxel values by it.

    Raises:
        SUVUnavailableError: units are not BQML/GML, decay correction NONE or unknown, attenuation
            or decay correction not applied, weight/dose/half-life/times missing.
        ImplausibleSUVInputsError: weight, dose, half-life or uptake time outside plausible ranges.

    Example:
        >>> meta = dict(units="BQML", decay_correction="START", corrected_image=["ATTN", "DECY"],
        ...             series_datetime="2024-01-01T11:00:00", acquisition_datetime="2024-01-01T11:00:00",
        ...             radiopharmaceutical_start_datetime="2024-01-01T10:00:00",
        ...             radiopharmaceutical_start_time=None, total_dose_bq=370e6,
        ...             half_life_s=6586.2, patient_weight_kg=70.0)
        >>> round(5000 * suv_factor(meta), 5)
        1.38168
    """
    if not isinstance(pet_meta, dict):
        raise SUVUnavailableError(f"PET metadata must be a dict (volume.meta['pet']), got {type(pet_meta).__name__}")
    units = str(pet_meta.get("units") or "").strip().upper()
    if units == "GML":
        return 1.0
    to_bqml = 1.0
    philips = pet_meta.get("philips_activity_concentration_factor")
    if units == "CNTS" and philips is not None and math.isfinite(float(philips)) and float(philips) > 0:
        to_bqml = float(philips)
        units = "BQML"
    if units != "BQML":
        raise SUVUnavailableError(
            f"PET Units is {units or 'missing'!r}, expected 'BQML' (activity concentration); counts or already "
            "normalized PET cannot be converted to SUV: it will be treated as relative intensity"
        )
    corrected = [str(c).strip().upper() for c in (pet_meta.get("corrected_image") or [])]
    if corrected:
        missing = [c for c in ("ATTN", "DECY") if c not in corrected and not (c == "DECY" and "DECAY" in corrected)]
        if missing:
            raise SUVUnavailableError(
                f"PET Corrected Image is {corrected}, which lacks {missing}; SUV needs attenuation- and "
                "decay-corrected images"
            )
    else:
        log.warning("PET header does not record Corrected Image; assuming attenuation and decay correction for SUV")
    decay = str(pet_meta.get("decay_correction") or "").strip().upper()
    if decay not in ("START", "ADMIN"):
        raise SUVUnavailableError(
            f"PET Decay Correction is {decay or 'missing'!r}; SUV needs 'START' or 'ADMIN' (per-frame correction "
            "of 'NONE' images is not supported)"
        )
    weight = _number(pet_meta, "patient_weight_kg", "patient weight")
    dose = _number(pet_meta, "total_dose_bq", "injected dose (Radionuclide Total Dose)")
    if not WEIGHT_RANGE_KG[0] <= weight <= WEIGHT_RANGE_KG[1]:
        raise ImplausibleSUVInputsError(
            f"PET patient weight {weight:g} kg is outside {WEIGHT_RANGE_KG[0]:g}-{WEIGHT_RANGE_KG[1]:g} kg; check the "
            "unit (kg expected; grams or pounds give this)"
        )
    if not DOSE_RANGE_BQ[0] <= dose <= DOSE_RANGE_BQ[1]:
        raise ImplausibleSUVInputsError(
            f"PET injected dose {dose:g} Bq is outside {DOSE_RANGE_BQ[0]:.3g}-{DOSE_RANGE_BQ[1]:.3g} Bq; check the "
            "unit (Bq expected; a dose in MBq or mCi gives this)"
        )
    if decay == "ADMIN":
        decayed = dose
    else:
        half_life = _number(pet_meta, "half_life_s", "radionuclide half-life")
        if not any(abs(half_life - t) <= 0.01 * t for t in PET_HALF_LIVES_S.values()):
            known = ", ".join(f"{k} {v:g} s" for k, v in PET_HALF_LIVES_S.items())
            raise ImplausibleSUVInputsError(
                f"PET radionuclide half-life {half_life:g} s is not within 1% of a PET radionuclide ({known}); "
                "check the unit (seconds expected)"
            )
        scan = _scan_start(pet_meta)
        injection = _injection(pet_meta, scan)
        dt = (scan - injection).total_seconds()
        if not 0.0 <= dt <= MAX_UPTAKE_S:
            raise ImplausibleSUVInputsError(
                f"PET time from injection to scan start is {dt:.0f} s, outside 0-{MAX_UPTAKE_S:.0f} s; check the "
                "injection and series/acquisition times (time zone or date shifts give this)"
            )
        decayed = dose * 2.0 ** (-dt / half_life)
    return to_bqml * weight * 1000.0 / decayed


def to_suv(volume: Volume) -> Volume:
    """A copy of a PET volume in SUV body weight (g/mL), using ``volume.meta["pet"]``.

    Args:
        volume: PET in Bq/mL with ``meta["pet"]`` (see the module docstring).

    Returns:
        A :class:`~medfuse.volume.Volume` on the same grid, float32 SUVbw, with ``meta["units"] = "SUVbw"``
        and ``meta["suv_factor"]``.

    Raises:
        SUVUnavailableError, ImplausibleSUVInputsError: as :func:`suv_factor`.
    """
    pet = volume.meta.get("pet")
    if pet is None:
        raise SUVUnavailableError(
            f"{volume.name}: no PET header metadata (meta['pet']); SUV needs a DICOM PET series read by medfuse"
        )
    factor = suv_factor(pet)
    out = volume.with_array((volume.array.astype(np.float64) * factor).astype(np.float32), rgb=volume.rgb)
    out.meta["units"] = "SUVbw"
    out.meta["suv_factor"] = factor
    return out
