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
]

log = logging.getLogger(__name__)

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


def fuse_laplacian(a: np.ndarray, b: np.ndarray, *, levels: int = 4) -> np.ndarray:
    """Laplacian-pyramid fusion: per band-pass coefficient the larger magnitude, mean base.

    Args:
        a, b: 2D images ``(H, W)`` in [0, 1].
        levels: detail levels of the pyramid (default 4: a 256x256 slice keeps a 16x16 base).
    """
    pa, pb = laplacian_pyramid(a, levels), laplacian_pyramid(b, levels)
    fused = [_max_abs(x, y) for x, y in zip(pa[:-1], pb[:-1])]
    fused.append(0.5 * (pa[-1] + pb[-1]))
    return reconstruct_laplacian_pyramid(fused)


def _pywt():
    try:
        import pywt
    except ImportError as err:
        raise ImportError(
            'wavelet fusion needs PyWavelets, a medfuse dependency that is missing: pip install PyWavelets'
        ) from err
    return pywt


def fuse_wavelet(a: np.ndarray, b: np.ndarray, *, wavelet: str = "db2", levels: int = 3) -> np.ndarray:
    """Discrete-wavelet fusion: mean approximation, per detail coefficient the larger magnitude.

    A ``levels``-level 2D DWT (PyWavelets ``wavedec2``, ``'symmetric'`` extension), fewer levels
    when the image is too small (``pywt.dwt_max_level``).

    Args:
        a, b: 2D images ``(H, W)`` in [0, 1].
        wavelet: a PyWavelets discrete wavelet name (default Daubechies-2).
        levels: decomposition levels (default 3).

    Raises:
        ImportError: PyWavelets is not installed (the message says how to install it).
    """
    pywt = _pywt()
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
        fused.append(tuple(_max_abs(x, y) for x, y in zip(da, db)))
    out = pywt.waverec2(fused, wavelet, mode="symmetric")
    return out[: a.shape[0], : a.shape[1]]


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
    return wb[0] * bases[0] + wb[1] * bases[1] + wd[0] * details[0] + wd[1] * details[1]


#: method name -> function ``f(a, b, **options)`` (2D inputs in [0, 1]; output unclipped float64)
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
    from medfuse.fusion import check_fusion_inputs, fuse_slicewise

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
