"""Structural fusion metrics: SSIM, MS_SSIM and VIF, each summed over the two sources.

Inputs are 2D float arrays ``(H, W)`` on 0..255 (``data_range = 255``); ``mask`` (bool, same
shape) restricts the averages to the local windows centred inside it.
"""

from __future__ import annotations

import logging

import numpy as np

from medfuse.errors import look_up
from medfuse.metrics._core import as_case, as_image, check_mask

__all__ = [
    "ssim",
    "structural_similarity",
    "ms_ssim",
    "multiscale_structural_similarity",
    "vif",
    "visual_information_fidelity",
    "MS_SSIM_MIN_SIZE",
    "VIF_MIN_SIZE",
]

log = logging.getLogger(__name__)

DATA_RANGE = 255.0
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: smallest side for MS-SSIM: the 11-pixel window must fit the coarsest of the 5 scales
MS_SSIM_MIN_SIZE = 11 * 2 ** (len(MS_SSIM_WEIGHTS) - 1)
#: smallest side for which every scale of pixel-domain VIF has a non-empty 'valid' map
VIF_MIN_SIZE = 41


def _skimage_ssim():
    try:
        from skimage.metrics import structural_similarity as sk_ssim
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            'SSIM needs scikit-image, a medfuse dependency that is missing: pip install scikit-image'
        ) from err
    return sk_ssim


def ssim(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM of one image pair: ``skimage.metrics.structural_similarity`` with its defaults.

    7x7 uniform window, ``K1 = 0.01``, ``K2 = 0.03``, sample covariances, ``data_range = 255``;
    the mean runs over the map without its 3-pixel border (scikit-image's convention), and with a
    mask over the border-free map pixels inside the mask. Range [-1, 1], 1 for identical images.
    """
    x, y = as_image(x, "X"), as_image(y, "Y")
    mask = check_mask(mask, x.shape)
    sk_ssim = _skimage_ssim()
    if mask is None:
        return float(sk_ssim(x, y, data_range=DATA_RANGE))
    _, smap = sk_ssim(x, y, data_range=DATA_RANGE, full=True)
    pad = 3  # (win_size - 1) // 2 for the default win_size 7
    inner = mask[pad:-pad, pad:-pad]
    if not inner.any():
        raise ValueError("SSIM: the mask has no pixel at least 3 pixels from the image border")
    return float(smap[pad:-pad, pad:-pad][inner].mean())


def structural_similarity(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """SSIM = SSIM(A, F) + SSIM(B, F) (review eq. 7-8). Higher is better; range [-2, 2].

    Each term is :func:`ssim` (scikit-image defaults, ``data_range = 255``). The review's
    three-factor eq. 7 with ``C3 = C2 / 2`` reduces to the same two-factor formula.

    Reference: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, Image quality assessment: from
    error visibility to structural similarity, IEEE Trans. Image Process. 13(4) (2004) 600-612.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    return ssim(a, f, mask) + ssim(b, f, mask)


def _gaussian_window_1d(size: int, sigma: float) -> np.ndarray:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r * r) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Correlate with the separable window ``g g^T`` and keep the 'valid' part (MATLAB ``filter2(.., 'valid')``)."""
    from scipy import ndimage

    n = g.size
    y = ndimage.correlate1d(x, g, axis=0, mode="constant")
    y = ndimage.correlate1d(y, g, axis=1, mode="constant")
    lo, hi = (n - 1) // 2, n // 2  # a valid output pixel needs lo pixels before and hi after
    return y[lo : x.shape[0] - hi, lo : x.shape[1] - hi]


def _valid_mask(mask: np.ndarray | None, n: int) -> np.ndarray | None:
    if mask is None:
        return None
    lo, hi = (n - 1) // 2, n // 2
    return mask[lo : mask.shape[0] - hi, lo : mask.shape[1] - hi]


def _mean_in(x: np.ndarray, mask: np.ndarray | None) -> float:
    if mask is None or not mask.any():
        return float(x.mean())
    return float(x[mask].mean())


def ms_ssim(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Multi-scale SSIM of one image pair (Wang, Simoncelli & Bovik 2003). Range [0, 1].

    Five scales; 11x11 Gaussian window (sigma 1.5), 'valid' filtering, population variances,
    ``K1 = 0.01``, ``K2 = 0.03``, ``data_range = 255``; between scales a 2x2 average and
    subsampling by 2; ``MS_SSIM = prod_{j<5} cs_j^{w_j} * (l_5 cs_5)^{w_5}`` with the published
    weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Negative per-scale means are clipped to 0
    before the power (as ``torchmetrics``' ``normalize='relu'``), so anti-correlated images score 0
    rather than NaN. Needs at least 176 pixels per side (11 at the coarsest scale); smaller
    images give NaN with a warning. With a mask, each scale averages over the window centres
    inside the mask (the mask is reduced like the image, a 2x2 block counting when half of it is in).
    """
    x, y = as_image(x, "X"), as_image(y, "Y")
    mask = check_mask(mask, x.shape)
    n_scales, size = len(MS_SSIM_WEIGHTS), 11
    if min(x.shape) < MS_SSIM_MIN_SIZE:
        log.warning("MS_SSIM needs images of at least %d pixels per side, got %s: returning NaN",
                    MS_SSIM_MIN_SIZE, x.shape)
        return float("nan")
    g = _gaussian_window_1d(size, 1.5)
    c1 = (0.01 * DATA_RANGE) ** 2
    c2 = (0.03 * DATA_RANGE) ** 2
    m = None if mask is None else mask.astype(np.float64)
    values = []
    for level in range(n_scales):
        mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
        sxx = _filter_valid(x * x, g) - mu_x * mu_x
        syy = _filter_valid(y * y, g) - mu_y * mu_y
        sxy = _filter_valid(x * y, g) - mu_x * mu_y
        cs_map = (2.0 * sxy + c2) / (sxx + syy + c2)
        vm = _valid_mask(None if m is None else m >= 0.5, size)
        if level < n_scales - 1:
            values.append(_mean_in(cs_map, vm))
            x, y = _downsample2(x), _downsample2(y)
            m = None if m is None else _downsample2(m)
        else:
            l_map = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
            values.append(_mean_in(l_map * cs_map, vm))
    vals = np.clip(np.asarray(values), 0.0, None)
    return float(np.prod(vals ** np.asarray(MS_SSIM_WEIGHTS)))


def _downsample2(x: np.ndarray) -> np.ndarray:
    """2x2 block average with stride 2 (an odd last row/column is dropped), as ``avg_pool2d(2)``."""
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def multiscale_structural_similarity(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """MS_SSIM = MS-SSIM(A, F) + MS-SSIM(B, F) (:func:`ms_ssim`). Higher is better; range [0, 2].

    Reference: Z. Wang, E. P. Simoncelli, A. C. Bovik, Multiscale structural similarity for image
    quality assessment, 37th Asilomar Conference on Signals, Systems and Computers (2003).
    """
    a, b, f, mask = as_case(a, b, f, mask)
    return ms_ssim(a, f, mask) + ms_ssim(b, f, mask)


_VIF_BORDERS = ("valid", "reflect")


def _vif_sums(
    ref: np.ndarray, dist: np.ndarray, mask: np.ndarray | None, sigma_nsq: float, borders: str
) -> tuple[float, float]:
    from scipy import ndimage

    num = den = 0.0
    m = mask
    eps = 1e-10
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        if borders == "valid":
            g = _gaussian_window_1d(n, n / 5.0)

            def filt(x, g=g):
                return _filter_valid(x, g)

            def crop(mk, n=n):
                return _valid_mask(mk, n)

        else:

            def filt(x, sigma=n / 5.0):
                return ndimage.gaussian_filter(x, sigma, mode="reflect")

            def crop(mk):
                return mk

        if scale > 1:
            ref = filt(ref)[::2, ::2]
            dist = filt(dist)[::2, ::2]
            m = None if m is None else crop(m)[::2, ::2]
        mu1, mu2 = filt(ref), filt(dist)
        s1 = np.maximum(filt(ref * ref) - mu1 * mu1, 0.0)
        s2 = np.maximum(filt(dist * dist) - mu2 * mu2, 0.0)
        s12 = filt(ref * dist) - mu1 * mu2
        gain = s12 / (s1 + eps)
        sv = s2 - gain * s12
        flat1 = s1 < eps
        gain = np.where(flat1, 0.0, gain)
        sv = np.where(flat1, s2, sv)
        s1 = np.where(flat1, 0.0, s1)
        flat2 = s2 < eps
        gain = np.where(flat2, 0.0, gain)
        sv = np.where(flat2, 0.0, sv)
        neg = gain < 0
        sv = np.where(neg, s2, sv)
        gain = np.where(neg, 0.0, gain)
        sv = np.maximum(sv, eps)
        num_map = np.log10(1.0 + gain * gain * s1 / (sv + sigma_nsq))
        den_map = np.log10(1.0 + s1 / sigma_nsq)
        vm = None if m is None else crop(m)
        if vm is not None and vm.any():
            num += float(num_map[vm].sum())
            den += float(den_map[vm].sum())
        else:
            num += float(num_map.sum())
            den += float(den_map.sum())
    return num, den


def vif(
    ref: np.ndarray,
    dist: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    sigma_nsq: float = 2.0,
    borders: str = "valid",
) -> float:
    """Pixel-domain VIF of a distorted image against a reference (Sheikh & Bovik's ``vifp_mscale.m``).

    Four scales; at scale ``s`` a Gaussian window of size ``N = 2^(5-s) + 1`` and sigma ``N / 5``;
    before scales 2-4 the images are filtered and subsampled by 2; local variances clipped at 0;
    gain ``g = s12 / s1``, noise ``sv = s2 - g s12`` with the reference code's guards;
    ``VIF = sum log10(1 + g^2 s1 / (sv + sigma_n^2)) / sum log10(1 + s1 / sigma_n^2)``,
    ``sigma_n^2 = 2`` (on 0..255). 1 for identical images; can exceed 1 for contrast
    enhancement; 0 when the reference has no variance anywhere (0/0 is reported as 0).

    Args:
        ref: the reference image (a source), ``(H, W)``, 0..255.
        dist: the distorted image (the fused one), same shape.
        mask: optional bool ``(H, W)``; the sums run over the window centres inside it (the mask
            is cropped and subsampled with the images).
        sigma_nsq: the HVS noise variance.
        borders: ``"valid"`` (default): the reference MATLAB code, ``N x N`` windows, 'valid'
            filtering (maps shrink at every scale). ``"reflect"``: ``scipy.ndimage.gaussian_filter``
            (``sigma = N / 5``, truncated at 4 sigma, 'reflect' borders, same-size maps), the
            definition of ``../shared/calibration`` (it reproduces that CSV to 1e-5); it weights
            image borders more and differs from ``"valid"`` by up to about 5% on AANLIB slices.

    Reference: H. R. Sheikh, A. C. Bovik, Image information and visual quality, IEEE Trans. Image
    Process. 15(2) (2006) 430-444.
    """
    ref, dist = as_image(ref, "reference"), as_image(dist, "distorted")
    mask = check_mask(mask, ref.shape)
    borders = look_up(borders, _VIF_BORDERS, "VIF borders")
    if min(ref.shape) < VIF_MIN_SIZE:
        raise ValueError(
            f"VIF needs images of at least {VIF_MIN_SIZE} pixels per side (4 scales), got {ref.shape}"
        )
    num, den = _vif_sums(ref, dist, mask, sigma_nsq, borders)
    return num / den if den > 0 else 0.0


def visual_information_fidelity(
    a: np.ndarray,
    b: np.ndarray,
    f: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    borders: str = "valid",
) -> float:
    """VIF = VIF(A, F) + VIF(B, F), pixel-domain VIF (:func:`vif`, ``sigma_n^2 = 2``). Higher is better; [0, ~2].

    Each term has the source as reference and the fused image as the distorted image. Fusion
    toolboxes differ here: VIFB's ``metricsVif`` computes a fusion-specific VIFF (Han et al.
    2013), and some papers average the two terms. ``borders="valid"`` (default) is Sheikh &
    Bovik's reference code; the calibration CSV in ``../shared/calibration`` used
    ``borders="reflect"`` (scipy Gaussian filtering), which this reproduces exactly; the two
    differ by -5.3% to +2.8% on the six calibration cases.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    return vif(a, f, mask, borders=borders) + vif(b, f, mask, borders=borders)
