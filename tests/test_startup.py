"""Fast from the first call: the core fuse path imports only what it uses, and the helpers made
faster for it behave as before (``benchmarks/startup.py`` measures the cost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("monai", "skimage", "sklearn", "nibabel", "SimpleITK", "matplotlib", "pydicom", "dask", "ignite")


def _run(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints a JSON object as its last line."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=full_env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_2d_fuse_with_the_default_network_imports_no_heavy_dependency(tmp_path):
    """`medfuse fuse` on a 2D PET-MRI pair (default network, QC picture, sidecar) loads neither MONAI
    nor the other optional heavy packages."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 48)).astype(np.uint8)).save(tmp_path / "mri.png")
    Image.fromarray(rng.integers(0, 256, (64, 48, 3)).astype(np.uint8)).save(tmp_path / "pet.png")
    code = f"""
import json, sys
from medfuse.cli import main
code = main(["fuse", "--reference", {str(tmp_path / "mri.png")!r}, "--moving", {str(tmp_path / "pet.png")!r},
             "--out", {str(tmp_path / "fused.png")!r}])
print(json.dumps({{"code": code, "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    out = _run(code)
    assert out["code"] == 0
    assert (tmp_path / "fused.png").is_file() and (tmp_path / "fused_qc.png").is_file()
    assert out["loaded"] == []


@pytest.mark.parametrize("method", ["max", "guided", None])
def test_2d_fuse_with_a_classical_method_imports_no_torch(tmp_path, method):
    """A classical method (and the default, which the quality benchmark made classical for every pair)
    never imports torch: choosing or checking the method lists the networks without importing them."""
    from PIL import Image

    from medfuse.classical import CLASSICAL_METHODS
    from medfuse.weights import default_method_for_pair

    if method is None and default_method_for_pair("pet_mri") not in CLASSICAL_METHODS:
        pytest.skip("the default PET-MRI method is a network")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 48)).astype(np.uint8)).save(tmp_path / "mri.png")
    Image.fromarray(rng.integers(0, 256, (64, 48, 3)).astype(np.uint8)).save(tmp_path / "pet.png")
    extra = [] if method is None else ["--method", method]
    code = f"""
import json, sys
from medfuse.cli import main
code = main(["fuse", "--reference", {str(tmp_path / "mri.png")!r}, "--moving", {str(tmp_path / "pet.png")!r},
             "--out", {str(tmp_path / "fused.png")!r}] + {extra!r})
print(json.dumps({{"code": code, "torch": "torch" in sys.modules}}))
"""
    out = _run(code)
    assert out == {"code": 0, "torch": False}


def test_importing_the_networks_does_not_import_monai():
    out = _run("import json, sys; import medfuse.networks, medfuse.inference, medfuse.fusion, medfuse.pipeline; "
               "from medfuse.networks import build_network; [build_network(n) for n in ('light', 'fmmf', 'msra', 'mdgan')]; "
               "print(json.dumps(sorted(m for m in ('monai', 'skimage', 'SimpleITK') if m in sys.modules)))")
    assert out == []


def test_omp_wait_policy_default_and_override():
    """medfuse makes OpenMP threads wait passively unless the user chose a policy (or torch came first)."""
    code = "import json, os, medfuse, torch; print(json.dumps(os.environ.get('OMP_WAIT_POLICY')))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == "PASSIVE"
    assert _run(code, {"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
    code_torch_first = "import json, os, torch, medfuse; print(json.dumps(os.environ.get('OMP_WAIT_POLICY')))"
    proc = subprocess.run([sys.executable, "-c", code_torch_first], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)
    assert json.loads(proc.stdout.splitlines()[-1]) is None  # too late to matter: left alone


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16, np.int64, np.uint8, np.uint16, bool])
def test_to_uint8_unchanged(dtype):
    """The colour path's rounding (rewritten without a float64 copy) gives what it gave before."""
    from medfuse.color import _to_uint8

    def before(a):
        return np.clip(np.rint(np.asarray(a, dtype=np.float64)), 0, 255).astype(np.uint8)

    rng = np.random.default_rng(1)
    if dtype is bool:
        a = rng.random((16, 16, 3)) > 0.5
    else:
        a = rng.normal(128, 150, (32, 32, 3))
        if np.dtype(dtype).kind == "f":
            a.flat[:16] = [0.5, 1.5, 2.5, -0.5, 254.5, 255.5, 255.49, -1e4, 1e4, np.inf, -np.inf, 127.5, 3.4999,
                           0.49999997, 252.5, -0.0]
        a = a.astype(dtype)
    got = _to_uint8(a)
    assert got.dtype == np.uint8 and np.array_equal(got, before(a))
    assert not np.shares_memory(got, a)
    halves = np.arange(-40, 1100, dtype=np.float32) / 4
    assert np.array_equal(_to_uint8(halves), before(halves))


@pytest.mark.parametrize("shape", [(), (7,), (33, 17), (24, 20, 9)])
def test_apply_colormap_unchanged(shape):
    """The colour map (rewritten in chunks, one channel at a time) gives bit-identical float32 RGB."""
    from medfuse import color

    def before(values, name):
        lut = color.colormap_lut(name).astype(np.float32)
        x = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0) * (len(lut) - 1)
        lo = np.floor(x).astype(np.intp)
        hi = np.minimum(lo + 1, len(lut) - 1)
        frac = (x - lo)[..., None]
        return (lut[lo] * (1.0 - frac) + lut[hi] * frac).astype(np.float32)

    rng = np.random.default_rng(2)
    values = rng.normal(0.5, 0.5, shape)
    if values.size >= 5:
        values.flat[:5] = [np.nan, np.inf, -np.inf, 1.0, 0.0]
    for name in color.COLORMAPS:
        got, want = color.apply_colormap(values, name), before(values, name)
        assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
        assert np.array_equal(got, want)


def test_apply_colormap_chunks(monkeypatch):
    """Volumes larger than one chunk are mapped piece by piece, with the same result."""
    from medfuse import color

    values = np.random.default_rng(3).random((40, 30, 7))
    whole = color.apply_colormap(values, "hot_iron")
    monkeypatch.setattr(color, "_CHUNK", 1000)
    assert np.array_equal(color.apply_colormap(values, "hot_iron"), whole)
