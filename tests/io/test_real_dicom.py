"""Real DICOM QA series (``../shared/data/real/dicom_qa``, see its README) through medfuse's reader.

What medfuse does on each, and how it compares with the dcm2niix reference conversions there:

- ``ge_ct_gantry_tilt``: a GE head CT with 18.5 deg gantry tilt and slice spacing varying from
  1.08 to 7 mm. medfuse refuses the series (UnsupportedInputError) naming the tilt, the spacing
  and the fix (dcm2niix's tilt-corrected volume), never an orthogonal stack that would misplace
  the anatomy; the tilt angle and extent it reports agree with the reference conversions, and
  each slice read on its own sits voxel for voxel where dcm2niix puts it, with the same values.
- ``nih_epi_4d_mosaic``: the GE EPI series (15 slices x 10 time points in one series) are
  refused as 4D (MissingSlicesError) with the shape dcm2niix finds and the fix (``--frame N`` on
  a 4D NIfTI); the Siemens mosaics are refused (UnsupportedInputError) naming mosaic and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from medfuse.errors import MedfuseError, MissingSlicesError, UnsupportedInputError
from medfuse.io import load_volume
from medfuse.io.dicom import list_series, read_dicom_series

pytestmark = pytest.mark.real

nib = pytest.importorskip("nibabel")


def _folder(real_dir: Path, *parts: str) -> Path:
    path = real_dir.joinpath("dicom_qa", *parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def _identifiers(path: Path) -> list[str]:
    """Patient identifiers of a file that are long enough to search for in a message."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keys = ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID")
    values = [str(ds.get(k, "") or "") for k in keys]
    return [v for v in values if len(v) >= 3 and v.upper() != "REMOVED"]


def _check_message(err: MedfuseError, folder: Path, first_file: Path) -> str:
    msg = str(err)
    assert str(folder) in msg  # names what the user gave
    for value in _identifiers(first_file):
        assert value not in msg
    return msg


# --------------------------------------------------------------------------------------------
# GE CT with gantry tilt


@pytest.fixture(scope="module")
def tilt_case(real_dir):
    root = _folder(real_dir, "ge_ct_gantry_tilt")
    refs = sorted(root.glob("Ref_regenerated*/_2.nii.gz"))
    if not refs:
        pytest.skip("dcm2niix reference conversion of the tilted CT not present")
    return root / "In" / "GE", refs[0], refs[0].with_name("_2_Tilt_Eq_1.nii.gz")


def test_gantry_tilt_is_refused_with_tilt_spacing_and_fix(tilt_case):
    """Never an orthogonal grid: refused, naming tilt angle, varying spacing and the fix."""
    folder, raw_ref, _ = tilt_case
    with pytest.raises(UnsupportedInputError) as err:
        load_volume(folder)
    msg = _check_message(err.value, folder, folder / "01.dcm")
    assert "gantry-tilted" in msg and "GantryDetectorTilt 18.5 deg" in msg
    assert "slice spacing also varies from 1.08 to 7.00 mm" in msg
    assert "dcm2niix" in msg and "_Tilt" in msg and "does not correct tilt" in msg

    # the geometry medfuse measured agrees with the reference: the raw (sheared) conversion's
    # slice step leaves the slice normal by the tilt angle
    aff = nib.load(raw_ref).affine
    normal = np.cross(aff[:3, 0], aff[:3, 1])
    step = aff[:3, 2]
    ref_angle = np.degrees(np.arccos(abs(step @ normal) / np.linalg.norm(step) / np.linalg.norm(normal)))
    assert ref_angle == pytest.approx(18.5, abs=0.05)
    angle = float(msg.split("(about ")[1].split(" deg")[0])
    assert angle == pytest.approx(ref_angle, abs=0.05)


def test_gantry_tilt_extent_matches_the_corrected_reference(tilt_case):
    """The in-plane drift medfuse reports over the stack is the one of dcm2niix's corrected grid."""
    folder, _, eq_ref = tilt_case
    if not eq_ref.exists():
        pytest.skip("tilt-corrected reference not present")
    with pytest.raises(UnsupportedInputError) as err:
        read_dicom_series(folder)
    msg = str(err.value)
    drift = float(msg.split("drift ")[1].split(" mm")[0])
    img = nib.load(eq_ref)
    aff = img.affine
    # corrected grid: orthogonal, slice axis along the normal of the tilted slice planes
    cols = aff[:3, :3] / np.linalg.norm(aff[:3, :3], axis=0)
    np.testing.assert_allclose(cols.T @ cols, np.eye(3), atol=1e-4)
    extent = (img.shape[2] - 1) * float(np.linalg.norm(aff[:3, 2]))  # first to last slice, along the normal
    assert drift == pytest.approx(extent * np.tan(np.radians(18.5)), abs=0.5)


@pytest.fixture(scope="module")
def tilt_corrected_reference(tilt_case):
    eq_ref = tilt_case[2]
    if not eq_ref.exists():
        pytest.skip("tilt-corrected reference not present")
    img = nib.load(eq_ref)
    return np.asarray(img.dataobj, dtype=np.float32) * img.dataobj.slope + img.dataobj.inter, img.affine


@pytest.mark.parametrize("name", ["01.dcm", "08.dcm", "14.dcm", "15.dcm", "21.dcm", "28.dcm"])
def test_each_tilted_slice_sits_where_dcm2niix_puts_it(tilt_case, tilt_corrected_reference, name):
    """One slice read alone (a valid 2D geometry) holds, at each voxel's world position, the
    anatomy of dcm2niix's tilt-corrected volume there (linear interpolation of the reference);
    the same comparison after a 10 mm shift clearly fails, so it does detect misplacement."""
    from scipy.ndimage import map_coordinates

    folder = tilt_case[0]
    ref, ref_affine = tilt_corrected_reference
    vol = read_dicom_series(folder / name)
    assert vol.shape == (512, 512, 1) and vol.modality == "CT"
    i, j = np.meshgrid(np.arange(0, 512, 6), np.arange(0, 512, 6), indexing="ij")
    ours = vol.array[i.ravel(), j.ravel(), 0]
    world = vol.world_coordinates(np.c_[i.ravel(), j.ravel(), np.zeros(i.size)])

    def sample(points):
        idx = (np.linalg.inv(ref_affine) @ np.c_[points, np.ones(len(points))].T)[:3]
        idx[2] = np.clip(idx[2], 0, ref.shape[2] - 1)  # end slices lie on the reference's end slices
        return map_coordinates(ref, idx, order=1, mode="nearest")

    theirs = sample(world)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99
    assert np.median(np.abs(ours - theirs)) < 5.0  # HU
    if name == "01.dcm":  # the first slice is the reference's first slice: identical voxels
        np.testing.assert_allclose(ours, theirs, atol=0.05)  # float interpolation residue
    shifted = sample(world + np.array([0.0, 10.0, 0.0]))
    assert np.corrcoef(ours, shifted)[0, 1] < 0.95


# --------------------------------------------------------------------------------------------
# 4D EPI (GE) and mosaics (Siemens)


GE_SERIES = ["mr_0004", "mr_0005", "mr_0006", "mr_0007"]
SIEMENS_SERIES = {"mr_0003": "AP_3", "mr_0004": "PA_4", "mr_0005": "RL_5", "mr_0006": "LR_6"}


@pytest.mark.parametrize("series", GE_SERIES)
def test_ge_4d_epi_is_refused_as_4d(real_dir, series):
    folder = _folder(real_dir, "nih_epi_4d_mosaic", "In", "20180918GE", series)
    ref_dir = real_dir / "dicom_qa" / "nih_epi_4d_mosaic" / "Ref"
    ref = ref_dir / f"DCM2NIIX_regression_test_{int(series[-1])}.nii"
    with pytest.raises(MissingSlicesError) as err:
        load_volume(folder)
    msg = _check_message(err.value, folder, next(folder.glob("*.dcm")))
    nx, ny, nz, nt = nib.load(ref).shape if ref.exists() else (64, 64, 15, 10)
    assert (nz, nt) == (15, 10)
    assert "4D" in msg and f"{nz * nt} images share {nz} slice positions, {nt} at each" in msg
    assert "the frame option" in msg and "dcm2niix" in msg and err.value.option == "frame"


def test_one_ge_epi_slice_matches_the_reference_volume(real_dir):
    """A single file of the 4D series, read alone, lies on dcm2niix's grid with equal values."""
    folder = _folder(real_dir, "nih_epi_4d_mosaic", "In", "20180918GE", "mr_0004")
    ref_path = real_dir / "dicom_qa" / "nih_epi_4d_mosaic" / "Ref" / "DCM2NIIX_regression_test_4.nii"
    if not ref_path.exists():
        pytest.skip("reference conversion not present")
    vol = read_dicom_series(sorted(folder.glob("*.dcm"))[0])
    img = nib.load(ref_path)
    ref = np.asarray(img.dataobj, dtype=np.float64)
    i, j = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    idx = np.c_[i.ravel(), j.ravel(), np.zeros(i.size)]
    ref_idx = (np.linalg.inv(img.affine) @ np.c_[vol.world_coordinates(idx), np.ones(i.size)].T)[:3].T
    np.testing.assert_allclose(ref_idx, np.round(ref_idx), atol=1e-3)
    ref_idx = np.round(ref_idx).astype(int)
    values = vol.array[i.ravel(), j.ravel(), 0]
    matches = [
        t for t in range(ref.shape[3])
        if np.allclose(ref[ref_idx[:, 0], ref_idx[:, 1], ref_idx[:, 2], t], values, atol=1e-3)
    ]
    assert matches, "the slice's values are in no time point of the reference at its position"
    assert np.ptp(values) > 100


@pytest.mark.parametrize("series", sorted(SIEMENS_SERIES))
def test_siemens_mosaic_is_refused(real_dir, series):
    folder = _folder(real_dir, "nih_epi_4d_mosaic", "In", "20180918Si", series)
    ref = real_dir / "dicom_qa" / "nih_epi_4d_mosaic" / "Ref" / f"EPI_PE={SIEMENS_SERIES[series]}.nii"
    (info,) = list_series(folder)
    if ref.exists():  # one mosaic file per time point of the reference's 4D volume
        assert info.n_slices == nib.load(ref).shape[3]
    with pytest.raises(UnsupportedInputError) as err:
        load_volume(folder)
    msg = _check_message(err.value, folder, next(folder.glob("*.dcm")))
    assert "mosaic" in msg and "dcm2niix" in msg and "the frame option" in msg and err.value.option == "frame"
    with pytest.raises(UnsupportedInputError, match="mosaic"):  # one file alone too
        read_dicom_series(next(folder.glob("*.dcm")))
