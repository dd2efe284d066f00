"""One case: is it up to date, and if not, fuse it in staging and publish the finished folder in one rename.

Layout of ``OUT`` (``docs/batch.md``)::

    OUT/<case id>/fused.<ext>, fused.json (the pipeline's sidecar), [fused_qc.png], [fused_moving.nii.gz],
                  [seg.nii.gz], batch.json (written last: settings hash, input fingerprints, the case's row)
    OUT/.staging/ work in progress: each attempt of a case writes here, then the whole case folder is renamed
                  into place (one atomic rename), so a final folder is always complete; leftovers of killed
                  attempts are removed at the next run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from medfuse.batch.fusion import carry_label, fuse_many, fuse_pair, fused_name
from medfuse.batch.rows import base_row, case_message, case_metrics, now, one_line, row_from_marker, sidecar_figures
from medfuse.batch.settings import DONE_MARKER, STAGING, THREAD_VARIABLES, BatchSettings, fingerprint, settings_hash

__all__ = ["process_case", "up_to_date", "case_dir", "limit_threads"]

log = logging.getLogger("medfuse.batch")


def case_dir(out: Path, case_id: str) -> Path:
    """The final folder of a case (a case id is a relative path of plain names)."""
    parts = Path(case_id).parts
    if not parts or Path(case_id).is_absolute() or any(p in ("..", ".", "") or p.startswith(".") for p in parts):
        raise ValueError(f"case id {case_id!r} cannot name an output folder")
    return out.joinpath(*parts)


def _sidecar_roles(case) -> dict[str, str]:
    """Case role -> key of ``inputs`` in the sidecar (the pipeline's sidecar says reference/moving)."""
    roles = list(case.inputs)
    if len(roles) == 2:
        return {roles[0]: "reference", roles[1]: "moving"}
    return {r: r for r in roles}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _fingerprints(case) -> dict[str, str]:
    prints = {r: fingerprint(p) for r, p in case.inputs.items()}
    prints.update({f"label:{k}": fingerprint(p) for k, p in case.labels.items()})
    return prints


def up_to_date(case, out: str | os.PathLike, shash: str, *, deep: bool = True) -> tuple[bool | None, str, dict | None]:
    """Whether a case's finished outputs exist and match its inputs and settings.

    Returns:
        ``(state, why, marker)``: state True (up to date: skip), False (redo), or None (the input
        files' fingerprints changed and ``deep`` is false: loading them is needed to tell).
        With ``deep`` the inputs are loaded and their values hashed, compared with the sidecar's
        ``inputs.<role>.sha256_of_values`` (a touched but unchanged file is still up to date).
    """
    folder = case_dir(Path(out), case.case_id)
    marker = _read_json(folder / DONE_MARKER)
    if marker is None:
        return False, "no finished output", None
    if marker.get("settings_hash") != shash:
        return False, "settings changed", marker
    if not all((folder / name).is_file() for name in marker.get("outputs", [])):
        return False, "an output is missing", marker
    from medfuse.report.sidecar import sidecar_path

    sidecar = _read_json(sidecar_path(folder / fused_name(case))) or {}
    roles = _sidecar_roles(case)
    recorded = {r: ((sidecar.get("inputs") or {}).get(k) or {}).get("sha256_of_values") for r, k in roles.items()}
    if any(v is None or v != (marker.get("input_hashes") or {}).get(r) for r, v in recorded.items()):
        return False, "the sidecar does not match the batch record", marker
    prints = _fingerprints(case)
    if prints == marker.get("fingerprints"):
        return True, "up to date (inputs unchanged, same settings)", marker
    if not deep:
        return None, "input files touched: values to be checked", marker
    if any(k.startswith("label:") and marker["fingerprints"].get(k) != v for k, v in prints.items()):
        return False, "a label map changed", marker
    from medfuse.io import load_volume
    from medfuse.report.sidecar import array_sha256

    for role, path in case.inputs.items():
        if array_sha256(load_volume(path, modality=case.modalities.get(role)).array) != recorded[role]:
            return False, f"input {role} changed", marker
    marker["fingerprints"] = prints  # same values: remember the new fingerprints
    from medfuse.io.atomic import atomic_output

    with atomic_output(folder / DONE_MARKER, force=True) as tmp:
        tmp.write_text(json.dumps(marker, indent=2) + "\n")
    return True, "up to date (input files touched, values unchanged)", marker


def limit_threads(threads: int | None) -> None:
    """Limit torch, ITK and OpenMP to ``threads`` threads in this process (None: leave as is).

    torch is limited here only when already imported; otherwise the environment variables set here limit it when
    a network imports it (torch reads ``OMP_NUM_THREADS`` when it loads): a batch of classical fusions never pays
    torch's import (~2-7 s per worker process).
    """
    if not threads:
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def process_case(case, out: str | os.PathLike, settings: BatchSettings, *, root: str | os.PathLike | None = None,
                 force: bool = False) -> dict[str, Any]:
    """Fuse one case into ``OUT/<case id>/`` and return its manifest row (never raises for a case's error).

    Runs on a Dask worker (or in-process). Skips the case when its outputs are up to date (unless
    ``force``). The work is done in ``OUT/.staging/<unique>/`` and the finished folder renamed into
    place in one step, with ``batch.json`` inside it, so a killed worker leaves no partial output
    under a final name and a rerun redoes only what was not finished.
    """
    out = Path(out)
    root = Path(root) if root is not None else None
    shash = settings_hash(settings, case)
    row = base_row(case, root, settings, shash)
    t0 = time.perf_counter()
    staging = None
    try:
        final = case_dir(out, case.case_id)
        if not force:
            state, why, marker = up_to_date(case, out, shash, deep=True)
            if state:
                row = row_from_marker(row, marker)
                row.update(status="skipped", message=why)
                return row
        limit_threads(settings.threads)
        staging = out / STAGING / f"{case.case_id.replace('/', '__')}.{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        record = (fuse_pair if len(case.inputs) == 2 else fuse_many)(case, staging, settings)
        if case.labels and record["reference_volume"] is None:
            from medfuse.io import load_volume

            first = next(iter(case.inputs))
            record["reference_volume"] = load_volume(case.inputs[first], modality=case.modalities.get(first))
        for name, path in case.labels.items():
            record["outputs"].append(carry_label(path, record["reference_volume"], staging / f"{name}.nii.gz"))
        _finish(record, row, case, settings, staging, shash, t0)
        _publish(staging, final, out)
        staging = None
    except Exception as err:  # noqa: BLE001 - a failing case is recorded and the batch goes on
        message = case_message(err, case, settings.name_option)
        log.warning("%s failed: %s", case.case_id, message)
        row.update(status="failed", message=message, seconds=round(time.perf_counter() - t0, 3), finished_at=now())
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return row


def _finish(record: dict, row: dict, case, settings: BatchSettings, staging: Path, shash: str, t0: float) -> None:
    """Metrics, the row's figures and the case's ``batch.json`` (written last, in staging)."""
    t1 = time.perf_counter()
    note = ""
    try:
        metrics = case_metrics(record, settings.metrics)
    except Exception as err:  # noqa: BLE001 - the fusion is done; the manifest says why metrics are missing
        metrics, note = {}, f"metrics not computed: {one_line(err, settings.name_option)}"
    row["t_metrics"] = round(time.perf_counter() - t1, 3)
    sidecar = _read_json(staging / record["sidecar"]) or {}
    row.update(sidecar_figures(sidecar, list(case.inputs)))
    row.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()})
    row["method"] = sidecar.get("method") or settings.method or ""
    outputs = sorted(set(record["outputs"]))
    row["outputs"] = ";".join(str(Path(case.case_id) / n) for n in outputs)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row.update(status="done", message=note, finished_at=now())
    marker = {
        "case_id": case.case_id, "settings_hash": shash, "settings": settings.hashed(), "outputs": outputs,
        "input_hashes": {r: ((sidecar.get("inputs") or {}).get(k) or {}).get("sha256_of_values")
                         for r, k in _sidecar_roles(case).items()},
        "fingerprints": _fingerprints(case),
        "row": dict(row),
    }
    (staging / DONE_MARKER).write_text(json.dumps(marker, indent=2, default=str) + "\n")


def _publish(staging: Path, final: Path, out: Path) -> None:
    """Rename the finished staging folder to ``final`` (replacing an older one); never a partial folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        try:
            os.rename(staging, final)
            return
        except OSError:
            if not final.exists():
                raise
            old = out / STAGING / f"old.{uuid.uuid4().hex[:12]}"
            try:
                os.rename(final, old)
            except FileNotFoundError:
                continue
            shutil.rmtree(old, ignore_errors=True)
    raise OSError(f"{final}: could not be replaced (another process keeps writing it)")
