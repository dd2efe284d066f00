"""register(): accuracy on a phantom, geometry of the output, and every self-check's error."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medfuse.errors import RegistrationError, UnsupportedInputError
from medfuse.phantom import HEAD_CENTER_MM, rigid_matrix
from medfuse.registration import RegistrationSettings, matrix_ras, register
from medfuse.volume import Volume


def _moved(volume: Volume, matrix: np.ndarray, name: str = "moved") -> Volume:
    """The same pixels with the header moved by ``matrix`` (world -> world, RAS)."""
    return Volume(volume.array, matrix @ volume.affine, volume.modality, dict(volume.meta), name)


def test_rigid_ct_recovers_known_motion_and_keeps_reference_geometry(ct_case, fast):
    result = register(ct_case.mri, ct_case.moving, settings=fast)
    tre = ct_case.tre(result.reference_to_moving_ras)
    assert tre.mean() < 1.0 and tre.max() < 2.0
    out = result.resampled
    assert out.shape == ct_case.mri.shape
    np.testing.assert_array_equal(out.affine, ct_case.mri.affine)
    assert out.array.dtype == np.float32 and out.modality == "CT"
    assert result.transform_type == "rigid" and not result.check_failures
    assert result.metric_after < result.metric_before
    # the SimpleITK transform and the RAS matrix describe the same mapping
    np.testing.assert_allclose(matrix_ras(result.transform), result.reference_to_moving_ras, atol=1e-9)
    points = ct_case.target_points(5)
    expected = points @ result.reference_to_moving_ras[:3, :3].T + result.reference_to_moving_ras[:3, 3]
    np.testing.assert_allclose(result.transform_points(points), expected, atol=1e-6)
    assert out.meta["registration"]["transform_type"] == "rigid"


def test_affine_pet(pet_case, fast):
    result = register(pet_case.mri, pet_case.moving, transform="affine", settings=fast)
    assert result.transform_type == "affine"
    assert pet_case.tre(result.reference_to_moving_ras).mean() < 2.0
    assert 0.9 <= result.scales[0] <= result.scales[1] <= 1.1
    np.testing.assert_array_equal(result.resampled.affine, pet_case.mri.affine)


def test_label_map_is_resampled_with_nearest_neighbour(aligned_ct_case, fast):
    hu = aligned_ct_case.moving.array
    labels = aligned_ct_case.moving.with_array(np.where(hu > 500, 2.0, np.where(hu > -500, 1.0, 0.0)), modality=None)
    result = register(aligned_ct_case.mri, labels, label_map=True, settings=fast)
    assert set(np.unique(result.resampled.array)) <= {0.0, 1.0, 2.0}


def test_blank_moving_scan_raises_registration_error(ct_case, fast):
    blank = ct_case.moving.with_array(np.zeros(ct_case.moving.shape, np.float32))
    with pytest.raises(RegistrationError, match="moving scan is blank") as info:
        register(ct_case.mri, blank, settings=fast)
    assert info.value.role == "moving" and info.value.option is None  # no override for a blank scan


def test_non_overlapping_moving_scan_raises_before_registering(ct_case, fast):
    far = _moved(ct_case.moving, rigid_matrix((0, 0, 0), (0, 0, 400.0)), "far.nii.gz")
    expected = r"far.nii.gz -> .*only 0% of the reference head lies inside the moving scan's field"
    with pytest.raises(RegistrationError, match=expected):
        register(ct_case.mri, far, settings=fast)


@pytest.mark.parametrize("rotation", [(90, 0, 0), (0, 0, 90), (0, 0, 180)])
def test_header_off_by_a_large_rotation_registers_within_goal_or_raises(aligned_ct_case, rotation, fast):
    wrong = rigid_matrix(rotation, (0, 0, 0), HEAD_CENTER_MM)
    bad = _moved(aligned_ct_case.moving, wrong, "rotated-header")
    try:
        result = register(aligned_ct_case.mri, bad, settings=fast)
    except RegistrationError as err:
        assert "rotation" in str(err) and "rotated-header" in str(err)
    else:  # registered: must then be within the CT goal of the truth (which includes the header error)
        truth = wrong @ aligned_ct_case.reference_to_moving
        est = result.reference_to_moving_ras
        pts = aligned_ct_case.target_points(100)
        err = np.linalg.norm(pts @ (est - truth)[:3, :3].T + (est - truth)[:3, 3], axis=1)
        assert err.mean() <= 1.0


def test_implausible_rotation_raises(ct_case):
    strict = RegistrationSettings(working_spacing_mm=3.0, max_rotation_deg=5.0)  # the case is rotated ~14 degrees
    with pytest.raises(RegistrationError, match=r"implausible result: rotation of \d+\.\d degrees \(limit 5\)"):
        register(ct_case.mri, ct_case.moving, settings=strict)


def test_failed_check_raises_and_checks_off_overrides_it(ct_case, caplog):
    strict = RegistrationSettings(working_spacing_mm=3.0, max_rotation_deg=5.0)  # the case is rotated ~14 degrees
    with pytest.raises(RegistrationError, match=r"override the check \(the accept_registration option\)") as info:
        register(ct_case.mri, ct_case.moving, settings=strict)
    # the option is an attribute a door renders in its own words (the command line: its flag)
    assert info.value.option == "accept_registration"
    flag = info.value.render(lambda option, role: "--" + option.replace("_", "-"))
    assert "override the check (--accept-registration)" in flag and "{option}" not in flag
    with caplog.at_level(logging.WARNING, logger="medfuse"):
        result = register(ct_case.mri, ct_case.moving, settings=strict, checks=False)
    assert len(result.check_failures) == 1 and "implausible result: rotation" in result.check_failures[0]
    assert "the accept_registration option" in result.check_failures[0]
    # messages are what was done, in words: the failure is kept once, in check_failures
    assert not any("implausible" in m or "CHECK FAILED" in m for m in result.messages)
    assert "implausible result: rotation" in caplog.text and "the accept_registration option" in caplog.text
    assert "{option}" not in caplog.text and "--" not in caplog.text
    summary = result.summary()
    assert summary["checks"] == "overridden" and summary["check_failures"] == result.check_failures
    assert result.resampled.meta["registration"]["checks"] == "overridden"
    assert ct_case.tre(result.reference_to_moving_ras).mean() < 1.0


def test_checks_enforced_result_reports_quality_and_no_failures(aligned_ct_case, fast):
    result = register(aligned_ct_case.mri, aligned_ct_case.moving, settings=fast)
    summary = result.summary()
    assert summary["checks"] == "enforced" and summary["check_failures"] == []
    assert 0.0 < result.dice <= 1.0  # reported, no longer a refusal criterion
    assert result.quality["basin_rise"] > 0.05
    assert not result.quality["rival_gain"] > 0.0  # nan (no far start worth refining) or worse than the result


def test_pre_start_refusal_becomes_a_warning_when_overridden(ct_case, fast):
    far = _moved(ct_case.moving, rigid_matrix((0, 0, 0), (0, 0, 400.0)), "far.nii.gz")
    result = register(ct_case.mri, far, settings=fast, checks=False)
    assert any("field of view" in m for m in result.check_failures)
    assert result.summary()["checks"] == "overridden"


def test_non_head_object_is_refused_and_can_be_overridden(aligned_ct_case, fast):
    # a CT of a water cylinder with inserts, correct headers: not a head
    ct = aligned_ct_case.moving
    world = ct.world_coordinates(np.indices(ct.shape).reshape(3, -1).T.astype(np.float64))
    d = world - world.mean(axis=0)
    r = np.hypot(d[:, 0], d[:, 1])
    arr = np.where((r < 80) & (np.abs(d[:, 2]) < 60), 0.0, -1000.0)
    arr[(np.hypot(d[:, 0] - 40, d[:, 1]) < 12) & (np.abs(d[:, 2]) < 50)] = 1000.0
    cylinder = ct.with_array(arr.reshape(ct.shape).astype(np.float32))
    with pytest.raises(RegistrationError, match="the accept_registration option") as info:
        register(aligned_ct_case.mri, cylinder, settings=fast)
    assert info.value.option == "accept_registration"
    result = register(aligned_ct_case.mri, cylinder, settings=fast, checks=False)
    assert result.check_failures and result.resampled.same_grid(aligned_ct_case.mri)


def test_slab_moving_scan_is_stopped(aligned_ct_case, fast):
    # a CT cropped to a 24 mm slab can slide along the head: some check must stop it
    cropped = aligned_ct_case.moving.array.copy()
    k = cropped.shape[2]
    cropped[:, :, : k // 2 - 3] = -1000.0
    cropped[:, :, k // 2 + 3:] = -1000.0
    with pytest.raises(RegistrationError):
        register(aligned_ct_case.mri, aligned_ct_case.moving.with_array(cropped), settings=fast)


def test_same_frame_of_reference_skips_registration(aligned_ct_case, caplog):
    mri = Volume(aligned_ct_case.mri.array, aligned_ct_case.mri.affine, "MR", {"frame_of_reference": "f0a1"})
    ct = Volume(aligned_ct_case.moving.array, aligned_ct_case.moving.affine, "CT", {"frame_of_reference": "f0a1"})
    with caplog.at_level(logging.INFO, logger="medfuse"):
        result = register(mri, ct)
    assert result.skipped and result.transform_type == "identity" and result.check_failures == []
    np.testing.assert_array_equal(result.reference_to_moving_ras, np.eye(4))
    np.testing.assert_array_equal(result.resampled.affine, mri.affine)
    assert "registration skipped" in caplog.text


def test_2d_inputs_are_refused_with_the_alternative():
    a = Volume(np.random.default_rng(0).random((32, 32)).astype(np.float32))
    with pytest.raises(UnsupportedInputError, match="resample_to_reference"):
        register(a, a)


def test_unknown_transform_name_suggests(ct_case):
    with pytest.raises(ValueError, match="rigid"):
        register(ct_case.mri, ct_case.moving, transform="rigdi")


@pytest.mark.slow
def test_bspline_stays_close_and_round_trips_through_a_file(ct_case, fast, tmp_path):
    from medfuse.registration import load_transform, save_transform

    result = register(ct_case.mri, ct_case.moving, transform="bspline", settings=fast)
    assert result.transform_type == "bspline" and not result.transform.IsLinear()
    points = ct_case.target_points(100)
    truth = points @ ct_case.reference_to_moving[:3, :3].T + ct_case.reference_to_moving[:3, 3]
    assert np.linalg.norm(result.transform_points(points) - truth, axis=1).mean() < 2.0
    np.testing.assert_array_equal(result.resampled.affine, ct_case.mri.affine)
    path = save_transform(result.transform, tmp_path / "bspline.h5")
    again = load_transform(path)
    lps = points * [-1.0, -1.0, 1.0]
    np.testing.assert_allclose([again.TransformPoint(tuple(p)) for p in lps],
                               [result.transform.TransformPoint(tuple(p)) for p in lps], atol=1e-6)
