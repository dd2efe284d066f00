"""A MONAI image writer that writes through :func:`medfuse.io.save_volume`.

``SaveImage``/``SaveImaged(writer="medfuse.transforms.VolumeWriter")`` keep MONAI's file naming
(``output_dir``, ``output_postfix``, ``data_root_dir``...) while the file is written the way every
other medfuse door writes it: atomically, the affine as the ``MetaTensor`` carries it (RAS, converted
from LPS when ``meta["space"]`` says so; NIfTI sform = qform), 2D slices as 8-bit PNG/TIFF in
medfuse's ``(row, col)`` layout, colour kept (slices and 3D volumes).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from monai.data import ImageWriter

from medfuse.io.formats import SLICE_SUFFIXES
from medfuse.transforms.array import to_volume

__all__ = ["VolumeWriter"]

#: image-file formats: 2D slices, written 8-bit


class VolumeWriter(ImageWriter):
    """Write a channel-first image with :func:`medfuse.io.save_volume` (format from the file name).

    Args:
        output_dtype: kept for MONAI's interface; medfuse writes float32 volumes and 8-bit slices.
        scale: as MONAI's ``PILWriter``: for image-file formats, one-channel values are clipped to
            [0, 1] and multiplied by ``scale`` (255 for a fused slice in [0, 1]); ignored for volumes.

    A 3-channel image (``MergeLuminance``'s RGB, 0..255) is written in colour: an RGB picture for a
    2D slice, an RGB volume for 3D (NIfTI datatype RGB24, NRRD/MHA 3-component uint8), with the image's affine.
    Overwrites, like MONAI's writers: a bundle checks its outputs before any work
    (:func:`medfuse.bundle.make_datalist`).
    """

    def __init__(self, output_dtype: Any = np.float32, scale: float | None = None, **kwargs: Any) -> None:
        super().__init__(output_dtype=output_dtype, scale=scale, **kwargs)

    def set_data_array(self, data_array, channel_dim: int | None = 0, squeeze_end_dims: bool = True, **kwargs):
        """Keep ``data_array`` (channel-first ``(C, H, W[, D])``, or without channel when ``channel_dim`` is None)."""
        self.data_obj = data_array if channel_dim is not None else data_array[None]

    def set_metadata(self, meta_dict: dict | None = None, **options) -> None:
        """Nothing to do: the ``MetaTensor`` given to :meth:`set_data_array` carries its geometry."""

    def write(self, filename: str | os.PathLike, verbose: bool = False, **kwargs):
        from medfuse.io import save_volume
        from medfuse.io.atomic import full_suffix

        from medfuse.color import split_luminance

        img = self.data_obj
        volume = to_volume(img, 0)
        if int(img.shape[0]) == 3:  # MergeLuminance's RGB (0..255): a colour slice or volume
            rgb = np.stack([to_volume(img, c).array for c in range(3)], axis=-1)
            # array: the luminance, as medfuse.io reads a colour file back (0..255 for a slice, [0, 1] for a volume)
            y = split_luminance(rgb)[0]
            volume = volume.with_array(y if volume.ndim == 2 else y / 255.0, rgb=rgb)
        elif volume.ndim == 2 and full_suffix(filename) in SLICE_SUFFIXES and self.scale:
            volume = volume.with_array(np.clip(volume.array, 0.0, 1.0) * float(self.scale))
        return save_volume(volume, filename, force=True)
