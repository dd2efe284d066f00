"""The trained weights shipped with medfuse: the one source of truth for the API, CLI, bundles and Slicer.

Files live beside this module as ``<pair>_<method>.pt`` (a checkpoint loadable with
``torch.load(..., weights_only=True)``) with a provenance record ``<pair>_<method>.json``
(training data and its hash, config, seed, iterations, wall time, device, final losses, git
commit, validation metrics).

``defaults.json`` holds what ``benchmarks/quality.py --decision`` chose on the cross-validated folds:
``"method"``: per pair, the method ``medfuse fuse`` uses when none is given (the network that meets
the goal of issue 14 on the folds, else the best classical method), and ``"network"``: per pair, the
network used where a network is needed and none is named (the MONAI bundles, ``--method`` left to a
network family). A flat ``{pair: network}`` file (the format before the decision) means both.
``"without_torch"``: per pair whose default method is a network, the classical method used instead where torch is
not installed (``pip install medfuse`` alone; the decision's best classical method), with a warning saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["WEIGHTS_DIR", "weights_path", "provenance", "shipped_weights", "default_network", "default_method_for_pair",
           "torch_available"]

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


def _defaults() -> dict[str, dict[str, str]]:
    path = WEIGHTS_DIR / "defaults.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    if "method" not in data and "network" not in data:  # the flat {pair: network} format
        flat = {k: v for k, v in data.items() if isinstance(v, str)}
        return {"method": flat, "network": flat, "without_torch": {}}
    return {"method": dict(data.get("method") or {}), "network": dict(data.get("network") or {}),
            "without_torch": dict(data.get("without_torch") or {})}


def default_network(pair: str | None) -> str | None:
    """The default network for ``pair`` (``defaults.json`` ``"network"``) if its weights are shipped, else None."""
    if pair is None:
        return None
    method = _defaults()["network"].get(pair)
    return method if method and weights_path(pair, method) else None


def torch_available() -> bool:
    """Whether torch can be imported here (an optional extra: ``pip install -e ".[networks]"``)."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def default_method_for_pair(pair: str | None, with_torch: bool | None = None) -> str | None:
    """The method ``medfuse fuse`` uses for ``pair`` when none is given (``defaults.json`` ``"method"``):
    a classical method, or a network whose weights are shipped; None when unknown. Where the default is a network
    and torch is not installed (``with_torch``; None: look), the pair's ``"without_torch"`` classical method."""
    from medfuse.classical import CLASSICAL_METHODS

    if pair is None:
        return None
    defaults = _defaults()
    method = defaults["method"].get(pair)
    if not method:
        return None
    if method not in CLASSICAL_METHODS and defaults["without_torch"].get(pair) and not (
            torch_available() if with_torch is None else with_torch):
        return defaults["without_torch"][pair]
    return method if method in CLASSICAL_METHODS or weights_path(pair, method) else None
