"""The Slicer module's logic without Slicer: parameters, command line, and a real child-process run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "slicer_extension" / "MedFuse"))

from MedFuseLib import FusionProcess, MedFuseParameters, build_command  # noqa: E402

from medfuse.io import load_volume, save_volume  # noqa: E402
from medfuse.volume import Volume  # noqa: E402


def test_parameters_validation():
    assert MedFuseParameters().isValid() == (True, "")
    ok, msg = MedFuseParameters(method="maxx").isValid()
    assert not ok and "maxx" in msg
    ok, msg = MedFuseParameters(moving_modality="XR").isValid()
    assert not ok and "modality" in msg


def test_build_command(tmp_path):
    cmd = build_command(MedFuseParameters(method="max", register=False), tmp_path / "r.nrrd",
                        tmp_path / "m.nrrd", tmp_path / "o.nrrd", python="py")
    assert cmd[:4] == ["py", "-m", "medfuse.cli", "fuse"]
    assert "--no-register" in cmd and cmd[cmd.index("--method") + 1] == "max"
    cmd = build_command(MedFuseParameters(), tmp_path / "r.nrrd", tmp_path / "m.nrrd", tmp_path / "o.nrrd")
    assert "--method" not in cmd and cmd[cmd.index("--registration") + 1] == "rigid"
    with pytest.raises(ValueError, match="unknown method"):
        build_command(MedFuseParameters(method="nope"), "r", "m", "o")


def _nrrd_pair(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.array([[-1.0, 0, 0, 20], [0, -1.2, 0, 30], [0, 0, 1.5, -10], [0, 0, 0, 1]])
    a = rng.random((16, 18, 12)).astype(np.float32) * 100
    save_volume(Volume(a, affine, modality="MR"), tmp_path / "reference.nrrd")
    save_volume(Volume(np.roll(a, 2, axis=0), affine), tmp_path / "moving.nrrd")
    return affine


def test_child_process_fuses_and_keeps_geometry(tmp_path):
    affine = _nrrd_pair(tmp_path)
    params = MedFuseParameters(moving_modality="MR", method="mean", register=False)
    out = FusionProcess(params, tmp_path / "reference.nrrd", tmp_path / "moving.nrrd", tmp_path / "fused.nrrd").run(120)
    fused = load_volume(out)
    np.testing.assert_allclose(fused.affine, affine, atol=1e-4)
    assert fused.shape == (16, 18, 12)


def test_child_process_error_is_one_line(tmp_path):
    _nrrd_pair(tmp_path)
    params = MedFuseParameters(moving_modality="MR", method="mean", register=False)
    proc = FusionProcess(params, tmp_path / "missing.nrrd", tmp_path / "moving.nrrd", tmp_path / "fused.nrrd")
    with pytest.raises(RuntimeError, match="missing.nrrd"):
        proc.run(120)
