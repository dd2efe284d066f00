"""The one batch runner: skip what is up to date, run the rest in this process or on Dask, keep the manifest.

:func:`run_cases` runs the cases of a :class:`~medfuse.datasets.base.Discovery` under one
:class:`~medfuse.batch.settings.BatchSettings`. Two fronts compose it: :func:`run_batch` (``medfuse batch``:
any data set, Dask, report) and :func:`fuse_directory` (``medfuse fuse-dir``: a Harvard-layout folder in this
process, ``OUT/<task>/<pair>/fused.png`` and ``OUT/fuse-dir-log.csv``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from medfuse.batch.cases import limit_threads, process_case, up_to_date
from medfuse.batch.rows import base_row, row_from_marker, write_manifest
from medfuse.batch.settings import (
    BATCH_LOG,
    DEFAULT_METRICS,
    DISCOVERY,
    MANIFEST,
    STAGING,
    STRATEGIES,
    BatchSettings,
    settings_hash,
)

__all__ = ["BatchSummary", "run_batch", "run_cases", "fuse_directory", "default_workers"]

log = logging.getLogger("medfuse.batch")


@dataclass
class BatchSummary:
    """What :func:`run_batch` returns."""

    out: Path
    rows: list[dict[str, Any]]
    discovery: Any
    seconds: float
    manifest: Path
    report: Path | None

    @property
    def counts(self) -> dict[str, int]:
        c = {"done": 0, "skipped": 0, "failed": 0}
        for r in self.rows:
            c[r["status"]] = c.get(r["status"], 0) + 1
        return c


def default_workers() -> int:
    """Local cluster size: half the cores (each worker then gets two threads), at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


def run_cases(
    found,
    out: Path,
    settings: BatchSettings,
    *,
    workers: int = 0,
    scheduler: str | None = None,
    threads: int | None = None,
    force: bool = False,
    progress: bool = True,
    desc: str | None = None,
    case_function=None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> BatchSummary:
    """Run every case of ``found`` into ``out``: staging, one manifest row per case, resume, Dask.

    Args:
        found: the :class:`~medfuse.datasets.base.Discovery` (its ``root`` resolves the inputs' relative names).
        out: the output folder (made; leftovers of killed attempts in ``OUT/.staging`` removed first).
        settings: what every case gets.
        workers: local Dask worker processes; 0 (and no ``scheduler``): every case in this process.
        scheduler: address of a running Dask scheduler.
        threads: threads per local worker (the Dask workers' environment).
        force: redo cases whose outputs are up to date.
        desc: the progress bar's label.
        case_function: replaces :func:`~medfuse.batch.cases.process_case` (tests).
        on_row: called with each case's row as it is known (skipped ones first).

    Returns:
        A :class:`BatchSummary` without report (``report`` None).
    """
    from tqdm.auto import tqdm

    from medfuse.io.atomic import atomic_output

    t_start = time.perf_counter()
    root = Path(found.root).resolve()
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / STAGING, ignore_errors=True)  # leftovers of killed attempts
    with atomic_output(out / DISCOVERY, force=True) as tmp:
        tmp.write_text(json.dumps(found.as_dict(), indent=2) + "\n")
    rows: dict[str, dict] = {}
    todo = []
    for case in found.cases:
        shash = settings_hash(settings, case)
        state, why, marker = (False, "forced", None) if force else up_to_date(case, out, shash, deep=False)
        if state:
            row = row_from_marker(base_row(case, root, settings, shash), marker)
            row.update(status="skipped", message=why)
            rows[case.case_id] = row
            if on_row is not None:
                on_row(row)
        else:
            todo.append(case)
    manifest = out / MANIFEST
    func = case_function or process_case
    bar = tqdm(total=len(found.cases), initial=len(rows), desc=desc or f"batch {found.dataset}", unit="case",
               disable=not progress)
    last_write = [0.0]

    def finished(row: dict) -> None:
        rows[row["case_id"]] = row
        if on_row is not None:
            on_row(row)
        bar.update(1)
        bar.set_postfix({s: sum(1 for r in rows.values() if r["status"] == s) for s in ("done", "skipped", "failed")},
                        refresh=False)
        if time.perf_counter() - last_write[0] > 2.0:
            write_manifest(list(rows.values()), manifest)
            last_write[0] = time.perf_counter()

    write_manifest(list(rows.values()), manifest)
    try:
        if todo and workers == 0 and not scheduler:
            limit_threads(None)
            for case in todo:
                finished(func(case, str(out), settings, root=str(root), force=force))
        elif todo:
            from medfuse.batch.cluster import run_on_dask

            run_on_dask(todo, func, out, settings, root, force, workers, scheduler, threads, finished)
    finally:
        bar.close()
        write_manifest(list(rows.values()), manifest)
    return BatchSummary(out, sorted(rows.values(), key=lambda r: r["case_id"]), found,
                        time.perf_counter() - t_start, manifest, None)


def _checked(method, strategy, metrics, weights, device, workers, scheduler):
    """The options of a batch, checked before any work (messages name each option as :data:`~medfuse.errors.OPTION`):
    the fusion's as every case's :class:`~medfuse.pipeline.FusionOptions` checks them (method, weights, device)."""
    from medfuse.errors import OPTION, OptionError, look_up
    from medfuse.pipeline import FusionOptions

    strategy = look_up(strategy, STRATEGIES, "multi-input fusion strategy", option="strategy")
    method = FusionOptions(method=method, weights=weights, device=device).method
    if isinstance(metrics, str):
        metrics = () if metrics.strip().lower() in ("", "none") else tuple(m.strip() for m in metrics.split(","))
    if metrics:
        from medfuse.metrics import resolve_metric_names

        metrics = tuple(resolve_metric_names(list(metrics)))
    if workers is not None and int(workers) < 0:
        raise OptionError(f"{OPTION} is {workers}: give a number of worker processes (0: every case in this "
                          "process, without Dask)", option="workers")
    if workers is not None and scheduler:
        raise OptionError(f"give either {OPTION} (a running Dask cluster) or a number of local workers, not both",
                          option="scheduler")
    return method, strategy, tuple(metrics or ()), None if weights is None else str(Path(weights).resolve())


def run_batch(
    dataset: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str | None = None,
    sequences=None,
    tasks=None,
    window_days: int | None = None,
    mri_series: str | None = None,
    strategy: str = "mean_of_pairs",
    metrics=DEFAULT_METRICS,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    limit: int | None = None,
    report: bool = True,
    progress: bool = True,
    case_function=None,
    name_option: Callable[[str, str | None], str] | None = None,
) -> BatchSummary:
    """Discover the cases of a data set and fuse them all; resumable; one manifest row per case.

    Args:
        dataset, root: the adapter and its folder (:func:`medfuse.datasets.discover`).
        out: output folder (layout: :mod:`medfuse.batch.cases`, ``docs/batch.md``).
        method: fusion method for every case (default: the pipeline's default per pair).
        sequences, tasks, window_days, mri_series: adapter options.
        strategy: three or more inputs (BraTS ``--sequences all``): ``mean_of_pairs`` or ``sequential``.
        metrics: metric names for the manifest (empty: none).
        workers: local Dask cluster size (default :func:`default_workers`); ``0``: no Dask, every
            case in this process (debugging, tiny runs).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``) instead of a local cluster.
        force: redo cases whose outputs are up to date.
        limit: only the first ``limit`` cases (sorted by case id).
        report: write ``OUT/report.html``.
        case_function: replaces :func:`process_case` (tests).
        name_option: how the calling door names an option in the manifest's messages (see
            :class:`~medfuse.batch.settings.BatchSettings`); None: the API's words.

    Returns:
        A :class:`BatchSummary` (rows, counts, manifest and report paths).

    Raises:
        OptionError: bad options (before any work); NotADirectoryError: ``root`` is not a folder.
    """
    from medfuse.datasets import discover

    t_start = time.perf_counter()
    method, strategy, metrics, weights = _checked(method, strategy, metrics, weights, device, workers, scheduler)
    found = discover(dataset, Path(root).resolve(), sequences=sequences, tasks=tasks, window_days=window_days,
                     mri_series=mri_series)
    found.limit(limit)
    log.info("%s", found.summary())
    n_workers = default_workers() if workers is None else int(workers)
    threads = max(1, (os.cpu_count() or 1) // max(1, n_workers)) if not scheduler else None
    settings = BatchSettings(found.dataset, method, strategy, metrics, weights, device, True, threads, name_option)
    summary = run_cases(found, Path(out).resolve(), settings, workers=n_workers, scheduler=scheduler,
                        threads=threads, force=force, progress=progress, case_function=case_function)
    summary.seconds = time.perf_counter() - t_start
    if report:
        from medfuse.report.batch_report import write_batch_report

        summary.report = write_batch_report(summary, settings)
    return summary


#: fuse-dir log status of each manifest status
_LOG_STATUS = {"done": "ok", "skipped": "skipped", "failed": "failed"}


def fuse_directory(
    data: str | os.PathLike,
    out: str | os.PathLike,
    method: str | None = None,
    *,
    force: bool = False,
    weights: str | os.PathLike | None = None,
    tasks=None,
    device: str = "cpu",
    progress: bool = True,
    name_option: Callable[[str, str | None], str] | None = None,
) -> dict[str, int]:
    """Fuse every pair of a Harvard-layout folder into ``OUT/<task>/<pair>/fused.png``, in this process.

    The batch runner (:func:`run_cases`) with what ``medfuse fuse-dir`` promises: ``OUT`` mirrors ``data``
    (``<task>/<pair>`` by the pair's folder name, which ``medfuse evaluate-dir`` and the quality benchmarks
    read), no QC picture, no metrics, no report; each pair's outcome appended to ``OUT/fuse-dir-log.csv``
    (``key, status, seconds, method, message``; status ``ok``, ``skipped`` (up to date) or ``failed``). Each
    pair folder also holds the sidecar ``fused.json`` and the batch record ``batch.json``; ``OUT`` the batch's
    ``manifest.csv`` and ``discovery.json``. A rerun skips pairs whose outputs match their inputs and settings
    (``force`` redoes them); one bad pair never stops the others.

    Args:
        data: folder with ``{ct_mri,pet_mri,spect_mri}/<pair>/{mri.png, ct.png|pet.png|spect.png}``.
        out: output folder.
        method: fusion method (default: each pair's default in ``medfuse/weights/defaults.json``, else ``mean``).
        force: redo pairs whose output is up to date.
        weights: a network checkpoint for every pair.
        tasks: restrict to these tasks.
        device: torch device of the networks.
        progress: show a progress bar.
        name_option: how the calling door names an option in messages (None: the API's words).

    Returns:
        Counts ``{"ok": n, "skipped": n, "failed": n}``.

    Raises:
        OptionError, UnsupportedInputError: an unknown method, weights with a classical method, a missing weights
            file, a CUDA device on a machine without one (before any work).
        NotADirectoryError, FileNotFoundError: ``data`` is not a folder, or holds no complete pair.
    """
    from medfuse.datasets.harvard import discover_harvard, require_pairs

    method, _, _, weights = _checked(method, "mean_of_pairs", (), weights, device, 0, None)
    found = require_pairs(discover_harvard(data, tasks=tasks, folder_names=True), data)
    settings = BatchSettings("harvard", method, metrics=(), weights=weights, device=device, qc=False,
                             name_option=name_option)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    log_path = out / BATCH_LOG
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new_log:
            writer.writerow(["key", "status", "seconds", "method", "message"])

        def logged(row: dict[str, Any]) -> None:
            status = _LOG_STATUS[row["status"]]
            counts[status] += 1
            writer.writerow([row["case_id"], status, row.get("seconds") or 0, row.get("method") or "",
                             row.get("message") or ""])

        run_cases(found, out, settings, force=force, progress=progress, desc="fuse-dir", on_row=logged)
    return counts
