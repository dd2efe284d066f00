"""In-plane neighbourhood filters used on every fused slice and volume (the output bound, the
residual bound of the blend networks).

They equal :func:`scipy.ndimage.minimum_filter` / :func:`~scipy.ndimage.maximum_filter` with
``mode="nearest"`` over the last two axes (the tests compare them), but run as a few whole-array NumPy operations: on a 256 x 256 x 180 volume
scipy's 1D min/max filters took ~120 ms per call and were the largest single cost of a 3D fusion
after the network (``benchmarks/startup.py``); the sliced versions take a fraction of that.
"""

from __future__ import annotations

import numpy as np

__all__ = ["local_min", "local_max"]


def _extreme_1d(x: np.ndarray, radius: int, axis: int, op) -> np.ndarray:
    """Running ``op`` (np.minimum / np.maximum) over ``2 * radius + 1`` samples along ``axis``,
    edges repeated (scipy's ``mode="nearest"``). Exact: only comparisons."""
    out = x.copy()
    n = x.shape[axis]
    for k in range(1, radius + 1):
        head = [slice(None)] * x.ndim
        tail = [slice(None)] * x.ndim
        head[axis], tail[axis] = slice(k, None), slice(None, -k)
        if k < n:
            op(out[tuple(head)], x[tuple(tail)], out=out[tuple(head)])  # neighbour k before
            op(out[tuple(tail)], x[tuple(head)], out=out[tuple(tail)])  # neighbour k after
        # samples within k of an end see the edge value there (scipy's "nearest" mode)
        first, last, lo, hi = ([slice(None)] * x.ndim for _ in range(4))
        first[axis], last[axis] = slice(0, 1), slice(n - 1, n)
        lo[axis], hi[axis] = slice(0, min(k, n)), slice(max(n - k, 0), n)
        op(out[tuple(lo)], x[tuple(first)], out=out[tuple(lo)])
        op(out[tuple(hi)], x[tuple(last)], out=out[tuple(hi)])
    return out


def _extreme(x: np.ndarray, size: int, op) -> np.ndarray:
    x = np.asarray(x)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd number of pixels, got {size}")
    if x.ndim < 2:
        raise ValueError(f"expected an image or a stack of images, got shape {x.shape}")
    r = size // 2
    return _extreme_1d(_extreme_1d(x, r, x.ndim - 1, op), r, x.ndim - 2, op)


def local_min(x: np.ndarray, size: int = 3) -> np.ndarray:
    """Minimum over a ``size`` x ``size`` neighbourhood of the last two axes (edges repeated)."""
    return _extreme(x, size, np.minimum)


def local_max(x: np.ndarray, size: int = 3) -> np.ndarray:
    """Maximum over a ``size`` x ``size`` neighbourhood of the last two axes (edges repeated)."""
    return _extreme(x, size, np.maximum)
