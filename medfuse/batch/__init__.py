"""Many cases at once: resumable, every case's outcome recorded.

:func:`run_batch` (``medfuse batch``) discovers the cases of a data set (Harvard, BraTS, ADNI:
:mod:`medfuse.datasets`), fuses each with the pipeline on a Dask cluster (local worker processes by
default, or an existing scheduler), and writes a manifest (one row per case), a discovery record and
an HTML report. :func:`fuse_directory` (``medfuse fuse-dir``) is the same runner on a Harvard-layout folder,
in this process, into ``OUT/<task>/<pair>/fused.png`` (a stable layout: ``medfuse evaluate-dir`` and the
quality benchmarks read it) with ``OUT/fuse-dir-log.csv``. See ``docs/batch.md``.

==========================  ================================================================================
:mod:`.settings`            :class:`BatchSettings`, :func:`settings_hash`, the names of what ``OUT`` holds
:mod:`.runner`              :func:`run_cases` (the one runner), its fronts :func:`run_batch` and
                            :func:`fuse_directory`, :class:`BatchSummary`
:mod:`.cases`               one case: :func:`up_to_date`, :func:`process_case` (staging, one rename into place)
:mod:`.fusion`              what a case runs: the pipeline's steps on two inputs or more, label maps carried
:mod:`.rows`                manifest rows, metrics, a case's error in the door's words
:mod:`.cluster`             Dask: a local cluster or a scheduler, lost workers
==========================  ================================================================================
"""

from __future__ import annotations

from medfuse.batch.cases import process_case, up_to_date
from medfuse.batch.rows import read_manifest, write_manifest
from medfuse.batch.runner import BatchSummary, default_workers, fuse_directory, run_batch, run_cases
from medfuse.batch.settings import (
    BATCH_LOG,
    DEFAULT_METRICS,
    DISCOVERY,
    DONE_MARKER,
    MANIFEST,
    MANIFEST_FIELDS,
    REPORT,
    STAGING,
    STRATEGIES,
    BatchSettings,
    settings_hash,
)

__all__ = ["fuse_directory", "BATCH_LOG", "run_batch", "run_cases", "process_case", "BatchSettings", "BatchSummary",
           "settings_hash", "up_to_date", "write_manifest", "read_manifest", "default_workers", "MANIFEST",
           "MANIFEST_FIELDS", "DONE_MARKER", "REPORT", "DISCOVERY", "STAGING", "STRATEGIES", "DEFAULT_METRICS"]
