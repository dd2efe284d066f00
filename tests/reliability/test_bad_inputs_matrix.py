"""The 43 rows of ``shared/reference/bad-inputs.md``, one test each, named after the row.

E rows assert a typed medfuse error whose message names the problem and the fix; H rows assert the handling
(and its warning / record where the row asks for one). Where an existing test of ``tests/io`` already builds
the input, its helpers are reused. A representative subset also goes through ``medfuse fuse``
(:func:`_cli_refuses`): exit code 2, one line on stderr, nothing written. The table of all rows with their
behaviour is ``docs/bad-inputs.md``.
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from medfuse.cli import main
from medfuse.errors import (
    AmbiguousGeometryError,
    CorruptFileError,
    EmptyImageError,
    MedfuseError,
    MissingSlicesError,
    MultipleSeriesError,
    NonFiniteError,
    OutputExistsError,
    RegistrationError,
    SUVUnavailableError,
    TooLargeError,
    UnsupportedInputError,
)
from medfuse.io import load_volume, save_volume
from medfuse.io.dicom import list_series, read_dicom_series
from medfuse.volume import Volume, ras_to_lps
from tests.io.dicom_fixtures import expected_values, write_series
from tests.io.test_bad_inputs import _head, _nifti, _patch_scaling
from tests.io.test_dicom import (
    ORIENTATIONS,
    _add_clutter,
    _affine,
    _corners,
    _fake_jpeg_ls,
    _irregular_series,
    _make_case,
    _sitk_series,
    _testdata,
)

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ helpers


def _mr_nifti(folder: Path) -> Path:
    """A valid small MR NIfTI (the partner of a bad input on the command line)."""
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in (20, 22, 16)], indexing="ij"), -1)
    head = (np.linalg.norm(g / [0.8, 0.85, 0.8], axis=-1) < 1) * 500.0 + 10.0 * (g[..., 0] > 0)
    return save_volume(Volume(head, np.diag([2.0, 2.0, 2.5, 1.0]), "MR"), folder / "partner_mri.nii.gz")


def _cli_refuses(tmp_path: Path, capsys, bad: Path, *, role: str = "moving", extra=()) -> str:
    """``medfuse fuse`` with ``bad`` as one input: exit 2, one line on stderr naming the role, nothing written."""
    partner = _mr_nifti(tmp_path / "partner")
    out = tmp_path / "cli_out"
    out.mkdir(exist_ok=True)
    ref, mov = (partner, bad) if role == "moving" else (bad, partner)
    argv = ["fuse", "--reference", str(ref), "--moving", str(mov), "--out", str(out / "fused.nii.gz"),
            "--method", "mean", "--reference-modality", "MR", "--moving-modality", "PT", *extra]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("medfuse fuse: error: ")
    assert f"the {role} scan" in err, err  # the message says which input it is about
    assert str(bad) not in err  # ... by its role, not by its path (tests/reliability/test_canary.py)
    assert list(out.iterdir()) == [], "nothing may be written"
    return err


def _sheared_lps_check(affine: np.ndarray) -> None:
    r = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    assert np.abs(r.T @ r - np.eye(3)).max() < 1e-6


# ============================================================================ A. geometry / orientation


def test_row_01_sform_qform_disagree(tmp_path, capsys):
    path = tmp_path / "amb.nii.gz"
    img = nib.Nifti1Image(_head(), np.eye(4))
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    img.set_sform(shifted, code=1)
    img.set_qform(np.eye(4), code=1)
    nib.save(img, str(path))
    with pytest.raises(AmbiguousGeometryError, match=r"sform and qform .* apart.*the xform option sform\|qform"):
        load_volume(path)
    import SimpleITK as sitk

    corners = _corners(img.shape)
    for policy, matrix in (("sform", shifted), ("qform", np.eye(4))):
        v = load_volume(path, xform=policy)
        np.testing.assert_allclose(v.world_coordinates(corners), corners @ matrix[:3, :3].T + matrix[:3, 3])
    # ITK reads one of the two; with that policy our world == SimpleITK's LPS world x diag(-1,-1,1)
    itk = sitk.ReadImage(str(path))
    theirs = np.array([itk.TransformContinuousIndexToPhysicalPoint(tuple(c)) for c in corners]) * [-1, -1, 1]
    assert sum(np.allclose(load_volume(path, xform=p).world_coordinates(corners), theirs, atol=1e-4)
               for p in ("sform", "qform")) == 1
    err = _cli_refuses(tmp_path, capsys, path)
    assert "--moving-xform" in err


def test_row_02_no_sform_no_qform(tmp_path, capsys):
    path = _nifti(tmp_path / "analyze.nii", _head(), sform=0, qform=0)
    with pytest.raises(AmbiguousGeometryError, match="orientation is unknown.*the assume_orientation option"):
        load_volume(path)
    v = load_volume(path, assume_orientation="LPS")
    assert nib.orientations.aff2axcodes(v.affine) == ("L", "P", "S")
    err = _cli_refuses(tmp_path, capsys, path, role="reference")
    assert "--reference-assume-orientation" in err


def test_row_03_sheared_affine(tmp_path, capsys):
    aff = np.eye(4)
    aff[1, 2] = 0.3  # a tilted CT converted by a tilt-unaware tool
    path = _nifti(tmp_path / "tilt.nii.gz", _head(), affine=aff, qform=0)
    with pytest.raises(AmbiguousGeometryError, match="sheared.*resample it to an orthogonal grid"):
        load_volume(path)
    _cli_refuses(tmp_path, capsys, path)


@pytest.mark.parametrize("orientation", ["axial", "sagittal", "oblique"])
def test_row_04_lps_ras_flip(tmp_path, orientation):
    """A marker in the patient's LEFT sits at the same LPS point through our DICOM reader, SimpleITK, and
    nibabel after writing NIfTI (RAS x diag(-1,-1,1)), and MONAI."""
    import SimpleITK as sitk

    shape = (24, 20, 10)
    affine = _affine(ORIENTATIONS[orientation], (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    affine[:3, 3] = -affine[:3, :3] @ (np.array(shape) - 1) / 2
    arr = np.zeros(shape, np.int16)
    grid = np.argwhere(np.ones(shape, bool))
    lps = ras_to_lps(grid @ affine[:3, :3].T + affine[:3, 3])
    seed = grid[np.argmin(np.linalg.norm(lps - [7.0, 2.0, 1.0], axis=1))]
    arr[tuple(seed)] = arr[min(seed[0] + 1, shape[0] - 1), seed[1], seed[2]] = 1000
    write_series(tmp_path / "dcm", arr, affine, "MR")
    truth = ras_to_lps(affine[:3, :3] @ np.argwhere(arr > 0).mean(0) + affine[:3, 3])
    assert truth[0] > 0  # patient's left

    vol = read_dicom_series(tmp_path / "dcm")
    ours = ras_to_lps(vol.world_coordinates(np.argwhere(vol.array > 500).mean(0))[0])
    img = _sitk_series(tmp_path / "dcm")
    idx = np.argwhere(sitk.GetArrayFromImage(img).T > 500).mean(0)
    theirs = np.array(img.TransformContinuousIndexToPhysicalPoint(tuple(idx)))
    save_volume(vol, tmp_path / "m.nii.gz")
    nimg = nib.load(str(tmp_path / "m.nii.gz"))
    nidx = np.argwhere(np.asarray(nimg.dataobj) > 500).mean(0)
    via_nib = ras_to_lps(nimg.affine[:3, :3] @ nidx + nimg.affine[:3, 3])
    from monai.transforms import LoadImage

    mimg = LoadImage(image_only=True)(str(tmp_path / "m.nii.gz"))  # MONAI's NIfTI reader: RAS affine
    maff = np.asarray(mimg.affine, dtype=float)
    midx = np.argwhere(np.asarray(mimg) > 500).mean(0)
    via_monai = ras_to_lps(maff[:3, :3] @ midx + maff[:3, 3])
    for found in (ours, theirs, via_nib, via_monai):
        np.testing.assert_allclose(found, truth, atol=1e-3)


def test_row_05_negative_qfac_left_handed(tmp_path):
    """Left-handed voxel axes (LAS, negative qfac) are kept as stored (no silent reorientation): the
    determinant's sign is the input's, on load and after a round trip, and the marker's world position stays."""
    aff = np.diag([-2.0, 2.0, 3.0, 1.0])  # LAS: left-handed
    data = _head()
    data[1, 2, 3] = 1000
    path = _nifti(tmp_path / "las.nii.gz", data, affine=aff)
    assert nib.load(str(path)).header["pixdim"][0] == -1  # negative qfac
    v = load_volume(path)
    assert np.sign(np.linalg.det(v.affine[:3, :3])) == -1
    np.testing.assert_allclose(v.world_coordinates([[1, 2, 3]])[0], aff[:3, :3] @ [1, 2, 3] + aff[:3, 3])
    save_volume(v, tmp_path / "copy.nii.gz")
    w = load_volume(tmp_path / "copy.nii.gz")
    np.testing.assert_allclose(w.affine, aff, atol=1e-6)
    assert np.argwhere(w.array == 1000).tolist() == [[1, 2, 3]]


def test_row_06_png_pair_non_square(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (256, 200)).astype(np.uint8)
    b = np.random.default_rng(2).integers(0, 256, (256, 200)).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "mri.png")
    Image.fromarray(b).save(tmp_path / "pet.png")
    mri, pet = load_volume(tmp_path / "mri.png"), load_volume(tmp_path / "pet.png")
    assert mri.shape == pet.shape == (256, 200)
    assert mri.array[17, 150] == a[17, 150] and pet.array[200, 3] == b[200, 3]
    assert mri.meta["format"] == pet.meta["format"]  # one reader for both members of the pair


def test_row_07_multiple_series_folder(tmp_path, capsys):
    from pydicom.uid import generate_uid

    uid_ct, uid_loc = generate_uid(prefix=None), generate_uid(prefix=None)
    _make_case(tmp_path / "study" / "ax", "axial", series_uid=uid_ct, series_description="axial")
    _make_case(tmp_path / "study" / "loc", "sagittal", shape=(20, 16, 3), series_uid=uid_loc,
               series_description="localizer", series_number=2)
    with pytest.raises(MultipleSeriesError, match=r"holds 2 DICOM series; choose one with the series option") as err:
        read_dicom_series(tmp_path / "study")
    assert uid_ct not in str(err.value) and "9 slice(s)" in str(err.value) and "3 slice(s)" in str(err.value)
    ids = {s.n_slices: s.opaque_id for s in list_series(tmp_path / "study")}
    chosen = read_dicom_series(tmp_path / "study", series=ids[9])
    assert chosen.meta["n_slices"] == 9 and chosen.meta["series_id"] == ids[9]
    err = _cli_refuses(tmp_path, capsys, tmp_path / "study")
    assert "--moving-series" in err and ids[9] in err and "localizer" not in err


@pytest.mark.parametrize("k", [3])
def test_row_08_missing_slice(tmp_path, capsys, k):
    _, _, _, paths = _make_case(tmp_path / "s", "sagittal")
    read_dicom_series(tmp_path / "s")  # the untouched series passes
    paths[k].unlink()
    with pytest.raises(MissingSlicesError, match=r"1 slice\(s\) missing.*Re-export the complete series"):
        read_dicom_series(tmp_path / "s")
    _cli_refuses(tmp_path, capsys, tmp_path / "s")


def test_row_09_variable_slice_spacing(tmp_path, caplog):
    """H: resampled onto equidistant slices with a warning and a record (meta and sidecar); --strict refuses."""
    positions = _irregular_series(tmp_path / "irr")
    with pytest.raises(MissingSlicesError, match="spacing varies"):
        read_dicom_series(tmp_path / "irr", strict=True)
    with caplog.at_level(logging.WARNING):
        vol = read_dicom_series(tmp_path / "irr")
    assert "resampled 8 slices linearly" in caplog.text
    z = vol.world_coordinates(np.array([[0, 0, k] for k in range(vol.shape[2])]))[:, 2]
    spacing = vol.meta["slice_resampling"]["spacing_mm"]
    np.testing.assert_allclose(np.diff(z), spacing, atol=1e-9)
    assert np.all(np.min(np.abs(positions[:, None] - z[None, :]), axis=1) <= 0.5 * spacing)
    from medfuse.report.sidecar import volume_record

    assert volume_record(vol)["slice_resampling"]["n_original"] == 8  # what the sidecar records


@pytest.mark.real
def test_row_10_gantry_tilt(real_dir, tmp_path, capsys):
    """E: the real 18.5 deg GE tilt series is refused naming the tilt and the fix (tilt correction)."""
    folder = real_dir / "dicom_qa" / "ge_ct_gantry_tilt" / "In" / "GE"
    with pytest.raises(UnsupportedInputError, match=r"GantryDetectorTilt 18.5 deg\): a gantry-tilted.*dcm2niix"):
        read_dicom_series(folder)
    _cli_refuses(tmp_path, capsys, folder)


@pytest.mark.parametrize("orientation", ["sagittal", "coronal", "oblique"])
def test_row_11_sagittal_coronal_oblique_spacing(tmp_path, orientation):
    _, _, _, paths = _make_case(tmp_path, orientation)
    vol = read_dicom_series(tmp_path)
    ipp = np.array([[float(x) for x in pydicom.dcmread(p).ImagePositionPatient] for p in paths])
    iop = np.array([float(x) for x in pydicom.dcmread(paths[0]).ImageOrientationPatient])
    n = np.cross(iop[:3], iop[3:])
    assert vol.spacing[2] == pytest.approx(np.median(np.abs(np.diff(np.sort(ipp @ n)))), rel=1e-6)
    assert vol.spacing[2] == pytest.approx(float(pydicom.dcmread(paths[0]).SliceThickness), rel=0.01)


def test_row_12_instance_numbers_out_of_order(tmp_path):
    n = 9
    _make_case(tmp_path / "a", "oblique", instance_numbers=list(range(1, n + 1)))
    _make_case(tmp_path / "b", "oblique", instance_numbers=[int(v) for v in np.random.default_rng(5).permutation(n) + 1])
    _make_case(tmp_path / "c", "oblique", instance_numbers=[1] * n)
    a, b, c = (read_dicom_series(tmp_path / s) for s in "abc")
    assert np.array_equal(a.array, b.array) and np.array_equal(a.array, c.array)
    assert np.array_equal(a.affine, b.affine) and np.array_equal(a.affine, c.affine)


def test_row_13_enhanced_multiframe(tmp_path):
    """H: geometry from the functional groups; frame k's origin == its PlanePositionSequence (the enhanced
    tests of tests/reliability/test_enhanced_dicom.py cover the classic-series equivalence)."""
    path = _testdata("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    vol = read_dicom_series(path)
    ipps = [np.array([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient])
            for f in ds.PerFrameFunctionalGroupsSequence]
    origins = ras_to_lps(vol.world_coordinates(np.array([[0, 0, k] for k in range(vol.shape[2])])))
    np.testing.assert_allclose(sorted(map(tuple, origins)), sorted(map(tuple, ipps)), atol=1e-4)
    assert vol.meta["enhanced"]["frames"] == len(ipps)
    # a stripped enhanced object (no per-frame groups: emri_small.dcm) is refused, never misplaced
    with pytest.raises(UnsupportedInputError, match="enhanced multi-frame.*cannot be placed.*dcm2niix"):
        read_dicom_series(_testdata("emri_small.dcm"))


@pytest.mark.real
def test_row_14_siemens_mosaic(real_dir, tmp_path, capsys):
    folder = real_dir / "dicom_qa" / "nih_epi_4d_mosaic" / "In" / "20180918Si" / "mr_0003"
    with pytest.raises(UnsupportedInputError, match="Siemens mosaic.*dcm2niix"):
        read_dicom_series(folder)
    _cli_refuses(tmp_path, capsys, folder)
    # synthetic: a MOSAIC image type is refused whatever else the header says
    _make_case(tmp_path / "mosaic", "axial", shape=(8, 8, 3),
               edit=lambda ds, k: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]))
    with pytest.raises(UnsupportedInputError, match="mosaic.*dcm2niix"):
        read_dicom_series(tmp_path / "mosaic")


def test_row_15_4d_input(tmp_path, capsys):
    path = _nifti(tmp_path / "dyn.nii.gz", _head((6, 6, 5, 3)))
    with pytest.raises(UnsupportedInputError, match="4D image.*the frame option"):
        load_volume(path)
    assert load_volume(path, frame=1).shape == (6, 6, 5)
    assert load_volume(_nifti(tmp_path / "one.nii.gz", _head((6, 6, 5, 1)))).shape == (6, 6, 5)
    from nibabel.testing import data_path

    example = Path(data_path) / "example4d.nii.gz"
    if example.exists():
        with pytest.raises(UnsupportedInputError, match="the frame option"):
            load_volume(example)
    err = _cli_refuses(tmp_path, capsys, path)
    assert "--moving-frame" in err


def _registration_case():
    from tests.registration.conftest import small_case

    return small_case("ct", seed=2, rotation_deg=0, translation_mm=0)


def test_row_16_mismatched_fov(tmp_path):
    """E before registration when the fields of view overlap too little."""
    from medfuse.phantom import rigid_matrix
    from medfuse.registration import RegistrationSettings, register

    case = _registration_case()
    far = case.moving.with_array(case.moving.array)
    far.affine = rigid_matrix((0, 0, 0), (0, 0, 400.0)) @ case.moving.affine
    with pytest.raises(RegistrationError, match=r"only \d+% of the reference head lies inside"):
        register(case.mri, far, settings=RegistrationSettings(working_spacing_mm=3.0))


@pytest.mark.slow
def test_row_17_registration_failed_from_90_degrees():
    """E (or a correct result): a header off by 90 degrees is never returned as a plausible wrong fusion."""
    from medfuse.phantom import HEAD_CENTER_MM, rigid_matrix
    from medfuse.registration import RegistrationSettings, register

    case = _registration_case()
    wrong = rigid_matrix((90, 0, 0), (0, 0, 0), HEAD_CENTER_MM)
    bad = case.moving.with_array(case.moving.array)
    bad.affine = wrong @ case.moving.affine
    try:
        result = register(case.mri, bad, settings=RegistrationSettings(working_spacing_mm=3.0))
    except RegistrationError as err:
        assert "rotation" in str(err) or "overlap" in str(err) or "check" in str(err).lower()
    else:
        truth = wrong @ case.reference_to_moving
        pts = case.target_points(100)
        diff = result.reference_to_moving_ras - truth
        assert np.linalg.norm(pts @ diff[:3, :3].T + diff[:3, 3], axis=1).mean() <= 1.0


def test_row_18_label_map_nearest_neighbour():
    from medfuse.registration import resample_to_reference

    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 2, 4], size=(20, 20, 12)).astype(np.float32)
    seg = Volume(labels, np.diag([1.0, 1.0, 1.5, 1.0]), "MR")
    ref = Volume(np.zeros((17, 19, 10), np.float32), np.diag([1.13, 1.07, 1.71, 1.0]) + np.eye(4) * 0, "MR")
    ref.affine[:3, 3] = [0.4, 0.3, 0.2]
    out = resample_to_reference(seg, ref, interpolation="nearest")
    assert set(np.unique(out.array)) <= {0.0, 1.0, 2.0, 4.0}


def test_row_19_monai_round_trip(tmp_path):
    """Load -> canonical RAS (MONAI Orientation) -> invert -> save reproduces voxels and affine."""
    from monai.transforms import LoadImaged, Orientationd

    data = _head()
    aff = np.array([[0.0, 0.0, -2.0, 30.0], [1.5, 0.0, 0.0, -10.0], [0.0, -3.0, 0.0, 5.0], [0, 0, 0, 1]])
    path = _nifti(tmp_path / "obl.nii.gz", data, affine=aff)
    d = LoadImaged(keys="img", image_only=True, ensure_channel_first=True)({"img": str(path)})
    orient = Orientationd(keys="img", axcodes="RAS")
    canon = orient(d)
    back = orient.inverse(canon)["img"]
    vol = Volume(np.asarray(back[0]), np.asarray(back.affine, dtype=float), "MR")
    save_volume(vol, tmp_path / "back.nii.gz")
    again = load_volume(tmp_path / "back.nii.gz")
    np.testing.assert_allclose(again.affine, aff, atol=1e-4)
    np.testing.assert_allclose(again.array, data, rtol=1e-6)


# ================================================================================ B. intensity / content


def test_row_20_int16_extremes_negative_hu(tmp_path):
    data = np.array([-1024, -32768, 32767, 0, 40, 1500] * 10, dtype=np.int16).reshape(3, 4, 5)
    v = load_volume(_nifti(tmp_path / "ct.nii.gz", data))
    assert v.array.dtype == np.float32
    np.testing.assert_array_equal(v.array, data.astype(np.float64))  # no wrap-around, no clipping
    save_volume(v, tmp_path / "out.nii.gz")
    assert nib.load(str(tmp_path / "out.nii.gz")).get_data_dtype() == np.float32  # explicit float output
    np.testing.assert_array_equal(load_volume(tmp_path / "out.nii.gz").array, data.astype(np.float32))


def test_row_21_scl_slope_zero_nan_inf(tmp_path, caplog):
    data = _head().astype(np.int16)
    for slope in (0.0, np.nan):
        path = _patch_scaling(_nifti(tmp_path / f"s{slope}.nii", data), slope, 0.0)
        with caplog.at_level(logging.WARNING):
            v = load_volume(path)
        np.testing.assert_array_equal(v.array, nib.load(str(path)).get_fdata())
    assert "scl_slope is 0.0" in caplog.text
    path = _patch_scaling(_nifti(tmp_path / "inter.nii", data), 2.0, np.inf)
    with pytest.raises(CorruptFileError, match="intercept inf.*fix its header"):
        load_volume(path)


def test_row_22_per_slice_rescale_slope(tmp_path):
    from pydicom.pixels import apply_modality_lut

    _, _, _, paths = _make_case(tmp_path, "axial", modality="PT")
    vol = read_dicom_series(tmp_path)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert np.array_equal(vol.array[:, :, k], apply_modality_lut(ds.pixel_array, ds).astype(np.float32).T)


def test_row_23_philips_scale_choice_recorded(tmp_path, capsys):
    """H: the real-world value transform is documented (modality LUT / RescaleSlope+Intercept, the Philips
    private scale slope and RealWorldValueMapping not applied), recorded per input in the sidecar, and the same
    for both members of a pair."""
    import json

    from medfuse.io.dicom.pixels import VALUE_TRANSFORM_RULE

    def philips(ds, k):
        ds.Manufacturer = "Philips"
        block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
        block.add_new(0x0E, "FL", 3.5)  # MR scale slope (SS)
        rwv = pydicom.Dataset()
        rwv.RealWorldValueSlope, rwv.RealWorldValueIntercept = 0.25, 0.0
        ds.RealWorldValueMappingSequence = pydicom.Sequence([rwv])

    _make_case(tmp_path / "a", "axial", modality="MR", edit=philips)
    _make_case(tmp_path / "b", "axial", modality="MR", edit=philips)
    a, b = read_dicom_series(tmp_path / "a"), read_dicom_series(tmp_path / "b")
    assert a.meta["value_transform"] == b.meta["value_transform"]
    assert a.meta["value_transform"]["rule"] == VALUE_TRANSFORM_RULE
    assert "RescaleSlope" in VALUE_TRANSFORM_RULE and "not applied" in VALUE_TRANSFORM_RULE
    assert a.meta["value_transform"]["present_not_applied"] == [
        "Philips private MR scale slope (2005,xx0E)", "RealWorldValueMappingSequence (0040,9096)"]

    # through medfuse fuse: each input's transform is in the sidecar, the same rule for both members of the pair
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in (20, 18, 10)], indexing="ij"), -1)
    head = (np.linalg.norm(g / [0.8, 0.8, 0.9], axis=-1) < 1) * 600 + (g[..., 0] > 0.3) * 300
    aff = np.diag([-2.0, -2.0, 3.0, 1.0])
    write_series(tmp_path / "t1", head.astype(np.int16), aff, "MR", slopes=np.linspace(1.5, 2.5, 10),
                 intercepts=-7.0, edit=philips)
    write_series(tmp_path / "t2", (800 - head).astype(np.int16), aff, "MR", edit=philips)
    out = tmp_path / "out"
    assert main(["fuse", "--reference", str(tmp_path / "t1"), "--moving", str(tmp_path / "t2"),
                 "--out", str(out / "fused.nii.gz"), "--method", "mean"]) == 0, capsys.readouterr().err
    inputs = json.loads((out / "fused.json").read_text())["inputs"]
    ref, mov = inputs["reference"]["value_transform"], inputs["moving"]["value_transform"]
    assert ref["rule"] == mov["rule"] == VALUE_TRANSFORM_RULE
    assert ref["applied"] == "RescaleSlope/RescaleIntercept"
    assert ref["rescale_slope"] == [1.5, 2.5] and ref["rescale_intercept"] == [-7.0, -7.0]
    assert mov["applied"].startswith("none: stored values")
    assert ref["present_not_applied"] == mov["present_not_applied"] == a.meta["value_transform"]["present_not_applied"]


def test_row_24_twelve_bit_signed(tmp_path):
    arr = np.tile(np.array([-241, -1], np.int16).repeat(4), (8, 1))[:, :, None].repeat(3, axis=2)
    arr = np.ascontiguousarray(np.transpose(arr, (1, 0, 2)))

    def twelve_bits(ds, k):
        ds.BitsStored, ds.HighBit = 12, 11
        ds.PixelData = (arr[:, :, k].T.astype(np.int32) & 0x0FFF).astype(np.uint16).tobytes()

    write_series(tmp_path, arr, np.diag([1.0, 1.0, 2.0, 1.0]), "MR", edit=twelve_bits)
    assert set(np.unique(read_dicom_series(tmp_path).array).tolist()) == {-241.0, -1.0}


def test_row_25_modality_lut_applied():
    from pydicom.pixels import apply_modality_lut

    path = _testdata("CT_small.dcm")
    ds = pydicom.dcmread(path)
    vol = read_dicom_series(path)
    assert np.array_equal(vol.array[:, :, 0], apply_modality_lut(ds.pixel_array, ds).astype(np.float32).T)
    lut = _testdata("mlut_18.dcm")
    ds = pydicom.dcmread(lut)
    vol = read_dicom_series(lut)
    expected = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    assert "ModalityLUTSequence" in ds
    got = vol.array if vol.ndim == 2 else vol.array[:, :, 0].T
    assert np.array_equal(got, expected)


def test_row_26_nan_inf_voxels(tmp_path, capsys):
    data = _head()
    data[1, 2, 3] = np.nan
    path = _nifti(tmp_path / "nan.nii.gz", data)
    with pytest.raises(NonFiniteError, match=r"1 of \d+ voxels are NaN or infinite; replace them"):
        load_volume(path)
    with pytest.raises(NonFiniteError, match="refusing to write"):
        save_volume(Volume(data, np.eye(4)), tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()
    _cli_refuses(tmp_path, capsys, path)


def test_row_27_empty_or_constant_volume(tmp_path, capsys, monkeypatch):
    path = _nifti(tmp_path / "blank.nii.gz", np.zeros((8, 8, 8), np.float32))
    with pytest.raises(EmptyImageError, match="constant.*check that the right file"):
        load_volume(path)
    import medfuse.registration as reg

    def no_registration(*a, **k):
        raise AssertionError("registration called on a blank image")

    monkeypatch.setattr(reg, "register", no_registration)
    _cli_refuses(tmp_path, capsys, path)


def test_row_28_extreme_outliers():
    from medfuse.intensity import normalize

    rng = np.random.default_rng(0)
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, 24)] * 3, indexing="ij"), -1)
    head = (np.linalg.norm(g, axis=-1) < 0.8) * (300 + 50 * rng.random((24,) * 3))
    v = Volume(head.astype(np.float32), np.eye(4), "MR")
    hot = head.copy()
    hot[12, 12, 12] = 1e6
    a = normalize(v).array
    b = normalize(v.with_array(hot.astype(np.float32))).array
    mask = np.ones(a.shape, bool)
    mask[12, 12, 12] = False
    assert np.abs(a - b)[mask].max() < 1e-3


def test_row_29_unitless_pet_has_no_suv():
    from medfuse.intensity.suv import suv_factor
    from tests.io.dicom_fixtures import pet_tags_default  # noqa: F401 - the same header, other units

    base = {"units": "BQML", "decay_correction": "START", "corrected_image": ["ATTN", "DECY"],
            "series_datetime": "2024-01-02T10:30:00", "acquisition_datetime": "2024-01-02T10:30:00",
            "radiopharmaceutical_start_datetime": "2024-01-02T09:30:00", "radiopharmaceutical_start_time": None,
            "total_dose_bq": 370e6, "half_life_s": 6586.2, "patient_weight_kg": 70.0}
    assert suv_factor(base) == pytest.approx(2.76337e-4, rel=1e-4)
    for units in ("PROPCNTS", "CNTS", "NONE", None):
        with pytest.raises(SUVUnavailableError):
            suv_factor({**base, "units": units})


def test_row_30_rgb_png(tmp_path):
    g = np.random.default_rng(2).integers(0, 256, (16, 20)).astype(np.uint8)
    Image.fromarray(np.stack([g] * 3, -1)).save(tmp_path / "gray.png")
    v = load_volume(tmp_path / "gray.png")
    assert not v.is_color and v.shape == (16, 20) and np.array_equal(v.array, g)
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (16, 20, 3)).astype(np.uint8)).save(tmp_path / "pet.png")
    c = load_volume(tmp_path / "pet.png")
    assert c.is_color and c.meta["color"] is True


def test_row_31_sixteen_bit_png(tmp_path):
    a = np.zeros((8, 8), np.uint16)
    a[2, 3] = 40000
    a[0, 0] = 7
    Image.fromarray(a).save(tmp_path / "deep.png")
    assert load_volume(tmp_path / "deep.png").array[2, 3] == 40000


def _pair_series(folder: Path, modality: str, patient: str, frame: str | None = None) -> Path:
    """A small DICOM series (a bright ellipsoid) of one patient, on the shared grid of the row-32 pairs."""
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in (20, 18, 10)], indexing="ij"), -1)
    head = (np.linalg.norm(g / [0.8, 0.8, 0.9], axis=-1) < 1) * 600 + (np.linalg.norm(g - [0.3, 0, 0], axis=-1) < 0.3) * 900
    write_series(folder, head.astype(np.int16), np.diag([-2.0, -2.0, 3.0, 1.0]), modality,
                 frame_of_reference_uid=frame, tags={"PatientID": patient})
    return folder


def _fused_pair_check(a, b, options=None):
    """The pair check of a fusion of the series ``a`` (reference) and ``b`` (moving), through the pipeline's door."""
    from medfuse.pipeline import FusionOptions, fuse_volumes, load_inputs

    options = options or FusionOptions(method="mean")
    ref, mov = load_inputs(a, b, options)
    return ref, fuse_volumes(ref, mov, options, paths=(a, b)).pair_check


def test_row_32_wrong_roles_or_different_patients(tmp_path):
    from medfuse.errors import PairMismatchError
    from medfuse.pipeline import FusionOptions, InputOptions, RegistrationOptions, register_files

    frame = pydicom.uid.generate_uid(prefix=None)
    mr = _pair_series(tmp_path / "t1", "MR", "PID-ROW32-A", frame)
    pt = _pair_series(tmp_path / "fdg", "PT", "PID-ROW32-A", frame)
    other = _pair_series(tmp_path / "other_pt", "PT", "PID-ROW32-B")
    mr_as_pet = _pair_series(tmp_path / "pet", "MR", "PID-ROW32-A")  # a folder named pet holding an MR series

    ref, record = _fused_pair_check(mr, pt)  # a good pair passes, and the check is recorded
    assert record["same_patient"] is True and record["mismatches_accepted"] == []
    assert record["frame_of_reference"]["same"] is True
    assert record["frame_of_reference"]["reference"] == ref.meta["frame_of_reference"] != frame  # opaque, not the UID

    pet_declared = {"moving": InputOptions(modality="PT")}
    cases = [
        ((mr, other, {}), ("the reference scan and the moving scan belong to different patients.*"
                           "the accept_mismatch option"), None),
        ((mr, mr, pet_declared),
         r"^the moving scan: the modality given for it says PET but its DICOM Modality \(0008,0060\) is MRI; "
         r"check that the right scan was given as the moving scan.*the accept_mismatch option", "moving"),
        ((mr, mr_as_pet, {}), r"^the moving scan: its file name says PET but its DICOM Modality "
                              r"\(0008,0060\) is MRI", "moving"),
        ((pt, mr, {}), r"the reference scan is PET and the moving scan is MRI: the "
                       r"roles look swapped.*give the MRI as the reference and the PET as the moving scan", None),
    ]
    for (a, b, options), pattern, role in cases:
        with pytest.raises(PairMismatchError, match=pattern) as info:
            _fused_pair_check(a, b, FusionOptions(method="mean", **options))
        text = str(info.value)
        assert "\n" not in text and "PID-ROW32" not in text and str(tmp_path) not in text, text
        assert info.value.option == "accept_mismatch" and info.value.role == role
        # the explicit override goes on, on record
        _, record = _fused_pair_check(a, b, FusionOptions(method="mean", accept_mismatch=True, **options))
        assert record["mismatches_accepted"]
        # no metadata can switch the check off: a record left in the moving scan's meta changes nothing
        from medfuse.io import load_volume as _load

        vol_b = _load(b, **({"modality": "PT"} if options else {}))
        vol_b.meta["pair_check"] = {"mismatches_accepted": []}
        with pytest.raises(PairMismatchError):
            from medfuse.pipeline import fuse_volumes

            fuse_volumes(_load(a), vol_b, FusionOptions(method="mean", **options), paths=(a, b))
    # registering an MRI onto a PET's grid is legitimate: register_files does not refuse the roles
    written, _ = register_files(pt, mr, tmp_path / "reg" / "mr_on_pet.nii.gz",
                                RegistrationOptions(accept_registration=True))
    assert written["resampled"].is_file()
    from medfuse.pipeline import fuse_volumes  # the volume API checks the pair too (accept_mismatch=...)

    with pytest.raises(PairMismatchError, match="different patients"):
        fuse_volumes(load_volume(mr), load_volume(other), FusionOptions(method="mean"))
    result = fuse_volumes(load_volume(mr), load_volume(other), FusionOptions(method="mean", accept_mismatch=True))
    assert result.fused.shape == (20, 18, 10)
    assert result.pair_check["same_patient"] is False
    assert result.pair_check["frame_of_reference"]["same"] is False


def test_row_32_cli_refuses_then_accepts_mismatch(tmp_path, capsys, caplog):
    import json

    caplog.set_level(logging.DEBUG)
    mr = _pair_series(tmp_path / "a", "MR", "PID-ROW32-A")
    pt = _pair_series(tmp_path / "b", "PT", "PID-ROW32-B")
    out = tmp_path / "out"
    out.mkdir()
    for command in ("fuse", "register"):
        argv = [command, "--reference", str(mr), "--moving", str(pt), "--out", str(out / f"{command}.nii.gz")]
        argv += ["--method", "mean"] if command == "fuse" else []
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"medfuse {command}: error: the reference scan "
                                                             "and the moving scan belong to different patients"), err
        assert "--accept-mismatch" in err and "PID-ROW32" not in err and str(tmp_path) not in err
        assert list(out.iterdir()) == [], "nothing may be written"
    # the override exists on both commands, goes on with a warning, and is on record in the sidecar
    assert main(["fuse", "--reference", str(mr), "--moving", str(pt), "--out", str(out / "fused.nii.gz"),
                 "--method", "mean", "--accept-mismatch"]) == 0, capsys.readouterr().err
    assert main(["register", "--reference", str(mr), "--moving", str(pt), "--out", str(out / "reg.nii.gz"),
                 "--accept-mismatch"]) == 0, capsys.readouterr().err
    for name in ("fused.json", "reg.json"):
        text = (out / name).read_text()
        record = json.loads(text)
        assert record["pair_check"]["same_patient"] is False
        assert any(o.startswith("accept_mismatch: ") and "different patients" in o for o in record["overrides"])
        assert set(record["pair_check"]["frame_of_reference"]) >= {"reference", "moving", "same"}
        assert "PID-ROW32" not in text
    assert "different patients" in caplog.text and "PID-ROW32" not in caplog.text and str(tmp_path) not in caplog.text


# ====================================================================== C. integrity / resources / security


def test_row_33_truncated_nifti(tmp_path, capsys):
    path = _nifti(tmp_path / "cut.nii", _head((20, 20, 20)))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="truncated NIfTI file.*export the file again"):
        load_volume(path)
    gz = tmp_path / "cut.nii.gz"
    gz.write_bytes(gzip.compress(raw)[:600])
    with pytest.raises(CorruptFileError, match="cut.nii.gz: not a readable NIfTI file.*check the file"):
        load_volume(gz)
    cut_data = tmp_path / "cut_data.nii.gz"  # header intact, data cut: the gz EOF is caught and wrapped
    whole = gzip.compress(raw)
    cut_data.write_bytes(whole[: len(whole) * 3 // 4])
    with pytest.raises(CorruptFileError, match="truncated or corrupt.*export the file again"):
        load_volume(cut_data)
    _cli_refuses(tmp_path, capsys, path)


def test_row_34_truncated_dicom_pixel_data(tmp_path, capsys):
    for name in ("MR_truncated.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm"):
        with pytest.raises((CorruptFileError, UnsupportedInputError)):
            read_dicom_series(_testdata(name))
    with pytest.raises(CorruptFileError, match="truncated"):
        read_dicom_series(_testdata("MR_truncated.dcm"))
    _, _, _, paths = _make_case(tmp_path / "s", "axial")
    paths[5].write_bytes(paths[5].read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_dicom_series(tmp_path / "s")
    _cli_refuses(tmp_path, capsys, tmp_path / "s")


def _huge_header(path: Path, compress: bool = False) -> Path:
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((1500, 1500, 1500))
    hdr.set_data_dtype(np.float64)
    hdr.set_sform(np.eye(4), code=1)
    raw = hdr.binaryblock + b"\x00" * 4
    if compress:  # a gzip bomb: a small file that inflates to gigabytes of zeros
        raw += b"\x00" * (64 * 1024**2)
        path.write_bytes(gzip.compress(raw, compresslevel=9))
    else:
        path.write_bytes(raw)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_row_35_huge_dimensions_and_gzip_bomb(tmp_path, capsys, compress):
    path = _huge_header(tmp_path / ("bomb.nii.gz" if compress else "bomb.nii"), compress)
    assert path.stat().st_size < 1024**2
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(TooLargeError, match="above the .* limit.*MEDFUSE_MAX_BYTES"):
        load_volume(path)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 50 * 1024**2
    _cli_refuses(tmp_path, capsys, path)


def test_row_36_deflated_dicom_and_bomb(tmp_path, monkeypatch):
    vol = read_dicom_series(_testdata("image_dfl.dcm"))
    assert vol.ndim == 2
    # a deflated file whose dataset inflates far beyond the limit is refused while inflating
    ds = pydicom.dcmread(_testdata("image_dfl.dcm"))
    ds.add_new(0x00091010, "LO", "medfuse test")  # private creator
    ds.add_new(0x00091011, "OB", b"\x00" * (40 * 1024**2))  # what a bomb inflates to
    bomb = tmp_path / "bomb.dcm"
    ds.save_as(bomb, enforce_file_format=True)
    assert str(pydicom.dcmread(bomb, stop_before_pixels=True).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1.99"
    assert bomb.stat().st_size < 1024**2
    monkeypatch.setenv("MEDFUSE_MAX_BYTES", str(8 * 1024**2))
    t0 = time.perf_counter()
    with pytest.raises(TooLargeError, match="deflated"):
        read_dicom_series(bomb)
    assert time.perf_counter() - t0 < 1.0


def test_row_37_compressed_without_decoder(tmp_path):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSNearLossless

    for name in ("JPEG2000.dcm", "JPEGLSNearLossless_16.dcm"):
        try:
            read_dicom_series(_testdata(name))
        except UnsupportedInputError as err:
            assert re.search(r"1\.2\.840\.10008\.1\.2\.4\.\d+", str(err)) and "convert" in str(err)
    if not get_decoder(JPEGLSNearLossless).is_available:
        _make_case(tmp_path, "axial", edit=_fake_jpeg_ls)
        with pytest.raises(UnsupportedInputError, match=r"1\.2\.840\.10008\.1\.2\.4\.81.*Install one of"):
            read_dicom_series(tmp_path)


def test_row_38_lossy_source_flag_carried_to_derived_dicom(tmp_path):
    from medfuse.pipeline import FusionOptions, fuse_files

    arr = (np.random.default_rng(0).random((16, 14, 8)) * 1000).astype(np.int16)
    arr[4:12, 4:10, 2:6] += 800
    lossy = {"LossyImageCompression": "01", "LossyImageCompressionRatio": "12.5",
             "LossyImageCompressionMethod": "ISO_10918_1"}
    for_uid = pydicom.uid.generate_uid(prefix=None)
    write_series(tmp_path / "mr", arr, np.diag([-2.0, -2.0, 3.0, 1.0]), "MR", tags=lossy,
                 frame_of_reference_uid=for_uid)
    write_series(tmp_path / "ct", arr, np.diag([-2.0, -2.0, 3.0, 1.0]), "CT", intercepts=-1024,
                 frame_of_reference_uid=for_uid)
    assert read_dicom_series(tmp_path / "mr").meta["lossy"] is True
    fuse_files(tmp_path / "mr", tmp_path / "ct", tmp_path / "out", FusionOptions(method="mean", out_format="dicom", qc=False))
    ds = pydicom.dcmread(next((tmp_path / "out").glob("*.dcm")))
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionRatio == 12.5 and ds.LossyImageCompressionMethod == "ISO_10918_1"


def test_row_39_no_preamble_missing_meta_bad_vr(tmp_path):
    _, _, expected, paths = _make_case(tmp_path / "s", "axial", instance_numbers=list(range(1, 10)))
    ds = pydicom.dcmread(paths[4])
    ds.preamble = None
    del ds.file_meta
    ds.save_as(paths[4], enforce_file_format=False, implicit_vr=True, little_endian=True)
    np.testing.assert_allclose(read_dicom_series(tmp_path / "s").array, expected, rtol=1e-6, atol=1e-3)
    for name in ("no_meta.dcm", "meta_missing_tsyntax.dcm"):
        with pytest.raises(CorruptFileError, match="no DICOM image found"):
            read_dicom_series(_testdata(name))
    with pytest.raises(UnsupportedInputError, match="RT Dose"):
        read_dicom_series(_testdata("badVR.dcm"))
    (tmp_path / "s" / "notes.txt").write_text("random text\n" * 10)
    np.testing.assert_allclose(read_dicom_series(tmp_path / "s").array, expected, rtol=1e-6, atol=1e-3)


def test_row_40_output_names_from_dicom_text(tmp_path):
    """The derived DICOM's file names never come from DICOM text: every path stays inside the output folder
    and matches ^[A-Za-z0-9._-]{1,128}$, whatever PatientName/SeriesDescription hold."""
    from medfuse.pipeline import FusionOptions, fuse_files

    evil = {"PatientName": "../../x", "SeriesDescription": "a/b\\c\x00" + "y" * 300, "StudyDescription": "../../"}
    arr = (np.random.default_rng(1).random((12, 12, 6)) * 1000).astype(np.int16)
    arr[3:9, 3:9, 1:5] += 500
    for_uid = pydicom.uid.generate_uid(prefix=None)
    write_series(tmp_path / "in" / "mr", arr, np.diag([-2.0, -2.0, 3.0, 1.0]), "MR", tags=evil,
                 frame_of_reference_uid=for_uid)
    write_series(tmp_path / "in" / "ct", arr, np.diag([-2.0, -2.0, 3.0, 1.0]), "CT", tags=evil, intercepts=-1024,
                 frame_of_reference_uid=for_uid)
    root = tmp_path / "out_root"
    written = fuse_files(tmp_path / "in" / "mr", tmp_path / "in" / "ct", root / "fused", FusionOptions(method="mean", out_format="dicom", qc=False))
    assert not (tmp_path / "x").exists()
    for p in root.rglob("*"):
        assert p.resolve().is_relative_to(root.resolve())
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", p.name), p.name
    assert set(written) >= {"fused", "quantitative", "sidecar"}


def test_row_41_no_silent_overwrite_and_unique_uids(tmp_path, capsys):
    from medfuse.io.dicom.writer import new_uid

    ref = _mr_nifti(tmp_path)
    pet = save_volume(Volume(np.asarray(load_volume(ref).array) * 2 + 1, np.diag([2.0, 2.0, 2.5, 1.0]), "PT"),
                      tmp_path / "pet.nii.gz")
    argv = ["fuse", "--reference", str(ref), "--moving", str(pet), "--out", str(tmp_path / "o" / "fused.nii.gz"),
            "--method", "mean", "--no-qc"]
    assert main(argv) == 0
    capsys.readouterr()
    files = sorted((tmp_path / "o").iterdir())
    mtimes = [p.stat().st_mtime_ns for p in files]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "exists already" in err and "--force" in err
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "o").iterdir())] == mtimes
    uids = [new_uid() for _ in range(5000)]
    assert len(set(uids)) == len(uids) and all(re.fullmatch(r"2\.25\.\d{1,39}", u) for u in uids)


def test_row_42_untrusted_weights_and_bundles():
    """Every torch.load in medfuse passes weights_only=True; bundle configs hold no ``$`` expressions."""
    calls = []
    for path in (ROOT / "medfuse").rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            calls.append((path.name, m.group(1)))
    assert calls, "no torch.load found: the grep is broken"
    for name, args in calls:
        assert "weights_only=True" in args, f"{name}: torch.load({args})"
    import json

    for config in (ROOT / "bundles").rglob("*.json"):
        def strings(node):
            if isinstance(node, dict):
                for v in node.values():
                    yield from strings(v)
            elif isinstance(node, list):
                for v in node:
                    yield from strings(v)
            elif isinstance(node, str):
                yield node

        assert not [s for s in strings(json.loads(config.read_text())) if s.startswith("$")], config


def test_row_43_non_dicom_clutter(tmp_path, caplog):
    _make_case(tmp_path / "clean", "oblique")
    shutil.copytree(tmp_path / "clean", tmp_path / "cluttered")
    n = _add_clutter(tmp_path / "cluttered")
    clean = read_dicom_series(tmp_path / "clean")
    with caplog.at_level(logging.INFO):
        cluttered = read_dicom_series(tmp_path / "cluttered")
    assert np.array_equal(clean.array, cluttered.array) and np.array_equal(clean.affine, cluttered.affine)
    assert f"skipped {n} non-DICOM or non-image file(s)" in caplog.text


def test_every_row_has_a_test():
    names = {n for n in globals() if n.startswith("test_row_")}
    rows = {int(re.match(r"test_row_(\d+)_", n).group(1)) for n in names}
    assert rows == set(range(1, 44))
    doc = (ROOT / "docs" / "bad-inputs.md").read_text()
    for name in names:
        assert name in doc, f"{name} missing from docs/bad-inputs.md"
