"""``medfuse batch``: the command-line front of :func:`medfuse.batch.run_batch`.

:func:`add_batch_parser` registers the subcommand on the ``medfuse`` parser's subparsers
(``medfuse.cli.build_parser`` calls it); heavy imports happen only when the command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["add_batch_parser", "run_batch_command", "option_words"]

#: the options of ``medfuse batch`` (and of ``medfuse fuse-dir``: method, weights, device, force, tasks), each
#: the flag of :func:`medfuse.batch.run_batch`'s keyword
BATCH_OPTIONS = ("dataset", "method", "sequences", "strategy", "tasks", "window_days", "mri_series", "workers",
                 "scheduler", "limit", "metrics", "weights", "device", "force")


def option_words(option: str, role: str | None = None) -> str:
    """How ``medfuse batch`` and ``medfuse fuse-dir`` name an option in a message (:meth:`MedfuseError.render`):
    their own flag, or, for a choice they make the same way for every case (the pair check's override, an
    input's series or frame...), the flag of ``medfuse fuse``, which runs one case with it."""
    if option in BATCH_OPTIONS:
        return "--" + option.replace("_", "-")
    import dataclasses

    from medfuse.pipeline.options import InputOptions

    per_input = role in ("reference", "moving") and option in {f.name for f in dataclasses.fields(InputOptions)}
    flag = "--" + (f"{role}-" if per_input else "") + option.replace("_", "-")
    return f"`medfuse fuse {flag}` (on this case alone)"


def add_batch_parser(sub) -> argparse.ArgumentParser:
    """Add ``batch`` to ``sub`` (an ``argparse`` subparsers object); returns its parser."""
    p = sub.add_parser(
        "batch", help="fuse every case of a Harvard, BraTS or ADNI folder (Dask, resumable)",
        description="Discover the cases of ROOT (--dataset harvard|brats|adni), fuse each one into OUT/<case id>/ "
                    "on a Dask cluster (local worker processes by default, or --scheduler), and write "
                    "OUT/manifest.csv (one row per case: status done/failed/skipped, error, timings, metrics), "
                    "OUT/discovery.json (found, skipped and why) and OUT/report.html. Resumable: a rerun skips "
                    "cases whose outputs match their inputs and settings (unless --force); a failing case is "
                    "recorded and the others go on. See docs/batch.md.")
    p.add_argument("root", metavar="ROOT", help="the data set folder")
    p.add_argument("--dataset", required=True, choices=["harvard", "brats", "adni"], help="folder layout")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", default=None,
                   help="fusion method: mean, max, laplacian, wavelet, guided, or a network (fmmf, mdgan, msra, "
                        "light); default: the pipeline's default for each pair")
    p.add_argument("--sequences", default=None, metavar="A,B[,...]|all",
                   help="BraTS: sequences to fuse, the first is the reference (t1, t1ce, t2, flair or the 2023 "
                        "names t1n, t1c, t2w, t2f; default t1ce,flair; 'all' = t1,t1ce,t2,flair)")
    p.add_argument("--strategy", default="mean_of_pairs", choices=["mean_of_pairs", "sequential"],
                   help="three or more inputs: average of the reference fused with each other input (default), or "
                        "sequential fusion in the order given")
    p.add_argument("--tasks", default=None, help="Harvard: comma-separated subset of ct_mri,pet_mri,spect_mri")
    p.add_argument("--window-days", type=int, default=None,
                   help="ADNI: largest gap between a PET and its MRI, in days (default 180)")
    p.add_argument("--mri-series", default=None, metavar="REGEX",
                   help="ADNI: the MRI series description must match this regular expression (to resolve "
                        "ambiguous pairings, e.g. '^MPRAGE$')")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local Dask cluster of N worker processes (default: half the cores; threads per worker "
                            "= cores / N); 0 runs every case in this process without Dask")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786), for a real cluster")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N cases (by case id)")
    p.add_argument("--metrics", default=",".join(("EN", "SD", "MI", "SSIM")),
                   help="fusion metrics in the manifest, comma-separated, or 'none' (default EN,SD,MI,SSIM)")
    p.add_argument("--weights", default=None, help="network checkpoint for every case (default: shipped weights)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--force", action="store_true", help="redo cases whose outputs are already up to date")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_batch_command)
    return p


def run_batch_command(args) -> int:
    """Run ``medfuse batch``; exit code 0 when no case failed, else 1."""
    from medfuse.batch import run_batch
    from medfuse.errors import MedfuseError

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    try:
        summary = run_batch(
            args.dataset, args.root, args.out, method=args.method, sequences=args.sequences, tasks=tasks,
            window_days=args.window_days, mri_series=args.mri_series, strategy=args.strategy, metrics=args.metrics,
            weights=args.weights, device=args.device, workers=args.workers, scheduler=args.scheduler,
            force=args.force, limit=args.limit, report=not args.no_report, progress=not args.no_progress,
            name_option=option_words,
        )
    except MedfuseError as err:  # an option refused before any work: said in this command's words
        err.args, err.option = (err.render(option_words),), None
        raise
    c = summary.counts
    print(summary.discovery.summary())
    print(f"done {c.get('done', 0)}, skipped {c.get('skipped', 0)} (up to date), failed {c.get('failed', 0)} "
          f"in {summary.seconds:.1f} s")
    print(f"manifest: {summary.manifest}")
    if summary.report is not None:
        print(f"report: {summary.report}")
    return 1 if c.get("failed", 0) else 0
