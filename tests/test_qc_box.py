"""The QC picture's scores and overlay range are computed on the head box (issue 26) with the whole grid's numbers.

The references here are the whole-grid computations as first written (smoothing and distinctiveness over every
voxel, ``argmax`` over the grid), on flipped and padded copies of the real SPM templates: a head with air around it and
a head touching the grid's borders (where the box is cut at the grid's edge).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from medfuse.intensity import normalize
from medfuse.intensity.mask import bounding_box, head_mask
from medfuse.report import qc
from medfuse.volume import Volume

pytestmark = pytest.mark.real


def _volume(real_dir, name, pad, modality):
    img = nib.load(str(real_dir / "templates" / name))
    a = np.pad(np.asarray(img.dataobj, dtype=np.float32)[::-1], [(p, p + 2) for p in pad])
    return Volume(a, np.diag([2.0, 2.0, 2.5, 1.0]), modality=modality)


def _whole_grid_center(reference, moving, functional, mask, values=None):
    region = qc.brain_region(reference, mask, 0.0 if functional else qc.QC_DEPTH_MM)
    if functional:
        score = gaussian_filter(np.asarray(moving.array if values is None else values, np.float32), 2.0)
    else:
        sigma = qc.QC_SMOOTH_MM / np.asarray(reference.spacing)
        score = gaussian_filter(qc.distinctiveness(reference, moving, region), sigma)
    score = np.where(region, score, -np.inf)
    return np.array(np.unravel_index(int(np.argmax(score)), score.shape))


@pytest.mark.parametrize("pad", [(12, 4, 9), (0, 0, 0)])
@pytest.mark.parametrize("moving_name, modality", [("spm_PET.nii", "PT"), ("spm_T2.nii", "MR")])
def test_informative_center_equals_the_whole_grid(real_dir, pad, moving_name, modality):
    ref = normalize(_volume(real_dir, "spm_T1.nii", pad, "MR"))
    raw = _volume(real_dir, moving_name, pad, modality)
    mov = normalize(raw)
    mask = head_mask(ref)
    functional = modality == "PT"
    for values in ([None, raw.array] if functional else [None]):
        expected = _whole_grid_center(ref, mov, functional, mask, values)
        np.testing.assert_array_equal(qc.informative_center(ref, mov, functional, mask, values), expected)
    # a region that touches the grid: the box is cut at the edges as the whole grid's filter is
    if pad == (0, 0, 0):
        assert any(s.start == 0 or s.stop == n for s, n in zip(bounding_box(mask, 33), mask.shape))


def test_box_margin_covers_the_smoothing(real_dir):
    """A score that peaks just outside the region's box must not leak in less (or more) than on the whole grid."""
    ref = normalize(_volume(real_dir, "spm_T1.nii", (10, 10, 10), "MR"))
    mask = head_mask(ref)
    box = bounding_box(mask)
    values = np.zeros(ref.shape, np.float32)
    values[box[0].start - 5, (box[1].start + box[1].stop) // 2, (box[2].start + box[2].stop) // 2] = 1000.0
    values[tuple((s.start + s.stop) // 2 for s in box)] = 1.0  # a weak peak inside
    mov = Volume(values, ref.affine, "PT")
    expected = _whole_grid_center(ref, mov, True, mask)
    np.testing.assert_array_equal(qc.informative_center(ref, mov, True, mask), expected)


def test_overlay_range_equals_the_whole_grid(real_dir):
    raw = _volume(real_dir, "spm_PET.nii", (7, 3, 5), "PT")
    mask = head_mask(_volume(real_dir, "spm_T1.nii", (7, 3, 5), "MR"))
    inside = raw.array[mask]
    expected = tuple(float(v) for v in np.percentile(inside, qc.OVERLAY_PERCENTILES))
    assert qc._overlay_range(raw.array, mask) == expected
