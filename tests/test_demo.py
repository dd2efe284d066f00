"""``medfuse demo``: the main job on built-in data, end to end, and the README's sequence of demos (each
modality in its own folder, every demo rerunnable, a user's files never replaced)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medfuse.cli import main
from medfuse.io import load_volume


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--method", "mean"]) == 0
    printed = capsys.readouterr().out
    folder = out / "pet"  # each modality's demo has its own folder
    for name in ("mri.nii.gz", "pet.nii.gz", "fused.nii.gz", "fused_moving.nii.gz", "fused_qc.png", "pet_to_mri.tfm"):
        assert (folder / name).is_file(), name
        assert str(folder / name) in printed
    mri, fused = load_volume(folder / "mri.nii.gz"), load_volume(folder / "fused.nii.gz")
    np.testing.assert_array_equal(fused.affine, mri.affine)
    assert fused.shape == mri.shape
    # PET is fused in colour (RGB NIfTI), and its values on the MRI grid are kept beside it
    assert fused.rgb is not None and fused.rgb.shape == (*mri.shape, 3)
    quant = load_volume(folder / "fused_moving.nii.gz", modality="PT")
    np.testing.assert_allclose(quant.affine, mri.affine, atol=1e-5)
    assert quant.array.max() > 1.0  # its own units, not [0, 1]
    # the mean fusion of a colour PET, read at voxels the files tell apart (the [0, 1] range is clipped by
    # construction, so checking it could not fail): below the colour range the sidecar records (black in
    # aanlib_pet) the fused voxel is grey, at most half white (the mean with black) and brighter where the MRI
    # is; above it, coloured
    low, high = json.loads((folder / "fused.json").read_text())["colour"]["range"]
    rgb = fused.rgb.astype(np.float64)
    spread, luminance = rgb.max(axis=-1) - rgb.min(axis=-1), rgb @ [0.299, 0.587, 0.114]
    cold, hot = quant.array < low, quant.array > high
    assert cold.sum() > 1000 and hot.sum() > 1000
    assert spread[cold].max() <= 1 and luminance[cold].max() <= 0.5 * 255 + 1
    head = cold & (mri.array > 0.1 * mri.array.max())  # where the PET is cold, inside the head (above the noise)
    from scipy.stats import spearmanr

    assert head.sum() > 100 and spearmanr(luminance[head], mri.array[head]).correlation > 0.95  # measured 0.999
    assert np.median(spread[hot]) > 100  # measured 224
    qc = Image.open(folder / "fused_qc.png")
    assert qc.width > 600 and qc.height > 400
    # every file the README says the demo writes is there
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    paragraph = readme[readme.index("It writes `medfuse-demo/pet/`"):].split("\n\n", 1)[0]
    named = set(re.findall(r"`([\w.]+\.(?:nii\.gz|tfm|json|png))`", paragraph))
    assert {"mri.nii.gz", "fused.nii.gz", "fused_moving.nii.gz", "pet_to_mri.tfm", "fused.json", "fused_qc.png",
            "demo.json"} <= named
    assert [n for n in named if not (folder / n).is_file()] == []
    # nothing of the work in progress is left, and the sidecar names no staging folder
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    assert ".demo-staging" not in (folder / "fused.json").read_text()


# ------------------------------------------------------------------------------------------------
# reruns: a fast stand-in for the pipeline's fuse_files (the demo's own file handling is under test)

def _stand_in(calls: list, stop_after: str | None = None):
    def fuse_files(reference, moving, out, options, **_):
        out, qc, transform_out = Path(out), options.qc, options.transform_out
        written = {}
        for kind, path in (("fused", out), ("quantitative", out.with_name("fused_moving.nii.gz")),
                           ("transform", Path(transform_out)), ("qc", Path(qc)),
                           ("sidecar", out.with_name("fused.json"))):
            path.write_bytes(f"{kind} of run {len(calls)}".encode())
            written[kind] = path
            if kind == stop_after:
                raise KeyboardInterrupt
        calls.append(out)
        return written
    return fuse_files


@pytest.fixture
def fast_pipeline(monkeypatch):
    calls: list = []
    monkeypatch.setattr("medfuse.pipeline.fuse_files", _stand_in(calls))
    return calls


def test_readme_sequence_pet_then_spect_then_rerun(tmp_path, capsys, fast_pipeline):
    out = tmp_path / "medfuse-demo"
    assert main(["demo", "--out", str(out)]) == 0
    pet_before = {p.name: p.read_bytes() for p in (out / "pet").iterdir()}
    assert main(["demo", "--out", str(out), "--modality", "spect"]) == 0, capsys.readouterr().err
    assert (out / "spect" / "fused.nii.gz").is_file() and (out / "spect" / "spect_to_mri.tfm").is_file()
    assert {p.name: p.read_bytes() for p in (out / "pet").iterdir()} == pet_before  # untouched by the spect demo
    # a rerun replaces the demo's own files (run 2 of the stand-in wrote them)
    assert main(["demo", "--out", str(out)]) == 0, capsys.readouterr().err
    assert (out / "pet" / "fused.nii.gz").read_bytes() == b"fused of run 2"
    record = json.loads((out / "pet" / "demo.json").read_text())
    assert set(record["files"]) == {"mri.nii.gz", "pet.nii.gz", "fused.nii.gz", "fused_moving.nii.gz",
                                    "pet_to_mri.tfm", "fused_qc.png", "fused.json"}


def test_interrupted_demo_does_not_block_its_rerun(tmp_path, capsys, monkeypatch):
    out = tmp_path / "medfuse-demo"
    calls: list = []
    monkeypatch.setattr("medfuse.pipeline.fuse_files", _stand_in(calls, stop_after="transform"))
    assert main(["demo", "--out", str(out)]) == 130  # Ctrl-C during the fusion
    left = sorted(p.name for p in (out / "pet").iterdir())
    assert "fused.nii.gz" not in left and "mri.nii.gz" not in left, left  # nothing under a final name
    monkeypatch.setattr("medfuse.pipeline.fuse_files", _stand_in(calls))
    assert main(["demo", "--out", str(out)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (out / "pet").iterdir() if p.name.startswith(".")) == []


def test_demo_stopped_while_moving_its_files_reruns(tmp_path, capsys, fast_pipeline, monkeypatch):
    out = tmp_path / "medfuse-demo"
    real_replace, moved = os.replace, []

    def replace(src, dst):  # os.replace is os's: the writers' atomic renames pass through too
        if ".demo-staging." in str(src) and ".demo-staging." not in str(dst):  # the demo's final moves
            if len(moved) == 3:
                raise KeyboardInterrupt
            moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    assert main(["demo", "--out", str(out)]) == 130
    assert len(moved) == 3 and all(Path(p).is_file() for p in moved)
    monkeypatch.setattr(os, "replace", real_replace)
    assert main(["demo", "--out", str(out)]) == 0, capsys.readouterr().err


def test_demo_never_replaces_a_users_file(tmp_path, capsys, fast_pipeline):
    out = tmp_path / "medfuse-demo"
    folder = out / "pet"
    folder.mkdir(parents=True)
    (folder / "fused.nii.gz").write_bytes(b"my own fusion")
    (folder / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "fused.nii.gz" in err and "not written by medfuse demo" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert (folder / "fused.nii.gz").read_bytes() == b"my own fusion" and not (folder / "mri.nii.gz").exists()
    assert fast_pipeline == []  # refused before any work
    # --force replaces it; files the demo does not write stay
    assert main(["demo", "--out", str(out), "--force"]) == 0
    assert (folder / "fused.nii.gz").read_bytes() != b"my own fusion" and (folder / "notes.txt").read_text() == "mine"
    # an --out that is a file: one line, and the file is kept
    (tmp_path / "notes.nii.gz").write_bytes(b"mine")
    assert main(["demo", "--out", str(tmp_path / "notes.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "not a folder" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "notes.nii.gz").read_bytes() == b"mine"
    # a demo file the user changed since is theirs now
    (folder / "fused_qc.png").write_bytes(b"annotated by me")
    assert main(["demo", "--out", str(out)]) == 2
    assert "fused_qc.png" in capsys.readouterr().err
    assert (folder / "fused_qc.png").read_bytes() == b"annotated by me"


_NO_TORCH = '''
import importlib.abc, json, sys

class _Absent(importlib.abc.MetaPathFinder):  # as on a machine where `pip install .` installed no torch/MONAI
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "monai", "ignite", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, _Absent())
import medfuse.phantom as phantom

made = phantom.make_case  # a smaller phantom grid (the demo's own steps are unchanged): a quick test
phantom.make_case = lambda modality, seed=0: made(modality, seed, mri_shape=(64, 76, 60), moving_shape=(48, 56, 40))
from medfuse.cli import main

code = main(["demo", "--out", sys.argv[1], "--modality", sys.argv[2]])
print(json.dumps({"code": code, "loaded": sorted(m for m in ("torch", "monai") if m in sys.modules)}))
'''


@pytest.mark.parametrize("modality", ["pet", "spect"])
def test_demo_runs_without_torch_or_monai(tmp_path, modality):
    """The README's demo command installs medfuse alone (no torch: from PyPI on Linux that is a multi-GB CUDA
    build); the demo must not need torch or MONAI. Where the pair's default is a network (SPECT-MRI: light), the
    demo fuses with the pair's classical method (defaults.json "without_torch") and says so."""
    import subprocess
    import sys

    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    root = Path(__file__).resolve().parents[1]
    required = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in required if d.split(">")[0].split("=")[0].lower() in ("torch", "monai")], required
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, str(tmp_path / "demo"), modality], capture_output=True,
                          text=True, cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"code": 0, "loaded": []}, proc.stderr[-2000:]
    assert (tmp_path / "demo" / modality / "fused.nii.gz").is_file()
    from medfuse.weights import default_method_for_pair

    pair = {"pet": "pet_mri", "spect": "spect_mri"}[modality]
    used = json.loads((tmp_path / "demo" / modality / "fused.json").read_text())["method"]
    assert used == default_method_for_pair(pair, with_torch=False)
    if default_method_for_pair(pair, with_torch=True) != used:  # a network default: the fallback is said
        assert "needs PyTorch, not installed here" in proc.stderr and "method option" in proc.stderr
