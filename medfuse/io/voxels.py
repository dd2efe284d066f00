"""What the readers refuse about the voxel type itself, with one message for every format.

Complex-valued voxels (NIfTI ``complex64``/``complex128``/``complex256``, NRRD/MetaImage complex pixels) are
refused rather than converted. Which real image a complex one stands for depends on how it was made: the
magnitude for most MR reconstructions, the real part for phase-sensitive ones (PSIR), the phase for
susceptibility work; taking any one of them silently would fuse an image the user did not choose (numpy's
cast keeps the real part with only a ``ComplexWarning``). The message names the file (its role through the
pipeline), what was found and the conversion to run.
"""

from __future__ import annotations

import os

from medfuse.errors import UnsupportedInputError

__all__ = ["complex_voxels_error"]


def complex_voxels_error(path: str | os.PathLike, found: str) -> UnsupportedInputError:
    """The error for a file of complex-valued voxels (``found``: its voxel type, e.g. ``"complex64"``)."""
    return UnsupportedInputError(
        f"{path}: complex-valued voxels ({found}); medfuse fuses real intensities and does not choose between "
        "magnitude, real part and phase for you: save the magnitude (numpy.abs, or fslcomplex -realabs IN OUT), "
        "or the real part of a phase-sensitive reconstruction, as a real-valued file and pass that"
    )
