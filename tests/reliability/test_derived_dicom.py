"""`medfuse fuse --format dicom`: a derived DICOM series that reads back with the NIfTI output's geometry."""

from __future__ import annotations

import json
import re

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from medfuse.cli import main
from medfuse.io import load_volume, save_volume
from medfuse.volume import Volume, ras_to_lps
from tests.io.dicom_fixtures import write_series

UID = re.compile(r"2\.25\.\d{1,39}")


def _blob(shape, center, radii):
    g = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    return np.linalg.norm((g - center) / radii, axis=-1) < 1


@pytest.fixture(scope="module")
def dicom_pair(tmp_path_factory):
    """An oblique MR reference and a PET in one frame of reference (not registered: fast)."""
    from scipy.spatial.transform import Rotation

    root = tmp_path_factory.mktemp("pair")
    shape = (30, 26, 14)
    head = _blob(shape, (15, 13, 7), (12, 10, 6))
    mr = (head * 600 + _blob(shape, (10, 13, 7), (4, 4, 3)) * 500).astype(np.int16)
    pt = (head * 800 + _blob(shape, (20, 12, 6), (3, 3, 2)) * 6000).astype(np.int16)
    aff = np.eye(4)
    aff[:3, :3] = Rotation.from_euler("xyz", [12, -7, 20], degrees=True).as_matrix() @ np.diag([1.1, 0.9, 2.5])
    aff[:3, 3] = [-20.5, 14.25, 33.0]
    study, frame = generate_uid(prefix=None), generate_uid(prefix=None)
    write_series(root / "mr", mr, aff, "MR", study_uid=study, frame_of_reference_uid=frame)
    write_series(root / "pt", pt, aff, "PT", study_uid=study, frame_of_reference_uid=frame)
    return root, aff, study, frame


def _index_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matrix taking voxel indices of affine ``b`` to those of ``a`` (a permutation/flip)."""
    m = np.linalg.inv(a) @ b
    assert np.allclose(m, np.rint(m), atol=1e-3), m
    return np.rint(m)


def _same_geometry(vol: Volume, ref: Volume, values: bool = True):
    """World positions of every voxel agree within 1e-3 mm (after a possible reversal of the slice axis)."""
    corners = np.array([[i, j, k] for i in (0, vol.shape[0] - 1) for j in (0, vol.shape[1] - 1)
                        for k in (0, vol.shape[2] - 1)], float)
    a = {tuple(np.round(p, 3)) for p in vol.world_coordinates(corners)}
    b = {tuple(np.round(p, 3)) for p in ref.world_coordinates(corners)}
    assert vol.shape == ref.shape
    np.testing.assert_allclose(sorted(a), sorted(b), atol=1e-3)
    m = _index_map(ref.affine, vol.affine)
    return m


def test_fused_and_quantitative_series_round_trip(dicom_pair, tmp_path, capsys):
    import SimpleITK as sitk

    root, aff, study, frame = dicom_pair
    common = ["--reference", str(root / "mr"), "--moving", str(root / "pt"), "--method", "mean", "--no-qc"]
    assert main(["fuse", *common, "--out", str(tmp_path / "fused.nii.gz")]) == 0
    assert main(["fuse", *common, "--out", str(tmp_path / "dcm"), "--format", "dicom"]) == 0
    out = capsys.readouterr().out
    assert "fused: " in out and "quantitative: " in out
    nifti = load_volume(tmp_path / "fused.nii.gz")
    nifti_q = load_volume(tmp_path / "fused_moving.nii.gz")

    # medfuse reads both series back with the NIfTI output's geometry (1e-3 mm) and values
    fused = load_volume(tmp_path / "dcm")
    assert fused.rgb is not None and nifti.rgb is not None  # PET fusion is colour: RGB series
    _same_geometry(fused, nifti)
    np.testing.assert_allclose(fused.affine, nifti.affine, atol=1e-3)
    assert np.abs(fused.rgb - nifti.rgb).max() <= 0.5
    quant = load_volume(tmp_path / "dcm_moving")
    _same_geometry(quant, nifti_q)
    step = float(np.ptp(nifti_q.array)) / 65535
    assert np.abs(quant.array - nifti_q.array).max() <= step  # uint16 + rescale: one step at most
    assert quant.modality == "PT"

    # SimpleITK/GDCM: one series, same corners in LPS
    for folder, ref in ((tmp_path / "dcm", nifti), (tmp_path / "dcm_moving", nifti_q)):
        reader = sitk.ImageSeriesReader()
        ids = reader.GetGDCMSeriesIDs(str(folder))
        assert len(ids) == 1
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), ids[0]))
        img = reader.Execute()
        assert img.GetSize() == ref.shape
        corners = [(0, 0, 0), (ref.shape[0] - 1, 0, 0), (0, ref.shape[1] - 1, ref.shape[2] - 1)]
        theirs = np.array([img.TransformContinuousIndexToPhysicalPoint(c) for c in corners])
        sitk_vol_ras = ras_to_lps(theirs)  # LPS -> RAS (the flip is its own inverse)
        ours = {tuple(np.round(p, 2)) for p in ref.world_coordinates(np.array(
            [[i, j, k] for i in (0, ref.shape[0] - 1) for j in (0, ref.shape[1] - 1) for k in (0, ref.shape[2] - 1)],
            float))}
        for p in sitk_vol_ras:
            assert min(np.linalg.norm(np.array(o) - p) for o in ours) < 1e-2

    # pydicom: the DICOM attributes a viewer's series logic needs
    files = sorted((tmp_path / "dcm").glob("*.dcm"))
    assert [f.name for f in files] == [f"IM_{k:05d}.dcm" for k in range(1, len(files) + 1)]
    datasets = [pydicom.dcmread(f) for f in files]
    src_mr = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((root / "mr").glob("*.dcm"))]
    src_pt = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((root / "pt").glob("*.dcm"))]
    sops = {d.SOPInstanceUID for d in datasets}
    assert len(sops) == len(datasets) and all(UID.fullmatch(u) for u in sops)
    assert {d.SeriesInstanceUID for d in datasets} == {datasets[0].SeriesInstanceUID}
    assert UID.fullmatch(datasets[0].SeriesInstanceUID)
    assert datasets[0].SeriesInstanceUID not in {src_mr[0].SeriesInstanceUID, src_pt[0].SeriesInstanceUID}
    assert sops.isdisjoint({d.SOPInstanceUID for d in src_mr + src_pt})
    assert [int(d.InstanceNumber) for d in datasets] == list(range(1, len(datasets) + 1))
    ipp = np.array([[float(v) for v in d.ImagePositionPatient] for d in datasets])
    iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    assert np.all(np.diff(ipp @ normal) > 0)  # instance numbers follow the slice positions
    for d in datasets:
        assert d.StudyInstanceUID == study and d.FrameOfReferenceUID == frame
        assert list(d.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert "mean" in d.DerivationDescription and "medfuse" in d.DerivationDescription
        refs = {(r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID) for r in d.SourceImageSequence}
        assert refs == {(s.SOPClassUID, s.SOPInstanceUID) for s in src_mr + src_pt}
        assert d.PatientName == src_mr[0].PatientName and d.PatientID == src_mr[0].PatientID
        assert d.SamplesPerPixel == 3 and d.PhotometricInterpretation == "RGB"
        assert "SeriesDescription" in d and "synthetic" not in d.SeriesDescription  # not the input's text
    sidecar = json.loads((tmp_path / "dcm.json").read_text())
    assert sidecar["output_format"] == "dicom" and "reference series" in sidecar["dicom"]["patient_and_study"]
    assert "quantitative" in sidecar["dicom"]["series"]


def test_grey_fusion_and_non_dicom_reference_get_placeholders(tmp_path, capsys):
    rng = np.random.default_rng(0)
    shape = (20, 18, 10)
    head = _blob(shape, (10, 9, 5), (8, 7, 4))
    aff = np.diag([-1.5, 1.2, 2.0, 1.0])  # left-handed storage: slices written against the normal
    aff[:3, 3] = [10, -20, 5]
    mr = save_volume(Volume(head * 500 + rng.random(shape) * 20, aff, "MR"), tmp_path / "t1.nii.gz")
    ct = save_volume(Volume(head * 1040 - 1000 + rng.random(shape) * 5, aff, "CT"), tmp_path / "ct.nii.gz")
    assert main(["fuse", "--reference", str(mr), "--moving", str(ct), "--out", str(tmp_path / "d"), "--format",
                 "dicom", "--method", "mean", "--no-qc"]) == 0
    assert main(["fuse", "--reference", str(mr), "--moving", str(ct), "--out", str(tmp_path / "f.nii.gz"),
                 "--method", "mean", "--no-qc"]) == 0
    capsys.readouterr()
    nifti, back = load_volume(tmp_path / "f.nii.gz", check=False), load_volume(tmp_path / "d", check=False)
    assert back.rgb is None
    m = _same_geometry(back, nifti)
    idx = np.argwhere(np.ones(back.shape, bool))
    mapped = (np.c_[idx, np.ones(len(idx))] @ m.T)[:, :3].astype(int)
    np.testing.assert_allclose(back.array[tuple(idx.T)], nifti.array[tuple(mapped.T)], atol=2 / 65535)
    ds = pydicom.dcmread(next((tmp_path / "d").glob("*.dcm")))
    assert ds.PatientName == "ANONYMOUS" and ds.PatientID == "ANONYMOUS" and UID.fullmatch(ds.StudyInstanceUID)
    q = pydicom.dcmread(next((tmp_path / "d_moving").glob("*.dcm")), stop_before_pixels=True)
    assert q.StudyInstanceUID == ds.StudyInstanceUID and q.FrameOfReferenceUID == ds.FrameOfReferenceUID
    assert q.RescaleType == "HU" and q.Modality == "CT"
    sidecar = json.loads((tmp_path / "d.json").read_text())
    assert "anonymous placeholders" in sidecar["dicom"]["patient_and_study"]
    # an existing series is not replaced without --force, and --force replaces it atomically
    assert main(["fuse", "--reference", str(mr), "--moving", str(ct), "--out", str(tmp_path / "d"), "--format",
                 "dicom", "--method", "mean", "--no-qc"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
