"""Fusion quality benchmark: k-fold cross-validation by subject on the Harvard AANLIB pairs.

Every AANLIB case (subject) lies wholly in one fold (``medfuse.training.cv.case_folds``: sorted,
shuffled with seed 0, dealt round-robin; k=3 by default, which is leave-one-subject-out for the
3-subject PET-MRI set). A network is scored on fold ``i`` only with weights trained on the other
folds (``python -m medfuse.training.cv ... --fold i``, found in ``--cv-dir``); its config was chosen
without fold ``i`` (configs are compared on an inner split of the training folds, ``--inner``).
Classical methods have no training and are scored on every fold the same way.

Per fold: the mean of EN, SD, SF, AG, EI, MI, Qabf, SSIM, VIF, SCD over the fold's test slices
(colour PET/SPECT on Y: MRI, PET-Y, fused-Y). The table gives the mean over folds +- the standard
deviation over folds; ranks are taken on the means over folds. Goal checks (issue 14):

* each task's default network: first on >= 6 of 10 metrics, never last, and on each of Qabf, VIF
  and SSIM at least the best classical method's value minus 2% (relative);
* every network family: better than the median classical method on >= 6 of 10 metrics;
* issue 24's goal (``goal24`` lines; :mod:`peer_targets`): each network row ranked in one pool with the
  classical rows and the published rows of ``../shared/reference/peer-targets.md`` projected onto the folds
  (their ratio to ``max`` on the unseen pairs times the folds' ``max``): the lowest mean rank of the pool,
  never the worst, Qabf/VIF/SSIM >= 98% of the pool's best. When that file is here, the default decision
  uses this goal for networks (:data:`DECISION_RULE_PEERS`).

Each task's output ends with its **default decision** (:func:`default_decision`; ``--decision FILE``
writes them as JSON: ``{"method": {pair: default}, "tasks": {pair: details}}``): the network row (any network or config variant ``NET-TAG``) that meets the
goal above on the folds (several: the most firsts, then the fewest lasts); when none does, the best
classical method: the most firsts among the classical methods (ranked among themselves, so that
networks that failed the goal cannot move the choice by taking firsts from one of them), ties broken
by the fewest lasts, then by the lowest mean rank.

    python benchmarks/quality.py [--data ../shared/data/harvard] [--pairs ct_mri,pet_mri] [--folds 3]
           [--cv-dir DIR] [--slice-step N] [--cache CACHE.json] [--json OUT.json] [--markdown OUT.md]
           [--decision DECISION.json]
    python benchmarks/quality.py --cv-dir DIR --grid OUT.png   # one example per task, every method
    python benchmarks/quality.py --cv-dir DIR --inner --methods mean,...,guided,fmmf-anchor,fmmf-grad
           # configs compared on each outer fold's inner validation split (nested choice)

Networks without fold weights in ``--cv-dir`` are left out of the table (listed as not measured):
the shipped weights were trained on cases of every fold, so scoring them here would not be honest.
``--slice-step N`` scores every N-th slice of each case (the same slices for every method).
Per-slice scores are cached (``--cache``) by method, slice and weights digest. A method ``NET-TAG``
(e.g. ``light-fid``) scores the fold weights ``<pair>_NET-TAG.pt``: a config variant chosen on inner splits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_targets  # noqa: E402  (benchmarks/peer_targets.py)
from peer_targets import FIDELITY_KEYS, METRIC_KEYS, mean_ranks, ranks  # noqa: E402,F401  (one ranking for both)
from decision import (  # noqa: E402,F401  (the choosing rules; tests and quality_robust.py use them as quality.X)
    CLASSICAL, DECISION_RULE, DECISION_RULE_PEERS, KEEP3D_CLAUSE, NETWORKS, ROBUST_CLAUSE, above_median_classical,
    default_decision, family, goal_default, goal_family, inner_choice, inner_choice_views, inner_mean_rank,
    robust_clause, row_method, without_own_variants)

def fold_pairs(data: Path, pair: str, k: int, slice_step: int = 1):
    """``[(test cases, [HarvardPair, ...]), ...]`` for each fold (every ``slice_step``-th slice of each case)."""
    from medfuse.datasets.harvard import find_harvard_pairs
    from medfuse.training.cv import case_folds

    pairs = find_harvard_pairs(data, tasks=[pair])
    folds = case_folds([p.case for p in pairs], k)
    out = []
    for cases in folds:
        chosen = []
        for case in cases:
            of_case = [p for p in pairs if p.case == case]
            chosen += of_case[::slice_step]
        out.append((cases, chosen))
    return out


def inner_fold_pairs(data: Path, pair: str, k: int, slice_step: int = 1):
    """Like :func:`fold_pairs`, but each outer fold ``i`` gives its **inner validation** cases
    (``medfuse.training.cv.inner_split`` of the other folds' cases): where configs are compared for fold
    ``i`` without looking at it."""
    from medfuse.training.cv import inner_split

    outer = fold_pairs(data, pair, k, slice_step)
    out = []
    for i in range(len(outer)):
        train_cases = sorted(c for j, (cases, _) in enumerate(outer) if j != i for c in cases)
        val = inner_split(train_cases)[1]
        out.append((val, [p for j, (_, ps) in enumerate(outer) if j != i for p in ps if p.case in val]))
    return out


def _digest(path: Path | None) -> str:
    if path is None:
        return "-"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def fold_weights(cv_dir: Path | None, pair: str, method: str, fold: int, tag: str | None = None,
                 inner: bool = False) -> Path | None:
    if cv_dir is None:
        return None
    from medfuse.training.cv import fold_weights_path

    p = fold_weights_path(cv_dir, pair, method, fold, inner=inner, tag=tag)
    return p if p.is_file() else None


CACHE_VERSION = "hot2"


def fuse_pair(p, pair: str, method: str, weights=None, keep_hot: bool = True):
    """One Harvard pair fused as ``medfuse fuse`` does (no registration; colour PET/SPECT read back as
    luminance): ``(mri, other, fused, seconds)``, the loaded sources and the fused 0..255 image as the written
    8-bit PNG holds it. ``keep_hot=False``: without the hot-region floor (``medfuse fuse --no-keep-hot``)."""
    from medfuse.color import split_luminance
    from medfuse.io import load_volume
    from medfuse.pairs import MODALITY_OF_PAIR
    from medfuse.pipeline import FusionOptions, fuse_volumes

    mri = load_volume(p.mri, modality="MR")
    other = load_volume(p.other, modality=MODALITY_OF_PAIR[pair])
    result = fuse_volumes(mri, other, FusionOptions(method=method, register=False, weights=weights, keep_hot=keep_hot))
    fused = split_luminance(result.fused.rgb)[0] if result.fused.rgb is not None else result.fused.array
    return mri, other, np.clip(np.rint(fused), 0, 255), result.timings["fuse"]


def score_slices(pairs, pair: str, method: str, weights, cache: dict) -> tuple[list[dict], float]:
    """Metrics of each slice (cached) and the mean fusion time per slice (ms) of the uncached ones."""
    from medfuse.metrics import compute_metrics

    wkey = _digest(weights)
    rows = []
    for p in pairs:
        key = f"{pair}/{p.pair_id}/{method}/{wkey}/{CACHE_VERSION}"
        if key in cache:
            rows.append(cache[key]["metrics"])
            continue
        mri, other, fused, seconds = fuse_pair(p, pair, method, weights)
        row = {k: float(v) for k, v in compute_metrics((mri.array, other.array), fused, METRIC_KEYS).items()}
        cache[key] = {"metrics": row, "ms": 1000.0 * seconds}
        rows.append(row)
    ms = [cache[f"{pair}/{p.pair_id}/{method}/{wkey}/{CACHE_VERSION}"]["ms"] for p in pairs]
    return rows, float(np.median(ms)) if ms else float("nan")


def mean_metrics(rows: list[dict]) -> dict[str, float]:
    """The mean of each metric over per-slice score rows."""
    return {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS}


def render(pair: str, folds, mean, spread, times, missing) -> list[str]:
    rk = ranks(mean)
    n = len(mean)
    desc = "; ".join(f"fold {i}: {', '.join(c)} ({len(p)} slices)" for i, (c, p) in enumerate(folds))
    lines = [f"\n## {pair}: {len(folds)} folds by subject ({desc})",
             "mean over folds (± standard deviation over folds); **bold** = first",
             "| method | " + " | ".join(METRIC_KEYS) + " | ms/slice | #first | #last |",
             "|" + "---|" * (len(METRIC_KEYS) + 4)]
    for m, vals in mean.items():
        cells = []
        for k in METRIC_KEYS:
            mark = "**" if rk[m][k] == 1 else ""
            cells.append(f"{mark}{vals[k]:.4g}{mark} ±{spread[m][k]:.2g}")
        first = sum(rk[m][k] == 1 for k in METRIC_KEYS)
        last = sum(rk[m][k] == n for k in METRIC_KEYS)
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {times[m]:.1f} | {first} | {last} |")
    if missing:
        lines.append(f"not measured (no weights trained without the test fold for every fold): {', '.join(missing)}")
    return lines


def example_grid(data: Path, k: int, cv_dir: Path | None, methods, out: Path) -> None:
    """One slice per pair (the middle slice of fold 0's first case), each method's fused image side by side
    (networks with the weights of the slice's own fold, i.e. never trained on it); PET/SPECT in colour."""
    from PIL import Image, ImageDraw

    from medfuse.io import load_volume
    from medfuse.pairs import MODALITY_OF_PAIR
    from medfuse.pipeline import FusionOptions, fuse_volumes

    def tile(arr, rgb=None):
        img = rgb if rgb is not None else arr
        img = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(img).convert("RGB")

    rows = []
    for pair in ["ct_mri", "pet_mri", "spect_mri"]:
        cases, pairs = fold_pairs(data, pair, k)[0]
        of_case = [p for p in pairs if p.case == cases[0]]
        p = of_case[len(of_case) // 2]
        mri = load_volume(p.mri, modality="MR")
        other = load_volume(p.other, modality=MODALITY_OF_PAIR[pair])
        tiles = [("MRI", tile(mri.array)), (pair.split("_")[0].upper(), tile(other.array, other.rgb))]
        for method in methods:
            weights = None
            name, tag = row_method(method)
            if name in NETWORKS:
                weights = fold_weights(cv_dir, pair, name, 0, tag)
                if weights is None:
                    continue
            res = fuse_volumes(mri, other, FusionOptions(method=name, register=False, weights=weights))
            tiles.append((method, tile(res.fused.array, res.fused.rgb)))
        rows.append((f"{p.key}", tiles))
    size, pad, head = 256, 4, 18
    ncol = max(len(t) for _, t in rows)
    grid = Image.new("RGB", (ncol * (size + pad), len(rows) * (size + head + pad)), "white")
    draw = ImageDraw.Draw(grid)
    for r, (key, tiles) in enumerate(rows):
        y = r * (size + head + pad)
        for c, (name, im) in enumerate(tiles):
            x = c * (size + pad)
            grid.paste(im.resize((size, size)), (x, y + head))
            draw.text((x + 2, y + 2), f"{name}" + (f"  [{key}]" if c == 0 else ""), fill="black")
    grid.save(out)


def run_inner(args, methods: list[str], cache: dict) -> list[str]:
    """``--inner``: score ``methods`` on each outer fold's inner validation cases, networks with their
    inner weights (``--inner`` fold weights: trained on the inner training cases only), and apply
    :func:`inner_choice_views` to the network rows in the order given (base config first), over the views of
    ``--inner-views`` (the slices as given, and as each named perturbation of ``benchmarks/perturbations.py``
    hands them over)."""
    import tempfile

    from perturbations import perturbed_pairs

    views = args.inner_views.split(",")
    lines, report = [], {}
    with tempfile.TemporaryDirectory(prefix="medfuse-inner-") as tmp:
        for pair in args.pairs.split(","):
            folds = inner_fold_pairs(args.data, pair, args.folds, args.slice_step)
            nets = [m for m in methods if family(m) in NETWORKS]
            out = [f"\n## {pair}: configs compared on inner validation cases (never the outer test fold)"
                   + (f"; views: {', '.join(views)}" if views != ["asis"] else ""),
                   "| outer fold | inner validation cases | view | row | " + " | ".join(METRIC_KEYS)
                   + " | > median classical, mean rank | chosen |",
                   "|" + "---|" * (len(METRIC_KEYS) + 6)]
            report[pair] = []
            for i, (cases, pairs) in enumerate(folds):
                tables = {}
                for view in views:
                    vpairs = pairs if view == "asis" else perturbed_pairs(pairs, view, Path(tmp) / pair / str(i))
                    table = tables[view] = {}
                    for method in methods:
                        name, tag = row_method(method)
                        w = fold_weights(args.cv_dir, pair, name, i, tag, inner=True) if name in NETWORKS else None
                        if name in NETWORKS and w is None:
                            raise SystemExit(f"no inner weights for {method} on {pair} fold {i} in {args.cv_dir}; "
                                             f"train them with python -m medfuse.training.cv --pair {pair} --method "
                                             f"{name} --fold {i} --inner" + (f" --tag {tag}" if tag else ""))
                        rows, _ = score_slices(vpairs, pair, name, w, cache)
                        table[method] = mean_metrics(rows)
                        if args.cache:
                            args.cache.write_text(json.dumps(cache))
                peers = args.peers.get(pair)
                chosen, counts = inner_choice_views(tables, nets, peers) if nets else (None, {})
                for view, table in tables.items():
                    for m, vals in table.items():
                        cnt = (f"{len(above_median_classical(table, m))}/10, mean rank "
                               f"{inner_mean_rank(table, m, peers):.2f}") if m in counts else ""
                        mark = "**yes**" if m == chosen else ("" if m in counts else "(reference)")
                        out.append(f"| {i} | {', '.join(cases)} ({len(pairs)} slices) | {view} | {m} | "
                                   + " | ".join(f"{vals[k]:.4g}" for k in METRIC_KEYS) + f" | {cnt} | {mark} |")
                if len(views) > 1 and nets:
                    out.append(f"over the views [{pair}] fold {i}: " + ", ".join(
                        f"{m} {counts[m]}/{10 * len(views)}, mean rank "
                        f"{np.mean([inner_mean_rank(t, m, peers) for t in tables.values()]):.2f}" for m in nets))
                out.append(f"chosen [{pair}] fold {i}: {chosen}")
                report[pair].append({"inner_validation": cases, "n_slices": len(pairs), "views": views,
                                     "metrics": tables if len(views) > 1 else tables[views[0]],
                                     "better_than_median_classical": counts, "chosen": chosen})
            print("\n".join(out))
            lines += out
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "harvard")
    ap.add_argument("--pairs", default="ct_mri,pet_mri,spect_mri")
    ap.add_argument("--methods", default=None, help="comma-separated subset (default: all); NET-TAG scores the "
                    "fold weights <pair>_NET-TAG.pt (a config variant)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--cv-dir", type=Path, default=None, help="fold weights <dir>/<pair>/fold<i>/<pair>_<method>.pt")
    ap.add_argument("--default", default=None, help="network whose goal is checked (default: defaults.json)")
    ap.add_argument("--slice-step", type=int, default=1, help="score every N-th slice of each case")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None, help="per-slice score cache (JSON), read and updated")
    ap.add_argument("--json", type=Path, default=None, help="also write the tables as JSON")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables as Markdown")
    ap.add_argument("--decision", type=Path, default=None, help="also write each task's default decision (JSON)")
    ap.add_argument("--grid", type=Path, default=None, help="only write a PNG of one example per pair, every method")
    ap.add_argument("--carry", type=Path, default=None, help="a previous run's --json: rows of --methods that have "
                    "no fold weights in --cv-dir are taken from it (marked 'carried' in the table)")
    ap.add_argument("--inner", action="store_true", help="compare configs on each outer fold's inner validation "
                    "cases with the inner fold weights (list the base network row first); writes the choice per fold")
    ap.add_argument("--inner-views", default="asis", help="with --inner: the views of each inner split the rule "
                    "judges, comma-separated: asis (the slices as given) and perturbations of "
                    "benchmarks/perturbations.py, e.g. asis,pet_colours (session 12's SPECT-MRI round 5)")
    ap.add_argument("--peer-targets", type=Path, default=peer_targets.PEER_FILE,
                    help="the published rows (issue 24's goal; absent: that check is skipped)")
    ap.add_argument("--robust", type=Path, action="append", default=None, help="quality_robust.py --json (repeat "
                    "for several): a further clause of the second tier, not behind max in any robustness table")
    ap.add_argument("--keep3d", type=Path, default=None, help="quality_keep3d.py --json: the real templates' keeps, "
                    "a sixth clause of the default decision's second tier (issue 24, item 5)")
    args = ap.parse_args(argv)
    args.peers = peer_targets.read_peer_targets(args.peer_targets)
    args.keep3d = json.loads(args.keep3d.read_text()) if args.keep3d else None
    if args.robust:  # several files: one per task or per row, merged table by table
        merged: dict = {}
        for f in args.robust:
            for pair, kinds in json.loads(f.read_text()).items():
                for kind, rows in kinds.items():
                    merged.setdefault(pair, {}).setdefault(kind, {}).update(rows)
        args.robust = merged

    import torch

    torch.set_num_threads(args.threads)
    from medfuse.weights import default_network

    if not (args.data / "ct_mri").is_dir():
        print(f"no Harvard data at {args.data}; pass --data", file=sys.stderr)
        return 2
    if args.grid:
        example_grid(args.data, args.folds, args.cv_dir, args.methods.split(",") if args.methods else
                     CLASSICAL + NETWORKS, args.grid)
        return 0
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.is_file() else {}
    carry = json.loads(args.carry.read_text()) if args.carry else {}
    report, goals_met, out_lines, decisions = {}, True, [], {}
    methods = args.methods.split(",") if args.methods else CLASSICAL + NETWORKS
    if args.inner:
        out_lines = run_inner(args, methods, cache)
        if args.markdown:
            args.markdown.write_text("\n".join(out_lines).lstrip() + "\n")
        return 0
    for pair in args.pairs.split(","):
        folds = fold_pairs(args.data, pair, args.folds, args.slice_step)
        per_fold: dict[str, list[dict] | None] = {}
        times, missing, carried, carried_means = {}, [], [], {}
        for method in methods:
            weights = [None] * len(folds)
            name, tag = row_method(method)
            if name in NETWORKS:
                weights = [fold_weights(args.cv_dir, pair, name, i, tag) for i in range(len(folds))]
                if any(w is None for w in weights):
                    old = carry.get(pair, {})
                    if method in old.get("metrics", {}) and old.get("folds") == [c for c, _ in folds]:
                        per_fold[method] = old["per_fold"].get(method)
                        carried_means[method] = (old["metrics"][method], old["spread"][method])
                        times[method] = old["ms_per_slice"][method]
                        carried.append(method)
                    else:
                        missing.append(method)
                    continue
            t0 = time.perf_counter()
            fold_means, ms = [], []
            for (cases, pairs), w in zip(folds, weights):
                rows, t = score_slices(pairs, pair, name, w, cache)
                fold_means.append(mean_metrics(rows))
                ms.append(t)
            per_fold[method], times[method] = fold_means, float(np.mean(ms))
            if args.cache:
                args.cache.write_text(json.dumps(cache))
            print(f"[{pair}] {method}: scored in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        mean = {m: carried_means[m][0] if m in carried_means else
                {k: float(np.mean([f[k] for f in v])) for k in METRIC_KEYS} for m, v in per_fold.items()}
        spread = {m: carried_means[m][1] if m in carried_means else
                  {k: float(np.std([f[k] for f in v], ddof=1)) if len(v) > 1 else 0.0 for k in METRIC_KEYS}
                  for m, v in per_fold.items()}
        lines = render(pair, folds, mean, spread, times, missing)
        if carried:
            lines.append(f"carried from {args.carry.name} (no fold weights in --cv-dir this run; scored by an earlier "
                         f"run on the same folds): {', '.join(carried)}")
        default = args.default or default_network(pair)
        if default in mean:
            ok, txt = goal_default(mean, default)
            goals_met &= ok
            lines.append(f"goal [{pair}] {default} (default): {txt}")
        elif default:
            goals_met = False
            lines.append(f"goal [{pair}] {default} (default): not measured")
        for net in [m for m in mean if family(m) in NETWORKS]:
            if net != default:
                ok, txt = goal_default(mean, net)
                lines.append(f"goal [{pair}] {net}: {txt}")
            lines.append(f"family [{pair}] {net}: {goal_family(mean, net)[1]}")
            if args.peers.get(pair) and "max" in mean:
                lines.append(f"goal24 [{pair}] {net} (with the published rows): "
                             f"{peer_targets.goal_peer(mean, net, args.peers[pair], CLASSICAL)[1]}")
        if mean:
            dec = decisions[pair] = default_decision(mean, args.peers.get(pair),
                                                     args.keep3d.get(pair) if args.keep3d is not None else None,
                                                     args.robust.get(pair, {}) if args.robust is not None else None)
            if "clauses_met" in dec:
                cm = dec["clauses_met"]
                n = 5 + (args.keep3d is not None) + (args.robust is not None)
                shown = ", ".join(f"{m} {len(c)}/{n} ({', '.join(c) or 'none'})" for m, c in cm.items())
                why = (f"no network meets issue 24's goal on the folds; clauses of the goal met: {shown}; "
                       + (f"{dec['network_weights']} meets more than the classical choice"
                          if dec["kind"] == "network" else "no network meets more than the classical choice"))
            elif dec["kind"] == "network" and "mean_rank_with_published" in dec:
                why = (f"{dec['network_weights']} meets issue 24's goal on the folds (mean rank "
                       f"{dec['mean_rank_with_published'][dec['network_weights']]:.2f} with the published rows)")
            elif dec["kind"] == "network":
                why = (f"{dec['network_weights']} meets the goal on the folds ({dec['firsts'][dec['network_weights']]} "
                       f"firsts, {dec['lasts'][dec['network_weights']]} lasts)")
            else:
                why = (f"no network meets the goal on the folds; best classical method by most firsts among the "
                       f"classical methods, then fewest lasts: {dec['default']} ({dec['firsts'][dec['default']]} "
                       f"firsts, {dec['lasts'][dec['default']]} lasts among the classical methods)")
            lines.append(f"default decision [{pair}]: {dec['default']} ({dec['kind']}) - {why}")
        print("\n".join(lines))
        out_lines += lines
        report[pair] = {"folds": [c for c, _ in folds], "n_slices": [len(p) for _, p in folds],
                        "slice_step": args.slice_step, "per_fold": per_fold, "metrics": mean, "spread": spread,
                        "ms_per_slice": times, "not_measured": missing, "carried": carried}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.decision:
        args.decision.write_text(json.dumps({"method": {p: d["default"] for p, d in decisions.items()},
                                             "tasks": decisions}, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text("\n".join(out_lines).lstrip() + "\n")
    return 0 if goals_met else 1


if __name__ == "__main__":
    sys.exit(main())
