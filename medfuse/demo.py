"""``medfuse demo``: the whole pipeline on a built-in phantom case, no data needed.

Each modality's demo has its own folder, ``OUT/<modality>/`` (``medfuse-demo/pet/``,
``medfuse-demo/spect/``...), so the README's sequence ``medfuse demo`` then ``medfuse demo --modality
spect`` runs both. A demo is rerunnable:

- It works in a staging folder (``OUT/<modality>/.demo-staging.<id>/``) and moves the finished files into
  place at the end, after recording each one's SHA-256 in ``OUT/<modality>/demo.json``. An interrupted
  demo leaves only its staging folder, which the next run removes.
- A rerun makes the same phantom case again (same ``--seed``, same files) and replaces the files the demo
  wrote itself: those whose content still matches ``demo.json``. A file in the way that the demo did not
  write, or that was changed since, is never replaced: the demo stops before any work and names it
  (``--force`` replaces it). Other files in the folder are never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["run_demo", "demo_folder", "MODALITIES", "RECORD"]

log = logging.getLogger(__name__)

#: the second scan of each demo (the first is the phantom MRI)
MODALITIES = ("pet", "spect", "ct", "t2")
#: the demo's record of what it wrote (name -> SHA-256), inside its folder
RECORD = "demo.json"
_STAGING = ".demo-staging."


def demo_folder(out_dir: str | os.PathLike, modality: str) -> Path:
    """The folder of one modality's demo: ``OUT/<modality>``."""
    return Path(out_dir) / modality


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _recorded(folder: Path) -> dict[str, str]:
    """``name -> sha256`` of the files an earlier demo wrote into ``folder`` (empty when none or unreadable)."""
    try:
        files = json.loads((folder / RECORD).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _check_ours(folder: Path, names: list[str], force: bool) -> None:
    """Refuse (before any work) when a file the demo would write exists and is not the demo's own."""
    from medfuse.errors import OutputExistsError

    ours = _recorded(folder)
    for name in names:
        path = folder / name
        if path.is_dir():
            raise OutputExistsError(f"{path} is a folder, in the way of the demo's {name}; move it or pass "
                                    "another --out")
        if force or not path.exists():
            continue
        if name == RECORD:
            if ours:
                continue
        elif ours.get(name) == _sha256(path):
            continue
        raise OutputExistsError(f"{path} exists and was not written by medfuse demo (or was changed since); "
                                "pass --force to overwrite it, or another --out")


def run_demo(
    out_dir: str | os.PathLike = "medfuse-demo",
    *,
    modality: str = "pet",
    method: str | None = None,
    seed: int = 0,
    force: bool = False,
    colormap: str | None = None,
) -> dict[str, Path]:
    """Make a phantom MRI and a misaligned PET (or CT/SPECT/T2) on its own grid, write both as NIfTI,
    then register, normalize, fuse and write the fused volume (RGB for PET/SPECT, through ``colormap``),
    the moving scan on the MRI grid in its units (``fused_moving.nii.gz``), the transform and a QC picture,
    all in ``out_dir/<modality>/`` (see the module docstring for what a rerun does).

    Args:
        out_dir: the demos' folder; this modality's demo writes into ``out_dir/<modality>``.
        modality: the second scan: ``pet``, ``spect``, ``ct`` or ``t2``.
        method: fusion method (default: the pair's default, ``medfuse/weights/defaults.json``).
        seed: phantom seed.
        force: also replace files in the way that the demo did not write.
        colormap: colour map of a PET/SPECT fusion.

    Returns:
        ``{"reference", "moving", "fused", "quantitative", "sidecar", "qc", "transform"}`` -> written paths.

    Raises:
        OutputExistsError: a file in the way was not written by the demo (or was changed), without ``force``.
    """
    from medfuse.errors import OptionError, OutputExistsError
    from medfuse.io import save_volume
    from medfuse.io.atomic import atomic_output
    from medfuse.phantom import make_case
    from medfuse.pipeline import FusionOptions, InputOptions, fuse_files

    if modality not in MODALITIES:
        raise OptionError(f"--modality {modality!r}: expected one of {', '.join(MODALITIES)}")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise OutputExistsError(f"--out {out_dir}: a file, not a folder; the demo writes into OUT/{modality}/: "
                                "give a folder (default ./medfuse-demo)")
    folder = demo_folder(out_dir, modality)
    names = {
        "reference": "mri.nii.gz",
        "moving": f"{modality}.nii.gz",
        "fused": "fused.nii.gz",
        "quantitative": "fused_moving.nii.gz",
        "sidecar": "fused.json",
        "qc": "fused_qc.png",
        "transform": f"{modality}_to_mri.tfm",
    }
    _check_ours(folder, [*names.values(), RECORD], force)
    options = FusionOptions(method=method, colormap=colormap)  # a bad method stops here, before the phantom
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(_STAGING + "*"):  # what an interrupted demo left behind
        shutil.rmtree(old, ignore_errors=True)
    staging = folder / f"{_STAGING}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        case = make_case(modality, seed=seed)
        staged = {kind: staging / name for kind, name in names.items()}
        save_volume(case.mri, staged["reference"])
        save_volume(case.moving, staged["moving"])
        written = fuse_files(staged["reference"], staged["moving"], staged["fused"], options.replace(
            qc=staged["qc"], transform_out=staged["transform"], reference=InputOptions(modality="MR"),
            moving=InputOptions(modality=case.moving.modality)))
        written = {"reference": staged["reference"], "moving": staged["moving"], **written}
        files = {Path(p).name: _sha256(Path(p)) for p in written.values()}
        for name, digest in _recorded(folder).items():  # an earlier demo's files this run did not rewrite
            if name not in files and (folder / name).is_file() and _sha256(folder / name) == digest:
                files[name] = digest
        record = {"about": "files written by medfuse demo; a rerun replaces only these while unchanged",
                  "modality": modality, "seed": seed, "method": method, "files": dict(sorted(files.items()))}
        # the record first: a demo stopped between the moves below still knows every file it put in place
        with atomic_output(folder / RECORD, force=True) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")
        for path in written.values():
            os.replace(path, folder / Path(path).name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {kind: folder / Path(path).name for kind, path in written.items()}
