"""Head/body masks per modality: where normalization statistics and registration checks look.

One implementation serves both :func:`medfuse.intensity.normalize` (statistics inside the head,
never over the air around it) and :mod:`medfuse.registration` (metric sampling region and the
head-mask Dice check after registration).

The rule is a threshold followed by morphology, chosen per modality:

- **CT** in Hounsfield units: ``> -500 HU`` (tissue and bone versus air); a CT whose values do not
  look like HU (no voxel below -500) falls back to the Otsu rule below.
- **MR** and unknown modalities: Otsu's threshold on intensities clipped to the 0.5-99.5th
  percentiles (so a single bright outlier cannot move it).
- **PET** and **SPECT**: the image is smoothed (``sigma`` 4 mm, these scans are noisy) and
  thresholded at a fraction (``PET_FRACTION``: 5% PET, 10% SPECT) of its robust maximum (99.5th
  percentile): the low uptake of the scalp still lies above it, so the mask follows the head
  outline rather than the brain.

Morphology: hole filling (3D, then slice by slice across each axis, so that the dark skull under
a bright scalp, ventricles and sinuses belong to the head even where the field of view cuts the
neck), binary opening (removes noise specks and thin couch/line artefacts), the largest connected
component, closing (seals small gaps) and hole filling again.

Arrays are indexed as :class:`~medfuse.volume.Volume` arrays (``(X, Y, Z)`` or ``(H, W)``); masks
are boolean arrays of the same shape. Large volumes are processed on a block-averaged copy
(at most ``_MAX_WORK_VOXELS`` voxels) and the mask is expanded back to full size: statistics need
the head region, not its outline to the voxel.
"""

from __future__ import annotations

import logging

import numpy as np

from medfuse.volume import Volume

__all__ = ["head_mask", "fill_holes", "otsu_threshold", "looks_like_hu", "block_mean", "bounding_box", "mean_index",
           "PET_FRACTION", "CT_AIR_THRESHOLD_HU"]

log = logging.getLogger(__name__)

#: CT voxels above this (HU) are tissue or bone, below it air.
CT_AIR_THRESHOLD_HU = -500.0
#: PET/SPECT voxels above this fraction of the robust maximum (smoothed image) belong to the head
#: (FDG scalp uptake is about 10% of gray matter, perfusion SPECT's about 20%).
PET_FRACTION = {"PT": 0.05, "NM": 0.10}
#: smoothing of PET/SPECT before thresholding, mm (Gaussian sigma)
_FUNCTIONAL_SIGMA_MM = 4.0
_MAX_WORK_VOXELS = 3_000_000


def looks_like_hu(volume: Volume) -> bool:
    """True when a CT volume is in Hounsfield units: ``meta["units"] == "HU"`` or air below -500.

    Display images (PNG slices, ``meta["value_max"]`` set) are never HU.
    """
    units = str(volume.meta.get("units", "")).upper()
    if units == "HU":
        return True
    if "value_max" in volume.meta:
        return False
    return bool(volume.array.size) and float(np.nanmin(volume.array)) <= CT_AIR_THRESHOLD_HU


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample (maximum between-class variance over a histogram).

    Args:
        values: finite intensities (any shape; flattened).
        bins: histogram bins between the sample's minimum and maximum.

    Returns:
        The threshold, in the units of ``values``; voxels ``> threshold`` are foreground.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centers)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    k = int(np.argmax(between[:-1]))
    return float(edges[k + 1])


def _block_factors(shape: tuple[int, ...]) -> tuple[int, ...]:
    n = int(np.prod(shape))
    if n <= _MAX_WORK_VOXELS:
        return (1,) * len(shape)
    f = int(np.ceil((n / _MAX_WORK_VOXELS) ** (1.0 / len(shape))))
    return tuple(min(f, s) for s in shape)


def block_mean(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Average ``a`` over blocks of ``factors`` voxels (edge-padded to a multiple): a fast
    anti-aliased downsampling. Output voxel ``i`` covers input voxels ``f*i .. f*i + f - 1``, so its
    centre is at input index ``f*i + (f - 1)/2``."""
    if all(f == 1 for f in factors):
        return a
    pad = [(0, (-s) % f) for s, f in zip(a.shape, factors)]
    if any(after for _, after in pad) or not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = np.pad(a, pad, mode="edge")  # a copy in the input's memory order (C for other views); numpy sums in it
    if a.dtype.kind == "f" and a.flags.c_contiguous and factors[-1] < 8:
        return _block_mean_in_order(a, factors)
    if a.dtype.kind == "f" and a.flags.f_contiguous and factors[0] < 8:  # numpy sums in memory order: as the transpose
        return _block_mean_in_order(a.T, factors[::-1]).T
    new_shape = []
    for s, f in zip(a.shape, factors):
        new_shape += [s // f, f]
    return a.reshape(new_shape).mean(axis=tuple(range(1, 2 * a.ndim, 2)))


def _block_mean_in_order(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """``a.reshape(blocks).mean(block axes)`` for a C-contiguous float ``a`` whose shape is a multiple of ``factors``,
    with the same numbers (the same additions in numpy's order: the last axis's ``< 8`` voxels of a block summed first,
    those sums added in C order, then one division by the count; tested), from strided views: no pass over a
    2n-dimensional view (4x faster on a head MRI)."""
    import itertools

    count = int(np.prod(factors))
    out = None
    for outer in itertools.product(*(range(f) for f in factors[:-1])):
        view = a[tuple(slice(o, None, f) for o, f in zip(outer, factors))]
        group = view[..., 0 :: factors[-1]].copy()
        for inner in range(1, factors[-1]):
            group += view[..., inner :: factors[-1]]
        if out is None:
            out = group
        else:
            out += group
    return np.true_divide(out, np.intp(count), out=out, casting="unsafe")


def bounding_box(mask: np.ndarray, margin=0) -> tuple[slice, ...]:
    """The slices of the smallest box that holds every True voxel of ``mask`` (which must not be empty), widened by
    ``margin`` voxels on each side (a number, or one per axis) and cut at the array's edges."""
    margin = np.broadcast_to(np.asarray(margin, dtype=int), (mask.ndim,))
    box = []
    for axis in range(mask.ndim):
        idx = np.flatnonzero(mask.any(axis=tuple(j for j in range(mask.ndim) if j != axis)))
        lo, hi = int(idx[0]) - int(margin[axis]), int(idx[-1]) + 1 + int(margin[axis])
        box.append(slice(max(lo, 0), min(hi, mask.shape[axis])))
    return tuple(box)


def mean_index(mask: np.ndarray) -> np.ndarray:
    """The mean voxel index (float64, one per axis) of the True voxels of ``mask`` (which must not be empty), from
    its counts per slab, without listing every voxel: the sums are of integers, exact in any order, so this is
    ``np.argwhere(mask).mean(axis=0)`` to the last bit."""
    mask = np.asarray(mask, dtype=bool)
    count = int(np.count_nonzero(mask))
    mean = []
    for axis in range(mask.ndim):
        per_slab = np.count_nonzero(mask, axis=tuple(j for j in range(mask.ndim) if j != axis))
        mean.append(float(np.dot(np.arange(mask.shape[axis], dtype=np.int64), per_slab.astype(np.int64))) / count)
    return np.asarray(mean)


def _expand(mask: np.ndarray, factors: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    if all(f == 1 for f in factors):
        return mask
    for axis, f in enumerate(factors):
        mask = np.repeat(mask, f, axis=axis)
    return mask[tuple(slice(0, s) for s in shape)]


def fill_holes(mask: np.ndarray, plane_axis: int | None = None) -> np.ndarray:
    """Fill the holes of ``mask``: background components that do not touch the array border.

    Same result as ``scipy.ndimage.binary_fill_holes`` (face connectivity) by one labelling pass,
    much faster on large masks than its iterated dilation. With ``plane_axis``, every slice across
    that axis is filled on its own (2D holes), still in one pass.
    """
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    if plane_axis is not None:
        structure = np.moveaxis(structure, plane_axis, 0).copy()
        structure[0] = structure[2] = False
        structure = np.moveaxis(structure, 0, plane_axis)
    labels, n = ndimage.label(~mask, structure=structure)
    if n == 0:
        return mask.copy()
    border = np.zeros(n + 1, dtype=bool)
    for axis in range(mask.ndim):
        if axis == plane_axis:
            continue
        for index in (0, -1):
            border[np.unique(np.take(labels, index, axis=axis))] = True
    border[0] = True
    return mask | ~border[labels]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes in every slice across each axis (which fills 3D cavities too); 2D: the plane."""
    if mask.ndim != 3:
        return fill_holes(mask)
    out = mask
    for axis in range(3):
        out = fill_holes(out, plane_axis=axis)
    return out


def _modality_code(volume: Volume, modality: str | None) -> str | None:
    from medfuse.modality import canonical_modality

    return canonical_modality(modality if modality is not None else volume.modality)


def head_mask(volume: Volume, modality: str | None = None, *, threshold: float | None = None) -> np.ndarray:
    """Boolean mask of the head (or body) in ``volume``, by a per-modality threshold and morphology.

    Args:
        volume: a 2D or 3D :class:`~medfuse.volume.Volume` (any units).
        modality: ``"MR"``, ``"CT"``, ``"PT"``, ``"NM"``; default ``volume.modality``. Decides the rule
            (see the module docstring).
        threshold: use this intensity threshold instead of the modality rule (same units as the
            array; voxels ``> threshold`` are candidates).

    Returns:
        A boolean array of ``volume.shape``, True inside the head. Never empty for an image with
        contrast: if morphology removes everything, the plain threshold mask is returned.
    """
    from scipy import ndimage

    code = _modality_code(volume, modality)
    full_shape = volume.shape
    factors = _block_factors(full_shape)
    a = np.asarray(volume.array, dtype=np.float32)
    blocks = block_mean(a, factors)
    if not np.isfinite(blocks).all():  # a NaN or an infinity makes its block's mean one: only then look at every voxel
        finite = np.isfinite(a)
        if not finite.all():
            a = np.where(finite, a, np.nanmin(np.where(finite, a, np.inf)))
        blocks = block_mean(a, factors)
    a = blocks
    spacing = volume.spacing * np.asarray(factors, dtype=np.float64)

    if threshold is None:
        if code == "CT" and looks_like_hu(volume):
            threshold = CT_AIR_THRESHOLD_HU
        elif code in ("PT", "NM"):
            sigma = _FUNCTIONAL_SIGMA_MM / np.maximum(spacing, 1e-6)
            a = ndimage.gaussian_filter(a, sigma=sigma, mode="nearest")
            lo, hi = np.percentile(a, [0.5, 99.5])
            threshold = float(lo + PET_FRACTION[code] * (hi - lo))
        else:
            lo, hi = np.percentile(a, [0.5, 99.5])
            threshold = otsu_threshold(np.clip(a, lo, hi))
    raw = a > threshold
    if not raw.any():
        return _expand(raw, factors, full_shape)
    # the morphology on the box of the candidates with one voxel of background around it (cut at the array's edges):
    # every step below gives there what it gives on the whole array (hole filling and the closing see the same
    # background around the head, the components keep their order), and nothing outside it
    box = bounding_box(raw, 1)
    m = _morphology(raw[box], spacing)
    if m is None:
        log.debug("head mask: opening removed everything; using the plain threshold mask")
        return _expand(raw, factors, full_shape)
    out = np.zeros_like(raw)
    out[box] = m
    return _expand(out, factors, full_shape)


def _morphology(raw: np.ndarray, spacing: np.ndarray) -> np.ndarray | None:
    """The head from the thresholded candidates (see the module docstring); None when the opening removes all."""
    from scipy import ndimage

    ndim = raw.ndim
    ball = ndimage.generate_binary_structure(ndim, 1)
    # fill first: the scalp (bright in MR) encloses the darker skull; a head cut by the field of
    # view (open at the neck) is closed in the slices across each axis
    filled = _fill_holes(raw)
    m = ndimage.binary_opening(filled, structure=ball, iterations=1)
    labels, n = ndimage.label(m)
    if n == 0:
        return None
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        m = labels == int(np.argmax(sizes))
    # closing with a ~3 mm radius, on a padded array so the border does not erode the head
    radius = min(3, max(1, int(round(3.0 / float(np.min(spacing))))))
    pad = radius + 1
    mp = ndimage.binary_closing(np.pad(m, pad), structure=ball, iterations=radius)
    m = mp[tuple(slice(pad, pad + s) for s in m.shape)] | m
    return fill_holes(m)
