"""The bundles keep a PET/SPECT's hottest regions as ``medfuse fuse`` does (medfuse.hotspots)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("monai")
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_spect_bundle_equals_the_cli_on_a_focus_the_floor_keeps(tmp_path, harvard_dir):
    """A real SPECT-MRI pair we did not make (second collection, PET map), whose focus the shipped network dims
    without the floor: the SPECT bundle writes exactly what `medfuse fuse` writes, which differs from the unfloored
    fusion by up to ~136 grey levels at the focus."""
    from monai.bundle import run
    from PIL import Image

    from medfuse.io import load_volume
    from medfuse.pipeline import FusionOptions, fuse_volumes

    case = harvard_dir / "spect_mri" / "cdd-spect-77"
    for name in ("mri.png", "spect.png"):
        shutil.copy(case / name, tmp_path / name)
    bundle = ROOT / "bundles" / "mri_spect_fusion"
    run(config_file=str(bundle / "configs" / "inference.json"), bundle_root=str(bundle),
        reference=str(tmp_path / "mri.png"), moving=str(tmp_path / "spect.png"), output_dir=str(tmp_path / "out"),
        output_ext=".png")
    got = np.asarray(Image.open(tmp_path / "out" / "mri_fused.png").convert("RGB"), np.float32)
    mri, spect = load_volume(case / "mri.png", modality="MR"), load_volume(case / "spect.png", modality="NM")
    cli = fuse_volumes(mri, spect, FusionOptions(method="light", register=False)).fused.rgb
    plain = fuse_volumes(mri, spect, FusionOptions(method="light", register=False, keep_hot=False)).fused.rgb
    np.testing.assert_array_equal(got, cli)
    assert float(np.abs(got - plain).max()) > 50
