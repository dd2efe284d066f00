"""MedFuse: a thin 3D Slicer module over medfuse (medical image fusion).

Everything lives in ``MedFuseLib``: the parameter node, the logic (export, run medfuse in a
separate process, load and show the results), the panel, and the Slicer-free parts tested by
medfuse's own suite (``tests/slicer/``). The self-test is ``Testing/Python/MedFuseTest.py``.
"""

import importlib.util
import os
import sys
import unittest

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

from MedFuseLib.logic import MedFuseLogic  # noqa: F401  (slicer.modules.medfuse.widgetRepresentation().self().logic)


class MedFuse(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MedFuse"
        self.parent.categories = ["Registration"]
        self.parent.dependencies = []
        self.parent.contributors = ["medfuse developers"]
        self.parent.helpText = (
            "Register a CT, PET, SPECT or MRI volume onto a reference volume (usually an MRI) and fuse them with a "
            "trained network or a classical method. The fused volume keeps the reference volume's geometry; PET and "
            "SPECT are also shown in colour over it. See the "
            "<a href=\"https://github.com/medfuse/medfuse/tree/main/slicer_extension\">module documentation</a>."
        )
        self.parent.acknowledgementText = (
            "medfuse: medical image fusion for research. Not for clinical use. The Harvard Whole Brain Atlas images "
            "used to train the networks are (c) K. A. Johnson and J. A. Becker."
        )


class MedFuseWidget(ScriptedLoadableModuleWidget):
    """Loads the .ui and hands it to ``MedFuseLib.widget.MedFuseWidgetController``."""

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from MedFuseLib.widget import MedFuseWidgetController

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedFuse.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedFuseLogic()
        self.controller = MedFuseWidgetController(self.ui, self.logic)
        self.controller.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.controller.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.controller.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.logic.cancel()
        self.controller.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        parameterNode = self.logic.getParameterNode()
        if parameterNode.referenceVolume is None:
            volume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if volume is not None:
                parameterNode.referenceVolume = volume
        self.controller.setParameterNode(parameterNode)

    def cleanup(self):
        self.controller.cleanup()

    def onReload(self):
        """Reload MedFuseLib too: Slicer's reload re-runs this file only, which would import the old library."""
        for name in [name for name in sys.modules if name == "MedFuseLib" or name.startswith("MedFuseLib.")]:
            del sys.modules[name]
        ScriptedLoadableModuleWidget.onReload(self)


class MedFuseTest(ScriptedLoadableModuleTest):
    """Runs ``Testing/Python/MedFuseTest.py`` (Reload and Test; Slicer's ctest runs that file itself).

    A skip (no medfuse in Slicer's Python, or an installed extension without its tests) is shown as a message,
    not raised: Reload and Test shows any exception as an error."""

    def runTest(self, **kwargs):
        path = os.path.join(os.path.dirname(__file__), "Testing", "Python", "MedFuseTest.py")
        if not os.path.isfile(path):  # an installed extension keeps its tests in the build tree (ctest)
            self.delayDisplay(f"MedFuse self-test skipped: {path} not found; run it from a source checkout or "
                              "with ctest")
            return
        spec = importlib.util.spec_from_file_location("MedFuseSelfTest", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(module.MedFuseTest)
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        if not result.wasSuccessful():
            raise AssertionError(f"MedFuse self-test failed: {len(result.failures)} failures, {len(result.errors)} errors")
        for _, reason in result.skipped:
            self.delayDisplay(f"MedFuse self-test skipped: {reason}")
