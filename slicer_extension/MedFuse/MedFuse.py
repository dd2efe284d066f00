"""MedFuse: a thin 3D Slicer module over medfuse.

The widget only collects inputs; :class:`MedFuseLogic` exports the nodes, runs medfuse in a
separate process (``MedFuseLib.process``) and loads the result. Node names never come from
patient data. The logic that needs no Slicer lives in ``MedFuseLib`` and is tested with medfuse's
test suite (``tests/slicer/``).
"""

import os
import tempfile
from pathlib import Path

import qt
import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

from MedFuseLib import FusionProcess, MedFuseParameters
from MedFuseLib.parameters import METHODS, REGISTRATION_TYPES


class MedFuse(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MedFuse"
        self.parent.categories = ["Registration"]
        self.parent.dependencies = []
        self.parent.contributors = ["medfuse developers"]
        self.parent.helpText = (
            "Register a CT, PET, SPECT or MRI volume onto a reference MRI and fuse them with a trained network or a "
            "classical method. The fused volume keeps the reference volume's geometry."
        )
        self.parent.acknowledgementText = "medfuse: medical image fusion for radiology research."


def ensure_medfuse() -> bool:
    """Make sure medfuse is importable in Slicer's Python, installing it with the user's consent."""
    try:
        import medfuse  # noqa: F401

        return True
    except ImportError:
        if not slicer.util.confirmOkCancelDisplay(
            "MedFuse needs the 'medfuse' Python package (with PyTorch, MONAI, SimpleITK). Install it now?"
        ):
            return False
        slicer.util.pip_install("medfuse")
        return True


class MedFuseWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = MedFuseLogic()
        form = qt.QFormLayout()
        box = qt.QGroupBox("Inputs")
        box.setLayout(form)
        self.layout.addWidget(box)

        def node_selector(tooltip, add_enabled=False):
            sel = slicer.qMRMLNodeComboBox()
            sel.nodeTypes = ["vtkMRMLScalarVolumeNode"]
            sel.noneEnabled = add_enabled
            sel.addEnabled = add_enabled
            sel.renameEnabled = add_enabled
            sel.setMRMLScene(slicer.mrmlScene)
            sel.setToolTip(tooltip)
            return sel

        self.referenceSelector = node_selector("Reference (anatomical) volume, usually the MRI")
        self.movingSelector = node_selector("Volume to fuse into the reference geometry")
        self.outputSelector = node_selector("Fused output (a new volume is created when empty)", add_enabled=True)
        self.modalityCombo = qt.QComboBox()
        self.modalityCombo.addItems(["PT", "CT", "NM", "MR"])
        self.methodCombo = qt.QComboBox()
        self.methodCombo.addItems(list(METHODS))
        self.registerCheck = qt.QCheckBox("register moving onto reference")
        self.registerCheck.checked = True
        self.registrationCombo = qt.QComboBox()
        self.registrationCombo.addItems(list(REGISTRATION_TYPES))
        self.registrationCombo.currentText = "rigid"
        form.addRow("Reference:", self.referenceSelector)
        form.addRow("Moving:", self.movingSelector)
        form.addRow("Moving modality:", self.modalityCombo)
        form.addRow("Method:", self.methodCombo)
        form.addRow(self.registerCheck)
        form.addRow("Registration:", self.registrationCombo)
        form.addRow("Output:", self.outputSelector)
        self.applyButton = qt.QPushButton("Fuse")
        self.statusLabel = qt.QLabel("")
        self.layout.addWidget(self.applyButton)
        self.layout.addWidget(self.statusLabel)
        self.layout.addStretch(1)
        self.applyButton.connect("clicked(bool)", self.onApply)

    def parameters(self) -> MedFuseParameters:
        return MedFuseParameters(
            moving_modality=self.modalityCombo.currentText,
            method=self.methodCombo.currentText,
            register=self.registerCheck.checked,
            registration_type=self.registrationCombo.currentText,
        )

    def onApply(self):
        params = self.parameters()
        ok, message = params.isValid()
        ref, mov = self.referenceSelector.currentNode(), self.movingSelector.currentNode()
        if not ok or ref is None or mov is None:
            self.statusLabel.text = message or "choose a reference and a moving volume"
            return
        if not ensure_medfuse():
            return
        self.applyButton.enabled = False
        self.statusLabel.text = "fusing (running in a separate process)..."
        try:
            self.logic.start(params, ref, mov, self.outputSelector.currentNode(), self.onFinished)
        except Exception as err:  # show the one-line reason, keep the GUI alive
            self.statusLabel.text = str(err)
            self.applyButton.enabled = True

    def onFinished(self, node, error):
        self.applyButton.enabled = True
        if error:
            self.statusLabel.text = error
            return
        self.outputSelector.setCurrentNode(node)
        slicer.util.setSliceViewerLayers(background=node)
        self.statusLabel.text = "done"


class MedFuseLogic(ScriptedLoadableModuleLogic):
    """Export nodes, run medfuse in a child process, load the result. Usable from the Python console."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._timer = None

    def _export(self, params, reference_node, moving_node):
        workdir = Path(tempfile.mkdtemp(prefix="medfuse-"))
        ref_path, mov_path, out_path = workdir / "reference.nrrd", workdir / "moving.nrrd", workdir / "fused.nrrd"
        slicer.util.saveNode(reference_node, str(ref_path))
        slicer.util.saveNode(moving_node, str(mov_path))
        python = os.path.join(os.path.dirname(slicer.app.slicerHome), "bin", "PythonSlicer")
        python = python if os.path.exists(python) else None
        return FusionProcess(params, ref_path, mov_path, out_path, python=python)

    def _load(self, process, output_node, method):
        loaded = slicer.util.loadVolume(str(process.output))
        loaded.SetName(slicer.mrmlScene.GenerateUniqueName(f"Fused ({method})"))
        if output_node is not None:
            output_node.SetAndObserveImageData(loaded.GetImageData())
            ijk_to_ras = vtk_matrix()
            loaded.GetIJKToRASMatrix(ijk_to_ras)
            output_node.SetIJKToRASMatrix(ijk_to_ras)
            slicer.mrmlScene.RemoveNode(loaded)
            return output_node
        return loaded

    def process(self, params, reference_node, moving_node, output_node=None):
        """Run synchronously and return the fused node (for scripts and tests)."""
        proc = self._export(params, reference_node, moving_node)
        proc.run()
        return self._load(proc, output_node, params.method)

    def start(self, params, reference_node, moving_node, output_node, on_finished):
        """Run in the background; ``on_finished(node, error_message)`` is called on the GUI thread."""
        proc = self._export(params, reference_node, moving_node)
        proc.start()
        self._timer = qt.QTimer()
        self._timer.setInterval(500)

        def check():
            code = proc.poll()
            if code is None:
                return
            self._timer.stop()
            if code != 0:
                on_finished(None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "medfuse failed")
            else:
                on_finished(self._load(proc, output_node, params.method), None)

        self._timer.connect("timeout()", check)
        self._timer.start()


def vtk_matrix():
    import vtk

    return vtk.vtkMatrix4x4()


class MedFuseTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: fuse two synthetic volumes and check the output geometry."""

    def runTest(self):
        slicer.mrmlScene.Clear()
        self.test_fusion_keeps_reference_geometry()

    def test_fusion_keeps_reference_geometry(self):
        import numpy as np

        ref = slicer.util.addVolumeFromArray(np.random.rand(20, 24, 28).astype("float32") * 100, name="reference")
        mov = slicer.util.addVolumeFromArray(np.random.rand(20, 24, 28).astype("float32") * 100, name="moving")
        ref.SetSpacing(1.0, 1.2, 1.5)
        mov.SetSpacing(1.0, 1.2, 1.5)
        params = MedFuseParameters(moving_modality="MR", method="mean", register=False)
        fused = MedFuseLogic().process(params, ref, mov)
        a, b = vtk_matrix(), vtk_matrix()
        ref.GetIJKToRASMatrix(a)
        fused.GetIJKToRASMatrix(b)
        for i in range(4):
            for j in range(4):
                self.assertAlmostEqual(a.GetElement(i, j), b.GetElement(i, j), places=4)
