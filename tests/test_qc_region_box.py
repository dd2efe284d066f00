"""The QC brain region's depth is computed on the head mask's bounding box (issue 26) with the whole grid's values."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from medfuse.intensity.mask import head_mask
from medfuse.report import qc
from medfuse.volume import Volume


def _whole_grid_depth_region(reference, mask, depth_mm):
    depth = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=reference.spacing)[1:-1, 1:-1, 1:-1]
    return depth >= min(depth_mm, 0.5 * float(depth.max()))


@pytest.mark.parametrize("pad", [(20, 5, 12), (0, 0, 0)])  # air around the head, and a head touching the borders
def test_brain_region_depth_equals_the_whole_grid(real_dir, monkeypatch, pad):
    img = nib.load(str(real_dir / "templates" / "spm_T1.nii"))
    t1 = np.asarray(img.dataobj, dtype=np.float32)[::-1]  # a flipped copy of the real template
    t1 = np.pad(t1, [(p, p + 3) for p in pad])
    reference = Volume(t1, np.diag([2.0, 2.0, 2.5, 1.0]), modality="MR")
    mask = head_mask(reference)
    monkeypatch.setattr(qc, "QC_CRANIAL_MM", 1e9)  # only the depth rule
    for depth_mm in (qc.QC_DEPTH_MM, 200.0):  # the rule, and more than half the head (the max-depth fallback)
        expected = _whole_grid_depth_region(reference, mask, depth_mm)
        assert expected.any() and not expected.all()
        np.testing.assert_array_equal(qc.brain_region(reference, mask, depth_mm), expected)


def _whole_grid_region(reference, mask):
    """brain_region as first written: the whole grid's depth, then (N, 3) world coordinates of every voxel."""
    region = _whole_grid_depth_region(reference, mask, qc.QC_DEPTH_MM)
    inner = np.argwhere(region)
    height = reference.world_coordinates(inner)[:, 2]
    low = height < float(reference.world_coordinates(np.argwhere(mask))[:, 2].max()) - qc.QC_CRANIAL_MM
    if low.all():
        return region
    region[tuple(inner[low].T)] = False
    return region


@pytest.mark.parametrize("oblique", [False, True])
def test_brain_region_equals_the_whole_grid_computation(real_dir, oblique):
    img = nib.load(str(real_dir / "templates" / "spm_T1.nii"))
    t1 = np.pad(np.asarray(img.dataobj, dtype=np.float32), 15)
    affine = img.affine
    if oblique:  # rotated 20 degrees about the left-right axis: heights mix two voxel axes
        c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
        affine = np.array([[1.0, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]]) @ affine
    reference = Volume(t1, affine, modality="MR")
    mask = head_mask(reference)
    expected = _whole_grid_region(reference, mask)
    assert expected.any() and (mask & ~expected).any()
    np.testing.assert_array_equal(qc.brain_region(reference, mask), expected)
    # the heights: world_coordinates' numbers (exact on axis-aligned grids, 1e-12 mm on oblique ones)
    inner = np.nonzero(mask)
    heights = qc._heights(reference, inner)
    np.testing.assert_allclose(heights, reference.world_coordinates(np.stack(inner, axis=1))[:, 2], rtol=0, atol=1e-9)
