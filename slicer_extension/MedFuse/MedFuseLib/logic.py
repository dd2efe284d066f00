"""MedFuse logic inside Slicer: export the nodes, run medfuse in the background, load and show the results.

Works without the widget (Python console, ``Testing/Python/MedFuseTest.py``)::

    logic = MedFuseLogic()
    p = logic.getParameterNode()
    p.referenceVolume, p.movingVolume = mri, pet
    p.referenceModality, p.movingModality = "MR", "PT"
    nodes = logic.process(p)          # waits; or logic.start(p, onFinished=...) to run in the background

The volumes are written by Slicer's storage nodes (NRRD: Slicer puts the RAS->LPS conversion in
the header, medfuse reads it back to RAS) into the job's temporary folder, which is removed once
the results are loaded, on error and on cancel. Node names never come from patient data.
"""

import logging
import sys
from pathlib import Path

import qt
import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from MedFuseLib.install import (
    MEDFUSE_VERSION,
    SUPPORTED_SLICER,
    PipInstallError,
    install_dependencies,
    installed_distributions,
    medfuse_source,
    plan_install,
    slicer_pip_install,
)
from MedFuseLib.modality import detect_modality
from MedFuseLib.parameter_node import MedFuseParameterNode
from MedFuseLib.process import FusionError, FusionJob, find_python_slicer

__all__ = ["MedFuseLogic", "PET_COLOR_NODE_ID", "SPECT_COLOR_NODE_ID"]

#: Slicer's PET colour maps (procedural colour nodes of the Colors module)
PET_COLOR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Heat"
SPECT_COLOR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Rainbow2"
#: milliseconds between two reads of the child's output
POLL_INTERVAL_MS = 200


class MedFuseLogic(ScriptedLoadableModuleLogic):
    """Runs one fusion at a time; ``start()`` returns at once and calls back on the GUI thread."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.job = None
        self._timer = None

    def getParameterNode(self) -> MedFuseParameterNode:
        return MedFuseParameterNode(super().getParameterNode())

    # -- inputs -------------------------------------------------------------------------------
    @staticmethod
    def detectModality(volumeNode):
        """``(code or None, "DICOM" | "volume name" | "")`` of a volume node."""
        return detect_modality(volumeNode, getattr(slicer, "dicomDatabase", None))

    @staticmethod
    def moduleDir() -> Path:
        return Path(slicer.modules.medfuse.path).parent

    def ensureMedfuse(self, log=logging.info) -> bool:
        """Install medfuse (pinned), its requirements and PyTorch after asking; True when medfuse can run."""
        plan = plan_install(installed_distributions(), python_version=sys.version_info[:2],
                            medfuse_spec=medfuse_source(self.moduleDir()), imported=list(sys.modules))
        if plan.nothing_to_do and plan.ok:
            return True

        def install_torch() -> bool:
            try:
                import PyTorchUtils
            except ImportError:
                raise RuntimeError("MedFuse needs the PyTorch extension: install 'PyTorch' from the Extensions "
                                   "Manager, restart Slicer and try again") from None
            torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                                  torchVersionRequirement=">=2.2")
            return torch is not None

        # tryWithErrorDisplay shows the error (with details) and re-raises it: caught here, so that Apply only
        # reports "not installed" in the status line instead of ending in an exception
        done = False  # also if a Slicer version's tryWithErrorDisplay swallowed the exception
        try:
            with slicer.util.tryWithErrorDisplay("Installing medfuse failed.", waitCursor=True):
                try:
                    done = install_dependencies(
                        plan,
                        confirm=lambda text: slicer.util.confirmOkCancelDisplay(text, "MedFuse: install medfuse"),
                        pip_install=slicer_pip_install(slicer.util.pip_install, self._pipReportsItself()),
                        install_torch=install_torch,
                        log=log,
                    )
                except PipInstallError as err:  # Slicer 5.12+ has reported it: no second dialog
                    log(f"installing medfuse failed: {err}")
                    logging.error("MedFuse: installing medfuse failed: %s", err)
        except Exception:  # noqa: BLE001  (already shown to the user)
            logging.exception("MedFuse: installing medfuse failed")
            return False
        if done and plan.restart_needed and slicer.util.confirmYesNoDisplay(
                "Packages that Slicer had already loaded were updated; they are used after a restart. "
                "Restart Slicer now?", "MedFuse: restart Slicer"):
            slicer.util.restart()
        return done

    @staticmethod
    def _pipReportsItself() -> bool:
        """Slicer 5.12+: ``slicer.util.pip_install`` is ``slicer.packaging``'s, which asks and reports errors itself."""
        try:
            import slicer.packaging  # noqa: F401
        except ImportError:
            return False
        return True

    # -- running ------------------------------------------------------------------------------
    def _export(self, node, path: Path, log) -> None:
        """Write ``node`` with a storage node, as stored: its parent transform, if any, is not applied."""
        storage = slicer.mrmlScene.CreateNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(path))
        storage.UseCompressionOff()
        try:
            if not storage.WriteData(node):
                raise RuntimeError(f"could not write {node.GetName()} to the temporary folder {path.parent}")
        finally:
            storage.UnRegister(None)

    def prepare(self, parameterNode: MedFuseParameterNode, onLog=None, onProgress=None) -> FusionJob:
        """A started-ready job with both volumes exported (the temporary folder is removed on failure).

        Raises:
            ValueError: a volume is missing or a parameter is not valid (the message says which).
        """
        if parameterNode.referenceVolume is None or parameterNode.movingVolume is None:
            raise ValueError("choose a reference and a moving volume")
        if parameterNode.referenceVolume == parameterNode.movingVolume:
            raise ValueError("the reference and the moving volume are the same node; choose two volumes")
        params = parameterNode.toParameters()
        ok, message = params.isValid()
        if not ok:
            raise ValueError(message)
        log = onLog or logging.info
        reference, moving = parameterNode.referenceVolume, parameterNode.movingVolume
        if reference.GetParentTransformNode() is not None:
            log(f"{reference.GetName()} is under a transform: the results are placed under the same transform")
        if moving.GetParentTransformNode() is not None:
            if params.register:
                log(f"{moving.GetName()}: registration starts from the volume as stored; its parent transform is "
                    "replaced by the registration transform")
            else:
                log(f"{moving.GetName()}: its parent transform is not applied (registration is off); harden it first "
                    "(Data module) to fuse the volume as shown")
        job = FusionJob(params, python=find_python_slicer(slicer_home=slicer.app.slicerHome), on_log=onLog,
                        on_progress=onProgress)
        try:
            self._export(parameterNode.referenceVolume, job.reference_path, log)
            self._export(parameterNode.movingVolume, job.moving_path, log)
        except Exception:
            job.cleanup()
            raise
        return job

    def start(self, parameterNode: MedFuseParameterNode, onFinished, onLog=None, onProgress=None) -> FusionJob:
        """Run in the background. ``onFinished(nodes, error)`` is called on the GUI thread: ``nodes`` is
        ``{"fused", "quantitative", "transform"}`` -> node, or ``error`` is medfuse's one-line message."""
        if self.job is not None and self.job.running:
            raise RuntimeError("a fusion is already running; cancel it first")
        job = self.prepare(parameterNode, onLog, onProgress)
        job.start()
        self.job = job
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", lambda: self._poll(parameterNode, onFinished))
        self._timer.start()
        return job

    def _poll(self, parameterNode, onFinished) -> None:
        job = self.job
        if job is None:
            return
        try:
            if job.poll() is None:
                return
        except Exception as err:  # a broken pipe or similar: stop and report
            job.cancel()
            job.returncode = job.returncode if job.returncode is not None else -1
            self._finish(job, onFinished, None, f"lost the medfuse process: {err}")
            return
        nodes, error = None, None
        try:
            nodes = self.loadResults(parameterNode, job.result())
        except FusionError as err:
            error = str(err)
        except Exception as err:
            logging.exception("MedFuse: loading the results failed")
            error = f"loading the results failed: {err}"
        self._finish(job, onFinished, nodes, error)

    def _finish(self, job, onFinished, nodes, error) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        job.cleanup()
        self.job = None
        onFinished(nodes, error)

    def cancel(self) -> None:
        """End the running fusion; ``onFinished`` is then called with the error "cancelled"."""
        if self.job is not None:
            self.job.cancel()

    def process(self, parameterNode: MedFuseParameterNode, timeout: float = 1800.0, onLog=None):
        """Run and wait (scripts and tests); return the result nodes or raise FusionError."""
        job = self.prepare(parameterNode, onLog)
        try:
            return self.loadResults(parameterNode, job.run(timeout))
        finally:
            job.cleanup()

    # -- results ------------------------------------------------------------------------------
    def loadResults(self, parameterNode: MedFuseParameterNode, outputs) -> dict:
        """Load the written files as new nodes, remember them in the parameter node, show them."""
        params = parameterNode.toParameters()
        method = params.method
        scene = slicer.mrmlScene
        nodes = {"fused": slicer.util.loadVolume(str(outputs["fused"]), {
            "name": scene.GenerateUniqueName(f"MedFuse fused ({method})"), "show": False})}
        if "quantitative" in outputs:
            nodes["quantitative"] = slicer.util.loadVolume(str(outputs["quantitative"]), {
                "name": scene.GenerateUniqueName("MedFuse moving on reference grid"), "show": False})
        reference, moving = parameterNode.referenceVolume, parameterNode.movingVolume
        # medfuse saw both volumes as stored (no parent transforms): its results and its transform live in the
        # reference's own coordinates, so they go under the reference's parent transform (None: world)
        referenceParentID = reference.GetTransformNodeID() if reference is not None else None
        for node in nodes.values():
            node.SetAndObserveTransformNodeID(referenceParentID)
        if "transform" in outputs:
            # ITK file: reference LPS -> moving LPS (resampling direction); Slicer converts it so that applied to
            # the moving volume it moves it onto the reference. The moving volume is placed under it, replacing its
            # previous parent (also a previous MedFuse run's transform: never chained)
            transform = slicer.util.loadTransform(str(outputs["transform"]))
            transform.SetName(scene.GenerateUniqueName("MedFuse moving to reference"))
            transform.SetAndObserveTransformNodeID(referenceParentID)
            if moving is not None:
                moving.SetAndObserveTransformNodeID(transform.GetID())
            nodes["transform"] = transform
        for node in nodes.values():  # the files are in the temporary folder, removed next
            storage = node.GetStorageNode()
            if storage is not None:
                storage.SetFileName("")
        parameterNode.fusedVolume = nodes["fused"]
        parameterNode.quantitativeVolume = nodes.get("quantitative")
        parameterNode.outputTransform = nodes.get("transform")
        self.showResults(parameterNode)
        return nodes

    def showResults(self, parameterNode: MedFuseParameterNode) -> None:
        """Fused volume as background; for PET/SPECT the quantitative volume in a PET colour map as foreground."""
        fused, quantitative = parameterNode.fusedVolume, parameterNode.quantitativeVolume
        if fused is None:
            return
        colour = parameterNode.movingModality in ("PT", "NM")
        foreground = None
        if colour and quantitative is not None:
            quantitative.CreateDefaultDisplayNodes()
            display = quantitative.GetDisplayNode()
            display.SetAndObserveColorNodeID(
                PET_COLOR_NODE_ID if parameterNode.movingModality == "PT" else SPECT_COLOR_NODE_ID)
            display.AutoWindowLevelOn()
            foreground = quantitative
        slicer.util.setSliceViewerLayers(background=fused, foreground=foreground,
                                         foregroundOpacity=parameterNode.overlayOpacity if foreground else 0.0,
                                         fit=True)

    @staticmethod
    def setOverlayOpacity(opacity: float) -> None:
        for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            composite.SetForegroundOpacity(opacity)

    @staticmethod
    def about() -> str:
        return f"medfuse {MEDFUSE_VERSION}; needs {SUPPORTED_SLICER}"
