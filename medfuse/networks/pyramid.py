"""The multiscale anchored head (``output="pyramid"``, issue 24): classical Laplacian-pyramid fusion
whose per-level selection a network may learn to depart from.

Both sources are decomposed into Laplacian pyramids (Burt & Adelson: 5-tap binomial blur, factor-2
reduce / expand, :data:`PYRAMID_LEVELS` band-pass levels and a low-pass base). The fused pyramid is a
per-level convex blend of the two:

* **base** (coarsest low-pass): ``w = sigmoid(y_base + base_gain * (G_A - G_B))``: anchored on the
  maximum of the two low-passes (the rule that wins MI/VIF/SD/SCD on the folds);
* **band-pass level l**: ``w_l = sigmoid(y_l + DETAIL_GAIN * log(E_A / E_B))``, ``E`` the 3 x 3 local
  energy of the level's coefficients: anchored on the stronger source's detail (choose-max by local
  energy, the classical ``laplacian`` method's ``"energy"`` rule, which wins EN/SF/AG/EI), scale-free
  so that weak detail is chosen as decisively as strong detail, and soft where the two are alike: two
  independent noises get about equal weights, so flat-region noise is not amplified (per-coefficient
  choose-max-abs picks the larger noise everywhere: +20-30%, tests/test_no_halo.py);

and the fused image is the reconstruction of the fused pyramid. ``y_*`` are the network's logit maps
(one per level, predicted at full resolution and averaged down to each level's grid); the network's
last convolution is zero-initialised, so the untrained head is exactly this classical rule (max base,
local-energy detail selection) and training only learns where to depart from it. Nothing is synthesized: each level
of the output is a convex combination of the sources' own coefficients at that level.

The same rule composes the output in training (:meth:`FusionNetwork.forward`, :func:`compose_pyramid`, with
autograd) and at inference (:mod:`medfuse.inference`, from the sources it was given, then bounded to the
sources' local range: the no-halo rule), there by :func:`compose_pyramid_arrays`: the same float32 operations in
the same order on numpy arrays (equal to :func:`compose_pyramid` bit for bit, every size:
tests/networks/test_pyramid_arrays.py), without torch's per-operator cost (~60 operators on one 256 x 256 pair,
each a parallel region on a busy 2-core machine); torch still computes its log, sigmoid and the logits' pooling.
2D only.
"""

from __future__ import annotations

from typing import List

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["PYRAMID_LEVELS", "DETAIL_GAIN", "pyramid_levels_for", "laplacian_pyramid", "reconstruct",
           "compose_pyramid", "compose_pyramid_arrays"]

#: band-pass levels of the pyramid head (a 256 x 256 slice keeps a 16 x 16 base, as the classical
#: ``laplacian`` method); fewer when the image is too small (the base keeps at least 4 pixels a side)
PYRAMID_LEVELS = 4
#: gain of the band-pass levels' anchor on the log local-energy ratio: a source with 4x the other's
#: energy gets weight sigmoid(2 log 4) = 0.94 (the classical "energy" rule takes it alone from 4x)
DETAIL_GAIN = 2.0


def _taps(x: torch.Tensor, axis: int, start: int, count: int, step: int) -> torch.Tensor:
    """``count`` entries of the 4D ``x`` along ``axis`` (-1 or -2) from ``start`` every ``step``."""
    y = x.narrow(axis, start, (count - 1) * step + 1)
    return y[:, :, :, ::step] if axis == -1 else y[:, :, ::step, :]


def _reduce_axis(p: torch.Tensor, axis: int, n: int) -> torch.Tensor:
    """Binomial [1, 4, 6, 4, 1] / 16 along ``axis`` of ``p`` (padded by 2), every 2nd output: ``n`` outputs."""
    t = _taps
    return (t(p, axis, 0, n, 2) + t(p, axis, 4, n, 2) + 4.0 * (t(p, axis, 1, n, 2) + t(p, axis, 3, n, 2))
            + 6.0 * t(p, axis, 2, n, 2)) * (1.0 / 16.0)


def _reduce(x: torch.Tensor) -> torch.Tensor:
    """Blur (5 x 5 binomial, Burt & Adelson's a = 0.375) and keep every 2nd pixel, replicate borders:
    ``(N, C, H, W)`` -> ``(N, C, ceil(H / 2), ceil(W / 2))``. Separable, strided sums."""
    h, w = x.shape[-2:]
    p = F.pad(x, [2, 2, 2, 2], mode="replicate")
    return _reduce_axis(_reduce_axis(p, -1, (w + 1) // 2), -2, (h + 1) // 2)


def _expand_axis(x: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    """Factor-2 upsampling along ``axis`` (-1 or -2) by zero insertion and the binomial blur (x2),
    polyphase: even outputs ``(x[i-1] + 6 x[i] + x[i+1]) / 8``, odd ``(x[i] + x[i+1]) / 2``, replicate
    borders; the first ``size`` outputs."""
    n = x.shape[axis]
    p = F.pad(x, [1, 1, 0, 0] if axis == -1 else [0, 0, 1, 1], mode="replicate")
    even = (p.narrow(axis, 0, n) + p.narrow(axis, 2, n) + 6.0 * p.narrow(axis, 1, n)) * 0.125
    odd = (p.narrow(axis, 1, n) + p.narrow(axis, 2, n)) * 0.5
    if axis == -1:
        out = torch.stack([even, odd], dim=-1).flatten(-2)
    else:
        out = torch.stack([even, odd], dim=-2).flatten(-3, -2)
    return out.narrow(axis, 0, size)


def _expand(x: torch.Tensor, size: List[int]) -> torch.Tensor:
    """Upsample ``(N, C, h, w)`` by 2 to ``size`` (zero insertion, 5 x 5 binomial blur, x4), replicate borders."""
    return _expand_axis(_expand_axis(x, -1, int(size[1])), -2, int(size[0]))


def _box3(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 mean, replicate borders, separable."""
    h, w = x.shape[-2:]
    p = F.pad(x, [1, 1, 1, 1], mode="replicate")
    r = p.narrow(-1, 0, w) + p.narrow(-1, 1, w) + p.narrow(-1, 2, w)
    return (r.narrow(-2, 0, h) + r.narrow(-2, 1, h) + r.narrow(-2, 2, h)) * (1.0 / 9.0)


def pyramid_levels_for(size: List[int], levels: int = PYRAMID_LEVELS, minimum: int = 4) -> int:
    """How many of ``levels`` halvings an image of ``size`` takes (the base keeps >= ``minimum`` pixels)."""
    n, h, w = 0, int(size[0]), int(size[1])
    while n < levels and (h + 1) // 2 >= minimum and (w + 1) // 2 >= minimum:
        h, w, n = (h + 1) // 2, (w + 1) // 2, n + 1
    return n


def laplacian_pyramid(x: torch.Tensor, levels: int) -> List[torch.Tensor]:
    """``[D_0, ..., D_{levels-1}, G_levels]`` of ``(N, C, H, W)``; :func:`reconstruct` inverts it exactly."""
    out: List[torch.Tensor] = []
    g = x
    for _ in range(levels):
        low = _reduce(g)
        out.append(g - _expand(low, [g.shape[-2], g.shape[-1]]))
        g = low
    out.append(g)
    return out


def reconstruct(bands: List[torch.Tensor]) -> torch.Tensor:
    """Invert :func:`laplacian_pyramid`: expand the base and add the band-pass levels back."""
    g = bands[-1]
    for i in range(len(bands) - 2, -1, -1):
        d = bands[i]
        g = d + _expand(g, [d.shape[-2], d.shape[-1]])
    return g


def compose_pyramid(a: torch.Tensor, b: torch.Tensor, logits: torch.Tensor, base_gain: float,
                    detail_gain: float = DETAIL_GAIN) -> torch.Tensor:
    """The fused image of the pyramid head (module docstring), not clipped.

    Args:
        a, b: the sources ``(N, 1, H, W)`` in [0, 1] (``a`` the MRI).
        logits: ``(N, PYRAMID_LEVELS + 1, H, W)``: the learned departures, channel ``l`` for band-pass
            level ``l`` (fine to coarse), the last channel for the base (zeros: the classical rule).
        base_gain: gain of the base's max anchor.
        detail_gain: gain of the band-pass levels' local-energy anchor.
    """
    levels = pyramid_levels_for([a.shape[-2], a.shape[-1]], logits.shape[1] - 1)
    bands = laplacian_pyramid(torch.cat([a, b], dim=1), levels)  # both sources in one pass
    fused: List[torch.Tensor] = []
    for lvl in range(levels + 1):
        da, db = bands[lvl][:, :1], bands[lvl][:, 1:2]
        ch = logits.shape[1] - 1 if lvl == levels else lvl
        y = logits[:, ch : ch + 1]
        if y.shape[-2] != da.shape[-2] or y.shape[-1] != da.shape[-1]:
            y = F.adaptive_avg_pool2d(y, [da.shape[-2], da.shape[-1]])
        if lvl == levels:
            w = torch.sigmoid(y + base_gain * (da - db))
        else:
            energy = _box3(bands[lvl] * bands[lvl]) + 1e-8  # both sources' 3 x 3 local energies
            w = torch.sigmoid(y + detail_gain * torch.log(energy[:, :1] / energy[:, 1:2]))
        fused.append(w * da + (1.0 - w) * db)
    return reconstruct(fused)


# ---- inference: the same operations on numpy arrays (compose_pyramid_arrays) ----
# Each function below mirrors the torch function of the same name without "_np": every float32 sum and product
# in the same order (in-place forms where a temporary is not needed), so the results are equal bit for bit.


def _np_pad(x: np.ndarray, axis: int, k: int) -> np.ndarray:
    """``x`` with ``k`` edge values repeated at both ends of ``axis`` (-1 or -2): ``F.pad(..., "replicate")``."""
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = n + 2 * k
    p = np.empty(shape, dtype=np.float32)
    if axis == -1:
        p[..., k : k + n], p[..., :k], p[..., k + n :] = x, x[..., :1], x[..., n - 1 :]
    else:
        p[..., k : k + n, :], p[..., :k, :], p[..., k + n :, :] = x, x[..., :1, :], x[..., n - 1 :, :]
    return p


def _np_taps(p: np.ndarray, axis: int, start: int, count: int, step: int) -> np.ndarray:
    stop = start + (count - 1) * step + 1
    return p[..., start:stop:step] if axis == -1 else p[..., start:stop:step, :]


def _np_reduce_axis(p: np.ndarray, axis: int, n: int) -> np.ndarray:
    def t(start: int) -> np.ndarray:
        return _np_taps(p, axis, start, n, 2)

    out = np.add(t(0), t(4))
    tmp = np.add(t(1), t(3))
    tmp *= 4.0
    out += tmp
    np.multiply(t(2), 6.0, out=tmp)
    out += tmp
    out *= 1.0 / 16.0
    return out


def _np_reduce(x: np.ndarray) -> np.ndarray:
    # the torch form pads both axes first: its rows of padding reduce to the padding of the reduced rows
    h, w = x.shape[-2:]
    r = _np_reduce_axis(_np_pad(x, -1, 2), -1, (w + 1) // 2)
    return _np_reduce_axis(_np_pad(r, -2, 2), -2, (h + 1) // 2)


def _np_expand_axis(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    n = x.shape[axis]
    p = _np_pad(x, axis, 1)

    def t(start: int) -> np.ndarray:
        return _np_taps(p, axis, start, n, 1)

    shape = list(x.shape)
    shape[axis] = 2 * n
    out = np.empty(shape, dtype=np.float32)
    even, odd = (out[..., 0::2], out[..., 1::2]) if axis == -1 else (out[..., 0::2, :], out[..., 1::2, :])
    six = np.multiply(t(1), 6.0)
    np.add(t(0), t(2), out=even)
    even += six
    even *= 0.125
    np.add(t(1), t(2), out=odd)
    odd *= 0.5
    return out[..., :size] if axis == -1 else out[..., :size, :]


def _np_expand(x: np.ndarray, size) -> np.ndarray:
    return _np_expand_axis(_np_expand_axis(x, -1, int(size[1])), -2, int(size[0]))


def _np_box3(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[-2:]
    p = _np_pad(x, -1, 1)
    r = np.add(p[..., 0:w], p[..., 1 : w + 1])
    r += p[..., 2 : w + 2]
    r = _np_pad(r, -2, 1)
    out = np.add(r[..., 0:h, :], r[..., 1 : h + 1, :])
    out += r[..., 2 : h + 2, :]
    out *= 1.0 / 9.0
    return out


def compose_pyramid_arrays(a: np.ndarray, b: np.ndarray, logits: np.ndarray, base_gain: float,
                           detail_gain: float = DETAIL_GAIN) -> np.ndarray:
    """:func:`compose_pyramid` for inference, on numpy arrays (no autograd): equal to it bit for bit.

    Args:
        a, b: the sources ``(N, 1, H, W)`` float32 in [0, 1] (``a`` the MRI); views of any strides.
        logits: ``(N, PYRAMID_LEVELS + 1, H, W)`` float32, as :func:`compose_pyramid` takes them.
        base_gain, detail_gain: as :func:`compose_pyramid`.

    Returns:
        The fused image ``(N, 1, H, W)`` float32, not clipped.
    """
    levels = pyramid_levels_for([a.shape[-2], a.shape[-1]], logits.shape[1] - 1)
    g = np.concatenate([a, b], axis=1).astype(np.float32, copy=False)  # both sources in one pass
    bands: List[np.ndarray] = []
    for _ in range(levels):
        low = _np_reduce(g)
        band = _np_expand(low, g.shape[-2:])
        bands.append(np.subtract(g, band, out=band))
        g = low
    bands.append(g)
    y_all = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
    fused = None
    for lvl in range(levels, -1, -1):  # coarse to fine: each level composed, then added to the expanded coarser
        band = bands[lvl]
        da, db = band[:, :1], band[:, 1:2]
        ch = logits.shape[1] - 1 if lvl == levels else lvl
        y = y_all[:, ch : ch + 1]
        if y.shape[-2] != da.shape[-2] or y.shape[-1] != da.shape[-1]:
            y = F.adaptive_avg_pool2d(y, [da.shape[-2], da.shape[-1]])
        if lvl == levels:
            z = np.subtract(da, db)
            z *= base_gain
        else:
            energy = _np_box3(np.multiply(band, band))
            energy += 1e-8
            z = torch.log(torch.from_numpy(np.divide(energy[:, :1], energy[:, 1:2]))).numpy()
            z *= detail_gain
        w = torch.sigmoid(torch.from_numpy(np.add(y.numpy(), z))).numpy()
        level = np.multiply(w, da)
        w = np.subtract(1.0, w, out=w)
        w *= db
        level += w
        fused = level if fused is None else np.add(level, _np_expand(fused, level.shape[-2:]))
    return fused
