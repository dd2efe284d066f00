"""What a batch does to every case, and the names of what it writes.

:class:`BatchSettings` holds the choices of a run; :func:`settings_hash` ties a case's finished outputs to them
(a change redoes the case). The file names of ``OUT`` and the manifest's columns are here too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["BatchSettings", "settings_hash", "fingerprint", "MANIFEST", "DISCOVERY", "REPORT", "DONE_MARKER",
           "STAGING", "BATCH_LOG", "THREAD_VARIABLES", "DEFAULT_METRICS", "STRATEGIES", "MANIFEST_FIELDS", "REG_FIELDS"]

MANIFEST = "manifest.csv"
DISCOVERY = "discovery.json"
REPORT = "report.html"
DONE_MARKER = "batch.json"
STAGING = ".staging"
#: ``medfuse fuse-dir``'s log: one row per pair and run (``key, status, seconds, method, message``)
BATCH_LOG = "fuse-dir-log.csv"
#: the environment variables that limit the threads of torch, ITK and OpenMP in a worker process
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")
DEFAULT_METRICS = ("EN", "SD", "MI", "SSIM")
STRATEGIES = ("mean_of_pairs", "sequential")
#: the registration figures of a case that the manifest shows (``reg_<name>``)
REG_FIELDS = ("registered", "rotation_deg", "translation_mm", "dice", "metric_after")
MANIFEST_FIELDS = [
    "case_id", "status", "message", "dataset", "inputs", "labels", "outputs", "method", "settings_hash",
    "seconds", "t_register", "t_normalize", "t_fuse", "t_metrics", *DEFAULT_METRICS,
    *(f"reg_{k}" for k in REG_FIELDS), "info", "finished_at",
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
        threads: torch/ITK/OpenMP threads per worker process (None: leave as is; not hashed).
        name_option: how the door that runs the batch names an option in a case's message
            (``name_option(option, role)``, see :meth:`medfuse.errors.MedfuseError.render`); None: the API's
            words. A module-level function, so that it travels to Dask workers; not hashed.
    """

    dataset: str
    method: str | None = None
    strategy: str = "mean_of_pairs"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    weights: str | None = None
    device: str = "cpu"
    qc: bool = True
    threads: int | None = None
    name_option: Callable[[str, str | None], str] | None = field(default=None, compare=False)

    def hashed(self) -> dict[str, Any]:
        """What enters the settings hash (besides the case's roles, modalities and labels)."""
        from medfuse.report.sidecar import file_sha256

        return {"dataset": self.dataset, "method": self.method, "strategy": self.strategy,
                "weights_sha256": file_sha256(self.weights) if self.weights else None,
                "device_kind": str(self.device).split(":")[0], "qc": bool(self.qc), "format_version": 1}

    def fusion_options(self, case, roles: tuple[str, str]):
        """The :class:`~medfuse.pipeline.FusionOptions` of one pair of ``case`` (its modalities from the data set)."""
        from medfuse.pipeline import FusionOptions, InputOptions

        ref_role, mov_role = roles
        return FusionOptions(method=self.method, weights=self.weights, device=self.device, qc=self.qc,
                             reference=InputOptions(modality=case.modalities.get(ref_role)),
                             moving=InputOptions(modality=case.modalities.get(mov_role)))


def settings_hash(settings: BatchSettings, case) -> str:
    """SHA-256 (16 hex digits) of the settings and of what the case fuses (roles, modalities, labels)."""
    record = {**settings.hashed(), "roles": list(case.inputs), "modalities": dict(case.modalities),
              "labels": sorted(case.labels)}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(path: Path) -> str:
    """Cheap identity of an input file or DICOM folder: names, sizes and modification times."""
    path = Path(path)
    items = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in items:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
