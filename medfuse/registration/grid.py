"""Same physical grid, stored in another order: decided by the world positions of the voxel centres.

Two scans can hold their voxels on one physical grid while storing them in different orders: the SPM
templates are stored LAS while a DICOM-derived copy of the same volume is LPS or RAS, a sagittal
export permutes the axes. Their affines differ, yet every voxel centre of one is a voxel centre of
the other. Registering such a pair can only move it away from the right answer (identity); it is
put on the reference grid by an exact reordering of the array (axis permutation and flips, no
interpolation) instead.

- :func:`grid_reorder`: the reordering (a nibabel orientation transform) that puts ``moving``'s array on
  ``reference``'s grid, or None when the voxel centres differ.
- :func:`same_voxel_centres`: True when it exists.
- :func:`reorder_to_reference`: ``moving`` on ``reference``'s grid by that reordering (values
  bit-identical, reference affine exactly).

The test: ``inv(moving.affine) @ reference.affine`` must map reference voxel indices to moving voxel
indices by a signed permutation with the moving index range covered exactly, and the world positions
it implies may differ by at most ``atol_mm`` at the eight corners of the grid (the map is affine, so
the corners bound every voxel centre).
"""

from __future__ import annotations

import numpy as np

from medfuse.volume import Volume

__all__ = ["grid_reorder", "same_voxel_centres", "reorder_to_reference", "GRID_ATOL_MM"]

#: largest distance (mm) between corresponding voxel centres of two grids taken as the same grid
#: (float32 headers and DICOM positions round at about 1e-5 mm)
GRID_ATOL_MM = 1e-3


def grid_reorder(reference: Volume, moving: Volume, atol_mm: float = GRID_ATOL_MM) -> np.ndarray | None:
    """The axis permutation and flips that put ``moving``'s voxels on ``reference``'s grid exactly.

    Args:
        reference, moving: volumes with RAS affines (2D or 3D, the same number of dimensions).
        atol_mm: largest world distance (mm) between a reference voxel centre and the moving voxel
            centre it is matched to.

    Returns:
        A (ndim, 2) nibabel orientation transform (``ornt``): row ``i`` says which reference axis moving
        axis ``i`` becomes and whether it is flipped (-1), for ``nibabel.orientations.apply_orientation``;
        None when the two grids do not have the same voxel centres.
    """
    n = reference.ndim
    if moving.ndim != n or sorted(reference.shape) != sorted(moving.shape):
        return None
    # reference voxel index -> moving voxel index (homogeneous, 3D affines act on (i, j, k) or (r, c, 0))
    ref_aff = np.asarray(reference.affine, dtype=np.float64)
    mov_aff = np.asarray(moving.affine, dtype=np.float64)
    try:
        m = np.linalg.inv(mov_aff) @ ref_aff
    except np.linalg.LinAlgError:
        return None
    linear = m[:n, :n]
    rounded = np.rint(linear)
    if not (np.all(np.abs(rounded).sum(axis=0) == 1) and np.all(np.abs(rounded).sum(axis=1) == 1)):
        return None  # not a signed permutation of the index axes
    ornt = np.zeros((n, 2))
    for mov_axis in range(n):
        ref_axis = int(np.flatnonzero(rounded[mov_axis])[0])
        sign = float(rounded[mov_axis, ref_axis])
        if moving.shape[mov_axis] != reference.shape[ref_axis]:
            return None
        ornt[mov_axis] = (ref_axis, sign)
    # the exact index map this reordering implies: moving index = P @ ref index + offset
    offset = np.array([0.0 if ornt[a, 1] > 0 else moving.shape[a] - 1.0 for a in range(n)])
    exact = np.eye(4)
    exact[:n, :n] = rounded
    exact[:n, 3] = offset
    corners = np.array(np.meshgrid(*[[0.0, s - 1.0] for s in reference.shape], indexing="ij")).reshape(n, -1).T
    corners = np.c_[corners, np.zeros((len(corners), 3 - n)), np.ones(len(corners))]
    world_ref = corners @ ref_aff.T
    world_mov = corners @ exact.T @ mov_aff.T
    if np.max(np.linalg.norm((world_ref - world_mov)[:, :3], axis=1)) > atol_mm:
        return None
    return ornt


def same_voxel_centres(reference: Volume, moving: Volume, atol_mm: float = GRID_ATOL_MM) -> bool:
    """True when every voxel centre of ``moving`` is a voxel centre of ``reference`` and back (within
    ``atol_mm``), whatever order each stores them in (equal affines are the special case of no reordering)."""
    return grid_reorder(reference, moving, atol_mm) is not None


def reorder_to_reference(moving: Volume, reference: Volume, atol_mm: float = GRID_ATOL_MM) -> Volume:
    """``moving`` put on ``reference``'s grid by permuting and flipping its array axes (no interpolation).

    Returns:
        A :class:`~medfuse.volume.Volume` with ``reference``'s shape and affine (a copy), ``moving``'s values
        (bit-identical, reordered), modality, meta, source and colour.

    Raises:
        ValueError: the two grids do not have the same voxel centres (check :func:`same_voxel_centres` first).
    """
    from nibabel.orientations import apply_orientation

    ornt = grid_reorder(reference, moving, atol_mm)
    if ornt is None:
        raise ValueError(f"{moving.name} and {reference.name} do not share voxel centres; resample it instead")
    array = np.array(apply_orientation(moving.array, ornt), dtype=np.float32, order="C")  # a copy, never a view
    rgb = None if moving.rgb is None else np.array(apply_orientation(moving.rgb, ornt), dtype=np.float32, order="C")
    return Volume(array, reference.affine.copy(), moving.modality, dict(moving.meta), moving.source, rgb)
