"""Phantom geometry: rigid transforms, scan grids and sampling the model onto a scan's grid."""

from __future__ import annotations

import numpy as np

from medfuse.phantom.anatomy import MARKER_CENTER_MM
from medfuse.phantom.contrasts import Grid
from medfuse.volume import Volume

__all__ = [
    "rigid_matrix", "axes_matrix", "grid_affine", "three", "resolve_grid", "level_affine", "resample_model",
    "marker_fraction",
]

_AXIS_VECTORS = {
    "R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1),
}


def rigid_matrix(rotation_deg=(0.0, 0.0, 0.0), translation_mm=(0.0, 0.0, 0.0), center_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A 4x4 rigid transform ``q = R (p - c) + c + t`` in RAS millimetres.

    Args:
        rotation_deg: rotations ``(rx, ry, rz)`` in degrees about the RAS x, y and z axes
            (right-handed); ``R = Rz @ Ry @ Rx``, so x is applied first.
        translation_mm: ``t``, in mm, applied after the rotation.
        center_mm: ``c``, the fixed point of the rotation.

    Returns:
        (4, 4) float64 homogeneous matrix acting on column vectors ``(x, y, z, 1)``.
    """
    rx, ry, rz = np.deg2rad(np.asarray(rotation_deg, dtype=np.float64))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    r_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    r_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rot = r_z @ r_y @ r_x
    c = np.asarray(center_mm, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = c - rot @ c + np.asarray(translation_mm, dtype=np.float64)
    return out


def axes_matrix(axes: str) -> np.ndarray:
    """Direction cosines (columns, RAS) of axis codes such as ``"LPS"``."""
    code = str(axes).upper()
    if len(code) != 3 or any(ch not in _AXIS_VECTORS for ch in code):
        raise ValueError(f"axes must be three letters from R/L, A/P, S/I (e.g. 'LPS'); got {axes!r}")
    mat = np.array([_AXIS_VECTORS[ch] for ch in code], dtype=np.float64).T
    if abs(np.linalg.det(mat)) != 1.0:
        raise ValueError(f"axes {axes!r} must name each of the R-L, A-P and S-I axes once")
    return mat


def grid_affine(shape, spacing, axes: str, center_mm) -> np.ndarray:
    """Voxel-to-RAS affine of a grid whose centre voxel position is ``center_mm``."""
    affine = np.eye(4)
    affine[:3, :3] = axes_matrix(axes) @ np.diag(spacing)
    middle = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    affine[:3, 3] = np.asarray(center_mm, dtype=np.float64) - affine[:3, :3] @ middle
    return affine


def three(value, name: str, positive: bool = True) -> np.ndarray:
    """``value`` (a number or three) as a (3,) float64 array, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.ndim == 0:
        arr = np.full(3, float(arr))
    if arr.shape != (3,) or not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        kind = "three positive numbers" if positive else "three finite numbers"
        raise ValueError(f"{name} must be a number or {kind}; got {value!r}")
    return arr.astype(np.float64)


def resolve_grid(default: Grid, shape, spacing) -> tuple[tuple, np.ndarray]:
    """Shape and spacing of a scan: defaults, or the one given with the default field of view.

    Given only ``shape``, in-plane pixels (axes 0 and 1) are square and the slice axis (2) covers
    the default field of view; given only ``spacing``, the shape covers the default field of view.
    """
    fov = np.asarray(default.shape) * np.asarray(default.spacing)
    if shape is not None:
        shape_arr = three(shape, "shape")
        if np.any(shape_arr != np.round(shape_arr)):
            raise ValueError(f"shape must be three positive integers; got {shape!r}")
        shape = tuple(int(n) for n in shape_arr)
    if spacing is not None:
        spacing = three(spacing, "spacing")
    if shape is None and spacing is None:
        return tuple(default.shape), np.asarray(default.spacing, dtype=np.float64)
    if spacing is None:
        inplane = float(np.max(fov[:2] / np.asarray(shape[:2])))
        spacing = np.array([inplane, inplane, fov[2] / shape[2]])
    if shape is None:
        shape = tuple(int(max(1, round(f))) for f in fov / spacing)
    return shape, spacing


def level_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    scale = np.eye(4)
    scale[:3, :3] *= factor
    scale[:3, 3] = (factor - 1) / 2.0
    return affine @ scale


def resample_model(model: np.ndarray, model_affine, target_affine, shape, reference_to_scan, order, cval) -> np.ndarray:
    """Sample ``model`` at the reference-world points that each target voxel shows.

    SimpleITK does the interpolation (multi-threaded): its transform maps an output (scan) LPS
    point to the input (model, reference-world) LPS point, ``F inv(reference_to_scan) F`` with
    ``F = diag(-1, -1, 1)``; the RAS/LPS and index-order conversions are :mod:`medfuse.io.sitk`'s.

    Args:
        model: ``(i, j, k)`` array (float32 or uint8) on the grid ``model_affine``.
        order: 1 for trilinear, 0 for nearest neighbour.
        cval: value outside the model.

    Returns:
        ``(i, j, k)`` array of ``shape`` and ``model``'s dtype.
    """
    import SimpleITK as sitk

    from medfuse.io.sitk import from_sitk, to_sitk
    from medfuse.volume import LPS_RAS_FLIP, lps_from_affine

    image = to_sitk(Volume(np.zeros((1, 1, 1)), model_affine), array=model)  # the volume gives geometry only
    origin, spacing, direction = lps_from_affine(target_affine)
    scan_to_ref_lps = LPS_RAS_FLIP @ np.linalg.inv(reference_to_scan) @ LPS_RAS_FLIP
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(scan_to_ref_lps[:3, :3].ravel().tolist())
    transform.SetTranslation(scan_to_ref_lps[:3, 3].tolist())
    interpolator = sitk.sitkLinear if order == 1 else sitk.sitkNearestNeighbor
    out = sitk.Resample(image, [int(n) for n in shape], transform, interpolator, origin, spacing, direction,
                        float(cval), image.GetPixelID())
    vol = from_sitk(out)
    if not np.allclose(vol.affine, target_affine, atol=1e-4):  # pragma: no cover - a conversion bug
        raise RuntimeError("phantom resampling produced a grid other than the one requested")
    return vol.array if model.dtype == np.float32 else vol.array.astype(model.dtype)


def marker_fraction(target_affine, shape, reference_to_scan, radius_mm) -> tuple[tuple, np.ndarray] | None:
    """The marker sphere's partial-volume fraction on the part of the target grid around it."""
    centre = np.asarray(MARKER_CENTER_MM)
    spacing = np.linalg.norm(target_affine[:3, :3], axis=0)
    reach = radius_mm + 2.0 * spacing.max()
    corners = np.array(np.meshgrid(*[[-reach, reach]] * 3, indexing="ij")).reshape(3, -1).T + centre
    to_index = np.linalg.inv(target_affine) @ reference_to_scan
    idx = corners @ to_index[:3, :3].T + to_index[:3, 3]
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, np.asarray(shape))
    hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 0, np.asarray(shape))
    if np.any(hi <= lo):
        return None
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), axis=-1)
    to_ref = np.linalg.inv(reference_to_scan) @ target_affine
    world = grid @ to_ref[:3, :3].T + to_ref[:3, 3]
    dist = np.linalg.norm(world - centre, axis=-1)
    width = float(np.mean(spacing))
    frac = np.clip((radius_mm - dist) / width + 0.5, 0.0, 1.0).astype(np.float32)
    return tuple(slice(a, b) for a, b in zip(lo, hi)), frac
