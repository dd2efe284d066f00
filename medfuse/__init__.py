"""medfuse: medical image fusion that keeps the reference scan's geometry.

The public API is imported lazily so that ``import medfuse`` stays fast (no torch, MONAI or
SimpleITK until a function that needs them is called).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

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
