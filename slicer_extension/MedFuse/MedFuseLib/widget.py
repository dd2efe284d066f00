"""The MedFuse panel (Slicer only): binds ``Resources/UI/MedFuse.ui`` to the parameter node and the logic.

The widget holds no state of its own: settings live in the parameter node (saved with the
scene), the work in :class:`~MedFuseLib.logic.MedFuseLogic`. Apply runs medfuse in the background;
the progress bar and the log follow the child's output; Cancel ends it.
"""

import slicer
import vtk
from slicer.util import VTKObservationMixin

from MedFuseLib.logic import MedFuseLogic
from MedFuseLib.modality import modality_for_selection

__all__ = ["MedFuseWidgetController", "WIDGET_NAMES"]

#: every object name this code uses from the .ui file (tests/slicer checks the .ui holds them all)
WIDGET_NAMES = (
    "referenceVolumeSelector", "referenceModalityComboBox", "referenceModalitySourceLabel",
    "movingVolumeSelector", "movingModalityComboBox", "movingModalitySourceLabel",
    "methodComboBox", "registerCheckBox", "registrationTypeComboBox", "windowComboBox", "colormapComboBox",
    "deviceComboBox", "acceptRegistrationCheckBox", "keepHotCheckBox", "overlayOpacitySliderWidget",
    "applyButton", "cancelButton", "progressBar", "statusLabel", "logTextEdit",
)


class MedFuseWidgetController(VTKObservationMixin):
    """Glue between the loaded .ui (``ui``: name -> widget), the parameter node and the logic."""

    def __init__(self, ui, logic: MedFuseLogic):
        VTKObservationMixin.__init__(self)
        self.ui = ui
        self.logic = logic
        self._parameterNode = None
        self._guiTag = None
        #: role -> ID of the volume whose modality the parameter node holds (detection runs on a change only)
        self._volumeIds = {"reference": None, "moving": None}
        self.ui.cancelButton.enabled = False
        self.ui.progressBar.setValue(0)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        # no handlers on the volume selectors: a pick reaches this code as the parameter node's Modified event,
        # once connectGui's own slot has stored it (see onParameterNodeModified)

    # -- parameter node -----------------------------------------------------------------------
    def setParameterNode(self, parameterNode) -> None:
        if self._parameterNode is not None:
            if self._guiTag is not None:
                self._parameterNode.disconnectGui(self._guiTag)
                self._guiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = parameterNode
        if parameterNode is not None:
            self._guiTag = parameterNode.connectGui(self.ui)
            self.addObserver(parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            # the volumes the (possibly reopened) parameter node already holds keep their saved modality; one
            # with none saved (e.g. the reference picked automatically) is detected now
            for role in self._volumeIds:
                self.updateModality(role, getattr(parameterNode, f"{role}Volume"), same=True)
        self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        for role in self._volumeIds:  # a volume picked in the panel (or set from Python): detect its modality
            node = getattr(p, f"{role}Volume")
            if (node.GetID() if node is not None else None) != self._volumeIds[role]:
                self.updateModality(role, node, same=False)
        running = self.logic.job is not None and self.logic.job.running
        ok, message = p.toParameters().isValid()
        if p.referenceVolume is None or p.movingVolume is None:
            ok, message = False, "choose a reference and a moving volume"
        self.ui.applyButton.enabled = ok and not running
        self.ui.applyButton.toolTip = "Fuse the moving volume into the reference geometry" if ok else message
        self.ui.registrationTypeComboBox.enabled = p.register
        self.ui.windowComboBox.enabled = p.movingModality == "CT"
        self.ui.colormapComboBox.enabled = p.movingModality in ("PT", "NM")
        self.ui.keepHotCheckBox.enabled = p.movingModality in ("PT", "NM")
        self.ui.overlayOpacitySliderWidget.enabled = p.movingModality in ("PT", "NM")
        if not running and not ok:
            self.ui.statusLabel.text = message
        if p.quantitativeVolume is not None:
            self.logic.setOverlayOpacity(p.overlayOpacity)

    def updateModality(self, role: str, node, same: bool) -> None:
        """Fill ``<role>Modality`` from the node's DICOM attributes or name; otherwise ask (never a fixed default).

        Runs once the parameter node holds ``node``: writing the modality while the node still held the previous
        volume made the parameter-node wrapper write that volume back into the selector (a first pick of another
        modality did not stick). ``same``: a volume the parameter node already held keeps the modality saved
        with it (see :func:`MedFuseLib.modality.modality_for_selection`)."""
        p = self._parameterNode
        modality, source = modality_for_selection(node, getattr(p, f"{role}Modality"), same,
                                                  getattr(slicer, "dicomDatabase", None))
        self._volumeIds[role] = node.GetID() if node is not None else None  # before the write: it re-enters
        getattr(self.ui, f"{role}ModalitySourceLabel").text = source
        if modality != getattr(p, f"{role}Modality"):
            setattr(p, f"{role}Modality", modality)

    # -- running ------------------------------------------------------------------------------
    def log(self, line: str) -> None:
        self.ui.logTextEdit.appendPlainText(line)

    def onProgress(self, percent: int, step: str) -> None:
        self.ui.progressBar.setValue(percent)
        self.ui.statusLabel.text = f"{step} ({percent}%)"

    def onApply(self, checked: bool = False) -> None:
        p = self._parameterNode
        self.ui.logTextEdit.clear()
        if not self.logic.ensureMedfuse(log=self.log):
            self.ui.statusLabel.text = "medfuse is not installed"
            return
        try:
            self.logic.start(p, onFinished=self.onFinished, onLog=self.log, onProgress=self.onProgress)
        except (ValueError, RuntimeError, FileNotFoundError) as err:
            self.ui.statusLabel.text = str(err)
            return
        self.ui.applyButton.enabled = False
        self.ui.cancelButton.enabled = True
        self.log("medfuse running in a separate process: " + " ".join(self.logic.job.command))

    def onCancel(self, checked: bool = False) -> None:
        self.ui.statusLabel.text = "cancelling..."
        self.logic.cancel()

    def onFinished(self, nodes, error) -> None:
        self.ui.cancelButton.enabled = False
        if error:
            self.ui.progressBar.setValue(0)
            self.ui.statusLabel.text = f"medfuse: {error}"
            self.log(f"failed: {error}")
        else:
            self.ui.progressBar.setValue(100)
            shown = "fused volume in the slice views" + (
                ", PET/SPECT overlay in colour" if "quantitative" in nodes and
                self._parameterNode.movingModality in ("PT", "NM") else "")
            self.ui.statusLabel.text = "done: " + shown
            self.log("done: " + ", ".join(f"{kind}: {node.GetName()}" for kind, node in nodes.items()))
        self.onParameterNodeModified()

    def cleanup(self) -> None:
        if self.logic.job is not None:
            self.logic.cancel()
        self.setParameterNode(None)
        self.removeObservers()
