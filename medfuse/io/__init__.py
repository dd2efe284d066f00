"""Reading and writing scans without losing geometry.

:func:`load_volume` picks the reader from the path (``.nii``/``.nii.gz`` with nibabel; ``.nrrd``,
``.nhdr``, ``.mha``, ``.mhd`` with SimpleITK; a folder or ``.dcm`` file as a DICOM series with
pydicom; ``.png``/``.tif``/``.bmp`` as 2D slices) and checks what every step downstream relies
on: finite, non-constant intensities. :func:`save_volume` picks the writer from the extension and
writes atomically, refusing to overwrite unless ``force``.

Every volume comes back as a :class:`~medfuse.volume.Volume` with a RAS affine.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medfuse.errors import EmptyImageError, NonFiniteError, UnsupportedInputError
from medfuse.io.atomic import atomic_output, check_output, full_suffix
from medfuse.io.formats import DICOM_SUFFIXES, ITK_SUFFIXES, NIFTI_SUFFIXES, SLICE_SUFFIXES, VOLUME_SUFFIXES
from medfuse.volume import Volume, all_finite

__all__ = [
    "load_volume",
    "save_volume",
    "check_volume",
    "guess_modality",
    "atomic_output",
    "check_output",
    "NIFTI_SUFFIXES",
    "VOLUME_SUFFIXES",
    "SLICE_SUFFIXES",
]

def guess_modality(path: str | os.PathLike) -> str | None:
    """Modality code from a file or folder name (``mri.png`` -> ``"MR"``, ``pet.nii.gz`` -> ``"PT"``); see
    :func:`medfuse.modality.modality_from_name`."""
    from medfuse.modality import modality_from_name

    return modality_from_name(path)


def check_volume(volume: Volume, step: str = "register or fuse") -> Volume:
    """Raise if ``volume`` has NaN/Inf voxels or no contrast at all; return it unchanged.

    Args:
        volume: the volume to check.
        step: what the caller is about to do (``"normalize"``...), named in the messages.

    Raises:
        NonFiniteError: NaN or infinite voxels (the count is given).
        EmptyImageError: an empty array or a constant (blank) image.
    """
    a = volume.array
    if a.size == 0:
        raise EmptyImageError(f"{volume.name}: the image is empty (shape {a.shape}); nothing to {step}")
    if not all_finite(a):
        n_bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise NonFiniteError(
            f"{volume.name}: {n_bad} of {a.size} voxels are NaN or infinite; replace them (e.g. with 0 or the "
            f"background value) before you {step}"
        )
    if float(a.max()) == float(a.min()):
        raise EmptyImageError(
            f"{volume.name}: the image is constant (blank: every voxel is {float(a.min()):g}): nothing to {step}; "
            "check that the right file or series was exported"
        )
    return volume


def load_volume(
    path: str | os.PathLike,
    *,
    modality: str | None = None,
    series: str | None = None,
    frame: int | None = None,
    xform: str | None = None,
    assume_orientation: str | None = None,
    check: bool = True,
) -> Volume:
    """Load a scan or a 2D slice with its geometry.

    Args:
        path: a NIfTI/NRRD/MetaImage file, a DICOM file or folder, or a PNG/TIFF/BMP slice.
        modality: ``"MR"``, ``"CT"``, ``"PT"``, ``"NM"`` (or MRI/PET/SPECT); default: from DICOM, else from the
            file name, else ``"CT"`` when the values are Hounsfield units with air, else None
            (:mod:`medfuse.modality`; ``meta["modality_source"]`` says which).
        series: for a DICOM folder holding several series, the opaque id of the one to read.
        frame: for 4D files, the time frame to read.
        xform: ``"sform"``/``"qform"`` for NIfTI files whose two transforms disagree.
        assume_orientation: axis codes for NIfTI files without any orientation.
        check: run :func:`check_volume` (finite, not constant).

    Returns:
        A :class:`Volume` (float32, RAS affine).

    Raises:
        FileNotFoundError, CorruptFileError, UnsupportedInputError, AmbiguousGeometryError,
        MultipleSeriesError, MissingSlicesError, TooLargeError, NonFiniteError, EmptyImageError.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    suffix = full_suffix(path)
    if path.is_dir() or suffix in (*DICOM_SUFFIXES, ""):
        from medfuse.io.dicom import read_dicom_series

        volume = read_dicom_series(path, series=series)
    elif suffix in NIFTI_SUFFIXES:
        from medfuse.io.nifti import read_nifti

        volume = read_nifti(path, frame=frame, xform=xform, assume_orientation=assume_orientation)
    elif suffix in ITK_SUFFIXES:
        from medfuse.io.itkfile import read_itk

        volume = read_itk(path, frame=frame)
    elif suffix in SLICE_SUFFIXES:
        from medfuse.io.slices import read_slice

        volume = read_slice(path)
    else:
        raise UnsupportedInputError(
            f"{path}: unknown extension {suffix!r}; medfuse reads .nii/.nii.gz, .nrrd/.nhdr, .mha/.mhd, DICOM "
            "folders or .dcm files, and .png/.tif/.bmp slices"
        )
    from medfuse.modality import resolve_modality

    resolve_modality(volume, path, modality)
    if check:
        check_volume(volume)
    return volume


def save_volume(volume: Volume, path: str | os.PathLike, *, force: bool = False,
                compress_level: int | None = None) -> Path:
    """Write ``volume`` in the format its extension names, atomically.

    ``.nii``/``.nii.gz`` (NIfTI-1, sform = qform = the affine), ``.nrrd``/``.mha`` and the detached-header
    ``.nhdr``/``.mhd`` (SimpleITK, LPS header; the voxels beside the header), ``.png``/``.tif``/``.bmp`` (2D only). Refuses to overwrite unless ``force``.
    A colour volume (``volume.rgb`` set: a fused PET/SPECT, 2D or 3D) is written in colour: NIfTI
    datatype RGB24 (:func:`medfuse.io.nifti.write_nifti`), a 3-component uint8 vector image in
    NRRD/MHA (:func:`medfuse.io.itkfile.write_itk`), an RGB PNG. ``compress_level`` (0..9) sets the gzip level of
    ``.nii.gz`` (default :data:`medfuse.io.atomic.DEFAULT_COMPRESS_LEVEL`); other formats ignore it.

    Raises:
        OutputExistsError: the file exists and ``force`` is false.
        UnsupportedInputError: the extension is unknown or cannot hold this image.
        NonFiniteError: the volume holds NaN/Inf (never written silently).
    """
    path = Path(path)
    # no volume-sized bool array while the other writers run
    if not all_finite(volume.array) or (volume.rgb is not None and not all_finite(volume.rgb)):
        raise NonFiniteError(f"{path}: refusing to write an image with NaN/Inf voxels")
    suffix = full_suffix(path)
    if suffix in NIFTI_SUFFIXES:
        from medfuse.io.nifti import write_nifti

        return write_nifti(volume, path, force=force, compress_level=compress_level)
    if suffix in ITK_SUFFIXES:
        from medfuse.io.itkfile import write_itk

        return write_itk(volume, path, force=force)
    if suffix in SLICE_SUFFIXES:
        from medfuse.io.slices import write_slice

        return write_slice(volume, path, force=force)
    raise UnsupportedInputError(
        f"{path}: cannot write {suffix!r}; use {', '.join(VOLUME_SUFFIXES)} (volumes) or {', '.join(SLICE_SUFFIXES)} "
        "(2D slices)"
    )

