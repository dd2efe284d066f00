"""The image container that carries geometry with the pixels through every step.

A :class:`Volume` holds a float32 array, a 4x4 voxel-to-world affine in **RAS** millimetres
(the nibabel / MONAI / Slicer convention), the modality and a small dict of non-identifying
metadata. 3D arrays are indexed ``(i, j, k)`` exactly as nibabel indexes them; 2D slices are
``(row, col)`` with the affine acting on ``(row, col, 0)``.

Colour slices (AANLIB pseudo-colour PET/SPECT) keep their RGB in ``rgb`` (``(H, W, 3)``, 0..255)
and their luminance (Y of YCbCr) in ``array``, so every step downstream works on one intensity
channel and :mod:`medfuse.color` can put the chroma back after fusion.

ITK, SimpleITK and DICOM describe the same world in **LPS**; :func:`ras_to_lps` /
:func:`lps_to_ras` convert explicitly (x and y change sign) and nothing else in medfuse flips axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Volume", "LPS_RAS_FLIP", "ras_to_lps", "lps_to_ras", "affine_from_lps", "lps_from_affine"]

#: diag(-1, -1, 1, 1): maps RAS world coordinates to LPS and back (its own inverse).
LPS_RAS_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


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


@dataclass
class Volume:
    """An image with its geometry.

    Attributes:
        array: float32 intensities, spatial only: ``(X, Y, Z)`` for volumes, ``(H, W)`` for slices.
        affine: (4, 4) float64 voxel-to-world affine, RAS millimetres.
        modality: ``"MR"``, ``"CT"``, ``"PT"``, ``"NM"`` (SPECT), or ``None`` when unknown.
        meta: non-identifying metadata (source format, PET SUV inputs, opaque series id, ...).
        source: the path it was read from (for messages only; may be empty).
        rgb: for colour slices, ``(H, W, 3)`` float32 RGB on 0..255; ``array`` is then its Y.
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
