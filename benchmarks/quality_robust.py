"""Robustness table (issue 24, item 2): every method on the cross-validated folds with the test pairs
perturbed the way other collections differ, plus the out-of-collection SPECT pairs.

Each test pair of a fold (every ``--slice-step``-th slice, folds as ``benchmarks/quality.py``) is
perturbed, written as 8-bit PNGs (what a user's file holds) and fused by every method; a network is
scored on fold ``i`` only with weights trained on the other folds (``--cv-dir``, as quality.py). The
metrics measure the fusion against the inputs it was given (the perturbed sources). Perturbations,
fixed before any score was seen, applied to the test pairs only (never to training):

==========  ====================================================================================
``gamma``   MRI ``x ** 0.7``, the other scan ``x ** 1.5`` (another display / reconstruction curve)
``scale``   both scans ``0.6 x`` (another intensity scaling or window: nothing reaches white)
``noise``   Gaussian noise, sigma 0.03 of the scale, independent per scan (seed fixed per slice)
``blur``    Gaussian blur, sigma 1 pixel, both scans (another reconstruction kernel)
``lowres``  both scans down-sampled 2x (area) and back up (bilinear): half the resolution
==========  ====================================================================================

Opt-in (``--perturbations ...,pet_colours``; session 11): ``pet_colours`` re-draws a colour PET/SPECT slice in
medfuse's default 3D colour map, ``aanlib_pet``: its uptake read back from its own colours
(:func:`medfuse.hotspots.uptake_from_colours`) through ``aanlib_pet``; the MRI unchanged. It is what a 3D
SPECT volume looks like to the SPECT-MRI networks (a SPECT volume is fused in the PET map's colours, while 297 of
the 310 SPECT training slices are in the AANLIB SPECT map). Grey slices pass unchanged.

Colour PET/SPECT are perturbed per RGB channel and scored on luminance Y, as quality.py.
The out-of-collection check: the SPECT-MRI test pairs from the second collection
(``index.csv`` ``source_repo`` ``Zhaozixiang1228/MMIF-CDDFuse``, cases ``cdd-spect-*``), unperturbed,
scored with the fold weights that never saw their case.

    python benchmarks/quality_robust.py --cv-dir /tmp/mfcv --methods max,laplacian,guided,light-pyr \\
        [--slice-step 8] [--cache C.json] [--markdown OUT.md] [--json OUT.json]

For each task and perturbation: the table of means over the folds, the mean rank of each row (1 =
best, over the 10 metrics, among the rows of that table) and, for ``--default`` (a row), the metrics
on which it is below ``max``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from perturbations import PERTURBATIONS, RECOLOURINGS, perturb, perturbed_pairs  # noqa: E402,F401  (perturb: tests)
from quality import (METRIC_KEYS, NETWORKS, fold_pairs, fold_weights, mean_metrics, ranks,  # noqa: E402
                     row_method, score_slices)

OTHER_COLLECTION = "cdd-spect-"


def table_for(folds, pair: str, methods, cv_dir, cache) -> dict[str, dict[str, float]]:
    """Mean over folds of each method's per-fold means (networks with their fold weights only)."""
    out = {}
    for method in methods:
        name, tag = row_method(method)
        weights = [None] * len(folds)
        if name in NETWORKS:
            weights = [fold_weights(cv_dir, pair, name, i, tag) for i in range(len(folds))]
            if any(w is None for w in weights):
                continue
        per_fold = [mean_metrics(score_slices(ps, pair, name, w, cache)[0]) for (_, ps), w in zip(folds, weights) if ps]
        out[method] = {k: float(np.mean([f[k] for f in per_fold])) for k in METRIC_KEYS}
    return out


def render(title: str, table: dict, default: str | None) -> list[str]:
    rk = ranks(table)
    mean_rank = {m: float(np.mean([rk[m][k] for k in METRIC_KEYS])) for m in table}
    lines = [f"### {title}", "", "| method | " + " | ".join(METRIC_KEYS) + " | mean rank |",
             "|---" * (len(METRIC_KEYS) + 2) + "|"]
    for m in table:
        cells = [(f"**{table[m][k]:.4g}**" if rk[m][k] == 1 else f"{table[m][k]:.4g}") for k in METRIC_KEYS]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {mean_rank[m]:.1f} |")
    if default in table and "max" in table:
        below = [k for k in METRIC_KEYS if table[default][k] < table["max"][k]]
        best = min(mean_rank, key=mean_rank.get)
        lines.append("")
        lines.append(f"{default}: mean rank {mean_rank[default]:.1f} vs max {mean_rank['max']:.1f} (best row: {best} "
                     f"{mean_rank[best]:.1f}); below max on {len(below)}/10 ({', '.join(below) or 'none'})")
    lines.append("")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "harvard")
    ap.add_argument("--pairs", default="ct_mri,pet_mri,spect_mri")
    ap.add_argument("--methods", default="mean,max,laplacian,wavelet,guided")
    ap.add_argument("--perturbations", default=",".join(PERTURBATIONS))
    ap.add_argument("--default", default=None, help="the row compared with max in each table")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--cv-dir", type=Path, default=None)
    ap.add_argument("--slice-step", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if not (args.data / "ct_mri").is_dir():
        print(f"no Harvard data at {args.data}; pass --data", file=sys.stderr)
        return 2
    methods = args.methods.split(",")
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.is_file() else {}
    report, lines = {}, []
    with tempfile.TemporaryDirectory(prefix="medfuse-robust-") as tmp:
        for pair in args.pairs.split(","):
            folds = fold_pairs(args.data, pair, args.folds, args.slice_step)
            n = sum(len(ps) for _, ps in folds)
            report[pair] = {}
            if pair == "spect_mri":
                other = [(c, [p for p in ps if p.case.startswith(OTHER_COLLECTION)]) for c, ps in folds]
                m = sum(len(ps) for _, ps in other)
                t = report[pair]["other_collection"] = table_for(other, pair, methods, args.cv_dir, cache)
                lines += render(f"{pair}: the second collection's test pairs ({m} slices, unperturbed)", t, args.default)
            for kind in args.perturbations.split(","):
                pf = [(c, perturbed_pairs(ps, kind, Path(tmp) / pair)) for c, ps in folds]
                t = report[pair][kind] = table_for(pf, pair, methods, args.cv_dir, cache)
                lines += render(f"{pair}, {kind} ({n} slices)", t, args.default)
                print("\n".join(lines[-(len(t) + 6):]), flush=True)
                if args.cache:
                    args.cache.write_text(json.dumps(cache))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.markdown:
        args.markdown.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
