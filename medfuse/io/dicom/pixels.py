"""Pixel data: decodability of the transfer syntax, the pixel array, real-world values (modality LUT or rescale)."""

from __future__ import annotations


import numpy as np

from medfuse.errors import CorruptFileError, UnsupportedInputError
from medfuse.io.dicom.files import _as_floats, _quiet_pydicom

__all__ = ["VALUE_TRANSFORM_RULE"]


#: Transfer syntaxes that are lossy by definition (JPEG baseline/extended, JPEG-LS near-lossless).
_LOSSY_TRANSFER_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81"}


def _check_decodable(ds, label: str) -> str:
    """Return the transfer syntax UID; raise UnsupportedInputError when no decoder is installed."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    ts = UID(str(ds.file_meta.TransferSyntaxUID))
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnsupportedInputError(
            f"{label}: transfer syntax {ts} ({ts.name}) is not one pydicom can decode; convert the "
            "series to an uncompressed transfer syntax (e.g. dcmdjpeg/gdcmconv --raw)"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoding plugin"
        raise UnsupportedInputError(
            f"{label}: pixel data use transfer syntax {ts} ({ts.name}) and no installed plugin can "
            f"decode it. Install one of: {missing}; or convert the series to an uncompressed "
            "transfer syntax (e.g. gdcmconv --raw, dcmdjpeg)"
        )
    return str(ts)


def _pixels(ds, label: str) -> np.ndarray:
    """Decoded stored values of one single-frame dataset as (rows, cols), wrapped errors."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise CorruptFileError(
            f"{label}: the image has no pixel data (the file is truncated or the pixel data element "
            "is damaged); re-export the series"
        )
    ts = _check_decodable(ds, label)
    compressed = ts not in {
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99",
    }
    try:
        with _quiet_pydicom():
            arr = ds.pixel_array
    except (ValueError, EOFError, IndexError) as err:
        raise CorruptFileError(
            f"{label}: the pixel data are shorter than Rows x Columns x BitsAllocated say, or "
            f"inconsistent with them (truncated or damaged file; {type(err).__name__}); re-export the series"
        ) from None
    except Exception as err:  # noqa: BLE001 - decoder failures come as RuntimeError and others
        if compressed:  # truncated fragments come back as "no pixel data" above; this is the codec
            raise UnsupportedInputError(
                f"{label}: the installed decoder(s) could not decode transfer syntax {ts} "
                f"({type(err).__name__}): this encoding (e.g. 12-bit JPEG) needs another plugin "
                "(pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg, or python-gdcm), or the "
                "data are damaged; or convert the series to an uncompressed transfer syntax"
            ) from None
        raise CorruptFileError(
            f"{label}: the pixel data could not be decoded (damaged file? {type(err).__name__})"
        ) from None
    return arr


def _has_modality_lut(ds) -> bool:
    """True when a Modality LUT Sequence holds a LUT (an item with LUTDescriptor and LUTData), not merely
    when the sequence is there: an empty sequence or an empty item (as archives write them) means none, and
    the slice's RescaleSlope/RescaleIntercept apply."""
    seq = ds.get("ModalityLUTSequence") if "ModalityLUTSequence" in ds else None
    try:
        item = seq[0] if seq else None
    except (TypeError, IndexError):
        return False
    return item is not None and "LUTDescriptor" in item and "LUTData" in item


def _real_world(arr: np.ndarray, ds, label: str) -> np.ndarray:
    """Apply this slice's modality LUT or RescaleSlope/Intercept; float32 result."""
    if _has_modality_lut(ds):
        from pydicom.pixels import apply_modality_lut

        try:
            with _quiet_pydicom():
                return apply_modality_lut(arr, ds).astype(np.float32)
        except Exception as err:  # noqa: BLE001
            raise CorruptFileError(
                f"{label}: the Modality LUT Sequence is damaged ({type(err).__name__})"
            ) from None
    slope = _as_floats(ds, "RescaleSlope", 1, label)
    intercept = _as_floats(ds, "RescaleIntercept", 1, label)
    slope = 1.0 if slope is None else float(slope[0])
    intercept = 0.0 if intercept is None else float(intercept[0])
    if slope == 0.0:
        raise CorruptFileError(f"{label}: RescaleSlope is 0, which would erase the image")
    out = arr.astype(np.float64)  # float64 like apply_modality_lut, then float32
    out *= slope
    out += intercept
    return out.astype(np.float32)


#: How stored values become the values medfuse works with, for every DICOM series (one rule, so both members
#: of a pair always get the same transform). These are DICOM's real-world "displayed values" (what SimpleITK,
#: pydicom's ``apply_modality_lut`` and PACS viewers give); Philips MR "floating-point values" (displayed value /
#: (RescaleSlope x private scale slope)) and RealWorldValueMapping are not used, so values of Philips MR series
#: scanned with different scale slopes are comparable only after intensity normalization, as for any MR.
VALUE_TRANSFORM_RULE = (
    "per slice: Modality LUT Sequence where present, else RescaleSlope/RescaleIntercept (stored values when "
    "absent): DICOM displayed values; vendor private scale factors (Philips MR scale slope) and "
    "RealWorldValueMappingSequence not applied"
)


def _has_philips_scale_slope(ds) -> bool:
    try:
        block = ds.private_block(0x2005, "Philips MR Imaging DD 001")
    except (KeyError, ValueError):
        return False
    return 0x0E in block


def _ignored_transforms(ds, limit: int = 20000) -> list[str]:
    """Value transforms present in ``ds`` (or its sequences: enhanced functional groups) that are not applied."""
    found: set[str] = set()
    stack, seen = [ds], 0
    while stack and seen < limit and len(found) < 2:
        item = stack.pop()
        if _has_philips_scale_slope(item):
            found.add("Philips private MR scale slope (2005,xx0E)")
        for elem in item:
            seen += 1
            if elem.VR != "SQ":
                continue
            if elem.keyword == "RealWorldValueMappingSequence" and any(len(i) for i in elem.value or ()):
                found.add("RealWorldValueMappingSequence (0040,9096)")
            stack.extend(elem.value or ())
    return sorted(found)


def _value_transform(datasets, original_first) -> dict:
    """What :func:`_real_world` did to a series (``meta["value_transform"]``, copied into the sidecar).

    Args:
        datasets: the headers of the slices read, in slice order (enhanced: one pseudo-header per frame).
        original_first: the first file's header as stored (enhanced: with its functional groups).

    Returns:
        ``{"rule": VALUE_TRANSFORM_RULE, "applied": ..., "rescale_slope"/"rescale_intercept": [min, max] when
        rescaled, "present_not_applied": [...]}``; no text from the files.
    """
    n_lut = sum(1 for ds in datasets if _has_modality_lut(ds))
    slopes, intercepts = [], []
    for ds in datasets:
        if _has_modality_lut(ds):
            continue
        for keyword, into, default in (("RescaleSlope", slopes, 1.0), ("RescaleIntercept", intercepts, 0.0)):
            try:
                value = _as_floats(ds, keyword, 1, "")
            except CorruptFileError:  # already refused by _real_world when it matters
                value = None
            into.append(default if value is None else float(value[0]))
    rescaled = any(s != 1.0 for s in slopes) or any(i != 0.0 for i in intercepts)
    applied = []
    if n_lut:
        applied.append("Modality LUT Sequence" + ("" if n_lut == len(datasets) else f" ({n_lut} slices)"))
    if slopes and rescaled:
        applied.append("RescaleSlope/RescaleIntercept")
    elif slopes:
        applied.append("none: stored values (no rescale, or slope 1 and intercept 0)")
    record = {"rule": VALUE_TRANSFORM_RULE, "applied": "; ".join(applied)}
    if slopes and rescaled:
        record["rescale_slope"] = [min(slopes), max(slopes)]
        record["rescale_intercept"] = [min(intercepts), max(intercepts)]
    record["present_not_applied"] = _ignored_transforms(original_first)
    return record
