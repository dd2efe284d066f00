"""Registration of CT, PET, SPECT or another MRI onto the reference MRI, with self-checks.

- :func:`register`: rigid / affine / B-spline, Mattes mutual information, multi-resolution,
  robust initialization; raises :class:`~medfuse.errors.RegistrationError` instead of failing
  silently, unless overridden with ``checks=False`` (then the failures are listed in
  ``RegistrationResult.check_failures``; see :mod:`medfuse.registration.core`).
- :func:`resample_to_reference`: resample onto the reference grid through a transform or, without
  one, in world coordinates (pre-aligned scans, ``medfuse fuse --no-register``).
- :func:`save_transform` / :func:`load_transform`: ITK transform files (``.tfm``, ``.h5``), in
  SimpleITK's convention: reference LPS points -> moving LPS points.
- :func:`same_frame_of_reference`: hybrid PET/CT, PET/MR series need no registration.
- :func:`same_voxel_centres` / :func:`reorder_to_reference`: one physical grid stored in another axis
  order (a flipped or permuted copy) needs no registration either, only an exact reordering.
"""

from __future__ import annotations

from medfuse.registration.checks import decompose_linear, dice, fov_coverage, same_frame_of_reference
from medfuse.registration.core import RegistrationResult, RegistrationSettings, TransformType, register
from medfuse.registration.grid import reorder_to_reference, same_voxel_centres
from medfuse.registration.resample import Interpolation, background_value, resample_to_reference
from medfuse.registration.transform import (
    TRANSFORM_SUFFIXES,
    load_transform,
    matrix_lps,
    matrix_ras,
    save_transform,
    transform_from_matrix_ras,
)

__all__ = [
    "register",
    "RegistrationResult",
    "RegistrationSettings",
    "TransformType",
    "resample_to_reference",
    "Interpolation",
    "background_value",
    "save_transform",
    "load_transform",
    "matrix_lps",
    "matrix_ras",
    "transform_from_matrix_ras",
    "TRANSFORM_SUFFIXES",
    "same_frame_of_reference",
    "same_voxel_centres",
    "reorder_to_reference",
    "fov_coverage",
    "decompose_linear",
    "dice",
]
