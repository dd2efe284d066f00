"""Turn a ``medfuse train`` checkpoint into shipped weights with a provenance record.

    python -m medfuse.weights.ship CHECKPOINT [--quality QUALITY.json] [--default]

writes ``medfuse/weights/<pair>_<method>.pt`` (training state stripped; loads with
``torch.load(..., weights_only=True)``) and ``<pair>_<method>.json``: training data (the split's
cases and pairs, and its SHA-256), config, seed, iterations, wall time, device, final training and
validation losses, git commit, the command that reproduces it, and the validation metrics from
``benchmarks/quality.py --json`` when given. ``--default`` makes it the pair's default network.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from medfuse.weights import WEIGHTS_DIR

__all__ = ["ship_checkpoint"]

log = logging.getLogger(__name__)


def ship_checkpoint(checkpoint: str | Path, quality: dict | None = None, default: bool = False,
                    out_dir: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    """Write the stripped checkpoint and its provenance record; return both paths.

    ``quality``: the ``benchmarks/quality.py --json`` report (keyed by pair); the checkpoint's pair's
    entry becomes the record's validation metrics.
    """
    from medfuse.io.atomic import atomic_output
    from medfuse.training.checkpoint import read_checkpoint, save_checkpoint, strip_training_state

    ckpt = read_checkpoint(checkpoint)
    pair, method = ckpt["pair"], ckpt["network"]["name"]
    stem = f"{pair}_{method}"
    shipped = strip_training_state(ckpt)
    prov = dict(ckpt.get("provenance") or {})
    history = ckpt.get("history") or []
    validation = ckpt.get("validation") or []
    record = {
        "pair": pair,
        "method": method,
        "network": ckpt["network"],
        "iterations": int(ckpt["iteration"]),
        "seed": (ckpt.get("config") or {}).get("seed"),
        "config": ckpt.get("config"),
        "training_data": {
            "source": "Harvard Whole Brain Atlas (AANLIB) development pairs (shared/data/harvard)",
            "train_cases": ckpt["split"].get("train_cases"),
            "val_cases": ckpt["split"].get("val_cases"),
            "train_pairs": ckpt["split"].get("train_pairs"),
            "train_sha256": ckpt["split"].get("train_sha256"),
        },
        "final_training_losses": history[-1] if history else None,
        "final_validation_losses": validation[-1] if validation else None,
        "provenance": prov,
        "validation_metrics": (quality or {}).get(pair),
        "reproduce": (f"medfuse train --pair {pair} --method {method} --config medfuse/weights/{stem}.json "
                      f"--data ../shared/data/harvard --seed {(ckpt.get('config') or {}).get('seed', 0)} "
                      f"--iterations {int(ckpt['iteration'])} --out {stem}.pt"),
    }
    pt, js = out_dir / f"{stem}.pt", out_dir / f"{stem}.json"
    save_checkpoint(shipped, pt)
    with atomic_output(js, force=True) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    if default:
        defaults_path = out_dir / "defaults.json"
        defaults = json.loads(defaults_path.read_text()) if defaults_path.is_file() else {}
        if "network" not in defaults:  # the flat {pair: network} format: the same table for both keys
            flat = {k: v for k, v in defaults.items() if isinstance(v, str)}
            defaults = {"method": dict(flat), "network": dict(flat)}
        # the default network of the pair; the default *method* is the quality benchmark's decision
        # (benchmarks/quality.py --decision), not changed by shipping a checkpoint
        defaults["network"][pair] = method
        with atomic_output(defaults_path, force=True) as tmp:
            tmp.write_text(json.dumps(defaults, indent=2, sort_keys=True) + "\n")
    return pt, js


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--quality", type=Path, default=None, help="benchmarks/quality.py --json output")
    ap.add_argument("--default", action="store_true", help="make it the default network of its pair")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = json.loads(args.quality.read_text()) if args.quality else None
    for path in ship_checkpoint(args.checkpoint, report, args.default):
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
