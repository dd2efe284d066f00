"""Rendering one phantom scan: the model sampled on the scan's grid, the marker, blur and noise."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from medfuse.errors import look_up
from medfuse.intensity.mask import block_mean
from medfuse.phantom.anatomy import (
    HEAD_CENTER_MM, LABELS, MARKER_RADIUS_MM, T1_TEMPLATE_SCALE, TISSUES, Anatomy, cached_anatomy, load_anatomy,
)
from medfuse.phantom.contrasts import CONTRASTS, MODALITIES, PET_SUV_FACTOR
from medfuse.phantom.geometry import grid_affine, level_affine, marker_fraction, resample_model, resolve_grid, three
from medfuse.volume import Volume

__all__ = ["make_volume", "clear_cache", "label_volumes"]


def _model_intensity(anat: Anatomy, contrast_name: str) -> np.ndarray:
    """The contrast's noiseless intensity on the 1 mm model grid (float32)."""
    values = CONTRASTS[contrast_name].values
    air = values["air"]
    out = np.zeros(anat.labels.shape, dtype=np.float32)
    for tissue in TISSUES:
        weight = np.float32((values[tissue] - air) / 255.0)
        if weight:
            out += anat.fractions[tissue] * weight
    if contrast_name == "t1" and anat.t1 is not None:
        out[anat.brain] = anat.t1[anat.brain] * np.float32(T1_TEMPLATE_SCALE) - np.float32(air)
    out += np.float32(air)
    return out


@functools.lru_cache(maxsize=6)
def _model_level(kind: str, contrast_name: str, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The contrast's model intensity block-averaged by ``factor`` (read-only) and its affine."""
    anat = cached_anatomy(kind)
    arr = _block_mean(_model_intensity(anat, contrast_name), factor)
    arr.flags.writeable = False
    return arr, level_affine(anat.affine, factor)


def _block_mean(arr: np.ndarray, factor: int) -> np.ndarray:
    """``arr`` averaged over ``factor``-cubed blocks, its far edges cropped to a multiple of ``factor``."""
    x, y, z = (n // factor * factor for n in arr.shape)
    return block_mean(arr[:x, :y, :z], (factor,) * 3)


def _gaussian_blur(arr: np.ndarray, fwhm_mm, spacing, intrinsic_mm: float = 0.0) -> np.ndarray:
    """Blur to a resolution of ``fwhm_mm`` (per axis), given that the data already has ``intrinsic_mm``."""
    from scipy import ndimage as ndi

    fwhm = np.sqrt(np.clip(np.asarray(fwhm_mm, dtype=np.float64) ** 2 - intrinsic_mm**2, 0.0, None))
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / np.asarray(spacing)
    if not np.any(sigma > 0.05):
        return arr
    return ndi.gaussian_filter(arr, sigma=np.where(sigma > 0.05, sigma, 0.0), mode="nearest", output=np.float32)


def _bias_field(shape, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative MR bias field (about +-10 %), separable low-order polynomial."""
    coef = rng.normal(0.0, [[0.06, 0.03]] * 3)  # linear and quadratic term per axis
    log_field = np.zeros(shape, dtype=np.float32)
    for axis, n in enumerate(shape):
        u = np.linspace(-1.0, 1.0, n, dtype=np.float32)
        profile = coef[axis, 0] * u + coef[axis, 1] * (u * u - 1.0 / 3.0)
        log_field += profile.reshape([-1 if a == axis else 1 for a in range(3)]).astype(np.float32)
    return np.exp(log_field, out=log_field)


def make_volume(
    modality: str,
    shape=None,
    spacing=None,
    *,
    axes: str | None = None,
    affine: np.ndarray | None = None,
    reference_to_scan: np.ndarray | None = None,
    center_mm=None,
    seed: int | np.random.Generator = 0,
    marker: bool = True,
    noise: bool = True,
    blur: bool = True,
    anatomy: str = "auto",
) -> Volume:
    """Render the phantom head in one contrast on one grid.

    The tissue model is sampled (trilinear) at the reference-world point each voxel shows, the
    marker is added analytically, then the scan is blurred and made noisy in its own voxel space.

    Args:
        modality: ``"t1"``, ``"t2"``, ``"ct"``, ``"pet"`` or ``"spect"`` (see the module table).
        shape: grid shape ``(i, j, k)``; default per contrast (see :func:`make_case` for the rule
            used when only one of ``shape``/``spacing`` is given).
        spacing: voxel size in mm along ``(i, j, k)``.
        axes: axis codes of the grid (``"LPS"``: i toward Left, j Posterior, k Superior); default per
            contrast. Ignored when ``affine`` is given.
        affine: a full voxel-to-RAS affine for the grid (overrides ``spacing``/``axes``/``center_mm``;
            ``shape`` is then required).
        reference_to_scan: 4x4 map from reference (MNI, RAS mm) points to this scan's world points
            showing the same anatomy; identity by default.
        center_mm: RAS position (this scan's world) of the grid centre; default
            ``reference_to_scan @ HEAD_CENTER_MM``.
        seed: seed or generator of the noise (and MR bias field).
        marker: add the left-hemisphere lesion.
        noise: add the modality's noise (and MR bias field).
        blur: apply the scanner resolution (CT slice profile, PET/SPECT PSF).
        anatomy: ``"auto"`` (MNI152 when available, else analytic with a warning), ``"mni152"`` or
            ``"analytic"``.

    Returns:
        A :class:`~medfuse.volume.Volume`: float32 array ``(i, j, k)``, RAS affine, modality
        ``"MR"``/``"CT"``/``"PT"``/``"NM"``, ``meta["units"]`` (``"a.u."``, ``"HU"``, ``"BQML"``,
        ``"counts"``) and ``meta["phantom"]`` describing how it was made.
    """
    name = look_up(modality, MODALITIES, "modality", ignore_case=True)
    contrast = CONTRASTS[name]
    anat = load_anatomy(anatomy)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ref_to_scan = np.eye(4) if reference_to_scan is None else np.asarray(reference_to_scan, dtype=np.float64)
    if ref_to_scan.shape != (4, 4) or not np.all(np.isfinite(ref_to_scan)):
        raise ValueError(f"reference_to_scan must be a finite 4x4 matrix; got shape {ref_to_scan.shape}")

    if affine is not None:
        if shape is None:
            raise ValueError("make_volume(affine=...) needs shape as well")
        target_affine = np.asarray(affine, dtype=np.float64)
        shape = tuple(int(n) for n in three(shape, "shape"))
        spacing = np.linalg.norm(target_affine[:3, :3], axis=0)
    else:
        default = contrast.grid
        shape, spacing = resolve_grid(default, shape, spacing)
        if center_mm is None:
            center_mm = (ref_to_scan @ np.r_[HEAD_CENTER_MM, 1.0])[:3]
        target_affine = grid_affine(shape, spacing, axes or default.axes, three(center_mm, "center_mm", False))

    # sample from a block-averaged model when the grid is coarse (anti-aliasing): the model's
    # voxels are at most half the scan's smallest voxel size
    factor = 1
    while factor < 4 and 2 * factor * 2 <= spacing.min() + 1e-6:
        factor *= 2
    model, model_affine = _model_level(anat.kind, name, factor)
    model_mm = float(np.mean(np.linalg.norm(model_affine[:3, :3], axis=0)))
    arr = resample_model(model, model_affine, target_affine, shape, ref_to_scan, order=1, cval=contrast.values["air"])

    if marker:
        found = marker_fraction(target_affine, shape, ref_to_scan, MARKER_RADIUS_MM)
        if found is not None:
            where, frac = found
            arr[where] += frac * (np.float32(contrast.values["marker"]) - arr[where])

    # the sampled model already has about its voxel size (``model_mm``) as resolution; the blur
    # adds what the scanner's point spread function has beyond that, in the scan's own voxel space
    inplane = contrast.inplane_fwhm_mm
    if blur and inplane:  # CT: in-plane resolution and the slice profile (k is the slice axis)
        arr = _gaussian_blur(arr, [inplane, inplane, float(spacing[2])], spacing, intrinsic_mm=model_mm)
    psf, post = contrast.psf_fwhm_mm, contrast.postfilter_fwhm_mm
    if blur and psf and not noise:
        arr = _gaussian_blur(arr, [np.hypot(psf, post)] * 3, spacing, intrinsic_mm=model_mm)
    elif blur and psf:
        arr = _gaussian_blur(arr, [psf] * 3, spacing, intrinsic_mm=model_mm)

    if noise:
        if contrast.noise == "rician":
            arr *= _bias_field(shape, rng)
            sigma = np.float32(contrast.noise_level)
            real = arr + sigma * rng.standard_normal(shape, dtype=np.float32)
            imag = sigma * rng.standard_normal(shape, dtype=np.float32)
            arr = np.hypot(real, imag, out=real)
        elif contrast.noise == "gaussian":
            arr += np.float32(contrast.noise_level) * rng.standard_normal(shape, dtype=np.float32)
        elif contrast.noise == "poisson":
            scale = contrast.noise_level
            arr = (rng.poisson(np.clip(arr, 0, None) * scale) / scale).astype(np.float32)
            if blur and post:
                arr = _gaussian_blur(arr, [post] * 3, spacing)
    lo, hi = contrast.clip
    if lo is not None or hi is not None:
        np.clip(arr, lo, hi, out=arr)

    meta: dict[str, Any] = {
        "units": contrast.units,
        "phantom": {
            "contrast": name,
            "anatomy": anat.kind,
            "marker": bool(marker),
            "noise": bool(noise),
            "blur": bool(blur),
            "reference_to_scan": ref_to_scan.tolist(),
        },
    }
    if name == "pet":
        meta["suvbw_factor"] = PET_SUV_FACTOR
    return Volume(arr, target_affine, modality=contrast.modality,
                  meta=meta, source=f"phantom:{name}")


def label_volumes(anat: Anatomy, reference: Volume, marker: bool) -> tuple[Volume, Volume]:
    """Tissue labels and brain mask on the reference grid (nearest neighbour)."""
    coded = resample_model(anat.labels, anat.affine, reference.affine, reference.shape, np.eye(4), order=0, cval=0)
    labels = (coded & 0x7F).astype(np.float32)
    brain = (coded >> 7).astype(np.float32)
    if marker:
        found = marker_fraction(reference.affine, reference.shape, np.eye(4), MARKER_RADIUS_MM)
        if found is not None:
            where, frac = found
            inside = frac >= 0.5
            labels[where][inside] = LABELS["marker"]
            brain[where][inside] = 1.0
    meta = {"phantom": {"anatomy": anat.kind}}
    return (
        Volume(labels, reference.affine, modality=None, meta={**meta, "labels": dict(LABELS)}, source="phantom:labels"),
        Volume(brain, reference.affine, modality=None, meta=meta, source="phantom:brain_mask"),
    )


def clear_cache() -> None:
    """Free the cached tissue model and rendered model intensities (about 70 MB + 30 MB per contrast)."""
    _model_level.cache_clear()
    cached_anatomy.cache_clear()
