"""The MedFuse Slicer module's library.

Slicer-free (imported by medfuse's own tests, ``tests/slicer/``): :mod:`~MedFuseLib.parameters`
(typed parameters with ``isValid()``), :mod:`~MedFuseLib.modality` (modality of a volume node from its
DICOM attributes or name), :mod:`~MedFuseLib.process` (``medfuse fuse`` in a child process: command
line, progress, cancel, temporary folder), :mod:`~MedFuseLib.install` (what to install, safely).

Slicer-side (import ``slicer``/``qt``; run inside Slicer only): :mod:`~MedFuseLib.parameter_node`
(the scene's parameter node), :mod:`~MedFuseLib.logic` (export, run, load, display) and
:mod:`~MedFuseLib.widget` (the panel).
"""

from MedFuseLib.install import MEDFUSE_VERSION, InstallPlan, plan_install
from MedFuseLib.modality import detect_modality
from MedFuseLib.parameters import MedFuseParameters
from MedFuseLib.process import FusionError, FusionJob, build_command, find_python_slicer

__all__ = [
    "MEDFUSE_VERSION",
    "InstallPlan",
    "plan_install",
    "detect_modality",
    "MedFuseParameters",
    "FusionError",
    "FusionJob",
    "build_command",
    "find_python_slicer",
]
