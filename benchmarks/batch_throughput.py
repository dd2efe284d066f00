"""Throughput of ``medfuse batch`` (cases per minute) on small 3D cases, with 1 and 2 local Dask workers.

Writes ``--cases`` phantom MRI + PET cases (:func:`medfuse.phantom.make_case`, a small MRI grid, a
random rigid misalignment) as an ADNI-layout NIfTI tree, then runs the whole batch (discovery,
registration, normalization, fusion, writing, sidecar, QC, metrics) twice from scratch: with one
worker and with two (each worker gets cores / workers threads). Worker start-up is included in the
wall time, as a user sees it; the per-case mean is reported too. Prints both rates and their ratio.

    python benchmarks/batch_throughput.py [--cases 8] [--method mean] [--out benchmarks/results/batch_throughput.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_cases(root: Path, n: int, mri_shape=(64, 76, 60)) -> None:
    """``n`` phantom PET-MRI cases as ADNI NIfTI series (one subject each, PET 30 days after the MRI)."""
    from medfuse.io import save_volume
    from medfuse.phantom import make_case

    for i in range(n):
        case = make_case("pet", seed=i, mri_shape=mri_shape, max_rotation_deg=8.0, max_translation_mm=8.0)
        subject = f"{900 + i:03d}_S_{1000 + i:04d}"
        for desc, date, image_id, vol in (("MPRAGE", dt.date(2020, 1, 1), f"I{10 * i + 1}", case.mri),
                                          ("FDG_PET", dt.date(2020, 1, 31), f"I{10 * i + 2}", case.moving)):
            folder = root / "ADNI" / subject / desc / f"{date.isoformat()}_09_00_00.0" / image_id
            folder.mkdir(parents=True)
            save_volume(vol, folder / f"{subject}_{image_id}.nii.gz")


def run(root: Path, out: Path, workers: int, method: str) -> dict:
    from medfuse.batch import run_batch

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summary = run_batch("adni", root, out, method=method, workers=workers, progress=False, report=False)
    wall = time.perf_counter() - t0
    done = summary.counts.get("done", 0)
    per_case = [float(r["seconds"]) for r in summary.rows if r["status"] == "done"]
    return {"workers": workers, "cases": len(summary.rows), "done": done, "failed": summary.counts.get("failed", 0),
            "wall_s": wall, "per_min": 60.0 * done / wall if wall else 0.0,
            "mean_case_s": sum(per_case) / len(per_case) if per_case else float("nan")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--method", default="mean")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "batch_throughput.md"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medfuse-throughput-") as tmp:
        tmp = Path(tmp)
        write_cases(tmp / "data", args.cases)
        results = [run(tmp / "data", tmp / f"out{w}", w, args.method) for w in (1, 2)]
    one, two = results
    ratio = two["per_min"] / one["per_min"] if one["per_min"] else float("nan")
    lines = ["| workers | cases done | failed | wall time (s) | cases/min | mean s per case (in its worker) |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['workers']} | {r['done']}/{r['cases']} | {r['failed']} | {r['wall_s']:.1f} | "
                     f"{r['per_min']:.2f} | {r['mean_case_s']:.1f} |")
    text = "\n".join(lines) + f"\n\nratio 2 workers / 1 worker: **{ratio:.2f}x**\n"
    print(text)
    header = (
        "# Batch throughput (`python benchmarks/batch_throughput.py`)\n\n"
        f"{args.cases} phantom PET-MRI cases (MRI 64x76x60, registration + `{args.method}` fusion + QC + "
        "sidecar + metrics), ADNI NIfTI layout, local Dask cluster, wall time from the call to the last case "
        "(worker start-up included).\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}; load "
        f"average at the end {os.getloadavg()[0]:.1f} (other processes share the cores: a ratio below 1 means the "
        f"cores were busy); recorded {dt.date.today().isoformat()}.\n\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(header + text)
    print(f"recorded in {args.out}")
    return 0 if all(r["failed"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
