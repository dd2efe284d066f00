"""Stack geometry: slice order along the plane normal, spacing, gaps, duplicates, tilt; the LPS affine."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medfuse.errors import OPTION, AmbiguousGeometryError, MissingSlicesError, UnsupportedInputError
from medfuse.io.dicom.files import _as_floats, _as_int
from medfuse.io.dicom.series import _Header

__all__ = []

logger = logging.getLogger(__name__)


# Tolerances (mm or unitless) for the stack checks; see read_dicom_series.
_COSINE_TOL = 1e-4  # orientation cosines equal across slices / unit length / orthogonal (x10)


_DUPLICATE_MM = 1e-3  # two positions closer than this (or 5 % of the median step) coincide


_GAP_FACTOR = 1.5  # a step above 1.5 x median spacing means missing slices


_UNIFORM_REL = 0.01  # steps within 1 % of the median are uniform (DS rounding)


_TILT_VOXELS = 0.1  # in-plane drift of the stack tolerated, in in-plane voxels


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
                f"to a 4D NIfTI (e.g. with dcm2niix) and choose one volume with {OPTION}, or export a "
                "single time point or echo as its own series", option="frame",
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
            "SpacingBetweenSlices %.4g mm differs from the slice positions' %.4g mm; using the positions",
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
