"""The three MONAI bundles pass MONAI's own checks and run end to end with the reference's geometry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medfuse.bundle import BUNDLE_OF_PAIR, bundle_dir, check_bundle_weights

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "bundles" / "schema" / "meta_schema.json"
PAIRS = list(BUNDLE_OF_PAIR)


def _files(pair):
    d = bundle_dir(pair)
    return d, d / "configs" / "metadata.json", d / "configs" / "inference.json"


@pytest.mark.parametrize("pair", PAIRS)
def test_layout_and_no_dollar_expressions(pair):
    d, meta, infer = _files(pair)
    for rel in ("configs/metadata.json", "configs/inference.json", "configs/train.json", "models/model.pt",
                "docs/README.md", "LICENSE", "docs/data_license.txt"):
        assert (d / rel).is_file(), rel
    for cfg in ("inference.json", "train.json"):
        assert "$" not in (d / "configs" / cfg).read_text()  # runs with MONAI_EVAL_EXPR=0
    fmt = json.loads(meta.read_text())["network_data_format"]
    assert fmt["inputs"]["image"]["num_channels"] == 2
    assert fmt["inputs"]["image"]["channel_def"]["0"] == "MRI"
    assert fmt["outputs"]["pred"]["num_channels"] == 1


@pytest.mark.parametrize("pair", PAIRS)
def test_model_is_the_shipped_weights(pair):
    """models/model.pt and network_def are those of medfuse/weights (one source of truth)."""
    info = check_bundle_weights(pair)
    assert info["network"] in ("fmmf", "mdgan", "msra", "light")


@pytest.mark.parametrize("pair", PAIRS)
def test_monai_verify_metadata(pair, tmp_path):
    from monai.bundle import verify_metadata

    _, meta, _ = _files(pair)
    verify_metadata(meta_file=str(meta), filepath=str(SCHEMA))  # raises on a schema violation


def test_schema_rejects_incomplete_metadata(tmp_path):
    from monai.bundle import verify_metadata

    _, meta, _ = _files("pet_mri")
    bad = json.loads(meta.read_text())
    del bad["network_data_format"]["inputs"]["image"]["num_channels"]
    del bad["copyright"]
    (tmp_path / "metadata.json").write_text(json.dumps(bad))
    with pytest.raises(Exception):
        verify_metadata(meta_file=str(tmp_path / "metadata.json"), filepath=str(SCHEMA))


@pytest.mark.parametrize("pair", PAIRS)
def test_monai_verify_net_in_out(pair):
    from monai.bundle import verify_net_in_out

    _, meta, infer = _files(pair)
    verify_net_in_out(net_id="network_def", meta_file=str(meta), config_file=str(infer), n=32, device="cpu")


@pytest.mark.parametrize("pair", PAIRS)
def test_monai_ckpt_export_torchscript(pair, tmp_path):
    import torch
    from monai.bundle import ckpt_export

    d, meta, infer = _files(pair)
    ts = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts), ckpt_file=str(d / "models" / "model.pt"),
                meta_file=str(meta), config_file=str(infer))
    scripted = torch.jit.load(str(ts))
    x = torch.rand(1, 2, 64, 64)
    assert scripted(x).shape == (1, 1, 64, 64)


def _run_bundle(pair, reference, moving, out_dir, extra=()):
    d, _, infer = _files(pair)
    env = {**os.environ, "MONAI_EVAL_EXPR": "0", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(infer), "--bundle_root", str(d),
           "--reference", str(reference), "--moving", str(moving), "--output_dir", str(out_dir), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_run_on_phantom_volume(tmp_path):
    """The documented command on a 3D phantom MRI + misaligned PET: registered, fused, MRI affine."""
    from medfuse.io import load_volume, save_volume
    from medfuse.phantom import make_case

    case = make_case("pet", seed=3)
    save_volume(case.mri, tmp_path / "mri.nii.gz")
    save_volume(case.moving, tmp_path / "pet.nii.gz")
    _run_bundle("pet_mri", tmp_path / "mri.nii.gz", tmp_path / "pet.nii.gz", tmp_path / "out")
    fused = load_volume(tmp_path / "out" / "fused.nii.gz")
    np.testing.assert_allclose(fused.affine, case.mri.affine, atol=1e-4)
    assert fused.shape == case.mri.shape
    assert 0 <= fused.array.min() and fused.array.max() <= 1


@pytest.mark.parametrize("pair", PAIRS)
def test_run_on_2d_pair(pair, tmp_path, harvard_dir):
    """A 2D AANLIB pair through MONAI's run: same size, colour kept for PET/SPECT."""
    from PIL import Image

    task_dir = harvard_dir / pair
    sample = sorted(task_dir.iterdir())[0]
    other = next(p for p in sample.iterdir() if p.name != "mri.png")
    shutil.copy(sample / "mri.png", tmp_path / "mri.png")
    shutil.copy(other, tmp_path / other.name)
    from monai.bundle import run

    d, _, infer = _files(pair)
    run(config_file=str(infer), bundle_root=str(d), reference=str(tmp_path / "mri.png"),
        moving=str(tmp_path / other.name), output_dir=str(tmp_path / "out"))
    fused = Image.open(tmp_path / "out" / "fused.png")
    assert fused.size == Image.open(tmp_path / "mri.png").size
    assert fused.mode == ("L" if pair == "ct_mri" else "RGB")
