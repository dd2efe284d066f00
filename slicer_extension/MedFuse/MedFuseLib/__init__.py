"""Logic of the MedFuse Slicer module that runs without Slicer (tested in medfuse's own test suite)."""

from MedFuseLib.parameters import MedFuseParameters
from MedFuseLib.process import FusionProcess, build_command

__all__ = ["MedFuseParameters", "FusionProcess", "build_command"]
