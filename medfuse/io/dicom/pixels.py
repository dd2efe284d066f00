"""Pixel data: decodability of the transfer syntax, the pixel array, real-world values (modality LUT or rescale)."""

from __future__ import annotations


import numpy as np

from medfuse.errors import CorruptFileError, UnsupportedInputError
from medfuse.io.dicom.files import _as_floats, _quiet_pydicom

__all__ = []


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


def _real_world(arr: np.ndarray, ds, label: str) -> np.ndarray:
    """Apply this slice's modality LUT or RescaleSlope/Intercept; float32 result."""
    if "ModalityLUTSequence" in ds and ds.ModalityLUTSequence:
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
