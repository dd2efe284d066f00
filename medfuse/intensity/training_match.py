"""The intensities of the networks' training slices, and the map that takes a volume to them.

The shipped 2D networks were trained on AANLIB display slices (PNG / 255, colour PET/SPECT as luminance Y).
:func:`match_training_intensities` maps a normalized volume, monotonically and once per volume, so that the
quantiles of its content voxels (:func:`content_mask`) equal those of the pair's training slices
(:data:`TRAINING_QUANTILES`); :mod:`medfuse.inference` (before a 2D network fuses a volume) and
:mod:`medfuse.training.volumes` (training on one's own volumes) use it, and
:func:`medfuse.training.data.training_quantiles` recomputes the table.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONTENT_THRESHOLD", "TRAINING_QUANTILE_LEVELS", "TRAINING_QUANTILES", "content_mask",
           "match_training_intensities", "source_quantiles", "quantile_map"]

#: content voxels (:func:`content_mask`): ``max(a, b)`` above this, holes filled per slice
CONTENT_THRESHOLD = 0.05
#: percentile levels of :data:`TRAINING_QUANTILES`
TRAINING_QUANTILE_LEVELS = (0, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 100)
#: pair -> ``(MRI quantiles, other-scan quantiles)`` of the content pixels (:func:`content_mask`) of
#: all the pair's AANLIB training pairs (PNG / 255, PET/SPECT as luminance Y), at
#: :data:`TRAINING_QUANTILE_LEVELS`; recomputed by
#: :func:`medfuse.training.data.training_quantiles` (tests/test_saturation.py checks them against
#: the data when it is present). Every pair of the development set, rounded to 3 decimals.
TRAINING_QUANTILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "ct_mri": (
        (0.0, 0.0, 0.0, 0.0, 0.012, 0.11, 0.224, 0.294, 0.337, 0.392, 0.447, 0.506, 0.62, 0.745, 0.859, 0.902, 1.0),
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.267, 0.349, 0.408, 0.463, 0.561, 0.788, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ),
    "pet_mri": (
        (0.0, 0.0, 0.0, 0.0, 0.063, 0.192, 0.298, 0.4, 0.49, 0.569, 0.659, 0.753, 0.867, 1.0, 1.0, 1.0, 1.0),
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.047, 0.369, 0.608, 0.757, 0.827, 0.863, 0.867, 0.882),
    ),
    "spect_mri": (
        (0.0, 0.0, 0.0, 0.0, 0.02, 0.098, 0.196, 0.278, 0.329, 0.376, 0.439, 0.514, 0.659, 0.769, 0.882, 0.941, 1.0),
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.071, 0.165, 0.188, 0.216, 0.243, 0.376, 0.494, 0.518, 0.545, 0.588, 0.922),
    ),
}


def content_mask(a: np.ndarray, b: np.ndarray, threshold: float = CONTENT_THRESHOLD) -> np.ndarray:
    """Pixels of the head: ``max(a, b) > threshold`` with holes filled in each 2D slice.

    The same rule for the training slices and for the volumes inference maps to them.

    Args:
        a, b: ``(H, W)`` images or ``(S, H, W)`` stacks of slices in [0, 1].
    """
    from medfuse.intensity.mask import fill_holes

    m = np.maximum(a, b) > threshold
    return fill_holes(m, plane_axis=0 if m.ndim == 3 else None)  # 2D holes in each slice of a stack


def source_quantiles(values: np.ndarray, levels, *, overwrite: bool = False) -> np.ndarray:
    """The ``levels`` percentiles of ``values`` (made non-decreasing): where :func:`quantile_map` takes them from.
    ``overwrite``: ``values`` may be reordered (partitioned in place, no copy)."""
    src = (np.percentile(values, levels, overwrite_input=overwrite) if values.size
           else np.asarray(levels, dtype=np.float64) / 100.0)
    return np.maximum.accumulate(np.asarray(src, dtype=np.float64))


def quantile_map(x: np.ndarray, values: np.ndarray, levels, targets) -> np.ndarray:
    """Monotone map sending the ``levels`` percentiles of ``values`` to ``targets``."""
    return np.interp(x, source_quantiles(values, levels), np.asarray(targets, dtype=np.float64)).astype(np.float32)


def match_training_intensities(
    a: np.ndarray, b: np.ndarray, pair: str, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Map two normalized volumes to the intensity distribution of ``pair``'s training slices.

    Each of ``a`` (MRI) and ``b`` goes through the monotone piecewise-linear map that sends the
    :data:`TRAINING_QUANTILE_LEVELS` percentiles of its voxels inside ``mask`` to the training
    quantiles (:data:`TRAINING_QUANTILES`); one map per volume, never per slice.

    Args:
        a, b: arrays in [0, 1] of one shape (a volume or a stack of axial slices).
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``.
        mask: the voxels the statistics use; default :func:`content_mask` (stacks along axis 0).

    Returns:
        ``(a_mapped, b_mapped)`` float32 in [0, 1].
    """
    qa, qb = TRAINING_QUANTILES[pair]
    if mask is None:
        mask = content_mask(a, b)
    levels = TRAINING_QUANTILE_LEVELS
    return quantile_map(a, a[mask], levels, qa), quantile_map(b, b[mask], levels, qb)
