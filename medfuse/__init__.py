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
