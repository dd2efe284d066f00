"""The HTML summary of a ``medfuse batch`` run: counts, discovery, metric tables, thumbnails.

Metrics are summarized per pair type (the case's input roles: ``MRI + CT``, ``MRI + PET``, ``T1CE +
FLAIR``...; ADNI PET also by tracer kind) and, within a pair type, per fusion method: the scores of
different pairs (or methods) are not on one scale, so they are never pooled into one table.

One self-contained file (``OUT/report.html``; thumbnails embedded as PNG data URIs) beside the
manifest it links to. It shows case ids only (the data set's pseudonyms), never input paths or
DICOM text: it can be shared like the manifest.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["write_batch_report", "sample_cases", "metric_summary", "pair_type", "metric_groups"]

#: how many cases get a thumbnail
SAMPLE_SIZE = 12
_THUMB_WIDTH = 360
_TEXT = ("case_id", "pair", "status", "method", "message", "reg_registered")


def sample_cases(rows: list[dict[str, Any]], n: int = SAMPLE_SIZE) -> list[dict[str, Any]]:
    """Up to ``n`` finished cases spread evenly over the sorted case ids (deterministic)."""
    ok = sorted((r for r in rows if r.get("status") in ("done", "skipped") and r.get("outputs")),
                key=lambda r: r["case_id"])
    if len(ok) <= n:
        return ok
    step = len(ok) / n
    return [ok[int(i * step)] for i in range(n)]


def _number(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def metric_summary(rows: list[dict[str, Any]], names) -> dict[str, dict[str, float]]:
    """``{metric: {"n", "mean", "median", "min", "max"}}`` over the finished cases."""
    import numpy as np

    out = {}
    for name in names:
        values = [v for v in (_number(r.get(name)) for r in rows if r.get("status") in ("done", "skipped"))
                  if v is not None]
        if values:
            a = np.asarray(values)
            out[name] = {"n": len(values), "mean": float(a.mean()), "median": float(np.median(a)),
                         "min": float(a.min()), "max": float(a.max())}
    return out


def pair_type(row: dict[str, Any]) -> str:
    """The pair type of a manifest row: its input roles in fusion order, reference first (``MRI + CT``), and the
    PET tracer kind where the data set records one (ADNI: ``MRI + PET (amyloid)``)."""
    import json

    roles = [part.split("=", 1)[0] for part in str(row.get("inputs") or "").split(";") if "=" in part]
    label = " + ".join(r.upper() for r in roles) or "unknown"
    try:
        info = json.loads(row.get("info") or "{}")
    except (TypeError, ValueError):
        info = {}
    kind = info.get("tracer_kind") if isinstance(info, dict) else None
    return f"{label} ({kind})" if kind else label


def metric_groups(rows: list[dict[str, Any]], names) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """:func:`metric_summary` of each ``(pair type, method)`` group of finished cases, sorted by pair type then
    method; groups without any metric value are left out."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") in ("done", "skipped"):
            groups.setdefault((pair_type(row), str(row.get("method") or "")), []).append(row)
    out = {}
    for key in sorted(groups):
        stats = metric_summary(groups[key], names)
        if stats:
            out[key] = stats
    return out


def _metric_tables(rows: list[dict[str, Any]], names) -> list[str]:
    """The report's metric section: one table per pair type, one per method where a pair type has several."""
    e = html.escape
    groups = metric_groups(rows, names)
    if not groups:
        return []
    parts = ["<h2>Metrics</h2><p>One table per pair type (and per method where the methods differ): scores of "
             "different pairs are not on one scale and are not pooled.</p>"]
    by_pair: dict[str, list[str]] = {}
    for pair, method in groups:
        by_pair.setdefault(pair, []).append(method)
    for pair, methods in by_pair.items():
        parts.append(f"<h3>{e(pair)}</h3>")
        for method in methods:
            stats = groups[(pair, method)]
            cases = max(v["n"] for v in stats.values())
            parts.append(f"<p>method <b>{e(method or 'unknown')}</b>: {cases} case(s)</p>"
                         f"<table class='metrics' data-pair='{e(pair)}' data-method='{e(method)}'><tr><th>metric</th>"
                         "<th>n</th><th>mean</th><th>median</th><th>min</th><th>max</th></tr>")
            parts += [f"<tr><td>{e(k)}</td><td>{v['n']}</td><td>{v['mean']:.4g}</td><td>{v['median']:.4g}</td>"
                      f"<td>{v['min']:.4g}</td><td>{v['max']:.4g}</td></tr>" for k, v in stats.items()]
            parts.append("</table>")
    return parts


def _thumbnail(out: Path, row: dict[str, Any]) -> str | None:
    """A data URI of the case's QC picture (else its fused image), scaled to a thumbnail."""
    from PIL import Image

    names = [n for n in str(row.get("outputs", "")).split(";") if n]
    qc = [n for n in names if n.endswith("_qc.png")]
    png = [n for n in names if n.endswith(".png")]
    for name in qc + png:
        path = out / name
        if not path.is_file():
            continue
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                if img.width > _THUMB_WIDTH:
                    img = img.resize((_THUMB_WIDTH, max(1, round(img.height * _THUMB_WIDTH / img.width))))
                buf = io.BytesIO()
                img.save(buf, format="PNG", optimize=True)
        except OSError:
            continue
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return None


def _fmt(value) -> str:
    v = _number(value)
    if v is None:
        return html.escape(str(value if value is not None else ""))
    return f"{v:.4g}"


def write_batch_report(summary, settings, path: str | os.PathLike | None = None) -> Path:
    """Write ``OUT/report.html`` for a :class:`medfuse.batch.BatchSummary`; returns its path."""
    from medfuse import __version__
    from medfuse.io.atomic import atomic_output

    out = Path(summary.out)
    path = Path(path) if path is not None else out / "report.html"
    manifest = Path(summary.manifest).name
    rows = summary.rows
    counts = summary.counts
    metrics = list(settings.metrics)
    found = summary.discovery
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>medfuse batch report</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#eee}"
        ".failed{background:#fdd}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0}"
        "figcaption{font-size:12px}</style></head><body>",
        f"<h1>medfuse batch: {e(found.dataset)}</h1>",
        f"<p>{len(rows)} case(s): <b>{counts.get('done', 0)} done</b>, {counts.get('skipped', 0)} skipped "
        f"(already up to date), <b>{counts.get('failed', 0)} failed</b>; {summary.seconds:.1f} s. "
        f"Method: {e(str(settings.method or 'default of each pair'))}; multi-input strategy: {e(settings.strategy)}; "
        f"medfuse {e(__version__)}. Manifest: <a href='{e(manifest)}'>{e(manifest)}</a>.</p>",
        "<h2>Discovery</h2><pre>" + e(found.summary()) + "</pre>",
    ]
    if found.skipped:
        parts.append("<details><summary>skipped folders and series</summary><table><tr><th>where</th><th>why</th></tr>")
        parts += [f"<tr><td>{e(s.where)}</td><td>{e(s.reason)}</td></tr>" for s in found.skipped[:500]]
        parts.append("</table></details>")
    parts += _metric_tables(rows, metrics)
    sample = sample_cases(rows)
    if sample:
        parts.append(f"<h2>Sample of cases ({len(sample)})</h2><div class='grid'>")
        for row in sample:
            uri = _thumbnail(out, row)
            if uri:
                parts.append(f"<figure><img src='{uri}' alt='{e(row['case_id'])}'><figcaption>{e(row['case_id'])}"
                             f"</figcaption></figure>")
        parts.append("</div>")
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        parts.append("<h2>Failed cases</h2><table><tr><th>case</th><th>message</th></tr>")
        parts += [f"<tr class='failed'><td>{e(r['case_id'])}</td><td>{e(str(r.get('message', '')))}</td></tr>"
                  for r in failed]
        parts.append("</table>")
    cols = ["case_id", "pair", "status", "method", "seconds", *metrics, "reg_registered", "reg_rotation_deg",
            "reg_translation_mm", "message"]
    parts.append("<h2>All cases</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
    for r in rows:
        cls = " class='failed'" if r.get("status") == "failed" else ""
        r = {**r, "pair": pair_type(r)}
        parts.append(f"<tr{cls}>" + "".join(
            f"<td>{_fmt(r.get(c, '')) if c not in _TEXT else e(str(r.get(c, '')))}</td>" for c in cols) + "</tr>")
    parts.append("</table></body></html>\n")
    with atomic_output(path, force=True) as tmp:
        tmp.write_text("\n".join(parts))
    return path
