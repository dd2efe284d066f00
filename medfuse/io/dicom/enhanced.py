"""Enhanced multi-frame objects (Enhanced MR/CT/PET, Legacy Converted Enhanced): one pseudo-header per frame.

An enhanced object stores all slices of a series in one file and describes each frame in the functional
groups: the **per-frame** item ``k`` of ``PerFrameFunctionalGroupsSequence`` and, for what every frame shares,
the one item of ``SharedFunctionalGroupsSequence`` (a per-frame value overrides a shared one, PS3.3
C.7.6.16). :func:`_expand_enhanced` turns frame ``k`` into a classic-looking header: the top-level
attributes plus, from its functional groups,

- ``PlanePositionSequence`` -> ImagePositionPatient,
- ``PlaneOrientationSequence`` -> ImageOrientationPatient,
- ``PixelMeasuresSequence`` -> PixelSpacing, SliceThickness, SpacingBetweenSlices,
- ``PixelValueTransformationSequence`` -> RescaleSlope, RescaleIntercept, RescaleType,

so the rest of the reader (sorting along the slice normal, gap/duplicate/tilt checks, per-frame rescale)
treats the frames exactly as single-frame slices. What the groups do not hold (orientation, pixel spacing;
the position of a one-frame object) is taken from the top level. Which objects are enhanced is
decided by :func:`~medfuse.io.dicom.series._is_enhanced` (the SOP class first, never the mere presence of a
functional-group sequence). An enhanced object whose frames lack a plane position,
orientation or pixel spacing, and non-image objects (segmentations, parametric maps), are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from medfuse.errors import UnsupportedInputError
from medfuse.io.dicom.files import _as_int, _text
from medfuse.io.dicom.series import _NON_IMAGE_MODALITIES, _Header, _is_enhanced

__all__ = []

#: enhanced SOP classes that are not images of intensities (labels, parametric maps): refused as before
_NOT_IMAGES = {"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.30"}

#: top-level elements not copied into a frame's pseudo-header
_SKIP = {"PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence", "NumberOfFrames", "PixelData"}

#: (functional group macro, attribute) read for each frame
_FROM_GROUPS = (
    ("PlanePositionSequence", "ImagePositionPatient"),
    ("PlaneOrientationSequence", "ImageOrientationPatient"),
    ("PixelMeasuresSequence", "PixelSpacing"),
    ("PixelMeasuresSequence", "SliceThickness"),
    ("PixelMeasuresSequence", "SpacingBetweenSlices"),
    ("PixelValueTransformationSequence", "RescaleSlope"),
    ("PixelValueTransformationSequence", "RescaleIntercept"),
    ("PixelValueTransformationSequence", "RescaleType"),
)

#: geometry a frame takes from the top level when its functional groups do not hold it (what every frame
#: shares; a position only for a one-frame object, as two frames cannot share one). Other top-level
#: attributes (rescale...) are copied into every frame anyway, and a functional-group value overrides them.
_TOP_LEVEL_FALLBACK = ("ImageOrientationPatient", "PixelSpacing")


def _group_value(groups, macro: str, keyword: str):
    """The value of ``keyword`` in functional group ``macro``: the per-frame item first, then the shared one."""
    for group in groups:
        if group is None or macro not in group:
            continue
        seq = group[macro].value
        if seq and keyword in seq[0] and seq[0][keyword].value not in (None, ""):
            return seq[0][keyword].value
    return None


def _expand_enhanced(headers: Sequence[_Header], label: str) -> list[_Header]:
    """Replace each enhanced multi-frame header by one pseudo-header per frame (classic headers unchanged)."""
    from pydicom.dataset import Dataset

    out: list[_Header] = []
    for h in headers:
        ds = h.ds
        sop = str(ds.get("SOPClassUID", "") or "").strip()
        if (
            h.frame is not None
            or not _is_enhanced(ds)
            or _text(ds, "Modality") in _NON_IMAGE_MODALITIES
            or sop in _NOT_IMAGES
        ):
            out.append(h)  # classic, or refused with its own message by _check_single_frame_stack
            continue
        per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
        n_frames = _as_int(ds, "NumberOfFrames", label, default=1) or 1
        if not per_frame or len(per_frame) != n_frames:
            raise UnsupportedInputError(
                f"{label}: an enhanced multi-frame object with {n_frames} frame(s) in one file whose "
                f"PerFrameFunctionalGroupsSequence holds {len(per_frame)} item(s), so its frames cannot be placed "
                "in patient space (the file was stripped or is damaged). Convert it (e.g. with dcm2niix, or "
                "dcm4che's emf2sf to legacy single frames) from the original export and pass the result"
            )
        shared_seq = ds.get("SharedFunctionalGroupsSequence") or []
        shared = shared_seq[0] if len(shared_seq) else None
        top = Dataset()
        for elem in ds:
            if elem.keyword not in _SKIP:
                top.add(elem)
        for k, item in enumerate(per_frame):
            values = {kw: _group_value((item, shared), macro, kw) for macro, kw in _FROM_GROUPS}
            for kw in _TOP_LEVEL_FALLBACK if n_frames > 1 else _TOP_LEVEL_FALLBACK + ("ImagePositionPatient",):
                if values[kw] is None and kw in ds and ds[kw].value not in (None, ""):
                    values[kw] = ds[kw].value  # the groups do not hold it: the top level does, for every frame
            missing = [kw for kw in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
                       if values[kw] is None]
            if missing:
                raise UnsupportedInputError(
                    f"{label}: an enhanced multi-frame object with {n_frames} frame(s) whose frame {k + 1} has no "
                    f"{', '.join(missing)} in its per-frame or shared functional groups, so it cannot be placed "
                    "in patient space. Convert it (e.g. with dcm2niix, or dcm4che's emf2sf to legacy single "
                    "frames) and pass the result"
                )
            frame = Dataset()
            frame.file_meta = ds.file_meta
            for elem in top:
                frame.add(elem)
            for kw, value in values.items():
                if value is not None:
                    setattr(frame, kw, value)
            out.append(_Header(h.path, frame, frame=k))
    return out
