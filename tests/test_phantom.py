"""Tests of the digital brain phantom (medfuse/phantom.py).

Geometry checks sample the moving scan with scipy (not the phantom's SimpleITK path), so a wrong
transform direction, a swapped axis or an RAS/LPS slip shows up as anatomy in the wrong place.
"""

from __future__ import annotations

import functools
import logging

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from medfuse import phantom as ph
from medfuse.phantom import LABELS, MARKER_CENTER_MM, PhantomCase, make_case, make_volume, rigid_matrix
from medfuse.volume import Volume

# small grids keep the whole file fast; the default sizes are exercised by the `cases` fixture
SMALL = dict(mri_shape=(64, 76, 60), mri_spacing=3.0)
EXPECTED_AXES = {
    "ct": ("L", "P", "S"),
    "pet": ("L", "A", "S"),
    "spect": ("P", "I", "L"),
    "t2": ("L", "I", "P"),
    "t1": ("P", "I", "R"),
}


class _Cases(dict):
    """Default-size cases (seed 3), one per moving modality, made on first use."""

    def __missing__(self, modality: str) -> PhantomCase:
        self[modality] = make_case(modality, seed=3)
        return self[modality]


@pytest.fixture(scope="module")
def cases() -> _Cases:
    return _Cases()


def sample_in_reference(case: PhantomCase, volume: Volume, transform: np.ndarray | None = None, order: int = 1,
                        cval: float = np.nan) -> np.ndarray:
    """``volume`` (a scan in the moving world) sampled at ``transform @ world(MRI voxel)``."""
    transform = case.reference_to_moving if transform is None else transform
    index_map = np.linalg.inv(volume.affine) @ transform @ case.mri.affine
    return ndi.affine_transform(volume.array, index_map, output_shape=case.mri.shape, order=order,
                                mode="constant", cval=cval)


def labels_in_moving(case: PhantomCase) -> np.ndarray:
    """The ground-truth labels carried onto the moving grid (nearest neighbour)."""
    index_map = np.linalg.inv(case.labels.affine) @ case.moving_to_reference @ case.moving.affine
    return ndi.affine_transform(case.labels.array, index_map, output_shape=case.moving.shape, order=0, cval=0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


# --------------------------------------------------------------------------------------------------
# API, grids and determinism


@pytest.mark.parametrize("modality", ["ct", "pet", "spect", "t2", "t1"])
def test_default_case_has_documented_types_grids_and_modalities(cases, modality):
    case = cases[modality]
    dicom = {"ct": "CT", "pet": "PT", "spect": "NM", "t2": "MR", "t1": "MR"}[modality]
    assert case.modality == modality
    assert case.mri.modality == "MR" and case.moving.modality == dicom
    for vol in (case.mri, case.moving, case.labels, case.brain_mask):
        assert vol.array.dtype == np.float32 and vol.array.ndim == 3
        assert np.isfinite(vol.array).all()
    assert case.mri.shape == (128, 152, 120)
    np.testing.assert_allclose(case.mri.spacing, 1.5)
    assert nib.aff2axcodes(case.mri.affine) == ("R", "A", "S")
    assert nib.aff2axcodes(case.moving.affine) == EXPECTED_AXES[modality]
    assert not np.allclose(case.moving.affine, case.mri.affine)
    assert case.labels.same_grid(case.mri) and case.brain_mask.same_grid(case.mri)
    assert set(np.unique(case.labels.array)) == set(LABELS.values())
    assert set(np.unique(case.brain_mask.array)) == {0.0, 1.0}
    assert case.reference_to_moving.shape == (4, 4)
    rot = case.reference_to_moving[:3, :3]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    units = {"ct": "HU", "pet": "BQML", "spect": "counts", "t2": "a.u.", "t1": "a.u."}
    assert case.moving.meta["units"] == units[modality]


def test_same_seed_gives_identical_case_and_another_seed_does_not():
    a = make_case("spect", seed=5, **SMALL)
    b = make_case("spect", seed=5, **SMALL)
    c = make_case("spect", seed=6, **SMALL)
    np.testing.assert_array_equal(a.mri.array, b.mri.array)
    np.testing.assert_array_equal(a.moving.array, b.moving.array)
    np.testing.assert_array_equal(a.reference_to_moving, b.reference_to_moving)
    np.testing.assert_array_equal(a.moving.affine, b.moving.affine)
    assert not np.allclose(a.reference_to_moving, c.reference_to_moving)
    assert not np.array_equal(a.mri.array, c.mri.array)


def test_drawn_misalignment_stays_within_bounds_and_fixing_one_part_keeps_the_other():
    for seed in range(5):
        meta = make_case("spect", seed=seed, max_rotation_deg=4.0, max_translation_mm=7.0, noise=False, **SMALL).meta
        assert np.all(np.abs(meta["rotation_deg"]) <= 4.0) and np.all(np.abs(meta["translation_mm"]) <= 7.0)
    free = make_case("spect", seed=2, noise=False, **SMALL).meta
    fixed = make_case("spect", seed=2, rotation_deg=0, noise=False, **SMALL).meta
    assert fixed["rotation_deg"] == [0.0, 0.0, 0.0]
    assert fixed["translation_mm"] == free["translation_mm"]


def test_zero_misalignment_gives_identity():
    case = make_case("pet", seed=1, rotation_deg=0, translation_mm=0, noise=False, **SMALL)
    np.testing.assert_allclose(case.reference_to_moving, np.eye(4), atol=1e-12)


def test_grid_options_follow_the_documented_rule():
    case = make_case("ct", seed=0, noise=False, moving_shape=(64, 64, 24), mri_shape=(64, 76, 60))
    default_fov = np.array([240 * 1.0, 240 * 1.0, 86 * 2.5])
    assert case.moving.shape == (64, 64, 24)
    np.testing.assert_allclose(case.moving.spacing, [240 / 64, 240 / 64, default_fov[2] / 24])
    np.testing.assert_allclose(case.mri.spacing, [228 / 76] * 2 + [180 / 60])  # square in-plane pixels
    case = make_case("pet", seed=0, noise=False, moving_spacing=4.0, moving_axes="RAS", **SMALL)
    assert case.moving.shape == (60, 60, 54)
    assert nib.aff2axcodes(case.moving.affine) == ("R", "A", "S")


def test_rigid_matrix_convention():
    # +90 degrees about z turns +x (Right) into +y (Anterior): right-handed, column vectors
    np.testing.assert_allclose(rigid_matrix((0, 0, 90)) @ [1, 0, 0, 1], [0, 1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rigid_matrix((90, 0, 0)) @ [0, 1, 0, 1], [0, 0, 1, 1], atol=1e-12)
    # x is applied first: R = Rz @ Ry @ Rx
    both = rigid_matrix((90, 0, 90))
    np.testing.assert_allclose(both, rigid_matrix((0, 0, 90)) @ rigid_matrix((90, 0, 0)), atol=1e-12)
    centre = np.array([10.0, -20.0, 5.0, 1.0])
    moved = rigid_matrix((7, -3, 12), (1, 2, 3), centre[:3])
    np.testing.assert_allclose(moved @ centre, centre + [1, 2, 3, 0], atol=1e-12)


# --------------------------------------------------------------------------------------------------
# geometry: the transform direction and the marker


@pytest.mark.parametrize("modality", ["pet", "spect"])
def test_hot_marker_lands_where_reference_to_moving_sends_it(modality):
    case = make_case(modality, seed=11, noise=False, **SMALL)
    truth = case.reference_to_moving
    centre = np.r_[MARKER_CENTER_MM, 1.0]
    expected = (truth @ centre)[:3]
    wrong = (np.linalg.inv(truth) @ centre)[:3]
    assert np.linalg.norm(expected - wrong) > 15.0  # the case is misaligned enough to tell them apart
    peak = np.unravel_index(np.argmax(case.moving.array), case.moving.shape)  # the hottest voxel anywhere
    found = case.moving.world_coordinates(np.array(peak))[0]
    assert np.linalg.norm(found - expected) <= 0.75 * np.linalg.norm(case.moving.spacing)


@pytest.mark.parametrize("modality", ["ct", "pet", "spect", "t2", "t1"])
def test_moving_scan_resampled_with_the_truth_matches_the_reference_anatomy(cases, modality):
    case = cases[modality]
    labels = case.labels.array
    right = sample_in_reference(case, case.moving)
    wrong = sample_in_reference(case, case.moving, np.linalg.inv(case.reference_to_moving))
    head = labels > 0
    # the same contrast rendered straight onto the MRI grid, without noise: what `right` must look like
    ideal = make_volume(modality, affine=case.mri.affine, shape=case.mri.shape, noise=False).array

    def corr(a):
        ok = np.isfinite(a) & head
        return np.corrcoef(a[ok], ideal[ok])[0, 1]

    assert corr(right) > 0.85
    assert corr(wrong) < corr(right) - 0.2


def test_ct_bone_overlaps_the_skull_label_only_with_the_right_direction(cases):
    case = cases["ct"]
    skull = case.labels.array == LABELS["skull"]
    right = sample_in_reference(case, case.moving, cval=-1000.0) > 500.0
    wrong = sample_in_reference(case, case.moving, np.linalg.inv(case.reference_to_moving), cval=-1000.0) > 500.0
    assert dice(right, skull) > 0.7
    assert dice(wrong, skull) < 0.5


def test_marker_is_in_the_left_hemisphere_at_negative_ras_x(cases):
    case = cases["pet"]
    marker = np.argwhere(case.labels.array == LABELS["marker"])
    centroid = case.mri.world_coordinates(marker).mean(axis=0)
    assert centroid[0] < -20.0  # RAS+: x grows toward the patient's Right, so Left is x < 0
    np.testing.assert_allclose(centroid, MARKER_CENTER_MM, atol=1.0)
    np.testing.assert_allclose(case.marker_center_mm, MARKER_CENTER_MM)
    assert len(marker) * 1.5**3 == pytest.approx(4 / 3 * np.pi * ph.MARKER_RADIUS_MM**3, rel=0.25)
    # the MRI shows it (T1-hypointense lesion in white matter) on the same side
    mri = case.mri.array
    lesion = ndi.binary_erosion(case.labels.array == LABELS["marker"])
    assert np.median(mri[lesion]) < 0.6 * np.median(mri[case.labels.array == LABELS["wm"]])
    assert np.all(case.brain_mask.array[case.labels.array == LABELS["marker"]] == 1)


def test_marker_false_removes_the_lesion_everywhere():
    case = make_case("pet", seed=0, marker=False, noise=False, **SMALL)
    assert LABELS["marker"] not in np.unique(case.labels.array)
    assert case.marker_center_mm is None
    with_marker = make_case("pet", seed=0, noise=False, **SMALL)
    assert case.moving.array.max() < 0.7 * with_marker.moving.array.max()


def test_left_right_structure_in_the_brain_mask_is_consistent(cases):
    """The template is symmetric: the brain mask's centroid lies on the midline (x ~ 0)."""
    case = cases["pet"]
    centroid = case.mri.world_coordinates(np.argwhere(case.brain_mask.array > 0)).mean(axis=0)
    assert abs(centroid[0]) < 2.0


# --------------------------------------------------------------------------------------------------
# contrasts


@functools.lru_cache(maxsize=None)
def _model_rendering(modality: str) -> np.ndarray:
    anat = ph.anatomy.load_anatomy("auto")
    rendered = make_volume(modality, affine=anat.affine, shape=anat.labels.shape, noise=False, blur=False, marker=False)
    return rendered.array


def _pure_tissue_values(modality: str, tissue: str) -> np.ndarray:
    """The noiseless, unblurred rendering on the model's own 1 mm grid, in >= 95 % pure voxels."""
    anat = ph.anatomy.load_anatomy("auto")
    return _model_rendering(modality)[anat.fractions[tissue] >= 0.95 * 255]


def test_pet_gray_matter_uptake_is_three_to_four_times_white_matter(cases):
    ratio = np.median(_pure_tissue_values("pet", "gm")) / np.median(_pure_tissue_values("pet", "wm"))
    assert 3.0 <= ratio <= 4.0
    # in the blurred, noisy scan partial volume lowers the measured ratio, but deep gray matter stays hot
    case = cases["pet"]
    moving_labels = labels_in_moving(case)
    pet = case.moving.array
    gm = ndi.binary_erosion(moving_labels == LABELS["gm"])
    wm = ndi.binary_erosion(moving_labels == LABELS["wm"], iterations=2)
    assert 1.8 < np.median(pet[gm]) / np.median(pet[wm]) < 4.0
    assert 5000 < np.median(pet[wm]) < 20000  # Bq/mL-like values
    assert case.moving.meta["suvbw_factor"] * 42000 == pytest.approx(7.95, rel=0.01)


def test_ct_hounsfield_units_by_tissue(cases):
    for tissue, (lo, hi) in {"csf": (5, 15), "wm": (25, 30), "gm": (35, 45)}.items():
        value = np.median(_pure_tissue_values("ct", tissue))
        assert lo <= value <= hi, (tissue, value)
    bone = np.median(_pure_tissue_values("ct", "bone"))
    marrow = np.median(_pure_tissue_values("ct", "marrow"))
    assert 700 <= marrow < bone and bone >= 1500
    ct = cases["ct"].moving.array
    assert ct.min() >= -1024 and np.median(ct) == pytest.approx(-1000, abs=15)  # mostly air
    assert np.percentile(ct, 99.9) > 1000  # the skull


def test_spect_is_blurrier_and_noisier_than_pet(cases):
    noise = {}
    for modality in ("pet", "spect"):
        case = cases[modality]
        clean = make_volume(modality, affine=case.moving.affine, shape=case.moving.shape,
                            reference_to_scan=case.reference_to_moving, noise=False).array
        wm = ndi.binary_erosion(labels_in_moving(case) == LABELS["wm"], iterations=1)
        noise[modality] = np.std(case.moving.array[wm] - clean[wm]) / np.mean(clean[wm])
        assert 0.03 < noise[modality] < 0.4
    assert noise["spect"] > 1.3 * noise["pet"]
    # blur: the 6 mm-radius hot marker loses more of its peak in SPECT (~9 mm FWHM) than in PET (~5.5 mm)
    peak = {}
    for modality in ("pet", "spect"):
        case = make_case(modality, seed=0, noise=False, **SMALL)
        sharp = make_case(modality, seed=0, noise=False, blur=False, **SMALL)
        peak[modality] = case.moving.array.max() / sharp.moving.array.max()
    assert peak["spect"] < peak["pet"] < 1.0


def test_mri_contrasts_t1_and_t2(cases):
    t1 = {tissue: np.median(_pure_tissue_values("t1", tissue)) for tissue in ("csf", "gm", "wm")}
    t2 = {tissue: np.median(_pure_tissue_values("t2", tissue)) for tissue in ("csf", "gm", "wm")}
    assert t1["csf"] < t1["gm"] < t1["wm"]
    assert 0.65 < t1["gm"] / t1["wm"] < 0.85
    assert t2["csf"] > t2["gm"] > t2["wm"]
    case = cases["t2"]
    assert case.mri.array.min() >= 0 and case.moving.array.min() >= 0  # magnitude images (Rician noise)


# --------------------------------------------------------------------------------------------------
# TRE


def test_target_points_lie_in_the_brain_and_are_deterministic(cases):
    case = cases["pet"]
    pts = case.target_points(300, seed=4)
    assert pts.shape == (300, 3)
    np.testing.assert_array_equal(pts, case.target_points(300, seed=4))
    assert not np.allclose(pts, case.target_points(300, seed=5))
    index = np.rint(np.c_[pts, np.ones(len(pts))] @ np.linalg.inv(case.mri.affine).T)[:, :3].astype(int)
    assert np.all(case.brain_mask.array[tuple(index.T)] == 1)


def test_tre_is_zero_for_the_truth_and_exact_for_a_known_error():
    case = make_case("spect", seed=0, rotation_deg=0, translation_mm=(3.0, 4.0, 0.0), noise=False, **SMALL)
    np.testing.assert_allclose(case.tre(case.reference_to_moving), 0.0, atol=1e-9)
    np.testing.assert_allclose(case.tre(np.eye(4)), 5.0, atol=1e-9)
    pts = np.array([[0.0, 0.0, 0.0], [10.0, -20.0, 30.0]])
    assert case.tre(np.eye(4), pts).shape == (2,)
    # a rotation error about the head centre grows with the distance from it
    spun = rigid_matrix((0, 0, 2.0), (3.0, 4.0, 0.0), ph.HEAD_CENTER_MM)
    near, far = np.array(ph.HEAD_CENTER_MM), np.array(ph.HEAD_CENTER_MM) + [60.0, 0, 0]
    errors = case.tre(spun, np.stack([near, far]))
    assert errors[0] == pytest.approx(0.0, abs=1e-9)
    assert errors[1] == pytest.approx(2 * 60.0 * np.sin(np.deg2rad(1.0)), rel=1e-9)


# --------------------------------------------------------------------------------------------------
# bad inputs and the analytic fallback


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(modality="pett"), "did you mean 'pet'"),
        (dict(modality="xray"), "unknown modality 'xray'. Choose one of"),
        (dict(anatomy="mni"), "unknown anatomy 'mni'"),
        (dict(moving_shape=(64, 0, 10)), "shape must be"),
        (dict(moving_spacing=(1.0, 1.0)), "spacing must be"),
        (dict(rotation_deg=(1.0, np.nan, 0.0)), "rotation_deg must be"),
        (dict(max_translation_mm=-1.0), "max_translation_mm must be"),
        (dict(moving_axes="LPP"), "axes"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_case(**kwargs)


def test_tre_and_target_points_reject_bad_input(cases):
    case = cases["pet"]
    with pytest.raises(ValueError, match="4x4"):
        case.tre(np.eye(3))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        case.tre(np.eye(4), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="positive"):
        case.target_points(0)


def test_template_files_are_found_inside_the_installed_nilearn():
    folder = ph.template_dir()
    if folder is None:
        pytest.skip("nilearn (with its packaged MNI152 template) is not installed")
    assert (folder / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").is_file()
    assert make_case("pet", seed=0, noise=False, **SMALL).meta["anatomy"] == "mni152"


def test_missing_template_falls_back_to_the_analytic_head_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(ph.anatomy, "template_dir", lambda: None)
    with caplog.at_level(logging.WARNING, logger="medfuse.phantom"):
        case = make_case("ct", seed=1, noise=False, **SMALL)
    assert "analytic" in caplog.text
    assert case.meta["anatomy"] == "analytic"
    assert set(np.unique(case.labels.array)) == set(LABELS.values())
    skull = case.labels.array == LABELS["skull"]
    assert dice(sample_in_reference(case, case.moving, cval=-1000.0) > 500.0, skull) > 0.6
    with pytest.raises(FileNotFoundError, match="anatomy='analytic'"):
        make_case("ct", anatomy="mni152", **SMALL)


@pytest.mark.slow
def test_benchmark_sizes():
    case = make_case("ct", seed=0, mri_shape=(256, 256, 180), moving_shape=(512, 512, 120))
    assert case.mri.shape == (256, 256, 180) and case.moving.shape == (512, 512, 120)
    assert case.moving.spacing[0] < 0.5 and case.moving.spacing[2] > 1.5
    case = make_case("pet", seed=0, mri_shape=(256, 256, 180), moving_shape=(128, 128, 90))
    assert case.moving.shape == (128, 128, 90)
