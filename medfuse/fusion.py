"""Choosing and running a fusion method on two normalized arrays.

One entry point, :func:`fuse_arrays`, for every method a user can type: the classical baselines
in :mod:`medfuse.classical` and the trained networks run through :mod:`medfuse.inference`.
The inputs are already registered onto one grid and normalized to [0, 1]; this module knows
nothing about files.

Slicing: every 2D method (2D networks, ``laplacian``, ``wavelet``, ``guided``) runs over a 3D
volume through the one slice runner, :func:`medfuse.slicing.fuse_slicewise` (axial slices in the
orientation of the 2D training slices, whatever the storage order); :func:`slice_axis` (the stored
axis the slices were taken across) and :func:`orientation_code` record what was done.

Layering: this module chooses between :mod:`medfuse.classical` and :mod:`medfuse.inference`
(imported where used); both build on :mod:`medfuse.slicing` and :mod:`medfuse.pairs`, re-exported
here, and never import this module.
"""

from __future__ import annotations

import logging
import numpy as np

from medfuse.pairs import MODALITY_OF_PAIR, PAIRS, pair_for_modality
from medfuse.slicing import check_fusion_inputs, check_same_shape, check_unit_range, fuse_slicewise
from medfuse.volume import AXIAL_SLICE_AXES, orientation_code, slice_axis

__all__ = [
    "fuse_arrays",
    "voxelwise_fusion",
    "fuse_slicewise",
    "slice_axis",
    "orientation_code",
    "AXIAL_SLICE_AXES",
    "available_methods",
    "pair_for_modality",
    "check_fusion_inputs",
    "PAIRS",
    "MODALITY_OF_PAIR",
]

log = logging.getLogger(__name__)


#: the trained network families (``medfuse.networks.NETWORKS``, which imports torch; a test keeps the two
#: equal), so that choosing or checking a method never imports torch
NETWORK_NAMES = ("fmmf", "mdgan", "msra", "light")


def available_methods() -> dict[str, str]:
    """Every method name ``--method`` accepts, mapped to ``"classical"`` or ``"network"`` (imports no torch)."""
    from medfuse.classical import CLASSICAL_METHODS

    methods = {name: "classical" for name in CLASSICAL_METHODS}
    methods.update({name: "network" for name in NETWORK_NAMES})
    return methods


def fuse_arrays(
    a: np.ndarray,
    b: np.ndarray,
    method: str = "mean",
    *,
    weights: str | None = None,
    pair: str | None = None,
    device: str = "cpu",
    axis: int = -1,
    affine: np.ndarray | None = None,
) -> np.ndarray:
    """Fuse two registered, normalized images.

    Args:
        a: the anatomical image (MRI), float in [0, 1], ``(H, W)`` or ``(X, Y, Z)``.
        b: the other image on the same grid, float in [0, 1].
        method: a classical method (``mean``, ``max``, ``laplacian``, ``wavelet``, ``guided``) or a
            network (``fmmf``, ``mdgan``, ``msra``, ``light``).
        weights: a checkpoint for a network; default: the weights shipped for ``pair``.
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``: which shipped weights to use.
        device: torch device for networks.
        axis: stored slice axis for 2D methods on a volume, used only without ``affine``.
        affine: for 3D inputs, the reference's voxel-to-RAS affine (both inputs lie on its grid):
            2D methods then fuse axial slices in the training orientation, whatever the storage
            order (:func:`fuse_slicewise`; :func:`slice_axis` says which stored axis that is).
            Ignored for 2D inputs, voxelwise methods (``mean``, ``max``) and 3D networks.

    Returns:
        float32 array of the inputs' shape, values in [0, 1], on the reference grid.
    """
    from medfuse.errors import look_up

    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    check_same_shape(a, b, "fusion")
    kind = look_up(method, available_methods(), "fusion method")
    fuse_chunk = voxelwise_fusion(method, a) if a.ndim == 3 else None
    if fuse_chunk is not None:  # mean, max: float32, in chunks, the numbers of medfuse.classical
        _check_unit_range(b, "b (the second image)")
        flat_b = b.reshape(-1)
        fused = np.empty(flat_b.size, dtype=np.float32)
        for start in range(0, flat_b.size, _CHUNK):
            stop = min(start + _CHUNK, flat_b.size)
            fused[start:stop] = fuse_chunk(flat_b[start:stop], start, stop)
        return fused.reshape(a.shape)
    if kind == "classical":
        from medfuse.classical import fuse_classical

        fused = fuse_classical(a, b, method, affine=affine, axis=axis)
    else:
        from medfuse.errors import UnsupportedInputError

        try:
            import torch  # noqa: F401
        except ImportError as err:
            classical = ", ".join(m for m, k in available_methods().items() if k == "classical")
            raise UnsupportedInputError(
                f"the network {method!r} needs PyTorch, which is not installed: pip install torch, "
                f"or choose a classical method ({classical})"
            ) from err
        from medfuse.inference import fuse_with_network

        fused = fuse_with_network(a, b, method, weights, pair=pair, device=device, axis=axis, affine=affine)
    fused = np.asarray(fused, dtype=np.float32)
    if np.may_share_memory(fused, a) or np.may_share_memory(fused, b):
        return np.clip(fused, 0.0, 1.0)
    return np.clip(fused, 0.0, 1.0, out=fused)  # the method's own new array: no second volume


#: voxels per chunk of the voxelwise methods (a few hundred kB per temporary)
_CHUNK = 1 << 18


def _check_unit_range(x: np.ndarray, name: str, who: str = "classical fusion") -> None:
    """:func:`check_fusion_inputs`' checks of one 3D image (finite, in [0, 1] up to rounding), without copying it."""
    from medfuse.errors import UnsupportedInputError

    if x.ndim != 3 or x.size == 0 or min(x.shape[:2]) < 2:
        raise UnsupportedInputError(f"{who}: expected 2D (H, W) or 3D (X, Y, Z) images of at least 2x2 pixels "
                                    f"in plane; got shape {x.shape}")
    check_unit_range(x, name, who)


def voxelwise_fusion(method: str, a: np.ndarray):
    """The chunk form of a voxelwise method (``mean``, ``max``) with the anatomical volume ``a``, else None.

    Returns ``g(b_chunk, start, stop) -> fused_chunk``: the fusion of the flat voxels ``start:stop`` (C order) of
    ``a`` with ``b_chunk``, float32 in [0, 1], the same numbers as :func:`fuse_arrays` on whole volumes (``max``
    picks one of its float32 inputs; ``mean`` is computed in float64 as :func:`medfuse.classical.fuse_mean`).
    ``a`` is checked here (finite, in [0, 1]); ``b_chunk`` must be finite.
    """
    from medfuse.errors import look_up

    name = look_up(method, list(available_methods()), "fusion method")
    if name not in ("mean", "max"):
        return None
    a = np.asarray(a, dtype=np.float32)
    _check_unit_range(a, "a (the anatomical image)")
    flat_a = a.reshape(-1)

    def fuse_chunk(b_chunk: np.ndarray, start: int, stop: int) -> np.ndarray:
        x = np.clip(flat_a[start:stop], 0.0, 1.0)
        y = np.clip(np.asarray(b_chunk, dtype=np.float32), 0.0, 1.0)
        if name == "max":
            return np.maximum(x, y, out=x)
        return np.clip(0.5 * (x.astype(np.float64) + y), 0.0, 1.0).astype(np.float32)

    return fuse_chunk
