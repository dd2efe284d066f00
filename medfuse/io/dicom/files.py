"""Reading one DICOM file quietly (no element values in logs or messages) and typed access to its attributes."""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.errors import CorruptFileError

__all__ = []


_UID_LIKE = re.compile(r"\d+(?:\.\d+){2,}")  # 2.25.<uuid> has three components


def _opaque(uid: str, n: int) -> str:
    """Short non-reversible label of a UID (hex digest prefix of its SHA-256)."""
    return hashlib.sha256(uid.encode("ascii", "replace")).hexdigest()[:n]


def _sanitize(text: Any, limit: int = 64) -> str:
    """Printable single-line text: control characters removed, whitespace collapsed, truncated."""
    s = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in str(text or ""))
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Stop pydicom from logging/warning element values (which may be identifiers) while reading.

    Invalid values are then kept as raw text and fail our own conversions, which raise messages
    without values. pydicom's settings are global: this is not thread-safe across readers that
    want a different validation mode at the same time.
    """
    from pydicom import config

    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        config.settings.reading_validation_mode = previous


def _looks_like_image(ds) -> bool:
    """True for datasets that carry an image (Rows/Columns), not DICOMDIR, SR, RT plans, ..."""
    return "Rows" in ds and "Columns" in ds and "DirectoryRecordSequence" not in ds


def _set_transfer_syntax(ds) -> None:
    """Give a file read without file meta (no preamble) the transfer syntax it was parsed with."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif little is False:
        meta.TransferSyntaxUID = ExplicitVRBigEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _read(path: Path, *, pixels: bool, images_only: bool = True):
    """Read ``path`` as DICOM; return the dataset, or ``None`` when it is not a DICOM image.

    With ``images_only=False`` non-image DICOM files (with a preamble) are returned too.

    Files without the 128-byte preamble and ``DICM`` prefix are retried with ``force=True`` and
    kept only when they hold an image (so a text or JSON file never becomes a "dataset").

    Raises:
        OSError, EOFError, ...: pydicom/IO errors of a file that is DICOM but unreadable; the
            caller counts or wraps them (their text may hold values: never show it).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    _check_deflated_size(path)
    with _quiet_pydicom():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
        except InvalidDicomError:
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=not pixels, force=True)
            except Exception:  # noqa: BLE001 - garbage forced through the parser: not DICOM
                return None
            if not ("SOPClassUID" in ds or "SeriesInstanceUID" in ds) or not _looks_like_image(ds):
                return None
        if images_only and not _looks_like_image(ds):
            return None
        _set_transfer_syntax(ds)
    return ds


_DEFLATED = "1.2.840.10008.1.2.1.99"


def _check_deflated_size(path: Path) -> None:
    """Refuse a Deflated Explicit VR Little Endian file whose dataset inflates beyond the size limit.

    pydicom inflates the whole dataset into memory before parsing it; a small crafted file can inflate to
    gigabytes (a deflate bomb). The stream is inflated here first in 1 MiB steps, counting, and abandoned
    as soon as it passes :func:`medfuse.io.nifti.max_image_bytes` (``$MEDFUSE_MAX_BYTES``, 2 GiB).

    Raises:
        TooLargeError: the inflated dataset would exceed the limit.
    """
    import zlib

    from pydicom.filereader import _read_file_meta_info

    from medfuse.errors import TooLargeError
    from medfuse.io.naming import describe
    from medfuse.io.nifti import max_image_bytes

    try:
        with open(path, "rb") as fh:
            if fh.read(132)[128:132] != b"DICM":
                return
            meta = _read_file_meta_info(fh)
            if str(meta.get("TransferSyntaxUID", "")).strip() != _DEFLATED:
                return
            limit = max_image_bytes()
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            total = 0
            while True:
                chunk = fh.read(1 << 16)
                data = inflater.decompress(chunk, 1 << 20) if chunk else b""
                while True:
                    total += len(data)
                    if total > limit:
                        raise TooLargeError(
                            f"{describe(path)}: the deflated DICOM dataset inflates to more "
                            f"than {limit / 1024**3:.2f} GiB (a deflate bomb?), above the limit; refused. Raise "
                            "MEDFUSE_MAX_BYTES if the file is genuine"
                        )
                    if not inflater.unconsumed_tail:
                        break
                    data = inflater.decompress(inflater.unconsumed_tail, 1 << 20)
                if not chunk or inflater.eof:
                    return
    except TooLargeError:
        raise
    except Exception:  # noqa: BLE001 - not DICOM or damaged: the normal reading path reports it
        return


def _as_floats(ds, keyword: str, n: int, label: str) -> np.ndarray | None:
    """Attribute ``keyword`` as ``n`` floats, ``None`` if absent; CorruptFileError if malformed."""
    if keyword not in ds or ds[keyword].value in (None, ""):
        return None
    value = ds[keyword].value
    items = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else list(value)
    try:
        values = [float(v) for v in items]
    except (TypeError, ValueError):
        raise CorruptFileError(
            f"{label}: {keyword} is not a list of {n} number(s); the file is damaged or non-standard"
        ) from None
    if len(values) != n or not np.all(np.isfinite(values)):
        raise CorruptFileError(f"{label}: {keyword} must hold {n} finite number(s), found {len(values)}")
    return np.asarray(values, dtype=np.float64)


def _as_int(ds, keyword: str, label: str, default: int | None = None) -> int | None:
    if keyword not in ds or ds[keyword].value in (None, ""):
        return default
    try:
        return int(str(ds[keyword].value).strip())
    except (TypeError, ValueError):
        raise CorruptFileError(
            f"{label}: {keyword} is not an integer; the file is damaged or non-standard"
        ) from None


def _text(ds, keyword: str) -> str | None:
    if keyword not in ds or ds[keyword].value in (None, ""):
        return None
    return str(ds[keyword].value).strip() or None


def _file_label(path: Path, root: Path) -> str:
    """How messages name a file: the path the user gave, plus the relative name unless it is a UID; under a
    role (:mod:`medfuse.io.naming`: pipeline, CLI) the role and an opaque id, never a file name."""
    from medfuse.io.naming import describe, private

    if private():
        return describe(path)
    if path == root:
        return str(root)
    rel = str(path.relative_to(root))
    if _UID_LIKE.search(rel):
        return f"a file in {root}"
    return str(root / rel)


def _private(ds, group: int, creator: str, offset: int):
    try:
        return ds.private_block(group, creator)[offset].value
    except (KeyError, ValueError):
        return None
