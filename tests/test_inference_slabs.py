"""A blend network fuses a volume in slabs of slices (issue 26: memory) with the numbers of the whole stack at once.

The intensity maps take their statistics from the whole volume either way; everything after them (the
network, the sub-pixel and anchor filters, the residual bound, the local-range clamp) is in-plane, so a
slab boundary changes nothing (the pyramid head: to float32 rounding, below). Checked with the shipped ``msra`` of SPECT-MRI (a blend
head, anchored on max; every shipped ``light`` is a pyramid head, below) on the real SPM12 templates.
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
    spect, _ = _unit(real_dir, "spm_SPECT.nii")
    spect = spect[:, ::-1].copy()  # a SPECT that does not lie on the T1's anatomy: the blend has work to do
    # a blend head: the shipped msra (max-anchored blend); every shipped light is a pyramid head since session 10
    model, info = inference.load_model(inference.shipped_weights_path("msra", "spect_mri"))
    assert getattr(model, "blend", False)

    def run(slab_batches, batch_size):
        monkeypatch.setattr(inference, "SLAB_BATCHES", slab_batches)
        return inference.fuse_slices(model, t1, spect, affine=affine, batch_size=batch_size, pair="spect_mri")

    # the same batches of slices either way (a convolution's float sums may depend on the batch size with
    # several threads or none): one slab of the whole stack, as before slabs, against slabs of one batch each
    whole = run(1000, 8)
    slabs = run(1, 8)  # 91 slices in slabs of 8 (the last one shorter)
    assert slabs.dtype == np.float32 and slabs.shape == t1.shape
    np.testing.assert_array_equal(slabs, whole)
    assert 0.0 <= whole.min() and whole.max() <= 1.0 and whole.std() > 0.05


def test_a_pyramid_head_fuses_in_slabs_with_the_numbers_of_the_whole_stack(real_dir, monkeypatch):
    """The pyramid head (``output="pyramid"``) is in-plane after the intensity maps too: slabs change nothing."""
    import torch

    from medfuse.networks import build_network

    t1, affine = _unit(real_dir, "spm_T1.nii")
    pet, _ = _unit(real_dir, "spm_PET.nii")
    pet = pet[:, ::-1].copy()
    torch.manual_seed(0)
    model = build_network("light", spatial_dims=2, features=[12, 24], groups=2, output="pyramid").eval()
    with torch.no_grad():  # a head that departs from the rule (a zero-initialised head would only give the rule)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert getattr(model, "output", None) == "pyramid"

    def run(slab_batches):
        monkeypatch.setattr(inference, "SLAB_BATCHES", slab_batches)
        return inference.fuse_slices(model, t1, pet, affine=affine, batch_size=8, pair="pet_mri")

    whole = run(1000)
    seen = []
    real_run_padded = inference._run_padded

    def spy(fn, model_, x, batch_size):
        seen.append(int(x.shape[0]))
        return real_run_padded(fn, model_, x, batch_size)

    monkeypatch.setattr(inference, "_run_padded", spy)
    slabs = run(1)
    assert seen and max(seen) <= 8 < t1.shape[2]  # slabs of one batch went in, never the whole stack
    # equal to float32 rounding: the head's log and sigmoid (torch) run on arrays of the slab's or the stack's
    # size, and on AVX-512 machines torch's vectorized log gives last-bit differences by the array's length
    # (measured: up to 9e-8 on 0.04% of the voxels; an AVX2 machine gave identical arrays)
    np.testing.assert_allclose(slabs, whole, rtol=0, atol=1e-6)
    assert float(np.mean(slabs != whole)) < 0.01
    assert whole.dtype == np.float32 and whole.shape == t1.shape and whole.std() > 0.05


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 2, 1), (3, 1, 2)])
def test_tiny_volumes_whose_stack_views_have_negative_strides_fuse(shape):
    """The axial stacks are views (issue 26); for size-1 axes numpy calls them contiguous whatever their strides,
    and torch refuses negative ones: the pyramid head copies its slabs (hypothesis found (1, 1, 1))."""
    from medfuse.fusion import fuse_arrays

    a = np.full(shape, 0.8506242, dtype=np.float32)
    fused = fuse_arrays(a, a.copy(), "light", pair="pet_mri", affine=np.eye(4))
    assert fused.shape == shape and np.isfinite(fused).all()
    np.testing.assert_allclose(fused, a, atol=1e-5)
