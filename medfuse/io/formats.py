"""The one table of file formats: which extensions medfuse reads and writes, and what each holds.

Every other module takes its suffix lists from here (the readers and writers of :mod:`medfuse.io`, the
pipeline's output plan, the MONAI writer, the data sets), so that a format offered in one place is
accepted everywhere.
"""

from __future__ import annotations

import os

from medfuse.io.atomic import full_suffix

__all__ = [
    "FORMATS",
    "NIFTI_SUFFIXES",
    "ITK_SUFFIXES",
    "DETACHED_SUFFIXES",
    "DICOM_SUFFIXES",
    "VOLUME_SUFFIXES",
    "SLICE_SUFFIXES",
    "format_of",
]

#: format name -> its extensions (the first is the one messages suggest); lower-case, compression included
FORMATS: dict[str, tuple[str, ...]] = {
    "nifti": (".nii.gz", ".nii"),
    "nrrd": (".nrrd", ".nhdr"),
    "metaimage": (".mha", ".mhd"),
    "dicom": (".dcm", ".ima"),
    "slice": (".png", ".tif", ".tiff", ".bmp"),
}

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: read and written with SimpleITK (:mod:`medfuse.io.itkfile`)
ITK_SUFFIXES = FORMATS["nrrd"] + FORMATS["metaimage"]
#: header-only files whose voxels live in a second file beside them, named in the header
DETACHED_SUFFIXES = (".nhdr", ".mhd")
DICOM_SUFFIXES = FORMATS["dicom"]
#: what a 3D volume is read from and written to (a DICOM series is a folder: :mod:`medfuse.io.dicom`)
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: 2D slices (AANLIB pairs, fused slices)
SLICE_SUFFIXES = FORMATS["slice"]


def format_of(path: str | os.PathLike) -> str | None:
    """The format name of ``path`` by its extension (``"nifti"``, ``"nrrd"``, ...), None when unknown."""
    suffix = full_suffix(path)
    return next((name for name, suffixes in FORMATS.items() if suffix in suffixes), None)
