"""The MedFuse parameter node: the panel's settings, stored in the scene (Slicer only).

Every field is bound to the widget whose ``SlicerParameterName`` property names it in
``Resources/UI/MedFuse.ui`` (``connectGui``), so a saved scene reopens with the same inputs,
options and results. :meth:`toParameters` gives the Slicer-free :class:`MedFuseParameters`.
"""

from typing import Annotated

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLTransformNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper

from MedFuseLib.parameters import (
    COLORMAPS,
    DEFAULT,
    DEVICES,
    METHODS,
    MODALITIES,
    REGISTRATION_TYPES,
    UNKNOWN_MODALITY,
    WINDOW_PRESETS,
    MedFuseParameters,
)

__all__ = ["MedFuseParameterNode", "MODALITY_CHOICES"]

#: what the modality selectors offer: "unknown" until detected from DICOM/the name or chosen
MODALITY_CHOICES = (UNKNOWN_MODALITY,) + tuple(MODALITIES)


@parameterNodeWrapper
class MedFuseParameterNode:
    """Inputs, options and the last results of the MedFuse module.

    referenceVolume, movingVolume: the two scans (the reference keeps its grid).
    referenceModality, movingModality: MR, CT, PT, NM, or "unknown" (detected when a volume is chosen).
    method, register, registrationType, window, colormap, device, acceptRegistration, keepHot: see MedFuseParameters.
    overlayOpacity: opacity of the PET/SPECT colour overlay in the slice views.
    fusedVolume, quantitativeVolume, outputTransform: the nodes the last run created (None before).
    """

    referenceVolume: vtkMRMLScalarVolumeNode
    movingVolume: vtkMRMLScalarVolumeNode
    referenceModality: Annotated[str, Choice(MODALITY_CHOICES)] = UNKNOWN_MODALITY
    movingModality: Annotated[str, Choice(MODALITY_CHOICES)] = UNKNOWN_MODALITY
    method: Annotated[str, Choice(METHODS)] = DEFAULT
    register: bool = True
    registrationType: Annotated[str, Choice(REGISTRATION_TYPES)] = "rigid"
    window: Annotated[str, Choice(WINDOW_PRESETS)] = DEFAULT
    colormap: Annotated[str, Choice(COLORMAPS)] = DEFAULT
    device: Annotated[str, Choice(DEVICES)] = "cpu"
    acceptRegistration: bool = False
    keepHot: bool = True
    overlayOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    fusedVolume: vtkMRMLScalarVolumeNode  # a vtkMRMLVectorVolumeNode (RGB) for PET/SPECT
    quantitativeVolume: vtkMRMLScalarVolumeNode
    outputTransform: vtkMRMLTransformNode

    def toParameters(self) -> MedFuseParameters:
        """The Slicer-free parameters of one run."""
        return MedFuseParameters(
            reference_modality=None if self.referenceModality == UNKNOWN_MODALITY else self.referenceModality,
            moving_modality=None if self.movingModality == UNKNOWN_MODALITY else self.movingModality,
            method=self.method,
            register=self.register,
            registration_type=self.registrationType,
            window=self.window,
            colormap=self.colormap,
            device=self.device,
            accept_registration=self.acceptRegistration,
            keep_hot=self.keepHot,
        )
