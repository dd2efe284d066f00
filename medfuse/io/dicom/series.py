"""Series discovery: scanning a folder, grouping files by series, choosing one, refusing objects that are not a
stack of single-frame images."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medfuse.errors import OPTION, MultipleSeriesError, SeriesNotFoundError, TooLargeError, UnsupportedInputError
from medfuse.io.naming import log_name
from medfuse.io.dicom.files import _UID_LIKE, _as_int, _looks_like_image, _opaque, _private, _quiet_pydicom, _read, _sanitize, _text

__all__ = ["SeriesInfo", "list_series"]

logger = logging.getLogger(__name__)


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


@dataclass
class _Header:
    path: Path
    ds: Any  # pydicom Dataset without pixel data (for a frame of an enhanced object: its pseudo-header)
    frame: int | None = None  # index of the frame in an enhanced multi-frame file, None for single-frame files


@dataclass
class _Scan:
    root: Path
    series: list[SeriesInfo]
    headers: dict[str, list[_Header]]  # by SeriesInstanceUID
    n_files: int
    n_skipped: int  # not DICOM, or DICOM without an image
    n_unreadable: int  # DICOM (or looked like it) but failed to parse
    n_copies: int  # files repeating a SOPInstanceUID already seen (ignored)


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
        except TooLargeError:
            raise
        except Exception:  # noqa: BLE001 - pydicom raises many types; the text may hold values
            n_unreadable += 1
            logger.debug("could not parse %s as DICOM", log_name(path))
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
            log_name(root),
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
    """The series found, on one line: ``733790eb (#1 MR 'T1 MPRAGE', 176 slice(s)); ...``.

    Under a role (pipeline, CLI, batch: :func:`medfuse.io.naming.private`) the SeriesDescription is left
    out: it is free text typed at the scanner and may hold identifiers; id, number, modality and count remain.
    """
    from medfuse.io.naming import private

    if private():
        return "; ".join(
            f"{s.opaque_id} ({'#%d ' % s.number if s.number is not None else ''}{s.modality or '?'}, "
            f"{s.n_slices} slice(s))"
            for s in series
        )
    return "; ".join(f"{s.opaque_id} ({str(s)[len(s.opaque_id):].strip()})" for s in series)


def _select(scan: _Scan, series: str | None) -> SeriesInfo:
    found = scan.series
    if series is None:
        if len(found) > 1:
            raise MultipleSeriesError(
                f"{scan.root} holds {len(found)} DICOM series; choose one with {OPTION}: {_series_table(found)}",
                option="series",
            )
        return found[0]
    key = str(series).strip()
    for s in found:
        if key.lower() == s.opaque_id or (key == s.uid and key):
            return s
    asked = "the given UID" if _UID_LIKE.search(key) else repr(_sanitize(key, 16))  # never echo a UID
    raise SeriesNotFoundError(
        f"{scan.root}: no series matches {asked} ({OPTION}; expected one of these ids, or the "
        f"full SeriesInstanceUID): {_series_table(found)}", option="series",
    )


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


#: functional group macros that place a frame in patient space (PS3.3 C.7.6.16.2.2-3, C.7.6.16.2.1)
_GEOMETRY_GROUPS = ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence")


def _sop_class(ds) -> str:
    sop = str(ds.get("SOPClassUID", "") or "").strip()
    if not sop:
        sop = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "") or "").strip()
    return sop


def _groups_hold_geometry(ds) -> bool:
    """True when an item of the per-frame or shared functional groups holds a geometry macro with content."""
    for keyword in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = ds.get(keyword)
        try:
            items = list(groups or ())
        except TypeError:  # not a sequence (damaged or non-standard)
            continue
        for item in items:
            try:
                if any(macro in item and len(item[macro].value or ()) and len(item[macro].value[0])
                       for macro in _GEOMETRY_GROUPS):
                    return True
            except (TypeError, AttributeError, IndexError):
                continue
    return False


def _is_enhanced(ds) -> bool:
    """True when the functional groups place the frames (an enhanced object), False for a classic image.

    The SOP class decides: an enhanced SOP class (:data:`_ENHANCED_SOP_CLASSES`) is enhanced; any
    other image whose top-level ImagePositionPatient and ImageOrientationPatient place it (a classic MR,
    CT, PET... image) is read from them, whatever functional-group sequences it also carries. Archives
    add such sequences to classic images: ADNI's GE MP-RAGE (MR Image Storage) carries a
    PerFrameFunctionalGroupsSequence with one *empty* item and no SharedFunctionalGroupsSequence,
    other exports empty sequences; dcm2niix and SimpleITK/GDCM read them as the classic images
    they are. Functional groups are used only where they hold the geometry: an image without a
    top-level position and orientation whose per-frame or shared groups hold a plane position,
    orientation or pixel measures. (More than one frame is refused separately, enhanced or not.)
    """
    if _sop_class(ds) in _ENHANCED_SOP_CLASSES:
        return True
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        return False
    return _groups_hold_geometry(ds)


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
                f"choose one volume with {OPTION}) or export it as single slices", option="frame",
            )
        enhanced = h.frame is None and _is_enhanced(ds)  # expanded frames (h.frame set) were read already
        if enhanced or (h.frame is None and frames is not None and frames > 1):
            kind = "an enhanced multi-frame object" if enhanced else "a multi-frame object"
            raise UnsupportedInputError(
                f"{label}: {kind} with {frames} frame(s) in one file; medfuse reads single-frame "
                "series only. Convert it (e.g. with dcm2niix, or dcm4che's emf2sf to legacy single "
                "frames) and pass the result"
            )
        samples = _as_int(ds, "SamplesPerPixel", label, default=1)
        photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        if samples == 3 and photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"):
            if _as_int(headers[0].ds, "SamplesPerPixel", label, default=1) != 3:
                raise UnsupportedInputError(f"{label}: the series mixes colour and greyscale images")
            continue  # a colour (RGB) series: read as a colour volume (pydicom converts YBR to RGB)
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
