"""QC pictures: reference | moving | fused (| overlay) in three orthogonal planes.

Drawn with Pillow only (no plotting library needed). Volumes are shown in the radiological
convention after reorienting to the closest RAS axes: axial and coronal views have the patient's
right on the viewer's left (marked ``R``), superior/anterior up; sagittal views have anterior on
the left. Pixels are scaled so that millimetres are square.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medfuse.volume import Volume

__all__ = ["qc_figure", "save_qc_figure", "hot_colormap", "orthogonal_views"]

PANEL = 220  # pixels of the longest side of one panel


def hot_colormap(x: np.ndarray) -> np.ndarray:
    """Map [0, 1] values to ``(..., 3)`` uint8 RGB with the "hot" colour scale (black-red-yellow-white)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0, 1)
    rgb = np.stack([np.clip(3 * x, 0, 1), np.clip(3 * x - 1, 0, 1), np.clip(3 * x - 2, 0, 1)], axis=-1)
    return (255 * rgb).astype(np.uint8)


def _canonical(volume: Volume, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``array`` (on ``volume``'s grid) with axes reordered/flipped to the closest RAS, and the spacing."""
    import nibabel.orientations as nio

    ornt = nio.io_orientation(volume.affine)
    out = nio.apply_orientation(array, ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = volume.spacing
    return out, spacing


def orthogonal_views(volume: Volume, arrays: list[np.ndarray], center=None) -> list[list[tuple[np.ndarray, float]]]:
    """For each array, its (axial, coronal, sagittal) views through ``center`` with display aspect.

    Returns a list per view of ``(image_2d, row_mm / col_mm)`` tuples, one per array.
    """
    canon = [_canonical(volume, a) for a in arrays]
    ref, sp = canon[0]
    if center is None:
        mask = ref > np.percentile(ref, 60)
        center = np.round(np.argwhere(mask).mean(axis=0)).astype(int) if mask.any() else np.array(ref.shape) // 2
    i, j, k = center
    views = []
    for name in ("axial", "coronal", "sagittal"):
        row = []
        for a, s in canon:
            if name == "axial":
                img, aspect = a[:, :, k].T[::-1, ::-1], s[1] / s[0]
            elif name == "coronal":
                img, aspect = a[:, j, :].T[::-1, ::-1], s[2] / s[0]
            else:
                img, aspect = a[i, :, :].T[::-1, ::-1], s[2] / s[1]
            row.append((img, aspect))
        views.append(row)
    return views


def _to_u8(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [0.5, 99.5]) if img.size else (0, 1)
    hi = hi if hi > lo else lo + 1
    return (255 * np.clip((img - lo) / (hi - lo), 0, 1)).astype(np.uint8)


def _panel(rgb_or_gray: np.ndarray, aspect: float = 1.0):
    from PIL import Image

    img = Image.fromarray(rgb_or_gray)
    h, w = rgb_or_gray.shape[:2]
    h_mm = h * aspect
    scale = PANEL / max(h_mm, w)
    return img.resize((max(1, round(w * scale)), max(1, round(h_mm * scale))), Image.BILINEAR)


def qc_figure(result) -> "Image.Image":
    """A QC picture of a :class:`~medfuse.pipeline.FusionResult` as a Pillow image."""
    from PIL import Image, ImageDraw

    ref, mov, fused = result.reference, result.moving, result.fused
    titles = ["reference", "moving (on reference grid)", f"fused ({result.method})"]
    if ref.ndim == 2:
        cols = [_to_u8(ref.array), None, None]
        cols[1] = np.clip(mov.rgb, 0, 255).astype(np.uint8) if mov.rgb is not None else _to_u8(mov.array)
        cols[2] = np.clip(fused.rgb, 0, 255).astype(np.uint8) if fused.rgb is not None else _to_u8(fused.array)
        rows = [[_panel(c) for c in cols]]
        row_names = [""]
    else:
        overlay_src = [ref.array, mov.array, fused.array]
        views = orthogonal_views(ref, overlay_src)
        rows, row_names = [], ["axial", "coronal", "sagittal"]
        titles.append("overlay (moving in hot colours)")
        for view in views:
            (r, asp), (m, _), (f, _) = view
            r8 = _to_u8(r)
            # functional signal above its median inside the head, fading in, as PET/MR viewers show it
            floor = float(np.median(m[m > 0.05])) if np.any(m > 0.05) else 0.5
            level = np.clip((m - floor) / max(1.0 - floor, 1e-3), 0, 1)
            alpha = (0.6 * np.clip(level / 0.5, 0, 1))[..., None]
            over = (1 - alpha) * np.repeat(r8[..., None], 3, axis=-1) + alpha * hot_colormap(0.35 + 0.65 * level)
            rows.append([_panel(r8, asp), _panel(_to_u8(m), asp), _panel(_to_u8(f), asp),
                         _panel(over.astype(np.uint8), asp)])
    col_w = [max(row[c].width for row in rows) for c in range(len(rows[0]))]
    row_h = [max(p.height for p in row) for row in rows]
    top, left, gap = 18, 18 if ref.ndim == 3 else 4, 4
    canvas = Image.new("RGB", (left + sum(col_w) + gap * len(col_w), top + sum(row_h) + gap * len(row_h)), "black")
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
    return canvas


def save_qc_figure(result, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write :func:`qc_figure` as a PNG, atomically."""
    from medfuse.io.atomic import atomic_output

    with atomic_output(path, force) as tmp:
        qc_figure(result).save(tmp, format="PNG")
    return Path(path)
