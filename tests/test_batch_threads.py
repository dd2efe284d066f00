"""A batch worker limits its threads without importing torch for classical fusions (issue 26: per-case start-up);
torch, imported later by a network, still runs on the limited number of threads."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_limit_threads_leaves_torch_unimported_and_limits_it_when_a_network_imports_it():
    pytest.importorskip("torch")
    code = (
        "import sys\n"
        "from medfuse.batch.cases import limit_threads\n"
        "limit_threads(1)\n"
        "assert 'torch' not in sys.modules, 'limit_threads imported torch'\n"
        "import torch\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in __import__("os").environ.items()
                              if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_limit_threads_limits_an_already_imported_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    import SimpleITK as sitk

    from medfuse.batch.cases import limit_threads
    from medfuse.batch.settings import THREAD_VARIABLES

    for name in THREAD_VARIABLES:  # restored after the test
        monkeypatch.delenv(name, raising=False)
    before, itk_before = torch.get_num_threads(), sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        limit_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(itk_before)
