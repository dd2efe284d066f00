"""Crash safety: ``medfuse fuse`` and ``medfuse batch`` killed (SIGKILL) at random points never leave a partial
file under a final output name, and a rerun completes.

Every writer goes through :func:`medfuse.io.atomic.atomic_output` (a temporary file beside the target, then
:func:`os.replace`), DICOM series through a temporary folder renamed into place, and a batch case through
``OUT/.staging/`` renamed into ``OUT/<case id>/`` with its ``batch.json`` written last. The kill points are
drawn (seeded) between the moment the command starts reading its inputs and the moment a complete run ends,
measured on a first complete run, so most kills land in the work and the writing, not in Python's start-up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medfuse.batch import DONE_MARKER, MANIFEST, STAGING, read_manifest
from medfuse.io import save_volume
from medfuse.volume import Volume
from tests.datasets.synthetic_trees import brain_like, write_harvard_tree

ROOT = Path(__file__).resolve().parents[2]
N_KILLS = 3


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("PYTHONWARNINGS", None)
    return env


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "medfuse.cli", *argv], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _complete_run(argv: list[str]) -> tuple[float, float]:
    """Run to the end; return (seconds until the first PROGRESS line or 0, total seconds)."""
    t0 = time.perf_counter()
    proc = _start(argv)
    first = 0.0
    for line in proc.stdout:
        if line.startswith("PROGRESS") and not first:
            first = time.perf_counter() - t0
    proc.wait(timeout=120)
    err = proc.stderr.read()
    assert proc.returncode in (0, 1), err  # batch: 1 when a case failed (none should here)
    return first, time.perf_counter() - t0


def _kill_after(argv: list[str], delay: float) -> None:
    proc = _start(argv)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def _check_complete(path: Path) -> None:
    """A file under a final name must be whole: it loads completely in its format."""
    name = path.name
    if name.endswith((".nii.gz", ".nii")):
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)  # reads (and for .gz decompresses) every byte
        assert data.size == int(np.prod(img.shape)), path
    elif name.endswith(".json"):
        json.loads(path.read_text())
    elif name.endswith(".png"):
        with Image.open(path) as im:
            im.load()
    elif name.endswith(".tfm"):
        import SimpleITK as sitk

        sitk.ReadTransform(str(path))
    elif name.endswith(".csv"):
        read_manifest(path)
    elif name.endswith(".html"):
        assert path.read_text().rstrip().endswith("</html>"), path


def _final_files(out: Path) -> list[Path]:
    """Files under final names: not temporaries (``.<name>.<random>.part<ext>``) nor the batch's staging area."""
    return [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".") and STAGING not in p.parts]


def _delays(rng: np.random.Generator, first: float, total: float) -> list[float]:
    lo = max(0.05, first * 0.9)
    return sorted(float(d) for d in rng.uniform(lo, max(lo + 0.1, total), N_KILLS))


def _fuse_case(tmp_path: Path) -> list[str]:
    aff = np.diag([2.0, 2.0, 2.5, 1.0])
    save_volume(Volume(brain_like((40, 44, 32), seed=1) * 5, aff, "MR"), tmp_path / "t1.nii.gz")
    save_volume(Volume(brain_like((40, 44, 32), seed=2, contrast=3.0) * 100, aff, "PT"), tmp_path / "pet.nii.gz")
    return ["fuse", "--reference", str(tmp_path / "t1.nii.gz"), "--moving", str(tmp_path / "pet.nii.gz"),
            "--out", str(tmp_path / "out" / "fused.nii.gz"), "--method", "max", "--progress", "--force"]


def test_fuse_and_batch_killed_at_random_points_leave_no_partial_file(tmp_path):
    """One test, so that the complete ``fuse`` run that times the kill points serves both commands (each start
    of a medfuse process costs seconds of imports)."""
    # -- medfuse fuse: the complete run gives the time line; then killed runs; then a rerun (--force) completes
    argv = _fuse_case(tmp_path)
    out = tmp_path / "out"
    first, total = _complete_run(argv)
    expected = {"fused.nii.gz", "fused_moving.nii.gz", "fused_qc.png", "fused.json"}
    assert {p.name for p in _final_files(out)} == expected
    for p in out.iterdir():
        p.unlink()
    rng = np.random.default_rng(17)
    for delay in _delays(rng, first, total):
        _kill_after(argv, delay)
        for path in _final_files(out):
            _check_complete(path)
    _complete_run(argv)
    assert {p.name for p in _final_files(out)} == expected
    for path in _final_files(out):
        _check_complete(path)

    # -- medfuse batch (a tiny Harvard tree, in-process cases): killed runs, then a plain rerun completes
    root = write_harvard_tree(tmp_path / "harvard", n=2, size=32)
    cases = ["ct_mri/xg-1000", "ct_mri/xg-1001", "pet_mri/xg-1000", "pet_mri/xg-1001"]
    bout = tmp_path / "batch_out"
    argv = ["batch", "--dataset", "harvard", str(root), "--out", str(bout), "--workers", "0", "--method", "mean",
            "--no-progress"]
    for delay in _delays(rng, first, total * 1.2):
        _kill_after(argv, delay)
        for path in _final_files(bout):
            _check_complete(path)
        for case in cases:  # a case folder is absent or complete: batch.json and every output it lists
            folder = bout / case
            if folder.exists():
                marker = json.loads((folder / DONE_MARKER).read_text())
                for name in marker["outputs"]:
                    _check_complete(folder / name)
    _complete_run(argv)
    rows = read_manifest(bout / MANIFEST)
    assert sorted(r["case_id"] for r in rows) == cases
    assert all(r["status"] in ("done", "skipped") for r in rows), [(r["case_id"], r["message"]) for r in rows]
    assert not (bout / STAGING).exists() or not list((bout / STAGING).iterdir())
