"""The manifest: one row per case (status, message, outputs, timings, metrics, registration figures).

A case's error becomes one line in the words of the door that runs the batch: the input it is about named by
its role in the case (``the pet input (the moving scan of the case)``, from the error's ``role``), the option
that decides the matter by the door's ``name_option`` (from the error's ``option``), and no input path.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Any

from medfuse.batch.settings import MANIFEST_FIELDS, REG_FIELDS, BatchSettings

__all__ = ["base_row", "row_from_marker", "sidecar_figures", "case_metrics", "case_message", "one_line", "now",
           "write_manifest", "read_manifest"]


def one_line(err: BaseException, name_option=None) -> str:
    """``Type: message`` on one line (at most 500 characters); a medfuse error's option in ``name_option``'s words."""
    from medfuse.errors import MedfuseError

    text = err.render(name_option) if isinstance(err, MedfuseError) else str(err)
    text = " ".join(text.split()) or "(no message)"
    return f"{type(err).__name__}: {text}"[:500]


def now() -> str:
    import datetime as _dt

    return _dt.datetime.now().isoformat(timespec="seconds")


def case_message(err: BaseException, case, name_option=None) -> str:
    """A case's error as the batch says it: the input it is about by its role in the case, never by its path.

    The pipeline names the inputs of a pair by their roles (``the moving scan``) and sets the error's ``role``;
    a case of three or more inputs says which of its inputs was the pair's moving scan (``case_input``).
    """
    roles = list(case.inputs)
    role = getattr(err, "role", None)
    name = getattr(err, "case_input", None)
    if name is None and role in ("reference", "moving") and len(roles) >= 2:
        name = roles[0] if role == "reference" else (roles[1] if len(roles) == 2 else None)
    if name is not None and role is None:
        role = "reference" if name == roles[0] else "moving"
    prefix = f"the {name} input (the {role} scan of the case): " if name is not None else ""
    from medfuse.io.naming import input_label, redact

    with contextlib.ExitStack() as stack:  # any path of the case's inputs (in a non-medfuse error) -> its role
        for key, path in (*case.inputs.items(), *case.labels.items()):
            stack.enter_context(input_label(path, f"the {key} input"))
        return redact(prefix + one_line(err, name_option))[:600]


def base_row(case, root: Path | None, settings: BatchSettings, shash: str) -> dict[str, Any]:
    """The row of a case before it runs: id, inputs and labels (relative to the data set, non-public names
    pseudonymized), settings hash."""
    from medfuse.datasets.base import public_relative

    def rel(p):
        return public_relative(Path(p).resolve(), None if root is None else Path(root).resolve(), settings.dataset)

    return {
        "case_id": case.case_id, "status": "", "message": "", "dataset": settings.dataset,
        "inputs": ";".join(f"{r}={rel(p)}" for r, p in case.inputs.items()),
        "labels": ";".join(f"{k}={rel(p)}" for k, p in case.labels.items()),
        "outputs": "", "method": settings.method or "", "settings_hash": shash,
        "info": json.dumps(case.info, sort_keys=True, default=str) if case.info else "",
    }


def row_from_marker(row: dict, marker: dict) -> dict:
    """``row`` with the figures of the finished case's record (``batch.json``) kept."""
    kept = marker.get("row") or {}
    for key, value in kept.items():
        if key not in ("status", "message", "case_id"):
            row[key] = value
    return row


def sidecar_figures(sidecar: dict, roles: list[str]) -> dict[str, Any]:
    """The registration figures (``reg_*``) and step timings (``t_*``) of a case's sidecar."""
    reg = sidecar.get("registration") or {}
    if len(roles) > 2:  # one alignment per other input: report the first that registered, else the first
        entries = [reg.get(r) or {} for r in roles[1:]]
        reg = next((e for e in entries if e.get("registered")), entries[0] if entries else {})
    timings = sidecar.get("timings_s") or {}
    out = {f"reg_{k}": reg.get(k, "") for k in REG_FIELDS}
    out.update({f"t_{k}": timings.get(k, "") for k in ("register", "normalize", "fuse")})
    return out


def case_metrics(record: dict[str, Any], names) -> dict[str, float]:
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
    """The manifest's rows as dictionaries (values as text)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
