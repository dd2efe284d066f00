"""What every ``medfuse`` command prints, as a user meets it in a shell: a closed pipe (``| head``) ends it
quietly, a missing input is named by its role with what to do, and every subcommand explains itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medfuse.cli import EXIT_PIPE_CLOSED, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _subcommands() -> dict:
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def _t1(tmp_path) -> Path:
    """A small NIfTI written by nibabel (not by medfuse)."""
    path = tmp_path / "sub-01_T1w.nii.gz"
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((24, 20, 16)).astype(np.float32), np.diag([1.0, 1.0, 1.2, 1.0])), path)
    return path


def _closed_pipe(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``python -m medfuse.cli ARGS`` with its stdout a pipe whose reader is gone before anything is written
    (what ``| head -3`` does once it has its lines, made deterministic)."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # no reader: the first write that reaches the pipe fails with EPIPE
    try:
        return subprocess.run([sys.executable, "-m", "medfuse.cli", *args], stdout=write_fd,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write_fd)


@pytest.mark.parametrize("args", [["info", "{t1}"], ["--help"], ["info", "--help"]])
def test_a_closed_pipe_ends_quietly(tmp_path, args):
    t1 = _t1(tmp_path)
    proc = _closed_pipe([a.format(t1=t1) for a in args])
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, EXIT_PIPE_CLOSED), (proc.returncode, proc.stderr)


def test_info_of_a_missing_input_names_its_role_and_the_fix(tmp_path, capsys):
    missing = tmp_path / "Doe_John_1957" / "t1.nii.gz"
    assert main(["info", str(missing)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "no such file or folder" in err
    assert "Doe_John" not in err and str(tmp_path) not in err  # the path may hold identifiers
    # the input is named by the argument it came from, and that argument exists on `medfuse info`
    assert "the PATH argument of medfuse info" in err and "check the PATH" in err
    assert "PATH" in _subcommands()["info"].format_usage()


def test_info_prints_the_geometry(tmp_path, capsys):
    t1 = _t1(tmp_path)
    assert main(["info", str(t1)]) == 0
    out = capsys.readouterr().out
    assert "shape: (24, 20, 16)" in out and "orientation: RAS" in out and "spacing (mm): (1.0, 1.0, 1.2)" in out
    assert str(tmp_path) not in out


def test_every_subcommand_has_a_description():
    for name, parser in _subcommands().items():
        description = (parser.description or "").strip()
        assert len(description) > 40, f"medfuse {name} --help has no description"
        assert parser.format_help().count(description.split()[0]) >= 1


_WITHOUT_TORCH = '''
import importlib.abc, sys

class _Absent(importlib.abc.MetaPathFinder):  # as after `pip install -e .` (no networks extra)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "monai", "ignite"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])

sys.meta_path.insert(0, _Absent())
from medfuse.cli import main
sys.exit(main(sys.argv[1:]))
'''


def test_a_command_that_needs_torch_says_how_to_install_it(tmp_path):
    """torch and MONAI are an extra: `medfuse train` without them is one line naming the extra, not a traceback."""
    data = tmp_path / "harvard" / "pet_mri" / "xg-1"
    data.mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, "train", "--pair", "pet_mri", "--method", "light",
                           "--data", str(tmp_path / "harvard"), "--out", str(tmp_path / "x.pt")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert 'pip install -e ".[networks]"' in proc.stderr and "download.pytorch.org/whl/cpu" in proc.stderr
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"torch", "monai"} <= {re.split(r"[<>=]", d)[0] for d in extras["networks"]}
