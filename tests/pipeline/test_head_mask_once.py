"""One head mask of the reference per run (issue 26): normalization, the field-of-view step and the QC picture share
it. The pair is made from the real SPM templates (a flipped T1 as the reference, the PET cut to the lower part of the
head on its own grid, so the field-of-view step runs), independently of the code under test."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

import medfuse.intensity.mask as mask_module
from medfuse.volume import Volume

pytestmark = pytest.mark.real


def _pair(real_dir):
    t1 = nib.load(str(real_dir / "templates" / "spm_single_subj_T1.nii"))
    pet = nib.load(str(real_dir / "templates" / "spm_PET.nii"))
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = t1.shape[0] - 1  # voxel i -> n-1-i: the same world grid, stored the other way round
    reference = Volume(np.asarray(t1.dataobj, dtype=np.float32)[::-1].copy(), t1.affine @ flip, modality="MR")
    # the PET's lower 60 slices only (an axial field of view that misses the vertex)
    moving = Volume(np.asarray(pet.dataobj, dtype=np.float32)[:, :, :60].copy(), pet.affine, modality="PT")
    return reference, moving


@pytest.fixture
def counted(monkeypatch):
    calls = []
    original = mask_module.head_mask

    def head_mask(volume, *args, **kwargs):
        calls.append(volume.modality)
        return original(volume, *args, **kwargs)

    monkeypatch.setattr(mask_module, "head_mask", head_mask)
    return calls


def test_one_reference_head_mask_per_run(real_dir, counted):
    from medfuse.intensity import normalize
    from medfuse.intensity.mask import head_mask
    from medfuse.pipeline import FusionOptions, fuse_volumes
    from medfuse.report.qc import qc_figure

    reference, moving = _pair(real_dir)
    result = fuse_volumes(reference, moving, FusionOptions(method="max", register=False))
    assert result.alignment["field_of_view"]["head_coverage"] < 0.99  # the coverage step needed the head
    qc_figure(result)
    assert counted == ["MR", "PT"]  # the reference's once (normalization, coverage, QC), the moving scan's once
    counted.clear()
    # the mask passed down is the one normalization computed by itself, and it gives the same numbers
    expected = head_mask(reference)
    np.testing.assert_array_equal(result.reference_mask, expected)
    assert result.reference.meta["normalization"] == normalize(reference).meta["normalization"]
    assert "reference_mask" not in repr(result)


def test_the_qc_picture_uses_the_results_mask(real_dir, counted):
    from medfuse.pipeline import FusionOptions, fuse_volumes
    from medfuse.report.qc import qc_figure

    reference, moving = _pair(real_dir)
    result = fuse_volumes(reference, moving, FusionOptions(method="max", register=False))
    counted.clear()
    assert qc_figure(result).size[0] > 0
    assert counted == []  # no head mask of its own (the QC picture swallows a failing mask, so count, not raise)
