"""SimpleITK transforms: matrices in RAS and LPS, reading and writing ITK transform files.

Convention (SimpleITK registration, ITK transform files, 3D Slicer "from parent"): a transform
maps points of the **reference** (fixed) image, in physical **LPS** millimetres, to points of the
**moving** image. Resampling the moving scan onto the reference grid looks up, for every reference
voxel centre ``x``, the moving intensity at ``T(x)``.

medfuse's world is RAS; the same mapping in RAS is ``F @ M_lps @ F`` with
``F = diag(-1, -1, 1, 1)`` (:data:`medfuse.volume.LPS_RAS_FLIP`). The functions here are the only
place where transforms change between the two.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medfuse.errors import CorruptFileError, UnsupportedInputError
from medfuse.io.atomic import atomic_output, full_suffix
from medfuse.volume import LPS_RAS_FLIP

__all__ = [
    "TRANSFORM_SUFFIXES",
    "matrix_lps",
    "matrix_ras",
    "transform_from_matrix_ras",
    "linear_part",
    "save_transform",
    "load_transform",
]

#: file extensions ITK/SimpleITK read and write transforms in (text ``.tfm``/``.txt``, HDF5 ``.h5``, Matlab ``.mat``)
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".h5", ".hdf5", ".mat")


def linear_part(transform):
    """The linear (matrix + offset) part of a transform: itself if linear, else the first linear
    component of a composite (the affine stage in front of a B-spline); ``None`` if there is none."""
    import SimpleITK as sitk

    if transform.IsLinear():
        return transform
    tx = transform.Downcast() if type(transform) is sitk.Transform else transform
    if isinstance(tx, sitk.CompositeTransform):
        for n in range(tx.GetNumberOfTransforms()):
            part = tx.GetNthTransform(n)
            if part.IsLinear():
                return part
    return None


def matrix_lps(transform) -> np.ndarray:
    """The 4x4 homogeneous matrix (LPS -> LPS mm) of a linear SimpleITK transform.

    Works for any linear transform type (identity, translation, Euler, versor, similarity,
    affine, linear composites) by mapping the origin and the unit axes. For a non-linear
    transform the linear part (:func:`linear_part`) is used.

    Raises:
        UnsupportedInputError: the transform has no linear part (a plain displacement field).
    """
    tx = linear_part(transform)
    if tx is None:
        raise UnsupportedInputError(
            f"{transform.GetName()} has no linear part; it cannot be written as a 4x4 matrix"
        )
    dim = tx.GetDimension()
    scale = 100.0
    origin = np.asarray(tx.TransformPoint((0.0,) * dim), dtype=np.float64)
    m = np.eye(4)
    for i in range(dim):
        p = [0.0] * dim
        p[i] = scale
        m[:dim, i] = (np.asarray(tx.TransformPoint(p), dtype=np.float64) - origin) / scale
    m[:dim, 3] = origin
    return m


def matrix_ras(transform) -> np.ndarray:
    """The 4x4 matrix of :func:`matrix_lps` expressed in RAS (reference RAS mm -> moving RAS mm)."""
    return LPS_RAS_FLIP @ matrix_lps(transform) @ LPS_RAS_FLIP


def transform_from_matrix_ras(matrix: np.ndarray, center_ras: np.ndarray | None = None):
    """A ``SimpleITK.AffineTransform`` (LPS convention) from a 4x4 reference->moving RAS matrix.

    Args:
        matrix: (4, 4) homogeneous matrix mapping reference RAS mm to moving RAS mm.
        center_ras: optional centre of rotation (RAS mm), kept in the transform's parameters.
    """
    import SimpleITK as sitk

    m = LPS_RAS_FLIP @ np.asarray(matrix, dtype=np.float64) @ LPS_RAS_FLIP
    tx = sitk.AffineTransform(3)
    center = np.zeros(3) if center_ras is None else np.asarray(center_ras, dtype=np.float64) * [-1.0, -1.0, 1.0]
    a = m[:3, :3]
    tx.SetMatrix(tuple(a.ravel()))
    tx.SetCenter(tuple(center))
    tx.SetTranslation(tuple(m[:3, 3] + a @ center - center))
    return tx


def save_transform(transform, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a SimpleITK transform to an ITK transform file (``.tfm``, ``.txt``, ``.h5``, ``.mat``).

    The file follows ITK's convention (reference LPS points -> moving LPS points), which
    SimpleITK, ANTs and 3D Slicer read. Written atomically.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        UnsupportedInputError: the extension is not a transform format.
    """
    import SimpleITK as sitk

    path = Path(path)
    suffix = full_suffix(path)
    if suffix not in TRANSFORM_SUFFIXES:
        raise UnsupportedInputError(
            f"{path}: transforms are written as {', '.join(TRANSFORM_SUFFIXES)} (ITK transform files), not {suffix!r}"
        )
    with atomic_output(path, force=force) as tmp:
        sitk.WriteTransform(transform, str(tmp))
    return path


def load_transform(path: str | os.PathLike):
    """Read an ITK transform file written by :func:`save_transform`, ITK, ANTs or 3D Slicer.

    Returns:
        The SimpleITK transform, downcast to its concrete type (``AffineTransform``,
        ``VersorRigid3DTransform``, ``CompositeTransform``, ...).

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: the file is not a readable ITK transform.
    """
    import SimpleITK as sitk

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such transform file")
    try:
        tx = sitk.ReadTransform(str(path))
    except RuntimeError as err:
        raise CorruptFileError(
            f"{path}: not a readable ITK transform file (.tfm/.txt/.h5/.mat); check the file"
        ) from err
    try:
        return tx.Downcast()
    except RuntimeError:  # pragma: no cover - exotic transform types
        return tx
