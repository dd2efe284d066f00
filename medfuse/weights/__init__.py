"""The trained weights shipped with medfuse: the one source of truth for the API, CLI, bundles and Slicer.

Files live beside this module as ``<pair>_<method>.pt`` (a checkpoint loadable with
``torch.load(..., weights_only=True)``) with a provenance record ``<pair>_<method>.json``
(training data and its hash, config, seed, iterations, wall time, device, final losses, git
commit, validation metrics). ``defaults.json`` names the default network of each pair: the one
that won the quality benchmark (``benchmarks/quality.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["WEIGHTS_DIR", "weights_path", "provenance", "shipped_weights", "default_network"]

WEIGHTS_DIR = Path(__file__).resolve().parent


def weights_path(pair: str, method: str) -> Path | None:
    """Path of the shipped checkpoint for ``pair`` (``ct_mri``, ``pet_mri``, ``spect_mri``) and ``method``, or None."""
    path = WEIGHTS_DIR / f"{pair}_{method}.pt"
    return path if path.is_file() else None


def provenance(pair: str, method: str) -> dict | None:
    """The provenance record of a shipped checkpoint, or None."""
    path = WEIGHTS_DIR / f"{pair}_{method}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def shipped_weights() -> dict[tuple[str, str], Path]:
    """Every shipped checkpoint: ``{(pair, method): path}``."""
    out = {}
    for p in sorted(WEIGHTS_DIR.glob("*_*.pt")):
        pair, _, method = p.stem.rpartition("_")
        out[(pair, method)] = p
    return out


def default_network(pair: str | None) -> str | None:
    """The default network for ``pair`` (from ``defaults.json``) if its weights are shipped, else None."""
    path = WEIGHTS_DIR / "defaults.json"
    if pair is None or not path.is_file():
        return None
    method = json.loads(path.read_text()).get(pair)
    return method if method and weights_path(pair, method) else None
