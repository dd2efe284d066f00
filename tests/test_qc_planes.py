"""QC planes cross the brain through the moving scan's most distinctive region (issue 23, item 6).

The lesion is found here by a different, simple rule than the code under test: the largest connected blob of
FLAIR voxels above the 99th percentile of the FLAIR more than 20 mm inside the head, in its upper half (no
reference scan, no joint histogram). Each of the three QC planes must cut through it. Before the fix the TCGA axial plane fell on the
maxilla and the BraTS axial at the vertex.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medfuse.intensity.mask import head_mask
from medfuse.report.qc import brain_region, informative_center

pytestmark = pytest.mark.real


def _lesion(result) -> np.ndarray:
    ref = result.reference
    head = head_mask(ref)
    height = ref.world_coordinates(np.indices(ref.shape).reshape(3, -1).T)[:, 2].reshape(ref.shape)
    upper = height > 0.5 * (height[head].min() + height[head].max())  # the cranium, not the face (fat, sinuses)
    deep = upper & (ndimage.distance_transform_edt(head, sampling=ref.spacing) > 20.0)
    flair = result.moving.array
    bright = deep & (flair > np.percentile(flair[deep], 99.0))
    labels, n = ndimage.label(bright)
    sizes = ndimage.sum(bright, labels, range(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def _planes_cut(lesion: np.ndarray, center) -> list[bool]:
    return [bool(np.take(lesion, int(center[axis]), axis=axis).any()) for axis in range(3)]


@pytest.fixture(scope="module")
def brats(real_dir):
    from medfuse.io import load_volume
    from medfuse.pipeline import FusionOptions, fuse_volumes

    case = real_dir / "brats" / "TCGA-FG-6692" / "TCGA-FG-6692_"
    return fuse_volumes(load_volume(f"{case}t1ce.nii.gz", modality="MR"), load_volume(f"{case}flair.nii.gz", modality="MR"), FusionOptions(method="mean"))


@pytest.fixture(scope="module")
def tcga(real_dir):
    from medfuse.io import load_volume
    from medfuse.pipeline import FusionOptions, fuse_volumes

    native = real_dir / "tcga_fg6692_native" / "native"
    return fuse_volumes(load_volume(native / "TCGA-FG-6692_t1c_native.nii.gz", modality="MR"), load_volume(native / "TCGA-FG-6692_flair_native.nii.gz", modality="MR"), FusionOptions(method="mean"))


@pytest.mark.parametrize("case", ["brats", "tcga"])
def test_every_plane_cuts_the_flair_lesion(case, request):
    result = request.getfixturevalue(case)
    lesion = _lesion(result)
    assert 200 < lesion.sum() < 0.05 * lesion.size  # a lesion, not a tissue
    center = informative_center(result.reference, result.moving, False)
    assert _planes_cut(lesion, center) == [True, True, True]
    region = brain_region(result.reference, head_mask(result.reference))
    assert region[tuple(center)]


def test_tcga_axial_plane_is_in_the_brain_not_the_face(tcga):
    center = informative_center(tcga.reference, tcga.moving, False)
    mask = head_mask(tcga.reference)
    top = tcga.reference.world_coordinates(np.argwhere(mask))[:, 2].max()
    height = tcga.reference.world_coordinates(center[None])[0, 2]
    assert top - height < 80.0  # above the orbits (about 80-90 mm below the vertex) and the maxilla below them
