"""The bundles' inferer fuses a 2D image through the one slice runner, as ``medfuse fuse`` does."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_2d_images_go_through_fuse_slices(harvard_dir):
    """A real AANLIB PET-MRI slice and the shipped PET-MRI light: the inferer's 2D output is fuse_slices' (the
    pyramid composition, sub-pixel filter and no-halo bound), no longer the network's raw output."""
    from PIL import Image

    from medfuse.bundle import SliceFusionInferer
    from medfuse.color import split_luminance
    from medfuse.inference import fuse_slices, load_model, predict, shipped_weights_path

    case = sorted(p for p in (harvard_dir / "pet_mri").iterdir() if p.is_dir())[10]
    mri = np.asarray(Image.open(case / "mri.png").convert("L"), np.float32) / 255
    pet = (split_luminance(np.asarray(Image.open(case / "pet.png").convert("RGB"), np.float32))[0] / 255).astype(np.float32)
    model, _ = load_model(shipped_weights_path("light", "pet_mri"))
    x = torch.from_numpy(np.stack([np.stack([mri, pet])] * 2))  # a batch of two
    out = SliceFusionInferer(batch_size=4, pair="pet_mri")(x, model)
    assert tuple(out.shape) == (2, 1, *mri.shape)
    expected = fuse_slices(model, mri, pet, batch_size=4, pair="pet_mri")
    np.testing.assert_array_equal(out[0, 0].numpy(), expected)
    np.testing.assert_array_equal(out[1, 0].numpy(), expected)
    raw = predict(model, x[:1], 4)[0, 0].numpy()
    assert float(np.abs(raw - expected).max()) > 1e-4  # the raw output is not what a user gets
