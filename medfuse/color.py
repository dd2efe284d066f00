"""Colour handling for pseudo-colour PET/SPECT slices (Harvard AANLIB style).

Fusion runs on one intensity channel: the luminance Y of YCbCr (ITU-R BT.601, full range, as in
JPEG and Pillow's ``convert("YCbCr")``). The chroma (Cb, Cr) of the functional image is put back
after fusion, so the output keeps the PET/SPECT colour coding while its brightness carries the
fused detail. Pillow does the conversions, which makes Y identical to what the metric calibration
and most published evaluations use.

Arrays are ``(H, W, 3)`` RGB on 0..255 (any numeric dtype; rounded to uint8 for conversion) and
``(H, W)`` channels on 0..255.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_gray_rgb", "split_luminance", "merge_luminance"]


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(a, dtype=np.float64)), 0, 255).astype(np.uint8)


def is_gray_rgb(rgb: np.ndarray) -> bool:
    """True when all three channels are identical (an RGB file holding a gray image)."""
    rgb = np.asarray(rgb)
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


def split_luminance(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``(H, W, 3)`` RGB (0..255) into float32 Y, Cb, Cr planes on 0..255 (Pillow's BT.601)."""
    from PIL import Image

    ycc = np.asarray(Image.fromarray(_to_uint8(rgb), mode="RGB").convert("YCbCr"), dtype=np.float32)
    return ycc[..., 0], ycc[..., 1], ycc[..., 2]


def merge_luminance(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Combine a (fused) luminance with chroma planes into ``(H, W, 3)`` uint8 RGB.

    Args:
        y: luminance on 0..255 (float is rounded), e.g. ``255 * fused``.
        cb, cr: chroma planes from :func:`split_luminance` of the functional image.
    """
    from PIL import Image

    planes = [Image.fromarray(_to_uint8(p), mode="L") for p in (y, cb, cr)]
    return np.asarray(Image.merge("YCbCr", planes).convert("RGB"))
