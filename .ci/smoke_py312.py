"""Torch-free smoke test of medfuse on Python 3.12, the Python that 3D Slicer 5.10 and later bundle.

Run by ``.ci/py312.sh`` in a venv holding medfuse (``pip install --no-deps -e .``) and its runtime
dependencies except torch and MONAI, from the repository root:

1. every medfuse module imports, except those that need torch/MONAI at import time, and those may
   only be the network, loss and MONAI-transform modules (:data:`MAY_NEED_TORCH`): core I/O,
   registration, classical fusion, the pipeline and the CLI must import without torch;
2. ``medfuse --help`` and ``medfuse fuse --help`` work;
3. ``medfuse fuse --method max`` and ``--method laplacian`` on a small phantom MRI + PET pair written
   by :mod:`medfuse.phantom` write their outputs, the fused volume has the reference's affine, and
   the sidecar JSON parses.

(``python -m compileall`` of medfuse and slicer_extension runs in ``.ci/py312.sh`` before this.)
Exits non-zero with a message on the first failure.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: import roots that are not installed here: a module needing them at import time is skipped
TORCH_ROOTS = {"torch", "monai", "ignite", "torchvision"}
#: the only medfuse modules that may need torch/MONAI at import time (a module or its subpackage).
#: training, inference and bundle are allowed to, but today import torch lazily, so they import here too.
MAY_NEED_TORCH = ("medfuse.networks", "medfuse.losses", "medfuse.transforms",
                  "medfuse.training", "medfuse.inference", "medfuse.bundle")
#: modules that must import without torch whatever else changes (the Slicer module's process runs these)
CORE = ("medfuse", "medfuse.cli", "medfuse.pipeline", "medfuse.fusion", "medfuse.classical", "medfuse.io",
        "medfuse.io.dicom", "medfuse.registration", "medfuse.intensity", "medfuse.phantom", "medfuse.volume",
        "medfuse.report.sidecar", "medfuse.report.qc", "medfuse.metrics")


def fail(message: str) -> None:
    print(f"py312 smoke: FAILED: {message}", flush=True)
    sys.exit(1)


def module_names() -> list[str]:
    names = []
    for path in sorted((ROOT / "medfuse").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def check_imports() -> None:
    skipped, failed = [], []
    names = module_names()
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in TORCH_ROOTS:
                skipped.append(f"{name} ({exc.name})")
            else:
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        except Exception as exc:  # a 3.12 incompatibility, a removed stdlib API...
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    if failed:
        fail("modules that do not import on Python 3.12:\n  " + "\n  ".join(failed))
    unexpected = [s for s in skipped if not s.split()[0].startswith(MAY_NEED_TORCH)]
    if unexpected:
        fail("modules outside networks/losses/transforms/training/inference/bundle need torch or MONAI at "
             "import time (import them inside the function that uses them):\n  " + "\n  ".join(unexpected))
    core_skipped = [c for c in CORE if c not in sys.modules]
    if core_skipped:
        fail(f"core modules did not import: {core_skipped}")
    print(f"py312 smoke: {len(names) - len(skipped)} of {len(names)} medfuse modules import without torch; "
          f"skipped, needing torch/MONAI at import: {', '.join(skipped) or 'none'}", flush=True)


def medfuse(*args: str) -> str:
    exe = Path(sys.executable).with_name("medfuse")  # the console script of this venv
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        fail(f"`medfuse {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def check_help() -> None:
    if "fuse" not in medfuse("--help") or "--method" not in medfuse("fuse", "--help"):
        fail("`medfuse --help` / `medfuse fuse --help` do not describe fuse")
    print("py312 smoke: medfuse --help, medfuse fuse --help: ok", flush=True)


def check_fuse(folder: Path) -> None:
    import nibabel as nib
    import numpy as np

    from medfuse.io import save_volume
    from medfuse.phantom import make_case

    case = make_case("pet", seed=0, rotation_deg=4.0, translation_mm=(3.0, -2.0, 2.0),
                     mri_shape=(48, 56, 44), moving_shape=(32, 32, 24))
    mri, pet = folder / "mri.nii.gz", folder / "pet.nii.gz"
    save_volume(case.mri, mri)
    save_volume(case.moving, pet)
    reference_affine = nib.load(mri).affine
    for method in ("max", "laplacian"):
        start = time.perf_counter()
        out = folder / method / "fused.nii.gz"
        printed = medfuse("fuse", "--reference", str(mri), "--moving", str(pet), "--out", str(out),
                          "--reference-modality", "MR", "--moving-modality", "PT", "--method", method)
        written = dict(line.split(": ", 1) for line in printed.splitlines() if ": " in line)
        for kind in ("fused", "quantitative", "qc", "sidecar"):
            if kind not in written or not Path(written[kind]).is_file():
                fail(f"--method {method}: no {kind} file written (printed: {printed!r})")
        for kind in ("fused", "quantitative"):
            image = nib.load(written[kind])
            if image.shape[:3] != case.mri.array.shape or not np.array_equal(image.affine, reference_affine):
                fail(f"--method {method}: {kind} {image.shape} affine\n{image.affine}\n"
                     f"is not the reference's {case.mri.array.shape}\n{reference_affine}")
        sidecar = json.loads(Path(written["sidecar"]).read_text())
        if not isinstance(sidecar, dict) or not sidecar:
            fail(f"--method {method}: the sidecar {written['sidecar']} is not a JSON object")
        print(f"py312 smoke: medfuse fuse --method {method} (MRI {case.mri.array.shape} + PET "
              f"{case.moving.array.shape}, registered): ok in {time.perf_counter() - start:.1f} s", flush=True)


def main() -> None:
    if sys.version_info[:2] != (3, 12):
        fail(f"run on Python 3.12, not {sys.version.split()[0]}")
    check_imports()
    check_help()
    with tempfile.TemporaryDirectory(prefix="medfuse-py312-") as tmp:
        check_fuse(Path(tmp))
    if any(root in sys.modules for root in TORCH_ROOTS):
        fail("torch or MONAI got imported")


if __name__ == "__main__":
    main()
