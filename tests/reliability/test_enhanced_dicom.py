"""Enhanced multi-frame DICOM: geometry and rescale from the per-frame and shared functional groups."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medfuse.errors import UnsupportedInputError
from medfuse.io import load_volume
from medfuse.io.dicom import read_dicom_series
from medfuse.volume import ras_to_lps
from tests.io.dicom_fixtures import ENHANCED_SOP_CLASS
from tests.io.test_dicom import _make_case, _testdata


def _item(**values) -> Dataset:
    ds = Dataset()
    for k, v in values.items():
        setattr(ds, k, v)
    return ds


def _to_enhanced(paths, target, *, shuffle: bool, sop: str = ENHANCED_SOP_CLASS["MR"]):
    """One enhanced multi-frame file from a classic series: positions and rescale per frame, orientation and
    pixel measures shared; frames stored in a shuffled order when asked."""
    classic = [pydicom.dcmread(p) for p in paths]
    order = np.random.default_rng(7).permutation(len(classic)) if shuffle else np.arange(len(classic))
    first = classic[0]
    ds = pydicom.dcmread(paths[0])
    for kw in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
               "RescaleSlope", "RescaleIntercept", "RescaleType", "InstanceNumber"):
        if kw in ds:
            delattr(ds, kw)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop
    ds.NumberOfFrames = len(classic)
    ds.SharedFunctionalGroupsSequence = Sequence([_item(
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=first.ImageOrientationPatient)]),
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=first.PixelSpacing, SliceThickness=first.SliceThickness)]),
    )])
    ds.PerFrameFunctionalGroupsSequence = Sequence([
        _item(
            PlanePositionSequence=Sequence([_item(ImagePositionPatient=classic[i].ImagePositionPatient)]),
            PixelValueTransformationSequence=Sequence([_item(RescaleSlope=classic[i].RescaleSlope,
                                                             RescaleIntercept=classic[i].RescaleIntercept,
                                                             RescaleType="US")]),
        )
        for i in order
    ])
    ds.PixelData = b"".join(classic[i].PixelData for i in order)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.mark.parametrize("orientation", ["axial", "sagittal", "oblique", "reversed"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_multiframe_written_from_a_classic_series_has_its_geometry(tmp_path, orientation, shuffle):
    _, _, expected, paths = _make_case(tmp_path / "classic", orientation, modality="MR")
    path = _to_enhanced(paths, tmp_path / "enh" / "enhanced.dcm", shuffle=shuffle)
    classic = read_dicom_series(tmp_path / "classic")
    enhanced = read_dicom_series(path)
    np.testing.assert_allclose(enhanced.affine, classic.affine, atol=1e-6)
    np.testing.assert_array_equal(enhanced.array, classic.array)  # per-frame rescale applied
    assert enhanced.meta["enhanced"]["frames"] == len(paths) and enhanced.modality == "MR"
    assert load_volume(tmp_path / "enh").shape == classic.shape  # a folder holding it reads the same


def test_pydicom_enhanced_ct_frames_sit_at_their_plane_positions():
    path = _testdata("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    vol = read_dicom_series(path)
    per_frame = ds.PerFrameFunctionalGroupsSequence
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    ps = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    first = ras_to_lps(vol.affine)
    np.testing.assert_allclose(first[:3, 0] / np.linalg.norm(first[:3, 0]), iop[:3], atol=1e-6)
    np.testing.assert_allclose(first[:3, 1] / np.linalg.norm(first[:3, 1]), iop[3:], atol=1e-6)
    np.testing.assert_allclose(vol.spacing[:2], [ps[1], ps[0]], rtol=1e-6)
    origins = ras_to_lps(vol.world_coordinates(np.array([[0, 0, k] for k in range(vol.shape[2])])))
    positions = np.array([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in per_frame])
    normal = np.cross(iop[:3], iop[3:])
    np.testing.assert_allclose(origins, positions[np.argsort(positions @ normal)], atol=1e-4)
    # values: per-frame (or shared) rescale applied to each frame
    pix = ds.pixel_array
    for k, f in enumerate(per_frame):
        group = f if "PixelValueTransformationSequence" in f else shared
        t = group.PixelValueTransformationSequence[0]
        want = pix[k].astype(np.float64) * float(t.RescaleSlope) + float(t.RescaleIntercept)
        z = int(np.argsort(np.argsort(positions @ normal))[k])
        np.testing.assert_allclose(vol.array[:, :, z], want.T, rtol=1e-6)


@pytest.mark.parametrize("name", ["emri_small.dcm", "emri_small_big_endian.dcm"])
def test_enhanced_mr_without_functional_groups_is_refused_clearly(name):
    """pydicom's emri_small files are Enhanced MR stripped of their functional groups: no frame can be placed,
    so they are refused (never stacked on a made-up grid)."""
    with pytest.raises(UnsupportedInputError, match=r"enhanced multi-frame object with 10 frame\(s\).*dcm2niix"):
        read_dicom_series(_testdata(name))


def test_enhanced_frames_without_plane_position_are_refused(tmp_path):
    _, _, _, paths = _make_case(tmp_path / "classic", "axial", modality="MR", shape=(8, 8, 3))
    path = _to_enhanced(paths, tmp_path / "enh.dcm", shuffle=False)
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence
    ds.save_as(path)
    with pytest.raises(UnsupportedInputError, match="frame 2 has no ImagePositionPatient"):
        read_dicom_series(path)
