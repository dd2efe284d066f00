"""Typed parameters of the MedFuse module, with validation that needs no Slicer."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MedFuseParameters", "METHODS", "REGISTRATION_TYPES"]

#: what the method selector offers; "default" lets medfuse choose the trained network of the pair
METHODS = ("default", "mean", "max", "laplacian", "wavelet", "guided", "fmmf", "mdgan", "msra", "light")
REGISTRATION_TYPES = ("rigid", "affine", "bspline")
MODALITIES = ("CT", "PT", "NM", "MR")


@dataclass
class MedFuseParameters:
    """What the user chose in the module panel.

    Attributes:
        moving_modality: DICOM modality code of the second scan: CT, PT (PET), NM (SPECT), MR.
        method: fusion method, or "default".
        register: register the moving volume onto the reference (off for pre-aligned data).
        registration_type: rigid, affine or bspline.
        device: torch device for networks ("cpu" or "cuda").
    """

    moving_modality: str = "PT"
    method: str = "default"
    register: bool = True
    registration_type: str = "rigid"
    device: str = "cpu"

    def isValid(self) -> tuple[bool, str]:
        """(True, "") when the parameters can run, else (False, a message for the status line)."""
        if self.moving_modality not in MODALITIES:
            return False, f"moving modality must be one of {', '.join(MODALITIES)}, got {self.moving_modality!r}"
        if self.method not in METHODS:
            return False, f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}"
        if self.registration_type not in REGISTRATION_TYPES:
            return False, f"registration must be rigid, affine or bspline, got {self.registration_type!r}"
        if self.device not in ("cpu", "cuda"):
            return False, f"device must be cpu or cuda, got {self.device!r}"
        return True, ""
