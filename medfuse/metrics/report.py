"""Scoring fused files for ``medfuse evaluate`` and ``evaluate-dir``: loading, tables, CSV, comparison figure.

The commands in :mod:`medfuse.cli` print; the functions here return values and write files.

- :func:`evaluate_files` scores one case from files: 2D slices (PNG/TIFF; colour PET/SPECT and a
  colour fused image are scored on the Y of Pillow's YCbCr, as :func:`medfuse.io.load_volume`
  reads them) or 3D volumes on one grid (see :func:`~medfuse.metrics.registry.compute_volume_metrics`).
- :func:`evaluate_directory` scores ``fuse-dir`` outputs (``FUSED_DIR/<task>/<pair>/fused.png``)
  against their Harvard-layout sources, one folder per method; :func:`summarize`,
  :func:`format_summary`, :func:`write_rows_csv` and :func:`comparison_figure` report them.

2D images whose values lie in 0..255 (8-bit files) are scored as they are; other 2D images
(16-bit, float) are mapped to 0..255 by their robust percentiles like volumes.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from medfuse.metrics.registry import (
    METRICS,
    compute_metrics,
    compute_volume_metrics,
    resolve_metric_names,
    scale_to_255,
)

__all__ = [
    "load_case",
    "score_volumes",
    "evaluate_files",
    "format_scores",
    "PairScore",
    "evaluate_directory",
    "summarize",
    "format_summary",
    "write_rows_csv",
    "write_summary_csv",
    "comparison_figure",
    "FORMATS",
]

log = logging.getLogger(__name__)

FORMATS = ("json", "csv", "md")


# --- one case ----------------------------------------------------------------------------------


def load_case(sources: Sequence[str | os.PathLike], fused: str | os.PathLike, mask: str | os.PathLike | None = None):
    """Load ``(A, B, F[, mask])`` with :func:`medfuse.io.load_volume` and check they share a grid.

    Returns:
        ``(a, b, f, mask_array)``: three :class:`~medfuse.volume.Volume` and a boolean array or None.

    Raises:
        SpaceMismatchError: shapes or affines differ (register/resample first).
        FileNotFoundError, CorruptFileError, ...: from the readers.
    """
    from medfuse.errors import SpaceMismatchError
    from medfuse.io import load_volume

    if len(sources) != 2:
        raise ValueError(f"give exactly two source images (anatomical first), got {len(sources)}")
    a = load_volume(sources[0])
    b = load_volume(sources[1])
    f = load_volume(fused, check=False)  # a blank fused image is a (bad) result, not an input error
    for v in (a, b):
        if not v.same_grid(f):
            raise SpaceMismatchError(
                f"{v.name} and the fused image {f.name} are not on one grid (shapes {v.shape} vs {f.shape}; "
                "affines differ by "
                f"{float(np.abs(v.affine - f.affine).max()):.3g} mm): metrics compare voxels, so register/resample "
                "the sources onto the fused image's grid first (medfuse fuse writes the result on the reference grid)"
            )
    mask_array = None
    if mask is not None:
        m = load_volume(mask, check=False)
        if not m.same_grid(f):
            raise SpaceMismatchError(
                f"mask {m.name} is not on the fused image's grid (shape {m.shape} vs {f.shape}); resample it first"
            )
        mask_array = m.array > 0
    return a, b, f, mask_array


def _to_255_2d(array: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    x = np.asarray(array, dtype=np.float64)
    if float(x.min()) >= 0.0 and float(x.max()) <= 255.0:
        return x
    return scale_to_255(x, mask)


def score_volumes(a, b, f, metrics: Sequence[str] | str | None = None, mask: np.ndarray | None = None,
                  *, progress: bool = False) -> dict[str, float]:
    """Metrics of three :class:`~medfuse.volume.Volume` on one grid (2D slices or 3D volumes)."""
    if f.ndim == 2:
        arrays = [_to_255_2d(v.array, mask) for v in (a, b, f)]
        return compute_metrics((arrays[0], arrays[1]), arrays[2], metrics, mask)
    return compute_volume_metrics(
        (a.array, b.array), f.array, metrics, mask, modalities=(a.modality, b.modality), progress=progress
    )


def evaluate_files(
    sources: Sequence[str | os.PathLike],
    fused: str | os.PathLike,
    metrics: Sequence[str] | str | None = None,
    mask: str | os.PathLike | None = None,
    *,
    progress: bool = False,
) -> dict[str, float]:
    """Score one case from files: ``sources = (anatomical, other)``, ``fused``, optional ``mask`` file.

    Returns:
        ``{key: value}`` in :data:`~medfuse.metrics.METRICS` order.
    """
    names = resolve_metric_names(metrics)
    a, b, f, m = load_case(sources, fused, mask)
    return score_volumes(a, b, f, names, m, progress=progress)


def _number(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def format_scores(scores: dict[str, float], fmt: str = "json") -> str:
    """Render one case's scores: ``json`` (an object key -> number; non-finite -> null), ``csv``
    (a header row and a value row) or ``md`` (a table with the direction of each metric)."""
    if fmt == "json":
        return json.dumps({k: _number(v) for k, v in scores.items()}, indent=2)
    if fmt == "csv":
        keys = list(scores)
        return ",".join(keys) + "\n" + ",".join(format(scores[k], ".10g") for k in keys) + "\n"
    if fmt == "md":
        lines = ["| metric | value | better |", "|---|---:|---|"]
        lines += [f"| {k} | {v:.4f} | {METRICS[k].direction} |" for k, v in scores.items()]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


# --- directories -------------------------------------------------------------------------------


@dataclass
class PairScore:
    """The scores of one fused pair (``error`` set and ``scores`` empty when it failed)."""

    method: str
    task: str
    pair: str
    scores: dict[str, float]
    error: str = ""


def _method_names(dirs: Sequence[Path]) -> list[str]:
    names = [d.name or str(d) for d in dirs]
    if len(set(names)) < len(names):  # e.g. run1/out and run2/out: use the paths
        names = [str(d) for d in dirs]
    if len(set(names)) < len(names):
        raise ValueError(f"the same folder is given twice: {', '.join(map(str, dirs))}")
    return names


def _score_pair(job: tuple) -> PairScore:
    method, task, pair_id, mri, other, fused, names = job
    from medfuse.errors import MedfuseError

    try:
        scores = evaluate_files((mri, other), fused, names)
        return PairScore(method, task, pair_id, scores)
    except (MedfuseError, OSError, ValueError) as err:
        return PairScore(method, task, pair_id, {}, f"{type(err).__name__}: {err}")


def evaluate_directory(
    fused_dirs: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    metrics: Sequence[str] | str | None = None,
    *,
    tasks: Sequence[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> tuple[list[str], list[PairScore]]:
    """Score ``fuse-dir`` outputs against their sources.

    Args:
        fused_dirs: one folder per method, each ``<task>/<pair>/fused.png``; the method is named
            after the folder.
        data: the Harvard-layout folder holding the sources (``<task>/<pair>/{mri.png, ...}``).
        metrics: key names or None for all.
        tasks: restrict to these tasks (``ct_mri``, ``pet_mri``, ``spect_mri``).
        jobs: worker processes (1: in this process).
        progress: show a tqdm bar over pairs.

    With several methods only the pairs every method fused are scored (a fair comparison); the
    others are reported in the log.

    Returns:
        ``(method names, one PairScore per method and pair)``.

    Raises:
        NotADirectoryError: a folder is missing.
        FileNotFoundError: no fused pair found.
    """
    from tqdm.auto import tqdm

    from medfuse.datasets.harvard import find_harvard_pairs

    names = resolve_metric_names(metrics)
    dirs = [Path(d) for d in fused_dirs]
    for d in dirs:
        if not d.is_dir():
            raise NotADirectoryError(f"{d}: not a folder (expected a fuse-dir output: <task>/<pair>/fused.png)")
    methods = _method_names(dirs)
    pairs = find_harvard_pairs(data, tasks=tasks)
    present = [{p.key for p in pairs if (d / p.task / p.pair_id / "fused.png").is_file()} for d in dirs]
    for method, keys in zip(methods, present):
        if not keys:
            raise FileNotFoundError(
                f"{method}: no <task>/<pair>/fused.png matching a pair of {data} (is it a fuse-dir output?)"
            )
    common = set.intersection(*present)
    for method, keys in zip(methods, present):
        if len(keys) > len(common):
            log.warning("%s: %d fused pairs are missing from another method's output; scoring the %d common ones",
                        method, len(keys) - len(common), len(common))
    missing = len(pairs) - len(common)
    if missing:
        log.info("%d of %d source pairs have no fused output in every folder; skipped", missing, len(pairs))
    todo = [
        (method, p.task, p.pair_id, p.mri, p.other, d / p.task / p.pair_id / "fused.png", names)
        for method, d in zip(methods, dirs)
        for p in pairs
        if p.key in common
    ]
    bar = tqdm(total=len(todo), desc="evaluate", unit="pair", disable=not progress)
    results: list[PairScore] = []
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for r in pool.map(_score_pair, todo, chunksize=4):
                results.append(r)
                bar.update()
    else:
        for job in todo:
            results.append(_score_pair(job))
            bar.update()
    bar.close()
    for r in results:
        if r.error:
            log.warning("%s %s/%s: %s", r.method, r.task, r.pair, r.error)
    return methods, results


def summarize(results: Sequence[PairScore]) -> dict[tuple[str, str], dict[str, tuple[float, float, int]]]:
    """Mean, sample standard deviation (``ddof=1``; 0 for one pair) and count per (method, task) and metric.

    Failed pairs are left out; non-finite values (an infinite PSNR) are left out of that metric.
    """
    groups: dict[tuple[str, str], list[dict[str, float]]] = {}
    for r in results:
        if not r.error:
            groups.setdefault((r.method, r.task), []).append(r.scores)
    out = {}
    for key, rows in groups.items():
        stats = {}
        for metric in rows[0]:
            v = np.array([row[metric] for row in rows], dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size:
                stats[metric] = (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))
            else:
                stats[metric] = (float("nan"), float("nan"), 0)
        out[key] = stats
    return out


def format_summary(summary, methods: Sequence[str]) -> str:
    """One plain-text table per task: metrics as rows, methods as columns (``mean ± std``);
    with several methods the best mean of each row is marked with ``*``."""
    tasks = sorted({task for _, task in summary}, key=lambda t: (t not in ("ct_mri", "pet_mri", "spect_mri"), t))
    blocks = []
    for task in tasks:
        cols = [m for m in methods if (m, task) in summary]
        if not cols:
            continue
        n = max(s[2] for s in summary[(cols[0], task)].values()) if summary[(cols[0], task)] else 0
        metrics = list(summary[(cols[0], task)])
        cells = {}
        for metric in metrics:
            means = [summary[(m, task)][metric][0] for m in cols]
            finite = [x for x in means if math.isfinite(x)]
            best = None
            if len(cols) > 1 and finite:
                best = max(finite) if METRICS[metric].higher_is_better else min(finite)
            for m, mean in zip(cols, means):
                _, std, _ = summary[(m, task)][metric]
                mark = "*" if best is not None and mean == best else " "
                cells[(metric, m)] = f"{_fmt(mean)} ± {_fmt(std, like=mean)}{mark}"
        widths = [max(len(cols[i]), *(len(cells[(k, cols[i])]) for k in metrics)) for i in range(len(cols))]
        head = f"{'metric':<8} {'better':<6} " + " ".join(f"{c:>{w}}" for c, w in zip(cols, widths))
        lines = [f"{task} (n={n})", head, "-" * len(head)]
        for k in metrics:
            lines.append(f"{k:<8} {METRICS[k].direction:<6} "
                         + " ".join(f"{cells[(k, c)]:>{w}}" for c, w in zip(cols, widths)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _fmt(v: float, like: float | None = None) -> str:
    """4 significant-ish decimals chosen by the magnitude of ``like`` (default ``v``), so that a
    mean and its standard deviation share their decimals."""
    if not math.isfinite(v):
        return "nan"
    ref = abs(v if like is None or not math.isfinite(like) else like)
    decimals = 1 if ref >= 100 else 2 if ref >= 10 else 4
    return f"{v:.{decimals}f}"


def write_rows_csv(results: Sequence[PairScore], metrics: Sequence[str], path: str | os.PathLike,
                   *, force: bool = False) -> Path:
    """Write one row per method and pair: ``method, task, pair, <metrics...>, error`` (atomically)."""
    from medfuse.io.atomic import atomic_output

    with atomic_output(path, force) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["method", "task", "pair", *metrics, "error"])
            for r in results:
                w.writerow([r.method, r.task, r.pair,
                            *(format(r.scores[k], ".10g") if k in r.scores else "" for k in metrics), r.error])
    return Path(path)


def write_summary_csv(summary, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the summary in long form: ``method, task, metric, better, n, mean, std`` (atomically)."""
    from medfuse.io.atomic import atomic_output

    with atomic_output(path, force) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["method", "task", "metric", "better", "n", "mean", "std"])
            for (method, task), stats in summary.items():
                for metric, (mean, std, n) in stats.items():
                    w.writerow([method, task, metric, METRICS[metric].direction, n,
                                format(mean, ".10g"), format(std, ".10g")])
    return Path(path)


# --- comparison figure (Pillow only: no plotting dependency) -------------------------------------

_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def comparison_figure(summary, methods: Sequence[str], *, panel: tuple[int, int] = (230, 180), columns: int = 6):
    """A bar chart per metric (grouped by task, one colour per method, whiskers = ± std) as a Pillow image.

    Each panel's title says whether higher or lower is better; the y axis starts at 0 (or at the
    lowest ``mean - std`` when negative) and its top value is written on the axis.
    """
    from PIL import Image, ImageDraw

    tasks = sorted({task for _, task in summary}, key=lambda t: (t not in ("ct_mri", "pet_mri", "spect_mri"), t))
    metrics = list(next(iter(summary.values())))
    rows = math.ceil(len(metrics) / columns)
    pw, ph = panel
    legend_h = 28
    img = Image.new("RGB", (pw * min(columns, len(metrics)), legend_h + ph * rows), "white")
    draw = ImageDraw.Draw(img)
    small, title_font = _font(11), _font(13)
    x = 8
    for i, m in enumerate(methods):
        color = _PALETTE[i % len(_PALETTE)]
        draw.rectangle([x, 9, x + 12, 21], fill=color)
        draw.text((x + 16, 8), m, fill="black", font=title_font)
        x += 16 + int(draw.textlength(m, font=title_font)) + 18
    for idx, metric in enumerate(metrics):
        ox, oy = (idx % columns) * pw, legend_h + (idx // columns) * ph
        left, top, right, bottom = ox + 44, oy + 34, ox + pw - 8, oy + ph - 22
        info = METRICS[metric]
        draw.text((ox + 8, oy + 4), f"{metric} ({info.direction} is better)", fill="black", font=title_font)
        vals = [summary[(m, t)][metric] for t in tasks for m in methods if (m, t) in summary]
        lows = [mu - sd for mu, sd, _ in vals if math.isfinite(mu)]
        highs = [mu + (sd if math.isfinite(sd) else 0) for mu, sd, _ in vals if math.isfinite(mu)]
        if not highs:
            continue
        vmin, vmax = min(0.0, min(lows)), max(highs)
        vmax = vmax if vmax > vmin else vmin + 1.0

        def ypix(v, vmin=vmin, vmax=vmax, top=top, bottom=bottom):
            return bottom - (v - vmin) / (vmax - vmin) * (bottom - top)

        draw.line([left, top, left, bottom], fill="black")
        draw.line([left, ypix(0.0), right, ypix(0.0)], fill="black")
        draw.text((ox + 2, top - 6), _fmt(vmax), fill="black", font=small)
        if vmin < 0:
            draw.text((ox + 2, bottom - 6), _fmt(vmin), fill="black", font=small)
        group_w = (right - left) / max(len(tasks), 1)
        bar_w = max(2.0, (group_w - 10) / max(len(methods), 1))
        for ti, task in enumerate(tasks):
            gx = left + ti * group_w + 5
            for mi, m in enumerate(methods):
                if (m, task) not in summary:
                    continue
                mu, sd, _ = summary[(m, task)][metric]
                if not math.isfinite(mu):
                    continue
                x0 = gx + mi * bar_w
                draw.rectangle([x0, min(ypix(mu), ypix(0.0)), x0 + bar_w - 2, max(ypix(mu), ypix(0.0))],
                               fill=_PALETTE[mi % len(_PALETTE)])
                if math.isfinite(sd) and sd > 0:
                    xc = x0 + (bar_w - 2) / 2
                    draw.line([xc, ypix(mu - sd), xc, ypix(mu + sd)], fill="black")
            label = task.replace("_mri", "")
            draw.text((gx + (group_w - 10) / 2 - draw.textlength(label, font=small) / 2, bottom + 4), label,
                      fill="black", font=small)
    return img
