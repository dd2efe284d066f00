"""Bad inputs get a typed error naming the file and the fix (shared/reference/bad-inputs.md)."""

from __future__ import annotations

import gzip
import logging

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medfuse.errors import (
    AmbiguousGeometryError,
    CorruptFileError,
    EmptyImageError,
    MedfuseError,
    NonFiniteError,
    OutputExistsError,
    TooLargeError,
    UnsupportedInputError,
)
from medfuse.io import load_volume, save_volume
from medfuse.volume import Volume


def _nifti(path, data, affine=None, sform=1, qform=1):
    affine = np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.set_sform(affine, code=sform)
    img.set_qform(affine, code=qform)
    nib.save(img, str(path))
    return path


def _head(shape=(8, 9, 7)):
    return np.random.default_rng(0).random(shape).astype(np.float32) * 100


def test_sform_qform_disagree(tmp_path):  # row 1
    path = tmp_path / "amb.nii.gz"
    img = nib.Nifti1Image(_head(), np.eye(4))
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    img.set_sform(shifted, code=1)
    img.set_qform(np.eye(4), code=1)
    nib.save(img, str(path))
    with pytest.raises(AmbiguousGeometryError, match="amb.nii.gz.*the xform option"):
        load_volume(path)
    s = load_volume(path, xform="sform")
    q = load_volume(path, xform="qform")
    assert s.affine[0, 3] == 5.0 and q.affine[0, 3] == 0.0
    # with a policy, our RAS world == SimpleITK's LPS world x diag(-1,-1,1) for the transform ITK picked
    # (ITK's choice between sform and qform depends on its version: exactly why the file is refused)
    import SimpleITK as sitk

    itk_img = sitk.ReadImage(str(path))
    corner = np.array(itk_img.TransformIndexToPhysicalPoint((7, 8, 6))) * [-1, -1, 1]
    ours = [v.world_coordinates([[7, 8, 6]])[0] for v in (s, q)]
    assert sum(np.allclose(corner, w, atol=1e-4) for w in ours) == 1


def test_no_orientation(tmp_path):  # row 2
    path = _nifti(tmp_path / "analyze.nii", _head(), sform=0, qform=0)
    with pytest.raises(AmbiguousGeometryError, match="the assume_orientation option"):
        load_volume(path)
    v = load_volume(path, assume_orientation="LPS")
    np.testing.assert_allclose(np.diag(v.affine)[:3], [-2, -2, 3])


def test_sheared_affine(tmp_path):  # row 3
    aff = np.eye(4)
    aff[1, 2] = 0.3  # gantry tilt
    path = _nifti(tmp_path / "tilt.nii.gz", _head(), affine=aff, qform=0)
    with pytest.raises(AmbiguousGeometryError, match="sheared"):
        load_volume(path)


@pytest.mark.parametrize("t,ok", [(3, False), (1, True)])
def test_4d(tmp_path, t, ok):  # row 15
    path = _nifti(tmp_path / "dyn.nii.gz", _head((6, 6, 5, t)))
    if ok:
        assert load_volume(path).shape == (6, 6, 5)
    else:
        with pytest.raises(UnsupportedInputError, match="the frame option"):
            load_volume(path)
        assert load_volume(path, frame=2).shape == (6, 6, 5)


def test_int16_extremes_and_negative_hu(tmp_path):  # row 20
    data = np.array([-1024, -32768, 32767, 0, 40, 1500] * 10, dtype=np.int16).reshape(3, 4, 5)
    path = _nifti(tmp_path / "ct.nii.gz", data)
    v = load_volume(path)
    assert v.array.dtype == np.float32
    np.testing.assert_array_equal(v.array, data.astype(np.float64))


def _patch_scaling(path, slope, inter):
    """Write scl_slope/scl_inter into the header bytes (offsets 112/116): nibabel resets them on save."""
    buf = bytearray(path.read_bytes())
    buf[112:116] = np.float32(slope).tobytes()
    buf[116:120] = np.float32(inter).tobytes()
    path.write_bytes(bytes(buf))
    return path


def test_scl_slope_zero_and_bad_intercept(tmp_path, caplog):  # row 21
    data = _head().astype(np.int16)
    path = _patch_scaling(_nifti(tmp_path / "slope0.nii", data), 0.0, 0.0)
    with caplog.at_level(logging.WARNING):
        v = load_volume(path)
    np.testing.assert_array_equal(v.array, nib.load(str(path)).get_fdata())
    np.testing.assert_array_equal(v.array, data)
    assert "scl_slope" in caplog.text
    path = _patch_scaling(_nifti(tmp_path / "inter.nii", data), 2.0, np.inf)
    with pytest.raises(CorruptFileError, match="inter.nii.*intercept"):
        load_volume(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite(tmp_path, bad):  # row 26
    data = _head()
    data[1, 2, 3] = bad
    path = _nifti(tmp_path / "nan.nii.gz", data)
    with pytest.raises(NonFiniteError, match=r"nan.nii.gz: 1 of \d+ voxels"):
        load_volume(path)
    with pytest.raises(NonFiniteError):
        save_volume(Volume(data, np.eye(4)), tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.parametrize("value", [0.0, 7.0])
def test_constant_volume(tmp_path, value):  # row 27
    path = _nifti(tmp_path / "blank.nii.gz", np.full((5, 5, 5), value, np.float32))
    with pytest.raises(EmptyImageError, match="blank.nii.gz.*constant"):
        load_volume(path)


def test_truncated_nii_and_gz(tmp_path):  # row 33
    path = _nifti(tmp_path / "cut.nii", _head((20, 20, 20)))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="cut.nii: truncated"):
        load_volume(path)
    gz = tmp_path / "cut.nii.gz"
    gz.write_bytes(gzip.compress(raw)[:600])
    with pytest.raises(CorruptFileError, match="cut.nii.gz"):
        load_volume(gz)


def test_garbage_file(tmp_path):
    for name in ("junk.nii.gz", "junk.nrrd", "junk.png"):
        (tmp_path / name).write_text("not an image")
        with pytest.raises(CorruptFileError, match=name):
            load_volume(tmp_path / name)


def test_huge_header_refused_before_allocation(tmp_path, monkeypatch):  # row 35
    import tracemalloc

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((1500, 1500, 1500))
    hdr.set_data_dtype(np.float64)
    hdr.set_sform(np.eye(4), code=1)
    path = tmp_path / "bomb.nii"
    with path.open("wb") as fh:
        fh.write(hdr.binaryblock + b"\x00" * 4)
    tracemalloc.start()
    with pytest.raises(TooLargeError, match="bomb.nii"):
        load_volume(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 1024**2


def test_unknown_extension_and_missing(tmp_path):
    (tmp_path / "x.xyz").write_text("?")
    with pytest.raises(UnsupportedInputError, match="extension"):
        load_volume(tmp_path / "x.xyz")
    with pytest.raises(FileNotFoundError):
        load_volume(tmp_path / "nope.nii.gz")


def test_no_overwrite_without_force(tmp_path):
    v = Volume(_head(), np.eye(4))
    path = save_volume(v, tmp_path / "o.nii.gz")
    mtime = path.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="the force option"):
        save_volume(v, path)
    assert path.stat().st_mtime_ns == mtime
    save_volume(v, path, force=True)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]  # no temporary left behind


def test_errors_are_builtin_subclasses():
    assert issubclass(CorruptFileError, ValueError) and issubclass(CorruptFileError, MedfuseError)


# --- 2D slices (rows 6, 30, 31) ---------------------------------------------------------------

def test_non_square_png_keeps_rows_and_columns(tmp_path):  # row 6
    a = np.random.default_rng(1).integers(0, 256, (256, 200)).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "mri.png")
    v = load_volume(tmp_path / "mri.png")
    assert v.shape == (256, 200) and v.modality == "MR"
    np.testing.assert_array_equal(v.array, a)
    save_volume(v, tmp_path / "copy.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "copy.png")), a)


def test_gray_rgb_is_gray_and_colour_is_flagged(tmp_path):  # row 30
    g = np.random.default_rng(2).integers(0, 256, (16, 20)).astype(np.uint8)
    Image.fromarray(np.stack([g] * 3, -1)).save(tmp_path / "gray.png")
    v = load_volume(tmp_path / "gray.png")
    assert not v.is_color and v.shape == (16, 20)
    np.testing.assert_array_equal(v.array, g)
    rgb = np.random.default_rng(3).integers(0, 256, (16, 20, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "pet.png")
    c = load_volume(tmp_path / "pet.png")
    assert c.is_color and c.meta["color"] and c.modality == "PT"
    expected_y = np.asarray(Image.fromarray(rgb).convert("YCbCr"))[..., 0]
    np.testing.assert_array_equal(c.array, expected_y)
    save_volume(c, tmp_path / "pet_copy.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "pet_copy.png")), rgb)


def test_16bit_png_keeps_values(tmp_path):  # row 31
    a = np.zeros((8, 8), np.uint16)
    a[2, 3] = 40000
    a[4, 4] = 123
    Image.fromarray(a).save(tmp_path / "deep.png")
    v = load_volume(tmp_path / "deep.png")
    assert v.array[2, 3] == 40000 and v.meta["value_max"] == 65535
    save_volume(v, tmp_path / "deep2.png")
    assert load_volume(tmp_path / "deep2.png").array[2, 3] == 40000


def test_outputs_get_normal_permissions(tmp_path):
    import os
    import stat

    path = save_volume(Volume(_head(), np.eye(4)), tmp_path / "perm.nii.gz")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
