"""Partial field of view: where the moving scan covers the reference, and a seamless fused image where it does not.

A moving scan often covers less than the reference (a FLAIR of fewer slices, a brain-only PET against a
whole-head MRI). Outside its field of view there is nothing to fuse; the fused image must read as the
reference alone there, and the change must not show as an edge. :func:`field_of_view` finds the covered
part of the reference grid (through the registration transform, exactly as the moving scan was resampled)
and a weight that ramps from 0 at the moving scan's edge to 1 at ``feather_mm`` inside it;
:func:`feather_uncovered` blends the fused image towards the normalized reference with it.

The record (for the sidecar and the warning) says how much of the reference head is covered and where the
uncovered part lies (e.g. "6.4% of the reference head, inferior and anterior").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medfuse.volume import Volume

__all__ = ["FieldOfView", "field_of_view", "feather_uncovered", "FEATHER_MM", "WARN_BELOW"]

#: width (mm) of the ramp inside the moving scan's edge over which the fused image turns into the reference
FEATHER_MM = 6.0

#: coverage of the reference head below which a warning is logged (the uncovered part rounds to >= 0.1%)
WARN_BELOW = 0.999

#: RAS axis -> (word for +, word for -)
_SIDES = (("right", "left"), ("anterior", "posterior"), ("superior", "inferior"))


@dataclass
class FieldOfView:
    """Where the moving scan covers the reference grid.

    Attributes:
        weight: float32 on the reference grid: 1 inside the moving scan at least ``feather_mm`` from its edge,
            falling to 0 at the edge, 0 outside; None when the whole grid is covered.
        head_coverage: fraction of the reference head (its head mask) inside the moving scan (1.0: all).
        record: JSON-safe summary for the sidecar.
    """

    weight: np.ndarray | None
    head_coverage: float
    record: dict[str, Any] = field(default_factory=dict)

    def warning(self, moving_name: str) -> str | None:
        """One line for the log when part of the reference head is not covered (None when all of it is)."""
        if self.head_coverage >= WARN_BELOW:
            return None
        return (f"{moving_name} covers {100 * self.head_coverage:.1f}% of the reference head; the other "
                f"{self.record['uncovered'].split(' of the reference head')[0]} "
                f"({self.record['uncovered'].partition(', ')[2] or 'at its edge'}) shows the reference alone, blended "
                f"over {self.record['feather_mm']:g} mm inside the moving scan's edge; give a moving scan that covers "
                "the whole head to fuse it all")


def _where(reference: Volume, head: np.ndarray, uncovered: np.ndarray) -> str:
    """Where the uncovered part of the head lies, in patient directions (e.g. "inferior and anterior")."""
    from medfuse.registration.checks import head_centroid

    part = head & uncovered
    if not part.any():
        return ""
    offset = head_centroid(reference, part) - head_centroid(reference, head)
    if not np.any(np.abs(offset) > 1.0):
        return "around the edge of the head"
    words = [(abs(offset[a]), _SIDES[a][0 if offset[a] > 0 else 1]) for a in range(3)
             if abs(offset[a]) >= 0.5 * np.abs(offset).max()]
    return " and ".join(word for _, word in sorted(words, reverse=True))


#: how far (moving voxels) inside the moving scan's edge every reference corner must map for the shortcut; nearer
#: the edge, the covered voxels are found by resampling, exactly as the moving scan was
_CORNER_MARGIN = 1e-3


def _corners_inside(reference: Volume, moving: Volume, transform) -> bool:
    """True when a linear ``transform`` (None: identity) maps every reference voxel centre inside the moving grid.

    The reference's voxel centres lie in the convex hull of its 8 corner centres, a linear map keeps that, and
    the moving scan's box is convex: if the 8 corners map inside (by :data:`_CORNER_MARGIN`), so does every voxel
    centre, and the nearest-neighbour resampling of a volume of ones would be 1 everywhere. False when unsure
    (a non-linear transform, a corner near the edge): then the caller resamples.
    """
    if transform is not None and not transform.IsLinear():
        return False
    from medfuse.registration.transform import matrix_ras

    to_moving = np.eye(4) if transform is None else matrix_ras(transform)  # reference RAS -> moving RAS
    index_map = np.linalg.inv(np.asarray(moving.affine, dtype=np.float64)) @ to_moving @ np.asarray(reference.affine)
    last = np.asarray(reference.shape[:3], dtype=np.float64) - 1.0
    corners = np.array([[i, j, k, 1.0] for i in (0.0, last[0]) for j in (0.0, last[1]) for k in (0.0, last[2])])
    p = (corners @ index_map.T)[:, :3]
    size = np.asarray(moving.shape[:3], dtype=np.float64)
    return bool(np.all(p >= -0.5 + _CORNER_MARGIN) and np.all(p <= size - 0.5 - _CORNER_MARGIN))


def _full_coverage() -> FieldOfView:
    return FieldOfView(None, 1.0, {"head_coverage": 1.0, "grid_coverage": 1.0,
                                   "uncovered": "none: the moving scan covers the whole reference grid"})


def field_of_view(reference: Volume, moving: Volume, transform=None, *, feather_mm: float = FEATHER_MM,
                  head: np.ndarray | None = None) -> FieldOfView:
    """The part of ``reference``'s grid that ``moving`` covers, and the feather weight at its edge.

    Args:
        reference: the 3D grid of the fused image (RAS affine).
        moving: the moving scan on its own grid (only its shape and affine are used).
        transform: the SimpleITK transform the moving scan was resampled with (reference LPS -> moving LPS);
            None: identity (world coordinates as they are).
        feather_mm: width of the ramp inside the moving scan's edge.
        head: the reference head mask (default: :func:`medfuse.intensity.mask.head_mask` of ``reference``).

    Returns:
        A :class:`FieldOfView`.
    """
    from medfuse.distance import distance_mm
    from medfuse.registration.resample import resample_to_reference

    if _corners_inside(reference, moving, transform):  # the common case, without resampling a volume of ones
        return _full_coverage()
    ones = Volume(np.ones(moving.shape, dtype=np.float32), moving.affine, moving.modality)
    covered = resample_to_reference(ones, reference, transform, "nearest", default_value=0.0).array > 0.5
    del ones
    if covered.all():
        return _full_coverage()
    if head is None:
        from medfuse.intensity.mask import head_mask

        try:
            head = head_mask(reference)
        except Exception:  # the coverage figure never fails on the mask
            head = np.ones(reference.shape, dtype=bool)
    if not head.any():
        head = np.ones(reference.shape, dtype=bool)
    head_coverage = float(np.count_nonzero(head & covered) / np.count_nonzero(head))
    record: dict[str, Any] = {"head_coverage": round(head_coverage, 4),
                              "grid_coverage": round(float(covered.mean()), 4)}
    weight = distance_mm(covered, reference.spacing)  # float32, in place from here on
    weight /= np.float32(feather_mm)
    np.clip(weight, 0.0, 1.0, out=weight)
    where = _where(reference, head, ~covered)
    record.update(
        uncovered=(f"{100 * (1 - head_coverage):.1f}% of the reference head" + (f", {where}" if where else "")
                   if head_coverage < 1 else "only background (air) outside the head"),
        uncovered_shows="the reference alone",
        feather_mm=float(feather_mm),
        rule=f"the fused image turns into the normalized reference over {feather_mm:g} mm inside the moving "
             "scan's edge (linear in the distance to the edge); no edge where the moving scan ends",
    )
    return FieldOfView(weight, head_coverage, record)


def feather_uncovered(fused: np.ndarray, reference01: np.ndarray, weight: np.ndarray | None,
                      rgb: np.ndarray | None = None, *, in_place: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Blend the fused image into the reference where the moving scan ends: ``w * fused + (1 - w) * reference``.

    Args:
        fused: the fused luminance in [0, 1], ``(X, Y, Z)``.
        reference01: the normalized reference in [0, 1], same shape.
        weight: from :func:`field_of_view` (None: nothing to do).
        rgb: the fused colour volume ``(X, Y, Z, 3)`` on 0..255 (any dtype; returned in the same dtype), whose
            uncovered part becomes the reference in grey.

        in_place: blend into ``fused`` (float32) and ``rgb`` themselves instead of copies (the pipeline owns
            both: no second ~130 MB copy of a head volume).

    Returns:
        ``(fused, rgb)`` blended (new arrays unless ``in_place``).
    """
    if weight is None:
        return fused, rgb
    band = np.asarray(weight) < 1.0  # only the ramp and the uncovered part change (any memory order)
    w = np.asarray(weight, dtype=np.float32)[band]
    ref = np.asarray(reference01, dtype=np.float32)[band]
    own = in_place and isinstance(fused, np.ndarray) and fused.dtype == np.float32 and fused.flags.writeable
    out = fused if own else np.array(fused, dtype=np.float32)
    out[band] = w * out[band] + (1.0 - w) * ref
    if rgb is not None:
        if not (in_place and isinstance(rgb, np.ndarray) and rgb.flags.writeable):
            rgb = np.array(rgb)
        blended = w[:, None] * rgb[band].astype(np.float32) + (1.0 - w[:, None]) * (255.0 * ref)[:, None]
        if np.issubdtype(rgb.dtype, np.integer):
            blended = np.clip(np.rint(blended), 0, 255)
        rgb[band] = blended.astype(rgb.dtype)
    return out, rgb
