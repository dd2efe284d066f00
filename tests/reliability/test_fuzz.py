"""Fuzzing (hypothesis): the readers and the fusion entry points, fed random headers and arrays, either return
a sound result or raise a typed medfuse error; never another exception, a hang or a NaN.

- NIfTI headers with random dims, pixdims, datatypes, scl_slope/scl_inter, qform/sform codes and matrices,
  written to bytes (sometimes truncated or gzipped);
- small DICOM series with random geometry tags (position, orientation, spacing), sizes, bit depths, rescale
  values and pixel data of random length;
- PNGs of every PIL mode, random sizes, sometimes truncated;
- :func:`medfuse.fusion.fuse_arrays` with every classical method and one network (``light``) on random small
  arrays: tiny shapes, NaN, inf, constants, values outside [0, 1].

A sound result: a :class:`~medfuse.volume.Volume` whose voxels and affine are finite and whose affine is
invertible; a fused array of the inputs' shape, finite, and what the method computes: ``(a + b) / 2`` for mean,
``np.maximum`` for max, ``a`` again when an image is fused with itself (the other methods). The examples are derandomized (the same at
every run, so CI is reproducible) and few (the whole file takes seconds); ``deadline`` flags a slow example.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from medfuse.errors import MedfuseError

#: pydicom warns about the invalid DS values the DICOM examples hold on purpose
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: examples per test (a longer hunt: ``MEDFUSE_FUZZ_EXAMPLES=2000 pytest tests/reliability/test_fuzz.py``)
N_EXAMPLES = int(os.environ.get("MEDFUSE_FUZZ_EXAMPLES", "50"))
FUZZ = settings(derandomize=True, max_examples=N_EXAMPLES, deadline=5000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: floats a header may hold, the awkward ones included
AWKWARD = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), float("-inf"), 2.5]),
    st.floats(-1e4, 1e4, allow_nan=False, width=32),
)


def _assert_sound(volume) -> None:
    array = np.asarray(volume.array)
    assert array.dtype == np.float32
    assert np.isfinite(array).all(), "a reader returned NaN/inf voxels"
    assert np.isfinite(volume.affine).all() and volume.affine.shape == (4, 4)
    assert abs(np.linalg.det(volume.affine[:3, :3])) > 0 if array.ndim == 3 else True


def _load(path: Path):
    from medfuse.io import load_volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            volume = load_volume(path)
        except MedfuseError as err:
            text = str(err)
            assert text and "\n" not in text, f"a message must be one line: {text!r}"
            event(type(err).__name__)  # pytest --hypothesis-show-statistics: how the examples ended
            return None
    event("read")
    _assert_sound(volume)
    return volume


# ------------------------------------------------------------------------------------------------ NIfTI

_NIFTI_TYPES = [2, 4, 8, 16, 64, 256, 512, 768, 128, 32, 1024, 1280, 2304]  # incl. RGB24, complex64, RGBA32
#: header fields a NIfTI example may get wrong (the others are valid, so the reader gets past its first check)
_NIFTI_FIELDS = ("ndim", "pixdim", "qfac", "scl_slope", "scl_inter", "qform_code", "sform_code", "quatern",
                 "srow", "datatype", "data", "cut")


@st.composite
def nifti_bytes(draw):
    bad = draw(st.sets(st.sampled_from(_NIFTI_FIELDS), max_size=2))
    ndim = draw(st.integers(1, 5)) if "ndim" in bad else draw(st.sampled_from([3, 3, 2, 4]))
    shape = tuple(draw(st.lists(st.integers(1 if "ndim" in bad else 2, 6), min_size=ndim, max_size=ndim)))
    if ndim == 4 and "ndim" not in bad:
        shape = (*shape[:3], 1)
    hdr = nib.Nifti1Header()
    code = draw(st.sampled_from(_NIFTI_TYPES)) if "datatype" in bad else draw(st.sampled_from([2, 4, 16, 512]))
    try:
        hdr.set_data_dtype(code)
    except Exception:  # noqa: BLE001 - a datatype nibabel cannot set: keep float32
        hdr.set_data_dtype(np.float32)
    hdr.set_data_shape(shape)
    good = st.floats(0.5, 3.0, width=32)
    value = lambda field, ok: draw(AWKWARD) if field in bad else draw(ok)  # noqa: E731
    block = bytearray(hdr.binaryblock)
    # pixdim[1:] and the scaling, written as raw floats (nibabel's setters refuse NaN and negatives)
    for k in range(min(ndim, 7)):
        struct.pack_into("<f", block, 76 + 4 * (k + 1), value("pixdim", good))
    struct.pack_into("<f", block, 76, draw(st.sampled_from([1.0, -1.0, 0.0, 2.0])) if "qfac" in bad else 1.0)
    struct.pack_into("<f", block, 112, value("scl_slope", st.sampled_from([1.0, 0.5, 2.0, float("nan")])))
    struct.pack_into("<f", block, 116, value("scl_inter", st.sampled_from([0.0, -10.0, 3.0])))
    struct.pack_into("<h", block, 252, draw(st.integers(-1, 5)) if "qform_code" in bad else draw(st.integers(0, 2)))
    struct.pack_into("<h", block, 254, draw(st.integers(-1, 5)) if "sform_code" in bad else draw(st.integers(1, 2)))
    rotation = draw(st.sampled_from([(0.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.5, 0.5, 0.5), (0.0, 0.2, 0.0)]))
    for k, offset in enumerate(range(256, 268, 4)):  # quatern b, c, d
        struct.pack_into("<f", block, offset, draw(AWKWARD) if "quatern" in bad else rotation[k])
    for offset in range(268, 280, 4):  # qoffset x, y, z
        struct.pack_into("<f", block, offset, value("quatern", st.floats(-100, 100, width=32)))
    zooms = [draw(good) for _ in range(3)]
    for row in range(3):  # srow_x, srow_y, srow_z: a diagonal affine unless broken
        for col in range(4):
            ok = zooms[row] if col == row else (draw(st.floats(-50, 50, width=32)) if col == 3 else 0.0)
            struct.pack_into("<f", block, 280 + 16 * row + 4 * col, draw(AWKWARD) if "srow" in bad else ok)
    itemsize = max(1, hdr.get_data_dtype().itemsize)
    n = int(np.prod(shape)) * itemsize
    if "data" in bad and n <= 4096:
        data = draw(st.binary(min_size=n, max_size=n))
    else:  # valid values: a random image of the datatype (integers, or floats in a sane range)
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        dtype = hdr.get_data_dtype()
        if dtype.kind == "f":
            data = rng.normal(100, 30, int(np.prod(shape))).astype(dtype).tobytes()
        else:
            data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    body = bytes(block) + b"\x00" * 4 + data
    if "cut" in bad:
        body = body[: draw(st.sampled_from([348, len(body) - 1, len(body) // 2]))]
    return body, draw(st.booleans())


@FUZZ
@given(case=nifti_bytes())
def test_fuzz_nifti_reader(case):
    body, compressed = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("scan.nii.gz" if compressed else "scan.nii")
        path.write_bytes(gzip.compress(body) if compressed else body)
        _load(path)


# ------------------------------------------------------------------------------------------------ DICOM


#: what a DICOM example may get wrong (the rest is a valid axial series)
_DICOM_FIELDS = ("position", "orientation", "spacing", "missing", "rescale", "pixels", "step", "bits")


@st.composite
def dicom_series(draw):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    bad = draw(st.sets(st.sampled_from(_DICOM_FIELDS), max_size=2))
    rows, cols = draw(st.integers(1 if "pixels" in bad else 2, 6)), draw(st.integers(1 if "pixels" in bad else 2, 6))
    n = draw(st.integers(1, 4))
    bits = draw(st.sampled_from([8, 16, 32])) if "bits" in bad else 16
    signed = draw(st.integers(0, 1))
    series, frame = generate_uid(), generate_uid()
    good_iop = draw(st.sampled_from([[1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, -1], [1, 0, 0, 0, 0.6, 0.8]]))
    iop = ([draw(AWKWARD) for _ in range(6)] if draw(st.booleans()) else [1, 0, 0, 1, 0, 0]) \
        if "orientation" in bad else good_iop
    spacing = [draw(AWKWARD) for _ in range(2)] if "spacing" in bad else [draw(st.sampled_from([0.5, 1.0, 2.0]))] * 2
    step = draw(st.sampled_from([0.0, -3.0, 1e-9])) if "step" in bad else draw(st.sampled_from([1.0, 2.5]))
    normal = np.cross(np.asarray(good_iop[:3], float), np.asarray(good_iop[3:], float))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    missing = draw(st.sampled_from(["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"])) \
        if "missing" in bad else None
    files = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID, ds.StudyInstanceUID = series, frame, generate_uid()
        ds.Modality = draw(st.sampled_from(["MR", "CT", "PT", "OT"]))
        ds.InstanceNumber = k + 1
        position = [draw(AWKWARD) for _ in range(3)] if "position" in bad else list(k * step * normal + 10.0)
        ds.ImagePositionPatient = [f"{v:.6g}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6g}" for v in iop]
        ds.PixelSpacing = [f"{v:.6g}" for v in spacing]
        if missing:
            delattr(ds, missing)
        if "rescale" in bad:
            ds.RescaleSlope = f"{draw(AWKWARD):.6g}"
            ds.RescaleIntercept = f"{draw(AWKWARD):.6g}"
        else:
            ds.RescaleSlope, ds.RescaleIntercept = "1.5", "-20"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated = ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = signed
        size = rows * cols * bits // 8
        if "pixels" in bad:
            size = draw(st.sampled_from([0, max(0, size - 1), size + 2]))
            data = draw(st.binary(min_size=size, max_size=size))
        else:
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        ds.PixelData = data + (b"\x00" if len(data) % 2 else b"")
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files.append(buf.getvalue())
    return files


@FUZZ
@given(files=dicom_series())
def test_fuzz_dicom_reader(files):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        folder.mkdir()
        for k, raw in enumerate(files):
            (folder / f"{k}.dcm").write_bytes(raw)
        _load(folder)


# ------------------------------------------------------------------------------------------------ PNG


@st.composite
def png_bytes(draw):
    from PIL import Image

    mode = draw(st.sampled_from(["L", "I;16", "I", "RGB", "RGBA", "LA", "P", "1", "F"]))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    constant = draw(st.booleans())
    if mode in ("RGB", "RGBA", "LA"):
        arr = rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
        image = Image.fromarray(arr * (0 if constant else 1), mode)
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.uint16) * (0 if constant else 1))
    elif mode == "I":
        image = Image.fromarray(rng.integers(-(2**20), 2**20, (h, w)).astype(np.int32))
    elif mode == "F":
        image = Image.fromarray(rng.normal(size=(h, w)).astype(np.float32))
    else:
        image = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    try:
        image.save(buf, format="PNG")
    except OSError:  # a mode PNG cannot hold (F): write it as 8-bit
        image.convert("L").save(buf, format="PNG")
    raw = buf.getvalue()
    cut = draw(st.sampled_from([None, None, None, None, 8, len(raw) // 2, len(raw) - 12]))
    return raw if cut is None else raw[:cut]


@FUZZ
@given(raw=png_bytes())
def test_fuzz_png_reader(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slice.png"
        path.write_bytes(raw)
        _load(path)


# ------------------------------------------------------------------------------------------------ fusion

VALUES = st.one_of(
    st.floats(0.0, 1.0, width=32),
    st.sampled_from([0.0, 1.0, 0.5, float("nan"), float("inf"), -float("inf"), -0.2, 1.3, 1e-38]),
)


@st.composite
def array_pair(draw):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.lists(st.integers(1, 7 if ndim == 3 else 12), min_size=ndim, max_size=ndim)))
    n = int(np.prod(shape))

    def one():
        kind = draw(st.sampled_from(["random", "random", "random", "constant", "listed"]))
        if kind == "constant":
            return np.full(shape, draw(VALUES), np.float32)
        if kind == "listed":
            return np.asarray(draw(st.lists(VALUES, min_size=n, max_size=n)), np.float32).reshape(shape)
        return np.random.default_rng(draw(st.integers(0, 2**16))).random(shape, dtype=np.float32)

    a, b = one(), one()
    if draw(st.integers(0, 9)) == 9:  # different shapes now and then
        b = b[..., :-1] if b.shape[-1] > 1 else np.concatenate([b, b], axis=-1)
    return a, b


def _fuse(a, b, method):
    from medfuse.fusion import fuse_arrays

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fused = fuse_arrays(a, b, method, pair="pet_mri", affine=np.eye(4) if a.ndim == 3 else None)
        except MedfuseError as err:
            assert str(err) and "\n" not in str(err)
            event(type(err).__name__)
            return
    event("fused")
    assert fused.shape == a.shape and fused.dtype == np.float32
    assert np.isfinite(fused).all(), f"{method}: NaN/inf in the output"
    # what the method computes (fuse_arrays clips to [0, 1] by construction: a range check could not fail).
    # Accepted inputs lie within 1e-3 of [0, 1], and the methods work on them clipped.
    x, y = np.clip(a, 0.0, 1.0), np.clip(b, 0.0, 1.0)
    if method == "mean":
        np.testing.assert_allclose(fused, 0.5 * (x.astype(np.float64) + y), atol=1e-6, err_msg="mean: not (a + b) / 2")
    elif method == "max":
        np.testing.assert_array_equal(fused, np.maximum(x, y), err_msg="max: not np.maximum(a, b)")
    else:  # fusing an image with itself gives it back
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            itself = fuse_arrays(a, a, method, pair="pet_mri", affine=np.eye(4) if a.ndim == 3 else None)
        if method in ("laplacian", "wavelet", "guided"):
            np.testing.assert_allclose(itself, x, atol=1e-5, err_msg=f"{method}: fuse(a, a) is not a")
        else:
            # a blend network (light): its base w a + (1 - w) a is a; its detail residual is bounded by 0.25 x the
            # sources' local contrast (a 3 x 3 range after a sigma-1 Gaussian: within an 11-voxel window's range)
            from scipy import ndimage

            window = ndimage.maximum_filter(x, size=11, mode="nearest") - ndimage.minimum_filter(x, size=11, mode="nearest")
            excess = np.abs(itself - x) - (0.25 * window + 1e-5)
            assert excess.max() <= 0, f"{method}: fuse(a, a) departs from a by {excess.max():.3g} more than its detail bound"


@pytest.mark.parametrize("method", ["mean", "max", "laplacian", "wavelet", "guided"])
@settings(derandomize=True, max_examples=max(1, N_EXAMPLES * 4 // 5), deadline=5000, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pair=array_pair())
def test_fuzz_classical_fusion(method, pair):
    _fuse(*pair, method)


@settings(derandomize=True, max_examples=max(1, N_EXAMPLES * 3 // 5), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(pair=array_pair())
def test_fuzz_network_fusion(pair):
    _fuse(*pair, "light")


# ------------------------------------------------------------------------------------- what fuzzing found


def _nifti_file(tmp_path: Path, name: str, data, *, edit=None) -> Path:
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    img.set_qform(img.affine, code=1)
    path = tmp_path / name
    nib.save(img, str(path))
    if edit is not None:
        raw = bytearray(path.read_bytes())
        edit(raw)
        path.write_bytes(bytes(raw))
    return path


def test_fuzz_findings_are_typed_errors_or_read(tmp_path):
    """The inputs fuzzing found crashing the NIfTI reader (untyped errors, or a NaN affine returned)."""
    from medfuse.errors import AmbiguousGeometryError, UnsupportedInputError
    from medfuse.io import load_volume

    head = np.random.default_rng(0).normal(100, 20, (4, 5, 3)).astype(np.float32)
    # an sform holding NaN was returned as the affine: now refused, naming --xform
    nan_sform = _nifti_file(tmp_path, "nan.nii", head, edit=lambda b: struct.pack_into("<f", b, 280 + 16 * 2 + 8,
                                                                                         float("nan")))
    with pytest.raises(AmbiguousGeometryError, match="NaN or infinite.*the xform option"):
        load_volume(nan_sform)
    # a 1D image (dim[0] = 1) reached the Volume constructor (ValueError)
    with pytest.raises(UnsupportedInputError, match="1D image.*dim"):
        load_volume(_nifti_file(tmp_path, "line.nii", np.arange(1, 6, dtype=np.float32)))
    # a qform quaternion with b^2 + c^2 + d^2 > 1 made nibabel raise ValueError
    def bad_quaternion(raw):
        for offset in (256, 260, 264):
            struct.pack_into("<f", raw, offset, 0.9)
    with pytest.raises(AmbiguousGeometryError, match="quaternion.*the xform option sform"):
        load_volume(_nifti_file(tmp_path, "quat.nii", head, edit=bad_quaternion))
    assert load_volume(tmp_path / "quat.nii", xform="sform").shape == head.shape
    # a 2D image with both sform and qform: the corner comparison assumed 3D
    assert load_volume(_nifti_file(tmp_path, "slice.nii", head[:, :, 0])).shape == (4, 5, 1)  # one slice
    # RGB(A) with scl_slope/scl_inter: nibabel tried to scale the colour samples (TypeError); scaling is ignored
    rgba = np.zeros((4, 5, 3), np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")]))
    rgba["R"], rgba["G"] = np.arange(60).reshape(4, 5, 3), 9

    def scaled(raw):
        struct.pack_into("<f", raw, 112, 2.0)
        struct.pack_into("<f", raw, 116, 3.0)
    colour = load_volume(_nifti_file(tmp_path, "rgba.nii", rgba, edit=scaled), modality="MR")
    assert colour.rgb is not None and colour.rgb[..., 0].max() == 59
