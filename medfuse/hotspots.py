"""The functional scan's hottest regions stay bright in the fused image (PET-MRI, SPECT-MRI networks).

Measured on the Harvard AANLIB pairs (``benchmarks/hotspots.py``): over the hottest 1% of the PET/SPECT
luminance, the fused luminance kept a median 0.84 (PET-MRI) and 0.75 (SPECT-MRI) of the source's with the
shipped ``light`` networks, and as little as 0.38 on single slices; `max` keeps 0.99-1.0. The networks and
the losses they were trained with reward the MRI's structure, so where a small hot focus lies on dark grey
matter the MRI's band-pass detail is chosen over the focus's and the focus turns grey in colour: the image
hides the finding it was fused to show, while its metrics rise.

:func:`keep_hot_regions` puts a floor under the fused image where the functional scan is hot: with ``w`` a
ramp of the functional intensity from its ``lo`` to its ``hi`` quantile over its content (0 below, 1
above), ``F' = F + w * max(B - F, 0)``. Below ``lo`` nothing changes; above ``hi`` the fused value is at
least the source's; in between it rises continuously (``B`` is smooth at these resolutions, so the ramp
draws no edge). The floor never lowers a value and stays within ``max(F, B)``: the no-halo bound holds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HOT_QUANTILES", "HOT_PAIRS", "keep_hot_regions"]

#: the functional scan's quantiles (over its content) where the floor starts and where it is complete
HOT_QUANTILES = (0.95, 0.995)
#: the pairs whose second scan is functional (hot = uptake): the floor applies to their networks
HOT_PAIRS = ("pet_mri", "spect_mri")
#: content of the functional scan: above this fraction of its maximum (AANLIB PET-Y is 0 over half the head)
_CONTENT = 0.05


def keep_hot_regions(fused: np.ndarray, b: np.ndarray, quantiles: tuple[float, float] = HOT_QUANTILES) -> np.ndarray:
    """``fused`` with a floor at the functional scan ``b`` where ``b`` is hot (module docstring), in place.

    Args:
        fused: float32 fused image or volume in [0, 1] (modified and returned).
        b: the functional scan on the same grid (the network's second source), [0, 1].
        quantiles: ``(lo, hi)`` quantiles of ``b`` over its content (``b > 0.05 max(b)``), taken over the
            whole array (a volume's, not a slice's).
    """
    peak = float(b.max()) if b.size else 0.0
    if peak <= 0.0:
        return fused
    content = b[b > _CONTENT * peak]
    lo, hi = (float(q) for q in np.quantile(content, quantiles))
    if hi <= lo:
        return fused
    w = np.clip((b - lo) * (1.0 / (hi - lo)), 0.0, 1.0, dtype=np.float32)
    lift = np.subtract(b, fused, dtype=np.float32)
    np.maximum(lift, 0.0, out=lift)
    lift *= w
    fused += lift
    return fused
