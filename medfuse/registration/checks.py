"""Self-checks that turn silent registration failure into :class:`~medfuse.errors.RegistrationError`.

- :func:`fov_coverage`: the fraction of the reference head inside the moving field of view
  (checked before starting: at least half must be covered);
- :func:`decompose_linear`: rotation angle, scales and the displacement of the head centre of a
  4x4 reference->moving matrix (implausible beyond 30 degrees, 100 mm, scales outside 0.9-1.1);
- :func:`dice`: overlap of the reference head mask and the registered moving head mask (reported
  only: masks of different modalities do not outline the same thing, so it is no refusal
  criterion; the metric checks in :mod:`medfuse.registration.core` are);
- :func:`same_frame_of_reference`: hybrid PET/CT or PET/MR series share a DICOM frame of reference,
  so registering them is unnecessary.
"""

from __future__ import annotations

import logging

import numpy as np

from medfuse.volume import Volume

__all__ = ["same_frame_of_reference", "fov_coverage", "decompose_linear", "dice", "head_centroid"]

log = logging.getLogger(__name__)


def same_frame_of_reference(reference: Volume, moving: Volume) -> bool:
    """True when both scans carry the same DICOM frame of reference (an opaque hash in
    ``meta["frame_of_reference"]``, set by the DICOM reader): a hybrid PET/CT or PET/MR pair whose
    world coordinates already agree, so registration is skipped (logged at INFO by the caller).

    False when either scan lacks the key (NIfTI, NRRD, PNG inputs).
    """
    a = reference.meta.get("frame_of_reference")
    b = moving.meta.get("frame_of_reference")
    return bool(a) and bool(b) and str(a) == str(b)


def fov_coverage(reference: Volume, mask: np.ndarray, moving: Volume, matrix_ras: np.ndarray | None = None) -> float:
    """Fraction of the ``mask`` voxels of ``reference`` whose centres fall inside ``moving``'s field of view.

    Args:
        reference: the grid ``mask`` lives on (RAS affine).
        mask: boolean array of ``reference.shape`` (the reference head).
        moving: the scan whose field of view (voxel centres +- half a voxel) is tested.
        matrix_ras: optional 4x4 reference->moving RAS matrix applied to the points first
            (identity: the headers' world coordinates as they are).

    Returns:
        A fraction in [0, 1] (0 when the mask is empty).
    """
    idx = np.argwhere(mask)
    if idx.size == 0:
        return 0.0
    if len(idx) > 200_000:
        idx = idx[:: len(idx) // 200_000 + 1]
    pts = np.c_[idx, np.zeros((len(idx), 3 - idx.shape[1])), np.ones(len(idx))] @ reference.affine.T
    if matrix_ras is not None:
        pts = pts @ np.asarray(matrix_ras, dtype=np.float64).T
    vox = pts @ np.linalg.inv(moving.affine).T
    shape = np.array(list(moving.shape) + [1] * (3 - moving.ndim), dtype=np.float64)
    inside = np.all((vox[:, :3] >= -0.5) & (vox[:, :3] <= shape - 0.5), axis=1)
    return float(inside.mean())


def head_centroid(volume: Volume, mask: np.ndarray) -> np.ndarray:
    """RAS millimetres of the centroid of ``mask`` on ``volume``'s grid."""
    idx = np.argwhere(mask)
    if idx.size == 0:
        idx = np.array([[(n - 1) / 2.0 for n in volume.shape]])
    return volume.world_coordinates(idx.mean(axis=0, keepdims=True))[0]


def decompose_linear(matrix: np.ndarray, center: np.ndarray) -> dict[str, float]:
    """Rotation angle, scales and centre displacement of a 4x4 homogeneous matrix.

    Args:
        matrix: (4, 4) reference->moving matrix (RAS or LPS: the numbers are the same).
        center: the point (same world) whose displacement is reported, e.g. the head centroid.

    Returns:
        ``{"rotation_deg", "scale_min", "scale_max", "translation_mm"}``: the angle of the rotation
        in the polar decomposition ``A = R S``, the extreme singular values of ``A`` and the
        distance the centre moves.
    """
    m = np.asarray(matrix, dtype=np.float64)
    a = m[:3, :3]
    u, s, vt = np.linalg.svd(a)
    r = u @ vt
    if np.linalg.det(r) < 0:  # a reflection: report it as 180 degrees, always implausible
        angle = 180.0
    else:
        angle = float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))
    c = np.asarray(center, dtype=np.float64)
    moved = a @ c + m[:3, 3]
    return {
        "rotation_deg": angle,
        "scale_min": float(s.min()),
        "scale_max": float(s.max()),
        "translation_mm": float(np.linalg.norm(moved - c)),
    }


def dice(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """Dice overlap ``2|A n B| / (|A| + |B|)`` of two boolean masks, optionally inside ``region``.

    Returns 0.0 when both are empty.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if region is not None:
        a = a & region
        b = b & region
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 0.0
    return 2.0 * int(np.count_nonzero(a & b)) / total
