"""Slicer's own MRML classes behind the names MedFuseLib uses, for ``test_real_mrml.py``.

``slicer-core`` (PyPI, the ``slicer`` test extra) holds Slicer's MRML and module logic without Qt: the scene, volume,
transform, colour and scripted-module nodes, the storage nodes that read and write NRRD and ITK transforms,
``vtkSlicerVolumesLogic``, ``vtkSlicerTransformLogic``, ``vtkMRMLColorLogic``. It has no ``slicer.app``, no PythonQt
and no parameter-node wrapper, so this module supplies, written from Slicer's sources:

* ``slicer.util.loadVolume`` / ``loadTransform``: what Slicer's readers call (``qSlicerVolumesReader`` ->
  ``vtkSlicerVolumesLogic.AddArchetypeVolume``, ``qSlicerTransformsReader`` -> ``vtkSlicerTransformLogic.AddTransform``);
* ``ScriptedLoadableModuleLogic.getParameterNode``: the singleton ``vtkMRMLScriptedModuleNode`` of the module;
* ``parameterNodeWrapper``: typed properties stored in that node as Slicer's serializers store them (``str`` and
  numbers with ``SetParameter(str(value))``, ``bool`` as ``"True"``/``"False"``, nodes as node references);
* ``setSliceViewerLayers``: sets the scene's slice composite nodes (no views without Qt).

Everything else the module touches is Slicer's own class.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Annotated, get_args, get_origin, get_type_hints

import pytest

import fake_slicer

SKIP_REASON = ("slicer-core (Slicer's MRML without Qt) is not installed: pip install -e '.[slicer]' (wheels for "
               "CPython 3.11/3.12 only)")


def real_slicer():
    """The slicer-core ``slicer`` package, or skip with the reason."""
    try:
        import slicer_core  # noqa: F401
        import slicer
    except ImportError as err:
        pytest.skip(f"{SKIP_REASON}; {err}")
    if not hasattr(slicer, "vtkMRMLScene"):
        pytest.skip(f"{SKIP_REASON}; 'slicer' here is not slicer-core's")
    return slicer


def parameterNodeWrapper(cls):
    hints = get_type_hints(cls, include_extras=True)
    real = sys.modules["slicer"]

    def kind(name):
        hint = hints[name]
        base = get_args(hint)[0] if get_origin(hint) is Annotated else hint
        return "node" if isinstance(base, type) and issubclass(base, real.vtkMRMLNode) else base

    def validate(name, value):
        hint = hints[name]
        for validator in get_args(hint)[1:] if get_origin(hint) is Annotated else ():
            if isinstance(validator, fake_slicer.Choice) and value not in validator.choices:
                raise ValueError(f"{name}: {value!r} not in {validator.choices}")
            if isinstance(validator, fake_slicer.WithinRange) and not validator.low <= value <= validator.high:
                raise ValueError(f"{name}: {value!r} out of range")

    def write(node, name, value):
        t = kind(name)
        if t == "node":
            node.SetParameter(name, "")
            node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
        elif t is bool:
            node.SetParameter(name, "True" if value else "False")
        else:
            node.SetParameter(name, str(value))

    def read(node, name):
        t = kind(name)
        if t == "node":
            return node.GetNodeReference(name)
        text = node.GetParameter(name)
        return text == "True" if t is bool else t(text)

    def __init__(self, node):
        object.__setattr__(self, "parameterNode", node)
        for name in hints:
            if not node.HasParameter(name):
                write(node, name, getattr(cls, name, None))

    def __getattr__(self, name):
        if name in hints:
            return read(self.parameterNode, name)
        raise AttributeError(name)

    def __setattr__(self, name, value):
        if name not in hints:
            raise AttributeError(f"{name} is not a parameter")
        validate(name, value)
        write(self.parameterNode, name, value)

    namespace = {k: v for k, v in vars(cls).items()
                 if k not in hints and k not in ("__dict__", "__weakref__", "__annotations__")}
    namespace.update(__init__=__init__, __getattr__=__getattr__, __setattr__=__setattr__)
    return type(cls.__name__, (), namespace)


class ScriptedLoadableModuleLogic:
    """Slicer's getParameterNode: the scene's singleton ``vtkMRMLScriptedModuleNode`` tagged with the module name."""

    def __init__(self, parent=None):
        self.moduleName = type(self).__name__[:-len("Logic")]

    def getParameterNode(self):
        scene = sys.modules["slicer"].mrmlScene
        node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
            node.UnRegister(None)
            node.SetAttribute("ModuleName", self.moduleName)
            node.SetName(scene.GenerateUniqueName(self.moduleName))
            node.SetSingletonTag(self.moduleName)
            node = scene.AddNode(node)
        return node


class Harness:
    """A real scene with the logic Slicer's readers use, installed as ``slicer`` for MedFuseLib."""

    def __init__(self, monkeypatch, slicer_home: Path, module_path: Path):
        real = real_slicer()
        import vtk

        self.real, self.monkeypatch = real, monkeypatch
        module = types.ModuleType("slicer")
        module.__path__ = []
        module.__getattr__ = lambda name: getattr(real, name)
        module.app = types.SimpleNamespace(slicerHome=str(slicer_home))
        module.modules = types.SimpleNamespace(medfuse=types.SimpleNamespace(path=str(module_path)))
        module.dicomDatabase = None
        self.slicer = module
        util = types.ModuleType("slicer.util")
        util.loadVolume = self.loadVolume
        util.loadTransform = self.loadTransform
        util.setSliceViewerLayers = self.setSliceViewerLayers
        util.getNodesByClass = self.getNodesByClass
        util.VTKObservationMixin = fake_slicer.FakeVTKObservationMixin
        module.util = util
        slm = types.ModuleType("slicer.ScriptedLoadableModule")
        slm.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
        pnw = types.ModuleType("slicer.parameterNodeWrapper")
        pnw.parameterNodeWrapper, pnw.Choice, pnw.WithinRange = (parameterNodeWrapper, fake_slicer.Choice,
                                                                  fake_slicer.WithinRange)
        qt = types.ModuleType("qt")
        qt.QTimer = fake_slicer.FakeQTimer
        for name, mod in {"slicer": module, "slicer.util": util, "slicer.ScriptedLoadableModule": slm,
                          "slicer.parameterNodeWrapper": pnw, "qt": qt, "vtk": vtk}.items():
            monkeypatch.setitem(sys.modules, name, mod)
        for name in ("MedFuseLib.logic", "MedFuseLib.widget", "MedFuseLib.parameter_node"):
            monkeypatch.setitem(sys.modules, name, None)
            del sys.modules[name]
        self.newScene()

    def newScene(self):
        """A fresh scene (as after File > Close scene) with the colour nodes Slicer's Colors module adds."""
        real = self.real
        scene = real.vtkMRMLScene()
        self.colors = real.vtkMRMLColorLogic()
        self.colors.SetMRMLScene(scene)
        self.appLogic = real.vtkSlicerApplicationLogic()
        self.appLogic.SetMRMLScene(scene)
        self.appLogic.SetModuleLogic("Colors", self.colors)
        self.volumes = real.vtkSlicerVolumesLogic()
        self.volumes.SetMRMLApplicationLogic(self.appLogic)
        self.volumes.SetMRMLScene(scene)
        for view in ("Red", "Yellow", "Green"):
            composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
            composite.SetLayoutName(view)
        self.slicer.mrmlScene = scene
        return scene

    # -- slicer.util, as Slicer's readers do it
    def loadVolume(self, path, properties=None):
        properties = properties or {}
        name = properties.get("name", Path(path).name.split(".")[0])
        node = self.volumes.AddArchetypeVolume(str(path), name, 0)
        if node is None:
            raise RuntimeError(f"Failed to load node from file: {path}")
        return node

    def loadTransform(self, path):
        node = self.real.vtkSlicerTransformLogic().AddTransform(str(path), self.slicer.mrmlScene)
        if node is None:
            raise RuntimeError(f"Failed to load node from file: {path}")
        return node

    def getNodesByClass(self, cls):
        scene = self.slicer.mrmlScene
        return [scene.GetNthNodeByClass(i, cls) for i in range(scene.GetNumberOfNodesByClass(cls))]

    def setSliceViewerLayers(self, background="keep-current", foreground="keep-current", label="keep-current",
                             foregroundOpacity=None, labelOpacity=None, fit=False, rotateToVolumePlane=False):
        for composite in self.getNodesByClass("vtkMRMLSliceCompositeNode"):
            if background != "keep-current":
                composite.SetBackgroundVolumeID(background.GetID() if background is not None else None)
            if foreground != "keep-current":
                composite.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
            if foregroundOpacity is not None:
                composite.SetForegroundOpacity(foregroundOpacity)
