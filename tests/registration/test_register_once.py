"""register() does each piece of work once, with the same numbers (issue 26: the registration row's time).

- no metric evaluation is repeated (the result's metric is evaluated once, by register, and handed to the
  optimum check);
- the head Dice's field of view comes out of the one resampling of the moving head mask, and equals the
  former nearest-neighbour resampling of a volume of ones (on a real scan whose field of view cuts the head);
- the metric's mask is the dilated reference head mask as SimpleITK uint8;
- the working copies and head masks of a real pair are pinned by their SHA-256 (a speed change that alters
  them changes every number of the registration).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from medfuse.phantom import HEAD_CENTER_MM, rigid_matrix
from medfuse.registration import RegistrationSettings, register
from medfuse.registration.checks import dice, head_dice
from medfuse.registration.problem import Problem, rigid_from_ras, to_lps
from medfuse.registration.resample import resample_to_reference

_PROBE = np.array([[0.0, 0.0, 0.0], [50.0, 0.0, 0.0], [0.0, 50.0, 0.0], [0.0, 0.0, 50.0]])


def _key(tx, coarse: bool, level: int) -> tuple:
    """What identifies a metric evaluation: where the transform sends four points, and which copies."""
    return tuple(np.round([tx.TransformPoint(tuple(q)) for q in _PROBE], 9).ravel()) + (bool(coarse), int(level))


def test_no_metric_evaluation_is_repeated(pet_case, fast, monkeypatch):
    """The result's metric on the working copies was evaluated twice (register's metric_after, then again in
    check_optimum): every (transform, copies) pair is now evaluated once, the result's exactly once."""
    keys = []
    original = Problem.metric

    def spy(self, tx, coarse=False, level=1):
        keys.append(_key(tx, coarse, level))
        return original(self, tx, coarse=coarse, level=level)

    monkeypatch.setattr(Problem, "metric", spy)
    result = register(pet_case.mri, pet_case.moving, settings=fast, checks=False)
    assert len(keys) > 50  # initialization, orientation, basin and rivals all ran
    assert keys.count(_key(result.transform, False, 1)) == 1
    assert len(set(keys)) == len(keys)
    assert np.isfinite(result.metric_after) and result.quality["basin_rise"] > 0.08


def _former_head_dice(p: Problem, tx) -> float:
    """head_dice as it was: two resamplings (the mask linearly, a volume of ones by nearest neighbour)."""
    moved = resample_to_reference(p.mov.with_array(p.mov_mask.astype(np.float32)), p.ref, tx, "linear",
                                  default_value=0.0).array > 0.5
    fov = resample_to_reference(p.mov.with_array(np.ones(p.mov.shape, np.float32)), p.ref, tx, "nearest",
                                default_value=0.0).array > 0.5
    return dice(p.ref_mask, moved, region=fov), fov


def _check_fov_cut_dice(p: Problem, matrix_ras: np.ndarray) -> None:
    tx = rigid_from_ras(matrix_ras, to_lps(HEAD_CENTER_MM))
    former, fov = _former_head_dice(p, tx)
    # the field of view cuts the head, so the region matters
    assert 0.05 < fov[p.ref_mask].mean() < 0.95
    assert head_dice(p, tx) == former
    moved = resample_to_reference(p.mov.with_array(p.mov_mask.astype(np.float32)), p.ref, tx, "linear",
                                  default_value=-1.0).array
    np.testing.assert_array_equal(moved > -0.5, fov)


def test_head_dice_fov_from_one_resampling_phantom(pet_case, fast):
    """A PET phantom shifted 70 mm and turned 10 degrees: part of the reference head is outside its field of view."""
    p = Problem(pet_case.mri, pet_case.moving, fast)
    _check_fov_cut_dice(p, pet_case.reference_to_moving @ rigid_matrix((10, 0, 0), (0, 0, 70), HEAD_CENTER_MM))


def test_head_dice_fov_from_one_resampling_real(real_dir):
    """The real TCGA native T2 (0.9 x 0.9 x 5.5 mm, 8-13 degrees from the T1c) as it lies, shifted 60 mm along
    its slices' normal: the dice and the field of view are those of the former two resamplings, bit for bit."""
    from medfuse.io import load_volume

    folder = real_dir / "tcga_fg6692_native" / "native"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    t1c = load_volume(folder / "TCGA-FG-6692_t1c_native.nii.gz")
    t2 = load_volume(folder / "TCGA-FG-6692_t2_native.nii.gz")
    p = Problem(t1c, t2, RegistrationSettings())
    shift = np.eye(4)
    shift[:3, 3] = 60.0 * t2.affine[:3, 2] / np.linalg.norm(t2.affine[:3, 2])
    _check_fov_cut_dice(p, shift)


def test_fixed_mask_is_the_dilated_head_mask(ct_case, fast):
    """The metric samples inside the reference head mask dilated by about 6 mm, as a 0/1 SimpleITK uint8 image."""
    import SimpleITK as sitk
    from scipy import ndimage

    p = Problem(ct_case.mri, ct_case.moving, fast)
    assert p.fixed_mask.GetPixelID() == sitk.sitkUInt8
    expected = ndimage.binary_dilation(p.ref_mask, iterations=2).astype(np.uint8)  # 6 mm at 3 mm
    np.testing.assert_array_equal(sitk.GetArrayFromImage(p.fixed_mask).T, expected)
    assert p.fixed_mask.GetOrigin() == p.fixed.GetOrigin()
    assert p.fixed_mask.GetDirection() == p.fixed.GetDirection()


def _sha(array: np.ndarray) -> str:
    a = np.asarray(array)
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str((a.dtype, a.shape)).encode()).hexdigest()[:16]


#: SHA-256 (first 16 hex digits) of the working copies and head masks of TCGA native T1c (reference) and T2
#: (moving) with the default settings, made by the code before the issue-26 cuts (C order, dtype and shape included)
_TCGA_PINS = {"ref": "c24e0662fd49d36e", "mov": "cd872f03f07a2959", "ref_mask": "0ff8e95fc2ed68a0",
              "mov_mask": "b76706bf34229197", "fixed": "a4acaec5decd8817", "moving": "b2029a2a73a89795",
              "fixed_mask": "d47f61f51e1fae10"}


def test_working_copies_of_a_real_pair_are_pinned(real_dir):
    import SimpleITK as sitk

    from medfuse.io import load_volume

    folder = real_dir / "tcga_fg6692_native" / "native"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    p = Problem(load_volume(folder / "TCGA-FG-6692_t1c_native.nii.gz"),
                load_volume(folder / "TCGA-FG-6692_t2_native.nii.gz"), RegistrationSettings())
    found = {"ref": _sha(p.ref.array), "mov": _sha(p.mov.array), "ref_mask": _sha(p.ref_mask),
             "mov_mask": _sha(p.mov_mask), "fixed": _sha(sitk.GetArrayFromImage(p.fixed)),
             "moving": _sha(sitk.GetArrayFromImage(p.moving)), "fixed_mask": _sha(sitk.GetArrayFromImage(p.fixed_mask))}
    assert found == _TCGA_PINS


def test_head_centroid_is_the_mean_of_every_voxel_index(real_dir):
    """The centroid from per-slab counts equals the mean of np.argwhere to the last bit: the real T1c's head mask,
    a mask touching the array's edges, one voxel, and an empty mask (the grid's centre)."""
    from medfuse.intensity.mask import head_mask
    from medfuse.io import load_volume
    from medfuse.registration.checks import head_centroid

    path = real_dir / "tcga_fg6692_native" / "native" / "TCGA-FG-6692_t1c_native.nii.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    volume = load_volume(path)
    rng = np.random.default_rng(0)
    edge = np.zeros(volume.shape, bool)
    edge[:7, -5:, :] = True
    one = np.zeros(volume.shape, bool)
    one[3, 200, 11] = True
    for mask in (head_mask(volume), edge, one, rng.random(volume.shape) < 0.3):
        expected = volume.world_coordinates(np.argwhere(mask).mean(axis=0, keepdims=True))[0]
        assert head_centroid(volume, mask).tobytes() == expected.tobytes()
    centre = volume.world_coordinates(np.array([[(n - 1) / 2.0 for n in volume.shape]]))[0]
    assert head_centroid(volume, np.zeros(volume.shape, bool)).tobytes() == centre.tobytes()


def test_resampled_array_is_the_filter_output_without_a_copy(pet_case):
    """The resampled array is a writable view of SimpleITK's output (kept alive by the array), not a copy: no
    numpy allocation as large as the output (tracemalloc sees numpy's allocations, not ITK's), the values of
    SimpleITK's own copy, and it stays valid after the image is out of scope."""
    import gc
    import tracemalloc

    import SimpleITK as sitk

    from medfuse.io.sitk import to_sitk
    from medfuse.volume import Volume, lps_from_affine

    pet = pet_case.moving
    fine = pet_case.mri.affine.copy()
    fine[:3, :3] /= 3.0  # the MRI's field of view at a third of its voxel size: an output ~20x the PET
    mri = Volume(np.zeros(tuple(3 * n for n in pet_case.mri.shape), np.float32), fine, "MR")
    tx = rigid_from_ras(pet_case.reference_to_moving, to_lps(HEAD_CENTER_MM))
    tracemalloc.start()
    try:
        out = resample_to_reference(pet, mri, tx, "linear", default_value=0.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.array.nbytes > 20_000_000
    assert peak < out.array.nbytes / 2
    gc.collect()
    # SimpleITK's own resampling, copied out as before
    origin, spacing, direction = lps_from_affine(mri.affine, ndim=3)
    expected = sitk.GetArrayFromImage(sitk.Resample(to_sitk(pet), [int(n) for n in mri.shape], tx, sitk.sitkLinear,
                                                    origin, spacing, direction, 0.0, sitk.sitkFloat32)).T
    np.testing.assert_array_equal(out.array, expected)
    assert out.array.flags.writeable and out.array.flags.f_contiguous
    out.array[out.array > 0] = 0.0  # its own buffer: writing works and touches nothing else
    again = resample_to_reference(pet, mri, tx, "linear", default_value=0.0)
    np.testing.assert_array_equal(again.array, expected)
    assert expected.max() > 0
