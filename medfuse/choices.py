"""The tables of choices that several doors offer, in one import-light place (the command line builds its parser
from them without importing numpy).

Each is the one list of its choice: :class:`medfuse.registration.TransformType` is made from
:data:`REGISTRATION_TYPES`, :class:`medfuse.pipeline.FusionOptions` checks against these, and the command line's
``choices`` are these. (The 3D Slicer module keeps its own copy: it runs where medfuse may not be installed; a test
holds it equal.)
"""

from __future__ import annotations

__all__ = ["REGISTRATION_TYPES", "OUT_FORMATS"]

#: registration models: rigid (6 dof), affine (12 dof, after rigid), affine then B-spline
REGISTRATION_TYPES = ("rigid", "affine", "bspline")
#: what ``FusionOptions(out_format=...)`` / ``medfuse fuse --format`` accept (None: the output's extension decides)
OUT_FORMATS = ("nifti", "nrrd", "dicom")
