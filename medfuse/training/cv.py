"""Cross-validation by subject: case folds and one network per fold.

Every AANLIB case (subject) lies wholly in one fold. The network of fold ``i`` is trained on all the
other folds (no validation split: nothing is chosen on a validation loss) and is scored only on fold
``i`` by ``benchmarks/quality.py --cv-dir``. Config choices are made on an *inner* split of the
training folds (``--inner``: one more case-level split inside the training folds, never touching
fold ``i``), so the reported folds take no part in any choice.

    python -m medfuse.training.cv --pair ct_mri --method light --fold 0 [--folds 3] [--out-dir cv]
           [--config OVERRIDES.json] [--iterations N] [--inner] [--tag NAME] [--resume]

writes ``<out-dir>/<pair>/fold<i>/<pair>_<method>.pt`` (``--inner``: ``.../fold<i>/inner/``;
``--tag``: ``<pair>_<method>-<tag>.pt``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Sequence

__all__ = ["case_folds", "fold_cases", "inner_split", "fold_weights_path", "train_fold"]

log = logging.getLogger(__name__)

#: folds when not given: 3 (the PET-MRI set has 3 subjects, so 3 folds is leave-one-subject-out there)
DEFAULT_FOLDS = 3
FOLD_SEED = 0


def case_folds(cases: Sequence[str], k: int = DEFAULT_FOLDS, seed: int = FOLD_SEED) -> list[list[str]]:
    """Split the distinct cases into ``k`` folds: sorted, shuffled with ``random.Random(seed)``, dealt
    round-robin. ``k`` is capped at the number of cases.

    Raises:
        ValueError: ``k < 2`` or fewer than 2 cases.
    """
    unique = sorted(set(cases))
    if k < 2 or len(unique) < 2:
        raise ValueError(f"cross-validation needs k >= 2 and >= 2 cases; got k={k}, {len(unique)} case(s)")
    k = min(k, len(unique))
    random.Random(seed).shuffle(unique)
    return [sorted(unique[i::k]) for i in range(k)]


def fold_cases(data_dir, pair: str, k: int = DEFAULT_FOLDS, seed: int = FOLD_SEED) -> list[list[str]]:
    """The case folds of one task of a Harvard-layout folder."""
    from medfuse.datasets.harvard import find_harvard_pairs

    return case_folds([p.case for p in find_harvard_pairs(data_dir, tasks=[pair])], k, seed)


def inner_split(train_cases: Sequence[str], seed: int = FOLD_SEED) -> tuple[list[str], list[str]]:
    """(inner training, inner validation) cases inside the training folds: about a third (at least one
    case) held out, for choosing configs without looking at the outer test fold."""
    unique = sorted(set(train_cases))
    if len(unique) < 2:
        raise ValueError("an inner split needs at least 2 training cases")
    random.Random(seed + 1).shuffle(unique)
    n_val = max(1, round(len(unique) / 3))
    return sorted(unique[n_val:]), sorted(unique[:n_val])


def fold_weights_path(out_dir, pair: str, method: str, fold: int, inner: bool = False, tag: str | None = None) -> Path:
    d = Path(out_dir) / pair / f"fold{fold}"
    if inner:
        d = d / "inner"
    return d / (f"{pair}_{method}" + (f"-{tag}" if tag else "") + ".pt")


def train_fold(pair: str, method: str, fold: int, *, data_dir, out_dir, k: int = DEFAULT_FOLDS,
               config: dict | None = None, iterations: int | None = None, inner: bool = False,
               tag: str | None = None, force: bool = False, resume: bool = False, progress: bool = False):
    """Train ``method`` for ``pair`` on every fold but ``fold`` (``inner``: on the inner training cases
    of those folds only); ``resume``: continue the fold's checkpoint when it exists (a killed run);
    returns the trainer's summary with ``test_cases`` added."""
    from medfuse.training.trainer import train

    folds = fold_cases(data_dir, pair, k)
    test = folds[fold]
    train_cases = sorted(c for i, f in enumerate(folds) if i != fold for c in f)
    excluded = list(test)
    if inner:
        _, inner_val = inner_split(train_cases)
        excluded += inner_val
        test = inner_val
    cfg = {"val_fraction": 0.0, **(config or {})}
    out = fold_weights_path(out_dir, pair, method, fold, inner, tag)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = train(pair, method, out, config=cfg, data_dir=data_dir, iterations=iterations, force=force,
                    resume=resume, progress=progress, exclude_cases=excluded)
    summary["test_cases"] = test
    summary["wall_seconds"] = time.perf_counter() - t0
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument("--fold", type=int, required=True)
    ap.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "harvard"))
    ap.add_argument("--out-dir", default="cv")
    ap.add_argument("--config", default=None, help="JSON file of config overrides")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--inner", action="store_true", help="train on the inner split of the training folds")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--resume", action="store_true", help="continue the fold's checkpoint when it exists")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = json.loads(Path(args.config).read_text()) if args.config else None
    s = train_fold(args.pair, args.method, args.fold, data_dir=args.data, out_dir=args.out_dir, k=args.folds,
                   config=config, iterations=args.iterations, inner=args.inner, tag=args.tag, force=args.force,
                   resume=args.resume)
    print(json.dumps({"out": s["out"], "test_cases": s["test_cases"], "train_cases": s["split"]["train_cases"],
                      "wall_seconds": round(s["wall_seconds"], 1),
                      "seconds_per_iteration": round(s["seconds_per_iteration"], 3), "final": s["final"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
