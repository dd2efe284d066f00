"""Many cases at once: resumable, every case's outcome recorded.

:func:`fuse_directory` fuses every pair of a Harvard-layout folder into
``OUT/<task>/<pair>/fused.png`` (same size; colour kept for PET/SPECT). That output layout is a
stable contract: ``medfuse evaluate-dir`` and the quality benchmarks read it.

Each run appends to ``OUT/fuse-dir-log.csv`` one row per case (``key, status, seconds, message``;
status ``ok``, ``skipped`` (already there) or ``failed``), so a batch can be stopped and run again:
done cases are skipped unless ``force``, and one bad pair never stops the others.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

__all__ = ["fuse_directory", "BATCH_LOG"]

log = logging.getLogger(__name__)

BATCH_LOG = "fuse-dir-log.csv"


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
) -> dict[str, int]:
    """Fuse every pair of a Harvard-layout folder.

    Args:
        data: folder with ``{ct_mri,pet_mri,spect_mri}/<pair>/{mri.png, ct.png|pet.png|spect.png}``.
        out: output folder; gets ``<task>/<pair>/fused.png`` and ``fuse-dir-log.csv``.
        method: fusion method (default: the shipped network of each pair, else ``mean``).
        force: redo pairs whose output exists.
        weights: a network checkpoint to use for every pair.
        tasks: restrict to these tasks.
        progress: show a progress bar.

    Returns:
        Counts ``{"ok": n, "skipped": n, "failed": n}``.
    """
    from tqdm.auto import tqdm

    from medfuse.datasets.harvard import find_harvard_pairs
    from medfuse.errors import MedfuseError
    from medfuse.fusion import MODALITY_OF_PAIR
    from medfuse.io import load_volume, save_volume
    from medfuse.pipeline import fuse_volumes

    pairs = find_harvard_pairs(data, tasks=tasks)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    log_path = out / BATCH_LOG
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new_log:
            writer.writerow(["key", "status", "seconds", "method", "message"])
        bar = tqdm(pairs, desc="fuse-dir", unit="pair", disable=not progress)
        for pair in bar:
            target = out / pair.task / pair.pair_id / "fused.png"
            if target.exists() and not force:
                counts["skipped"] += 1
                writer.writerow([pair.key, "skipped", 0, method or "", "output exists"])
                continue
            t0 = time.perf_counter()
            try:
                ref = load_volume(pair.mri, modality="MR")
                mov = load_volume(pair.other, modality=MODALITY_OF_PAIR[pair.task])
                result = fuse_volumes(ref, mov, method, register=False, weights=weights, device=device)
                save_volume(result.fused, target, force=force)
            except (MedfuseError, OSError, ValueError) as err:
                counts["failed"] += 1
                log.warning("%s failed: %s", pair.key, err)
                writer.writerow([pair.key, "failed", f"{time.perf_counter() - t0:.3f}", method or "", str(err)])
                continue
            counts["ok"] += 1
            writer.writerow([pair.key, "ok", f"{time.perf_counter() - t0:.3f}", result.method, ""])
            bar.set_postfix(counts)
        fh.flush()
    return counts
