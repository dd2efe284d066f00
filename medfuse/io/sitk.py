"""Explicit conversion between :class:`~medfuse.volume.Volume` (RAS) and SimpleITK images (LPS).

SimpleITK arrays are indexed ``[k, j, i]`` (z, y, x) while medfuse arrays are ``[i, j, k]``;
SimpleITK's origin/direction are LPS while medfuse affines are RAS. Every Volume <-> SimpleITK
image conversion goes through these two functions; the RAS/LPS arithmetic itself is
:func:`medfuse.volume.affine_from_lps` and :func:`medfuse.volume.lps_from_affine`.
"""

from __future__ import annotations

import numpy as np

from medfuse.volume import Volume, affine_from_lps, lps_from_affine

__all__ = ["to_sitk", "from_sitk"]


def to_sitk(volume: Volume, array: np.ndarray | None = None):
    """Return a ``SimpleITK.Image`` with the volume's intensities and LPS geometry.

    Args:
        volume: the source of the geometry (and of the intensities unless ``array`` is given).
        array: optional array on the volume's grid to use instead of ``volume.array``.
    """
    import SimpleITK as sitk

    data = volume.array if array is None else np.asarray(array)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.T))
    origin, spacing, direction = lps_from_affine(volume.affine, ndim=volume.ndim)
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    return img


def from_sitk(image, template: Volume | None = None, **fields) -> Volume:
    """Return a :class:`Volume` (RAS affine, ``[i, j, k]`` array) from a ``SimpleITK.Image``.

    ``template``'s modality, meta and source are carried over unless overridden by ``fields``.
    """
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(image).T.astype(np.float32, copy=False)
    affine = affine_from_lps(image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    kwargs = {}
    if template is not None:
        kwargs = dict(modality=template.modality, meta=dict(template.meta), source=template.source)
    kwargs.update(fields)
    return Volume(arr, affine, **kwargs)
