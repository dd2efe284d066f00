"""Unsupervised fusion losses: SSIM, Var-SSIM, gradient, intensity and least-squares adversarial.

All functions take torch tensors ``(N, C, H, W[, D])`` (2D or 3D, inferred from ``ndim``) with
values in [0, 1]: ``fused`` is the network output, ``a`` the anatomical source (MRI), ``b`` the
other source (CT/PET/SPECT). They return a scalar tensor (mean over the batch) that is
differentiable with respect to ``fused``.

SSIM maps are MONAI's (:func:`monai.metrics.regression.compute_ssim_and_cs`: "valid" windows,
population (co)variances, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``), computed with separable
filters for speed (:func:`ssim_map`); adversarial terms use MONAI's
:class:`~monai.losses.PatchAdversarialLoss` (least squares).

Gradients are Sobel filters normalized so that a ramp rising by 1 per voxel gives 1 (derivative
``[-1, 0, 1] / 2`` along the axis, smoothing ``[1, 2, 1] / 4`` along each other axis), replicate
padding at the border; the gradient magnitude is the L1 norm ``|g_x| + |g_y| (+ |g_z|)``.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from medfuse.metrics.structural import VIF_MIN_SIZE

__all__ = [
    "ssim_map",
    "ssim_loss",
    "var_ssim_loss",
    "local_variance",
    "gradient_magnitude",
    "gradient_loss",
    "edge_transfer_loss",
    "scd_loss",
    "vif_loss",
    "intensity_loss",
    "saliency",
    "adversarial_loss",
    "FusionLoss",
    "LOSS_TERMS",
]

_VAR_TIE = 1e-6

#: the content loss terms :class:`FusionLoss` combines (weights keyed by these names)
LOSS_TERMS = ("var_ssim", "ssim", "intensity", "gradient", "scd", "qabf", "vif")


def _spatial_dims(x: torch.Tensor) -> int:
    if x.dim() not in (4, 5):
        raise ValueError(f"expected a tensor (N, C, H, W) or (N, C, H, W, D); got shape {tuple(x.shape)}")
    return x.dim() - 2


def _check_same(*tensors: torch.Tensor) -> int:
    dims = _spatial_dims(tensors[0])
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"loss inputs must share one shape; got {tuple(tensors[0].shape)} and {tuple(t.shape)}")
    return dims


def _check_window(x: torch.Tensor, win_size: int) -> None:
    if min(x.shape[2:]) < win_size:
        raise ValueError(f"every spatial size must be >= the SSIM window {win_size}; got {tuple(x.shape[2:])}")


def _gaussian_1d(win_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    dist = torch.arange(win_size, dtype=dtype, device=device) - (win_size - 1) / 2
    g = torch.exp(-0.5 * (dist / sigma) ** 2)
    return g / g.sum()


def _window_mean(x: torch.Tensor, win_size: int, kernel_type: str, sigma: float) -> torch.Tensor:
    """Weighted mean over every valid ``win_size`` window: a separable box (uniform) or Gaussian filter."""
    dims = x.dim() - 2
    if kernel_type == "uniform":
        g = torch.full((win_size,), 1.0 / win_size, dtype=x.dtype, device=x.device)
    elif kernel_type == "gaussian":
        g = _gaussian_1d(win_size, sigma, x.dtype, x.device)
    else:
        raise ValueError(f"kernel_type must be 'gaussian' or 'uniform'; got {kernel_type!r}")
    channels = x.shape[1]
    conv = F.conv2d if dims == 2 else F.conv3d
    for axis in range(dims):
        shape = [1, 1] + [1] * dims
        shape[2 + axis] = win_size
        kernel = g.reshape(shape).expand([channels, 1] + shape[2:])
        x = conv(x, kernel, groups=channels)
    return x


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    win_size: int = 11,
    kernel_type: str = "gaussian",
    kernel_sigma: float = 1.5,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Local SSIM of ``x`` and ``y``, one value per valid window position.

    The same quantity as MONAI's :func:`monai.metrics.regression.compute_ssim_and_cs` (same
    windows, constants and population (co)variances; the tests check equality), computed with
    separable filters (Gaussian) or box pooling (uniform): MONAI's dense ``win_size``-squared
    convolution is several times slower, in the backward pass especially, which dominates CPU
    training time.

    Args:
        x, y: ``(N, C, *S)`` tensors.
        win_size: window edge (voxels).
        kernel_type: ``"gaussian"`` (sigma ``kernel_sigma``) or ``"uniform"`` (a plain window mean).
        data_range: value range ``L`` of the images.

    Returns:
        ``(N, C, *(S - win_size + 1))`` SSIM map.
    """
    _check_same(x, y)
    _check_window(x, win_size)
    stats = _window_mean(torch.cat([x, y, x * x, y * y, x * y], dim=1), win_size, kernel_type, kernel_sigma)
    mu_x, mu_y, m_xx, m_yy, m_xy = stats.chunk(5, dim=1)
    return _ssim_from_moments(mu_x, mu_y, m_xx, m_yy, m_xy, data_range)


def _ssim_from_moments(mu_x, mu_y, m_xx, m_yy, m_xy, data_range: float) -> torch.Tensor:
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    var_x = m_xx - mu_x * mu_x
    var_y = m_yy - mu_y * mu_y
    cov = m_xy - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))


def ssim_loss(
    fused: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    weight_a: float = 0.5,
    win_size: int = 11,
    kernel_type: str = "gaussian",
    data_range: float = 1.0,
) -> torch.Tensor:
    """``1 - (w SSIM(F, A) + (1 - w) SSIM(F, B))``, SSIM averaged over windows and the batch."""
    kw = dict(win_size=win_size, kernel_type=kernel_type, data_range=data_range)
    sa = ssim_map(fused, a, **kw).mean()
    sb = ssim_map(fused, b, **kw).mean()
    return 1.0 - (weight_a * sa + (1.0 - weight_a) * sb)


def local_variance(x: torch.Tensor, win_size: int = 11) -> torch.Tensor:
    """Population variance of every ``win_size``-wide window ("valid" positions, uniform weights).

    Returns:
        ``(N, C, *(S - win_size + 1))``, aligned with :func:`ssim_map`.
    """
    dims = _spatial_dims(x)
    _check_window(x, win_size)
    del dims
    mean = _window_mean(x, win_size, "uniform", 0.0)
    return (_window_mean(x * x, win_size, "uniform", 0.0) - mean * mean).clamp_min(0.0)


def var_ssim_loss(
    fused: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    win_size: int = 11,
    kernel_type: str = "uniform",
    data_range: float = 1.0,
) -> torch.Tensor:
    """Variance-selected SSIM loss (FMMF paper, eq. 4-5).

    For every ``win_size`` window (11x11 in the paper) the source whose window has the larger
    variance is the target: ``SSIM(A, F)`` if ``var(A) > var(B)`` else ``SSIM(B, F)`` (ties go to
    ``B``, as in eq. 4; variances closer than 1e-6, a standard deviation of 0.001, are ties). The loss is ``1 - mean`` over windows, channels and the batch.

    ``kernel_type="uniform"`` (default) computes SSIM over the same plain window as the variance,
    as the paper's "patches" suggest; ``"gaussian"`` uses the usual SSIM weighting.
    """
    _check_same(fused, a, b)
    _check_window(fused, win_size)
    # one filtering pass for every local moment both SSIMs need
    m = _window_mean(torch.cat([fused, a, b, fused * fused, a * a, b * b, fused * a, fused * b], dim=1),
                     win_size, kernel_type, 1.5)
    mu_f, mu_a, mu_b, m_ff, m_aa, m_bb, m_fa, m_fb = m.chunk(8, dim=1)
    sa = _ssim_from_moments(mu_f, mu_a, m_ff, m_aa, m_fa, data_range)
    sb = _ssim_from_moments(mu_f, mu_b, m_ff, m_bb, m_fb, data_range)
    if kernel_type == "uniform":  # the variances of the same plain windows
        var_a, var_b = m_aa - mu_a * mu_a, m_bb - mu_b * mu_b
    else:
        var_a, var_b = local_variance(a, win_size), local_variance(b, win_size)
    # variances from window moments carry float32 rounding (~1e-7); closer than _VAR_TIE counts as a tie
    return 1.0 - torch.where(var_a > var_b + _VAR_TIE, sa, sb).mean()


def _sobel_kernels(dims: int, channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    deriv = torch.tensor([-0.5, 0.0, 0.5], dtype=dtype, device=device)
    smooth = torch.tensor([0.25, 0.5, 0.25], dtype=dtype, device=device)
    kernels = []
    for axis in range(dims):
        k = torch.ones([3] * dims, dtype=dtype, device=device)
        for j in range(dims):
            v = deriv if j == axis else smooth
            shape = [1] * dims
            shape[j] = 3
            k = k * v.reshape(shape)
        kernels.append(k)
    # (dims * channels, 1, 3, ...) for a grouped convolution: channel c gets kernels [c*dims, (c+1)*dims)
    return torch.stack(kernels).repeat(channels, *([1] * dims)).unsqueeze(1)


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """L1 Sobel gradient magnitude ``sum_axes |g_axis|`` per channel, same shape as ``x``.

    A ramp rising by ``s`` per voxel along one axis gives ``s`` (inside the image).
    """
    dims = _spatial_dims(x)
    channels = x.shape[1]
    kernel = _sobel_kernels(dims, channels, x.dtype, x.device)
    padded = F.pad(x, [1, 1] * dims, mode="replicate")
    conv = F.conv2d if dims == 2 else F.conv3d
    g = conv(padded, kernel, groups=channels)  # (N, C * dims, *S)
    return g.abs().reshape(x.shape[0], channels, dims, *x.shape[2:]).sum(dim=2)


def gradient_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Mean ``| |grad F| - gain * max(|grad A|, |grad B|) |`` (L1): keep the sharper source's edges
    everywhere; ``gain > 1`` asks for edges slightly stronger than the sources' (detail enhancement)."""
    _check_same(fused, a, b)
    target = gain * torch.maximum(gradient_magnitude(a), gradient_magnitude(b))
    return F.l1_loss(gradient_magnitude(fused), target)


def _sobel_xy(x: torch.Tensor) -> torch.Tensor:
    """Sobel derivatives ``(N, 2, H, W)`` of a one-channel 2D ``x`` (replicate borders)."""
    kernel = _sobel_kernels(2, 1, x.dtype, x.device)
    return F.conv2d(F.pad(x, [1, 1, 1, 1], mode="replicate"), kernel)


def edge_transfer_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``1 - Qabf``: a differentiable Xydeas-Petrovic edge-transfer score (issue 24).

    As :func:`medfuse.metrics.gradient.edge_preservation`: per source X, the relative Sobel strength
    ``G = (min(g_X, g_F) + eps) / (max(g_X, g_F) + eps)`` and relative orientation ``A = 1 - d / (pi/2)``
    pass the same sigmoids, ``Q^{XF} = Q_g Q_a``, averaged with the sources' strengths as weights. The
    orientation difference ``d`` is taken modulo pi (from ``|cos|`` of the angle between the gradients,
    smooth everywhere), where the metric's ``arctan`` differs by up to pi at near-vertical edges.
    Rewards carrying every edge of both sources at its own strength: edges invented or exaggerated
    lower ``G`` as much as edges lost. 2D, one channel."""
    _check_same(fused, a, b)
    if _spatial_dims(fused) != 2 or fused.shape[1] != 1:
        raise ValueError("edge_transfer_loss needs one-channel 2D tensors (N, 1, H, W)")
    gamma_g, k_g, sigma_g, gamma_a, k_a, sigma_a = 0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8
    df = _sobel_xy(fused)
    g_f = torch.sqrt((df * df).sum(1, keepdim=True) + eps * eps)
    num = fused.new_zeros(())
    den = fused.new_zeros(())
    for x in (a, b):
        dx = _sobel_xy(x)
        g_x = torch.sqrt((dx * dx).sum(1, keepdim=True) + eps * eps)
        ratio = (torch.minimum(g_x, g_f) + eps) / (torch.maximum(g_x, g_f) + eps)
        cos = ((dx * df).sum(1, keepdim=True) / (g_x * g_f)).abs().clamp(0.0, 1.0 - 1e-6)
        orient = 1.0 - torch.acos(cos) / (math.pi / 2)
        q = gamma_g * torch.sigmoid(-k_g * (ratio - sigma_g)) * gamma_a * torch.sigmoid(-k_a * (orient - sigma_a))
        w = g_x.detach()
        num = num + (q * w).sum()
        den = den + w.sum()
    return 1.0 - num / den.clamp_min(1e-8)


def saliency(x: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Local mean intensity over a ``window`` box (zero padding not counted): a voxel's salience.

    In anatomical/functional fusion bright means informative (tracer uptake, bone), so the local
    mean brightness is the salience used by :func:`intensity_loss` with ``mode="saliency"``.
    """
    dims = _spatial_dims(x)
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    if window <= 1:
        return x
    if window % 2 != 1:
        raise ValueError(f"saliency window must be odd; got {window}")
    return pool(x, window, stride=1, padding=window // 2, count_include_pad=False)


def intensity_loss(
    fused: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    mode: str = "max",
    window: int = 11,
    eps: float = 1e-6,
) -> torch.Tensor:
    """L1 distance of ``fused`` to an intensity target built from the sources.

    Args:
        mode: ``"max"``: target ``max(A, B)`` per voxel. ``"saliency"``: target
            ``(S_A A + S_B B) / (S_A + S_B)`` with ``S`` = :func:`saliency` (``window``); where both
            saliencies are 0 the target is 0.
        window: saliency window (odd; 1 means the intensity itself).
    """
    _check_same(fused, a, b)
    if mode == "max":
        target = torch.maximum(a, b)
    elif mode == "saliency":
        sa, sb = saliency(a, window), saliency(b, window)
        target = (sa * a + sb * b) / (sa + sb).clamp_min(eps)
    else:
        raise ValueError(f"intensity mode must be 'max' or 'saliency'; got {mode!r}")
    return F.l1_loss(fused, target)


def _correlation(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of each sample of ``x`` and ``y`` over channels and space: shape ``(N,)``."""
    x = x.flatten(1) - x.flatten(1).mean(dim=1, keepdim=True)
    y = y.flatten(1) - y.flatten(1).mean(dim=1, keepdim=True)
    return (x * y).sum(dim=1) / (x.square().sum(dim=1) * y.square().sum(dim=1) + eps).sqrt()


def scd_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``2 - SCD`` with SCD the sum of the correlations of differences (Aslantas & Bendes 2015):
    ``corr(F - B, A) + corr(F - A, B)``, averaged over the batch. The part of the fused image that
    is not explained by one source should look like the other source: complementary information of
    both is kept. 0 when SCD reaches its maximum of 2."""
    _check_same(fused, a, b)
    return 2.0 - (_correlation(fused - b, a) + _correlation(fused - a, b)).mean()


#: VIF's HVS noise variance on the 0..255 scale (as :func:`medfuse.metrics.structural.vif`)
VIF_SIGMA_NSQ = 2.0


def _vif_fraction(ref: torch.Tensor, dist: torch.Tensor, sigma_nsq: float = VIF_SIGMA_NSQ,
                  eps: float = 1e-10) -> torch.Tensor:
    """Pixel-domain VIF of each sample, ``(N,)``: :func:`medfuse.metrics.structural.vif` (``borders="valid"``,
    no mask) on torch tensors ``(N, 1, H, W)`` on the 0..255 scale, the same four scales, windows and
    guards, so that the loss and the benchmark's metric are one quantity (the tests compare them)."""
    num = ref.new_zeros(ref.shape[0])
    den = ref.new_zeros(ref.shape[0])
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1

        def filt(x, n=n):
            return _window_mean(x, n, "gaussian", n / 5.0)

        if scale > 1:
            ref = filt(ref)[..., ::2, ::2]
            dist = filt(dist)[..., ::2, ::2]
        mu1, mu2 = filt(ref), filt(dist)
        s1 = (filt(ref * ref) - mu1 * mu1).clamp_min(0.0)
        s2 = (filt(dist * dist) - mu2 * mu2).clamp_min(0.0)
        s12 = filt(ref * dist) - mu1 * mu2
        gain = s12 / (s1 + eps)
        sv = s2 - gain * s12
        flat1 = s1 < eps
        gain = torch.where(flat1, torch.zeros_like(gain), gain)
        sv = torch.where(flat1, s2, sv)
        s1 = torch.where(flat1, torch.zeros_like(s1), s1)
        flat2 = s2 < eps
        gain = torch.where(flat2, torch.zeros_like(gain), gain)
        sv = torch.where(flat2, torch.zeros_like(sv), sv)
        neg = gain < 0
        sv = torch.where(neg, s2, sv)
        gain = torch.where(neg, torch.zeros_like(gain), gain)
        sv = sv.clamp_min(eps)
        num = num + torch.log10(1.0 + gain * gain * s1 / (sv + sigma_nsq)).flatten(1).sum(1)
        den = den + torch.log10(1.0 + s1 / sigma_nsq).flatten(1).sum(1)
    return torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))


def vif_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - VIF / 2`` with VIF the benchmark's ``VIF(A, F) + VIF(B, F)`` (pixel-domain, Sheikh & Bovik;
    :func:`medfuse.metrics.structural.visual_information_fidelity`), averaged over the batch (issue 24:
    the fidelity term the SCD term had cost on PET-MRI). Each source is the reference, the fused image
    the distorted one; the images are taken on the metric's 0..255 scale. Rewards keeping each source's
    local signal at its own contrast and penalizes what the fused image adds that neither source
    explains. 2D, one channel, at least 41 pixels per side (four scales of 'valid' windows)."""
    _check_same(fused, a, b)
    if _spatial_dims(fused) != 2 or fused.shape[1] != 1:
        raise ValueError("vif_loss needs one-channel 2D tensors (N, 1, H, W)")
    if min(fused.shape[2:]) < VIF_MIN_SIZE:
        raise ValueError(f"vif_loss needs at least {VIF_MIN_SIZE} pixels per side (4 scales); "
                         f"got {tuple(fused.shape[2:])}")
    f = fused * 255.0
    total = _vif_fraction(a * 255.0, f) + _vif_fraction(b * 255.0, f)
    return 1.0 - 0.5 * total.mean()


def adversarial_loss(prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017) on raw discriminator outputs, via MONAI.

    Discriminator: ``mean((D(real) - 1)^2)`` for real inputs, ``mean(D(fake)^2)`` for fakes.
    Generator (``for_discriminator=False``): ``mean((D(fake) - 1)^2)``.
    """
    from monai.losses import PatchAdversarialLoss

    loss = PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)
    return loss(prediction, target_is_real=target_is_real or not for_discriminator, for_discriminator=for_discriminator)


class FusionLoss(nn.Module):
    """Weighted sum of content losses: ``sum_k w_k L_k(F, A, B)`` over :data:`LOSS_TERMS`.

    Args:
        weights: ``{"var_ssim": 1.0, "gradient": 0.5, ...}``; missing or zero terms are skipped.
        win_size: SSIM / Var-SSIM window.
        intensity_mode: ``"max"`` or ``"saliency"`` (see :func:`intensity_loss`).
        saliency_window: window of the saliency target.
        gradient_gain: the ``gain`` of :func:`gradient_loss`.

    ``forward(fused, a, b)`` returns ``(total, {term: value})`` (values detached floats).
    """

    def __init__(self, weights: Mapping[str, float], *, win_size: int = 11, intensity_mode: str = "max",
                 saliency_window: int = 11, gradient_gain: float = 1.0) -> None:
        super().__init__()
        unknown = sorted(set(weights) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"unknown loss term(s) {unknown}; expected some of {list(LOSS_TERMS)}")
        self.weights = {k: float(v) for k, v in weights.items() if float(v) != 0.0}
        if not self.weights:
            raise ValueError(f"at least one loss weight must be non-zero; got {dict(weights)}")
        if intensity_mode not in ("max", "saliency"):
            raise ValueError(f"intensity_mode must be 'max' or 'saliency'; got {intensity_mode!r}")
        self.win_size = int(win_size)
        self.intensity_mode = intensity_mode
        self.saliency_window = int(saliency_window)
        self.gradient_gain = float(gradient_gain)

    def forward(self, fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        terms: dict[str, torch.Tensor] = {}
        for name in self.weights:
            if name == "var_ssim":
                terms[name] = var_ssim_loss(fused, a, b, win_size=self.win_size)
            elif name == "ssim":
                terms[name] = ssim_loss(fused, a, b, win_size=self.win_size)
            elif name == "intensity":
                terms[name] = intensity_loss(fused, a, b, mode=self.intensity_mode, window=self.saliency_window)
            elif name == "scd":
                terms[name] = scd_loss(fused, a, b)
            elif name == "qabf":
                terms[name] = edge_transfer_loss(fused, a, b)
            elif name == "vif":
                terms[name] = vif_loss(fused, a, b)
            else:
                terms[name] = gradient_loss(fused, a, b, gain=self.gradient_gain)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}
