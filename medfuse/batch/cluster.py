"""Cases on Dask: a local cluster of worker processes, or an existing scheduler; a lost worker's case is retried
by Dask and, when it kills every worker it gets, recorded as failed."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, Callable

from medfuse.batch.cases import up_to_date
from medfuse.batch.rows import base_row, now, one_line, row_from_marker
from medfuse.batch.settings import THREAD_VARIABLES, BatchSettings, settings_hash

__all__ = ["start_client", "run_on_dask"]


def start_client(workers: int | None, scheduler: str | None, threads: int | None):
    """A ``dask.distributed`` client: on ``scheduler``, else on a local cluster of worker processes.

    Raises:
        OptionError: ``dask.distributed`` is not installed (its option is ``workers``: 0 runs without Dask).
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        from medfuse.errors import OPTION, OptionError

        raise OptionError('medfuse batch needs dask.distributed: pip install "medfuse[batch]" (or pip install '
                          f'"dask[distributed]>=2023.1"), or set {OPTION} to 0 (every case in this process)',
                          option="workers") from err
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler:
        return Client(scheduler), None
    env = {k: str(threads) for k in THREAD_VARIABLES} if threads else {}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           env=env, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_on_dask(todo, func, out: Path, settings: BatchSettings, root: Path, force: bool, n_workers: int,
                scheduler: str | None, threads: int | None, finished: Callable[[dict[str, Any]], None]) -> None:
    """Submit every case of ``todo`` (``func(case, out, settings, root=, force=)``) and hand each row to
    ``finished`` as it comes back."""
    from dask.distributed import as_completed

    client, cluster = start_client(n_workers, scheduler, threads)
    try:
        futures = {}
        for case in todo:
            fut = client.submit(func, case, str(out), settings, root=str(root), force=force, pure=False,
                                key=f"medfuse-case-{uuid.uuid4().hex}")
            futures[fut] = case
        for fut in as_completed(futures):
            case = futures[fut]
            try:
                row = fut.result()
            except Exception as err:  # noqa: BLE001 - e.g. KilledWorker: the case killed its workers
                shash = settings_hash(settings, case)
                row = base_row(case, root, settings, shash)
                what = ("its worker process died (killed or out of memory) on every attempt"
                        if type(err).__name__ == "KilledWorker" else "the task failed")
                row.update(status="failed", message=f"{what}: {one_line(err, settings.name_option)}",
                           finished_at=now())
                state, _, marker = up_to_date(case, out, shash, deep=False)
                if state:  # an attempt finished and published before the worker died: keep it
                    row = row_from_marker(row, marker)
                    row.update(status="done", message="finished before its worker died")
            finished(row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
