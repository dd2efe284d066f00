"""Classical fusion baselines: mean, max, Laplacian pyramid, wavelet and guided-filter fusion.

:func:`fuse_classical` takes two registered images normalized to [0, 1] (float, same shape: 2D
``(H, W)`` or 3D ``(X, Y, Z)``) and returns float32 in [0, 1] of that shape. 3D volumes are fused
**slice by slice** (``mean`` and ``max`` are voxelwise, so natively 3D) through
:func:`medfuse.fusion.fuse_slicewise`: given the volume's ``affine``, in axial slices oriented like
the 2D training slices whatever the storage order; without it, across the stored ``axis`` (the
last by default). A loop over contiguous slices is faster here than filtering the whole volume
in-plane. The anatomical image is passed first; on exact ties the multi-scale rules keep its
coefficient.

:data:`CLASSICAL_METHODS` maps each name to its function ``f(a, b, **options) -> ndarray``:
2D ``(H, W)`` inputs (any shape for ``mean``/``max``), unchecked, unclipped float64.

``wavelet`` uses PyWavelets (a core dependency).

**Bounded output.** The multi-scale rules (``laplacian``, ``wavelet``, ``guided``) add the
larger-magnitude detail of either source onto a mixed base, which can overshoot both sources at
an edge (halo, ringing, up to 0.18 of the scale measured on the phantom CT) and push bright regions to
1 (7.7% of the head saturated for laplacian on the phantom PET). Their result is therefore clamped
to the sources' local range, ``[min(a, b) - m, max(a, b) + m]`` over a 3 x 3 in-plane
neighbourhood (:func:`clamp_to_local_range`, ``m`` = :data:`OUTPUT_MARGIN` = 0.05 of the [0, 1]
scale, less near 0 and 1: ``m * lo`` below, ``m * (1 - hi)`` above, and never more than halfway
from the pixel's own sources to 0 or 1; ``margin=None`` gives the textbook method). ``mean`` and ``max`` lie in the sources' range
by construction. The trained networks get the same bound (:mod:`medfuse.inference`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

__all__ = [
    "fuse_classical",
    "CLASSICAL_METHODS",
    "fuse_mean",
    "fuse_max",
    "fuse_laplacian",
    "fuse_wavelet",
    "fuse_guided",
    "laplacian_pyramid",
    "reconstruct_laplacian_pyramid",
    "guided_filter",
    "clamp_to_local_range",
    "OUTPUT_MARGIN",
    "LOCAL_RANGE_SIZE",
]

log = logging.getLogger(__name__)

#: margin ``m`` of the output bound: fused values stay within ``[min(a, b) - m, max(a, b) + m]`` of
#: the sources over a ``LOCAL_RANGE_SIZE`` x ``LOCAL_RANGE_SIZE`` in-plane neighbourhood (fraction of
#: the [0, 1] scale). Every default method (classical and network) keeps to it.
OUTPUT_MARGIN = 0.05
#: in-plane size (pixels) of the neighbourhood of :func:`clamp_to_local_range`
LOCAL_RANGE_SIZE = 3


def clamp_to_local_range(
    fused: np.ndarray, a: np.ndarray, b: np.ndarray, margin: float = OUTPUT_MARGIN, size: int = LOCAL_RANGE_SIZE
) -> np.ndarray:
    """Clamp ``fused`` to the sources' local range ``[lo, hi]`` widened by at most ``margin``.

    ``lo``/``hi`` are the minimum/maximum of both sources over a ``size`` x ``size`` in-plane
    neighbourhood (the last two axes of ``(H, W)`` or ``(S, H, W)``). The bounds are
    ``lo - margin * lo`` and ``hi + margin * (1 - hi)``: at most ``margin`` beyond the sources, and
    the allowance shrinks toward the ends of the [0, 1] scale; in addition the result stays at
    most halfway from the pixel's brighter source to 1 (``(1 + max(a, b)) / 2``) and from its
    darker source to 0 (``min(a, b) / 2``). So it reaches 0.99 only where a source is at least
    0.98 at that pixel (0.01 only where one is at most 0.02): no saturation the sources do not hold.

    Args:
        fused: the fused image.
        a, b: the sources, same shape.
        margin: how far beyond the sources' local extremes the result may go.
        size: neighbourhood edge in pixels (odd).
    """
    from medfuse.filters import local_max, local_min

    dtype = np.result_type(a, b, np.float32)
    low, high = np.minimum(a, b, dtype=dtype), np.maximum(a, b, dtype=dtype)
    lo, hi = local_min(low, size), local_max(high, size)
    # floor = max(lo - margin * clip(lo, 0, 1), low / 2), ceiling = min(hi + margin * clip(1 - hi, 0, 1),
    # (1 + high) / 2), in place (a volume's temporaries are ~50 MB each)
    t = np.clip(lo, 0.0, 1.0)
    t *= -margin
    floor = lo
    floor += t
    low *= 0.5
    np.maximum(floor, low, out=floor)
    del low
    np.subtract(1.0, hi, out=t)
    np.clip(t, 0.0, 1.0, out=t)
    t *= margin
    ceiling = hi
    ceiling += t
    del t
    high += 1.0
    high *= 0.5
    np.minimum(ceiling, high, out=ceiling)
    del high
    return np.clip(fused, floor, ceiling)


# Burt & Adelson's 5-tap binomial generating kernel
_BURT_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def fuse_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Voxelwise average ``(a + b) / 2``."""
    return 0.5 * (a + b)


def fuse_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Voxelwise maximum."""
    return np.maximum(a, b)


def _burt_blur(x: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    y = ndimage.correlate1d(x, _BURT_KERNEL, axis=0, mode="reflect")
    return ndimage.correlate1d(y, _BURT_KERNEL, axis=1, mode="reflect")


def _pyr_reduce(x: np.ndarray) -> np.ndarray:
    return _burt_blur(x)[::2, ::2]


def _pyr_expand(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    up = np.zeros(shape, dtype=x.dtype)
    up[::2, ::2] = x
    return 4.0 * _burt_blur(up)


def _fit_levels(shape: tuple[int, ...], levels: int, minimum: int = 4) -> int:
    fit = levels
    while fit > 0 and min(shape[:2]) / 2**fit < minimum:
        fit -= 1
    if fit < levels:
        log.debug("image %s too small for %d pyramid levels; using %d", shape[:2], levels, fit)
    return fit


def laplacian_pyramid(x: np.ndarray, levels: int = 4) -> list[np.ndarray]:
    """Laplacian pyramid of a 2D image (Burt & Adelson 1983), 5-tap binomial kernel, 'reflect' borders.

    Args:
        x: float ``(H, W)``.
        levels: number of detail (band-pass) levels; fewer when the image is too small for
            ``levels`` halvings (the coarsest level keeps at least 4 pixels per side).

    Returns:
        ``[L_0, ..., L_{n-1}, G_n]``: band-pass levels from fine to coarse, then the low-pass base.
        :func:`reconstruct_laplacian_pyramid` inverts it exactly.
    """
    g = np.asarray(x, dtype=np.float64)
    bands = []
    for _ in range(_fit_levels(g.shape, levels)):
        low = _pyr_reduce(g)
        bands.append(g - _pyr_expand(low, g.shape))
        g = low
    bands.append(g)
    return bands


def reconstruct_laplacian_pyramid(bands: list[np.ndarray]) -> np.ndarray:
    """Invert :func:`laplacian_pyramid`: expand the base and add the band-pass levels back."""
    x = bands[-1]
    for detail in reversed(bands[:-1]):
        x = _pyr_expand(x, detail.shape) + detail
    return x


def _max_abs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) >= np.abs(y), x, y)


#: local-energy ratio from which the detail rule ``"energy"`` takes one source's coefficient alone
ENERGY_RATIO = 4.0


def _energy_select(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Detail rule ``"energy"``: weigh each coefficient by its local (3 x 3) energy.

    ``w_x = clip(0.5 + log(E_x / E_y) / (2 log ENERGY_RATIO), 0, 1)``: the coefficient of the source
    with clearly more local energy (ratio >= 4) is taken alone, as by the max-abs rule; where both
    have about the same energy (flat regions holding only noise) the two are averaged, so noise
    is not amplified (the max-abs rule picks the larger of two independent noises pixel by pixel:
    +30% noise in flat regions, measured in tests/test_no_halo.py).
    """
    from scipy import ndimage

    ex = ndimage.uniform_filter(x * x, 3, mode="reflect") + 1e-12
    ey = ndimage.uniform_filter(y * y, 3, mode="reflect") + 1e-12
    w = np.clip(0.5 + np.log(ex / ey) / (2.0 * np.log(ENERGY_RATIO)), 0.0, 1.0)
    return w * x + (1.0 - w) * y


_DETAIL_RULES = {"energy": _energy_select, "max_abs": _max_abs}


def _detail_rule(rule: str):
    from medfuse.errors import look_up

    return look_up(rule, _DETAIL_RULES, "detail rule")


def _bounded(fused: np.ndarray, a: np.ndarray, b: np.ndarray, margin: float | None) -> np.ndarray:
    return fused if margin is None else clamp_to_local_range(fused, a, b, margin)


def fuse_laplacian(a: np.ndarray, b: np.ndarray, *, levels: int = 4, margin: float | None = OUTPUT_MARGIN,
                   rule: str = "energy") -> np.ndarray:
    """Laplacian-pyramid fusion: per band-pass coefficient the stronger source's detail, mean base.

    Args:
        a, b: 2D images ``(H, W)`` in [0, 1].
        levels: detail levels of the pyramid (default 4: a 256x256 slice keeps a 16x16 base).
        margin: the result is clamped to the sources' local range plus ``margin``
            (:func:`clamp_to_local_range`); None: unbounded (halos at strong edges).
        rule: ``"energy"`` (default: weights from the coefficients' local energy, averaging where
            the two are alike, see :func:`_energy_select`) or ``"max_abs"`` (the textbook rule:
            the larger magnitude per coefficient, which amplifies noise in flat regions).
    """
    select = _detail_rule(rule)
    pa, pb = laplacian_pyramid(a, levels), laplacian_pyramid(b, levels)
    fused = [select(x, y) for x, y in zip(pa[:-1], pb[:-1])]
    fused.append(0.5 * (pa[-1] + pb[-1]))
    return _bounded(reconstruct_laplacian_pyramid(fused), a, b, margin)


def _pywt():
    try:
        import pywt
    except ImportError as err:
        raise ImportError(
            'wavelet fusion needs PyWavelets, a medfuse dependency that is missing: pip install PyWavelets'
        ) from err
    return pywt


def fuse_wavelet(a: np.ndarray, b: np.ndarray, *, wavelet: str = "db2", levels: int = 3,
                 margin: float | None = OUTPUT_MARGIN, rule: str = "energy") -> np.ndarray:
    """Discrete-wavelet fusion: mean approximation, per detail coefficient the stronger source's.

    A ``levels``-level 2D DWT (PyWavelets ``wavedec2``, ``'symmetric'`` extension), fewer levels
    when the image is too small (``pywt.dwt_max_level``).

    Args:
        a, b: 2D images ``(H, W)`` in [0, 1].
        wavelet: a PyWavelets discrete wavelet name (default Daubechies-2).
        levels: decomposition levels (default 3).
        margin: the result is clamped to the sources' local range plus ``margin``
            (:func:`clamp_to_local_range`); None: unbounded (ringing at strong edges).
        rule: detail rule, ``"energy"`` (default) or ``"max_abs"`` (textbook), as in
            :func:`fuse_laplacian`.

    Raises:
        ImportError: PyWavelets is not installed (the message says how to install it).
    """
    pywt = _pywt()
    select = _detail_rule(rule)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = min(levels, pywt.dwt_max_level(min(a.shape[:2]), pywt.Wavelet(wavelet).dec_len))
    if n < levels:
        log.debug("image %s too small for %d wavelet levels; using %d", a.shape[:2], levels, n)
    if n < 1:
        return fuse_mean(a, b)
    ca = pywt.wavedec2(a, wavelet, mode="symmetric", level=n)
    cb = pywt.wavedec2(b, wavelet, mode="symmetric", level=n)
    fused = [0.5 * (ca[0] + cb[0])]
    for da, db in zip(ca[1:], cb[1:]):
        fused.append(tuple(select(x, y) for x, y in zip(da, db)))
    out = pywt.waverec2(fused, wavelet, mode="symmetric")
    return _bounded(out[: a.shape[0], : a.shape[1]], a, b, margin)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.uniform_filter(x, size=2 * radius + 1, mode="reflect")


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Guided filter (He, Sun & Tang 2013) with box means.

    ``q = mean(a) * I + mean(b)`` with ``a = cov(I, p) / (var(I) + eps)``, ``b = mean(p) - a mean(I)``
    over ``(2 radius + 1)^2`` windows (``scipy.ndimage.uniform_filter``, ``'reflect'`` borders).

    Args:
        guide: guidance image ``I`` (float, 2D; a 3D array is filtered in 3D windows).
        src: image to filter ``p``, same shape.
        radius: window radius in pixels.
        eps: regularization (in squared intensity units of ``guide``).
    """
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    cov_ip = _box(guide * src, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    coef_a = cov_ip / (var_i + eps)
    coef_b = mean_p - coef_a * mean_i
    return _box(coef_a, radius) * guide + _box(coef_b, radius)


def fuse_guided(
    a: np.ndarray,
    b: np.ndarray,
    *,
    base_size: int = 31,
    saliency_radius: int = 5,
    saliency_sigma: float = 5.0,
    r1: int = 45,
    eps1: float = 0.3,
    r2: int = 7,
    eps2: float = 1e-6,
    margin: float | None = OUTPUT_MARGIN,
) -> np.ndarray:
    """Guided-filtering-based fusion, GFF (Li, Kang & Hu 2013), with the paper's parameters.

    1. Two-scale decomposition: base ``B = I * mean filter (base_size x base_size)``, detail ``D = I - B``.
    2. Saliency ``S = |I * Laplacian(3x3)| * Gaussian(radius 5, sigma 5)``; binary weight maps
       ``P_n = [S_n == max(S_1, S_2)]`` (both 1 on ties).
    3. Weights refined by guided filtering with the source as guide:
       ``W_B = G_{r1, eps1}(P, I)`` for the bases, ``W_D = G_{r2, eps2}(P, I)`` for the details;
       clipped at 0 and normalized to sum to 1 per pixel (equal weights where both are 0).
    4. ``F = sum W_B B + sum W_D D``.

    Args:
        a, b: 2D images ``(H, W)`` in [0, 1] (the eps values assume this scale).
        base_size: mean-filter size of the two-scale decomposition.
        saliency_radius, saliency_sigma: Gaussian smoothing of the Laplacian magnitude.
        r1, eps1: guided filter for the base weights (large, smooth).
        r2, eps2: guided filter for the detail weights (small, edge-aligned).
        margin: the result is clamped to the sources' local range plus ``margin``
            (:func:`clamp_to_local_range`; not in the paper); None: unbounded.

    Reference: S. Li, X. Kang, J. Hu, Image fusion with guided filtering, IEEE Trans. Image
    Process. 22(7) (2013) 2864-2875.
    """
    from scipy import ndimage

    srcs = [np.asarray(x, dtype=np.float64) for x in (a, b)]
    bases = [ndimage.uniform_filter(x, size=base_size, mode="reflect") for x in srcs]
    details = [x - base for x, base in zip(srcs, bases)]
    lap = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    trunc = saliency_radius / saliency_sigma
    sal = [
        ndimage.gaussian_filter(np.abs(ndimage.correlate(x, lap, mode="reflect")), saliency_sigma,
                                mode="reflect", truncate=trunc)
        for x in srcs
    ]
    smax = np.maximum(sal[0], sal[1])
    maps = [(s == smax).astype(np.float64) for s in sal]

    def weights(radius: int, eps: float) -> list[np.ndarray]:
        w = [np.clip(guided_filter(x, p, radius, eps), 0.0, None) for x, p in zip(srcs, maps)]
        total = w[0] + w[1]
        flat = total <= 1e-12
        return [np.where(flat, 0.5, wi / np.where(flat, 1.0, total)) for wi in w]

    wb = weights(r1, eps1)
    wd = weights(r2, eps2)
    fused = wb[0] * bases[0] + wb[1] * bases[1] + wd[0] * details[0] + wd[1] * details[1]
    return _bounded(fused, srcs[0], srcs[1], margin)


#: method name -> function ``f(a, b, **options)`` (2D inputs in [0, 1]; output float64, not clipped to
#: [0, 1], within the sources' local range +- ``margin`` for the multi-scale methods)
CLASSICAL_METHODS: dict[str, Callable[..., np.ndarray]] = {
    "mean": fuse_mean,
    "max": fuse_max,
    "laplacian": fuse_laplacian,
    "wavelet": fuse_wavelet,
    "guided": fuse_guided,
}


_VOXELWISE = (fuse_mean, fuse_max)


def fuse_classical(
    a: np.ndarray,
    b: np.ndarray,
    method: str = "mean",
    *,
    affine: np.ndarray | None = None,
    axis: int = -1,
    **options: Any,
) -> np.ndarray:
    """Fuse two registered, normalized images with a classical method.

    Args:
        a: the anatomical image (MRI), float in [0, 1], ``(H, W)`` or ``(X, Y, Z)``.
        b: the second image on the same grid, float in [0, 1].
        method: ``mean``, ``max``, ``laplacian``, ``wavelet`` or ``guided`` (see :data:`CLASSICAL_METHODS`).
        affine: for a 3D volume, its voxel-to-RAS affine: the 2D methods then fuse axial slices in
            the training orientation (:func:`medfuse.fusion.fuse_slicewise`), whatever the storage order.
        axis: stored slice axis when ``affine`` is None (default the last).
        **options: keyword options of that method (``levels``, ``wavelet``, ``r1``...).

    Returns:
        float32 array of the inputs' shape, values in [0, 1] (3D: fused slice by slice, see ``affine``).

    Raises:
        OptionError (a ``ValueError``): unknown method (the message names the closest one).
        UnsupportedInputError: inputs outside [0, 1] or not 2D/3D.
        SpaceMismatchError: the shapes differ.
        NonFiniteError: NaN/inf values.
        ImportError: ``wavelet`` without PyWavelets.

    Example:
        >>> import numpy as np
        >>> a = np.random.default_rng(0).random((64, 64)); b = a[::-1]
        >>> fuse_classical(a, b, "laplacian").shape
        (64, 64)
    """
    from medfuse.errors import look_up
    from medfuse.slicing import check_fusion_inputs, fuse_slicewise

    fn = look_up(method, CLASSICAL_METHODS, "classical fusion method")
    # float64 (the pyramid and filter arithmetic); in-plane sizes of at least 2 (pyramids, gradients)
    a, b = check_fusion_inputs(a, b, "classical fusion", dtype=np.float64, min_size=2)
    if a.ndim == 2 or fn in _VOXELWISE:
        fused = fn(a, b, **options)
    else:
        def fuse_stack(sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
            return np.stack([fn(x, y, **options) for x, y in zip(sa, sb)])

        fused = fuse_slicewise(a, b, fuse_stack, affine=affine, axis=axis)
    return np.clip(fused, 0.0, 1.0).astype(np.float32)
