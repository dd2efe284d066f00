"""Typed parameters of the MedFuse module, with validation that needs no Slicer.

:class:`MedFuseParameters` is what one fusion run needs besides the two volumes. The Slicer
parameter node (:mod:`MedFuseLib.parameter_node`) stores the same settings in the scene and
converts to this class with ``toParameters()``; the process runner (:mod:`MedFuseLib.process`)
turns it into a ``medfuse fuse`` command line.

The option tables mirror medfuse's own: the modality codes come from
:data:`medfuse.modality.MODALITIES` when medfuse is importable (in Slicer, only after the module
installed it), else from a local copy kept equal by ``tests/slicer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = [
    "MedFuseParameters",
    "METHODS",
    "REGISTRATION_TYPES",
    "WINDOW_PRESETS",
    "COLORMAPS",
    "DEVICES",
    "MODALITIES",
    "MODALITY_LABELS",
    "DEFAULT",
    "UNKNOWN_MODALITY",
]

#: what the method selector offers; "default" lets medfuse choose (its defaults.json: the quality benchmark's choice per pair)
METHODS = ("default", "light", "fmmf", "mdgan", "msra", "mean", "max", "laplacian", "wavelet", "guided")
#: registration models of ``medfuse fuse --registration``
REGISTRATION_TYPES = ("rigid", "affine", "bspline")
#: CT window presets of ``medfuse fuse --window`` (medfuse.intensity.normalize.CTWindow); "default": medfuse's
WINDOW_PRESETS = ("default", "brain", "subdural", "bone", "soft_tissue")
#: colour maps of PET/SPECT (medfuse.color.COLORMAPS); "default": aanlib_pet for PET, aanlib_spect for SPECT
COLORMAPS = ("default", "aanlib_pet", "aanlib_spect", "hot_iron", "hot_yellow", "rainbow", "viridis", "gray")
DEVICES = ("cpu", "cuda")
#: the selector value that means "let medfuse decide"
DEFAULT = "default"
#: the modality selector value before a modality is detected or chosen (never a fixed default)
UNKNOWN_MODALITY = "unknown"

#: medfuse's modality codes, for Slicer before medfuse is installed (equal to medfuse.modality.MODALITIES)
_LOCAL_MODALITIES = ("MR", "CT", "PT", "NM")
_LOCAL_MODALITY_LABELS = {"MR": "MRI", "CT": "CT", "PT": "PET", "NM": "SPECT"}


def _modality_table():
    try:
        from medfuse.modality import MODALITIES, MODALITY_LABELS
    except ImportError:  # inside Slicer before medfuse is installed
        return _LOCAL_MODALITIES, dict(_LOCAL_MODALITY_LABELS)
    return tuple(MODALITIES), dict(MODALITY_LABELS)


#: medfuse modality codes (DICOM Modality values) and what a person calls them
MODALITIES, MODALITY_LABELS = _modality_table()


@dataclass
class MedFuseParameters:
    """What the user chose in the module panel, for one fusion run.

    Attributes:
        reference_modality: modality code of the reference scan (MR, CT, PT, NM); None: not known yet.
        moving_modality: modality code of the second scan: CT, PT (PET), NM (SPECT), MR; None: not known yet.
        method: fusion method, or "default" (the method medfuse chose for the pair: medfuse/weights/defaults.json).
        register: register the moving volume onto the reference (off for pre-aligned data).
        registration_type: rigid, affine or bspline.
        window: CT window preset, "LEVEL,WIDTH" in HU, or "default".
        colormap: colour map of a PET/SPECT moving volume, or "default".
        device: torch device for networks ("cpu" or "cuda").
        accept_registration: keep a registration whose self-checks failed (recorded in the sidecar).
        keep_hot: PET/SPECT: keep the hottest regions at least as bright as in the scan alone (medfuse's default;
            False passes ``--no-keep-hot``).
    """

    reference_modality: Optional[str] = None
    moving_modality: Optional[str] = None
    method: str = DEFAULT
    register: bool = True
    registration_type: str = "rigid"
    window: str = DEFAULT
    colormap: str = DEFAULT
    device: str = "cpu"
    accept_registration: bool = False
    keep_hot: bool = True

    def isValid(self) -> Tuple[bool, str]:
        """(True, "") when the parameters can run, else (False, a message for the status line)."""
        for role, code in (("reference", self.reference_modality), ("moving", self.moving_modality)):
            if code is None or code == UNKNOWN_MODALITY:
                return False, (f"choose the modality of the {role} volume ({', '.join(MODALITIES)}): it is not in "
                               "the volume's DICOM attributes or name")
            if code not in MODALITIES:
                return False, f"{role} modality must be one of {', '.join(MODALITIES)}, got {code!r}"
        if self.method not in METHODS:
            return False, f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}"
        if self.registration_type not in REGISTRATION_TYPES:
            return False, f"registration must be rigid, affine or bspline, got {self.registration_type!r}"
        if self.window not in WINDOW_PRESETS and not _is_level_width(self.window):
            return False, (f"CT window must be one of {', '.join(WINDOW_PRESETS)} or LEVEL,WIDTH in HU (e.g. 40,80), "
                           f"got {self.window!r}")
        if self.colormap not in COLORMAPS:
            return False, f"unknown colour map {self.colormap!r}; choose one of {', '.join(COLORMAPS)}"
        if self.device not in DEVICES:
            return False, f"device must be cpu or cuda, got {self.device!r}"
        return True, ""

    @property
    def is_colour(self) -> bool:
        """True when medfuse writes a colour (RGB) fused volume: a PET or SPECT moving scan not asked in grey."""
        return self.moving_modality in ("PT", "NM") and self.colormap != "gray"


def _is_level_width(text: str) -> bool:
    parts = str(text).split(",")
    if len(parts) != 2:
        return False
    try:
        level, width = (float(p) for p in parts)
    except ValueError:
        return False
    return width > 0
