"""MONAI colour transforms of medfuse: pseudo-colour PET/SPECT in, fused colour out (:mod:`medfuse.color`).

- :class:`SplitLuminance` / :class:`MergeLuminance`: a colour slice or volume to its luminance and back.
- :class:`ApplyColormap`: :func:`medfuse.color.apply_colormap` (a normalized 3D PET/SPECT in colour, split).
- :class:`KeepHotRegions`: the hot-region floor of :mod:`medfuse.hotspots` on a fused luminance.

The first two keep the PET/SPECT's uptake in ``meta[UPTAKE_META_KEY]`` for the floor (the luminance of a colour
map is not the uptake). Same conventions as :mod:`medfuse.transforms.array`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from monai.transforms import Transform
from monai.utils import TransformBackends

from medfuse.transforms.array import CHROMA_META_KEY, UPTAKE_META_KEY, _has_meta, _like, to_volume

__all__ = ["SplitLuminance", "MergeLuminance", "ApplyColormap", "KeepHotRegions"]


class SplitLuminance(Transform):
    """RGB pseudo-colour ``(3, *spatial)`` (0..255) to its luminance Y ``(1, *spatial)`` (0..255).

    The chroma planes (Cb, Cr; :func:`medfuse.color.split_luminance`) go to
    ``meta[CHROMA_META_KEY]`` as a ``(2, *spatial)`` float32 array so :class:`MergeLuminance` can put
    the colour back after fusion, and the uptake read back through the colour map the colours lie on
    (:func:`medfuse.hotspots.uptake_from_colours`) to ``meta[UPTAKE_META_KEY]``. 2D ``(3, H, W)`` and 3D
    ``(3, X, Y, Z)`` images; one-channel images pass through unchanged. Same affine.
    """

    backend = [TransformBackends.NUMPY]

    def __call__(self, img: Any):  # type: ignore[override]
        from monai.utils import convert_data_type

        from medfuse.color import split_luminance
        from medfuse.hotspots import uptake_from_colours

        if int(img.shape[0]) == 1:
            return img
        if int(img.shape[0]) != 3 or len(img.shape) not in (3, 4):
            raise ValueError("SplitLuminance expects (3, H, W[, D]) RGB or a one-channel image, got shape "
                             f"{tuple(img.shape)}")
        rgb = np.moveaxis(np.asarray(convert_data_type(img, np.ndarray)[0]), 0, -1)
        y, cb, cr = split_luminance(rgb)
        extra = {CHROMA_META_KEY: np.stack([cb, cr]).astype(np.float32)}
        uptake = uptake_from_colours(rgb).uptake  # None when the colours lie on no known map: no floor
        if uptake is not None:
            extra[UPTAKE_META_KEY] = uptake
        return _like(y[None], img, extra_meta=extra)


class MergeLuminance(Transform):
    """Put colour back: a (fused) luminance ``(1, *spatial)`` plus chroma to RGB ``(3, *spatial)`` (0..255).

    Args:
        scale: multiplies the luminance before merging (255 for images in [0, 1], as the fused output).

    ``__call__(img, chroma=None)``: ``chroma`` ``(2, *spatial)`` (2D slice or 3D volume) defaults to
    ``img.meta[CHROMA_META_KEY]``; without chroma the image is returned unchanged. The output keeps
    ``img``'s affine.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def __call__(self, img: Any, chroma: Any = None):  # type: ignore[override]
        from monai.utils import convert_data_type

        from medfuse.color import merge_luminance

        if chroma is None and _has_meta(img):
            chroma = img.meta.get(CHROMA_META_KEY)
        if chroma is None:
            return img
        chroma = np.asarray(convert_data_type(chroma, np.ndarray)[0], dtype=np.float32)
        y = np.asarray(convert_data_type(img, np.ndarray)[0][0], dtype=np.float32) * np.float32(self.scale)
        if chroma.shape != (2, *y.shape):
            raise ValueError(f"MergeLuminance: chroma of shape {chroma.shape} does not fit the image "
                             f"{tuple(img.shape)}")
        rgb = merge_luminance(y, chroma[0], chroma[1]).astype(np.float32)
        return _like(np.moveaxis(rgb, -1, 0), img, drop=(CHROMA_META_KEY,))


class ApplyColormap(Transform):
    """A normalized 3D PET/SPECT ``(1, X, Y, Z)`` in [0, 1] through its colour map, split into luminance and chroma.

    The colour path of :func:`medfuse.pipeline.fuse_volumes` (the CLI): the values go through
    :func:`medfuse.color.apply_colormap`, the RGB through :func:`medfuse.color.split_luminance`; the
    output is the luminance Y / 255 in [0, 1] (what the network fuses), the chroma ``(2, X, Y, Z)`` goes to
    ``meta[CHROMA_META_KEY]`` as :class:`SplitLuminance` stores it (for :class:`MergeLuminance` with
    ``scale=255`` after fusion), the values themselves (the uptake) to ``meta[UPTAKE_META_KEY]``, and
    ``meta["colour"]`` records the colour map and the moving-scan values mapped to its ends (for the sidecar).
    Same affine.

    Args:
        colormap: a name of :data:`medfuse.color.COLORMAPS`; default by modality
            (:func:`medfuse.color.default_colormap`); ``"gray"`` passes the image through.

    Anything else passes through unchanged: CT and MR (modality from the meta, as the other
    transforms read it), 2D slices, several channels, an image whose chroma is already split.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, colormap: str | None = None) -> None:
        from medfuse.color import GRAY_COLORMAPS, colormap_name

        if colormap is not None and str(colormap).strip().lower() not in GRAY_COLORMAPS:
            colormap_name(colormap)  # a typo fails here, with "did you mean"
        self.colormap = colormap

    def __call__(self, img: Any):  # type: ignore[override]
        from medfuse.color import apply_colormap, colormap_for, colour_record, split_luminance

        if int(img.shape[0]) != 1 or len(img.shape) != 4:
            return img
        meta: Mapping = img.meta if _has_meta(img) else {}
        if meta.get(CHROMA_META_KEY) is not None:
            return img
        vol = to_volume(img, 0)
        name = colormap_for(vol.modality, self.colormap)
        if name is None:
            return img
        y, cb, cr = split_luminance(apply_colormap(vol.array, name))
        extra: dict[str, Any] = {CHROMA_META_KEY: np.stack([cb, cr]).astype(np.float32),
                                 UPTAKE_META_KEY: np.asarray(vol.array, dtype=np.float32)}
        if isinstance(meta.get("normalization"), Mapping):
            vol.meta["normalization"] = meta["normalization"]
            extra["colour"] = colour_record(vol, name)
        else:
            extra["colour"] = {"colormap": name}
        return _like((y / 255.0)[None], img, extra_meta=extra)


class KeepHotRegions(Transform):
    """The hot-region floor of ``medfuse fuse`` on a fused luminance (:func:`medfuse.hotspots.floor_hot_regions`).

    Args:
        pair: ``pet_mri`` or ``spect_mri`` (other pairs pass through).
        method: the fusion method the image came from (``max`` needs no floor).

    ``__call__(fused, moving)``: ``fused`` ``(1, *spatial)`` in [0, 1]; ``moving`` the functional image's luminance
    on the same grid in [0, 1], whose ``meta[UPTAKE_META_KEY]`` (set by :class:`ApplyColormap` or
    :class:`SplitLuminance`) says where it is hot. Without that entry (a grey image) its values are the uptake.
    Returns ``fused`` with its meta, values floored.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, pair: str | None = None, method: str = "light") -> None:
        self.pair, self.method = pair, method

    def __call__(self, fused: Any, moving: Any):  # type: ignore[override]
        from monai.utils import convert_data_type

        from medfuse.hotspots import floor_hot_regions

        f = np.asarray(convert_data_type(fused, np.ndarray)[0][0], dtype=np.float32)
        b = np.asarray(convert_data_type(moving, np.ndarray)[0][0], dtype=np.float32)
        uptake = moving.meta.get(UPTAKE_META_KEY) if _has_meta(moving) else None
        out = floor_hot_regions(f, b, uptake, self.pair, self.method)
        return _like(out[None], fused)
