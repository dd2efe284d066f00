"""The units of a scan's values, as the sidecar and the quantitative outputs name them."""

from __future__ import annotations

__all__ = ["quantity_units"]

#: DICOM Units (0054,1001) and stored unit codes -> how medfuse names them
_KNOWN = {"BQML": "Bq/mL", "CNTS": "counts", "GML": "SUVbw", "HU": "HU", "SUVBW": "SUVbw"}


def quantity_units(moving, normalized=None) -> str:
    """The units of a moving scan's values (``SUVbw`` when SUV is computed, else what is known).

    Args:
        moving: the scan (:class:`~medfuse.volume.Volume`) as read or resampled, in its own units.
        normalized: the same scan after :func:`medfuse.intensity.normalize` (its record says whether SUV was
            computed and how CT was windowed).
    """
    record = (normalized.meta.get("normalization") or {}) if normalized is not None else {}
    if record.get("method") == "suv":
        return "SUVbw"
    code = str(moving.modality or "").upper()
    stored = str(moving.meta.get("units") or (moving.meta.get("pet") or {}).get("units") or "").strip()
    if stored.upper() in _KNOWN:
        return _KNOWN[stored.upper()]
    if code == "CT" and record.get("method") == "ct_window":
        return "HU"
    if code == "MR":
        return "MR signal (arbitrary units, as stored)"
    return stored or "as stored in the input (units not recorded in the file)"
