"""Choosing and running a fusion method on two normalized arrays.

One entry point, :func:`fuse_arrays`, for every method a user can type: the classical baselines
in :mod:`medfuse.classical` and the trained networks run through :mod:`medfuse.inference`.
The inputs are already registered onto one grid and normalized to [0, 1]; this module knows
nothing about files or geometry.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fuse_arrays", "available_methods", "pair_for_modality", "PAIRS"]

#: modality-pair names used by the trained weights, the trainer and the Harvard layout
PAIRS = ("ct_mri", "pet_mri", "spect_mri")

_PAIR_OF_MODALITY = {"CT": "ct_mri", "PT": "pet_mri", "NM": "spect_mri"}


def pair_for_modality(modality: str | None) -> str | None:
    """The pair name (``"pet_mri"``...) for the second scan's modality code, or None (e.g. MR-MR)."""
    return _PAIR_OF_MODALITY.get((modality or "").upper())


def available_methods() -> dict[str, str]:
    """Every method name ``--method`` accepts, mapped to ``"classical"`` or ``"network"``."""
    from medfuse.classical import CLASSICAL_METHODS

    methods = {name: "classical" for name in CLASSICAL_METHODS}
    try:
        from medfuse.networks import NETWORKS
    except ImportError:  # pragma: no cover - torch missing
        NETWORKS = {}
    methods.update({name: "network" for name in NETWORKS})
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
        axis: slice axis along which 2D networks run over a volume.

    Returns:
        float32 array of the inputs' shape, values in [0, 1].
    """
    from medfuse.errors import look_up

    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape != b.shape:
        from medfuse.errors import SpaceMismatchError

        raise SpaceMismatchError(f"cannot fuse arrays of shapes {a.shape} and {b.shape}; resample onto one grid first")
    kind = look_up(method, available_methods(), "fusion method")
    if kind == "classical":
        from medfuse.classical import fuse_classical

        fused = fuse_classical(a, b, method)
    else:
        from medfuse.inference import fuse_with_network

        fused = fuse_with_network(a, b, method, weights, pair=pair, device=device, axis=axis)
    return np.clip(np.asarray(fused, dtype=np.float32), 0.0, 1.0)
