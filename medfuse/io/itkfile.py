"""NRRD (3D Slicer's default), MetaImage and other ITK formats, read and written with SimpleITK.

SimpleITK speaks LPS; the conversion to medfuse's RAS happens in :mod:`medfuse.io.sitk`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medfuse.errors import OPTION, CorruptFileError, TooLargeError, UnsupportedInputError
from medfuse.io.atomic import atomic_output, check_output
from medfuse.io.formats import DETACHED_SUFFIXES, ITK_SUFFIXES
from medfuse.io.nifti import max_image_bytes
from medfuse.io.sitk import from_sitk, to_sitk
from medfuse.volume import Volume

__all__ = ["read_itk", "write_itk", "ITK_SUFFIXES"]


def read_itk(path: str | os.PathLike, *, frame: int | None = None) -> Volume:
    """Read a NRRD / MetaImage file into a :class:`Volume` (float32, RAS affine).

    Raises:
        CorruptFileError: unreadable or truncated.
        UnsupportedInputError: 4D or multi-component (vector/RGB) images.
        TooLargeError: larger than the configured limit.
    """
    import SimpleITK as sitk

    path = Path(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise CorruptFileError(f"{path}: not a readable image file; check the file and its extension") from err
    size = reader.GetSize()
    n_bytes = int(np.prod(size, dtype=np.int64)) * 4 * reader.GetNumberOfComponents()
    if n_bytes > max_image_bytes():
        raise TooLargeError(f"{path}: image of size {size} needs {n_bytes / 1024**3:.1f} GiB, above the limit; "
                            "crop or downsample it, or raise MEDFUSE_MAX_BYTES")
    if reader.GetPixelID() in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        from medfuse.io.voxels import complex_voxels_error

        raise complex_voxels_error(path, sitk.GetPixelIDValueAsString(reader.GetPixelID()))
    colour = reader.GetNumberOfComponents() == 3 and reader.GetPixelID() in (sitk.sitkVectorUInt8, sitk.sitkUInt8)
    if reader.GetNumberOfComponents() != 1 and not colour:
        raise UnsupportedInputError(f"{path}: {reader.GetNumberOfComponents()} components per voxel; medfuse reads "
                                    "scalar volumes and 3-component uint8 (RGB) volumes (split the channels first)")
    if len(size) == 4 and size[3] > 1 and frame is None:
        raise UnsupportedInputError(f"{path}: 4D image of size {size}; pick a frame with {OPTION}", option="frame")
    if len(size) not in (2, 3, 4):
        raise UnsupportedInputError(f"{path}: {len(size)}D image; medfuse reads 2D and 3D images")
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise CorruptFileError(f"{path}: the image data cannot be read (truncated or corrupt)") from err
    if image.GetDimension() == 4:
        extractor = sitk.ExtractImageFilter()
        extractor.SetSize([*size[:3], 0])
        extractor.SetIndex([0, 0, 0, frame or 0])
        image = extractor.Execute(image)
    if colour:
        return _colour_volume(path, image)
    return from_sitk(image, source=str(path), meta={"format": path.suffix.lower().lstrip(".")})


def _colour_volume(path: Path, image) -> Volume:
    """A 3-component uint8 image as a colour Volume: ``rgb`` 0..255, ``array`` its luminance Y / 255."""
    import SimpleITK as sitk

    from medfuse.color import split_luminance
    from medfuse.volume import affine_from_lps

    arr = sitk.GetArrayFromImage(image)  # (z, y, x, 3) or (y, x, 3)
    rgb = np.ascontiguousarray(np.moveaxis(arr, -1, 0).T, dtype=np.float32)  # (x, y, z, 3)
    affine = affine_from_lps(image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    y = split_luminance(rgb)[0] / 255.0
    return Volume(y, affine, meta={"format": path.suffix.lower().lstrip("."), "value_max": 1.0, "colour": "RGB"},
                  source=str(path), rgb=rgb)


def _vector_image(volume: Volume):
    """``volume.rgb`` as a 3-component ``VectorUInt8`` SimpleITK image with the volume's LPS geometry."""
    import SimpleITK as sitk

    from medfuse.volume import lps_from_affine

    rgb = np.clip(np.rint(volume.rgb), 0, 255).astype(np.uint8)
    spatial = tuple(range(volume.ndim))[::-1]
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(rgb, (*spatial, volume.ndim))), isVector=True)
    origin, spacing, direction = lps_from_affine(volume.affine, ndim=volume.ndim)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def write_itk(volume: Volume, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``volume`` to a NRRD / MetaImage file, compressed, with its LPS geometry.

    A grey volume is written as float32; a colour volume (``volume.rgb`` set) as a 3-component
    ``VectorUInt8`` image (R, G, B per voxel; NRRD ``kinds: ... vector``), which 3D Slicer opens as a
    colour vector volume and SimpleITK/ITK read as a 3-component vector image.

    ``.nhdr``/``.mhd`` write a detached header and its data file beside it (``<name>.raw.gz``,
    ``<name>.zraw``), both under their final names only once both are complete (data file first).
    """
    import SimpleITK as sitk

    if volume.rgb is not None:
        image = _vector_image(volume)
    else:
        image = to_sitk(volume, np.asarray(volume.array, dtype=np.float32))
    if Path(path).suffix.lower() in DETACHED_SUFFIXES:
        return _write_detached(image, Path(path), force)
    with atomic_output(path, force) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    return Path(path)


def _write_detached(image, path: Path, force: bool) -> Path:
    """A detached header and its data file: written in a private folder beside ``path`` under their final names
    (the header names its data file relative to itself), then moved into place, the header last."""
    import shutil
    import tempfile

    import SimpleITK as sitk

    check_output(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        sitk.WriteImage(image, str(staging / path.name), useCompression=True)
        data = sorted(p for p in staging.iterdir() if p.name != path.name)
        for p in data:
            check_output(path.parent / p.name, force)
        for p in data:
            os.replace(p, path.parent / p.name)
        os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
