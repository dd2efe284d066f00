"""What every fusion method shares: the check of its two inputs and the one slice runner.

Below :mod:`medfuse.classical`, :mod:`medfuse.inference` and :mod:`medfuse.fusion` (which chooses
between them), so none of them imports another to get these: the import graph has no cycle.

Slicing: every 2D method (2D networks, ``laplacian``, ``wavelet``, ``guided``) runs over a 3D
volume through :func:`fuse_slicewise`. Given the reference's affine it fuses **axial slices in the
orientation of the 2D training slices** (:data:`medfuse.volume.AXIAL_SLICE_AXES`: rows anterior ->
posterior, columns patient right -> left, like the radiological AANLIB PNGs), whatever the storage
order (a sagittal MPRAGE, a coronal series, flipped axes): the arrays are only permuted and flipped,
never resampled, and put back in the storage order afterwards, so the fused image is the same in
world space for any storage order and lies on the reference grid.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from medfuse.volume import from_axial, to_axial

__all__ = ["check_fusion_inputs", "check_same_shape", "check_unit_range", "fuse_slicewise"]

log = logging.getLogger("medfuse.fusion")  # the slice runner logs under the name users already filter on

#: inputs may exceed [0, 1] by this much (rounding); beyond it they were not normalized
_RANGE_TOLERANCE = 1e-3


def check_same_shape(a: np.ndarray, b: np.ndarray, who: str) -> None:
    """Raise :class:`~medfuse.errors.SpaceMismatchError` unless ``a`` and ``b`` have one shape."""
    if a.shape != b.shape:
        from medfuse.errors import SpaceMismatchError

        raise SpaceMismatchError(
            f"{who}: the two images must share one grid; got shapes {a.shape} and {b.shape}: "
            "register/resample the second onto the reference first"
        )


def check_fusion_inputs(
    a: np.ndarray, b: np.ndarray, who: str, *, dtype: type = np.float32, min_size: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Check the two images a fusion method takes and return them clipped to [0, 1].

    Args:
        a: the anatomical image (MRI), ``(H, W)`` or ``(X, Y, Z)``, normalized to [0, 1].
        b: the other image on the same grid.
        who: what is checking (``"classical fusion"``...); every message starts with it.
        dtype: dtype of the returned arrays.
        min_size: the least size of the first two (in-plane) axes.

    Returns:
        ``(a, b)`` as ``dtype`` arrays clipped to [0, 1] (values up to ``1e-3`` outside are rounding). An input
        already of ``dtype`` and within [0, 1] comes back itself, not copied (a head volume: 75 MB each): treat
        the results as read-only.

    Raises:
        SpaceMismatchError: the shapes differ.
        UnsupportedInputError: not 2D/3D, empty or smaller than ``min_size`` in plane, or values
            outside [0, 1] (not normalized).
        NonFiniteError: NaN/inf values.
    """
    from medfuse.errors import UnsupportedInputError

    a = np.asarray(a, dtype=dtype)
    b = np.asarray(b, dtype=dtype)
    check_same_shape(a, b, who)
    if a.ndim not in (2, 3) or a.size == 0 or min(a.shape[:2]) < min_size:
        raise UnsupportedInputError(
            f"{who}: expected 2D (H, W) or 3D (X, Y, Z) images of at least {min_size}x{min_size} pixels "
            f"in plane; got shape {a.shape}"
        )
    out = []
    for name, arr in (("a (the anatomical image)", a), ("b (the second image)", b)):
        lo, hi = check_unit_range(arr, name, who)
        out.append(arr if 0.0 <= lo and hi <= 1.0 else np.clip(arr, 0.0, 1.0))  # clipping would copy, not change
    return out[0], out[1]


def check_unit_range(x: np.ndarray, name: str, who: str) -> tuple[float, float]:
    """Raise unless ``x`` is finite and within [0, 1] up to rounding (``1e-3``); return its ``(min, max)``.

    One pass for each bound and no bool array of the image's size: NaN propagates through both, an infinity is
    one of them (the count of bad values is taken only to say it).
    """
    from medfuse.errors import NonFiniteError, UnsupportedInputError

    lo, hi = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise NonFiniteError(
            f"{who}: {name} holds {int((~np.isfinite(x)).sum())} NaN/inf values; replace or mask them before fusing"
        )
    if lo < -_RANGE_TOLERANCE or hi > 1.0 + _RANGE_TOLERANCE:
        raise UnsupportedInputError(
            f"{who}: {name} has values in [{lo:.4g}, {hi:.4g}]; expected images normalized to [0, 1]: "
            "normalize first (medfuse.intensity.normalize)"
        )
    return lo, hi


def fuse_slicewise(
    a: np.ndarray,
    b: np.ndarray,
    fuse_stack: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    affine: np.ndarray | None = None,
    axis: int = -1,
    contiguous: bool = True,
    into: bool = False,
) -> np.ndarray:
    """The one slice runner: run a 2D fusion over a 2D image or a 3D volume, slice by slice.

    Args:
        a, b: ``(H, W)`` or ``(X, Y, Z)`` arrays of one shape.
        fuse_stack: ``f(a_stack, b_stack) -> fused_stack`` on C-contiguous ``(S, H, W)`` stacks of
            slices (a batch for a network, a loop for a classical method); ``(S, H, W)`` out.
        affine: for a 3D volume, the voxel-to-RAS affine of its grid (the reference's). The slices
            are then the axial slices in the canonical in-plane orientation
            (:func:`medfuse.volume.to_axial`; exact permutations and flips) and the result is put
            back in the storage order. None: slices across ``axis`` as stored (no geometry; logged
            at DEBUG).
        axis: the stored slice axis, used only when ``affine`` is None.
        contiguous: give ``fuse_stack`` C-contiguous copies of the stacks; False: views in the slice order
            (no two volume copies; for a ``fuse_stack`` that copies its slabs anyway, as the networks do).
        into: call ``fuse_stack(a_stack, b_stack, out=view)`` with ``view`` the result volume (``a``'s memory order)
            seen as the stack of slices, to be filled in place: the result is not copied back from a stack.

    Returns:
        The fused array, ``a``'s shape and storage order.
    """
    if a.ndim == 2:
        return np.asarray(fuse_stack(a[None], b[None]))[0]
    if a.ndim != 3:
        raise ValueError(f"fuse_slicewise expects (H, W) or (X, Y, Z) arrays; got shape {a.shape}")
    as_stack = np.ascontiguousarray if contiguous else np.asarray
    if affine is None:
        log.debug("no affine given: fusing a volume of shape %s in slices across stored axis %d, whatever its "
                  "anatomical plane", a.shape, axis)
        axis = int(axis) % 3

    def to_stack(x: np.ndarray) -> np.ndarray:
        return np.moveaxis(to_axial(x, affine), 2, 0) if affine is not None else np.moveaxis(x, axis, 0)

    stacks = [as_stack(to_stack(x)) for x in (a, b)]
    if into:
        result = np.empty_like(a, dtype=np.float32)  # C or Fortran, as ``a``
        view = to_stack(result)
        if np.shares_memory(view, result):  # permutations and flips: always a view
            fuse_stack(*stacks, out=view)
            return result
    fused = np.asarray(fuse_stack(*stacks))
    del stacks
    if affine is not None:
        return np.ascontiguousarray(from_axial(np.moveaxis(fused, 0, 2), affine))
    return np.ascontiguousarray(np.moveaxis(fused, 0, axis))
