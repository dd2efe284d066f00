"""Tests of the DICOM series reader (bad-inputs rows 4, 7-9, 11-14, 22, 24, 25, 34, 37, 39, 43)."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut
from pydicom.uid import JPEGLSNearLossless, RLELossless, generate_uid

from medfuse.errors import (
    AmbiguousGeometryError,
    CorruptFileError,
    MedfuseError,
    MissingSlicesError,
    MultipleSeriesError,
    SeriesNotFoundError,
    TooLargeError,
    UnsupportedInputError,
)
from medfuse.io.dicom import reader as dicom_mod
from medfuse.io.dicom import SeriesInfo, list_series, read_dicom_series
from medfuse.volume import ras_to_lps
from tests.io.dicom_fixtures import (
    CANARY_FIELDS,
    ENHANCED_SOP_CLASS,
    archive_style_copy,
    expected_values,
    pet_tags_default,
    write_series,
)

RNG_SEED = 20240102


def _testdata(name: str) -> str:
    """A file shipped in pydicom's wheel (never downloaded); skip when absent."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not installed")
    return path


def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", [rx, ry, rz], degrees=True).as_matrix()


def _affine(columns, spacing, origin) -> np.ndarray:
    """RAS affine whose columns are unit ``columns`` scaled by ``spacing``."""
    a = np.eye(4)
    a[:3, :3] = np.asarray(columns, dtype=float) @ np.diag(spacing)
    a[:3, 3] = origin
    return a


# RAS unit vectors of the (i, j, k) axes of the usual DICOM stacks (IOP in LPS in the comments)
_AXES = {
    "axial": [(-1, 0, 0), (0, -1, 0), (0, 0, 1)],  # IOP 1/0/0/0/1/0
    "sagittal": [(0, -1, 0), (0, 0, -1), (1, 0, 0)],  # IOP 0/1/0/0/0/-1, normal toward R
    "coronal": [(-1, 0, 0), (0, 0, -1), (0, -1, 0)],  # IOP 1/0/0/0/0/-1, normal toward P
    "reversed": [(-1, 0, 0), (0, -1, 0), (0, 0, -1)],  # slice step against the normal
}
ORIENTATIONS = {name: np.array(axes, dtype=float).T for name, axes in _AXES.items()}
ORIENTATIONS["oblique"] = _rotation(17, -28, 41)


def _make_case(folder: Path, orientation: str = "axial", shape=(20, 16, 9), modality="CT", **kwargs):
    rng = np.random.default_rng(RNG_SEED)
    arr = rng.integers(-1000, 2000, shape).astype(np.int16)
    affine = _affine(ORIENTATIONS[orientation], (0.8, 1.15, 2.5), (12.5, -20.25, 31.0))
    slopes = rng.uniform(0.5, 2.0, shape[2])
    intercepts = rng.uniform(-100.0, 100.0, shape[2])
    kwargs.setdefault("instance_numbers", list(rng.permutation(shape[2]) + 1))
    paths = write_series(folder, arr, affine, modality, slopes=slopes, intercepts=intercepts, **kwargs)
    return arr, affine, expected_values(arr, slopes, intercepts), paths


def _sitk_series(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _corners(shape) -> np.ndarray:
    return np.array(
        [[i, j, k] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)], float
    )


# --------------------------------------------------------------------------------------------
# geometry


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_geometry_and_values_match_simpleitk(tmp_path, orientation):
    """Rows 4, 11, 22: corners agree with SimpleITK (LPS) to 1e-4 mm; values per-slice rescaled."""
    import SimpleITK as sitk

    arr, affine, expected, _ = _make_case(tmp_path, orientation)
    vol = read_dicom_series(tmp_path)
    img = _sitk_series(tmp_path)

    assert vol.array.dtype == np.float32 and vol.shape == arr.shape
    assert vol.modality == "CT"
    ours_lps = ras_to_lps(vol.world_coordinates(_corners(vol.shape)))
    theirs_lps = np.array(
        [img.TransformContinuousIndexToPhysicalPoint(tuple(c)) for c in _corners(vol.shape)]
    )
    np.testing.assert_allclose(ours_lps, theirs_lps, atol=1e-4)
    np.testing.assert_allclose(vol.array, sitk.GetArrayFromImage(img).T, rtol=1e-6, atol=1e-3)

    if orientation == "reversed":  # sorted along the normal: k runs the other way
        flip = np.eye(4)
        flip[2, 2], flip[2, 3] = -1, arr.shape[2] - 1
        affine, expected = affine @ flip, expected[:, :, ::-1]
    np.testing.assert_allclose(vol.affine, affine, atol=1e-6)
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6, atol=1e-3)
    # spacing along the normal equals SliceThickness (row 11)
    assert vol.spacing == pytest.approx([0.8, 1.15, 2.5], rel=1e-6)
    thickness = float(pydicom.dcmread(next(tmp_path.glob("*.dcm"))).SliceThickness)
    assert vol.spacing[2] == pytest.approx(thickness, rel=0.01)


@pytest.mark.parametrize("orientation", ["axial", "sagittal", "oblique"])
def test_marker_in_patient_left_stays_at_same_lps_point(tmp_path, orientation):
    """Row 4: an asymmetric marker in the patient's LEFT (LPS +x) is at the same LPS point for
    the written geometry, this reader and SimpleITK."""
    import SimpleITK as sitk

    shape = (24, 20, 10)
    affine = _affine(ORIENTATIONS[orientation], (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    # put the grid's centre at the world origin, so half of it lies in the patient's left
    affine[:3, 3] = -affine[:3, :3] @ (np.array(shape) - 1) / 2
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    lps = ras_to_lps(grid @ affine[:3, :3].T + affine[:3, 3])
    left = np.flatnonzero(lps[:, 0] > 6.0)  # well inside the patient's left
    seed = left[np.argmin(np.linalg.norm(lps[left] - [8.0, 2.0, 1.0], axis=1))]
    i, j, k = grid[seed]
    arr = np.zeros(shape, np.int16)
    arr[i, j, k] = 1000  # an asymmetric "L" marker: centroid off the seed voxel
    arr[min(i + 1, shape[0] - 1), j, k] = 1000
    arr[i, min(j + 1, shape[1] - 1), k] = 1000
    write_series(tmp_path, arr, affine, "MR")
    marked = np.argwhere(arr > 0).mean(axis=0)
    truth_lps = ras_to_lps(affine[:3, :3] @ marked + affine[:3, 3])
    assert truth_lps[0] > 0  # patient's left

    vol = read_dicom_series(tmp_path)
    ours = ras_to_lps(vol.world_coordinates(np.argwhere(vol.array > 500).mean(axis=0))[0])
    img = _sitk_series(tmp_path)
    sitk_idx = np.argwhere(sitk.GetArrayFromImage(img).T > 500).mean(axis=0)
    theirs = np.array(img.TransformContinuousIndexToPhysicalPoint(tuple(sitk_idx)))
    np.testing.assert_allclose(ours, truth_lps, atol=1e-4)
    np.testing.assert_allclose(theirs, truth_lps, atol=1e-4)


def test_instance_numbers_and_file_names_do_not_change_the_volume(tmp_path):
    """Row 12: permuting InstanceNumber (and the file-name order) gives a bit-identical volume."""
    n = 9
    arr, affine, _, _ = _make_case(tmp_path / "a", "oblique", instance_numbers=list(range(1, n + 1)))
    rng = np.random.default_rng(1)
    _make_case(
        tmp_path / "b",
        "oblique",
        instance_numbers=[int(v) for v in rng.permutation(n) + 1],
        file_names=[f"{name:03d}.dcm" for name in rng.permutation(n)],
    )
    _make_case(tmp_path / "c", "oblique", instance_numbers=[1] * n)  # duplicated numbers
    a, b, c = (read_dicom_series(tmp_path / s) for s in "abc")
    assert np.array_equal(a.array, b.array) and np.array_equal(a.array, c.array)
    assert np.array_equal(a.affine, b.affine) and np.array_equal(a.affine, c.affine)


def test_per_slice_rescale_equals_apply_modality_lut(tmp_path):
    """Row 22: each slice gets its own RescaleSlope/Intercept, as pydicom's apply_modality_lut."""
    _, _, _, paths = _make_case(tmp_path, "axial", modality="PT")
    vol = read_dicom_series(tmp_path)
    for k, path in enumerate(paths):  # axial: written slice k is sorted slice k
        ds = pydicom.dcmread(path)
        manual = apply_modality_lut(ds.pixel_array, ds).astype(np.float32).T
        assert np.array_equal(vol.array[:, :, k], manual)
    slopes = {float(pydicom.dcmread(p).RescaleSlope) for p in paths}
    assert len(slopes) == len(paths)  # the fixture really has per-slice slopes


def test_twelve_bit_signed_values(tmp_path):
    """Row 24: BitsStored 12, signed, gives negative values (-241, -1), not bright ones."""
    arr = np.tile(np.array([-241, -1], np.int16).repeat(4), (8, 1))[:, :, None].repeat(3, axis=2)
    arr = np.ascontiguousarray(np.transpose(arr, (1, 0, 2)))  # (X=8, Y=8, Z=3)

    def twelve_bits(ds, k):
        ds.BitsStored, ds.HighBit = 12, 11
        ds.PixelData = (arr[:, :, k].T.astype(np.int32) & 0x0FFF).astype(np.uint16).tobytes()

    write_series(tmp_path, arr, np.diag([1.0, 1.0, 2.0, 1.0]), "MR", edit=twelve_bits)
    vol = read_dicom_series(tmp_path)
    assert set(np.unique(vol.array).tolist()) == {-241.0, -1.0}
    assert np.array_equal(vol.array, arr.astype(np.float32))


def test_ct_small_loads_in_hounsfield_units():
    """Row 25: pydicom's CT_small.dcm has RescaleIntercept -1024, applied."""
    import SimpleITK as sitk

    path = _testdata("CT_small.dcm")
    ds = pydicom.dcmread(path)
    vol = read_dicom_series(path)
    assert vol.shape == (128, 128, 1) and vol.modality == "CT"
    hu = apply_modality_lut(ds.pixel_array, ds).astype(np.float32).T
    assert np.array_equal(vol.array[:, :, 0], hu)
    assert float(ds.RescaleIntercept) == -1024.0
    assert vol.array.min() == pytest.approx(ds.pixel_array.min() - 1024.0)
    img = sitk.ReadImage(path)  # in-plane geometry and origin agree with ITK/GDCM
    theirs = np.array(
        [img.TransformContinuousIndexToPhysicalPoint((i, j, 0.0)) for i, j in [(0, 0), (127, 0), (0, 127)]]
    )
    ours = ras_to_lps(vol.world_coordinates(np.array([[0, 0, 0], [127, 0, 0], [0, 127, 0]])))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert vol.meta["lossy"] is False and vol.meta["format"] == "dicom"


# --------------------------------------------------------------------------------------------
# incomplete or irregular stacks


@pytest.mark.parametrize("k", [1, 4, 7])
def test_missing_slice_raises(tmp_path, k):
    """Row 8: deleting slice k raises MissingSlicesError; the complete series passes."""
    _, _, _, paths = _make_case(tmp_path, "sagittal")
    read_dicom_series(tmp_path)
    paths[k].unlink()
    with pytest.raises(
        MissingSlicesError, match=r"gap of 5\.000 mm.*median spacing 2\.500 mm.*1 slice\(s\) missing"
    ):
        read_dicom_series(tmp_path)


def test_slice_cut_inside_its_header_is_reported(tmp_path, caplog):
    """A slice whose header is cut is counted as damaged, and the gap message says so."""
    _, _, _, paths = _make_case(tmp_path, "axial")
    paths[4].write_bytes(paths[4].read_bytes()[:600])
    with caplog.at_level(logging.WARNING, logger="medfuse.io.dicom"):
        with pytest.raises(
            MissingSlicesError, match=r"1 slice\(s\) missing.*1 file\(s\) in the folder could not"
        ):
            read_dicom_series(tmp_path)
    assert "1 file(s) in the folder could not be parsed" in caplog.text


def test_duplicate_positions_raise(tmp_path, caplog):
    """Two instances at one position (echoes, phases) are refused; a mere file copy is not."""
    _, _, expected, paths = _make_case(tmp_path, "axial")
    (tmp_path / "backup").mkdir()
    shutil.copy(paths[3], tmp_path / "backup" / "slice_3_copy.dcm")  # the same SOP instance again
    with caplog.at_level(logging.INFO, logger="medfuse.io.dicom"):
        vol = read_dicom_series(tmp_path)
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6, atol=1e-3)
    assert "1 extra copy(ies) of the same instance" in caplog.text

    ds = pydicom.dcmread(paths[3])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix=None)
    ds.EchoNumbers = 2
    ds.save_as(tmp_path / "echo2_slice_3.dcm")  # a second echo at the same position
    with pytest.raises(MissingSlicesError, match="share their position"):
        read_dicom_series(tmp_path)


def _irregular_series(folder: Path):
    """Axial series whose values equal the slice position (mm) along the normal."""
    positions = np.array([0.0, 2.0, 4.0, 6.3, 8.3, 10.1, 12.1, 14.1])
    arr = np.ones((6, 5, len(positions)), np.int16) * np.round(positions * 10).astype(np.int16)

    def place(ds, k):
        ds.ImagePositionPatient = [0.0, 0.0, float(positions[k])]

    write_series(folder, arr, np.diag([-1.0, -1.0, 2.0, 1.0]), "MR", slopes=0.1, edit=place)
    return positions


def test_nonuniform_spacing_is_resampled_or_refused(tmp_path, caplog):
    """Row 9: strict raises; default resamples linearly onto equidistant slices and records it."""
    positions = _irregular_series(tmp_path)
    with pytest.raises(MissingSlicesError, match="spacing varies from 1.800 to 2.300 mm"):
        read_dicom_series(tmp_path, strict=True)

    with caplog.at_level(logging.WARNING, logger="medfuse.io.dicom"):
        vol = read_dicom_series(tmp_path)
    assert "resampled 8 slices linearly onto 8 equidistant slices" in caplog.text
    record = vol.meta["slice_resampling"]
    assert record["n_original"] == 8 and record["method"] == "linear"
    z = vol.world_coordinates(np.array([[0, 0, k] for k in range(vol.shape[2])]))[:, 2]
    np.testing.assert_allclose(np.diff(z), record["spacing_mm"], atol=1e-9)  # uniform
    assert z[0] == pytest.approx(positions[0]) and z[-1] == pytest.approx(positions[-1])
    # values are linear in position, so linear resampling reproduces the new positions exactly
    np.testing.assert_allclose(vol.array[0, 0, :], z, atol=1e-4)
    # every original slice centre lies within half a new spacing of a grid slice
    assert np.all(np.min(np.abs(positions[:, None] - z[None, :]), axis=1) <= 0.5 * record["spacing_mm"])


def test_gantry_tilt_raises(tmp_path):
    """Row 10: positions drifting within the slice plane (tilt) are refused, not stacked."""

    def tilt(ds, k):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + 0.4 * k, z]  # ~9 deg for 2.5 mm slices
        ds.GantryDetectorTilt = 9.1

    _make_case(tmp_path, "axial", edit=tilt)
    with pytest.raises(UnsupportedInputError, match=r"GantryDetectorTilt 9\.1 deg\): a gantry-tilted"):
        read_dicom_series(tmp_path)


def test_mixed_orientations_raise(tmp_path):
    def localizer(ds, k):
        if k == 0:
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]

    _make_case(tmp_path, "axial", edit=localizer)
    with pytest.raises(UnsupportedInputError, match="mixes slice orientations"):
        read_dicom_series(tmp_path)


def test_missing_geometry_raises(tmp_path):
    _make_case(tmp_path, "axial", edit=lambda ds, k: delattr(ds, "ImagePositionPatient"))
    with pytest.raises(AmbiguousGeometryError, match="lack ImagePositionPatient"):
        read_dicom_series(tmp_path)


# --------------------------------------------------------------------------------------------
# series selection and clutter


def test_multiple_series_listed_and_selectable(tmp_path):
    """Row 7: two series raise MultipleSeriesError listing both; --series picks exactly one."""
    uid_ct, uid_pt = generate_uid(prefix=None), generate_uid(prefix=None)
    _, _, ct_expected, _ = _make_case(
        tmp_path / "ct", "axial", series_uid=uid_ct, series_description="CT head 2.5mm"
    )
    rng = np.random.default_rng(3)
    pet = rng.integers(0, 3000, (10, 8, 6)).astype(np.int16)
    write_series(
        tmp_path / "pet" / "nested",
        pet,
        np.diag([-3.0, -3.0, 3.0, 1.0]),
        "PT",
        series_uid=uid_pt,
        series_description="PET AC",
        series_number=2,
    )

    found = list_series(tmp_path)
    assert [(s.modality, s.n_slices, s.description) for s in found] == [
        ("CT", 9, "CT head 2.5mm"),
        ("PT", 6, "PET AC"),
    ]
    assert all(isinstance(s, SeriesInfo) for s in found)
    ids = {s.modality: s.opaque_id for s in found}
    assert ids["CT"] == hashlib.sha256(uid_ct.encode()).hexdigest()[:8]
    assert uid_ct not in repr(found) and uid_ct not in str(found[0])

    with pytest.raises(MultipleSeriesError) as err:
        read_dicom_series(tmp_path)
    msg = str(err.value)
    for text in (ids["CT"], ids["PT"], "CT head 2.5mm", "PET AC", "9 slice(s)", "6 slice(s)", "the series option"):
        assert text in msg
    assert err.value.option == "series"  # the command line: --series (or --moving-series)
    assert uid_ct not in msg and uid_pt not in msg

    pt = read_dicom_series(tmp_path, series=ids["PT"])
    assert pt.modality == "PT" and pt.shape == (10, 8, 6) and pt.meta["series_id"] == ids["PT"]
    assert np.array_equal(pt.array, pet.astype(np.float32))
    ct = read_dicom_series(tmp_path, series=uid_ct)  # the full UID works too
    np.testing.assert_allclose(ct.array, ct_expected, rtol=1e-6, atol=1e-3)
    assert read_dicom_series(tmp_path, series=ids["CT"].upper()).meta["series_id"] == ids["CT"]
    with pytest.raises(SeriesNotFoundError, match=ids["CT"]):
        read_dicom_series(tmp_path, series="deadbeef")
    with pytest.raises(SeriesNotFoundError, match="the given UID") as err:
        read_dicom_series(tmp_path, series=uid_ct + "1")
    assert uid_ct not in str(err.value)


def test_single_file_reads_only_that_file(tmp_path):
    _, affine, expected, paths = _make_case(tmp_path, "coronal")
    vol = read_dicom_series(paths[2])
    assert vol.shape == (20, 16, 1)
    np.testing.assert_allclose(vol.array[:, :, 0], expected[:, :, 2], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(
        vol.world_coordinates([[0, 0, 0]])[0], affine[:3, :3] @ [0, 0, 2] + affine[:3, 3], atol=1e-4
    )
    assert vol.spacing[2] == pytest.approx(2.5)  # SliceThickness


def _add_clutter(folder: Path) -> int:
    """Write the usual non-image files of exported studies; return how many."""
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(range(200)))
    (folder / "series.json").write_text('{"Modality": "CT", "SeriesDescription": "x"}')
    (folder / "README.txt").write_text("exported by a PACS\n" * 20)
    (folder / "thumb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    (folder / "empty").write_bytes(b"")
    sub = folder / "VIEWER"
    sub.mkdir()
    (sub / "index.html").write_text("<html></html>")
    n = 6
    dicomdir = get_testdata_file("DICOMDIR", download=False)
    if dicomdir is not None:
        shutil.copy(dicomdir, folder / "DICOMDIR")
        n += 1
    rtplan = get_testdata_file("rtplan.dcm", download=False)  # a DICOM object without an image
    if rtplan is not None:
        shutil.copy(rtplan, sub / "plan.dcm")
        n += 1
    return n


def test_clutter_is_skipped_and_counted(tmp_path, caplog):
    """Row 43: clutter leaves the volume bit-identical; the skipped files are counted in the log."""
    _make_case(tmp_path / "clean", "oblique")
    shutil.copytree(tmp_path / "clean", tmp_path / "cluttered")
    n_clutter = _add_clutter(tmp_path / "cluttered")
    clean = read_dicom_series(tmp_path / "clean")
    with caplog.at_level(logging.INFO, logger="medfuse.io.dicom"):
        cluttered = read_dicom_series(tmp_path / "cluttered")
    assert np.array_equal(clean.array, cluttered.array) and np.array_equal(clean.affine, cluttered.affine)
    assert f"skipped {n_clutter} non-DICOM or non-image file(s)" in caplog.text


def test_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorruptFileError, match="no DICOM image found"):
        read_dicom_series(tmp_path / "empty")
    _add_clutter(tmp_path / "empty")
    with pytest.raises(CorruptFileError, match="no DICOM image found"):
        read_dicom_series(tmp_path / "empty")
    assert list_series(tmp_path / "empty") == []
    with pytest.raises(FileNotFoundError):
        read_dicom_series(tmp_path / "missing")


def test_file_without_preamble_is_read(tmp_path):
    """Row 39: a valid image without preamble/file meta is read; odd non-image files are not."""
    _, _, expected, paths = _make_case(tmp_path, "axial", instance_numbers=list(range(1, 10)))
    ds = pydicom.dcmread(paths[4])
    ds.preamble = None
    del ds.file_meta
    ds.save_as(paths[4], enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert open(paths[4], "rb").read(132)[128:132] != b"DICM"
    vol = read_dicom_series(tmp_path)
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6, atol=1e-3)
    for name in ("no_meta.dcm", "meta_missing_tsyntax.dcm"):  # no image inside: nothing to read
        with pytest.raises(CorruptFileError, match="no DICOM image found"):
            read_dicom_series(_testdata(name))
    with pytest.raises(UnsupportedInputError, match="RT Dose"):
        read_dicom_series(_testdata("badVR.dcm"))  # an RT Dose grid with NumberOfFrames '1A'


def test_malformed_values_raise_without_quoting_them(tmp_path):
    """Row 39: a bad VR value gives a CorruptFileError naming the attribute, not its value."""

    def marked_position(ds, k):
        if k == 2:
            ds.ImagePositionPatient = ["1.25", "2.5", "999.125"]

    _, _, _, paths = _make_case(tmp_path, "axial", edit=marked_position)
    data = paths[2].read_bytes()
    assert data.count(b"999.125") == 1
    paths[2].write_bytes(data.replace(b"999.125", b"999abc7"))  # same length: a corrupt DS value
    with pytest.raises(CorruptFileError, match="ImagePositionPatient is not a list of 3 number") as err:
        read_dicom_series(tmp_path)
    assert "999abc7" not in str(err.value)  # (not "abc": the series pseudonym is hex and may hold it)


def test_image_without_geometry_is_a_2d_slice():
    path = _testdata("image_dfl.dcm")  # deflated secondary capture, no patient geometry
    vol = read_dicom_series(path)
    ds = pydicom.dcmread(path)
    assert vol.ndim == 2 and vol.meta["geometry"] == "none" and vol.modality is None
    assert vol.meta["modality"] == "OT"
    assert np.array_equal(vol.array, ds.pixel_array.astype(np.float32))


# --------------------------------------------------------------------------------------------
# unsupported and damaged files


def test_truncated_pixel_data_raises(tmp_path):
    """Row 34: truncated pixel data never come back zero-padded."""
    with pytest.raises(CorruptFileError, match="truncated"):
        read_dicom_series(_testdata("MR_truncated.dcm"))
    _, _, _, paths = _make_case(tmp_path, "axial")
    data = paths[5].read_bytes()
    paths[5].write_bytes(data[: len(data) - 100])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_dicom_series(tmp_path)


def _fake_jpeg_ls(ds, k):
    ds.file_meta.TransferSyntaxUID = JPEGLSNearLossless
    ds.PixelData = encapsulate([b"\xff\xd8not really JPEG-LS\xff\xd9"])
    ds["PixelData"].VR = "OB"


def _decoder_available(uid) -> bool:
    from pydicom.pixels import get_decoder

    return get_decoder(uid).is_available


@pytest.mark.skipif(_decoder_available(JPEGLSNearLossless), reason="a JPEG-LS decoder is installed")
def test_compressed_without_decoder_names_syntax_and_plugin(tmp_path):
    """Row 37: no decoder -> UnsupportedInputError naming the transfer syntax and the plugins."""
    _make_case(tmp_path, "axial", edit=_fake_jpeg_ls)
    with pytest.raises(UnsupportedInputError, match=r"1\.2\.840\.10008\.1\.2\.4\.81.*pylibjpeg"):
        read_dicom_series(tmp_path)
    with pytest.raises(UnsupportedInputError, match=r"1\.2\.840\.10008\.1\.2\.4\.81"):
        read_dicom_series(_testdata("JPEGLSNearLossless_16.dcm"))


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_encoded_variants_decode_identically_or_refuse(name):
    """Row 37: each encoding of MR_small either gives MR_small's volume exactly or a clear error."""
    reference = read_dicom_series(_testdata("MR_small.dcm"))
    try:
        vol = read_dicom_series(_testdata(name))
    except UnsupportedInputError as err:
        assert "1.2.840.10008.1.2.4" in str(err)
        return
    assert np.array_equal(vol.array, reference.array)
    np.testing.assert_allclose(vol.affine, reference.affine, atol=1e-6)


def test_lossy_jpeg_decodes_or_refuses():
    """Rows 37, 38: 12-bit JPEG Extended decodes (flagged lossy) or names its transfer syntax."""
    try:
        vol = read_dicom_series(_testdata("JPEG-lossy.dcm"))
    except UnsupportedInputError as err:
        assert "1.2.840.10008.1.2.4.51" in str(err) and "pylibjpeg" in str(err)
        return
    assert vol.meta["lossy"] is True


@pytest.mark.parametrize("name", ["rtdose_1frame.dcm", "liver_1frame.dcm"])
def test_non_image_pixel_objects_are_refused(name):
    """RT Dose (needs DoseGridScaling) and SEG (enhanced, labels) are not read as images."""
    with pytest.raises(UnsupportedInputError, match="RT Dose|segmentation|enhanced"):
        read_dicom_series(_testdata(name))


def test_rle_series_matches_uncompressed(tmp_path):
    _, _, expected, _ = _make_case(tmp_path, "oblique", edit=lambda ds, k: ds.compress(RLELossless))
    vol = read_dicom_series(tmp_path)
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6, atol=1e-3)


def test_multiframe_and_mosaic_are_unsupported(tmp_path):
    """Rows 13, 14: never return frames or tiles stacked as one slice."""

    def two_frames(ds, k):
        ds.NumberOfFrames = 2
        ds.PixelData = ds.PixelData * 2

    def enhanced(ds, k):
        two_frames(ds, k)
        ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence([pydicom.Dataset(), pydicom.Dataset()])

    def mosaic(ds, k):
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]

    for name, edit, pattern in [
        ("mf", two_frames, r"a multi-frame object with 2 frame\(s\)"),
        # a classic SOP class with functional groups: the SOP class decides, its frames are still refused
        ("enh", enhanced, r"a multi-frame object with 2 frame\(s\)"),
        ("mosaic", mosaic, "mosaic"),
    ]:
        _make_case(tmp_path / name, "axial", shape=(8, 8, 3), edit=edit)
        with pytest.raises(UnsupportedInputError, match=pattern):
            read_dicom_series(tmp_path / name)


@pytest.mark.parametrize(
    ("modality", "orientation", "frames", "shared"),
    [
        ("MR", "oblique", None, True),
        ("MR", "sagittal", 1, True),
        ("MR", "axial", 1, False),
        ("CT", "reversed", None, True),
    ],
)
def test_empty_functional_groups_read_as_the_classic_series(tmp_path, modality, orientation, frames, shared):
    """Issue 11 item 7: classic single-frame files with EMPTY Per-frame/Shared functional group
    sequences (as ADNI and other archives export them) are the classic series they are: same
    array and affine as the classic twin, and the same geometry as SimpleITK's series reader."""
    _, _, expected, paths = _make_case(tmp_path / "classic", orientation, modality=modality)
    archive_style_copy(paths, tmp_path / "archive", number_of_frames=frames, shared=shared)
    ds = pydicom.dcmread(next((tmp_path / "archive").glob("*.dcm")), stop_before_pixels=True)
    assert "PerFrameFunctionalGroupsSequence" in ds and len(ds.PerFrameFunctionalGroupsSequence) == 0

    classic = read_dicom_series(tmp_path / "classic")
    archived = read_dicom_series(tmp_path / "archive")
    np.testing.assert_allclose(archived.affine, classic.affine, atol=1e-4)
    np.testing.assert_array_equal(archived.array, classic.array)
    if orientation != "reversed":  # (reversed: sorted along the normal, k runs the other way)
        np.testing.assert_allclose(archived.array, expected, rtol=1e-6, atol=1e-3)
    assert archived.modality == modality and archived.meta["n_slices"] == len(paths)
    assert [s.n_slices for s in list_series(tmp_path / "archive")] == [len(paths)]

    img = _sitk_series(tmp_path / "archive")
    ours_lps = ras_to_lps(archived.world_coordinates(_corners(archived.shape)))
    theirs_lps = np.array(
        [img.TransformContinuousIndexToPhysicalPoint(tuple(c)) for c in _corners(archived.shape)]
    )
    np.testing.assert_allclose(ours_lps, theirs_lps, atol=1e-4)


@pytest.mark.parametrize("case", ["enhanced_sop_class", "legacy_pet_sop_class", "two_frames"])
def test_real_enhanced_or_multiframe_objects_are_still_refused(tmp_path, case):
    """Functional groups of classic images are tolerated (the SOP class decides; a classic image with a
    one-empty-item per-frame sequence, as ADNI writes it, is read: tests/io/test_dicom_sop_class.py): an
    enhanced SOP class without geometry in its groups or NumberOfFrames > 1 is still refused, clearly."""

    def edit(ds, k):
        ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence([])
        ds.SharedFunctionalGroupsSequence = pydicom.Sequence([])
        if case == "enhanced_sop_class":
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_SOP_CLASS["MR"]
        elif case == "legacy_pet_sop_class":
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_SOP_CLASS["PT_LEGACY"]
        else:
            ds.NumberOfFrames = 2
            ds.PixelData = ds.PixelData * 2

    _make_case(tmp_path, "axial", shape=(8, 8, 3), modality="MR", edit=edit)
    pattern = "an enhanced multi-frame object"
    if case == "two_frames":
        pattern = r"a multi-frame object with 2 frame\(s\)"
    with pytest.raises(UnsupportedInputError, match=pattern) as err:
        read_dicom_series(tmp_path)
    assert str(tmp_path) in str(err.value) and "dcm2niix" in str(err.value)


def test_4d_series_is_refused_as_4d_with_the_fix(tmp_path):
    """A series holding several time points at the same positions is named 4D, never stacked."""
    arr = np.arange(8 * 6 * 4, dtype=np.int16).reshape(8, 6, 4)
    for t in range(3):
        write_series(
            tmp_path, arr + t, np.diag([-1.0, -1.0, 3.0, 1.0]), "MR", series_uid="1.2.3.4.5",
            file_names=[f"t{t}_s{k}.dcm" for k in range(4)], tags={"NumberOfTemporalPositions": 3},
        )
    with pytest.raises(MissingSlicesError) as err:
        read_dicom_series(tmp_path)
    msg = str(err.value)
    assert "4D" in msg and "12 images share 4 slice positions, 3 at each" in msg
    assert "NumberOfTemporalPositions 3" in msg and "the frame option" in msg and "1.2.3.4.5" not in msg
    assert err.value.option == "frame"


def test_too_large_is_refused_before_reading_pixels(tmp_path, monkeypatch):
    _make_case(tmp_path, "axial")

    def no_pixels(*args, **kwargs):
        raise AssertionError("pixels read before the size check")

    monkeypatch.setattr(dicom_mod, "_pixels", no_pixels)
    with pytest.raises(TooLargeError, match="above the limit"):
        read_dicom_series(tmp_path, max_bytes=20 * 16 * 9 * 4 - 1)


# --------------------------------------------------------------------------------------------
# metadata


def test_pet_metadata_and_frame_of_reference(tmp_path):
    """Section 3: the SUV inputs are collected; acquisition time is the earliest over slices."""
    for_uid = generate_uid(prefix=None)
    acq_times = ["103500.000000", "103000.250000", "103100.000000", "103200.000000"]
    tags = dict(pet_tags_default(), AcquisitionTime=lambda k: acq_times[k])
    arr = np.full((6, 5, 4), 100, np.int16)
    write_series(
        tmp_path / "pt",
        arr,
        np.diag([-4.0, -4.0, 4.0, 1.0]),
        "PT",
        frame_of_reference_uid=for_uid,
        pet_tags=tags,
        slopes=[1.0, 2.0, 3.0, 4.0],
    )
    write_series(tmp_path / "ct", arr, np.diag([-1.0, -1.0, 1.0, 1.0]), "CT", frame_of_reference_uid=for_uid)
    pt, ct = read_dicom_series(tmp_path / "pt"), read_dicom_series(tmp_path / "ct")
    assert pt.modality == "PT" and pt.meta["modality"] == "PT"
    np.testing.assert_array_equal(pt.array[0, 0, :], [100.0, 200.0, 300.0, 400.0])
    assert pt.meta["frame_of_reference"] == hashlib.sha256(for_uid.encode()).hexdigest()[:16]
    assert pt.meta["frame_of_reference"] == ct.meta["frame_of_reference"]
    assert "pet" not in ct.meta
    assert pt.meta["pet"] == {
        "units": "BQML",
        "decay_correction": "START",
        "corrected_image": ["ATTN", "DECY"],
        "series_datetime": "2024-01-02T10:30:00.000000",
        "acquisition_datetime": "2024-01-02T10:30:00.250000",
        "radiopharmaceutical_start_datetime": "2024-01-02T09:30:00.000000",
        "radiopharmaceutical_start_time": "093000.000000",
        "total_dose_bq": 370e6,
        "half_life_s": 6586.2,
        "patient_weight_kg": 70.0,
        "ge_private_scan_datetime": None,
        "philips_suv_factor": None,
        "philips_activity_concentration_factor": None,
    }


def test_pet_metadata_missing_values_are_none(tmp_path):
    tags = pet_tags_default(weight_kg=None, injection=None, dose_bq=None)
    write_series(tmp_path, np.ones((4, 4, 2), np.int16), np.eye(4), "PT", pet_tags=tags)
    pet = read_dicom_series(tmp_path).meta["pet"]
    assert pet["patient_weight_kg"] is None and pet["total_dose_bq"] is None
    assert pet["radiopharmaceutical_start_datetime"] is None and pet["radiopharmaceutical_start_time"] is None
    assert pet["half_life_s"] == 6586.2


def test_lossy_flag_and_other_modalities(tmp_path):
    write_series(
        tmp_path / "a", np.ones((4, 4, 2), np.int16), np.eye(4), "OT", tags={"LossyImageCompression": "01"}
    )
    vol = read_dicom_series(tmp_path / "a")
    assert vol.meta["lossy"] is True and vol.modality is None and vol.meta["modality"] == "OT"
    write_series(tmp_path / "b", np.ones((4, 4, 2), np.int16), np.eye(4), "MR")
    assert read_dicom_series(tmp_path / "b").meta["lossy"] is False


# --------------------------------------------------------------------------------------------
# data protection


CANARY = "ZQXCANARY7731"


def test_canary_never_leaks(tmp_path, caplog, recwarn):
    """Section 5: identifying text and UIDs appear in no message, log, warning or meta value."""
    from pydicom.datadict import dictionary_VR

    # valid values (length within the VR's limit), so the writer itself stays quiet
    text = {f: CANARY if dictionary_VR(f) in ("SH", "CS") else f"{CANARY}^{f}"[:64] for f in CANARY_FIELDS}
    text["PatientBirthDate"] = "19010101"
    uids = {
        "series": generate_uid(prefix=None),
        "other": generate_uid(prefix=None),
        "for": generate_uid(prefix=None),
    }
    shape = (8, 8, 6)

    def case(name, series_uid=None, **kwargs):
        folder = tmp_path / name
        rng = np.random.default_rng(0)
        arr = rng.integers(0, 1000, shape).astype(np.int16)
        paths = write_series(
            folder,
            arr,
            np.diag([-1.0, -1.0, 2.0, 1.0]),
            "PT",
            series_uid=series_uid or uids["series"],
            frame_of_reference_uid=uids["for"],
            tags=text,
            **kwargs,
        )
        return folder, paths

    messages: list[str] = []
    metas: list[str] = []
    caplog.set_level(logging.DEBUG)

    ok, ok_paths = case("ok")
    (ok / "notes.txt").write_text("clutter")
    assert CANARY.encode() in ok_paths[0].read_bytes() and uids["series"].encode() in ok_paths[0].read_bytes()

    two, _ = case("two")
    case("two/other", series_uid=uids["other"])
    gap, gap_paths = case("gap")
    gap_paths[3].unlink()
    dup, _ = case("dup", edit=lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0, 2.0 * min(k, 4)]))
    sop_names = [f"{generate_uid(prefix=None)}.dcm" for _ in range(shape[2])]  # files named by UID
    trunc, trunc_paths = case("trunc", file_names=sop_names)
    trunc_paths[1].write_bytes(trunc_paths[1].read_bytes()[:-50])
    uneven, _ = case(
        "uneven",
        edit=lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0, 2.0 * k + (0.3 if k == 3 else 0)]),
    )
    tilted, _ = case("tilt", edit=lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0.5 * k, 2.0 * k]))
    mosaic, _ = case("mosaic", edit=lambda ds, k: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "MOSAIC"]))
    jpegls, _ = case("jpegls", edit=_fake_jpeg_ls)
    nogeo, _ = case("nogeo", edit=lambda ds, k: delattr(ds, "PixelSpacing"))

    caplog.clear()  # from here on, only what the reader logs and warns
    recwarn.clear()
    vol = read_dicom_series(ok)
    metas.append(repr(vol.meta))
    messages.append(repr(list_series(ok)) + "".join(str(s) for s in list_series(ok)))
    calls = [
        lambda: read_dicom_series(two),
        lambda: read_dicom_series(two, series="0000"),
        lambda: read_dicom_series(gap),
        lambda: read_dicom_series(dup),
        lambda: read_dicom_series(trunc),
        lambda: read_dicom_series(uneven, strict=True),
        lambda: read_dicom_series(tilted),
        lambda: read_dicom_series(mosaic),
        lambda: read_dicom_series(nogeo),
        lambda: read_dicom_series(ok, max_bytes=10),
    ]
    if not _decoder_available(JPEGLSNearLossless):
        calls.append(lambda: read_dicom_series(jpegls))
    for call in calls:
        with pytest.raises(MedfuseError) as err:
            call()
        messages.append(str(err.value))
        cause = err.value.__cause__ or err.value.__context__
        assert err.value.__suppress_context__ or cause is None or CANARY not in str(cause)
    metas.append(repr(read_dicom_series(uneven).meta))  # the resampling warning path

    assert len(messages) == len(calls) + 1
    haystacks = messages + metas + [caplog.text] + [str(w.message) for w in recwarn]
    secrets = [CANARY, *uids.values(), *(n[:-4] for n in sop_names), "19010101", "Synthetic^Phantom", "SYN0001"]
    assert any("a file in" in m for m in messages)  # the truncated, UID-named file is not named
    for hay in haystacks:
        for secret in secrets:
            assert secret not in hay, f"{secret!r} leaked into: {hay[:200]}"
    assert "skipped 1 non-DICOM" in caplog.text  # the log did capture our records
