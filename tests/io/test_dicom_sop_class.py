"""The SOP class decides whether a DICOM object is enhanced, never the mere presence of a sequence (issue 23 item 2).

ADNI's GE 1.5 T MP-RAGE downloads are classic *MR Image Storage* (1.2.840.10008.5.1.4.1.1.4) with complete
top-level ImagePositionPatient/ImageOrientationPatient, plus a PerFrameFunctionalGroupsSequence holding one
**empty** item (no SharedFunctionalGroupsSequence, no NumberOfFrames). dcm2niix reads them as a plain 3D
sagittal volume; medfuse refused them as "an enhanced multi-frame object with 1 frame(s) whose frame 1 has no
ImagePositionPatient". The series here is a real T1 (SPM's single-subject T1) written as sagittal slices by
pydicom; the expected geometry is computed from the written files' own IPP/IOP/PixelSpacing (read back with
pydicom, not medfuse), and compared with dcm2niix's conversion where dcm2niix is installed.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from medfuse.io import load_volume
from tests.io.dicom_fixtures import ENHANCED_SOP_CLASS, SOP_CLASS, write_series

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _sagittal_t1(real_dir):
    """The single-subject T1 reoriented to a GE sagittal acquisition: columns A->P, rows S->I, slices R->L."""
    import nibabel as nib

    img = nib.load(real_dir / "templates" / "spm_single_subj_T1.nii")
    img = nib.Nifti1Image(np.asarray(img.dataobj), img.affine)
    target = nib.orientations.axcodes2ornt(("P", "I", "L"))
    sag = img.as_reoriented(nib.orientations.ornt_transform(nib.orientations.io_orientation(img.affine), target))
    return np.round(np.asarray(sag.dataobj)).astype(np.int32), sag.affine


def _adni_edit(number_of_frames=None):
    def edit(ds, k):
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        ds.MagneticFieldStrength = "1.5"
        ds.PerFrameFunctionalGroupsSequence = DicomSequence([Dataset()])  # one EMPTY item
        if number_of_frames is not None:
            ds.NumberOfFrames = number_of_frames
    return edit


def _independent_affine(folder):
    """Voxel-to-RAS affine and (X, Y, Z) array computed from the files alone (pydicom, PS3.3 C.7.6.2.1.1)."""
    dss = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
    ipp = np.array([np.array(d.ImagePositionPatient, dtype=float) for d in dss])
    row_spacing, col_spacing = (float(v) for v in dss[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing
    lps[:3, 1] = iop[3:] * row_spacing
    lps[:3, 2] = (ipp[-1] - ipp[0]) / (len(dss) - 1)
    lps[:3, 3] = ipp[0]
    array = np.stack([d.pixel_array.T * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss], axis=-1)
    return LPS @ lps, array


@pytest.mark.parametrize("number_of_frames", [None, 1])
def test_adni_classic_mr_with_an_empty_functional_group_item_reads_as_a_3d_sagittal_volume(
        tmp_path, real_dir, number_of_frames):
    array, affine = _sagittal_t1(real_dir)
    paths = write_series(tmp_path / "adni", array, affine, modality="MR", edit=_adni_edit(number_of_frames),
                         series_description="MP-RAGE")
    ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
    assert ds.SOPClassUID == SOP_CLASS["MR"] and len(ds.PerFrameFunctionalGroupsSequence) == 1
    assert len(ds.PerFrameFunctionalGroupsSequence[0]) == 0 and "SharedFunctionalGroupsSequence" not in ds

    vol = load_volume(tmp_path / "adni")  # refused as enhanced multi-frame before the fix
    expected_affine, expected_array = _independent_affine(tmp_path / "adni")
    np.testing.assert_allclose(vol.affine, expected_affine, atol=1e-4)
    np.testing.assert_allclose(vol.array, expected_array, atol=1e-3)
    # the grid the slices were written from (P, I, L), stored along +n (slice order reversed: right-handed)
    flip_k = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, array.shape[2] - 1], [0, 0, 0, 1]], dtype=float)
    np.testing.assert_allclose(vol.affine @ flip_k, affine, atol=1e-4)
    np.testing.assert_allclose(vol.array[..., ::-1], array, atol=1e-3)
    assert vol.modality == "MR" and vol.shape == array.shape and "enhanced" not in vol.meta


def test_adni_series_reads_like_its_dcm2niix_conversion(tmp_path, real_dir):
    """Same voxels at the same world positions as dcm2niix's NIfTI (its storage order may differ)."""
    import nibabel as nib

    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    array, affine = _sagittal_t1(real_dir)
    write_series(tmp_path / "adni", array, affine, modality="MR", edit=_adni_edit())
    (tmp_path / "nii").mkdir()
    subprocess.run(["dcm2niix", "-z", "n", "-f", "t1", "-o", str(tmp_path / "nii"), str(tmp_path / "adni")],
                   check=True, capture_output=True, timeout=300)
    theirs = nib.load(next((tmp_path / "nii").glob("t1*.nii")))
    ours = load_volume(tmp_path / "adni")
    ornt = nib.orientations.ornt_transform(nib.orientations.io_orientation(theirs.affine),
                                           nib.orientations.io_orientation(ours.affine))
    theirs = theirs.as_reoriented(ornt)
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    np.testing.assert_allclose(ours.array, np.asarray(theirs.dataobj, dtype=np.float32), atol=1e-3)


def test_functional_groups_are_used_where_they_hold_the_geometry(tmp_path):
    """The sweep: a classic SOP class without top-level position/orientation whose per-frame groups hold them is
    placed by the groups; an enhanced SOP class whose groups hold no position but whose one frame has a top-level
    one is placed by it; an empty Modality LUT item means no LUT (the rescale applies, as dcm2niix reads it)."""
    arr = (np.arange(6 * 5 * 4).reshape(6, 5, 4) * 3).astype(np.int32)
    aff = np.array([[0, 0, -1.5, 20.0], [-1.2, 0, 0, 10.0], [0, -1.1, 0, 30.0], [0, 0, 0, 1.0]])
    write_series(tmp_path / "classic", arr, aff, modality="MR", slopes=2.0, intercepts=-5.0)
    reference = load_volume(tmp_path / "classic")

    def groups_only(ds, k):
        item = Dataset()
        pos, ori, pix = Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = ds.ImagePositionPatient
        ori.ImageOrientationPatient = ds.ImageOrientationPatient
        pix.PixelSpacing = ds.PixelSpacing
        item.PlanePositionSequence = DicomSequence([pos])
        item.PlaneOrientationSequence = DicomSequence([ori])
        item.PixelMeasuresSequence = DicomSequence([pix])
        ds.PerFrameFunctionalGroupsSequence = DicomSequence([item])
        del ds.ImagePositionPatient, ds.ImageOrientationPatient

    def enhanced_one_frame(ds, k):
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_SOP_CLASS["MR"]
        ds.NumberOfFrames = 1
        ds.PerFrameFunctionalGroupsSequence = DicomSequence([Dataset()])

    def empty_lut_item(ds, k):
        ds.ModalityLUTSequence = DicomSequence([Dataset()])

    for name, edit in (("groups", groups_only), ("enhanced", enhanced_one_frame), ("lut", empty_lut_item)):
        write_series(tmp_path / name, arr, aff, modality="MR", slopes=2.0, intercepts=-5.0, edit=edit)
        vol = load_volume(tmp_path / name)
        np.testing.assert_allclose(vol.affine, reference.affine, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(vol.array, reference.array, atol=1e-4, err_msg=name)
