"""The image container that carries geometry with the pixels through every step.

A :class:`Volume` holds a float32 array, a 4x4 voxel-to-world affine in **RAS** millimetres
(the nibabel / MONAI / Slicer convention), the modality and a small dict of non-identifying
metadata. 3D arrays are indexed ``(i, j, k)`` exactly as nibabel indexes them; 2D slices are
``(row, col)`` with the affine acting on ``(row, col, 0)``.

Colour images keep their RGB in ``rgb`` (float32 on 0..255: ``(H, W, 3)`` for colour slices such as
AANLIB pseudo-colour PET/SPECT, ``(X, Y, Z, 3)`` for colour volumes such as a fused PET/SPECT) and
their luminance in ``array`` (Y of YCbCr), so every step downstream works on one intensity channel
and :mod:`medfuse.color` can put the chroma back after fusion.

ITK, SimpleITK and DICOM describe the same world in **LPS**; :func:`ras_to_lps` /
:func:`lps_to_ras` convert explicitly (x and y change sign) and nothing else in medfuse flips axes.

2D fusion methods see a 3D volume in **axial slices of the canonical orientation**
:data:`AXIAL_SLICE_AXES` = ``("P", "L", "S")``, whatever the storage order of the reference scan:
:func:`to_axial` permutes and flips the array axes exactly (no interpolation) so that ``[:, :, k]``
is an axial slice with rows running anterior -> posterior and columns patient right -> left, and
:func:`from_axial` undoes it. That is how the 2D training slices look: the Harvard AANLIB PNGs
are shown in the radiological convention (top of the image anterior, image left = patient right),
and :func:`medfuse.io.read_slice` keeps a PNG's ``(row, col)`` exactly as stored (its identity
affine is a placeholder, not a physical orientation). :func:`slice_axis` and
:func:`orientation_code` say which stored axis the slices were taken across.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "Volume",
    "LPS_RAS_FLIP",
    "ras_to_lps",
    "lps_to_ras",
    "affine_from_lps",
    "lps_from_affine",
    "AXIAL_SLICE_AXES",
    "axial_reorientation",
    "to_axial",
    "from_axial",
    "axial_affine",
    "slice_axis",
    "orientation_code",
    "all_finite",
]

#: diag(-1, -1, 1, 1): maps RAS world coordinates to LPS and back (its own inverse).
LPS_RAS_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def all_finite(a: np.ndarray) -> bool:
    """True when every value of ``a`` is finite, without a bool array of its size: NaN propagates through ``min`` and
    ``max``, and an infinity is one of them. Integer arrays are finite; an empty one is."""
    a = np.asarray(a)
    if a.size == 0 or not np.issubdtype(a.dtype, np.inexact):
        return True
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def ras_to_lps(affine_or_points: np.ndarray) -> np.ndarray:
    """Convert a 4x4 voxel-to-RAS affine to voxel-to-LPS, or (N, 3) RAS points to LPS."""
    a = np.asarray(affine_or_points, dtype=np.float64)
    if a.shape == (4, 4):
        return LPS_RAS_FLIP @ a
    return a * np.array([-1.0, -1.0, 1.0])


lps_to_ras = ras_to_lps  # the flip is its own inverse; the two names say which way the data goes


def affine_from_lps(origin, spacing, direction) -> np.ndarray:
    """Build a voxel-to-RAS affine from ITK-style LPS ``origin``, ``spacing`` and ``direction``.

    Args:
        origin: world position (LPS mm) of voxel (0, 0, 0); 2 or 3 values.
        spacing: voxel size (mm) along each index axis.
        direction: row-major direction cosines (``sitk.Image.GetDirection()``), 4 or 9 values.

    Returns:
        A (4, 4) float64 affine mapping ``(i, j, k, 1)`` to RAS millimetres.
    """
    n = len(spacing)
    d = np.asarray(direction, dtype=np.float64).reshape(n, n)
    lps = np.eye(4)
    lps[:n, :n] = d @ np.diag(np.asarray(spacing, dtype=np.float64))
    lps[:n, 3] = np.asarray(origin, dtype=np.float64)
    return lps_to_ras(lps)


def lps_from_affine(affine: np.ndarray, ndim: int = 3) -> tuple[tuple, tuple, tuple]:
    """Split a voxel-to-RAS affine into ITK-style LPS ``(origin, spacing, direction)``.

    The inverse of :func:`affine_from_lps`. ``ndim=2`` returns the in-plane 2x2 part.
    """
    lps = ras_to_lps(np.asarray(affine, dtype=np.float64))
    m = lps[:ndim, :ndim]
    spacing = np.linalg.norm(m, axis=0)
    direction = m / spacing
    return tuple(lps[:ndim, 3]), tuple(spacing), tuple(direction.ravel())


#: axis codes (nibabel, RAS+) of the canonical slice stack: ``[row, col, k]`` with rows anterior ->
#: posterior, columns patient right -> left (radiological display, like the AANLIB training
#: PNGs: top = anterior, image left = patient right) and ``k`` the axial slices, inferior -> superior.
AXIAL_SLICE_AXES = ("P", "L", "S")


def _io_orientation(affine: np.ndarray) -> np.ndarray:
    """nibabel's ``io_orientation`` of a 4x4 affine: per array axis, (world axis, +1/-1)."""
    from nibabel.orientations import io_orientation

    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {a.shape}")
    ornt = io_orientation(a)
    if not np.all(np.isfinite(ornt)):
        from medfuse.errors import UnsupportedInputError

        raise UnsupportedInputError(
            f"the affine {a[:3, :3].round(4).tolist()} does not define an orientation for every axis (zero or "
            "degenerate columns); fix the scan's geometry header"
        )
    return ornt


def axial_reorientation(affine: np.ndarray) -> np.ndarray:
    """The exact axis permutation and flips taking a 3D array stored with ``affine`` to :data:`AXIAL_SLICE_AXES`.

    Each array axis is matched to the world axis closest to it (nibabel ``io_orientation``: an
    oblique scan counts as the plane it is closest to; nothing is resampled).

    Returns:
        (3, 2) nibabel orientation transform (``ornt_transform``): row ``i`` says to which canonical
        axis stored axis ``i`` goes and whether it is flipped (-1); apply it with :func:`to_axial`.
    """
    from nibabel.orientations import axcodes2ornt, ornt_transform

    return ornt_transform(_io_orientation(affine), axcodes2ornt(AXIAL_SLICE_AXES))


def to_axial(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """View ``array`` (stored with ``affine``, first three axes spatial) in the canonical axial order.

    ``to_axial(array, affine)[:, :, k]`` is the k-th axial slice, rows anterior -> posterior,
    columns patient right -> left (:data:`AXIAL_SLICE_AXES`). Only axes are permuted and flipped
    (a view where numpy allows), so :func:`from_axial` restores the array exactly.
    """
    from nibabel.orientations import apply_orientation

    return apply_orientation(np.asarray(array), axial_reorientation(affine))


def from_axial(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Undo :func:`to_axial`: put a canonical-order array back in the storage order of ``affine``."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, ornt_transform

    back = ornt_transform(axcodes2ornt(AXIAL_SLICE_AXES), _io_orientation(affine))
    return apply_orientation(np.asarray(array), back)


def axial_affine(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The voxel-to-RAS affine of ``to_axial(array, affine)`` for an array of ``shape`` (same world)."""
    from nibabel.orientations import inv_ornt_aff

    return np.asarray(affine, dtype=np.float64) @ inv_ornt_aff(axial_reorientation(affine), tuple(shape)[:3])


def slice_axis(affine: np.ndarray) -> int:
    """The stored array axis (0, 1 or 2) closest to superior-inferior: 2D methods fuse slices across it.

    For a volume stored with ``affine`` the axial slices 2D networks and 2D classical methods see
    are ``np.take(array, k, axis=slice_axis(affine))`` (in-plane reoriented, :func:`to_axial`).
    """
    return int(np.flatnonzero(_io_orientation(affine)[:, 0] == 2)[0])


def orientation_code(affine: np.ndarray) -> str:
    """nibabel axis codes of the storage order, e.g. ``"RAS"``, ``"LPS"``, ``"PIR"`` (sagittal MPRAGE)."""
    from nibabel.orientations import ornt2axcodes

    return "".join(ornt2axcodes(_io_orientation(affine)))


@dataclass
class Volume:
    """An image with its geometry.

    Attributes:
        array: float32 intensities, spatial only: ``(X, Y, Z)`` for volumes, ``(H, W)`` for slices.
        affine: (4, 4) float64 voxel-to-world affine, RAS millimetres.
        modality: ``"MR"``, ``"CT"``, ``"PT"``, ``"NM"`` (SPECT), or ``None`` when unknown.
        meta: non-identifying metadata (source format, PET SUV inputs, opaque series id, ...).
        source: the path it was read from (for messages only; may be empty).
        rgb: for colour images, ``array.shape + (3,)`` float32 RGB on 0..255 (``(H, W, 3)`` slices,
            ``(X, Y, Z, 3)`` volumes); ``array`` is then its luminance (Y, on the scale the producer
            documents: 0..255 for slices read from files, [0, 1] for fused volumes).
    """

    array: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    modality: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    rgb: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array, dtype=np.float32)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got shape {self.affine.shape}")
        if self.array.ndim not in (2, 3):
            raise ValueError(f"Volume array must be 2D or 3D (spatial only), got shape {self.array.shape}")
        if self.rgb is not None:
            self.rgb = np.asarray(self.rgb, dtype=np.float32)
            if self.rgb.shape != (*self.array.shape, 3):
                raise ValueError(f"Volume rgb must have shape {(*self.array.shape, 3)} (array shape + 3 channels), "
                                 f"got {self.rgb.shape}")

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return self.array.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def is_color(self) -> bool:
        return self.rgb is not None

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along each array axis."""
        return np.linalg.norm(self.affine[:3, : self.ndim], axis=0)

    @property
    def name(self) -> str:
        """A short label for messages: the file name the user gave, or the modality."""
        if self.source:
            return str(self.source)
        return self.modality or "image"

    def with_array(self, array: np.ndarray, **changes: Any) -> "Volume":
        """A copy on the same grid with new intensities (colour is dropped unless given)."""
        changes.setdefault("rgb", None)
        return replace(self, array=array, meta=dict(self.meta), **changes)

    def same_grid(self, other: "Volume", atol: float = 1e-4) -> bool:
        """True when both have the same shape and affine (within ``atol`` mm)."""
        return self.shape == other.shape and np.allclose(self.affine, other.affine, atol=atol)

    def world_coordinates(self, index: np.ndarray) -> np.ndarray:
        """RAS millimetres of (N, ndim) voxel indices."""
        idx = np.atleast_2d(np.asarray(index, dtype=np.float64))
        if idx.shape[1] == 2:
            idx = np.c_[idx, np.zeros(len(idx))]
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]
