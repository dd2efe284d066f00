"""The panel keeps what the user picks: a stand-in for PythonQt's in-order slot calls and for the parameter-node
wrapper's GUI binding, both our own code written from their documented behaviour.

* PythonQt (Qt): the slots connected to one signal are called one after the other, in connection order.
* Slicer's ``parameterNodeWrapper.connectGui``: writes the stored values into the widgets bound by their
  ``SlicerParameterName`` property (read from ``MedFuse.ui``), connects one slot per widget that stores the
  widget's value in a modify block, and on every Modified event writes every stored value back into the widgets
  (ignoring the widgets' own signals while it does). Like ``vtkMRMLScriptedModuleNode.SetParameter`` and
  ``SetNodeReferenceID``, storing an unchanged value does not fire Modified.

The bug this guards (issue 27): the panel's own selector handler, connected before ``connectGui``, wrote the
detected modality while the node still held the previous volume; the Modified event wrote that volume back into
the selector, and the wrapper's slot then stored it: a first pick of another modality did not stick.
"""

from __future__ import annotations

import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import get_type_hints

import pytest

import fake_slicer

UI = Path(__file__).resolve().parents[2] / "slicer_extension" / "MedFuse" / "Resources" / "UI" / "MedFuse.ui"
MODIFIED = 33  # vtkCommand.ModifiedEvent


# -- PythonQt stand-in -------------------------------------------------------------------------------------
class QtWidget:
    """A widget whose signals call their slots in connection order (Qt's rule, which PythonQt keeps)."""

    SIGNAL = None  # the change signal the wrapper's connector listens to

    def __init__(self):
        self.enabled, self.text, self.toolTip, self.value, self.lines = True, "", "", None, []
        self._slots = {}

    def connect(self, signal, slot):
        self._slots.setdefault(signal, []).append(slot)

    def disconnect(self, signal, slot):
        self._slots[signal].remove(slot)

    def emit(self, signal, *args):
        for slot in list(self._slots.get(signal, [])):
            slot(*args)

    def read(self):
        return self.value

    def write(self, value):
        """Set the widget's value; like Qt's setters, a change emits the change signal."""
        if value is not self.value and value != self.value:
            self.value = value
            if self.SIGNAL:
                self.emit(self.SIGNAL, value)

    # what the controller calls on the other widgets
    def setValue(self, value):
        self.value = value

    def appendPlainText(self, text):
        self.lines.append(text)

    def clear(self):
        self.lines = []


class NodeComboBox(QtWidget):  # qMRMLNodeComboBox
    SIGNAL = "currentNodeChanged(vtkMRMLNode*)"

    def currentNode(self):
        return self.value

    def setCurrentNode(self, node):
        """What a user's pick in the drop-down does."""
        self.write(node)


class ComboBox(QtWidget):  # QComboBox (the wrapper's connector reads/writes currentText)
    SIGNAL = "currentIndexChanged(int)"


class CheckBox(QtWidget):  # QCheckBox
    SIGNAL = "toggled(bool)"


class SliderWidget(QtWidget):  # ctkSliderWidget
    SIGNAL = "valueChanged(double)"


WIDGET_CLASSES = {"qMRMLNodeComboBox": NodeComboBox, "QComboBox": ComboBox, "QCheckBox": CheckBox,
                  "ctkSliderWidget": SliderWidget}


def _ui_bindings():
    """widget name -> (class, bound parameter or None), from MedFuse.ui."""
    out = {}
    for w in ET.parse(UI).getroot().iter("widget"):
        bound = next((p.findtext("string") for p in w.findall("property") if p.get("name") == "SlicerParameterName"),
                     None)
        out[w.get("name")] = (w.get("class"), bound)
    return out


def make_ui():
    from MedFuseLib.widget import WIDGET_NAMES

    bindings = _ui_bindings()
    ui = types.SimpleNamespace()
    for name in set(WIDGET_NAMES) | {name for name, (_, bound) in bindings.items() if bound}:
        cls, bound = bindings[name]
        widget = WIDGET_CLASSES.get(cls, QtWidget)()
        widget.parameterName = bound
        setattr(ui, name, widget)
    return ui


# -- parameter-node wrapper stand-in ---------------------------------------------------------------------
def parameterNodeWrapper(cls):
    """Typed properties stored in the instance, Modified on a change only, and connectGui as described above."""
    hints = get_type_hints(cls, include_extras=True)
    defaults = {name: getattr(cls, name, None) for name in hints}

    def __init__(self, node=None):
        self.parameterNode = node
        self._values = dict(defaults)
        self._observers = {}
        self._nextTag = 0
        self._modifyDepth, self._pending = 0, False
        self._guis, self._updatingGui = {}, False

    # -- vtkObject-like events
    def AddObserver(self, event, callback, priority=0.0):
        self._nextTag += 1
        self._observers[self._nextTag] = (event, callback)
        return self._nextTag

    def RemoveObserver(self, tag):
        self._observers.pop(tag, None)

    def Modified(self):
        if self._modifyDepth:
            self._pending = True
            return
        for event, callback in list(self._observers.values()):
            if event == MODIFIED:
                callback(self, MODIFIED)

    def StartModify(self):
        self._modifyDepth += 1

    def EndModify(self):
        self._modifyDepth -= 1
        if not self._modifyDepth and self._pending:
            self._pending = False
            self.Modified()

    def _write(self, name, value):
        if value is self._values[name] or (value is not None and value == self._values[name]):
            return  # unchanged: no Modified, as SetParameter / SetNodeReferenceID
        self._values[name] = value
        self.Modified()

    # -- GUI binding
    def connectGui(self, ui):
        widgets = {w.parameterName: w for w in vars(ui).values() if getattr(w, "parameterName", None)}
        slots = {}
        for name, widget in widgets.items():
            widget.write(self._values[name])

            def slot(*args, name=name, widget=widget):
                self.StartModify()
                try:
                    if not self._updatingGui:
                        self._write(name, widget.read())
                finally:
                    self.EndModify()

            widget.connect(widget.SIGNAL, slot)
            slots[name] = (widget, slot)
        tag = len(self._guis) + 1
        self._guis[tag] = slots
        self.AddObserver(MODIFIED, lambda caller, event: self._updateGui())
        return tag

    def _updateGui(self):
        if self._updatingGui:
            return
        self._updatingGui = True
        try:
            for slots in self._guis.values():
                for name, (widget, _) in slots.items():
                    widget.write(self._values[name])
        finally:
            self._updatingGui = False

    def disconnectGui(self, tag):
        for widget, slot in self._guis.pop(tag, {}).values():
            widget.disconnect(widget.SIGNAL, slot)

    namespace = {k: v for k, v in vars(cls).items() if k not in hints and k not in ("__dict__", "__weakref__")}
    namespace.update(__init__=__init__, AddObserver=AddObserver, RemoveObserver=RemoveObserver, Modified=Modified,
                     StartModify=StartModify, EndModify=EndModify, _write=_write, connectGui=connectGui,
                     _updateGui=_updateGui, disconnectGui=disconnectGui)
    for name in hints:
        namespace[name] = property(lambda self, name=name: self._values[name],
                                   lambda self, value, name=name: self._write(name, value))
    return type(cls.__name__, (), namespace)


@pytest.fixture()
def slicer(tmp_path, monkeypatch):
    s = fake_slicer.install(monkeypatch, tmp_path, tmp_path / "MedFuse.py")
    monkeypatch.setattr(__import__("sys").modules["slicer.parameterNodeWrapper"], "parameterNodeWrapper",
                        parameterNodeWrapper)
    return s


@pytest.fixture()
def panel(slicer):
    from MedFuseLib.logic import MedFuseLogic
    from MedFuseLib.widget import MedFuseWidgetController

    logic = MedFuseLogic()
    ui = make_ui()
    controller = MedFuseWidgetController(ui, logic)
    p = logic.getParameterNode()
    controller.setParameterNode(p)
    return controller, ui, p


def _volume(slicer, name):
    return fake_slicer.FakeVolumeNode(slicer.mrmlScene, name)


def test_the_stand_in_reproduces_the_reported_revert(slicer):
    """A handler connected before connectGui that writes the modality on a pick loses the pick (the issue's report)."""
    from MedFuseLib.parameter_node import MedFuseParameterNode

    p = MedFuseParameterNode(None)
    ui = make_ui()
    ui.movingVolumeSelector.connect(NodeComboBox.SIGNAL, lambda node: setattr(p, "movingModality", "PT"))
    p.connectGui(ui)
    pet = _volume(slicer, "FDG PET")
    ui.movingVolumeSelector.setCurrentNode(pet)
    assert p.movingVolume is None and ui.movingVolumeSelector.currentNode() is None
    # a same-value write fires no Modified: the pick sticks (why a same-modality pick worked)
    ui.movingVolumeSelector.setCurrentNode(pet)
    assert p.movingVolume is pet


def test_first_pick_of_a_pet_as_moving_volume_sticks(slicer, panel):
    controller, ui, p = panel
    pet = _volume(slicer, "FDG PET")
    ui.movingVolumeSelector.setCurrentNode(pet)
    assert p.movingVolume is pet and ui.movingVolumeSelector.currentNode() is pet
    assert p.movingModality == "PT" and ui.movingModalityComboBox.value == "PT"
    assert ui.movingModalitySourceLabel.text == "PET, from the volume name"


def test_reference_switched_from_an_mri_to_a_ct_sticks(slicer, panel):
    controller, ui, p = panel
    mri, ct = _volume(slicer, "sub-01_T1w"), _volume(slicer, "CT head")
    ui.referenceVolumeSelector.setCurrentNode(mri)
    assert p.referenceVolume is mri and p.referenceModality == "MR"
    ui.referenceVolumeSelector.setCurrentNode(ct)
    assert p.referenceVolume is ct and ui.referenceVolumeSelector.currentNode() is ct
    assert p.referenceModality == "CT" and ui.referenceModalityComboBox.value == "CT"
    other_mri = _volume(slicer, "T2 MRI")  # same modality as stored before: no modality write at all
    ui.referenceVolumeSelector.setCurrentNode(mri)
    ui.referenceVolumeSelector.setCurrentNode(other_mri)
    assert p.referenceVolume is other_mri and p.referenceModality == "MR"


def test_apply_enabled_after_two_picks_and_a_chosen_modality_kept_when_reopened(slicer, panel):
    controller, ui, p = panel
    anonymous, spect = _volume(slicer, "Volume"), _volume(slicer, "Tc99m SPECT")
    ui.referenceVolumeSelector.setCurrentNode(anonymous)
    ui.movingVolumeSelector.setCurrentNode(spect)
    assert p.referenceModality == "unknown" and not ui.applyButton.enabled  # never a fixed default
    ui.referenceModalityComboBox.write("MR")  # the user chooses
    assert p.referenceModality == "MR" and p.movingModality == "NM" and ui.applyButton.enabled
    assert p.referenceVolume is anonymous and p.movingVolume is spect
    controller.setParameterNode(None)  # the scene is reopened: the same nodes, the choice kept
    controller.setParameterNode(p)
    assert p.referenceModality == "MR" and ui.referenceModalitySourceLabel.text == "MRI, as chosen"
    assert ui.referenceVolumeSelector.currentNode() is anonymous and ui.applyButton.enabled


def test_a_volume_set_from_python_is_detected(slicer, panel):
    """The panel follows the parameter node, not only the selector's signal (e.g. the console or the logic)."""
    controller, ui, p = panel
    ct = _volume(slicer, "CT head")
    p.movingVolume = ct
    assert p.movingModality == "CT" and ui.movingVolumeSelector.currentNode() is ct
    assert ui.windowComboBox.enabled and not ui.colormapComboBox.enabled
