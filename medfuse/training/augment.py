"""Appearance perturbations: how another collection's scans differ from the training collection's.

One implementation of each perturbation, used twice:

* in training (``augment.appearance`` in the trainer's config, off by default): :func:`random_appearance`
  draws, per source per patch, one kind with a random strength from the trainer's ``torch.Generator``;
* in ``benchmarks/quality_robust.py``: the robustness table's fixed test perturbations
  (:data:`FIXED_STRENGTHS`) applied to the test pairs.

Every function takes a float image ``(H, W)`` or ``(H, W, C)`` (channels last, each channel treated
alike), intensities nominally in [0, 1], and returns a float array of the same shape and dtype,
not clipped (callers clip or quantize).

==========  ==============================================================  ======================
kind        what it does                                                    training strength
==========  ==============================================================  ======================
``gamma``   ``x ** g`` (another display / reconstruction curve)             ``g`` log-uniform 0.6-1.7
``scale``   ``s x`` (another intensity scaling or window)                   ``s`` uniform 0.5-1.0
``noise``   ``x + sigma n``, ``n`` standard normal, one field per image     ``sigma`` uniform 0-0.05
``blur``    Gaussian blur (another reconstruction kernel), edges nearest    sigma uniform 0.5-1.5 px
``lowres``  2x area down-sampling and bilinear up-sampling (half the       always 2x
            resolution)
==========  ==============================================================  ======================
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "APPEARANCE_KINDS",
    "TRAINING_RANGES",
    "adjust_gamma",
    "scale_intensity",
    "add_noise",
    "blur",
    "half_resolution",
    "perturb_appearance",
    "random_appearance",
]

APPEARANCE_KINDS = ("gamma", "scale", "noise", "blur", "lowres")

#: training strength ranges ``(low, high)`` per kind (``gamma`` log-uniform, the others uniform)
TRAINING_RANGES = {"gamma": (0.6, 1.7), "scale": (0.5, 1.0), "noise": (0.0, 0.05), "blur": (0.5, 1.5)}


def adjust_gamma(v: np.ndarray, gamma: float) -> np.ndarray:
    """``max(v, 0) ** gamma``."""
    return np.maximum(v, 0) ** gamma


def scale_intensity(v: np.ndarray, factor: float) -> np.ndarray:
    """``factor * v``."""
    return factor * v


def add_noise(v: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``v`` plus a noise field ``noise`` ``(H, W)`` (already scaled), the same for every channel."""
    return v + noise[(...,) + ((None,) if v.ndim == 3 else ())]


def blur(v: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels over the two spatial axes (``mode="nearest"``)."""
    from scipy import ndimage

    return ndimage.gaussian_filter(v, (sigma, sigma) + (0,) * (v.ndim - 2), mode="nearest")


def half_resolution(v: np.ndarray) -> np.ndarray:
    """Down-sampled 2x (area) and back up to the same size (bilinear, ``align_corners=False``)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.atleast_3d(v).transpose(2, 0, 1)[None].copy())
    small = F.interpolate(t, scale_factor=0.5, mode="area")
    out = F.interpolate(small, size=v.shape[:2], mode="bilinear", align_corners=False)[0].numpy().transpose(1, 2, 0)
    return out[:, :, 0] if v.ndim == 2 else out


def perturb_appearance(v: np.ndarray, kind: str, strength: float | None = None,
                       noise: np.ndarray | None = None) -> np.ndarray:
    """``v`` perturbed by ``kind`` (module table): ``strength`` is gamma's exponent, scale's factor, blur's
    sigma; ``noise`` the scaled noise field for ``"noise"``; ``lowres`` takes neither.

    Raises:
        ValueError: an unknown kind, or a missing strength / noise field.
    """
    if kind not in APPEARANCE_KINDS:
        raise ValueError(f"unknown appearance perturbation {kind!r}; expected one of {APPEARANCE_KINDS}")
    if kind == "lowres":
        return half_resolution(v)
    if kind == "noise":
        if noise is None:
            raise ValueError("the 'noise' perturbation needs a noise field")
        return add_noise(v, noise)
    if strength is None:
        raise ValueError(f"the {kind!r} perturbation needs a strength")
    return {"gamma": adjust_gamma, "scale": scale_intensity, "blur": blur}[kind](v, strength)


def random_appearance(v: np.ndarray, generator) -> np.ndarray:
    """``v`` ``(H, W)`` float32 with one perturbation of a random kind and strength (module table), drawn
    from ``generator`` (a ``torch.Generator``); clipped to [0, 1], float32."""
    import torch

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))

    kind = APPEARANCE_KINDS[int(torch.randint(len(APPEARANCE_KINDS), (1,), generator=generator))]
    strength = noise = None
    if kind == "gamma":
        low, high = TRAINING_RANGES["gamma"]
        strength = math.exp(uniform(math.log(low), math.log(high)))
    elif kind == "noise":
        sigma = uniform(*TRAINING_RANGES["noise"])
        noise = sigma * torch.randn(v.shape[:2], generator=generator, dtype=torch.float32).numpy()
    elif kind != "lowres":
        strength = uniform(*TRAINING_RANGES[kind])
    out = perturb_appearance(np.asarray(v, dtype=np.float32), kind, strength, noise)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
