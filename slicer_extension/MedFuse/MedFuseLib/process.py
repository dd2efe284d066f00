"""Running medfuse in a separate process, so the Slicer GUI stays responsive.

The module exports the two volume nodes to NRRD (Slicer writes the RAS->LPS conversion into
the NRRD header itself), runs ``python -m medfuse.cli fuse`` on them, and loads the fused NRRD
back. medfuse reads and writes NRRD through SimpleITK in LPS and converts to its RAS
convention explicitly, so the fused node lands on the reference node's grid.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from MedFuseLib.parameters import MedFuseParameters

__all__ = ["build_command", "FusionProcess"]


def build_command(params: MedFuseParameters, reference: Path, moving: Path, output: Path,
                  python: str | None = None) -> list[str]:
    """The ``medfuse fuse`` command line for these parameters and files."""
    ok, message = params.isValid()
    if not ok:
        raise ValueError(message)
    cmd = [python or sys.executable, "-m", "medfuse.cli", "fuse", "--reference", str(reference),
           "--moving", str(moving), "--out", str(output), "--moving-modality", params.moving_modality,
           "--reference-modality", "MR", "--device", params.device, "--no-qc", "--force"]
    if params.method != "default":
        cmd += ["--method", params.method]
    if params.register:
        cmd += ["--registration", params.registration_type]
    else:
        cmd += ["--no-register"]
    return cmd


class FusionProcess:
    """One fusion run in a child process.

    ``start()`` returns at once; Slicer polls ``poll()`` from a QTimer. ``run()`` waits (tests, scripts).
    """

    def __init__(self, params: MedFuseParameters, reference: Path, moving: Path, output: Path,
                 python: str | None = None):
        self.command = build_command(params, reference, moving, output, python)
        self.output = Path(output)
        self._proc: subprocess.Popen | None = None
        self.stderr = ""

    def start(self) -> None:
        self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def poll(self) -> int | None:
        """None while running, else the exit code (stderr is then in ``self.stderr``)."""
        if self._proc is None:
            raise RuntimeError("start() the process first")
        code = self._proc.poll()
        if code is not None and not self.stderr:
            _, self.stderr = self._proc.communicate()
        return code

    def run(self, timeout: float | None = None) -> Path:
        """Run to completion; return the output path or raise RuntimeError with medfuse's one-line message."""
        self.start()
        _, self.stderr = self._proc.communicate(timeout=timeout)
        if self._proc.returncode != 0:
            raise RuntimeError(self.stderr.strip().splitlines()[-1] if self.stderr.strip() else "medfuse failed")
        return self.output

    def cancel(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
