"""Many cases at once: resumable, every case's outcome recorded.

:func:`run_batch` (``medfuse batch``) discovers the cases of a data set (Harvard, BraTS, ADNI:
:mod:`medfuse.datasets`), fuses each with the pipeline on a Dask cluster (local worker processes by
default, or an existing scheduler), and writes a manifest (one row per case), a discovery record and
an HTML report. See the layout below :func:`fuse_directory` and ``docs/batch.md``.

:func:`fuse_directory` fuses every pair of a Harvard-layout folder into
``OUT/<task>/<pair>/fused.png`` (same size; colour kept for PET/SPECT). That output layout is a
stable contract: ``medfuse evaluate-dir`` and the quality benchmarks read it.

Each run appends to ``OUT/fuse-dir-log.csv`` one row per case (``key, status, seconds, message``;
status ``ok``, ``skipped`` (already there) or ``failed``), so a batch can be stopped and run again:
done cases are skipped unless ``force``, and one bad pair never stops the others.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["fuse_directory", "BATCH_LOG", "run_batch", "process_case", "BatchSettings", "BatchSummary",
           "settings_hash", "up_to_date", "write_manifest", "read_manifest", "default_workers", "MANIFEST",
           "MANIFEST_FIELDS", "DONE_MARKER", "REPORT", "DISCOVERY", "STRATEGIES"]

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
        method: fusion method (default: the method chosen for each pair in ``medfuse/weights/defaults.json``, else ``mean``).
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
    from medfuse.pipeline import FusionOptions, fuse_volumes

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
                result = fuse_volumes(ref, mov, FusionOptions(method=method, register=False, weights=weights,
                                                              device=device))
                save_volume(result.fused, target, force=force)
            except (MedfuseError, OSError, ValueError) as err:
                counts["failed"] += 1
                log.warning("%s failed: %s", pair.key, err)
                writer.writerow([pair.key, "failed", f"{time.perf_counter() - t0:.3f}", method or "", str(err)])
                continue
            counts["ok"] += 1
            writer.writerow([pair.key, "ok", f"{time.perf_counter() - t0:.3f}", result.method, ""])
            bar.set_postfix(counts, refresh=False)  # drawn at tqdm's next refresh, not once per pair
        fh.flush()
    return counts


# ==============================================================================================
# medfuse batch: whole cohorts (Harvard, BraTS, ADNI) on Dask, resumable, nothing lost
#
# Layout of OUT:
#   OUT/<case id>/fused.<ext>, fused.json (the pipeline's sidecar), fused_qc.png, [fused_moving.nii.gz],
#                 [seg.nii.gz], batch.json (written last: settings hash, input fingerprints, metrics)
#   OUT/manifest.csv    one row per case (rewritten atomically as cases finish)
#   OUT/discovery.json  what the adapter found, skipped (and why), ignored
#   OUT/report.html     summary: counts, metric tables per pair type and method, thumbnails of a sample of cases
#   OUT/.staging/       work in progress: each attempt of a case writes here, then the whole case
#                       folder is renamed into place (one atomic rename), so a final folder is always
#                       complete; leftovers of killed attempts are removed at the next run.

MANIFEST = "manifest.csv"
DISCOVERY = "discovery.json"
REPORT = "report.html"
DONE_MARKER = "batch.json"
STAGING = ".staging"
DEFAULT_METRICS = ("EN", "SD", "MI", "SSIM")
STRATEGIES = ("mean_of_pairs", "sequential")
#: what enters the settings hash (besides the case's roles and modalities)
_HASHED = ("dataset", "method", "strategy", "weights_sha256", "device_kind", "qc", "format_version")
_REG_FIELDS = ("registered", "rotation_deg", "translation_mm", "dice", "metric_after")
MANIFEST_FIELDS = [
    "case_id", "status", "message", "dataset", "inputs", "labels", "outputs", "method", "settings_hash",
    "seconds", "t_register", "t_normalize", "t_fuse", "t_metrics", *DEFAULT_METRICS,
    *(f"reg_{k}" for k in _REG_FIELDS), "info", "finished_at",
]


@dataclass(frozen=True)
class BatchSettings:
    """What a batch does to every case (hashed into ``settings_hash``: a change redoes the cases).

    Attributes:
        dataset: ``harvard``, ``brats`` or ``adni``.
        method: fusion method (None: the pipeline's default for each pair).
        strategy: three or more inputs: ``mean_of_pairs`` (default) or ``sequential``
            (:class:`medfuse.transforms.FuseImages`).
        metrics: fusion metrics computed for the manifest (not hashed: they do not change outputs).
        weights: a network checkpoint for every case.
        device: torch device.
        qc: write the QC picture (needed for the report's thumbnails).
        threads: torch/ITK/OpenMP threads per worker process (None: leave as is).
    """

    dataset: str
    method: str | None = None
    strategy: str = "mean_of_pairs"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    weights: str | None = None
    device: str = "cpu"
    qc: bool = True
    threads: int | None = None

    def hashed(self) -> dict[str, Any]:
        from medfuse.report.sidecar import file_sha256

        return {"dataset": self.dataset, "method": self.method, "strategy": self.strategy,
                "weights_sha256": file_sha256(self.weights) if self.weights else None,
                "device_kind": str(self.device).split(":")[0], "qc": bool(self.qc), "format_version": 1}


def settings_hash(settings: BatchSettings, case) -> str:
    """SHA-256 (16 hex digits) of the settings and of what the case fuses (roles, modalities, labels)."""
    record = {**settings.hashed(), "roles": list(case.inputs), "modalities": dict(case.modalities),
              "labels": sorted(case.labels)}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _fingerprint(path: Path) -> str:
    """Cheap identity of an input file or DICOM folder: names, sizes and modification times."""
    path = Path(path)
    items = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in items:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _case_dir(out: Path, case_id: str) -> Path:
    parts = Path(case_id).parts
    if not parts or Path(case_id).is_absolute() or any(p in ("..", ".", "") or p.startswith(".") for p in parts):
        raise ValueError(f"case id {case_id!r} cannot name an output folder")
    return out.joinpath(*parts)


def _fused_name(case) -> str:
    return "fused.png" if case.is_2d else "fused.nii.gz"


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


def up_to_date(case, out: str | os.PathLike, shash: str, *, deep: bool = True) -> tuple[bool | None, str, dict | None]:
    """Whether a case's finished outputs exist and match its inputs and settings.

    Returns:
        ``(state, why, marker)``: state True (up to date: skip), False (redo), or None (the input
        files' fingerprints changed and ``deep`` is false: loading them is needed to tell).
        With ``deep`` the inputs are loaded and their values hashed, compared with the sidecar's
        ``inputs.<role>.sha256_of_values`` (a touched but unchanged file is still up to date).
    """
    folder = _case_dir(Path(out), case.case_id)
    marker = _read_json(folder / DONE_MARKER)
    if marker is None:
        return False, "no finished output", None
    if marker.get("settings_hash") != shash:
        return False, "settings changed", marker
    if not all((folder / name).is_file() for name in marker.get("outputs", [])):
        return False, "an output is missing", marker
    from medfuse.report.sidecar import sidecar_path

    sidecar = _read_json(sidecar_path(folder / _fused_name(case))) or {}
    roles = _sidecar_roles(case)
    recorded = {r: ((sidecar.get("inputs") or {}).get(k) or {}).get("sha256_of_values") for r, k in roles.items()}
    if any(v is None or v != (marker.get("input_hashes") or {}).get(r) for r, v in recorded.items()):
        return False, "the sidecar does not match the batch record", marker
    prints = {r: _fingerprint(p) for r, p in case.inputs.items()}
    prints.update({f"label:{k}": _fingerprint(p) for k, p in case.labels.items()})
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


def _limit_threads(threads: int | None) -> None:
    if not threads:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[name] = str(threads)
    try:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    return f"{type(err).__name__}: {text}"[:500]


def _base_row(case, out: Path, root: Path | None, settings: BatchSettings, shash: str) -> dict[str, Any]:
    from medfuse.datasets.base import public_relative

    def rel(p):  # relative to the data set root; names that are not the data set's public ids pseudonymized
        return public_relative(Path(p).resolve(), None if root is None else Path(root).resolve(), settings.dataset)

    return {
        "case_id": case.case_id, "status": "", "message": "", "dataset": settings.dataset,
        "inputs": ";".join(f"{r}={rel(p)}" for r, p in case.inputs.items()),
        "labels": ";".join(f"{k}={rel(p)}" for k, p in case.labels.items()),
        "outputs": "", "method": settings.method or "", "settings_hash": shash,
        "info": json.dumps(case.info, sort_keys=True, default=str) if case.info else "",
    }


def _row_from_marker(row: dict, marker: dict) -> dict:
    kept = marker.get("row") or {}
    for key, value in kept.items():
        if key not in ("status", "message", "case_id"):
            row[key] = value
    return row


def process_case(case, out: str | os.PathLike, settings: BatchSettings, *, root: str | os.PathLike | None = None,
                 force: bool = False) -> dict[str, Any]:
    """Fuse one case into ``OUT/<case id>/`` and return its manifest row (never raises for a case's error).

    Runs on a Dask worker (or in-process). Skips the case when its outputs are up to date (unless
    ``force``). The work is done in ``OUT/.staging/<unique>/`` and the finished folder renamed into
    place in one step, with ``batch.json`` inside it, so a killed worker leaves no partial output
    under a final name and a rerun redoes only what was not finished.
    """
    import time as _time

    out = Path(out)
    root = Path(root) if root is not None else None
    shash = settings_hash(settings, case)
    row = _base_row(case, out, root, settings, shash)
    t0 = _time.perf_counter()
    staging = None
    try:
        final = _case_dir(out, case.case_id)
        if not force:
            state, why, marker = up_to_date(case, out, shash, deep=True)
            if state:
                row = _row_from_marker(row, marker)
                row.update(status="skipped", message=why)
                return row
        _limit_threads(settings.threads)
        staging = out / STAGING / f"{case.case_id.replace('/', '__')}.{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        if len(case.inputs) == 2:
            record = _fuse_pair(case, staging, settings)
        else:
            record = _fuse_many(case, staging, settings)
        if case.labels and record["reference_volume"] is None:
            from medfuse.io import load_volume

            first = next(iter(case.inputs))
            record["reference_volume"] = load_volume(case.inputs[first], modality=case.modalities.get(first))
        for name, path in case.labels.items():
            record["outputs"].append(_carry_label(path, record["reference_volume"], staging / f"{name}.nii.gz"))
        t1 = _time.perf_counter()
        note = ""
        try:
            metrics = _metrics(record, settings.metrics)
        except Exception as err:  # noqa: BLE001 - the fusion is done; the manifest says why metrics are missing
            metrics, note = {}, f"metrics not computed: {_one_line(err)}"
        row["t_metrics"] = round(_time.perf_counter() - t1, 3)
        sidecar = _read_json(staging / record["sidecar"]) or {}
        row.update(_sidecar_figures(sidecar, list(case.inputs)))
        row.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()})
        row["method"] = sidecar.get("method") or settings.method or ""
        outputs = sorted(set(record["outputs"]))
        row["outputs"] = ";".join(str(Path(case.case_id) / n) for n in outputs)
        row["seconds"] = round(_time.perf_counter() - t0, 3)
        row.update(status="done", message=note, finished_at=_now())
        roles = _sidecar_roles(case)
        marker = {
            "case_id": case.case_id, "settings_hash": shash, "settings": settings.hashed(), "outputs": outputs,
            "input_hashes": {r: ((sidecar.get("inputs") or {}).get(k) or {}).get("sha256_of_values")
                             for r, k in roles.items()},
            "fingerprints": {**{r: _fingerprint(p) for r, p in case.inputs.items()},
                             **{f"label:{k}": _fingerprint(p) for k, p in case.labels.items()}},
            "row": dict(row),
        }
        (staging / DONE_MARKER).write_text(json.dumps(marker, indent=2, default=str) + "\n")
        _publish(staging, final, out)
        staging = None
    except Exception as err:  # noqa: BLE001 - a failing case is recorded and the batch goes on
        message = _batch_wording(_one_line(err), case)
        log.warning("%s failed: %s", case.case_id, message)
        row.update(status="failed", message=message, seconds=round(_time.perf_counter() - t0, 3),
                   finished_at=_now())
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return row


def _batch_wording(message: str, case) -> str:
    """A case's error as the batch should say it: inputs named by the case's roles (the pipeline names them by
    the flags of ``medfuse fuse``, which ``batch`` does not have), and never by a path."""
    from medfuse.io.naming import input_label, redact
    from medfuse.pipeline import role_label

    roles = list(case.inputs)
    if len(roles) == 2:
        for role, name in (("reference", roles[0]), ("moving", roles[1])):
            message = message.replace(role_label(role), f"the {name} input (the {role} scan of the case)")
    with contextlib.ExitStack() as stack:  # any path of the case's inputs -> its role
        for name, path in (*case.inputs.items(), *case.labels.items()):
            stack.enter_context(input_label(path, f"the {name} input"))
        return redact(message)


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now().isoformat(timespec="seconds")


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


def _fuse_pair(case, staging: Path, settings: BatchSettings) -> dict[str, Any]:
    """Two inputs: the pipeline's :func:`~medfuse.pipeline.fuse_files`, unchanged."""
    from medfuse.pipeline import FusionOptions, InputOptions, fuse_files

    (ref_role, ref_path), (mov_role, mov_path) = case.inputs.items()
    out = staging / _fused_name(case)
    options = FusionOptions(method=settings.method, qc=settings.qc, weights=settings.weights, device=settings.device,
                            reference=InputOptions(modality=case.modalities[ref_role]),
                            moving=InputOptions(modality=case.modalities[mov_role]))
    written = fuse_files(ref_path, mov_path, out, options)
    return {"kind": "pair", "case": case, "fused": written["fused"], "sidecar": Path(written["sidecar"]).name,
            "quantitative": written.get("quantitative"), "outputs": [Path(p).name for p in written.values()],
            "reference_volume": None, "arrays": None}


def _fuse_many(case, staging: Path, settings: BatchSettings) -> dict[str, Any]:
    """Three or more inputs (BraTS sequences): each other input is put on the reference grid and
    normalized by the pipeline's :func:`~medfuse.pipeline.prepare_pair`, then all are fused into one
    image by :class:`medfuse.transforms.FuseImages` with ``settings.strategy``."""
    import time as _time

    import numpy as np

    from medfuse.io import load_volume, save_volume
    from medfuse.modality import require_modality
    from medfuse.pipeline import FusionResult, default_method, prepare_pair
    from medfuse.report.sidecar import fused_image_record, volume_record, write_sidecar
    from medfuse.transforms.array import FuseImages, to_metatensor
    from medfuse.volume import Volume

    timings = {"register": 0.0, "normalize": 0.0, "fuse": 0.0}
    roles = list(case.inputs)
    volumes = {}
    for role in roles:
        volumes[role] = load_volume(case.inputs[role], modality=case.modalities.get(role))
        require_modality(volumes[role], role)
    ref = volumes[roles[0]]
    normalized, alignment = {}, {}
    ref_n = None
    for role in roles[1:]:
        prepared = prepare_pair(ref, volumes[role])
        ref_n, mov_n, t = prepared.reference, prepared.moving, prepared.timings
        normalized[role] = mov_n
        alignment[role] = dict(mov_n.meta.get("alignment", {}))
        for k, v in t.items():
            timings[k] = timings.get(k, 0.0) + v
    method = settings.method or default_method(volumes[roles[1]])
    t0 = _time.perf_counter()
    fuse = FuseImages(method, weights=settings.weights, device=settings.device, strategy=settings.strategy)
    fused_mt = fuse(to_metatensor(ref_n), *(to_metatensor(normalized[r]) for r in roles[1:]))
    fused = np.asarray(fused_mt.detach().cpu().numpy() if hasattr(fused_mt, "detach") else fused_mt)[0]
    timings["fuse"] = _time.perf_counter() - t0
    from medfuse import __version__

    fused_vol = Volume(np.asarray(fused, dtype=np.float32), ref.affine, modality=ref.modality,
                       meta={"fusion_method": method, "format": ref.meta.get("format"),
                             "medfuse_description": f"medfuse {__version__} fused {method} {len(roles)} inputs"})
    out = staging / _fused_name(case)
    written = {"fused": save_volume(fused_vol, out)}
    if settings.qc:  # the QC picture shows the reference, the first other input and the fusion
        from medfuse.report.qc import save_qc_figure

        first = roles[1]
        qc_result = FusionResult(fused_vol, ref_n, normalized[first], method, None, timings, alignment[first])
        written["qc"] = save_qc_figure(qc_result, out.with_name("fused_qc.png"))
    import platform

    record = {
        "medfuse_version": __version__, "command": "batch", "python": platform.python_version(),
        "output": out.name, "method": method, "weights": None if settings.weights is None else
        {"file": Path(settings.weights).name},
        "multi_input": {"inputs": roles, "reference": roles[0], "strategy": settings.strategy,
                        "rule": ("mean_of_pairs: the reference fused with each other input, the fusions averaged "
                                 "voxel by voxel" if settings.strategy == "mean_of_pairs" else
                                 "sequential: fuse(fuse(reference, 2nd), 3rd)... in the order of 'inputs'")},
        "inputs": {r: volume_record(volumes[r], ref_n if r == roles[0] else normalized[r]) for r in roles},
        "registration": alignment,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "outputs": {k: Path(v).name for k, v in written.items()},
        **fused_image_record(fused_vol.rgb is not None, fused_vol.ndim, None),
    }
    written["sidecar"] = write_sidecar(out, record)
    arrays = {"reference": ref.array, "others": {r: normalized[r].array for r in roles[1:]}, "fused": fused,
              "modalities": case.modalities, "normalized_reference": ref_n.array}
    return {"kind": "many", "case": case, "fused": written["fused"], "sidecar": Path(written["sidecar"]).name,
            "quantitative": None, "outputs": [Path(p).name for p in written.values()], "reference_volume": ref,
            "arrays": arrays}


def _carry_label(path: Path, reference, target: Path) -> str:
    """Resample a label map onto the reference grid with nearest neighbour and write it (integers)."""
    import nibabel as nib
    import numpy as np

    from medfuse.io import load_volume
    from medfuse.io.atomic import atomic_output
    from medfuse.registration import resample_to_reference

    labels = load_volume(path, check=False)
    if reference is None:
        raise ValueError("internal: the reference grid is needed to carry a label map")
    if labels.same_grid(reference):
        values = labels.array
    else:
        values = resample_to_reference(labels, reference, interpolation="nearest", default_value=0.0).array
    values = np.rint(values)
    dtype = np.uint8 if values.min() >= 0 and values.max() <= 255 else np.int16
    img = nib.Nifti1Image(values.astype(dtype), reference.affine)
    img.set_sform(reference.affine, code=1)
    img.set_qform(reference.affine, code=1)
    with atomic_output(target) as tmp:
        nib.save(img, str(tmp))
    return target.name


def _metrics(record: dict[str, Any], names) -> dict[str, float]:
    """A few fusion metrics of the fused image against its sources (3D: inside the head mask).

    Three or more inputs: the mean over the pairs (reference, other input).
    """
    import numpy as np

    names = [n for n in (names or ()) if n]
    if not names:
        return {}
    from medfuse.io import load_volume
    from medfuse.metrics import compute_metrics

    case = record["case"]
    roles = list(case.inputs)
    if record["kind"] == "many":
        arrays = record["arrays"]
        scores = [compute_metrics((arrays["normalized_reference"], arrays["others"][r]), arrays["fused"], names,
                                  modalities=(case.modalities[roles[0]], case.modalities[r]))
                  for r in roles[1:]]
        return {k: float(np.nanmean([s[k] for s in scores])) for k in names}
    ref = record["reference_volume"] or load_volume(case.inputs[roles[0]], modality=case.modalities[roles[0]])
    fused = load_volume(record["fused"], check=False)
    if ref.ndim == 2:
        mov = load_volume(case.inputs[roles[1]], modality=case.modalities[roles[1]])
        return compute_metrics((ref.array, mov.array), fused.array, names)
    if record.get("quantitative") is None:
        return {}
    mov = load_volume(record["quantitative"], check=False)
    return compute_metrics((ref.array, mov.array), fused.array, names,
                           modalities=(case.modalities[roles[0]], case.modalities[roles[1]]))


def _sidecar_figures(sidecar: dict, roles: list[str]) -> dict[str, Any]:
    reg = sidecar.get("registration") or {}
    if len(roles) > 2:  # one alignment per other input: report the first that registered, else the first
        entries = [reg.get(r) or {} for r in roles[1:]]
        reg = next((e for e in entries if e.get("registered")), entries[0] if entries else {})
    timings = sidecar.get("timings_s") or {}
    out = {f"reg_{k}": reg.get(k, "") for k in _REG_FIELDS}
    out.update({f"t_{k}": timings.get(k, "") for k in ("register", "normalize", "fuse")})
    return out


# ----------------------------------------------------------------------------------------------
# the driver


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


def write_manifest(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the manifest CSV atomically (one row per case, :data:`MANIFEST_FIELDS` columns)."""
    import io as _io

    from medfuse.io.atomic import atomic_output

    buf = _io.StringIO()
    extra = sorted({k for r in rows for k in r if k not in MANIFEST_FIELDS})  # other metrics asked for
    fields = MANIFEST_FIELDS[:-2] + extra + MANIFEST_FIELDS[-2:]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["case_id"]):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(buf.getvalue())
    return Path(path)


def read_manifest(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _start_client(workers: int | None, scheduler: str | None, threads: int | None):
    """A ``dask.distributed`` client: on ``scheduler``, else on a local cluster of worker processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        from medfuse.errors import OptionError

        raise OptionError('medfuse batch needs dask.distributed: pip install "medfuse[batch]" '
                          '(or pip install "dask[distributed]>=2023.1"), or run with --workers 0') from err
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler:
        return Client(scheduler), None
    env = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")} if threads else {}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           env=env, silence_logs=logging.ERROR)
    return Client(cluster), cluster


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
) -> BatchSummary:
    """Discover the cases of a data set and fuse them all; resumable; one manifest row per case.

    Args:
        dataset, root: the adapter and its folder (:func:`medfuse.datasets.discover`).
        out: output folder (see the layout at the top of this section).
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

    Returns:
        A :class:`BatchSummary` (rows, counts, manifest and report paths).

    Raises:
        OptionError: bad options (before any work); NotADirectoryError: ``root`` is not a folder.
    """
    import time as _time

    from tqdm.auto import tqdm

    from medfuse.datasets import discover
    from medfuse.errors import OptionError, look_up

    t_start = _time.perf_counter()
    strategy = look_up(strategy, STRATEGIES, "multi-input fusion strategy (--strategy)")
    if method is not None:
        from medfuse.fusion import available_methods

        method = look_up(method, list(available_methods()), "fusion method (--method)", ignore_case=True)
    if isinstance(metrics, str):
        metrics = () if metrics.strip().lower() in ("", "none") else tuple(m.strip() for m in metrics.split(","))
    if metrics:
        from medfuse.metrics import resolve_metric_names

        metrics = tuple(resolve_metric_names(list(metrics)))
    if weights is not None and not Path(weights).is_file():
        raise OptionError(f"{weights}: weights file not found; give an existing checkpoint with --weights")
    if workers is not None and int(workers) < 0:
        raise OptionError(f"--workers {workers}: give a number of worker processes (0: no Dask)")
    if workers is not None and scheduler:
        raise OptionError("give either --workers (a local cluster) or --scheduler (an existing cluster), not both")
    root = Path(root).resolve()
    out = Path(out).resolve()
    found = discover(dataset, root, sequences=sequences, tasks=tasks, window_days=window_days, mri_series=mri_series)
    found.limit(limit)
    log.info("%s", found.summary())
    n_workers = default_workers() if workers is None else int(workers)
    threads = max(1, (os.cpu_count() or 1) // max(1, n_workers)) if not scheduler else None
    settings = BatchSettings(found.dataset, method, strategy, tuple(metrics or ()),
                             None if weights is None else str(Path(weights).resolve()), device, True, threads)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / STAGING, ignore_errors=True)  # leftovers of killed attempts
    from medfuse.io.atomic import atomic_output

    with atomic_output(out / DISCOVERY, force=True) as tmp:
        tmp.write_text(json.dumps(found.as_dict(), indent=2) + "\n")

    rows: dict[str, dict] = {}
    todo = []
    for case in found.cases:
        shash = settings_hash(settings, case)
        state, why, marker = (False, "forced", None) if force else up_to_date(case, out, shash, deep=False)
        if state:
            row = _row_from_marker(_base_row(case, out, root, settings, shash), marker)
            row.update(status="skipped", message=why)
            rows[case.case_id] = row
        else:
            todo.append(case)
    manifest = out / MANIFEST
    func = case_function or process_case
    bar = tqdm(total=len(found.cases), initial=len(rows), desc=f"batch {found.dataset}", unit="case",
               disable=not progress)
    last_write = [0.0]

    def finished(row: dict) -> None:
        rows[row["case_id"]] = row
        bar.update(1)
        bar.set_postfix({s: sum(1 for r in rows.values() if r["status"] == s) for s in ("done", "skipped", "failed")})
        if _time.perf_counter() - last_write[0] > 2.0:
            write_manifest(list(rows.values()), manifest)
            last_write[0] = _time.perf_counter()

    write_manifest(list(rows.values()), manifest)
    try:
        if todo and n_workers == 0 and not scheduler:
            _limit_threads(None)
            for case in todo:
                finished(func(case, str(out), settings, root=str(root), force=force))
        elif todo:
            _run_on_dask(todo, func, out, settings, root, force, n_workers, scheduler, threads, finished)
    finally:
        bar.close()
        write_manifest(list(rows.values()), manifest)
    report_path = None
    summary = BatchSummary(out, sorted(rows.values(), key=lambda r: r["case_id"]), found,
                           _time.perf_counter() - t_start, manifest, None)
    if report:
        from medfuse.report.batch_report import write_batch_report

        report_path = write_batch_report(summary, settings)
        summary.report = report_path
    return summary


def _run_on_dask(todo, func, out, settings, root, force, n_workers, scheduler, threads, finished) -> None:
    from dask.distributed import as_completed

    client, cluster = _start_client(n_workers, scheduler, threads)
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
                row = _base_row(case, out, root, settings, shash)
                what = ("its worker process died (killed or out of memory) on every attempt"
                        if type(err).__name__ == "KilledWorker" else "the task failed")
                row.update(status="failed", message=f"{what}: {_one_line(err)}", finished_at=_now())
                state, _, marker = up_to_date(case, out, shash, deep=False)
                if state:  # an attempt finished and published before the worker died: keep it
                    row = _row_from_marker(row, marker)
                    row.update(status="done", message="finished before its worker died")
            finished(row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
