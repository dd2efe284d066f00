"""Real NIfTI volumes (``../shared/data/real``, see its README) through :func:`medfuse.io.load_volume`.

Each volume must come back with nibabel's affine (1e-4) and scaled array, and the world geometry
SimpleITK reads (LPS, converted to RAS explicitly here, not with medfuse's own helpers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medfuse.io import load_volume

pytestmark = pytest.mark.real

nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")

TEMPLATES = [
    "clinical_scct.nii",
    "clinical_scct_stripped.nii",
    "spm_PET.nii",
    "spm_SPECT.nii",
    "spm_T1.nii",
    "spm_T2.nii",
    "spm_Transm.nii",
    "spm_avg152T1.nii",
    "spm_single_subj_T1.nii",
]
TCGA_NATIVE = [
    f"tcga_fg6692_native/native/TCGA-FG-6692_{s}_native.nii.gz" for s in ("t1", "t1c", "t2", "flair")
]
BRATS = [f"brats/TCGA-FG-6692/TCGA-FG-6692_{s}.nii.gz" for s in ("t1", "t1ce", "t2", "flair")]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _file(real_dir: Path, rel: str) -> Path:
    path = real_dir / rel
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def _sitk_affine_ras(path: Path) -> np.ndarray:
    """Voxel-to-RAS affine of SimpleITK's reading: LPS direction x spacing + origin, then x/y negated."""
    img = sitk.ReadImage(str(path))
    lps = np.eye(4)
    lps[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    return _LPS_TO_RAS @ lps


def _corners(shape) -> np.ndarray:
    ends = [(0, n - 1) for n in shape[:3]]
    return np.array([[i, j, k, 1.0] for i in ends[0] for j in ends[1] for k in ends[2]])


def _check_against_nibabel_and_sitk(path: Path):
    vol = load_volume(path)
    img = nib.load(path)
    expected = img.get_fdata()  # applies scl_slope / scl_inter
    assert vol.array.dtype == np.float32 and vol.shape == img.shape[:3]
    np.testing.assert_allclose(vol.affine, img.affine, atol=1e-4)
    atol = 1e-6 * max(1.0, float(np.abs(expected).max()))  # float32 rounding of the scaled values
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6, atol=atol)
    # same world position of every corner voxel as SimpleITK (LPS -> RAS done here explicitly)
    corners = _corners(vol.shape)
    np.testing.assert_allclose(corners @ vol.affine.T, corners @ _sitk_affine_ras(path).T, atol=1e-4)
    return vol, img, expected


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_matches_nibabel_and_simpleitk(real_dir, name):
    path = _file(real_dir, f"templates/{name}")
    vol, img, _ = _check_against_nibabel_and_sitk(path)
    assert vol.shape == (91, 109, 91)
    assert vol.spacing == pytest.approx([2.0, 2.0, 2.0], abs=1e-6)
    if name == "spm_SPECT.nii":  # RAS, big-endian int16, no scaling
        assert img.get_data_dtype().byteorder == ">" and img.get_data_dtype().kind == "i"
        assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    elif name != "clinical_scct_stripped.nii":  # LAS uint8 with a scale slope
        assert img.get_data_dtype() == np.uint8 and nib.aff2axcodes(vol.affine) == ("L", "A", "S")
        assert img.dataobj.slope != 1.0
        raw_max = float(img.dataobj.get_unscaled().max())
        scaled_max = raw_max * img.dataobj.slope + img.dataobj.inter
        assert float(vol.array.max()) == pytest.approx(scaled_max, rel=1e-5)


def test_spect_ras_and_las_templates_cover_the_same_grid(real_dir):
    """spm_SPECT (RAS, big-endian) and the LAS uint8 templates: same voxel centres in world space,
    and the same anatomy there (SPECT and PET perfusion correlate once put in one array order,
    better than index for index)."""
    spect = load_volume(_file(real_dir, "templates/spm_SPECT.nii"))
    pet = load_volume(_file(real_dir, "templates/spm_PET.nii"))
    t1 = load_volume(_file(real_dir, "templates/spm_T1.nii"))
    assert nib.aff2axcodes(spect.affine) != nib.aff2axcodes(pet.affine)  # stored differently
    np.testing.assert_allclose(pet.affine, t1.affine, atol=1e-4)
    assert spect.shape == pet.shape

    # voxel (i, j, k) of PET is SPECT's voxel inv(A_spect) @ A_pet @ (i, j, k): an integer index
    # map (a flip of i) that sends PET's index box onto SPECT's, so every voxel centre is shared
    to_spect = np.linalg.inv(spect.affine) @ pet.affine
    np.testing.assert_allclose(to_spect, np.round(to_spect), atol=1e-6)
    corners = _corners(pet.shape) @ to_spect.T
    box = _corners(spect.shape)
    assert sorted(map(tuple, np.round(corners[:, :3]))) == sorted(map(tuple, box[:, :3]))
    assert np.allclose(np.abs(np.linalg.det(to_spect[:3, :3])), 1.0)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in pet.shape], indexing="ij"), -1).reshape(-1, 3)
    sidx = np.round(idx @ to_spect[:3, :3].T + to_spect[:3, 3]).astype(int)
    spect_in_pet_order = spect.array[sidx[:, 0], sidx[:, 1], sidx[:, 2]].reshape(pet.shape)
    mask = (pet.array > 0.1 * pet.array.max()) | (spect_in_pet_order > 0.1 * spect.array.max())
    r_world = np.corrcoef(pet.array[mask], spect_in_pet_order[mask])[0, 1]
    r_naive = np.corrcoef(pet.array[mask], spect.array[mask])[0, 1]  # same index, ignoring geometry
    assert r_world > 0.8 and r_world > r_naive


@pytest.mark.parametrize("rel", TCGA_NATIVE)
def test_tcga_native_scans_match_nibabel_and_simpleitk(real_dir, rel):
    vol, img, _ = _check_against_nibabel_and_sitk(_file(real_dir, rel))
    assert vol.shape == img.shape[:3]
    assert vol.spacing == pytest.approx(img.header.get_zooms()[:3], rel=1e-5)


@pytest.mark.parametrize("rel", BRATS)
def test_brats_case_matches_nibabel_and_keeps_negative_values(real_dir, rel):
    vol, img, expected = _check_against_nibabel_and_sitk(_file(real_dir, rel))
    assert vol.shape == (240, 240, 155)
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")  # stored LPS
    assert float(vol.array.min()) == float(expected.min()) < 0  # small negatives kept as they are
