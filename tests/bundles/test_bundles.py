"""The three MONAI bundles pass MONAI's own checks and run end to end with the reference's geometry:
one case from the command line (3D phantom, 2D pair), a list of cases, and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medfuse.bundle import BUNDLE_OF_PAIR, BundleMismatchError, check_bundle_weights

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "bundles" / "schema" / "meta_schema.json"
PAIRS = list(BUNDLE_OF_PAIR)


def _files(pair):
    d = ROOT / "bundles" / BUNDLE_OF_PAIR[pair]
    return d, d / "configs" / "metadata.json", d / "configs" / "inference.json"


@pytest.mark.parametrize("pair", PAIRS)
def test_layout_and_no_dollar_expressions(pair):
    d, meta, infer = _files(pair)
    for rel in ("configs/metadata.json", "configs/inference.json", "configs/train.json", "models/model.pt",
                "docs/README.md", "LICENSE", "docs/data_license.txt"):
        assert (d / rel).is_file(), rel
    for cfg in ("inference.json", "train.json"):
        assert "$" not in (d / "configs" / cfg).read_text()  # runs with MONAI_EVAL_EXPR=0
    cfg = json.loads(infer.read_text())
    for key in ("datalist", "dataset", "dataloader", "preprocessing", "network_def", "inferer", "postprocessing",
                "handlers", "evaluator", "run"):  # the MONAI model-zoo workflow
        assert key in cfg, key
    assert cfg["evaluator"]["_target_"] == "SupervisedEvaluator"
    assert any(t["_target_"] == "SaveImaged" for t in cfg["postprocessing"]["transforms"])
    assert cfg["reference_modality"] == "MR" and cfg["moving_modality"] in ("CT", "PT", "NM")
    assert cfg["inferer"]["pair"] == pair  # volumes mapped to the training intensities, as fuse_arrays does
    steps = [t["_target_"].rsplit(".", 1)[-1] for t in cfg["preprocessing"]["transforms"]]
    if cfg["moving_modality"] in ("PT", "NM"):  # 3D PET/SPECT fused in colour, as the CLI does
        assert steps.index("ApplyColormapd") == steps.index("NormalizeModalityd") + 1
    else:
        assert "ApplyColormapd" not in steps
    fmt = json.loads(meta.read_text())["network_data_format"]
    assert fmt["inputs"]["image"]["num_channels"] == 2
    assert fmt["inputs"]["image"]["channel_def"]["0"] == "MRI"
    assert fmt["outputs"]["pred"]["num_channels"] == 1


@pytest.mark.parametrize("pair", PAIRS)
def test_model_is_the_shipped_weights(pair):
    """models/model.pt and network_def are those of medfuse/weights (one source of truth)."""
    info = check_bundle_weights(_files(pair)[0])
    assert info["network"] in ("fmmf", "mdgan", "msra", "light")


@pytest.mark.parametrize("pair", PAIRS)
def test_train_config_trains_what_the_bundle_ships(pair):
    """train.json, as MONAI parses it, gives the trainer the shipped checkpoint's own network and loss (the
    pyramid head where the shipped light has it), not the method's default configuration."""
    from monai.bundle import ConfigParser

    from medfuse.inference import shipped_weights_path
    from medfuse.training.checkpoint import read_checkpoint
    from medfuse.training.trainer import load_config

    d = _files(pair)[0]
    parser = ConfigParser()
    parser.read_config(str(d / "configs" / "train.json"))
    method = parser.get_parsed_content("method")
    ckpt = read_checkpoint(shipped_weights_path(method, pair))  # what models/model.pt holds (test above)
    cfg = load_config(method, parser.get_parsed_content("train_config"), pair=pair)
    assert cfg["network"]["kwargs"] == ckpt["network"]["kwargs"]
    assert cfg["loss"] == ckpt["config"]["loss"]
    assert parser["run"]["config"] == "@train_config"


def test_weights_check_holds_under_python_O(tmp_path):
    """A tampered model.pt is caught without asserts (python -O) and without the source tree's path."""
    d, _, _ = _files("pet_mri")
    copy = tmp_path / d.name
    shutil.copytree(d, copy)
    code = (
        "import sys, torch\n"
        "from medfuse.bundle import BundleMismatchError, check_bundle_weights\n"
        "p = sys.argv[1] + '/models/model.pt'\n"
        "check_bundle_weights(sys.argv[1])\n"
        "state = torch.load(p, weights_only=True); k = next(iter(state)); state[k] = state[k] + 1; torch.save(state, p)\n"
        "try:\n    check_bundle_weights(sys.argv[1])\nexcept BundleMismatchError as err:\n    print('caught', err)\n"
    )
    proc = subprocess.run([sys.executable, "-O", "-c", code, str(copy)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("caught") and "differs from the shipped weights" in proc.stdout


def test_weights_check_names_a_wrong_network(tmp_path):
    d, _, infer = _files("ct_mri")
    copy = tmp_path / d.name
    shutil.copytree(d, copy)
    cfg = json.loads(infer.read_text())
    cfg["network_def"]["features"] = [8, 16]
    (copy / "configs" / "inference.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleMismatchError, match="network_def arguments"):
        check_bundle_weights(copy)


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


def _run_bundle(pair, out_dir, *args, check=True):
    d, _, infer = _files(pair)
    env = {**os.environ, "MONAI_EVAL_EXPR": "0", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(infer), "--bundle_root", str(d),
           "--output_dir", str(out_dir), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_run_on_phantom_volume(tmp_path):
    """The documented command on a 3D phantom MRI + misaligned PET: registered, fused in colour, MRI affine, sidecar."""
    from medfuse.io import load_volume, save_volume
    from medfuse.phantom import make_case

    case = make_case("pet", seed=3)
    save_volume(case.mri, tmp_path / "mri.nii.gz")
    save_volume(case.moving, tmp_path / "pet.nii.gz")
    _run_bundle("pet_mri", tmp_path / "out", "--reference", tmp_path / "mri.nii.gz", "--moving", tmp_path / "pet.nii.gz")
    import nibabel as nib

    fused = load_volume(tmp_path / "out" / "mri_fused.nii.gz", modality="MR")
    np.testing.assert_allclose(fused.affine, case.mri.affine, atol=1e-4)
    assert fused.shape == case.mri.shape
    # the fused luminance keeps the MRI's anatomy in its brighter half (fusion clips to [0, 1] by construction, so a
    # range check could not fail)
    head = case.mri.array > np.percentile(case.mri.array, 50)
    r = np.corrcoef(fused.array[head], case.mri.array[head])[0, 1]
    assert r > 0.8, r  # measured 0.986
    # in colour, as the CLI writes a 3D PET fusion: NIfTI RGB24 with the MRI's affine
    img = nib.load(tmp_path / "out" / "mri_fused.nii.gz")
    assert img.get_data_dtype().names == ("R", "G", "B") and img.shape == case.mri.shape
    np.testing.assert_allclose(img.affine, case.mri.affine, atol=1e-4)
    assert fused.rgb is not None and not np.array_equal(fused.rgb[..., 0], fused.rgb[..., 2])  # not grey
    sidecar = json.loads((tmp_path / "out" / "mri_fused.json").read_text())
    assert sidecar["method"] == "light" and sidecar["registration"]["transform_type"] == "rigid"
    assert sidecar["inputs"]["moving"]["modality"] == "PT"
    assert sidecar["fused_image"]["kind"] == "rgb" and sidecar["colour"]["colormap"] == "aanlib_pet"
    assert str(tmp_path) not in json.dumps(sidecar)  # no input paths

    # the same command again: medfuse's one-line refusal, not a traceback
    proc = _run_bundle("pet_mri", tmp_path / "out", "--reference", tmp_path / "mri.nii.gz", "--moving",
                       tmp_path / "pet.nii.gz", check=False)
    assert proc.returncode != 0
    assert "medfuse bundle: error:" in proc.stderr and "--force true" in proc.stderr
    assert "Traceback" not in proc.stderr


def _write_pair(folder, seed, colour=True):
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:64, :48]
    head = ((yy - 32) ** 2 / 28**2 + (xx - 24) ** 2 / 20**2 < 1).astype(np.float32)
    mri = (head * (120 + 60 * rng.random((64, 48)))).astype(np.uint8)
    Image.fromarray(mri).save(folder / "mri.png")
    pet = (head[..., None] * rng.integers(0, 256, (64, 48, 3))).astype(np.uint8)
    Image.fromarray(pet if colour else pet[..., 0]).save(folder / "pet.png")


def test_run_on_a_list_of_cases(tmp_path):
    """--dataset_dir with two globs, then a JSON datalist: one output per case, named by its folder."""
    from PIL import Image

    for i in range(3):
        _write_pair(tmp_path / "data" / f"case{i}", seed=i)
    _run_bundle("pet_mri", tmp_path / "out", "--dataset_dir", tmp_path / "data", "--reference_glob", "*/mri.png",
                "--moving_glob", "*/pet.png", "--output_ext", ".png")
    for i in range(3):
        fused = Image.open(tmp_path / "out" / f"case{i}" / "mri_fused.png")
        assert fused.size == (48, 64) and fused.mode == "RGB"
        assert (tmp_path / "out" / f"case{i}" / "mri_fused.json").is_file()

    cases = [{"reference": f"case{i}/mri.png", "moving": f"case{i}/pet.png"} for i in range(3)]
    (tmp_path / "data" / "list.json").write_text(json.dumps(cases))
    _run_bundle("pet_mri", tmp_path / "out2", "--datalist_file", tmp_path / "data" / "list.json",
                "--dataset_dir", tmp_path / "data", "--output_ext", ".png")
    assert sorted(p.parent.name for p in (tmp_path / "out2").rglob("mri_fused.png")) == ["case0", "case1", "case2"]


def test_bad_input_ends_with_one_line(tmp_path):
    (tmp_path / "mri.nii.gz").write_bytes(b"not a nifti file")
    _write_pair(tmp_path / "p", seed=0)
    proc = _run_bundle("pet_mri", tmp_path / "out", "--reference", tmp_path / "mri.nii.gz", "--moving",
                       tmp_path / "p" / "pet.png", check=False)
    assert proc.returncode != 0
    # named by its role (the bundle's flag), never by its path (issue 23 item 8)
    assert "medfuse bundle: error: the reference scan (--reference)" in proc.stderr
    assert str(tmp_path) not in proc.stderr and "Traceback" not in proc.stderr


def test_datalist_errors(tmp_path):
    from medfuse.bundle import make_datalist
    from medfuse.errors import UnsupportedInputError

    with pytest.raises(UnsupportedInputError, match="nothing to fuse"):
        make_datalist()
    with pytest.raises(UnsupportedInputError, match="give both inputs"):
        make_datalist(reference="mri.nii.gz")
    _write_pair(tmp_path / "a", seed=0)
    (tmp_path / "a" / "pet.png").unlink()
    with pytest.raises(UnsupportedInputError, match="not one of each per folder"):
        make_datalist(dataset_dir=str(tmp_path), reference_glob="*/mri.png", moving_glob="*/pet.png")


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
        moving=str(tmp_path / other.name), output_dir=str(tmp_path / "out"), output_ext=".png")
    fused = Image.open(tmp_path / "out" / "mri_fused.png")
    assert fused.size == Image.open(tmp_path / "mri.png").size
    assert fused.mode == ("L" if pair == "ct_mri" else "RGB")
