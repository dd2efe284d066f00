"""Modality-aware intensity normalization (CT HU windows, MRI/SPECT percentiles, PET SUV).

- :func:`normalize`: any :class:`~medfuse.volume.Volume` to float32 [0, 1] by its modality's rule,
  statistics per volume inside a head mask (see :mod:`medfuse.intensity.normalize`).
- :func:`suv_factor` / :func:`to_suv`: PET SUV (body weight) from ``volume.meta["pet"]``
  (see :mod:`medfuse.intensity.suv` for the dict's keys).
- :func:`head_mask`: per-modality head/body mask, shared with :mod:`medfuse.registration`.
"""

from __future__ import annotations

from medfuse.intensity.mask import head_mask, looks_like_hu, otsu_threshold
from medfuse.intensity.normalize import (
    CT_WINDOWS,
    DEFAULT_PERCENTILES,
    MODALITIES,
    CTWindow,
    canonical_modality,
    normalize,
    percentile_scale,
    window_ct,
)
from medfuse.intensity.suv import PET_META_KEYS, suv_factor, to_suv

__all__ = [
    "normalize",
    "window_ct",
    "percentile_scale",
    "canonical_modality",
    "CTWindow",
    "CT_WINDOWS",
    "MODALITIES",
    "DEFAULT_PERCENTILES",
    "suv_factor",
    "to_suv",
    "PET_META_KEYS",
    "head_mask",
    "looks_like_hu",
    "otsu_threshold",
]
