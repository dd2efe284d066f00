"""``medfuse demo``: the main job on built-in data, end to end."""

from __future__ import annotations

import numpy as np
from PIL import Image

from medfuse.cli import main
from medfuse.io import load_volume


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--method", "mean"]) == 0
    printed = capsys.readouterr().out
    for name in ("mri.nii.gz", "pet.nii.gz", "fused.nii.gz", "fused_moving.nii.gz", "fused_qc.png", "pet_to_mri.tfm"):
        assert (out / name).is_file(), name
        assert name in printed
    mri, fused = load_volume(out / "mri.nii.gz"), load_volume(out / "fused.nii.gz")
    np.testing.assert_array_equal(fused.affine, mri.affine)
    assert fused.shape == mri.shape
    assert 0.0 <= fused.array.min() and fused.array.max() <= 1.0
    # PET is fused in colour (RGB NIfTI), and its values on the MRI grid are kept beside it
    assert fused.rgb is not None and fused.rgb.shape == (*mri.shape, 3)
    quant = load_volume(out / "fused_moving.nii.gz", modality="PT")
    np.testing.assert_allclose(quant.affine, mri.affine, atol=1e-5)
    assert quant.array.max() > 1.0  # its own units, not [0, 1]
    qc = Image.open(out / "fused_qc.png")
    assert qc.width > 600 and qc.height > 400
    # a second run refuses to overwrite
    assert main(["demo", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
