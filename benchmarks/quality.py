"""Fusion quality benchmark on the Harvard AANLIB validation cases (whole cases never seen in training).

For each pair (ct_mri, pet_mri, spect_mri): every classical baseline and every network with weights
(shipped in medfuse/weights, or given with --weights-dir DIR holding <pair>_<method>.pt), scored with
EN, SD, SF, AG, EI, MI, Qabf, SSIM, VIF, SCD (mean over the validation slices; colour PET/SPECT on
Y: MRI, PET-Y, fused-Y), with the rank of each method per metric, the time per 256x256 slice, and the
goal check of issue 6: the default network first on >= 6 of 10 metrics and never last.

    python benchmarks/quality.py [--data ../shared/data/harvard] [--pairs ct_mri,pet_mri] [--weights-dir DIR]
           [--max-slices N] [--json OUT.json]

The validation split is the trainer's: ``medfuse.training.data.split_by_case`` with the default
val_fraction 0.2 and split_seed 0, so the numbers are for cases no shipped model was trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRIC_KEYS = ["EN", "SD", "SF", "AG", "EI", "MI", "Qabf", "SSIM", "VIF", "SCD"]
CLASSICAL = ["mean", "max", "laplacian", "wavelet", "guided"]
NETWORKS = ["fmmf", "mdgan", "msra", "light"]


def validation_pairs(data: Path, pair: str, val_fraction: float = 0.2, seed: int = 0):
    from medfuse.datasets.harvard import find_harvard_pairs
    from medfuse.training.data import split_by_case

    pairs = find_harvard_pairs(data, tasks=[pair])
    _, val_cases = split_by_case([p.case for p in pairs], val_fraction, seed)
    return [p for p in pairs if p.case in set(val_cases)], val_cases


def find_weights(pair: str, method: str, weights_dir: Path | None):
    if weights_dir is not None:
        p = weights_dir / f"{pair}_{method}.pt"
        if p.is_file():
            return p
    from medfuse.weights import weights_path

    return weights_path(pair, method)


def score_method(pairs, pair: str, method: str, weights) -> tuple[dict[str, float], float]:
    """Mean metrics over the pairs and the mean fusion time per slice (ms, one slice per call)."""
    from medfuse.color import split_luminance
    from medfuse.fusion import MODALITY_OF_PAIR
    from medfuse.io import load_volume
    from medfuse.metrics import compute_metrics
    from medfuse.pipeline import fuse_volumes

    modality = MODALITY_OF_PAIR[pair]
    rows, seconds = [], 0.0
    if pairs:  # warm-up: imports, model loading and kernel selection are not fusion time
        fuse_volumes(load_volume(pairs[0].mri, modality="MR"), load_volume(pairs[0].other, modality=modality),
                     method, register=False, weights=weights)
    for p in pairs:
        mri = load_volume(p.mri, modality="MR")
        other = load_volume(p.other, modality=modality)
        result = fuse_volumes(mri, other, method, register=False, weights=weights)
        seconds += result.timings["fuse"]
        fused = split_luminance(result.fused.rgb)[0] if result.fused.rgb is not None else result.fused.array
        fused = np.clip(np.rint(fused), 0, 255)  # what the written 8-bit PNG holds
        rows.append(compute_metrics((mri.array, other.array), fused, METRIC_KEYS))
    means = {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS}
    return means, 1000.0 * seconds / max(len(pairs), 1)


def ranks(table: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
    """Rank (1 = best) of each method per metric; all 10 metrics are higher-is-better."""
    out = {m: {} for m in table}
    for k in METRIC_KEYS:
        order = sorted(table, key=lambda m: -table[m][k])
        for r, m in enumerate(order, 1):
            out[m][k] = r
    return out


def print_table(pair: str, table, times, n_slices: int, val_cases) -> None:
    rk = ranks(table)
    print(f"\n## {pair}: {n_slices} validation slices from cases {', '.join(val_cases)}")
    head = "| method | " + " | ".join(METRIC_KEYS) + " | ms/slice | #first | #last |"
    print(head)
    print("|" + "---|" * (len(METRIC_KEYS) + 4))
    n = len(table)
    for m, vals in table.items():
        cells = []
        for k in METRIC_KEYS:
            mark = "**" if rk[m][k] == 1 else ""
            cells.append(f"{mark}{vals[k]:.4g}{mark}")
        first = sum(rk[m][k] == 1 for k in METRIC_KEYS)
        last = sum(rk[m][k] == n for k in METRIC_KEYS)
        print(f"| {m} | " + " | ".join(cells) + f" | {times[m]:.1f} | {first} | {last} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "harvard")
    ap.add_argument("--pairs", default="ct_mri,pet_mri,spect_mri")
    ap.add_argument("--methods", default=None, help="comma-separated subset (default: all with weights)")
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--max-slices", type=int, default=None, help="cap the validation slices per pair (quick runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the tables as JSON")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from medfuse.weights import default_network

    if not (args.data / "ct_mri").is_dir():
        print(f"no Harvard data at {args.data}; pass --data", file=sys.stderr)
        return 2
    report, goals_met = {}, True
    for pair in args.pairs.split(","):
        pairs, val_cases = validation_pairs(args.data, pair)
        if args.max_slices:
            pairs = pairs[:: max(1, len(pairs) // args.max_slices)][: args.max_slices]
        table, times = {}, {}
        methods = args.methods.split(",") if args.methods else CLASSICAL + NETWORKS
        for method in methods:
            weights = None
            if method in NETWORKS:
                weights = find_weights(pair, method, args.weights_dir)
                if weights is None:
                    print(f"[{pair}] {method}: no weights, skipped", file=sys.stderr)
                    continue
            t0 = time.perf_counter()
            table[method], times[method] = score_method(pairs, pair, method, weights)
            print(f"[{pair}] {method}: scored in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        print_table(pair, table, times, len(pairs), val_cases)
        default = default_network(pair) if args.weights_dir is None else None
        candidates = [default] if default else [m for m in table if m in NETWORKS]
        rk = ranks(table)
        for net in candidates:
            first = sum(rk[net][k] == 1 for k in METRIC_KEYS)
            last = [k for k in METRIC_KEYS if rk[net][k] == len(table)]
            ok = first >= 6 and not last
            goals_met &= ok if default else True
            print(f"goal [{pair}] {net}{' (default)' if net == default else ''}: first on {first}/10 "
                  f"(need >= 6), last on {last or 'none'} -> {'MET' if ok else 'NOT MET'}")
        report[pair] = {"val_cases": val_cases, "n_slices": len(pairs), "metrics": table, "ms_per_slice": times}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if goals_met else 1


if __name__ == "__main__":
    sys.exit(main())
