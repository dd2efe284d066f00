"""A blend network fuses a volume in slabs of slices (issue 26: memory) with the numbers of the whole stack at once.

The intensity maps take their statistics from the whole volume either way; everything after them (the
network, the sub-pixel and anchor filters, the residual bound, the local-range clamp) is in-plane, so a
slab boundary changes nothing. Checked with the shipped ``light`` (PET-MRI) on the real SPM12 templates.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("torch")

import medfuse.inference as inference  # noqa: E402


def _unit(real_dir, name):
    img = nib.load(str(real_dir / "templates" / name))
    a = np.asarray(img.dataobj, dtype=np.float32)
    return (a - a.min()) / (a.max() - a.min()), img.affine


def test_slabs_equal_the_whole_stack(real_dir, monkeypatch):
    t1, affine = _unit(real_dir, "spm_T1.nii")
    pet, _ = _unit(real_dir, "spm_PET.nii")
    pet = pet[:, ::-1].copy()  # a PET that does not lie on the T1's anatomy: the blend has work to do
    model, info = inference.load_model(inference.shipped_weights_path("light", "pet_mri"))
    assert getattr(model, "blend", False)

    def run(slab_batches, batch_size):
        monkeypatch.setattr(inference, "SLAB_BATCHES", slab_batches)
        return inference.fuse_slices(model, t1, pet, affine=affine, batch_size=batch_size, pair="pet_mri")

    # the same batches of slices either way (a convolution's float sums may depend on the batch size with
    # several threads or none): one slab of the whole stack, as before slabs, against slabs of one batch each
    whole = run(1000, 8)
    slabs = run(1, 8)  # 91 slices in slabs of 8 (the last one shorter)
    assert slabs.dtype == np.float32 and slabs.shape == t1.shape
    np.testing.assert_array_equal(slabs, whole)
    assert 0.0 <= whole.min() and whole.max() <= 1.0 and whole.std() > 0.05
