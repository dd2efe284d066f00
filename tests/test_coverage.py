"""A moving scan that covers only part of the reference leaves no seam (issue 23, item 5).

The covered region is computed here independently of :mod:`medfuse.coverage`: reference voxel centres mapped
through the registration matrix the sidecar reports into the moving scan's voxel index range.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medfuse.coverage import FEATHER_MM, feather_uncovered, field_of_view
from medfuse.volume import Volume


def _grid(shape=(30, 30, 40), spacing=2.0) -> np.ndarray:
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (np.asarray(shape) - 1) / 2
    return affine


def test_a_moving_scan_of_the_lower_half_leaves_the_upper_half_to_the_reference():
    ref = Volume(np.ones((30, 30, 40), np.float32), _grid(), "MR")
    lower = Volume(np.ones((30, 30, 20), np.float32), _grid()[:, :] @ np.eye(4), "MR")  # slices k = 0..19 of ref
    fov = field_of_view(ref, lower, head=np.ones(ref.shape, bool))
    assert fov.head_coverage == pytest.approx(0.5)
    assert "superior" in fov.record["uncovered"] and "50.0%" in fov.record["uncovered"]
    w = fov.weight[15, 15]
    assert np.all(w[20:] == 0) and np.all(w[:15] == 1)  # the edge lies between slices 19 and 20
    # linear in the distance (2 mm voxels) to the first uncovered slice, reaching 1 at FEATHER_MM
    np.testing.assert_allclose(w[15:20], np.minimum(1.0, np.array([10, 8, 6, 4, 2]) / FEATHER_MM), atol=1e-6)


def test_a_sliver_of_the_head_outside_is_recorded_but_not_warned_about():
    ref = Volume(np.ones((30, 30, 40), np.float32), _grid(), "MR")
    lower = Volume(np.ones((30, 30, 39), np.float32), _grid(), "MR")  # all but the top slice
    head = np.zeros(ref.shape, bool)
    head[:, :, :39] = True
    head[15, 15, 39] = True  # one head voxel in the uncovered slice
    fov = field_of_view(ref, lower, head=head)
    assert 0.999 < fov.head_coverage < 1.0 and fov.weight is not None
    assert fov.warning("the moving scan (--moving)") is None
    head[:, :, 39] = True
    assert "covers 97.5% of the reference head" in field_of_view(ref, lower, head=head).warning("m")


def test_full_coverage_changes_nothing():
    ref = Volume(np.ones((10, 10, 10), np.float32), _grid((10, 10, 10)), "MR")
    fov = field_of_view(ref, ref)
    assert fov.weight is None and fov.head_coverage == 1.0 and fov.warning("m") is None
    fused = np.random.default_rng(0).random(ref.shape).astype(np.float32)
    assert feather_uncovered(fused, ref.array, fov.weight)[0] is fused


def test_feather_keeps_uint8_colour_and_turns_grey_outside():
    w = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    ref = np.full((1, 1, 3), 0.4, np.float32)
    rgb = np.array([[[[200, 0, 0]] * 3]], np.uint8)
    fused, out = feather_uncovered(np.full((1, 1, 3), 0.9, np.float32), ref, w, rgb)
    np.testing.assert_allclose(fused[0, 0], [0.4, 0.65, 0.9], atol=1e-6)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0, 0], [102, 102, 102])  # the reference alone, grey
    np.testing.assert_array_equal(out[0, 0, 2], [200, 0, 0])


@pytest.fixture(scope="module")
def tcga(real_dir):
    from medfuse.io import load_volume
    from medfuse.pipeline import FusionOptions, InputOptions, fuse_volumes

    native = real_dir / "tcga_fg6692_native" / "native"
    t1c = load_volume(native / "TCGA-FG-6692_t1c_native.nii.gz", modality="MR")
    flair = load_volume(native / "TCGA-FG-6692_flair_native.nii.gz", modality="MR")
    return t1c, flair, fuse_volumes(t1c, flair, FusionOptions(method="mean"))


def _covered(reference: Volume, moving: Volume, ref_to_mov_ras: np.ndarray) -> np.ndarray:
    idx = np.indices(reference.shape).reshape(3, -1).T.astype(np.float64)
    world = np.c_[idx, np.ones(len(idx))] @ reference.affine.T @ np.asarray(ref_to_mov_ras).T
    vox = world @ np.linalg.inv(moving.affine).T
    inside = np.all((vox[:, :3] > -0.5) & (vox[:, :3] < np.asarray(moving.shape) - 0.5), axis=1)
    return inside.reshape(reference.shape)


@pytest.mark.real
def test_tcga_flair_partial_coverage_is_reported_and_leaves_no_seam(tcga, caplog):
    t1c, flair, result = tcga
    fov = result.alignment["field_of_view"]
    assert 0.9 < fov["head_coverage"] < 0.99 and "% of the reference head" in fov["uncovered"]
    covered = _covered(t1c, flair, np.asarray(result.alignment["reference_to_moving_ras"]))
    assert 0.05 < 1 - covered.mean() < 0.5
    d = result.fused.array - result.reference.array  # what the moving scan adds to the reference
    outside = ~covered
    core = ~covered  # a voxel away from the boundary (nearest-neighbour rounding at the edge itself)
    for axis in (0, 1):
        core &= np.roll(~covered, 1, axis) & np.roll(~covered, -1, axis)
    np.testing.assert_allclose(d[core], 0.0, atol=1e-6)  # the uncovered region reads as the reference alone
    assert outside.sum() > core.sum() > 0
    # the step of d across the edge of the field of view inside the head (in-plane neighbours, 0.9 mm apart) is
    # no larger than its ordinary voxel-to-voxel variation inside the covered head (without the feather: 7x larger)
    steps_edge, steps_inside = [], []
    ref = result.reference.array
    for axis in (0, 1):
        nxt = np.roll(covered, -1, axis)
        step = np.abs(np.roll(d, -1, axis) - d)
        head = (ref > 0.2) & (np.roll(ref, -1, axis) > 0.2)
        steps_edge.append(step[(covered != nxt) & head])
        steps_inside.append(step[covered & nxt & head])
    edge, inside = np.concatenate(steps_edge), np.concatenate(steps_inside)
    assert edge.mean() <= inside.mean(), (edge.mean(), inside.mean())


@pytest.mark.real
def test_tcga_partial_coverage_warns_in_one_line_through_the_pipeline(real_dir, tmp_path, caplog):
    import json

    from medfuse.pipeline import FusionOptions, InputOptions, fuse_files

    native = real_dir / "tcga_fg6692_native" / "native"
    with caplog.at_level(logging.WARNING, logger="medfuse"):
        written = fuse_files(native / "TCGA-FG-6692_t1c_native.nii.gz", native / "TCGA-FG-6692_flair_native.nii.gz", tmp_path / "fused.nii.gz", FusionOptions(method="mean", qc=False, quantitative=False, reference=InputOptions(modality="MR"), moving=InputOptions(modality="MR")))
    lines = [r.getMessage() for r in caplog.records if "of the reference head" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("the moving scan covers 9")
    assert "TCGA" not in lines[0] and "shows the reference alone" in lines[0]
    record = json.loads(written["sidecar"].read_text())
    assert record["registration"]["field_of_view"]["uncovered_shows"] == "the reference alone"


def test_feather_in_place_equals_the_copy_and_blends_into_the_given_arrays():
    rng = np.random.default_rng(3)
    w = np.clip(rng.random((6, 7, 8)).astype(np.float32) * 2 - 0.5, 0, 1)
    ref = rng.random((6, 7, 8)).astype(np.float32)
    fused = rng.random((6, 7, 8)).astype(np.float32)
    rgb = rng.integers(0, 256, (6, 7, 8, 3)).astype(np.uint8)
    copy_f, copy_rgb = feather_uncovered(fused, ref, w, rgb)
    assert copy_f is not fused and not np.array_equal(copy_f, fused)  # the inputs untouched by default
    f2, rgb2 = fused.copy(), rgb.copy()
    out_f, out_rgb = feather_uncovered(f2, ref, w, rgb2, in_place=True)
    assert out_f is f2 and out_rgb is rgb2
    np.testing.assert_array_equal(out_f, copy_f)
    np.testing.assert_array_equal(out_rgb, copy_rgb)
    np.testing.assert_allclose(out_f, w * fused + (1 - w) * ref, atol=1e-6)


@pytest.mark.parametrize("shift_mm,rotate_deg", [(0.0, 0.0), (3.0, 4.0), (30.0, 0.0), (0.0, 25.0), (1.9, 0.0)])
def test_the_corner_shortcut_agrees_with_resampling_ones(shift_mm, rotate_deg):
    """Full coverage decided from the grid's 8 corners equals what resampling a volume of ones finds."""
    import SimpleITK as sitk

    import medfuse.coverage as coverage
    from medfuse.registration.resample import resample_to_reference

    ref = Volume(np.zeros((30, 30, 40), np.float32), _grid(), "MR")
    big = Volume(np.zeros((36, 36, 46), np.float32), _grid((36, 36, 46)), "PT")  # 6 mm more on every side
    tx = sitk.Euler3DTransform()
    tx.SetRotation(0.0, 0.0, np.deg2rad(rotate_deg))
    tx.SetTranslation((shift_mm, 0.0, 0.0))
    ones = Volume(np.ones(big.shape, np.float32), big.affine, "PT")
    all_covered = bool((resample_to_reference(ones, ref, tx, "nearest", default_value=0.0).array > 0.5).all())
    assert coverage._corners_inside(ref, big, tx) == all_covered
    fov = field_of_view(ref, big, tx, head=np.ones(ref.shape, bool))
    assert (fov.weight is None) == all_covered and (fov.head_coverage == 1.0) == all_covered
    assert not coverage._corners_inside(ref, big, sitk.BSplineTransform(3))  # non-linear: resample, never assume
