"""One physical grid stored in another axis order is not registered: it is reordered exactly (issue 23, item 3).

The inputs are made independently of :mod:`medfuse.registration.grid`: copies of the real SPM templates
flipped or permuted with plain numpy and an affine written by hand, the real ``spm_SPECT.nii`` (stored RAS
by SPM while the T1 is LAS), and a DICOM PET series written with pydicom from the template in LPS order.
"""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.registration.grid import grid_reorder, reorder_to_reference, same_voxel_centres
from medfuse.volume import Volume


def _flipped(volume: Volume, axis: int) -> Volume:
    """The same voxels stored with ``axis`` reversed (affine rewritten so every centre stays in place)."""
    n = volume.shape[axis]
    flip = np.eye(4)
    flip[axis, axis] = -1.0
    flip[axis, 3] = n - 1.0
    return Volume(np.flip(volume.array, axis).copy(), volume.affine @ flip, volume.modality, dict(volume.meta))


def _permuted(volume: Volume, order: tuple[int, int, int]) -> Volume:
    """The same voxels stored with the array axes in ``order`` (new axis a = old axis order[a])."""
    perm = np.zeros((4, 4))
    perm[3, 3] = 1.0
    for new, old in enumerate(order):
        perm[old, new] = 1.0
    return Volume(np.transpose(volume.array, order).copy(), volume.affine @ perm, volume.modality, dict(volume.meta))


def _random_volume(shape=(7, 5, 4), seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    affine = np.array([[-2.0, 0, 0, 90], [0, 2.5, 0, -126], [0, 0, 3.0, -72], [0, 0, 0, 1]])
    return Volume(rng.random(shape).astype(np.float32), affine, "PT")


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_flipped_copy_is_reordered_back_bit_for_bit(axis):
    ref = _random_volume()
    moved = _flipped(ref, axis)
    assert not ref.same_grid(moved)
    assert same_voxel_centres(ref, moved)
    back = reorder_to_reference(moved, ref)
    np.testing.assert_array_equal(back.array, ref.array)
    np.testing.assert_array_equal(back.affine, ref.affine)


@pytest.mark.parametrize("order", [(1, 0, 2), (2, 0, 1), (2, 1, 0)])
def test_a_permuted_and_flipped_copy_is_reordered_back_bit_for_bit(order):
    ref = _random_volume()
    moved = _flipped(_permuted(ref, order), 1)
    back = reorder_to_reference(moved, ref)
    np.testing.assert_array_equal(back.array, ref.array)
    assert back.array.base is None or not np.shares_memory(back.array, moved.array)


def test_grids_that_differ_are_not_taken_as_one():
    ref = _random_volume()
    half_voxel = Volume(ref.array, ref.affine @ np.array([[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]))
    finer = Volume(ref.array, ref.affine @ np.diag([0.5, 1, 1, 1]))
    other_shape = Volume(ref.array[:-1], ref.affine)
    rotated = Volume(ref.array, np.array([[0, -2.5, 0, 0], [2.0, 0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]]))
    tiny = Volume(ref.array, ref.affine + np.array([[0, 0, 0, 5e-4]] + [[0, 0, 0, 0]] * 3))
    for other in (half_voxel, finer, other_shape, rotated):
        assert grid_reorder(ref, other) is None
    assert same_voxel_centres(ref, tiny)  # float rounding of a header is still the same grid
    assert not same_voxel_centres(ref, Volume(ref.array, ref.affine + np.array([[0, 0, 0, 0.05]] + [[0] * 4] * 3)))


# ------------------------------------------------------------------------------------------------
# real templates


@pytest.fixture(scope="module")
def templates(real_dir):
    from medfuse.io import load_volume

    folder = real_dir / "templates"
    return (load_volume(folder / "spm_T1.nii", modality="MR"), load_volume(folder / "spm_PET.nii", modality="PT"),
            load_volume(folder / "spm_SPECT.nii", modality="NM"))


def _fuse(reference, moving):
    from medfuse.pipeline import FusionOptions, fuse_volumes

    return fuse_volumes(reference, moving, FusionOptions(method="mean"))


@pytest.fixture(scope="module")
def baseline(templates):
    t1, pet, _ = templates
    return _fuse(t1, pet)


@pytest.mark.real
@pytest.mark.parametrize("copy", ["flip_x", "flip_y", "permute_201", "permute_and_flip"])
def test_a_reordered_copy_of_the_pet_template_is_not_registered_and_fuses_identically(templates, baseline, copy):
    t1, pet, _ = templates
    moving = {"flip_x": lambda: _flipped(pet, 0), "flip_y": lambda: _flipped(pet, 1),
              "permute_201": lambda: _permuted(pet, (2, 0, 1)),
              "permute_and_flip": lambda: _flipped(_permuted(pet, (1, 2, 0)), 2)}[copy]()
    assert baseline.registration is None and not baseline.alignment["registered"]
    result = _fuse(t1, moving)
    assert result.registration is None and not result.alignment["registered"]
    assert "reordered exactly" in result.alignment["reason"]
    np.testing.assert_array_equal(result.fused.affine, t1.affine)
    np.testing.assert_array_equal(result.quantitative.array, baseline.quantitative.array)
    np.testing.assert_array_equal(result.fused.array, baseline.fused.array)
    np.testing.assert_array_equal(result.fused.rgb, baseline.fused.rgb)


@pytest.mark.real
def test_the_real_spect_template_stored_ras_is_reordered_onto_the_las_t1(templates):
    """SPM stores spm_SPECT.nii RAS (big-endian int16) and spm_T1.nii LAS: one grid in two orders."""
    t1, _, spect = templates
    assert not t1.same_grid(spect)
    result = _fuse(t1, spect)
    assert result.registration is None and not result.alignment["registered"]
    np.testing.assert_array_equal(result.quantitative.array, spect.array[::-1])  # x reversed, nothing interpolated


@pytest.mark.real
def test_a_dicom_pet_series_of_the_template_is_not_registered(templates, tmp_path):
    from medfuse.io import load_volume
    from tests.io.dicom_fixtures import write_series

    t1, pet, _ = templates
    lps = _flipped(pet, 1)  # the x axis already runs to the left: flipping y gives the usual DICOM LPS order
    stored = np.round(lps.array * 100.0).astype(np.int64)
    write_series(tmp_path / "pet", stored, lps.affine, modality="PT", slopes=0.01, pet_tags={})
    dicom = load_volume(tmp_path / "pet", modality="PT")
    assert not dicom.same_grid(t1)
    result = _fuse(t1, dicom)
    assert result.registration is None and not result.alignment["registered"]
    expected = np.flip(stored, 1) * np.float32(0.01)
    np.testing.assert_allclose(result.quantitative.array, expected, rtol=1e-6, atol=1e-6)
