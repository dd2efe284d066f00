"""resample_to_reference, transform matrices and files, the check helpers, and RegisterToReference."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.errors import CorruptFileError, OutputExistsError, SpaceMismatchError, UnsupportedInputError
from medfuse.phantom import rigid_matrix
from medfuse.registration import (
    decompose_linear,
    dice,
    fov_coverage,
    load_transform,
    matrix_ras,
    resample_to_reference,
    same_frame_of_reference,
    save_transform,
    transform_from_matrix_ras,
)
from medfuse.volume import Volume

# a non-trivial grid: flipped x, anisotropic voxels, off-centre origin
AFFINE = np.array([[-1.5, 0, 0, 40.0], [0, 1.2, 0, -30.0], [0, 0, 2.0, -10.0], [0, 0, 0, 1.0]])


def _ramp(shape=(24, 20, 16), affine=AFFINE) -> Volume:
    """Intensity = RAS x + 2 y + 3 z of each voxel centre: linear, so linear resampling is exact."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    values = world @ np.array([1.0, 2.0, 3.0])
    return Volume(values.reshape(shape).astype(np.float32), affine, "MR")


def test_identity_resampling_is_physical_space_resampling():
    moving = _ramp()
    target_affine = AFFINE.copy()
    target_affine[:3, 3] += [-3.0, 2.4, 4.0]  # the reference grid sits 2 voxels inside the moving one
    reference = Volume(np.zeros((16, 14, 10), np.float32), target_affine, "MR")
    out = resample_to_reference(moving, reference)
    assert out.shape == reference.shape
    np.testing.assert_array_equal(out.affine, reference.affine)
    expected = _ramp((16, 14, 10), target_affine).array
    np.testing.assert_allclose(out.array, expected, atol=1e-3)
    assert out.modality == "MR"


def test_resampling_through_a_transform_follows_the_lps_convention():
    moving = _ramp()
    reference = Volume(np.zeros((12, 12, 8), np.float32), AFFINE, "MR")
    # reference RAS point p shows the anatomy at moving point p + (-2, 1, 2) (RAS mm)
    m = rigid_matrix((0, 0, 0), (-2.0, 1.0, 2.0), (0, 0, 0))
    out = resample_to_reference(moving, reference, transform_from_matrix_ras(m))
    expected = _ramp((12, 12, 8)).array + (-2.0 * 1 + 1.0 * 2 + 2.0 * 3)
    np.testing.assert_allclose(out.array, expected, atol=1e-3)


def test_nearest_keeps_labels_and_2d_slices_resample():
    labels = Volume(np.random.default_rng(0).integers(0, 4, (20, 18, 12)).astype(np.float32), AFFINE)
    shifted = AFFINE.copy()
    shifted[:3, 3] += [0.3, 0.2, 0.1]
    out = resample_to_reference(labels, Volume(np.zeros((20, 18, 12), np.float32), shifted), interpolation="nearest")
    assert set(np.unique(out.array)) <= {0.0, 1.0, 2.0, 3.0}
    a2 = Volume(np.arange(64, dtype=np.float32).reshape(8, 8))
    same = resample_to_reference(a2, Volume(np.zeros((8, 8), np.float32)))
    np.testing.assert_array_equal(same.array, a2.array)
    with pytest.raises(SpaceMismatchError, match="2D"):
        resample_to_reference(a2, labels)


def test_matrix_round_trip_through_simpleitk():
    m = rigid_matrix((10.0, -5.0, 20.0), (3.0, -7.0, 11.0), (5.0, -17.0, 13.0))
    m[:3, :3] *= 1.03
    tx = transform_from_matrix_ras(m, center_ras=(0.0, -17.0, 13.0))
    np.testing.assert_allclose(matrix_ras(tx), m, atol=1e-9)


@pytest.mark.parametrize("suffix", [".tfm", ".h5"])
def test_save_and_load_transform(tmp_path, suffix):
    m = rigid_matrix((4.0, 0.0, -6.0), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    path = save_transform(transform_from_matrix_ras(m), tmp_path / f"t{suffix}")
    np.testing.assert_allclose(matrix_ras(load_transform(path)), m, atol=1e-9)
    with pytest.raises(OutputExistsError, match="exists already") as info:
        save_transform(transform_from_matrix_ras(m), path)
    # the override is named: as the API option (errors.OPTION, rendered per door), or as the flag before that
    assert info.value.option == "force" or "--force" in str(info.value)
    save_transform(transform_from_matrix_ras(np.eye(4)), path, force=True)
    np.testing.assert_allclose(matrix_ras(load_transform(path)), np.eye(4), atol=1e-12)


def test_transform_file_errors(tmp_path):
    with pytest.raises(UnsupportedInputError, match=".tfm"):
        save_transform(transform_from_matrix_ras(np.eye(4)), tmp_path / "t.nii.gz")
    with pytest.raises(FileNotFoundError):
        load_transform(tmp_path / "missing.tfm")
    junk = tmp_path / "junk.tfm"
    junk.write_text("not a transform\n")
    with pytest.raises(CorruptFileError, match="junk.tfm"):
        load_transform(junk)


def test_decompose_linear_reports_rotation_scale_and_shift():
    m = rigid_matrix((0.0, 0.0, 25.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    m[:3, :3] *= 1.05
    figures = decompose_linear(m, np.array([0.0, 0.0, 0.0]))
    assert figures["rotation_deg"] == pytest.approx(25.0)
    assert figures["scale_min"] == pytest.approx(1.05) and figures["scale_max"] == pytest.approx(1.05)
    assert figures["translation_mm"] == pytest.approx(0.0, abs=1e-9)
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    assert decompose_linear(flip, np.zeros(3))["rotation_deg"] == 180.0


def test_dice_coverage_and_frame_of_reference():
    a = np.zeros((10, 10, 10), bool)
    a[2:8, 2:8, 2:8] = True
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0
    vol = Volume(a.astype(np.float32), np.eye(4))
    assert fov_coverage(vol, a, vol) == 1.0
    half = Volume(np.zeros((5, 10, 10), np.float32), np.eye(4))  # covers i = 0..4 (+- half a voxel)
    assert fov_coverage(vol, a, half) == pytest.approx(0.5)
    one = Volume(np.zeros((4, 4, 4), np.float32), meta={"frame_of_reference": "abc"})
    two = Volume(np.zeros((4, 4, 4), np.float32), meta={"frame_of_reference": "abc"})
    assert same_frame_of_reference(one, two)
    assert not same_frame_of_reference(one, Volume(np.zeros((4, 4, 4), np.float32)))


def test_register_to_reference_transform_keeps_metatensor_geometry(ct_case, fast):
    import torch

    from medfuse.transforms import RegisterToReference, RegisterToReferenced, to_metatensor

    mri, ct = to_metatensor(ct_case.mri), to_metatensor(ct_case.moving)
    out = RegisterToReference(settings=fast.to_dict())(ct, mri)
    assert tuple(out.shape) == (1, *ct_case.mri.shape)
    np.testing.assert_allclose(out.affine.numpy(), ct_case.mri.affine)
    assert out.meta["modality"] == "CT"
    matrix = np.asarray(out.meta["registration"]["reference_to_moving_ras"])
    assert ct_case.tre(matrix).mean() < 1.0
    d = RegisterToReferenced(keys="ct", ref_key="mri")({"mri": mri, "ct": ct})
    np.testing.assert_allclose(d["ct"].affine.numpy(), ct_case.mri.affine)
    assert torch.isfinite(d["ct"].as_tensor()).all()
