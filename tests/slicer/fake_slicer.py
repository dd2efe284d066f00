"""A minimal stand-in for Slicer's Python API, enough to import and drive ``MedFuseLib.logic`` and
``MedFuseLib.widget`` without Slicer.

Only the calls the module makes exist here, with the signatures of Slicer's own (checked against
Slicer's sources, see slicer_extension/README.md, "Verified / not verified"); what they do is recorded
so the tests can check it. It proves the module's own control flow (export -> child process -> load ->
display, cancel, errors, install), not that Slicer behaves as this fake does.
"""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path
from typing import Annotated, get_args, get_origin, get_type_hints


# -- MRML nodes ---------------------------------------------------------------------------------------
class FakeNode:
    _count = 0

    def __init__(self, scene, cls, name):
        FakeNode._count += 1
        self.scene, self.cls, self._name = scene, cls, name
        self._id = f"{cls}{FakeNode._count}"
        self._attributes = {}
        self._transform_id = None
        scene.nodes[self._id] = self

    def GetID(self):
        return self._id

    def GetName(self):
        return self._name

    def SetName(self, name):
        self._name = name

    def GetAttribute(self, key):
        return self._attributes.get(key)

    def SetAttribute(self, key, value):
        self._attributes[key] = value

    def IsA(self, cls):
        return cls == self.cls or (cls == "vtkMRMLScalarVolumeNode" and self.cls == "vtkMRMLVectorVolumeNode")

    # vtkMRMLTransformableNode
    def GetTransformNodeID(self):
        return self._transform_id

    def SetAndObserveTransformNodeID(self, node_id):
        self._transform_id = node_id

    def GetParentTransformNode(self):
        return self.scene.nodes.get(self._transform_id) if self._transform_id else None


class FakeDisplayNode:
    def __init__(self):
        self.color_node_id = None
        self.auto_window_level = False

    def SetAndObserveColorNodeID(self, node_id):
        self.color_node_id = node_id

    def AutoWindowLevelOn(self):
        self.auto_window_level = True


class FakeStorageNode:
    def __init__(self, scene, path=""):
        self.scene, self.filename, self.compression = scene, path, True

    def SetFileName(self, path):
        self.filename = path

    def GetFileName(self):
        return self.filename

    def UseCompressionOff(self):
        self.compression = False

    def WriteData(self, node):
        if self.scene.fail_writes:
            return 0
        Path(self.filename).write_text(f"volume {node.GetName()}")
        self.scene.written.append((node.GetName(), self.filename, self.compression))
        return 1

    def UnRegister(self, owner):
        self.scene.unregistered += 1


class FakeVolumeNode(FakeNode):
    def __init__(self, scene, name, cls="vtkMRMLScalarVolumeNode", path=""):
        super().__init__(scene, cls, name)
        self.storage = FakeStorageNode(scene, path) if path else None
        self.display = None
        self.source_text = Path(path).read_text() if path else ""

    def GetStorageNode(self):
        return self.storage

    def CreateDefaultDisplayNodes(self):
        if self.display is None:
            self.display = FakeDisplayNode()

    def GetDisplayNode(self):
        return self.display


class FakeTransformNode(FakeVolumeNode):
    def __init__(self, scene, name, path=""):
        super().__init__(scene, name, cls="vtkMRMLLinearTransformNode", path=path)


class FakeSliceComposite:
    def __init__(self):
        self.background = self.foreground = None
        self.foreground_opacity = 0.0

    def SetForegroundOpacity(self, opacity):
        self.foreground_opacity = opacity


class FakeScene:
    def __init__(self):
        self.nodes = {}
        self.written = []
        self.unregistered = 0
        self.fail_writes = False
        self.composites = [FakeSliceComposite() for _ in range(3)]  # Red, Yellow, Green

    def CreateNodeByClass(self, cls):
        assert cls == "vtkMRMLVolumeArchetypeStorageNode", cls
        return FakeStorageNode(self)

    def GenerateUniqueName(self, name):
        return name

    def GetNodeByID(self, node_id):
        return self.nodes.get(node_id)


# -- slicer.util --------------------------------------------------------------------------------------
class FakeUtil(types.ModuleType):
    def __init__(self, slicer):
        super().__init__("slicer.util")
        self.slicer = slicer
        self.calls = []
        self.confirm_answer = True
        self.yes_no_answer = False
        self.error_displayed = []
        self.VTKObservationMixin = FakeVTKObservationMixin

    def loadVolume(self, path, properties=None):
        properties = properties or {}
        text = Path(path).read_text()
        cls = "vtkMRMLVectorVolumeNode" if "rgb" in text else "vtkMRMLScalarVolumeNode"
        node = FakeVolumeNode(self.slicer.mrmlScene, properties.get("name", Path(path).stem), cls, path)
        self.calls.append(("loadVolume", path, dict(properties)))
        return node

    def loadTransform(self, path):
        self.calls.append(("loadTransform", path))
        return FakeTransformNode(self.slicer.mrmlScene, Path(path).stem, path)

    def setSliceViewerLayers(self, background="keep-current", foreground="keep-current", label="keep-current",
                             foregroundOpacity=None, labelOpacity=None, fit=False, rotateToVolumePlane=False):
        self.calls.append(("setSliceViewerLayers", background, foreground, foregroundOpacity, fit))
        for composite in self.slicer.mrmlScene.composites:
            if background != "keep-current":
                composite.background = background.GetID() if background is not None else None
            if foreground != "keep-current":
                composite.foreground = foreground.GetID() if foreground is not None else None
            if foregroundOpacity is not None:
                composite.foreground_opacity = foregroundOpacity

    def getNodesByClass(self, cls):
        assert cls == "vtkMRMLSliceCompositeNode", cls
        return list(self.slicer.mrmlScene.composites)

    def pip_install(self, requirements):
        self.calls.append(("pip_install", requirements))

    def confirmOkCancelDisplay(self, text, windowTitle=None, parent=None, **kwargs):
        self.calls.append(("confirmOkCancelDisplay", text))
        return self.confirm_answer

    def confirmYesNoDisplay(self, text, windowTitle=None, parent=None, **kwargs):
        self.calls.append(("confirmYesNoDisplay", text))
        return self.yes_no_answer

    def restart(self):
        self.calls.append(("restart",))

    @contextlib.contextmanager
    def tryWithErrorDisplay(self, message=None, show=True, waitCursor=False):
        try:
            yield
        except Exception as err:  # Slicer shows the message and the exception's details, then re-raises it
            self.error_displayed.append(f"{message} {err}")
            raise

    def names(self):
        return [c[0] for c in self.calls]


class FakeVTKObservationMixin:
    """Records the observations; an object with ``AddObserver`` (a stand-in parameter node) is observed for real,
    as Slicer's mixin does (``obj.AddObserver(event, method, priority)``)."""

    def __init__(self):
        self.observations = []

    def addObserver(self, obj, event, method, priority=0.0, *args, **kwargs):
        tag = obj.AddObserver(event, method, priority) if hasattr(obj, "AddObserver") else None
        self.observations.append((obj, event, method, tag))

    def removeObserver(self, obj, event, method):
        for o in [o for o in self.observations if o[:3] == (obj, event, method)]:
            if o[3] is not None:
                obj.RemoveObserver(o[3])
            self.observations.remove(o)

    def removeObservers(self, method=None):
        for obj, event, method_, tag in list(self.observations):
            self.removeObserver(obj, event, method_)


# -- qt -------------------------------------------------------------------------------------------------
class FakeQTimer:
    instances = []

    def __init__(self):
        self.interval, self.callbacks, self.active = None, [], False
        FakeQTimer.instances.append(self)

    def setInterval(self, ms):
        self.interval = ms

    def connect(self, signal, callback):
        assert signal == "timeout()", signal
        self.callbacks.append(callback)

    def start(self):
        self.active = True

    def stop(self):
        self.active = False

    def fire(self):
        """What the Qt event loop does every interval."""
        if self.active:
            for callback in self.callbacks:
                callback()


# -- slicer.parameterNodeWrapper --------------------------------------------------------------------
class Choice:
    def __init__(self, choices):
        self.choices = tuple(choices)


class WithinRange:
    def __init__(self, low, high):
        self.low, self.high = low, high


def parameterNodeWrapper(cls):
    """Typed attributes with their defaults (None without one), validated like the real wrapper's
    Choice/WithinRange, and connectGui/disconnectGui that record the binding."""
    hints = get_type_hints(cls, include_extras=True)

    def __init__(self, node=None):
        object.__setattr__(self, "parameterNode", node)
        object.__setattr__(self, "_gui", [])
        for name in hints:
            object.__setattr__(self, name, getattr(cls, name, None))

    def __setattr__(self, name, value):
        hint = hints.get(name)
        if hint is not None and get_origin(hint) is Annotated:
            for validator in get_args(hint)[1:]:
                if isinstance(validator, Choice) and value not in validator.choices:
                    raise ValueError(f"{name}: {value!r} not in {validator.choices}")
                if isinstance(validator, WithinRange) and not validator.low <= value <= validator.high:
                    raise ValueError(f"{name}: {value!r} out of range")
        object.__setattr__(self, name, value)

    def connectGui(self, ui):
        self._gui.append(ui)
        return len(self._gui)

    def disconnectGui(self, tag):
        self._gui[tag - 1] = None

    namespace = {k: v for k, v in vars(cls).items() if k not in hints}
    namespace.update(__init__=__init__, __setattr__=__setattr__, connectGui=connectGui,
                     disconnectGui=disconnectGui)
    return type(cls.__name__, (), namespace)


# -- installing the fake ------------------------------------------------------------------------------
class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        self.parent = parent

    def getParameterNode(self):
        return FakeNode(sys.modules["slicer"].mrmlScene, "vtkMRMLScriptedModuleNode", "MedFuse")


def install(monkeypatch, slicer_home: Path, module_path: Path):
    """Put fake ``slicer``, ``qt`` and ``vtk`` modules in sys.modules (undone by monkeypatch); return ``slicer``."""
    slicer = types.ModuleType("slicer")
    slicer.mrmlScene = FakeScene()
    slicer.app = types.SimpleNamespace(slicerHome=str(slicer_home))
    slicer.modules = types.SimpleNamespace(medfuse=types.SimpleNamespace(path=str(module_path)))
    slicer.dicomDatabase = None
    slicer.vtkMRMLScalarVolumeNode = type("vtkMRMLScalarVolumeNode", (), {})
    slicer.vtkMRMLTransformNode = type("vtkMRMLTransformNode", (), {})
    slicer.util = FakeUtil(slicer)
    slicer.__path__ = []  # a package, so that "from slicer.X import Y" works
    slm = types.ModuleType("slicer.ScriptedLoadableModule")
    slm.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    pnw.parameterNodeWrapper, pnw.Choice, pnw.WithinRange = parameterNodeWrapper, Choice, WithinRange
    qt = types.ModuleType("qt")
    qt.QTimer = FakeQTimer
    vtk = types.ModuleType("vtk")
    vtk.vtkCommand = types.SimpleNamespace(ModifiedEvent=33)
    for name, module in {"slicer": slicer, "slicer.util": slicer.util, "slicer.ScriptedLoadableModule": slm,
                         "slicer.parameterNodeWrapper": pnw, "qt": qt, "vtk": vtk}.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in ("MedFuseLib.logic", "MedFuseLib.widget", "MedFuseLib.parameter_node"):
        # imported afresh against this fake, and forgotten again after the test (monkeypatch's undo)
        monkeypatch.setitem(sys.modules, name, None)
        del sys.modules[name]
    FakeQTimer.instances.clear()
    return slicer
