"""Read a DICOM series (a folder of single-frame slices, or one file) into a :class:`Volume`.

What this reader guarantees (each is tested in ``tests/io/test_dicom.py``; the numbers refer to
the rows of the shared bad-inputs matrix):

- **One series at a time** (7): files are grouped by SeriesInstanceUID; a folder holding two or
  more series raises :class:`~medfuse.errors.MultipleSeriesError` listing each series by an
  opaque id (a short hash of its UID, never the UID), modality, description and slice count, and
  ``series=`` (``--series`` on the command line) picks one.
- **Geometry from the patient position, never from InstanceNumber** (11, 12): slices are sorted
  by ``ImagePositionPatient . n`` with ``n = IOP[0:3] x IOP[3:6]`` (the normal of the slice
  plane); the slice spacing is measured along ``n`` (sagittal, coronal and oblique stacks too).
- **Incomplete or odd stacks are refused, not stretched** (8, 9, 10): duplicate positions (a
  series whose images repeat every position equally often is named 4D: time points or echoes,
  with ``--frame N`` on a 4D NIfTI conversion as the fix), a gap
  larger than 1.5x the median spacing, a stack whose positions drift within the slice plane
  (gantry tilt), mixed orientations or matrix sizes raise typed errors. Slightly non-uniform
  spacing (above 1 % but below the gap limit) is resampled linearly onto equidistant slices with
  a warning and a record in ``meta["slice_resampling"]`` unless ``strict=True``, which raises.
- **Real-world values** (22, 24, 25): the modality LUT or RescaleSlope/RescaleIntercept is
  applied **per slice**; the output is float32 (CT in HU, PET in the series' Units).
- **Clear refusals** (13, 14, 34, 37): multi-frame and enhanced objects, Siemens mosaics, colour
  images and non-image pixel objects (RT Dose, SEG) raise
  :class:`~medfuse.errors.UnsupportedInputError` (an object is enhanced when its SOP class is an
  enhanced one or its PerFrameFunctionalGroupsSequence is not empty: classic single-frame images
  that carry *empty* functional-group sequences, as archives such as ADNI export them, are read
  as the classic images they are); so does a compressed transfer syntax without a
  (working) decoder, naming the transfer syntax UID and the plugins to install; truncated or
  missing pixel data raise :class:`~medfuse.errors.CorruptFileError`.
- **Clutter is skipped and counted** (39, 43): DICOMDIR, ``.DS_Store``, JSON, text, thumbnails,
  structured reports and other non-image objects in the folder are skipped (one log line with
  the count); files without the DICOM preamble/file meta are read when they hold an image.
- **No patient identifiers** in messages, logs or ``meta``: UIDs appear only hashed; pydicom's
  own exceptions (which may quote element values) are replaced by messages naming the path the
  user gave, the problem and the fix.

World convention: DICOM geometry is LPS; the affine is built in LPS from the first sorted slice's
ImagePositionPatient, the ImageOrientationPatient cosines, PixelSpacing and the slice step, and
converted once with :func:`medfuse.volume.lps_to_ras`.

Array layout: ``(X, Y, Z) = (column index, row index, slice index)``, i.e. each slice's
``pixel_array.T`` stacked on the last axis, so the LPS affine's columns are ``IOP[0:3] *
PixelSpacing[1]`` (along a row: increasing column index), ``IOP[3:6] * PixelSpacing[0]`` (down a
column: increasing row index) and ``n * slice spacing``, and its translation is the first sorted
slice's ImagePositionPatient; the RAS affine is that, flipped. Slices are ordered along ``+n``,
so the affine is right-handed whatever order the files or InstanceNumbers have. A single file without
any patient geometry (secondary capture) is returned as a 2D ``(rows, cols)`` slice, the
convention :class:`~medfuse.volume.Volume` uses for 2D images.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import logging
import re
import struct
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.errors import (
    AmbiguousGeometryError,
    CorruptFileError,
    MissingSlicesError,
    MultipleSeriesError,
    SeriesNotFoundError,
    TooLargeError,
    UnsupportedInputError,
)
from medfuse.volume import Volume, lps_to_ras

__all__ = ["SeriesInfo", "list_series", "read_dicom_series", "DEFAULT_MAX_BYTES"]

logger = logging.getLogger(__name__)

#: Largest float32 output (bytes) read without ``max_bytes=``; checked before any pixel is read.
DEFAULT_MAX_BYTES = 2 * 1024**3

#: Modalities :class:`Volume` knows; other DICOM modalities are kept in ``meta["modality"]`` only.
_VOLUME_MODALITIES = {"CT", "MR", "PT", "NM"}

#: Transfer syntaxes that are lossy by definition (JPEG baseline/extended, JPEG-LS near-lossless).
_LOSSY_TRANSFER_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81"}

# Tolerances (mm or unitless) for the stack checks; see read_dicom_series.
_COSINE_TOL = 1e-4  # orientation cosines equal across slices / unit length / orthogonal (x10)
_DUPLICATE_MM = 1e-3  # two positions closer than this (or 5 % of the median step) coincide
_GAP_FACTOR = 1.5  # a step above 1.5 x median spacing means missing slices
_UNIFORM_REL = 0.01  # steps within 1 % of the median are uniform (DS rounding)
_TILT_VOXELS = 0.1  # in-plane drift of the stack tolerated, in in-plane voxels

_UID_LIKE = re.compile(r"\d+(?:\.\d+){2,}")  # 2.25.<uuid> has three components


def _opaque(uid: str, n: int) -> str:
    """Short non-reversible label of a UID (hex digest prefix of its SHA-256)."""
    return hashlib.sha256(uid.encode("ascii", "replace")).hexdigest()[:n]


def _sanitize(text: Any, limit: int = 64) -> str:
    """Printable single-line text: control characters removed, whitespace collapsed, truncated."""
    s = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in str(text or ""))
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a DICOM folder.

    Attributes:
        opaque_id: first 8 hex digits of SHA-256(SeriesInstanceUID); what messages and
            ``--series`` use.
        modality: DICOM Modality (``"CT"``, ``"MR"``, ``"PT"``, ...) or ``None``.
        description: SeriesDescription, sanitized (printable, one line, at most 64 characters).
        n_slices: number of image frames (single-frame files count 1 each).
        number: SeriesNumber, or ``None``.
        uid: the SeriesInstanceUID, kept for selection only: never logged, printed or put in meta
            (it is left out of ``repr``).
        files: the image files of the series (left out of ``repr``).
    """

    opaque_id: str
    modality: str | None
    description: str
    n_slices: int
    number: int | None = None
    uid: str = field(default="", repr=False)
    files: tuple[Path, ...] = field(default=(), repr=False, compare=False)

    def __str__(self) -> str:
        number = f"#{self.number} " if self.number is not None else ""
        desc = f" '{self.description}'" if self.description else ""
        return f"{self.opaque_id}  {number}{self.modality or '?'}{desc}, {self.n_slices} slice(s)"


# --------------------------------------------------------------------------------------------
# reading files


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


# --------------------------------------------------------------------------------------------
# scanning a folder


@dataclass
class _Header:
    path: Path
    ds: Any  # pydicom Dataset without pixel data


@dataclass
class _Scan:
    root: Path
    series: list[SeriesInfo]
    headers: dict[str, list[_Header]]  # by SeriesInstanceUID
    n_files: int
    n_skipped: int  # not DICOM, or DICOM without an image
    n_unreadable: int  # DICOM (or looked like it) but failed to parse
    n_copies: int  # files repeating a SOPInstanceUID already seen (ignored)


def _file_label(path: Path, root: Path) -> str:
    """How messages name a file: the path the user gave, plus the relative name unless it is a UID."""
    if path == root:
        return str(root)
    rel = str(path.relative_to(root))
    if _UID_LIKE.search(rel):
        return f"a file in {root}"
    return str(root / rel)


def _scan(root: Path) -> _Scan:
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder (expected a DICOM folder or a .dcm file)")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    headers: dict[str, list[_Header]] = {}
    seen: set[str] = set()
    non_image_classes: list[str] = []  # MediaStorageSOPClassUID of DICOM files without an image
    n_skipped = n_unreadable = n_copies = 0
    for path in files:
        try:
            ds = _read(path, pixels=False, images_only=False)
        except Exception:  # noqa: BLE001 - pydicom raises many types; the text may hold values
            n_unreadable += 1
            logger.debug("could not parse %s as DICOM", _file_label(path, root))
            continue
        if ds is None:
            n_skipped += 1
            continue
        if not _looks_like_image(ds):
            non_image_classes.append(str(ds.file_meta.get("MediaStorageSOPClassUID", "") or ""))
            continue
        sop = str(ds.get("SOPInstanceUID", "") or "").strip()
        if sop and sop in seen:  # the same instance stored twice (copied folder, export + backup)
            n_copies += 1
            continue
        seen.add(sop)
        uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
        headers.setdefault(uid, []).append(_Header(path, ds))
    # a file of an image SOP class without Rows/Columns is a damaged image (cut inside its header)
    image_classes = {str(h.ds.get("SOPClassUID", "")) for hs in headers.values() for h in hs} - {""}
    damaged = sum(c in image_classes for c in non_image_classes)
    n_unreadable += damaged
    n_skipped += len(non_image_classes) - damaged
    if n_skipped or n_unreadable or n_copies:
        logger.info(
            "%s: skipped %d non-DICOM or non-image file(s), %d unreadable file(s) and %d extra "
            "copy(ies) of the same instance, of %d file(s)",
            root,
            n_skipped,
            n_unreadable,
            n_copies,
            len(files),
        )
    series = []
    for uid, hdrs in headers.items():
        first = hdrs[0].ds
        n_frames = 0
        for h in hdrs:
            try:
                n_frames += max(1, int(str(h.ds.get("NumberOfFrames", 1) or 1).strip()))
            except ValueError:
                n_frames += 1
        try:
            number = int(str(first.get("SeriesNumber", "")).strip())
        except ValueError:
            number = None
        modality = _text(first, "Modality")
        series.append(
            SeriesInfo(
                opaque_id=_opaque(uid, 8),
                modality=_sanitize(modality, 16) if modality else None,
                description=_sanitize(first.get("SeriesDescription", "")),
                n_slices=n_frames,
                number=number,
                uid=uid,
                files=tuple(h.path for h in hdrs),
            )
        )
    series.sort(key=lambda s: (s.number is None, s.number or 0, s.opaque_id))
    return _Scan(root, series, headers, len(files), n_skipped, n_unreadable, n_copies)


def list_series(folder: str | Path) -> list[SeriesInfo]:
    """List the image series in a DICOM folder (recursive) or file, in SeriesNumber order.

    Non-DICOM files and non-image DICOM objects are skipped (and counted in one log line).

    Args:
        folder: a folder scanned recursively, or one DICOM file.

    Returns:
        One :class:`SeriesInfo` per SeriesInstanceUID; empty when no DICOM image was found.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
    """
    with _quiet_pydicom():
        return _scan(Path(folder)).series


def _series_table(series: Sequence[SeriesInfo]) -> str:
    """The series found, on one line: ``733790eb (#1 MR 'T1 MPRAGE', 176 slice(s)); ...``."""
    return "; ".join(f"{s.opaque_id} ({str(s)[len(s.opaque_id):].strip()})" for s in series)


def _select(scan: _Scan, series: str | None) -> SeriesInfo:
    found = scan.series
    if series is None:
        if len(found) > 1:
            raise MultipleSeriesError(
                f"{scan.root} holds {len(found)} DICOM series; choose one with --series ID: {_series_table(found)}"
            )
        return found[0]
    key = str(series).strip()
    for s in found:
        if key.lower() == s.opaque_id or (key == s.uid and key):
            return s
    asked = "the given UID" if _UID_LIKE.search(key) else repr(_sanitize(key, 16))  # never echo a UID
    raise SeriesNotFoundError(
        f"{scan.root}: no series matches --series {asked} (expected one of these ids, or the "
        f"full SeriesInstanceUID): {_series_table(found)}"
    )


# --------------------------------------------------------------------------------------------
# geometry


@dataclass
class _Geometry:
    order: np.ndarray  # header indices in slice order
    positions: np.ndarray  # (N,) position of each sorted slice along the normal (mm)
    origin: np.ndarray  # IPP of the first sorted slice (LPS mm)
    col_dir: np.ndarray  # direction of increasing column index i (IOP[:3])
    row_dir: np.ndarray  # direction of increasing row index j (IOP[3:])
    normal: np.ndarray  # col_dir x row_dir
    col_spacing: float  # PixelSpacing[1]: distance between columns (along i)
    row_spacing: float  # PixelSpacing[0]: distance between rows (along j)
    slice_spacing: float
    uniform: bool  # False when resampling onto equidistant slices is needed

    def affine_lps(self, spacing: float | None = None) -> np.ndarray:
        a = np.eye(4)
        a[:3, 0] = self.col_dir * self.col_spacing
        a[:3, 1] = self.row_dir * self.row_spacing
        a[:3, 2] = self.normal * (self.slice_spacing if spacing is None else spacing)
        a[:3, 3] = self.origin
        return a


def _geometry(headers: Sequence[_Header], label: str, strict: bool) -> _Geometry:
    """Sort the slices along the normal and check the stack is a complete, regular box."""
    n = len(headers)
    iops = [_as_floats(h.ds, "ImageOrientationPatient", 6, label) for h in headers]
    ipps = [_as_floats(h.ds, "ImagePositionPatient", 3, label) for h in headers]
    pss = [_as_floats(h.ds, "PixelSpacing", 2, label) for h in headers]
    if any(v is None for v in iops) or any(v is None for v in ipps):
        raise AmbiguousGeometryError(
            f"{label}: {sum(v is None for v in ipps)} of {n} slice(s) lack ImagePositionPatient and "
            f"{sum(v is None for v in iops)} lack ImageOrientationPatient, so the slices cannot be "
            "placed in patient space; export the series from the scanner/PACS with full geometry"
        )
    if any(v is None for v in pss):
        raise AmbiguousGeometryError(
            f"{label}: PixelSpacing is missing, so the voxel size is unknown; export the series with "
            "PixelSpacing (ImagerPixelSpacing of projection images is not patient geometry)"
        )
    iop_arr, ipp_arr, ps_arr = np.array(iops), np.array(ipps), np.array(pss)
    if np.max(np.abs(iop_arr - iop_arr[0])) > _COSINE_TOL:
        raise UnsupportedInputError(
            f"{label}: the series mixes slice orientations (a localizer or a multi-plane scout?); "
            "medfuse needs one parallel stack. Choose the 3D series, or separate the orientations"
        )
    if np.max(np.abs(ps_arr - ps_arr[0])) > 1e-6 * max(1.0, float(np.max(ps_arr))):
        raise UnsupportedInputError(
            f"{label}: PixelSpacing differs between slices; medfuse needs one regular grid"
        )
    if np.any(ps_arr[0] <= 0):
        raise AmbiguousGeometryError(f"{label}: PixelSpacing must be positive, found {ps_arr[0].tolist()}")

    col_dir, row_dir = iop_arr[0, :3], iop_arr[0, 3:]
    norms = np.linalg.norm(col_dir), np.linalg.norm(row_dir)
    if (
        abs(norms[0] - 1) > 10 * _COSINE_TOL
        or abs(norms[1] - 1) > 10 * _COSINE_TOL
        or abs(col_dir @ row_dir) > 10 * _COSINE_TOL
    ):
        raise AmbiguousGeometryError(
            f"{label}: ImageOrientationPatient is not two orthogonal unit vectors "
            f"(lengths {norms[0]:.4f}, {norms[1]:.4f}, dot {float(col_dir @ row_dir):.4f})"
        )
    col_dir, row_dir = col_dir / norms[0], row_dir / norms[1]
    normal = np.cross(col_dir, row_dir)
    normal /= np.linalg.norm(normal)

    pos = ipp_arr @ normal
    order = np.argsort(pos, kind="stable")
    pos, ipp_sorted = pos[order], ipp_arr[order]
    in_plane = (ipp_sorted - ipp_sorted[0]) - np.outer(pos - pos[0], normal)
    min_ps = float(np.min(ps_arr[0]))
    common = dict(
        order=order,
        positions=pos,
        origin=ipp_sorted[0],
        col_dir=col_dir,
        row_dir=row_dir,
        normal=normal,
        col_spacing=float(ps_arr[0, 1]),  # PixelSpacing = (between rows, between columns)
        row_spacing=float(ps_arr[0, 0]),
    )

    if n == 1:
        thick = None
        for keyword in ("SpacingBetweenSlices", "SliceThickness"):
            v = _as_floats(headers[0].ds, keyword, 1, label)
            if v is not None and v[0] > 0:
                thick = float(v[0])
                break
        return _Geometry(**common, slice_spacing=thick if thick is not None else 1.0, uniform=True)

    steps = np.diff(pos)
    median = float(np.median(steps))
    dup = steps <= max(_DUPLICATE_MM, 0.05 * median)
    if np.any(dup):
        k = int(np.argmax(dup))
        repeats = _regular_repeats(pos, dup)
        if repeats is not None:
            n_pos, r = repeats
            temporal = _as_int(headers[0].ds, "NumberOfTemporalPositions", label)
            temporal_txt = f", NumberOfTemporalPositions {temporal}" if temporal and temporal > 1 else ""
            raise MissingSlicesError(
                f"{label}: the series is 4D, not one 3D volume: its {n} images share {n_pos} slice "
                f"positions, {r} at each (time points, echoes or repeated acquisitions{temporal_txt}). "
                "medfuse reads one 3D volume per series and will not stack them. Convert the series "
                "to a 4D NIfTI (e.g. with dcm2niix) and choose one volume with --frame N, or export a "
                "single time point or echo as its own series"
            )
        raise MissingSlicesError(
            f"{label}: {int(dup.sum())} slice(s) share their position with another slice (first at "
            f"{pos[k]:.3f} mm along the slice normal, sorted slices {k} and {k + 1}); the series holds "
            "several echoes, time points or repeated acquisitions. medfuse needs one 3D stack: "
            "export a single echo/phase, or split the series"
        )
    drift = float(np.max(np.linalg.norm(in_plane, axis=1)))
    if drift > _TILT_VOXELS * min_ps:
        extent = float(pos[-1] - pos[0])
        angle = float(np.degrees(np.arctan2(drift, extent)))
        tilt = _as_floats(headers[0].ds, "GantryDetectorTilt", 1, label)
        tilt_txt = f", GantryDetectorTilt {tilt[0]:g} deg" if tilt is not None else ""
        varies = float(np.max(np.abs(steps - median))) > _UNIFORM_REL * median
        spacing_txt = (
            f"; the slice spacing also varies from {steps.min():.2f} to {steps.max():.2f} mm"
            if varies
            else ""
        )
        raise UnsupportedInputError(
            f"{label}: the slice positions drift {drift:.2f} mm within the slice plane over the stack "
            f"(about {angle:.2f} deg{tilt_txt}): a gantry-tilted or sheared acquisition{spacing_txt}. "
            "medfuse does not correct tilt and will not stack the slices on an orthogonal grid (that "
            "would misplace the anatomy); resample it to an orthogonal grid first (e.g. the scanner's "
            "tilt correction, or dcm2niix, which writes a tilt-corrected '_Tilt' volume, '_Tilt_Eq' "
            "with equidistant slices) and pass that"
        )
    gaps = steps > _GAP_FACTOR * median
    if np.any(gaps):
        k = int(np.argmax(gaps))
        missing = int(round(steps[k] / median)) - 1
        raise MissingSlicesError(
            f"{label}: gap of {steps[k]:.3f} mm between sorted slices {k} and {k + 1} (median spacing "
            f"{median:.3f} mm; {int(gaps.sum())} gap(s)): about {max(missing, 1)} slice(s) missing. "
            "Re-export the complete series (a partial transfer or a deleted file?)"
        )
    uniform = bool(np.max(np.abs(steps - median)) <= _UNIFORM_REL * median)
    if not uniform and strict:
        raise MissingSlicesError(
            f"{label}: slice spacing varies from {steps.min():.3f} to {steps.max():.3f} mm (median "
            f"{median:.3f} mm, tolerance 1%); with strict=True medfuse refuses to resample it. Drop "
            "strict to resample onto equidistant slices, or re-export a uniform series"
        )
    spacing = float((pos[-1] - pos[0]) / (n - 1)) if uniform else median
    sbs = _as_floats(headers[order[0]].ds, "SpacingBetweenSlices", 1, label)
    if sbs is not None and abs(abs(sbs[0]) - spacing) > _UNIFORM_REL * spacing:
        logger.debug(
            "%s: SpacingBetweenSlices %.4g mm differs from the positions' %.4g mm; using the positions",
            label,
            sbs[0],
            spacing,
        )
    return _Geometry(**common, slice_spacing=spacing, uniform=uniform)


def _regular_repeats(pos: np.ndarray, dup: np.ndarray) -> tuple[int, int] | None:
    """``(positions, repeats)`` when the sorted slices are ``positions`` places, each exactly
    ``repeats > 1`` times (a 4D series: time points or echoes); ``None`` otherwise."""
    group = np.concatenate([[0], np.cumsum(~dup)])  # slice -> index of its distinct position
    counts = np.bincount(group)
    if len(counts) < 1 or counts.min() != counts.max() or counts[0] < 2:
        return None
    return int(len(counts)), int(counts[0])


def _resample_uniform(stack: np.ndarray, positions: np.ndarray, spacing: float) -> tuple[np.ndarray, float]:
    """Linearly resample ``stack`` (X, Y, N) at ``positions`` onto equidistant slices.

    The first and last slices keep their positions; the number of slices is the one the median
    spacing gives. Returns the new stack and its exact spacing.
    """
    extent = float(positions[-1] - positions[0])
    n_new = int(round(extent / spacing)) + 1
    step = extent / (n_new - 1)
    targets = positions[0] + step * np.arange(n_new)
    idx = np.clip(np.searchsorted(positions, targets, side="right") - 1, 0, len(positions) - 2)
    w = ((targets - positions[idx]) / (positions[idx + 1] - positions[idx])).astype(np.float32)
    out = stack[:, :, idx] * (1 - w) + stack[:, :, idx + 1] * w
    return out.astype(np.float32), step


# --------------------------------------------------------------------------------------------
# pixels


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


# --------------------------------------------------------------------------------------------
# metadata


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


def _private(ds, group: int, creator: str, offset: int):
    try:
        return ds.private_block(group, creator)[offset].value
    except (KeyError, ValueError):
        return None


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


# --------------------------------------------------------------------------------------------
# the reader


#: Modalities whose pixel values are not image intensities (dose needs DoseGridScaling, SEG is labels).
_NON_IMAGE_MODALITIES = {
    "RTDOSE": "an RT Dose grid",
    "SEG": "a segmentation",
    "RTIMAGE": "an RT portal image",
}


#: Storage SOP classes of the enhanced (functional-group) image IODs: their geometry and rescale
#: live in the per-frame/shared functional groups, not in the top-level attributes read here.
_ENHANCED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume
    "1.2.840.10008.5.1.4.1.1.12.1.1",  # Enhanced XA
    "1.2.840.10008.5.1.4.1.1.12.2.1",  # Enhanced XRF
    "1.2.840.10008.5.1.4.1.1.13.1.1",  # X-Ray 3D Angiographic
    "1.2.840.10008.5.1.4.1.1.13.1.2",  # X-Ray 3D Craniofacial
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis
    "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
}


def _is_enhanced(ds) -> bool:
    """True for a real enhanced multi-frame object, False for a classic single-frame image.

    An enhanced object has an enhanced SOP class or a non-empty PerFrameFunctionalGroupsSequence.
    Archives (ADNI, some PACS exports) add *empty* PerFrame/SharedFunctionalGroupsSequence
    elements to classic single-frame MR/CT/PET images; those are classic images and are read from
    their top-level attributes, as SimpleITK/GDCM reads them. (More than one frame is refused
    separately, enhanced or not.)
    """
    sop = str(ds.get("SOPClassUID", "") or "").strip()
    if not sop:
        sop = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "") or "").strip()
    if sop in _ENHANCED_SOP_CLASSES:
        return True
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    try:
        return per_frame is not None and len(per_frame) > 0
    except TypeError:  # not a sequence (damaged or non-standard): a value is there, so refuse
        return per_frame not in (None, "", b"")


def _check_single_frame_stack(headers: Sequence[_Header], label: str) -> None:
    """Refuse what this reader cannot turn into one greyscale stack of single-frame images."""
    modality = _text(headers[0].ds, "Modality")
    if modality in _NON_IMAGE_MODALITIES:
        raise UnsupportedInputError(
            f"{label}: the series is {_NON_IMAGE_MODALITIES[modality]} (Modality {modality}), not an "
            "image medfuse can fuse; choose the image series (CT, MR, PT, NM)"
        )
    for h in headers:
        ds = h.ds
        frames = _as_int(ds, "NumberOfFrames", label, default=1)
        it = ds.get("ImageType") or []
        image_type = [str(v).strip().upper() for v in ([it] if isinstance(it, str) else it)]
        mosaic_tag = h is headers[0] and _private(ds, 0x0019, "SIEMENS MR HEADER", 0x0A) is not None
        if "MOSAIC" in image_type or mosaic_tag:
            raise UnsupportedInputError(
                f"{label}: Siemens mosaic images (several slices tiled in one image) are not supported; "
                "convert the series with dcm2niix (a 4D NIfTI when it holds several time points: "
                "choose one volume with --frame N) or export it as single slices"
            )
        enhanced = _is_enhanced(ds)
        if enhanced or (frames is not None and frames > 1):
            kind = "an enhanced multi-frame object" if enhanced else "a multi-frame object"
            raise UnsupportedInputError(
                f"{label}: {kind} with {frames} frame(s) in one file; medfuse reads single-frame "
                "series only. Convert it (e.g. with dcm2niix, or dcm4che's emf2sf to legacy single "
                "frames) and pass the result"
            )
        samples = _as_int(ds, "SamplesPerPixel", label, default=1)
        if samples != 1:
            raise UnsupportedInputError(
                f"{label}: colour DICOM images ({samples} samples per pixel, "
                f"{_sanitize(ds.get('PhotometricInterpretation', ''), 16)}) are not a volume medfuse "
                "can fuse; export the greyscale series"
            )
    shapes = {(_as_int(h.ds, "Rows", label), _as_int(h.ds, "Columns", label)) for h in headers}
    if len(shapes) > 1:
        raise UnsupportedInputError(
            f"{label}: the slices have different matrix sizes {sorted(shapes)}; medfuse needs one regular grid"
        )


def read_dicom_series(
    path: str | Path,
    series: str | None = None,
    *,
    strict: bool = False,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> Volume:
    """Read one DICOM series into a float32 :class:`Volume` with an RAS affine.

    Args:
        path: a folder (scanned recursively; clutter skipped and counted) or one DICOM file (only
            that file is read).
        series: the series to read when the folder holds several: its opaque id (as listed by
            :func:`list_series` and by the :class:`MultipleSeriesError` message) or its full
            SeriesInstanceUID.
        strict: raise :class:`MissingSlicesError` for slightly non-uniform slice spacing instead
            of resampling it linearly onto equidistant slices.
        max_bytes: refuse (:class:`TooLargeError`) a series whose float32 array would exceed this
            many bytes, before reading any pixel; ``None`` for no limit.

    Returns:
        A :class:`Volume`: ``array`` float32 ``(X, Y, Z)`` = (column, row, slice) in real-world
        units (modality LUT / rescale applied per slice: HU for CT, the PET Units for PT);
        ``affine`` voxel-to-**RAS** (from LPS DICOM geometry); ``modality`` the DICOM Modality
        when it is MR, CT, PT or NM, else ``None``; ``meta`` with ``format`` ("dicom"),
        ``series_id`` (opaque), ``frame_of_reference`` (SHA-256[:16] of FrameOfReferenceUID or
        None; equal for a PET/CT pair acquired in one frame of reference), ``modality`` (the
        DICOM value), ``lossy`` (LossyImageCompression "01" or a lossy transfer syntax in any
        slice), ``n_slices`` (files read), ``slice_resampling`` (only when resampled) and, for
        PT, ``pet``: a dict of SUV inputs, ``None`` where absent: ``units``,
        ``decay_correction``, ``corrected_image`` (list of str), ``series_datetime``,
        ``acquisition_datetime`` (earliest over slices), ``radiopharmaceutical_start_datetime``
        (ISO ``YYYY-MM-DDTHH:MM:SS.ffffff`` strings, time zone dropped),
        ``radiopharmaceutical_start_time`` (the DICOM TM string), ``total_dose_bq``,
        ``half_life_s``, ``patient_weight_kg`` (floats), plus the vendor extras
        ``ge_private_scan_datetime`` (ISO), ``philips_suv_factor`` and
        ``philips_activity_concentration_factor`` (floats). A single file without patient
        geometry gives a 2D ``(rows, cols)`` slice with ``meta["geometry"] == "none"``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptFileError: no DICOM image found; truncated or undecodable pixel data; malformed
            geometry values.
        MultipleSeriesError: several series and ``series`` is None.
        SeriesNotFoundError: ``series`` matches none of the series found.
        MissingSlicesError: duplicate positions, a gap > 1.5x the median spacing, or (strict)
            non-uniform spacing.
        UnsupportedInputError: multi-frame/enhanced objects, mosaics, colour images, RT Dose and
            SEG objects, mixed orientations or matrix sizes, gantry tilt, compressed data without
            a working decoder.
        AmbiguousGeometryError: missing or invalid ImagePositionPatient/ImageOrientationPatient/
            PixelSpacing in a multi-slice series.
        TooLargeError: the output would exceed ``max_bytes``.

    Example:
        >>> vol = read_dicom_series("study/ct")  # doctest: +SKIP
        >>> vol.array.shape, vol.modality, vol.meta["series_id"]  # doctest: +SKIP
        ((512, 512, 120), 'CT', '3fa1c2d4')
    """
    with _quiet_pydicom():  # header values are converted lazily: keep pydicom quiet throughout
        return _read_series(Path(path), series, strict=strict, max_bytes=max_bytes)


def _read_series(root: Path, series: str | None, *, strict: bool, max_bytes: int | None) -> Volume:
    scan = _scan(root)
    if not scan.series:
        raise CorruptFileError(
            f"{root}: no DICOM image found ({scan.n_files} file(s) looked at: {scan.n_skipped} not "
            f"DICOM images, {scan.n_unreadable} unreadable). Expected a folder of DICOM slices or a "
            "DICOM image file"
        )
    info = _select(scan, series)
    headers = scan.headers[info.uid]
    label = f"{root} (series {info.opaque_id})" if root.is_dir() else str(root)
    _check_single_frame_stack(headers, label)
    first = headers[0].ds

    rows, cols = _as_int(first, "Rows", label), _as_int(first, "Columns", label)
    if not rows or not cols or rows <= 0 or cols <= 0:
        raise CorruptFileError(f"{label}: Rows/Columns must be positive, found {rows}x{cols}")
    n = len(headers)
    if max_bytes is not None and rows * cols * n * 4 > max_bytes:
        raise TooLargeError(
            f"{label}: {cols}x{rows}x{n} voxels need {rows * cols * n * 4 / 2**30:.2f} GiB as float32, "
            f"above the limit of {max_bytes / 2**30:.2f} GiB; raise max_bytes if this is intended"
        )

    if scan.n_unreadable:
        logger.warning(
            "%s: %d file(s) in the folder could not be parsed as DICOM and were skipped",
            root,
            scan.n_unreadable,
        )
    no_geometry = n == 1 and "ImagePositionPatient" not in first and "ImageOrientationPatient" not in first
    try:
        geom = None if no_geometry else _geometry(headers, label, strict)
    except MissingSlicesError as err:
        if not scan.n_unreadable:
            raise
        raise MissingSlicesError(
            f"{err} ({scan.n_unreadable} file(s) in the folder could not be parsed as DICOM: damaged "
            "slices of this series?)"
        ) from None
    order = np.arange(1) if geom is None else geom.order

    datasets = [headers[int(i)].ds for i in order]  # headers (no pixel data), in slice order
    buffer = np.empty((len(order), rows, cols), dtype=np.float32)  # slice-major: DICOM's own layout
    for out_k, idx in enumerate(order):
        h = headers[int(idx)]
        flabel = _file_label(h.path, root) if root.is_dir() else str(root)
        try:
            ds = _read(h.path, pixels=True)
        except Exception as err:  # noqa: BLE001 - wrapped: pydicom's text may quote values
            raise CorruptFileError(
                f"{flabel}: the file can no longer be read as DICOM (changed or damaged? {type(err).__name__})"
            ) from None
        if ds is None:
            raise CorruptFileError(f"{flabel}: the file changed while reading (no longer a DICOM image)")
        arr = _pixels(ds, flabel)
        if arr.shape != (rows, cols):
            raise CorruptFileError(
                f"{flabel}: decoded pixel data have shape {arr.shape}, expected Rows x Columns = {(rows, cols)}"
            )
        buffer[out_k] = _real_world(arr, ds, flabel)
        del ds, arr
    lossy = any(
        _text(d, "LossyImageCompression") == "01"
        or str(d.file_meta.TransferSyntaxUID) in _LOSSY_TRANSFER_SYNTAXES
        for d in datasets
    )

    dicom_modality = _text(first, "Modality")
    dicom_modality = _sanitize(dicom_modality, 16) if dicom_modality else None
    for_uid = _text(first, "FrameOfReferenceUID")
    meta: dict[str, Any] = {
        "format": "dicom",
        "series_id": info.opaque_id,
        "frame_of_reference": _opaque(for_uid, 16) if for_uid else None,
        "modality": dicom_modality,
        "lossy": bool(lossy),
        "n_slices": n,
    }
    if dicom_modality == "PT":
        meta["pet"] = _pet_meta(datasets)
    modality = dicom_modality if dicom_modality in _VOLUME_MODALITIES else None

    if geom is None:
        ps = _as_floats(first, "PixelSpacing", 2, label)
        ps = (1.0, 1.0) if ps is None else tuple(float(v) for v in ps)
        logger.warning(
            "%s: the image has no patient geometry; read as a 2D slice with an unoriented affine", label
        )
        meta["geometry"] = "none"
        return Volume(
            buffer[0], np.diag([ps[0], ps[1], 1.0, 1.0]), modality=modality, meta=meta, source=str(root)
        )

    # (X, Y, Z) = (column, row, slice) as a view: Fortran-contiguous, like nibabel's arrays, and
    # exactly the memory SimpleITK wants (to_sitk's ``array.T`` is C-contiguous, no copy)
    stack = buffer.transpose(2, 1, 0)
    spacing = geom.slice_spacing
    if not geom.uniform:
        steps = np.diff(geom.positions)
        stack, spacing = _resample_uniform(stack, geom.positions, geom.slice_spacing)
        meta["slice_resampling"] = {
            "method": "linear",
            "n_original": n,
            "n_resampled": int(stack.shape[2]),
            "spacing_mm": float(spacing),
            "original_spacing_mm": [float(steps.min()), float(steps.max())],
        }
        logger.warning(
            "%s: slice spacing varies from %.3f to %.3f mm; resampled %d slices linearly onto %d "
            "equidistant slices of %.3f mm (strict=True refuses instead)",
            label,
            steps.min(),
            steps.max(),
            n,
            stack.shape[2],
            spacing,
        )
    affine = lps_to_ras(geom.affine_lps(spacing))
    logger.debug(
        "%s: read %d slice(s) of %dx%d, %s", label, n, cols, rows, dicom_modality or "unknown modality"
    )
    return Volume(stack, affine, modality=modality, meta=meta, source=str(root))
