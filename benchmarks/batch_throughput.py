"""Throughput of ``medfuse batch`` (cases per minute) on 3D cases, with 1 and 2 local Dask workers.

Two sets (``--sets``):

* ``phantom``: ``--cases`` phantom MRI + PET cases (:func:`medfuse.phantom.make_case`, a small MRI grid, a
  random rigid misalignment) as an ADNI-layout NIfTI tree (registration + fusion);
* ``brats``: the real BraTS case of ``shared/data/real/brats`` (TCGA-FG-6692, 240x240x155, four sequences)
  linked ``--cases`` times under BraTS names (``--sequences t1ce,flair`` fusion, no registration: one grid).

Each set runs the whole batch (discovery, registration, normalization, fusion, writing, sidecar, QC,
metrics) twice from scratch: with one worker and with two (each worker gets cores / workers threads).
Worker start-up is included in the wall time, as a user sees it; the per-case mean is reported too.
``--tree PATH`` runs medfuse from another tree (its workers too, through ``PYTHONPATH``), e.g. an
exported earlier commit for a before/after pair; ``--append`` adds the table to ``--out``.

    python benchmarks/batch_throughput.py [--cases 8] [--sets phantom,brats] [--method mean] [--tree DIR]
           [--label TEXT] [--append] [--out benchmarks/results/batch_throughput.md]
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
REAL = Path(os.environ.get("MEDFUSE_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


def use_tree(tree: str) -> None:
    """Import medfuse from ``tree`` here and in the Dask workers (they inherit ``PYTHONPATH``)."""
    sys.path.insert(0, str(tree))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])


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


def write_brats(root: Path, n: int) -> None:
    """``n`` links to the real BraTS case, each under its own BraTS-2021-style name."""
    src = REAL / "brats" / "TCGA-FG-6692"
    if not src.is_dir():
        raise SystemExit(f"real BraTS case not found in {src} (set MEDFUSE_REAL_DATA)")
    for i in range(n):
        case = root / f"BraTS2021_{i:05d}"
        case.mkdir(parents=True)
        for seq in ("t1", "t1ce", "t2", "flair"):
            (case / f"{case.name}_{seq}.nii.gz").symlink_to(src / f"TCGA-FG-6692_{seq}.nii.gz")


def run(dataset: str, root: Path, out: Path, workers: int, method: str) -> dict:
    from medfuse.batch import run_batch

    shutil.rmtree(out, ignore_errors=True)
    options = {"sequences": "t1ce,flair"} if dataset == "brats" else {}
    t0 = time.perf_counter()
    summary = run_batch(dataset, root, out, method=method, workers=workers, progress=False, report=False, **options)
    wall = time.perf_counter() - t0
    done = summary.counts.get("done", 0)
    per_case = [float(r["seconds"]) for r in summary.rows if r["status"] == "done"]
    return {"workers": workers, "cases": len(summary.rows), "done": done, "failed": summary.counts.get("failed", 0),
            "wall_s": wall, "per_min": 60.0 * done / wall if wall else 0.0,
            "mean_case_s": sum(per_case) / len(per_case) if per_case else float("nan")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--sets", default="phantom", help="comma-separated: phantom, brats")
    p.add_argument("--method", default="mean")
    p.add_argument("--tree", default=None, help="run medfuse from this tree (e.g. an exported earlier commit)")
    p.add_argument("--label", default="", help="a heading for the table (with --append)")
    p.add_argument("--append", action="store_true", help="append to --out instead of rewriting it")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "batch_throughput.md"))
    args = p.parse_args(argv)
    if args.tree:
        use_tree(args.tree)
    import medfuse

    lines = ["| set | workers | cases done | failed | wall time (s) | cases/min | mean s per case (in its worker) |",
             "|---|---|---|---|---|---|---|"]
    ratios = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="medfuse-throughput-") as tmp:
        tmp = Path(tmp)
        for name in [x.strip() for x in args.sets.split(",") if x.strip()]:
            data = tmp / f"data-{name}"
            if name == "brats":
                write_brats(data, args.cases)
            else:
                write_cases(data, args.cases)
            dataset = "brats" if name == "brats" else "adni"
            results = [run(dataset, data, tmp / f"out-{name}{w}", w, args.method) for w in (1, 2)]
            for r in results:
                lines.append(f"| {name} | {r['workers']} | {r['done']}/{r['cases']} | {r['failed']} | {r['wall_s']:.1f} | "
                             f"{r['per_min']:.2f} | {r['mean_case_s']:.1f} |")
            one, two = results
            ratios.append((name, two["per_min"] / one["per_min"] if one["per_min"] else float("nan"), results))
    text = "\n".join(lines) + "\n\n" + "; ".join(f"{n}: 2 workers / 1 worker **{r:.2f}x**" for n, r, _ in ratios) + "\n"
    print(text)
    header = (
        f"medfuse from `{medfuse.__file__.rsplit('/medfuse/', 1)[0]}`; sets {args.sets}, {args.cases} cases each "
        f"(phantom PET-MRI: MRI 64x76x60, registration + `{args.method}` fusion; brats: the real TCGA-FG-6692 case "
        f"240x240x155, t1ce + flair `{args.method}` fusion), QC + sidecar + metrics, local Dask cluster, wall time "
        "from the call to the last case (worker start-up included).\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}; load "
        f"average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other processes share the cores: a "
        f"ratio below 1 means the cores were busy); recorded {dt.datetime.now().isoformat(timespec='minutes')}.\n\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.append:
        with open(args.out, "a") as fh:
            fh.write(f"\n## {args.label}\n\n" + header + text)
    else:
        Path(args.out).write_text("# Batch throughput (`python benchmarks/batch_throughput.py`)\n\n"
                                  + (f"## {args.label}\n\n" if args.label else "") + header + text)
    print(f"recorded in {args.out}")
    return 0 if all(r["failed"] == 0 for _, _, rs in ratios for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
