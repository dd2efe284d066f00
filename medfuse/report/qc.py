"""QC pictures: reference | moving | fused | overlay in three orthogonal planes.

Drawn with Pillow only (no plotting library needed). Volumes are shown in the radiological
convention after reorienting to the closest RAS axes: axial and coronal views have the patient's
right on the viewer's left (marked ``R``), superior/anterior up; sagittal views have anterior on
the left. Pixels are scaled so that millimetres are square.

Columns (3D):

- **reference**: the normalized reference, grey;
- **moving**: the normalized moving scan on the reference grid, through the colour map the fusion
  used for PET/SPECT (``result.colour``), grey otherwise;
- **fused**: the fused image, in colour when it is an RGB volume;
- **overlay**: the quantitative layer (``result.quantitative``, the moving scan in its own units)
  over the reference, in :data:`OVERLAY_COLORMAP` (hot iron stopped at yellow, so the hottest values
  stay distinct instead of turning white) between the median and the 99.9th percentile of its values
  inside the head; values below are transparent, above are clipped, and a colour bar on the right
  gives the range in the layer's units.

The slices go through the most informative place inside the brain, not the geometric centre:
:func:`brain_region` keeps the part of the reference's head mask at least :data:`QC_DEPTH_MM` inside its
surface and at most :data:`QC_CRANIAL_MM` below the top of the head (the brain, not the scalp, skull, face,
neck or a skull-stripping edge). There, for PET/SPECT, the plane goes through the moving scan's hottest region
(maximum of the quantitative layer, unclipped, smoothed over ~2 voxels; the depth rule is not applied:
a hot cortical lesion lies near the surface); for every other pair (MR-MR, CT-MR)
through the moving scan's most distinctive region (:func:`distinctiveness`: where the moving scan is brighter
than the reference's intensity predicts, in standard deviations of the joint histogram, smoothed over
:data:`QC_SMOOTH_MM`), e.g. a FLAIR lesion. :func:`informative_center` computes it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medfuse.intensity.mask import bounding_box
from medfuse.volume import Volume

__all__ = ["qc_figure", "save_qc_figure", "hot_colormap", "orthogonal_views", "informative_center",
           "brain_region", "distinctiveness", "OVERLAY_COLORMAP", "OVERLAY_PERCENTILES", "QC_DEPTH_MM",
           "QC_CRANIAL_MM", "QC_SMOOTH_MM"]

PANEL = 220  # pixels of the longest side of one panel
#: colour map of the quantitative overlay (ends in yellow, not white)
OVERLAY_COLORMAP = "hot_yellow"
#: the overlay's range: these percentiles of the quantitative layer inside the head
OVERLAY_PERCENTILES = (50.0, 99.9)
#: the QC planes go through a point at least this deep inside the reference's head mask ...
QC_DEPTH_MM = 15.0
#: ... and at most this far below the top of the head (brain height above the skull base is about 100 mm)
QC_CRANIAL_MM = 100.0
#: smoothing (Gaussian sigma, mm) of the distinctiveness map: a region, not a noisy voxel
QC_SMOOTH_MM = 8.0


def hot_colormap(x: np.ndarray) -> np.ndarray:
    """Map [0, 1] values to ``(..., 3)`` uint8 RGB with the "hot" colour scale (black-red-yellow-white)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0, 1)
    rgb = np.stack([np.clip(3 * x, 0, 1), np.clip(3 * x - 1, 0, 1), np.clip(3 * x - 2, 0, 1)], axis=-1)
    return (255 * rgb).astype(np.uint8)


def _canonical(volume: Volume, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``array`` (on ``volume``'s grid, extra trailing axes allowed) reordered/flipped to the closest RAS, and the spacing."""
    import nibabel.orientations as nio

    ornt = nio.io_orientation(volume.affine)
    out = nio.apply_orientation(array, ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = volume.spacing
    return out, spacing


def _smooth(a: np.ndarray, sigma) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.asarray(a, dtype=np.float32), sigma, truncate=_SMOOTH_TRUNCATE)


#: reach of :func:`_smooth` in standard deviations (``scipy.ndimage.gaussian_filter``'s default ``truncate``)
_SMOOTH_TRUNCATE = 4.0


def _smooth_margin(sigma, ndim: int) -> np.ndarray:
    """Voxels per axis that :func:`_smooth` reads on each side of a voxel (its kernel radius, plus one)."""
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (ndim,))
    return np.array([int(_SMOOTH_TRUNCATE * float(s) + 0.5) + 1 for s in sigma])


def brain_region(reference: Volume, mask: np.ndarray, depth_mm: float = QC_DEPTH_MM) -> np.ndarray:
    """The part of the head ``mask`` (on ``reference``'s 3D grid) where the QC planes may cross: at least
    ``depth_mm`` inside the mask's surface (at most half the mask's own depth) and at most
    :data:`QC_CRANIAL_MM` below its top (world superior). Falls back to the mask when that leaves nothing."""
    from scipy import ndimage

    region = mask.copy()
    if depth_mm > 0 and mask.any():
        # on the mask's bounding box with a ring of background: the nearest background voxel of a mask voxel is
        # inside the ring (it is background), so the depths are those of the whole grid, for the box's memory
        box = bounding_box(mask)
        depth = ndimage.distance_transform_edt(np.pad(mask[box], 1), sampling=reference.spacing)[1:-1, 1:-1, 1:-1]
        region = np.zeros_like(mask)
        region[box] = depth >= min(depth_mm, 0.5 * float(depth.max()))
    if not region.any():
        return mask
    # heights slab by slab over the boxes (no index lists of a head: ~130 MB and ~0.3 s less on a 1 mm head grid)
    top = max(float(h[mask[at]].max()) for at, h in _slab_heights(reference, bounding_box(mask)) if mask[at].any())
    low = [(at, (h < top - QC_CRANIAL_MM) & region[at]) for at, h in _slab_heights(reference, bounding_box(region))]
    if sum(np.count_nonzero(part) for _, part in low) == np.count_nonzero(region):
        return region
    for at, part in low:
        region[at] &= ~part
    return region


#: rows of the first axis per slab of :func:`_slab_heights`
_SLAB_ROWS = 16


def _slab_heights(reference: Volume, box: tuple[slice, ...]):
    """``(slices, heights)`` for slabs of ``box`` (3D) along its first axis: :func:`_heights` of every voxel of the
    slab, by the same float operations in the same order (the same numbers)."""
    row = reference.affine[2]
    j = np.arange(box[1].start, box[1].stop)[None, :, None] * row[1]
    k = np.arange(box[2].start, box[2].stop)[None, None, :] * row[2]
    for start in range(box[0].start, box[0].stop, _SLAB_ROWS):
        stop = min(start + _SLAB_ROWS, box[0].stop)
        h = np.arange(start, stop)[:, None, None] * row[0] + j
        h = h + k
        h += row[3]
        yield (slice(start, stop), box[1], box[2]), h


def _heights(reference: Volume, index: tuple[np.ndarray, ...]) -> np.ndarray:
    """World superior coordinate (RAS z, mm) of the voxels ``index`` (as ``np.nonzero`` gives them): the third row
    of the affine, voxel axis by voxel axis (no ``(N, 3)`` float64 arrays of a head; the numbers of
    :meth:`~medfuse.volume.Volume.world_coordinates` within 1e-12 mm, exactly for an axis-aligned affine)."""
    row = reference.affine[2]
    out = index[0] * row[0]
    for axis in range(1, len(index)):
        out += index[axis] * row[axis]
    out += row[3]
    return out


def distinctiveness(reference: Volume, moving: Volume, region: np.ndarray, bins: int = 48) -> np.ndarray:
    """How much brighter the moving scan is than the reference's intensity predicts, per voxel.

    The prediction is the mean of the moving scan over the ``region`` voxels of the same reference intensity
    (``bins`` bins of the normalized reference); the excess is divided by the spread of those voxels (plus a
    tenth of the moving scan's overall spread, so that rare intensities do not divide by zero). Tissue that
    looks alike in both scans scores near 0; a FLAIR or T2 lesion, a CT hyperdensity scores high.

    Returns:
        float32 of the grid's shape, >= 0.
    """
    return _excess(reference.array, moving.array, region, bins)


def _excess(reference: np.ndarray, moving: np.ndarray, region: np.ndarray, bins: int = 48) -> np.ndarray:
    """:func:`distinctiveness` of arrays; any box of the grid that holds all of ``region`` gives the grid's numbers
    there (the statistics see the region's voxels in the same order)."""
    r = np.minimum((np.clip(reference, 0.0, 1.0) * bins).astype(np.intp), bins - 1)
    m = np.asarray(moving, dtype=np.float64)
    rb, mv = r[region], m[region]
    count = np.maximum(np.bincount(rb, minlength=bins), 1)
    mean = np.bincount(rb, weights=mv, minlength=bins) / count
    spread = np.sqrt(np.maximum(np.bincount(rb, weights=mv * mv, minlength=bins) / count - mean ** 2, 0.0))
    z = (m - mean[r]) / (spread[r] + 0.1 * float(mv.std()) + 1e-12)
    return np.maximum(z, 0.0).astype(np.float32)


def informative_center(reference: Volume, moving: Volume, functional: bool, mask: np.ndarray | None = None,
                       values: np.ndarray | None = None) -> np.ndarray:
    """The voxel index (on ``reference``'s grid) the QC slices go through.

    Args:
        reference, moving: the normalized sources on one grid ([0, 1]).
        functional: PET/SPECT: the moving scan's hottest region in the head above the skull base
            (:func:`brain_region` without the depth rule); otherwise its most distinctive region
            (:func:`distinctiveness`) inside :func:`brain_region`.
        mask: the reference's head mask (default: :func:`medfuse.intensity.mask.head_mask`).
        values: the moving scan in its own units (not clipped at the top of a window), used to find
            the hottest region when given.

    Returns:
        ``(i, j, k)`` int array.
    """
    from medfuse.intensity.mask import head_mask

    if mask is None:
        try:
            mask = head_mask(reference)
        except Exception:  # a QC picture never fails on the mask
            mask = None
    if mask is None or not mask.any():
        mask = np.ones(reference.shape, dtype=bool)
    region = mask if reference.ndim != 3 else brain_region(reference, mask, 0.0 if functional else QC_DEPTH_MM)
    sigma = 2.0 if functional else QC_SMOOTH_MM / np.maximum(reference.spacing, 1e-6)
    # the maximum lies in the region's box; the smoothing reads its kernel's radius around it: on the box widened by
    # that (and cut at the grid's edges, as the whole grid is) the scores are the whole grid's, and the first maximum
    # in the box's order is the first in the grid's
    box = bounding_box(region, _smooth_margin(sigma, region.ndim))
    inside = region[box]
    if functional:
        score = _smooth((moving.array if values is None else values)[box], sigma)
    else:
        score = _smooth(_excess(reference.array[box], moving.array[box], inside), sigma)
    score = np.where(inside, score, -np.inf)
    at = np.unravel_index(int(np.argmax(score)), score.shape)
    return np.array([b.start + int(i) for b, i in zip(box, at)])


def _to_canonical_index(volume: Volume, index: np.ndarray) -> np.ndarray:
    import nibabel.orientations as nio

    ornt = nio.io_orientation(volume.affine)
    out = np.empty(3, dtype=int)
    for axis, (new_axis, flip) in enumerate(ornt):
        n = volume.shape[axis]
        out[int(new_axis)] = index[axis] if flip > 0 else n - 1 - index[axis]
    return out


def orthogonal_views(volume: Volume, arrays: list[np.ndarray], center=None) -> list[list[tuple[np.ndarray, float]]]:
    """For each array, its (axial, coronal, sagittal) views through ``center`` with display aspect.

    Arrays are on ``volume``'s grid; colour arrays ``(X, Y, Z, 3)`` give ``(H, W, 3)`` views.
    ``center`` is a voxel index on ``volume``'s grid; default: the centre of the brightest 40 % of the
    first array.

    Returns a list per view of ``(image_2d, row_mm / col_mm)`` tuples, one per array.
    """
    canon = [_canonical(volume, a) for a in arrays]
    ref, sp = canon[0]
    if center is None:
        mask = ref > np.percentile(ref, 60)
        center = np.round(np.argwhere(mask).mean(axis=0)).astype(int) if mask.any() else np.array(ref.shape) // 2
    else:
        center = _to_canonical_index(volume, np.asarray(center, dtype=int))
    i, j, k = center
    views = []
    for name in ("axial", "coronal", "sagittal"):
        row = []
        for a, s in canon:
            if name == "axial":
                img, aspect = a[:, :, k], s[1] / s[0]
            elif name == "coronal":
                img, aspect = a[:, j, :], s[2] / s[0]
            else:
                img, aspect = a[i, :, :], s[2] / s[1]
            row.append((np.swapaxes(img, 0, 1)[::-1, ::-1], aspect))
        views.append(row)
    return views


def _to_u8(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [0.5, 99.5]) if img.size else (0, 1)
    hi = hi if hi > lo else lo + 1
    return (255 * np.clip((img - lo) / (hi - lo), 0, 1)).astype(np.uint8)


def _panel(rgb_or_gray: np.ndarray, aspect: float = 1.0):
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb_or_gray))
    h, w = rgb_or_gray.shape[:2]
    h_mm = h * aspect
    scale = PANEL / max(h_mm, w)
    return img.resize((max(1, round(w * scale)), max(1, round(h_mm * scale))), Image.BILINEAR)


def _overlay_range(values: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    if mask is not None and mask.any():
        box = bounding_box(mask)  # the mask's voxels in the same order, without a pass over the whole grid
        inside = values[box][mask[box]]
    else:
        inside = values.ravel()
    inside = inside[np.isfinite(inside)]
    if inside.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(inside, OVERLAY_PERCENTILES))
    if not hi > lo:
        lo, hi = float(inside.min()), float(inside.max())
    return lo, (hi if hi > lo else lo + 1.0)


def _short_units(units: str) -> str:
    if units.startswith("as stored"):
        return "stored units"
    if units.startswith("MR signal"):
        return "MR signal"
    return units.split(" (")[0][:14]


def _colour_bar(height: int, lo: float, hi: float, units: str, width: int = 16):
    """A vertical colour bar of :data:`OVERLAY_COLORMAP` with its range written in ``units``."""
    from PIL import Image, ImageDraw

    from medfuse.color import apply_colormap

    ramp = apply_colormap(np.linspace(1, 0, max(height - 24, 8))[:, None].repeat(width, axis=1), OVERLAY_COLORMAP)
    label_w = 92
    img = Image.new("RGB", (width + label_w, height), "black")
    img.paste(Image.fromarray(ramp.astype(np.uint8)), (0, 12))
    draw = ImageDraw.Draw(img)
    draw.text((width + 3, 8), f"{hi:.3g}", fill="white")
    draw.text((width + 3, height - 24), f"{lo:.3g}", fill="white")
    short = _short_units(units)
    draw.text((width + 3, height // 2 - 6), short, fill="white")
    return img


def qc_figure(result) -> "Image.Image":
    """A QC picture of a :class:`~medfuse.pipeline.FusionResult` as a Pillow image."""
    from PIL import Image, ImageDraw

    from medfuse.color import apply_colormap

    ref, mov, fused = result.reference, result.moving, result.fused
    colour = getattr(result, "colour", None)
    titles = ["reference", "moving (on reference grid)", f"fused ({result.method})"]
    bar = None
    if ref.ndim == 2:
        cols = [_to_u8(ref.array), None, None]
        cols[1] = np.clip(mov.rgb, 0, 255).astype(np.uint8) if mov.rgb is not None else _to_u8(mov.array)
        cols[2] = np.clip(fused.rgb, 0, 255).astype(np.uint8) if fused.rgb is not None else _to_u8(fused.array)
        rows = [[_panel(c) for c in cols]]
        row_names = [""]
    else:
        from medfuse.intensity.mask import head_mask

        quant = getattr(result, "quantitative", None)
        layer = quant.array if quant is not None else mov.array
        units = (quant.meta.get("units") if quant is not None else None) or "normalized [0, 1]"
        mask = getattr(result, "reference_mask", None)  # the run's own (the reference as read), else computed here
        if mask is None:
            try:
                mask = head_mask(ref)
            except Exception:  # a QC picture never fails on the mask
                mask = None
        functional = str(mov.modality or "").upper() in ("PT", "NM")
        center = informative_center(ref, mov, functional, mask, None if quant is None else quant.array)
        lo, hi = _overlay_range(layer, mask)
        arrays = [ref.array, mov.array, fused.rgb if fused.rgb is not None else fused.array, layer]
        views = orthogonal_views(ref, arrays, center=center)
        rows, row_names = [], ["axial", "coronal", "sagittal"]
        if colour is not None:
            titles[1] = f"moving ({colour['colormap']})"
        titles.append(f"overlay ({_short_units(units)})")
        for view in views:
            (r, asp), (m, _), (f, _), (q, _) = view
            r8 = _to_u8(r)
            m8 = apply_colormap(m, colour["colormap"]).astype(np.uint8) if colour is not None else _to_u8(m)
            f8 = np.clip(np.rint(f), 0, 255).astype(np.uint8) if f.ndim == 3 else _to_u8(f)
            level = np.clip((q - lo) / (hi - lo), 0, 1)
            alpha = (0.75 * np.clip(level / 0.15, 0, 1) * (q > lo))[..., None]
            over = (1 - alpha) * np.repeat(r8[..., None], 3, axis=-1) + alpha * apply_colormap(
                0.3 + 0.7 * level, OVERLAY_COLORMAP)
            rows.append([_panel(r8, asp), _panel(m8, asp), _panel(f8, asp), _panel(over.astype(np.uint8), asp)])
        bar = (lo, hi, units)
    col_w = [max(row[c].width for row in rows) for c in range(len(rows[0]))]
    row_h = [max(p.height for p in row) for row in rows]
    top, left, gap = 18, 18 if ref.ndim == 3 else 4, 4
    bar_w = 112 if bar is not None else 0
    canvas = Image.new("RGB", (left + sum(col_w) + gap * len(col_w) + bar_w, top + sum(row_h) + gap * len(row_h)),
                       "black")
    draw = ImageDraw.Draw(canvas)
    x = left
    for c, title in enumerate(titles):
        draw.text((x + 2, 3), title, fill="white")
        x += col_w[c] + gap
    y = top
    for r, row in enumerate(rows):
        x = left
        for c, panel in enumerate(row):
            canvas.paste(panel, (x, y))
            if ref.ndim == 3 and r < 2:  # radiological convention: patient right on the viewer's left
                draw.text((x + 3, y + panel.height // 2 - 6), "R", fill="yellow")
                draw.text((x + panel.width - 10, y + panel.height // 2 - 6), "L", fill="yellow")
            x += col_w[c] + gap
        if row_names[r]:
            draw.text((2, y + 4), row_names[r][0].upper(), fill="white")
        y += row_h[r] + gap
    if bar is not None:
        lo, hi, units = bar
        canvas.paste(_colour_bar(min(row_h[0], 200), lo, hi, units), (left + sum(col_w) + gap * len(col_w) + 2, top))
    return canvas


def save_qc_figure(result, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write :func:`qc_figure` as a PNG, atomically."""
    from medfuse.io.atomic import atomic_output
    from medfuse.io.slices import PNG_COMPRESS_LEVEL

    with atomic_output(path, force) as tmp:
        qc_figure(result).save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return Path(path)
