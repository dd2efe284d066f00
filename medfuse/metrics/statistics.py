"""Pixel-statistics fusion metrics: SD of the fused image; MSE, RMSE, PSNR and SCD against the sources.

Inputs are 2D float arrays ``(H, W)`` on 0..255; ``mask`` (bool, same shape) restricts every
mean, variance and correlation to the pixels inside it. No 8-bit quantization happens here.
"""

from __future__ import annotations

import numpy as np

from medfuse.metrics._core import as_case, as_image, check_mask, masked_values

__all__ = [
    "standard_deviation",
    "mean_squared_error",
    "root_mean_squared_error",
    "peak_signal_to_noise_ratio",
    "sum_of_correlations_of_differences",
]

PEAK = 255.0


def standard_deviation(f: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Standard deviation SD of the fused image (population, ``ddof=0``). Higher is better; [0, 127.5].

    ``SD = sqrt(mean((F - mean(F))^2))`` (contrast). The review's eq. 17 omits the ``1/(MN)``;
    published tables (and the calibration values) include it.
    """
    f = as_image(f, "fused")
    return float(np.std(masked_values(f, check_mask(mask, f.shape))))


def _mse(x: np.ndarray, f: np.ndarray, mask: np.ndarray | None) -> float:
    d = masked_values(x, mask) - masked_values(f, mask)
    return float(np.mean(d * d))


def mean_squared_error(a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None) -> float:
    """MSE = (MSE(A, F) + MSE(B, F)) / 2 on the 0..255 scale (review eq. 9-10). Lower is better; [0, 65025]."""
    a, b, f, mask = as_case(a, b, f, mask)
    return 0.5 * (_mse(a, f, mask) + _mse(b, f, mask))


def root_mean_squared_error(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """RMSE = (RMSE(A, F) + RMSE(B, F)) / 2 (review eq. 11-12). Lower is better; [0, 255].

    The mean of the two root errors, not ``sqrt(MSE)`` (they differ when the two errors differ).
    """
    a, b, f, mask = as_case(a, b, f, mask)
    return 0.5 * (np.sqrt(_mse(a, f, mask)) + np.sqrt(_mse(b, f, mask)))


def peak_signal_to_noise_ratio(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """PSNR = 10 log10(255^2 / MSE) in dB, with MSE from :func:`mean_squared_error`. Higher is better; [0, inf].

    The peak ``r`` is the 8-bit range 255 (review eq. 24; the same ``data_range=255`` as
    ``skimage.metrics.peak_signal_noise_ratio``, which this equals when ``A == B``). ``inf`` when F
    equals both sources.
    """
    mse = mean_squared_error(a, b, f, mask)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(PEAK * PEAK / mse))


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def sum_of_correlations_of_differences(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """SCD = corr(F - B, A) + corr(F - A, B) (Aslantas & Bendes 2015). Higher is better; [-2, 2].

    ``corr`` is Pearson's correlation coefficient (MATLAB ``corr2``); a correlation whose
    variance term is zero (a constant difference or source) counts as 0.

    Reference: V. Aslantas, E. Bendes, A new image quality metric for image fusion: the sum of the
    correlations of differences, AEU Int. J. Electron. Commun. 69(12) (2015) 1890-1896.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    av, bv, fv = (masked_values(x, mask) for x in (a, b, f))
    return _corr(fv - bv, av) + _corr(fv - av, bv)
