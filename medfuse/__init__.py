"""medfuse: medical image fusion that keeps the reference scan's geometry.

The public API is imported lazily so that ``import medfuse`` stays fast (no torch, MONAI or
SimpleITK until a function that needs them is called).

OpenMP threads wait passively: when medfuse is imported before torch and ``OMP_WAIT_POLICY`` is not
set, it is set to ``PASSIVE`` (set the variable yourself to override). medfuse runs many small
network passes (a 256x256 slice takes a few milliseconds); with the OpenMP default, torch's threads
spin at every barrier, and on a machine whose cores are busy with other work one pass of the default
network cost 50-260 ms of CPU instead of ~11 ms (2 cores, measured in ``benchmarks/startup.py``).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__version__ = "0.1.0"

if "torch" not in sys.modules:  # read once, when torch loads its OpenMP runtime
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# public name -> module that defines it
_API = {
    "Volume": "medfuse.volume",
    "load_volume": "medfuse.io",
    "save_volume": "medfuse.io",
    "list_series": "medfuse.io.dicom",
    "read_dicom_series": "medfuse.io.dicom",
    "fuse_volumes": "medfuse.pipeline",
    "fuse_files": "medfuse.pipeline",
    "FusionResult": "medfuse.pipeline",
    "fuse_arrays": "medfuse.fusion",
    "available_methods": "medfuse.fusion",
    "register": "medfuse.registration",
    "resample_to_reference": "medfuse.registration",
    "normalize": "medfuse.intensity",
    "compute_metrics": "medfuse.metrics",
    "fuse_classical": "medfuse.classical",
    "build_network": "medfuse.networks",
    "fuse_with_network": "medfuse.inference",
    "make_case": "medfuse.phantom",
    "PhantomCase": "medfuse.phantom",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'medfuse' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
