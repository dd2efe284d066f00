"""The whole fusion of one case, composed from the steps' own modules.

    options (checked once) -> load the pair -> pair check -> align (register / reorder / resample) -> normalize
    -> colourize (PET/SPECT) -> fuse -> output plan: write + sidecar + QC

==========================  ================================================================================
:mod:`.options`             :class:`FusionOptions` / :class:`RegistrationOptions` / :class:`InputOptions`: every
                            choice, frozen and checked when made; its record for the sidecar
:mod:`.load`                :func:`load_inputs`: read the pair by role (no path in any message or log)
:mod:`.align`               :func:`prepare_pair`: the moving scan on the reference grid, both normalized
:mod:`.fuse`                :func:`fuse_volumes`: the steps composed on volumes (API, Slicer, MONAI, batch)
:mod:`.outputs`             :class:`OutputPlan`: files or DICOM series, checked before reading, written last
:mod:`.files`               :func:`fuse_files`, :func:`register_files`: files in, files out (CLI, demo, batch)
:mod:`.provenance`          :class:`Provenance`: how an output was made, one entry per step (every sidecar)
==========================  ================================================================================

The fused result always has the reference's grid and affine. PET and SPECT volumes are fused in colour (the
colour policy: :mod:`medfuse.color`): the normalized moving scan goes through a colour map, its luminance is
fused with the reference and its chroma kept, and the result is an RGB volume; CT-MRI and MR-MR stay grey.
:func:`fuse_files` also writes the moving scan on the reference grid in its own units (SUV, Bq/mL, HU...), so
the display image is never the only output. Registration is skipped when the inputs already share one grid (the
same voxel centres in world space, in any storage order) or one DICOM frame of reference, unless asked for.

Example:
    >>> from medfuse.pipeline import FusionOptions, fuse_files
    >>> written = fuse_files("t1.nii.gz", "pet_dicom/", "fused.nii.gz",
    ...                      FusionOptions(method="max", transform_out="pet_to_t1.tfm"))  # doctest: +SKIP
"""

from __future__ import annotations

from medfuse.intensity.units import quantity_units
from medfuse.pipeline.align import PreparedPair, align_pair, prepare_pair
from medfuse.pipeline.files import fuse_files, register_files
from medfuse.pipeline.fuse import FusionResult, default_method, fuse_volumes
from medfuse.pipeline.load import ROLES, load_inputs, role_label
from medfuse.pipeline.options import (
    OUT_FORMATS,
    REGISTRATION_TYPES,
    FusionOptions,
    InputOptions,
    Progress,
    RegistrationOptions,
)
from medfuse.pipeline.outputs import OutputPlan, quantitative_path
from medfuse.pipeline.provenance import Provenance

__all__ = [
    "FusionOptions",
    "RegistrationOptions",
    "InputOptions",
    "Progress",
    "FusionResult",
    "PreparedPair",
    "Provenance",
    "OutputPlan",
    "fuse_volumes",
    "fuse_files",
    "register_files",
    "prepare_pair",
    "align_pair",
    "default_method",
    "load_inputs",
    "quantity_units",
    "quantitative_path",
    "role_label",
    "ROLES",
    "OUT_FORMATS",
    "REGISTRATION_TYPES",
]
