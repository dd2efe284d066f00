"""Information-theoretic fusion metrics: EN, MI, NMI, CE, QNCIE and FMI.

Inputs are 2D float arrays ``(H, W)`` on 0..255; ``mask`` (bool, same shape) restricts the
histograms (and FMI's windows) to the pixels inside it. Histogram metrics quantize with
:func:`medfuse.metrics._core.to_uint8` (``clip(round(x), 0, 255)``) and use 256 bins; entropies
are in bits (``log2``), so ``EN <= 8`` and ``MI(X, F) <= min(H(X), H(F))``.
"""

from __future__ import annotations

import numpy as np

from medfuse.metrics._core import (
    as_case,
    as_image,
    check_mask,
    entropy_bits,
    histogram256,
    joint_histogram256,
    masked_values,
    to_uint8,
)

__all__ = [
    "entropy",
    "mutual_information",
    "fusion_mutual_information",
    "normalized_mutual_information",
    "cross_entropy",
    "nonlinear_correlation_information_entropy",
    "feature_mutual_information",
    "gradient_feature",
]


def entropy(f: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Shannon entropy EN (bits) of the 256-bin histogram of ``clip(round(F), 0, 255)``.

    ``EN = -sum_l p_l log2 p_l`` (review eq. 13). Higher is better; range [0, 8]. Equals
    ``skimage.measure.shannon_entropy(F_u8, base=2)``.

    Reference: J. W. Roberts et al., Assessment of image fusion procedures using entropy, image
    quality, and multispectral classification, J. Appl. Remote Sens. 2(1) (2008) 023522.
    """
    f = as_image(f, "fused")
    return entropy_bits(histogram256(to_uint8(f), check_mask(mask, f.shape)))


def _mi_and_entropies(x_u8: np.ndarray, y_u8: np.ndarray, mask) -> tuple[float, float, float]:
    pxy = joint_histogram256(x_u8, y_u8, mask)
    hx = entropy_bits(pxy.sum(axis=1))
    hy = entropy_bits(pxy.sum(axis=0))
    mi = hx + hy - entropy_bits(pxy)
    return max(mi, 0.0), hx, hy


def mutual_information(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mutual information MI(X, Y) in bits from the 256x256 joint histogram of the 8-bit images.

    ``MI = sum p(x, y) log2(p(x, y) / (p(x) p(y))) = H(X) + H(Y) - H(X, Y)``, so
    ``0 <= MI(X, Y) <= min(H(X), H(Y))`` and ``MI(X, X) = H(X)``.
    """
    x, y = as_image(x, "X"), as_image(y, "Y")
    if x.shape != y.shape:
        raise ValueError(f"mutual_information: shapes differ, {x.shape} vs {y.shape}")
    return _mi_and_entropies(to_uint8(x), to_uint8(y), check_mask(mask, x.shape))[0]


def fusion_mutual_information(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """MI = MI(A, F) + MI(B, F) in bits (review eq. 3-4; Qu et al. 2002). Higher is better; [0, 16].

    256x256-bin joint histograms of the 8-bit images. Some published tables report MI equal to
    exactly ``2 x EN`` (the MI of F with itself, twice), a known defect: here MI(A, F) is bounded
    by ``min(H(A), H(F))``.

    Reference: G. Qu, D. Zhang, P. Yan, Information measure for performance of image fusion,
    Electron. Lett. 38(7) (2002) 313-315.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    fu = to_uint8(f)
    return _mi_and_entropies(to_uint8(a), fu, mask)[0] + _mi_and_entropies(to_uint8(b), fu, mask)[0]


def normalized_mutual_information(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """NMI = 2 [MI(A,F) / (H(A) + H(F)) + MI(B,F) / (H(B) + H(F))] (Hossny et al. 2008; review eq. 6).

    Higher is better; range [0, 2] (each term is in [0, 1]; 1 when F equals that source). A term
    whose two entropies are both 0 (two constant images) counts as 0. Histograms as in
    :func:`fusion_mutual_information`.

    Reference: M. Hossny, S. Nahavandi, D. Creighton, Comments on 'Information measure for
    performance of image fusion', Electron. Lett. 44(18) (2008) 1066-1067.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    fu = to_uint8(f)
    total = 0.0
    for x in (a, b):
        mi, hx, hf = _mi_and_entropies(to_uint8(x), fu, mask)
        total += 2.0 * mi / (hx + hf) if hx + hf > 0 else 0.0
    return total


def _relative_entropy_shared_support(p: np.ndarray, q: np.ndarray) -> float:
    both = (p > 0) & (q > 0)
    return float((p[both] * np.log2(p[both] / q[both])).sum())


def cross_entropy(a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None) -> float:
    """CE = (D(A || F) + D(B || F)) / 2, bits (Bulanon et al. 2009). Lower is better; about [0, 8].

    ``D(X || F) = sum_l p_X(l) log2(p_X(l) / p_F(l))`` over the grey levels ``l`` where both
    256-bin histograms are non-zero: the definition of the VIFB/MEFB toolboxes' ``cross_entropy``
    (a Kullback-Leibler divergence that skips empty bins, so it stays finite). Because of the
    skipped bins it is 0 for ``F == X`` but can be slightly negative when the supports differ.

    Reference: D. M. Bulanon, T. Burks, V. Alchanatis, Image fusion of visible and thermal images
    for fruit detection, Biosyst. Eng. 103(1) (2009) 12-22.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    pf = histogram256(to_uint8(f), mask)
    ce = [_relative_entropy_shared_support(histogram256(to_uint8(x), mask), pf) for x in (a, b)]
    return 0.5 * (ce[0] + ce[1])


def _stretch_to_uint8(x: np.ndarray, mask) -> np.ndarray:
    v = masked_values(x, mask)
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        return np.zeros(x.shape, dtype=np.intp)
    return to_uint8((x - lo) / (hi - lo) * 255.0)


def nonlinear_correlation_information_entropy(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """QNCIE, nonlinear correlation information entropy (Wang, Shen & Jin 2008). Higher is better; [0, 1].

    Each image is min-max stretched to 0..255 and rounded (Liu's ``normalize1``; a constant image
    becomes all 0). ``NCC(X, Y) = (H(X) + H(Y) - H(X, Y)) / log2(256)`` from 256-bin
    histograms; ``R = [[1, NCC_AB, NCC_AF], [NCC_AB, 1, NCC_BF], [NCC_AF, NCC_BF, 1]]`` with
    eigenvalues ``lambda_i`` (negative round-off clipped to 0);
    ``QNCIE = 1 + sum_i (lambda_i / 3) log_256(lambda_i / 3)`` (``0 log 0 = 0``). The review's
    eq. 1 prints a double sum; this is the single sum of the original and of Liu's toolbox
    (``metricWang.m``), whose values (about 0.80-0.85) tables report.

    Reference: Q. Wang, Y. Shen, J. Jin, Performance evaluation of image fusion techniques, in:
    Image Fusion: Algorithms and Applications, Academic Press, 2008, ch. 19, pp. 469-492.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    au, bu, fu = (_stretch_to_uint8(x, mask) for x in (a, b, f))
    k, base = 3.0, 256.0

    def ncc(x, y):
        return _mi_and_entropies(x, y, mask)[0] / np.log2(base)

    n_ab, n_af, n_bf = ncc(au, bu), ncc(au, fu), ncc(bu, fu)
    r = np.array([[1.0, n_ab, n_af], [n_ab, 1.0, n_bf], [n_af, n_bf, 1.0]])
    lam = np.clip(np.linalg.eigvalsh(r), 0.0, None) / k
    lam = lam[lam > 0]
    return float(1.0 + (lam * np.log(lam) / np.log(base)).sum())


# --- FMI -------------------------------------------------------------------------------------

_FMI_CHUNK = 2048  # windows per vectorized chunk: (9, 9, 2048) float64 arrays stay in cache
_TINY = 1e-300


def _windows(feat: np.ndarray, w: int) -> np.ndarray:
    """(w*w, Nwin) window contents, each column in MATLAB ``x(:)`` (column-major) order; valid windows."""
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(feat, (w, w))  # (H-w+1, W-w+1, w, w): [row, col, dr, dc]
    # pixel index dc * w + dr (column-major), windows in row-major order of their position
    return np.ascontiguousarray(win.transpose(3, 2, 0, 1).reshape(w * w, -1))


def _window_pdfs(v: np.ndarray) -> np.ndarray:
    """Min-max normalize each column (all ones when flat) and scale it to sum 1. ``v``: (n, Nwin)."""
    lo = v.min(axis=0)
    span = v.max(axis=0) - lo
    flat = span == 0
    v = np.where(flat, 1.0, (v - lo) / np.where(flat, 1.0, span))
    return v / v.sum(axis=0)


def _neg_plogp_sum(p: np.ndarray) -> np.ndarray:
    """sum over all but the last axis of -p log2|p| (0 where p == 0; the Nelsen joint pdf can
    have negative masses, for which this is the real part MATLAB keeps)."""
    plogp = np.log2(np.maximum(np.abs(p), _TINY))
    plogp *= p
    return -plogp.reshape(-1, p.shape[-1]).sum(axis=0)


def _fmi_windows(px: np.ndarray, pf: np.ndarray) -> np.ndarray:
    """Normalized MI ``2 MI / (H(X) + H(F))`` of window pairs (Haghighat & Razian 2014).

    ``px``, ``pf``: (n, Nwin) window distributions, one window per column (the window axis is
    last so that every elementwise step runs over contiguous memory).
    """
    n = px.shape[0]
    pos = np.arange(1, n + 1, dtype=np.float64)

    def sd(p):
        m1 = pos @ p
        return np.sqrt(np.abs((pos * pos) @ p - m1 * m1))

    xc = px - px.mean(axis=0)
    fc = pf - pf.mean(axis=0)
    sxf = (xc * fc).sum(axis=0)
    den = np.sqrt((xc * xc).sum(axis=0) * (fc * fc).sum(axis=0))
    c = np.where(sxf == 0, 0.0, sxf / np.where(den == 0, 1.0, den))
    cov_target = c * sd(px) * sd(pf)

    # pmf of the Frechet bound copula: the overlap of the CDF steps of F and X (upper bound,
    # comonotone, where c >= 0) or of F and the reversed X (lower bound, where c < 0)
    cf = np.cumsum(pf, axis=0)
    cx = np.cumsum(px, axis=0)
    x_hi, x_lo = cx, cx - px
    neg = c < 0
    if neg.any():
        x_hi, x_lo = np.where(neg, 1.0 - x_lo, x_hi), np.where(neg, 1.0 - x_hi, x_lo)
    joint = np.minimum(cf[:, None, :], x_hi[None, :, :])  # (n_F, n_X, Nwin)
    joint -= np.maximum((cf - pf)[:, None, :], x_lo[None, :, :])
    np.maximum(joint, 0.0, out=joint)
    # covariance of the positions under the bound (Hoeffding), to mix it to correlation c
    pos2 = np.outer(pos, pos).ravel()
    cov_bound = pos2 @ joint.reshape(n * n, -1) - (pos @ pf) * (pos @ px)
    angle = np.where(cov_target == 0, 0.0, cov_target / np.where(cov_bound == 0, 1.0, cov_bound))

    # joint pdf = angle * bound + (1 - angle) * independence
    joint *= angle
    joint += (1.0 - angle) * (pf[:, None, :] * px[None, :, :])

    hx = _neg_plogp_sum(px)
    hf = _neg_plogp_sum(pf)
    mi = hx + hf - _neg_plogp_sum(joint)
    s = hx + hf
    return np.where(s > 0, 2.0 * mi / np.where(s > 0, s, 1.0), 0.0)


def _fmi_source(fx: np.ndarray, ff: np.ndarray) -> np.ndarray:
    """Per-window FMI of one source against the fused image; ``fx``, ``ff``: (n, Nwin) patches.

    Identical patches score 1. A flat patch (on either side) has a uniform distribution, hence
    correlation 0, an independent joint pdf and MI 0: it scores 0 without the joint computation.
    """
    identical = (fx == ff).all(axis=0)
    flat = (fx.max(axis=0) == fx.min(axis=0)) | (ff.max(axis=0) == ff.min(axis=0))
    out = np.where(identical, 1.0, 0.0)
    todo = np.flatnonzero(~identical & ~flat)
    for s in range(0, todo.size, _FMI_CHUNK):
        idx = todo[s : s + _FMI_CHUNK]
        out[idx] = _fmi_windows(_window_pdfs(fx[:, idx]), _window_pdfs(ff[:, idx]))
    return out


def gradient_feature(x: np.ndarray) -> np.ndarray:
    """FMI's gradient feature: MATLAB ``gradient(X)``, the signed derivative along columns.

    Central differences inside, one-sided differences on the first and last column
    (``numpy.gradient(x, axis=1)``), as in Haghighat's ``fmi.m`` (``'gradient'`` feature).
    """
    return np.gradient(x, axis=1)


def feature_mutual_information(
    a: np.ndarray,
    b: np.ndarray,
    f: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    window: int = 3,
) -> float:
    """Feature mutual information FMI on gradient maps (fast-FMI, Haghighat & Razian 2014). Higher is better; [0, 1].

    Follows Haghighat's reference ``fmi.m`` with the ``'gradient'`` feature and ``w = 3``: the
    feature of each image is :func:`gradient_feature` (MATLAB ``gradient``: horizontal central
    differences). For every ``window x window`` neighbourhood (valid windows only) and each source
    X: if the X and F feature patches are identical the window scores 1; otherwise each patch is
    min-max normalized (all ones when flat) and scaled to a probability distribution over its
    pixels (column-major order); their joint distribution is Nelsen's mixture of the Frechet
    bound and independence that has the patches' Pearson correlation; the window scores
    ``2 MI / (H(X) + H(F))`` in bits (negative joint masses contribute ``-p log2|p|``, the real
    part MATLAB keeps). FMI is the mean over windows (those centred inside ``mask``) of the
    average of the two sources' scores.

    Conventions that differ between papers: the review (eq. 5) writes the unnormalized sum
    ``MI(A^, F^) + MI(B^, F^)`` over whole-image feature distributions (the 2011 FMI, quadratic in
    the number of pixels); tables report this windowed, normalized version, in [0, 1]. Some
    re-implementations use the gradient magnitude instead of ``gradient(X)``; values then differ.

    References: M. Haghighat, A. Aghagolzadeh, H. Seyedarabi, A non-reference image fusion metric
    based on mutual information of image features, Comput. Electr. Eng. 37(5) (2011) 744-756;
    M. Haghighat, M. A. Razian, Fast-FMI: non-reference image fusion metric, IEEE AICT 2014.
    """
    a, b, f, mask = as_case(a, b, f, mask)
    if window < 2 or min(f.shape) < window:
        raise ValueError(f"FMI: window {window} must be >= 2 and fit in the image {f.shape}")
    fa, fb, ff = (_windows(gradient_feature(x), window) for x in (a, b, f))
    if mask is not None:
        h = (window - 1) // 2
        keep = mask[h : h + f.shape[0] - window + 1, h : h + f.shape[1] - window + 1].ravel()
        if not keep.any():
            raise ValueError("FMI: no window centre lies inside the mask")
        fa, fb, ff = fa[:, keep], fb[:, keep], ff[:, keep]
    return float(np.mean(0.5 * (_fmi_source(fa, ff) + _fmi_source(fb, ff))))
