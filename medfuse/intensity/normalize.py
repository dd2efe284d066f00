"""Modality-aware intensity normalization to [0, 1], statistics per volume inside a head mask.

:func:`normalize` is what ``medfuse fuse`` applies to every input before fusion:

======== ==================================================================================
modality rule
======== ==================================================================================
CT (HU)  a fixed window, ``[level - width/2, level + width/2]`` HU -> [0, 1]: a preset
         (:class:`CTWindow`: ``brain`` 40/80, ``subdural`` 75/215, ``bone`` 600/2800,
         ``soft_tissue`` 50/350) or a custom ``(level, width)``. Default ``bone``: fusion takes
         the skull from CT (brain 40 HU lands at 0.30, so soft tissue stays visible).
MR       robust percentiles: ``[p0.5, p99.5]`` of the voxels inside the head mask -> [0, 1]; a few
         extreme voxels (1e6) leave the others unchanged (< 1e-3).
PET      SUV body weight when ``meta["pet"]`` allows it (:func:`~medfuse.intensity.suv.suv_factor`),
         then an SUV window ``[0, SUVmax]`` -> [0, 1], where ``SUVmax`` is the 99.5th percentile of
         SUV inside the mask (``window=(lo, hi)`` in SUV fixes it, for comparable images across
         patients). Without usable SUV metadata: percentiles as MR, with a warning saying why.
SPECT    percentiles as MR; never SUV (counts are relative).
======== ==================================================================================

Display images (PNG/TIFF slices such as AANLIB pairs, ``meta["value_max"]`` set by the slice
reader) are already windowed: they are divided by ``value_max``, no statistics.

Statistics are computed once per volume (never per slice) inside a head/body mask
(:func:`~medfuse.intensity.mask.head_mask` unless ``mask`` is given). The output keeps the grid,
affine, modality and metadata of the input (plus ``meta["normalization"]``, a record of what was
done); values are float32 in [0, 1].
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Sequence

import numpy as np

from medfuse.errors import EmptyImageError, ImplausibleSUVInputsError, SUVUnavailableError
from medfuse.volume import Volume

__all__ = [
    "normalize",
    "window_ct",
    "percentile_scale",
    "canonical_modality",
    "CTWindow",
    "CT_WINDOWS",
    "MODALITIES",
    "DEFAULT_PERCENTILES",
]

from medfuse.modality import MODALITIES, canonical_modality, require_modality

log = logging.getLogger(__name__)

#: lower and upper percentiles of the robust rule (MR, SPECT, PET without SUV)
DEFAULT_PERCENTILES = (0.5, 99.5)


class CTWindow(str, enum.Enum):
    """CT window presets (level, width in HU); names are checked with :func:`medfuse.errors.look_up`,
    so a typo gets "did you mean"."""

    BRAIN = "brain"
    SUBDURAL = "subdural"
    BONE = "bone"
    SOFT_TISSUE = "soft_tissue"


#: (level, width) in HU of each :class:`CTWindow` preset
CT_WINDOWS: dict[CTWindow, tuple[float, float]] = {
    CTWindow.BRAIN: (40.0, 80.0),
    CTWindow.SUBDURAL: (75.0, 215.0),
    CTWindow.BONE: (600.0, 2800.0),
    CTWindow.SOFT_TISSUE: (50.0, 350.0),
}


def _as_window(window: Any) -> tuple[float, float]:
    """(level, width) HU from a preset name / :class:`CTWindow` / pair."""
    if isinstance(window, (str, CTWindow)):
        return CT_WINDOWS[_preset(window)]
    try:
        level, width = (float(v) for v in window)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"CT window must be a preset ({', '.join(w.value for w in CTWindow)}) or (level, width) in HU, "
            f"got {window!r}"
        ) from err
    if not width > 0:
        raise ValueError(f"CT window width must be > 0 HU, got {width:g}")
    return level, width


def window_ct(array: np.ndarray, window: Any = CTWindow.BONE) -> np.ndarray:
    """Map HU to [0, 1] through a window: ``clip((hu - (level - width/2)) / width, 0, 1)``.

    Args:
        array: CT intensities in Hounsfield units (any shape).
        window: a :class:`CTWindow` preset (or its name) or a ``(level, width)`` pair in HU.

    Returns:
        float32 array of the same shape, values in [0, 1].
    """
    level, width = _as_window(window)
    lo = level - width / 2.0
    return _affine_to_unit(array, lo, width)


def percentile_scale(
    array: np.ndarray, mask: np.ndarray | None = None, percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    *, in_place: bool = False,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Map ``[p_lo, p_hi]`` (percentiles of the voxels inside ``mask``) to [0, 1], clipping outside.

    Args:
        array: intensities (any shape).
        mask: boolean array of the same shape selecting the voxels the statistics use; all when None.
        percentiles: ``(lo, hi)`` percentiles in 0..100.
        in_place: write the result into ``array`` itself when it is float32 (the caller gives it up).

    Returns:
        ``(scaled, (value_lo, value_hi))``: float32 array in [0, 1] and the intensities that map to 0 and 1.

    Raises:
        EmptyImageError: no contrast inside the mask (``p_hi == p_lo``).
    """
    lo_q, hi_q = (float(p) for p in percentiles)
    if not 0.0 <= lo_q < hi_q <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles!r}")
    a = np.asarray(array)
    values = a[mask] if mask is not None else a.ravel()
    if values.size == 0:
        raise EmptyImageError("the normalization mask selects no voxel; pass a mask that covers the head")
    lo, hi = (float(v) for v in np.percentile(values, [lo_q, hi_q]))
    del values
    return _scale(a, lo, hi, in_place=in_place), (lo, hi)


def _scale(a: np.ndarray, lo: float, hi: float, *, in_place: bool = False) -> np.ndarray:
    if not hi > lo:
        raise EmptyImageError(
            f"no contrast to normalize: the intensity range inside the head mask is [{lo:g}, {hi:g}]; check that the "
            "image is not blank or pass a larger mask"
        )
    return _affine_to_unit(a, lo, hi - lo, in_place=in_place)


def _affine_to_unit(a: np.ndarray, lo: float, width: float, *, in_place: bool = False) -> np.ndarray:
    """``clip((a - lo) / width, 0, 1)`` as float32.

    Computed in float32 when the input converts to float32 exactly (float32, 8/16-bit integers: a
    relative error of at most ~1e-7, and no float64 copy of a volume: ~1 GB less peak memory on a
    256 x 256 x 180 pair), in float64 otherwise (32-bit integers, float64 input). ``in_place``: into ``a`` itself
    when it is a writeable contiguous float32 array (each chunk is read before it is written: the same numbers).
    """
    a = np.asarray(a)
    dtype = np.float32 if np.can_cast(a.dtype, np.float32, casting="safe") else np.float64
    reuse = (in_place and a.dtype == np.float32 and a.flags.writeable
             and (a.flags.c_contiguous or a.flags.f_contiguous))
    out = a if reuse else np.empty_like(a, dtype=np.float32)  # the input's memory order
    src, dst = a.ravel(order="K"), out.ravel(order="K")  # in chunks that stay in cache: one pass, the same numbers
    for start in range(0, src.size, 1 << 16):
        x = np.asarray(src[start : start + (1 << 16)], dtype=dtype) - dtype(lo)
        x /= dtype(width)
        np.clip(x, 0.0, 1.0, out=x)
        dst[start : start + x.size] = x
    return out


def normalize(
    volume: Volume,
    modality: str | None = None,
    *,
    window: Any = None,
    mask: np.ndarray | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    in_place: bool = False,
) -> Volume:
    """Normalize one volume (or slice) to [0, 1] by the rule of its modality.

    Args:
        volume: a 2D or 3D :class:`~medfuse.volume.Volume`; CT in HU, PET in Bq/mL with
            ``meta["pet"]`` (see :mod:`medfuse.intensity.suv`) for SUV.
        modality: ``"MR"``, ``"CT"``, ``"PT"``, ``"NM"`` (aliases MRI/PET/SPECT); default
            ``volume.modality``; unknown (None) raises: the rule depends on it (see :mod:`medfuse.modality`).
        window: CT: a :class:`CTWindow` preset name or ``(level, width)`` HU (default ``"bone"``).
            PET: ``(lo, hi)`` in SUV (requires SUV metadata). Not used for MR/SPECT (ValueError).
        mask: boolean array of ``volume.shape``: where the statistics are taken; default
            :func:`~medfuse.intensity.mask.head_mask`.
        percentiles: ``(lo, hi)`` of the percentile rule.
        in_place: the caller gives ``volume``'s voxels up: the percentile rule writes the result into them (a head
            volume: 75 MB less); ``volume.array`` then holds the normalized values. Other rules copy as before.

    Returns:
        A :class:`~medfuse.volume.Volume` on the same grid (same affine, modality, ``rgb`` kept),
        float32 in [0, 1], with ``meta["normalization"]``: ``{"method", "lo", "hi", ...}`` where
        ``lo``/``hi`` are the input values mapped to 0 and 1.

    Raises:
        EmptyImageError: blank (constant) image or no contrast inside the mask.
        NonFiniteError: NaN/Inf voxels.
        SUVUnavailableError, ImplausibleSUVInputsError: a PET SUV ``window`` was asked for and the
            metadata does not allow SUV.
        UnknownModalityError: neither ``modality`` nor ``volume.modality`` is set.
        ValueError: unknown modality or window preset (with a suggestion), a window for MR/SPECT.

    Example:
        >>> ct01 = normalize(ct_volume, window="brain")  # doctest: +SKIP
        >>> ct01.array.min() >= 0 and ct01.array.max() <= 1  # doctest: +SKIP
        True
    """
    from medfuse.intensity.mask import head_mask, looks_like_hu
    from medfuse.io import check_volume

    check_volume(volume, "normalize")
    code = canonical_modality(modality) if modality is not None else require_modality(volume)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != volume.shape:
            raise ValueError(f"{volume.name}: mask shape {mask.shape} differs from the image shape {volume.shape}")
        if not mask.any():
            raise EmptyImageError(f"{volume.name}: the normalization mask is empty; pass a mask that covers the head")
    record: dict[str, Any] = {"modality": code}
    a = volume.array

    if "value_max" in volume.meta and not (code == "CT" and window is not None):
        vmax = float(volume.meta["value_max"])
        out = np.clip(a / vmax, 0.0, 1.0).astype(np.float32)
        record.update(method="display", lo=0.0, hi=vmax)
        log.debug("%s: display image, divided by its maximum value %g", _log_name(volume), vmax)
        return _result(volume, out, record)

    if code == "CT" and (window is not None or looks_like_hu(volume)):
        if window is not None and not looks_like_hu(volume):
            log.warning("%s: CT values do not look like HU (no air below -500); applying window %r anyway",
                        _log_name(volume), window)
        level, width = _as_window(CTWindow.BONE if window is None else window)
        out = window_ct(a, (level, width))
        record.update(method="ct_window", level=level, width=width, lo=level - width / 2, hi=level + width / 2)
        if isinstance(window, (str, CTWindow)) or window is None:
            record["window"] = _preset_name(window)
        return _result(volume, out, record)

    if code in ("MR", "NM", None) and window is not None:
        raise ValueError(
            f"{volume.name}: window={window!r} applies to CT (level, width HU) and PET (SUV range); "
            f"{code or 'this image'} is normalized by percentiles: pass percentiles=(lo, hi) instead"
        )
    if code == "CT":
        log.warning(
            "%s: CT values do not look like Hounsfield units (minimum %g > -500, air should be -1000); normalized "
            "by percentiles inside the head mask instead of a HU window", _log_name(volume), float(a.min())
        )

    if mask is None:
        mask = head_mask(volume, code)
        if not mask.any():
            mask = np.ones(volume.shape, dtype=bool)

    if code == "PT":
        suv, why = _try_suv(volume, required=window is not None)
        if suv is not None:
            factor = suv
            values = a[mask].astype(np.float64) * factor
            if window is None:
                lo, hi = 0.0, float(np.percentile(values, percentiles[1]))
            else:
                lo, hi = (float(v) for v in window)
            out = _scale(a.astype(np.float64) * factor, lo, hi)
            record.update(method="suv", suv_factor=factor, lo=lo / factor, hi=hi / factor, suv_window=(lo, hi))
            return _result(volume, out, record)
        log.warning("%s: PET normalized by percentiles, not SUV: %s", _log_name(volume), why)
        record["suv_unavailable"] = why

    out, (lo, hi) = percentile_scale(a, mask, percentiles, in_place=in_place)
    record.update(method="percentile", percentiles=tuple(float(p) for p in percentiles), lo=lo, hi=hi)
    return _result(volume, out, record)


def _log_name(volume: Volume) -> str:
    """How log lines name ``volume``: its role, or an opaque id for a path, never the path (:mod:`medfuse.io.naming`)."""
    from medfuse.io.naming import source_name

    return source_name(volume.source) if volume.source else (volume.modality or "image")


def _preset(window: str | CTWindow) -> CTWindow:
    if isinstance(window, CTWindow):
        return window
    name = window.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return CTWindow(name)
    except ValueError:
        from medfuse.errors import look_up

        return CTWindow(look_up(name, [w.value for w in CTWindow], "CT window preset"))


def _preset_name(window: Any) -> str:
    return CTWindow.BONE.value if window is None else _preset(window).value


def _try_suv(volume: Volume, required: bool) -> tuple[float | None, str]:
    from medfuse.intensity.suv import suv_factor

    pet = volume.meta.get("pet")
    if pet is None:
        if required:
            raise SUVUnavailableError(
                f"{volume.name}: an SUV window was given but the PET has no DICOM SUV metadata (meta['pet'])"
            )
        return None, "no DICOM PET metadata (meta['pet']) to compute SUV from"
    try:
        return suv_factor(pet), ""
    except (SUVUnavailableError, ImplausibleSUVInputsError) as err:
        if required:
            raise
        return None, str(err)


def _result(volume: Volume, out: np.ndarray, record: dict[str, Any]) -> Volume:
    result = volume.with_array(out, rgb=volume.rgb)
    result.meta["normalization"] = record
    return result
