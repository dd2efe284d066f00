"""NIfTI reading and writing with nibabel, refusing the files whose geometry is ambiguous.

nibabel's world is RAS, like medfuse's, so the affine is used as it is. What nibabel would do
silently and medfuse refuses (see ``shared/reference/bad-inputs.md``, rows 1-3, 15, 21, 33, 35):

- sform and qform both set but disagreeing (ITK would use the other one): ``AmbiguousGeometryError``
  unless ``xform="sform"`` or ``"qform"`` says which to trust;
- neither set (Analyze style, orientation unknown): error unless ``assume_orientation`` is given;
- a sheared (non-orthogonal) affine: error, resample to an orthogonal grid first;
- 4D data: error unless ``frame`` picks one (a trailing axis of length 1 is squeezed);
- a finite scale slope with a non-finite intercept; truncated data; a header larger than the limit;
- complex-valued voxels (:mod:`medfuse.io.voxels`: magnitude, real part or phase is the user's choice).
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from medfuse.errors import OPTION, AmbiguousGeometryError, CorruptFileError, TooLargeError, UnsupportedInputError
from medfuse.io.atomic import atomic_output
from medfuse.io.naming import log_name
from medfuse.volume import Volume

__all__ = ["read_nifti", "write_nifti", "axcodes_affine", "max_image_bytes", "RGB24"]

#: nibabel's dtype of NIfTI-1 ``DT_RGB24`` (datatype code 128): one voxel = three uint8 fields R, G, B
RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])

log = logging.getLogger(__name__)

_DEFAULT_MAX_BYTES = 2 * 1024**3


def max_image_bytes() -> int:
    """Largest image (decoded, float32) medfuse will allocate; ``$MEDFUSE_MAX_BYTES`` overrides 2 GiB."""
    return int(os.environ.get("MEDFUSE_MAX_BYTES", _DEFAULT_MAX_BYTES))


def axcodes_affine(codes: str, zooms) -> np.ndarray:
    """An affine for voxel axes pointing along ``codes`` (e.g. ``"LPS"``), spacing ``zooms``, origin 0."""
    codes = codes.upper()
    axis_of = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
    if len(codes) != 3 or sorted(axis_of[c] for c in codes if c in axis_of) != [0, 1, 2]:
        raise ValueError(f"orientation must be three letters naming each of R/L, A/P, S/I once (e.g. RAS), got {codes!r}")
    affine = np.eye(4)
    affine[:3, :3] = 0
    for col, (code, zoom) in enumerate(zip(codes, zooms)):
        affine[axis_of[code], col] = (1.0 if code in "RAS" else -1.0) * float(zoom)
    return affine


def _corners(shape) -> np.ndarray:
    shape = (*tuple(shape)[:3], 1, 1)[:3]  # a 2D image is one slice
    grid = np.array(np.meshgrid(*[[0, max(n - 1, 0)] for n in shape], indexing="ij")).reshape(3, -1).T
    return np.c_[grid, np.ones(len(grid))]


def _raw_scaling(path: Path, header_class) -> tuple[float, float]:
    """scl_slope and scl_inter as stored (nibabel's loader silently turns a 0 slope into NaN)."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as fh:
        raw = header_class.from_fileobj(fh, check=False)
    return float(raw["scl_slope"]), float(raw["scl_inter"])


def _check_size(path: Path, header) -> None:
    shape = tuple(int(n) for n in header.get_data_shape())
    n_vox = int(np.prod(shape, dtype=np.int64)) if shape else 0
    itemsize = np.dtype(header.get_data_dtype()).itemsize
    decoded = n_vox * max(itemsize, 4)
    if decoded > max_image_bytes():
        raise TooLargeError(
            f"{path}: header declares {shape} voxels ({decoded / 1024**3:.1f} GiB as float32), above the "
            f"{max_image_bytes() / 1024**3:.1f} GiB limit; crop or downsample it, or raise MEDFUSE_MAX_BYTES"
        )
    if not str(path).lower().endswith(".gz"):
        needed = int(header.get_data_offset()) + n_vox * itemsize
        actual = path.stat().st_size
        if actual < needed:
            raise CorruptFileError(
                f"{path}: truncated NIfTI file ({actual} bytes, the header needs {needed}); "
                "copy or export the file again"
            )


def _choose_affine(path: Path, img, xform: str | None, assume_orientation: str | None) -> np.ndarray:
    header = img.header
    sform, scode = header.get_sform(coded=True)
    if xform not in (None, "sform", "qform"):
        raise ValueError(f"xform must be 'sform', 'qform' or None, got {xform!r}")
    if xform == "sform" and sform is not None:
        return sform
    try:
        qform, qcode = header.get_qform(coded=True)
    except ValueError:  # nibabel cannot build it: a quaternion with b^2 + c^2 + d^2 > 1
        raise AmbiguousGeometryError(
            f"{path}: the qform's quaternion (quatern_b/c/d) is invalid (b^2 + c^2 + d^2 > 1); fix the header"
            + (f", or trust the sform with {OPTION} sform" if sform is not None else ""),
            option="xform" if sform is not None else None,
        ) from None
    if xform == "qform" and qform is not None:
        return qform
    if sform is not None and qform is not None:
        corners = _corners(img.shape)
        gap = np.linalg.norm((corners @ sform.T - corners @ qform.T)[:, :3], axis=1).max()
        half_voxel = 0.5 * float(min(header.get_zooms()[:3]))
        if gap > half_voxel:
            raise AmbiguousGeometryError(
                f"{path}: the sform and qform place the image up to {gap:.2f} mm apart (nibabel uses the "
                f"sform, ITK the qform); choose one with {OPTION} sform|qform", option="xform",
            )
        return sform
    if sform is not None:
        return sform
    if qform is not None:
        return qform
    if assume_orientation:
        return axcodes_affine(assume_orientation, header.get_zooms()[:3])
    raise AmbiguousGeometryError(
        f"{path}: neither sform nor qform is set, so the orientation is unknown; give it with "
        f"{OPTION} (e.g. RAS or LPS) if you know it", option="assume_orientation",
    )


def _check_orthogonal(path: Path, affine: np.ndarray) -> None:
    if not np.isfinite(affine).all():
        raise AmbiguousGeometryError(f"{path}: the header's transform (sform or qform) holds NaN or infinite values; "
                                     f"fix the header, or choose the other transform with {OPTION} sform|qform",
                                     option="xform")
    m = affine[:3, :3]
    zooms = np.linalg.norm(m, axis=0)
    if np.any(zooms == 0):
        raise AmbiguousGeometryError(f"{path}: the affine has a zero-length voxel axis; the header is broken")
    r = m / zooms
    if np.abs(r.T @ r - np.eye(3)).max() > 1e-4:
        raise AmbiguousGeometryError(
            f"{path}: the affine is sheared (voxel axes not orthogonal, e.g. a gantry-tilted CT); resample it "
            "to an orthogonal grid first (e.g. with dcm2niix, which corrects tilt)"
        )


def read_nifti(
    path: str | os.PathLike,
    *,
    frame: int | None = None,
    xform: str | None = None,
    assume_orientation: str | None = None,
) -> Volume:
    """Read a ``.nii`` / ``.nii.gz`` file.

    Args:
        path: the file.
        frame: for 4D files, the time frame to use (0-based); required when T > 1.
        xform: ``"sform"`` or ``"qform"`` to resolve a header where both are set and disagree.
        assume_orientation: axis codes (``"RAS"``, ``"LPS"``, ...) for headers without any xform.

    Returns:
        A :class:`Volume`: float32 ``(X, Y, Z)`` array (scaled by ``scl_slope``/``scl_inter``) and
        the RAS affine.

    Raises:
        CorruptFileError, TooLargeError, AmbiguousGeometryError, UnsupportedInputError.
    """
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
    except FileNotFoundError:
        raise
    except Exception as err:  # nibabel raises several types for garbage input
        detail = str(err) if type(err).__name__ == "HeaderDataError" else type(err).__name__
        raise CorruptFileError(f"{path}: not a readable NIfTI file ({detail}); check the file or fix its header") from err
    header = img.header
    _check_size(path, header)
    if header.get_data_dtype().kind == "c":  # refused before reading: numpy's cast would keep the real part
        from medfuse.io.voxels import complex_voxels_error

        raise complex_voxels_error(path, header.get_data_dtype().name)

    shape = img.shape
    if len(shape) < 2:
        raise UnsupportedInputError(f"{path}: a {len(shape)}D image of shape {shape} (header dim[0] = {len(shape)}); "
                                    "medfuse reads 2D slices and 3D volumes: check or fix the header's dim field")
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) > 4 or (len(shape) == 4 and frame is None and shape[3] > 1):
        raise UnsupportedInputError(
            f"{path}: {len(shape)}D image of shape {shape}; medfuse fuses 3D volumes. Pick a time frame with "
            f"{OPTION}, or sum or average the frames first", option="frame",
        )
    if frame is not None and (len(shape) < 4 or not 0 <= frame < shape[3]):
        raise UnsupportedInputError(f"{path}: frame {frame} does not exist (image shape {shape})")

    raw_slope, raw_inter = _raw_scaling(path, type(header))
    if np.isfinite(raw_slope) and raw_slope != 0 and not np.isfinite(raw_inter):
        raise CorruptFileError(f"{path}: scl_inter is {raw_inter} with a finite scl_slope; fix the header")
    if raw_slope == 0 or np.isinf(raw_slope):
        # NaN is how nibabel itself writes "no scaling", so only 0 and inf are worth a warning
        log.warning("%s: scl_slope is %s; treated as 1 (no scaling), as nibabel does", log_name(path), raw_slope)

    affine = _choose_affine(path, img, xform, assume_orientation)
    _check_orthogonal(path, affine)
    try:
        if header.get_data_dtype().names is not None:  # RGB24/RGBA32: scl_slope/scl_inter do not apply to colours
            data = np.asanyarray(img.dataobj.get_unscaled())
        else:
            data = np.asanyarray(img.dataobj)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as err:
        raise CorruptFileError(f"{path}: the image data cannot be read ({err.__class__.__name__}: truncated or "
                               "corrupt); copy or export the file again") from err
    data = data.reshape(shape)
    if len(shape) == 4:
        data = data[..., frame if frame is not None else 0]
    if data.dtype.names is not None:  # RGB24 / RGBA32: a colour volume
        return _colour_volume(path, data, affine)
    data = np.asarray(data, dtype=np.float32)
    return Volume(data, affine, meta={"format": "nifti"}, source=str(path))


def _colour_volume(path: Path, data: np.ndarray, affine: np.ndarray) -> Volume:
    """A colour NIfTI (RGB24, RGBA32) as a Volume: ``rgb`` 0..255 and ``array`` its luminance Y / 255."""
    from medfuse.color import split_luminance

    if not {"R", "G", "B"} <= set(data.dtype.names):
        raise UnsupportedInputError(f"{path}: voxels of type {data.dtype} are not RGB; medfuse reads scalar or RGB NIfTI")
    rgb = np.stack([data["R"], data["G"], data["B"]], axis=-1).astype(np.float32)
    y = split_luminance(rgb)[0] / 255.0
    return Volume(y, affine, meta={"format": "nifti", "value_max": 1.0, "colour": "RGB24"}, source=str(path), rgb=rgb)


def _rgb24(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB on 0..255 (rounded and clipped) as an :data:`RGB24` array, slab by slab (no float temporaries
    of the whole volume); a uint8 input interleaved per voxel (C order, or the voxels in Fortran order as NIfTI
    stores them) is viewed, not copied."""
    if rgb.dtype == np.uint8 and rgb.flags.c_contiguous:
        return rgb.view(RGB24)[..., 0]
    reversed_voxels = rgb.transpose(*range(rgb.ndim - 2, -1, -1), rgb.ndim - 1)
    if rgb.dtype == np.uint8 and reversed_voxels.flags.c_contiguous:  # Fortran-ordered voxels, R, G, B together
        return reversed_voxels.view(RGB24)[..., 0].T
    out = np.empty(rgb.shape[:-1], dtype=RGB24)
    flat_in, flat_out = rgb.reshape(-1, 3), out.reshape(-1).view(np.uint8).reshape(-1, 3)
    for start in range(0, len(flat_in), 1 << 18):
        chunk = np.asarray(flat_in[start : start + (1 << 18)], dtype=np.float32)
        flat_out[start : start + len(chunk)] = np.clip(np.rint(chunk), 0, 255)
    return out


def write_nifti(volume: Volume, path: str | os.PathLike, *, force: bool = False,
                compress_level: int | None = None) -> Path:
    """Write ``volume`` as NIfTI-1 with sform and qform both set to its affine (code 1).

    A grey volume is written as float32. A colour volume (``volume.rgb`` set, e.g. a fused PET/SPECT)
    is written as NIfTI-1 datatype ``DT_RGB24`` (code 128, 24 bits per voxel, interleaved R, G, B
    uint8; nibabel's structured dtype :data:`RGB24`) with the same geometry: nibabel reads it back
    as that structured dtype, SimpleITK/ITK as a 3-component ``VectorUInt8`` image, and 3D Slicer
    and ITK-SNAP open it as a colour (RGB) volume. No intensity scaling is stored for it.

    ``.nii.gz`` is compressed at gzip level ``compress_level`` (0..9; default
    :data:`medfuse.io.atomic.DEFAULT_COMPRESS_LEVEL`) on threads (:class:`~medfuse.io.atomic.GzipWriter`: one
    standard gzip member); ``.nii`` is not compressed.

    The header's ``descrip`` holds only medfuse's own words (``meta["medfuse_description"]``, e.g.
    "medfuse 0.1.0 fused light"), never text from a source file; ``aux_file`` is empty and no extensions
    are written, so nothing from an input (acquisition times, DICOM headers) leaks into the output.
    """
    import nibabel as nib

    from medfuse.io.atomic import DEFAULT_COMPRESS_LEVEL, GzipWriter, check_compress_level, full_suffix

    level = DEFAULT_COMPRESS_LEVEL if compress_level is None else check_compress_level(compress_level)
    if volume.rgb is not None:
        data = _rgb24(volume.rgb)
        if volume.ndim == 2:
            data = data[:, :, None]
    else:
        data = volume.array if volume.ndim == 3 else volume.array[..., None]
        data = np.asarray(data, dtype=np.float32)
    img = nib.Nifti1Image(data, volume.affine)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    descrip = str(volume.meta.get("medfuse_description", ""))
    img.header["descrip"] = descrip.encode("ascii", "replace")[:79]
    img.header["aux_file"] = b""
    img.header.set_xyzt_units("mm", "sec")
    with atomic_output(path, force) as tmp:
        if full_suffix(path) == ".nii.gz":
            with GzipWriter(tmp, level) as fh:
                img.to_stream(fh)
        else:
            nib.save(img, str(tmp))
    return Path(path)
