"""The JSON sidecar written next to every fused or registered output: how it was made.

``fused.nii.gz`` gets ``fused.json`` beside it: the medfuse version, the command, the method and
its weights (file name and SHA-256), each input's modality (and where that came from), format,
grid and normalization (window or percentiles, SUV factor or why not), the registration summary
(type, figures, transform file, skipped and why, checks overridden), the slice axis of 2D methods,
any override the user asked for, and timings; for a DICOM input, how its stored values became real-world
values (``value_transform``), and for a pair, the pair check (``pair_check``: whether the DICOM PatientIDs
matched, compared only through salted hashes, and the opaque ids of both frames of reference). For 3D outputs it also says what the fused image
holds (``fused_image``: grey [0, 1] or RGB colour, with the colour map and the range of moving-scan
values, in their units, that maps to its two ends: ``colour``) and what the quantitative output
holds (``quantitative``: the moving scan on the reference grid, its file, units and value range).

No patient identifiers: no input paths or DICOM text, only what medfuse computed. Inputs are
identified by the SHA-256 of their voxel values (the same scan gives the same hash whatever its file
name), which batch runs also use to tell whether an output is up to date.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["sidecar_path", "write_sidecar", "volume_record", "file_sha256", "array_sha256", "fused_image_record",
           "quantitative_record"]


def sidecar_path(output: str | os.PathLike) -> Path:
    """``<output without its extension>.json`` (``fused.nii.gz`` -> ``fused.json``)."""
    from medfuse.io.atomic import full_suffix

    output = Path(output)
    suffix = full_suffix(output)
    stem = output.name[: -len(suffix)] if suffix else output.name
    return output.with_name(stem + ".json")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's float32 values, shape included."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def volume_record(volume, normalized=None, *, sha256: str | None = None) -> dict[str, Any]:
    """What the sidecar says of one input: modality and its source, format, grid, normalization, hash.

    Args:
        volume: the input as read (:class:`~medfuse.volume.Volume`).
        normalized: the same input after :func:`~medfuse.intensity.normalize` (for its record), if any.
        sha256: :func:`array_sha256` of the voxels as read, when taken before they were given up.
    """
    record: dict[str, Any] = {
        "modality": volume.modality,
        "modality_source": volume.meta.get("modality_source"),
        "format": volume.meta.get("format"),
        "shape": list(volume.shape),
        "spacing_mm": [round(float(s), 6) for s in volume.spacing],
        "sha256_of_values": sha256 if sha256 is not None else array_sha256(volume.array),
    }
    if volume.ndim == 3:
        import nibabel.orientations as nio

        record["orientation"] = "".join(nio.aff2axcodes(volume.affine))
    if normalized is not None and "normalization" in normalized.meta:
        record["normalization"] = normalized.meta["normalization"]
    for key in ("slice_resampling", "suv", "units", "value_transform"):
        if key in volume.meta:
            record[key] = volume.meta[key]
    return record


def fused_image_record(rgb: bool, ndim: int, colour: dict[str, Any] | None) -> dict[str, Any]:
    """What the fused image holds: ``{"fused_image": {...}}`` plus ``{"colour": {...}}`` for colour fusion.

    Args:
        rgb: the fused image is colour (RGB).
        ndim: 2 (a slice) or 3 (a volume).
        colour: :attr:`medfuse.pipeline.FusionResult.colour` (colour map, range, units, rule), or None.
    """
    if not rgb:
        scale = "[0, 1]" if ndim == 3 else "0..255"
        return {"fused_image": {"kind": "gray", "values": f"display intensities on {scale}, not quantitative"}}
    record: dict[str, Any] = {"fused_image": {
        "kind": "rgb",
        "values": "display colours (R, G, B uint8): the fused luminance (Y of YCbCr) with the colour-mapped moving "
                  "scan's chroma; not quantitative",
        "storage": "NIfTI-1 datatype RGB24 (128); NRRD/MHA 3-component uint8 vector; PNG RGB",
    }}
    if colour is not None:
        record["colour"] = {**colour, "note": f"moving-scan values {colour['range'][0]:g} to {colour['range'][1]:g} "
                                              f"{colour['units']} map to the two ends of {colour['colormap']}; "
                                              "values beyond are clipped"}
    return record


def quantitative_record(volume, path: str | os.PathLike) -> dict[str, Any]:
    """What the quantitative output holds: file, units, value range (no identifiers)."""
    a = np.asarray(volume.array)
    return {
        "file": Path(path).name,
        "what": "the moving scan resampled on the reference grid (linear interpolation, reference affine), in its "
                "own units",
        "units": volume.meta.get("units"),
        "dtype": "float32",
        "min": float(a.min()),
        "max": float(a.max()),
    }


def write_sidecar(output: str | os.PathLike, record: dict[str, Any], *, force: bool = False) -> Path:
    """Write ``record`` as ``sidecar_path(output)`` (pretty JSON), atomically; returns its path."""
    from medfuse.io.atomic import atomic_output

    path = sidecar_path(output)
    with atomic_output(path, force) as tmp:
        tmp.write_text(json.dumps(_jsonable(record), indent=2) + "\n")
    return path
