"""MedFuseLogic and the panel's controller, driven without Slicer: a fake Slicer API (fake_slicer.py) and a
fake medfuse behind a fake PythonSlicer in a real child process.

What this proves: the module's own control flow, i.e. the volumes are exported by storage nodes into a
temporary folder that is gone afterwards (success, error, cancel), the child is started through the
PythonSlicer found in Slicer's home, the results are loaded, the transform node is in the scene with the
moving volume under it (never chained), the fused volume is the background and the PET/SPECT quantitative
volume the coloured foreground at the parameter node's opacity, Apply/Cancel/progress/log in the panel,
the modality from detection and kept when reopened, and the install flow (asks first, PyTorch through
PyTorchUtils, pinned medfuse, restart notice). What it cannot prove: that Slicer's real API behaves as the
fake does (Testing/Python/MedFuseTest.py, inside Slicer, does).
"""

from __future__ import annotations

import stat
import sys
import time
import types
from pathlib import Path

import pytest

import fake_slicer

pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="the fake PythonSlicer is a POSIX shell script")

FAKE_MEDFUSE = r'''
import sys, time
args = sys.argv[1:]
assert args[:2] == ["-m", "medfuse.cli"], args
args = args[2:]
def arg(name, default=None):
    return args[args.index(name) + 1] if name in args else default
out, moving = arg("--out"), arg("--moving-modality")
method = arg("--method", "default")
print("DEBUG medfuse.registration.core: r/m: initialization: header", file=sys.stderr)
for path in (arg("--reference"), arg("--moving")):  # written by the storage nodes before the child starts
    assert open(path).read().startswith("volume "), path
if method == "mean":
    print("medfuse fuse: error: moving.nrrd: no brain found; check the scan", file=sys.stderr)
    sys.exit(2)
if method == "max":
    time.sleep(60)
print("PROGRESS 60 fusing")
open(out, "w").write("rgb" if moving in ("PT", "NM") else "grey")
quantitative = out[:-len(".nrrd")] + "_moving.nrrd"
open(quantitative, "w").write("quantitative")
print("fused: " + out)
print("quantitative: " + quantitative)
if "--register" in args:
    open(arg("--transform"), "w").write("#Insight Transform File V1.0")
    print("transform: " + arg("--transform"))
'''


@pytest.fixture()
def slicer(tmp_path, monkeypatch):
    home = tmp_path / "Slicer"
    (home / "bin").mkdir(parents=True)
    script = tmp_path / "fake_medfuse.py"
    script.write_text(FAKE_MEDFUSE)
    shim = home / "bin" / "PythonSlicer"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None)  # not on PATH: found in <Slicer home>/bin
    module_dir = tmp_path / "ext" / "MedFuse"  # not a medfuse checkout: medfuse==<version> is what pip gets
    module_dir.mkdir(parents=True)
    return fake_slicer.install(monkeypatch, home, module_dir / "MedFuse.py")


@pytest.fixture()
def logic(slicer):
    from MedFuseLib.logic import MedFuseLogic

    return MedFuseLogic()


def _volume(slicer, name, **attributes):
    node = fake_slicer.FakeVolumeNode(slicer.mrmlScene, name)
    for key, value in attributes.items():
        node.SetAttribute(key, value)
    return node


def _parameters(slicer, logic, moving="PT", **kw):
    p = logic.getParameterNode()
    p.referenceVolume = _volume(slicer, "T1 MPRAGE")
    p.movingVolume = _volume(slicer, "FDG PET")
    p.referenceModality, p.movingModality = "MR", moving
    for key, value in kw.items():
        setattr(p, key, value)
    return p


def _temp_folders(slicer):
    return {Path(path).parent for _, path, _ in slicer.mrmlScene.written}


# -- the whole run ---------------------------------------------------------------------------------------
def test_pet_run_exports_loads_shows_and_removes_the_temporary_folder(slicer, logic, tmp_path):
    p = _parameters(slicer, logic)
    log = []
    nodes = logic.process(p, timeout=60, onLog=log.append)

    # exported by Slicer storage nodes (uncompressed NRRD) into one medfuse-slicer-* folder, now removed
    written = slicer.mrmlScene.written
    assert [(name, Path(path).name, compressed) for name, path, compressed in written] == [
        ("T1 MPRAGE", "reference.nrrd", False), ("FDG PET", "moving.nrrd", False)]
    (folder,) = _temp_folders(slicer)
    assert folder.name.startswith("medfuse-slicer-") and not folder.exists()
    assert slicer.mrmlScene.unregistered == 2  # CreateNodeByClass's reference released
    # the child ran through <Slicer home>/bin/PythonSlicer, with the log fed line by line
    assert log[0] == "DEBUG medfuse.registration.core: r/m: initialization: header" and "PROGRESS 60 fusing" in log

    fused, quantitative, transform = nodes["fused"], nodes["quantitative"], nodes["transform"]
    assert fused.GetName() == "MedFuse fused (default)" and fused.IsA("vtkMRMLVectorVolumeNode")  # RGB for PET
    assert quantitative.GetName() == "MedFuse moving on reference grid" and quantitative.source_text == "quantitative"
    load_options = [c[2] for c in slicer.util.calls if c[0] == "loadVolume"]
    assert all(o["show"] is False for o in load_options)
    # the files were in the removed folder: the nodes must not point there (a scene save writes new files)
    assert all(n.GetStorageNode().GetFileName() == "" for n in nodes.values())

    # the registration transform is a node in the scene, the moving volume under it (Transforms module)
    assert transform.GetName() == "MedFuse moving to reference"
    assert slicer.mrmlScene.GetNodeByID(transform.GetID()) is transform
    assert p.movingVolume.GetTransformNodeID() == transform.GetID() and transform.GetTransformNodeID() is None
    # remembered in the parameter node (saved with the scene)
    assert (p.fusedVolume, p.quantitativeVolume, p.outputTransform) == (fused, quantitative, transform)

    # slice views: fused background, PET in Slicer's PET colour map as foreground at the slider's opacity
    assert quantitative.GetDisplayNode().color_node_id == "vtkMRMLPETProceduralColorNodePET-Heat"
    assert quantitative.GetDisplayNode().auto_window_level
    assert ("setSliceViewerLayers", fused, quantitative, 0.5, True) in slicer.util.calls
    for composite in slicer.mrmlScene.composites:
        assert (composite.background, composite.foreground, composite.foreground_opacity) == (
            fused.GetID(), quantitative.GetID(), 0.5)
    logic.setOverlayOpacity(0.8)  # the opacity slider
    assert {c.foreground_opacity for c in slicer.mrmlScene.composites} == {0.8}


def test_spect_colour_map_and_ct_without_foreground(slicer, logic):
    nodes = logic.process(_parameters(slicer, logic, moving="NM", overlayOpacity=0.3), timeout=60)
    assert nodes["quantitative"].GetDisplayNode().color_node_id == "vtkMRMLPETProceduralColorNodePET-Rainbow2"
    assert {c.foreground_opacity for c in slicer.mrmlScene.composites} == {0.3}
    nodes = logic.process(_parameters(slicer, logic, moving="CT", window="bone"), timeout=60)
    assert not nodes["fused"].IsA("vtkMRMLVectorVolumeNode") and nodes["quantitative"].GetDisplayNode() is None
    for composite in slicer.mrmlScene.composites:  # CT: fused volume alone, no colour overlay
        assert (composite.background, composite.foreground, composite.foreground_opacity) == (
            nodes["fused"].GetID(), None, 0.0)


def test_register_off_makes_no_transform(slicer, logic):
    p = _parameters(slicer, logic, register=False)
    nodes = logic.process(p, timeout=60)
    assert "transform" not in nodes and p.outputTransform is None and p.movingVolume.GetTransformNodeID() is None
    assert not any(c[0] == "loadTransform" for c in slicer.util.calls)


def test_transforms_follow_the_reference_and_are_never_chained(slicer, logic):
    p = _parameters(slicer, logic)
    world = fake_slicer.FakeTransformNode(slicer.mrmlScene, "patient to world")
    p.referenceVolume.SetAndObserveTransformNodeID(world.GetID())
    log = []
    first = logic.process(p, timeout=60, onLog=log.append)
    assert any("results are placed under the same transform" in line for line in log)
    # results and the registration transform live in the reference's coordinates: under its transform
    assert {n.GetTransformNodeID() for n in first.values()} == {world.GetID()}
    assert p.movingVolume.GetTransformNodeID() == first["transform"].GetID()
    # a second run: the moving volume is exported as stored, so its new transform replaces the first one
    second = logic.process(p, timeout=60, onLog=log.append)
    assert any("parent transform is replaced by the registration transform" in line for line in log)
    assert p.movingVolume.GetTransformNodeID() == second["transform"].GetID()
    assert second["transform"].GetTransformNodeID() == world.GetID()  # not first["transform"]: no chain


# -- in the background: progress, error, cancel ------------------------------------------------------------
def _run_timer_until(done, timeout=30.0):
    (timer,) = [t for t in fake_slicer.FakeQTimer.instances if t.active]
    assert timer.interval == 200
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the run did not finish"
        timer.fire()
        time.sleep(0.02)
    assert not timer.active


def test_start_runs_in_the_background_and_reports(slicer, logic):
    p = _parameters(slicer, logic)
    finished, progress = [], []
    job = logic.start(p, onFinished=lambda nodes, error: finished.append((nodes, error)),
                      onProgress=lambda percent, step: progress.append(percent))
    assert job.running and logic.job is job  # start() returned while the child runs
    with pytest.raises(RuntimeError, match="already running"):
        logic.start(p, onFinished=lambda *a: None)
    _run_timer_until(lambda: finished)
    ((nodes, error),) = finished
    assert error is None and set(nodes) == {"fused", "quantitative", "transform"}
    # the start, the child's one PROGRESS line and the end: its log lines move nothing
    assert progress == [2, 60, 100]
    assert not job.workdir.exists() and logic.job is None


def test_start_error_is_medfuse_one_line_and_folder_removed(slicer, logic):
    finished = []
    job = logic.start(_parameters(slicer, logic, method="mean"), onFinished=lambda n, e: finished.append((n, e)))
    _run_timer_until(lambda: finished)
    assert finished == [(None, "moving.nrrd: no brain found; check the scan")]
    assert not job.workdir.exists()
    assert not any(c[0] == "loadVolume" for c in slicer.util.calls)


def test_cancel_ends_the_child_and_removes_the_folder(slicer, logic):
    finished = []
    job = logic.start(_parameters(slicer, logic, method="max"), onFinished=lambda n, e: finished.append((n, e)))
    time.sleep(0.2)
    logic.cancel()
    _run_timer_until(lambda: finished, timeout=15)
    assert finished == [(None, "cancelled")] and job.returncode != 0
    assert not job.workdir.exists() and logic.job is None


def test_prepare_refuses_and_cleans_up(slicer, logic, monkeypatch):
    p = _parameters(slicer, logic)
    p.movingVolume = p.referenceVolume
    with pytest.raises(ValueError, match="same node"):
        logic.prepare(p)
    p = _parameters(slicer, logic)
    p.movingModality = "unknown"
    with pytest.raises(ValueError, match="choose the modality of the moving volume"):
        logic.prepare(p)
    slicer.mrmlScene.fail_writes = True
    import tempfile

    made = []
    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda **kw: made.append(real_mkdtemp(**kw)) or made[-1])
    with pytest.raises(RuntimeError, match="could not write T1 MPRAGE"):
        logic.prepare(_parameters(slicer, logic))
    assert len(made) == 1 and not Path(made[0]).exists()  # the job's folder was removed on the failed export


def test_modality_detection_through_the_logic(slicer, logic):
    db = types.SimpleNamespace(instanceValue=lambda uid, tag: {"1.2": "PT"}.get(uid, ""))
    slicer.dicomDatabase = db
    assert logic.detectModality(_volume(slicer, "3: Series", **{"DICOM.instanceUIDs": "1.2"})) == ("PT", "DICOM")
    assert logic.detectModality(_volume(slicer, "Volume")) == (None, "")


# -- install -------------------------------------------------------------------------------------------
SLICER_510 = {"numpy": "2.2.6", "scipy": "1.15.3", "SimpleITK": "2.5.0", "pydicom": "3.0.2", "Pillow": "11.2.1"}


def _fake_pytorch(monkeypatch, installed):
    calls = []

    class PyTorchUtilsLogic:
        def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None,
                         torchvisionVersionRequirement=None):
            calls.append((askConfirmation, torchVersionRequirement))
            installed["torch"] = "2.5.1"
            return types.SimpleNamespace(__version__="2.5.1")

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic))
    return calls


def test_ensure_medfuse_asks_then_torch_then_pinned_medfuse(slicer, logic, monkeypatch):
    import MedFuseLib.install as install
    import MedFuseLib.logic as logic_module

    installed = dict(SLICER_510)
    monkeypatch.setattr(logic_module, "installed_distributions", lambda: dict(installed))
    monkeypatch.setattr(install, "installed_distributions", lambda: dict(installed))
    torch_calls = _fake_pytorch(monkeypatch, installed)
    assert logic.ensureMedfuse() is True
    names = slicer.util.names()
    assert names[0] == "confirmOkCancelDisplay" and "medfuse 0.1.0" in slicer.util.calls[0][1]  # asked first
    assert torch_calls == [(False, ">=2.2")]  # through the PyTorch extension, after the user's one yes
    pips = [c[1] for c in slicer.util.calls if c[0] == "pip_install"]
    assert pips[-1][:2] == [f"medfuse=={install.MEDFUSE_VERSION}", "--no-deps"]
    for args in pips:  # never Slicer's own packages, always under the constraints file
        assert "-c" in args and not any(a.lower().startswith(("numpy", "simpleitk", "scipy", "torch")) for a in args)
    assert "confirmYesNoDisplay" not in names  # nothing Slicer had imported was replaced: no restart


def test_ensure_medfuse_declined_installs_nothing(slicer, logic, monkeypatch):
    import MedFuseLib.logic as logic_module

    monkeypatch.setattr(logic_module, "installed_distributions", lambda: dict(SLICER_510))
    torch_calls = _fake_pytorch(monkeypatch, {})
    slicer.util.confirm_answer = False
    assert logic.ensureMedfuse(log=lambda line: None) is False
    assert slicer.util.names() == ["confirmOkCancelDisplay"] and torch_calls == []


def test_ensure_medfuse_without_the_pytorch_extension_says_so(slicer, logic, monkeypatch):
    import MedFuseLib.logic as logic_module

    monkeypatch.setattr(logic_module, "installed_distributions", lambda: dict(SLICER_510))
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)  # import fails
    assert logic.ensureMedfuse() is False
    assert "install 'PyTorch' from the Extensions Manager" in slicer.util.error_displayed[0]
    assert not any(c[0] == "pip_install" for c in slicer.util.calls)


def test_ensure_medfuse_restart_notice(slicer, logic, monkeypatch):
    import MedFuseLib.logic as logic_module

    installed = dict(SLICER_510, torch="2.5.1", medfuse="0.0.9", nibabel="4.0.0")
    monkeypatch.setattr(logic_module, "installed_distributions", lambda: dict(installed))
    monkeypatch.setitem(sys.modules, "nibabel", types.ModuleType("nibabel"))  # already imported in this session
    slicer.util.yes_no_answer = True
    assert logic.ensureMedfuse() is True
    assert slicer.util.names()[-2:] == ["confirmYesNoDisplay", "restart"]


def test_ensure_medfuse_nothing_to_do(slicer, logic, monkeypatch):
    import MedFuseLib.install as install
    import MedFuseLib.logic as logic_module

    everything = dict(SLICER_510, torch="2.5.1", medfuse=install.MEDFUSE_VERSION, monai="1.4.0", nibabel="5.3.0",
                      tqdm="4.67.0", nilearn="0.11.0",
                      **{"scikit-image": "0.25.0", "PyWavelets": "1.8.0", "edt": "3.1.2"})
    monkeypatch.setattr(logic_module, "installed_distributions", lambda: dict(everything))
    assert logic.ensureMedfuse() is True and slicer.util.calls == []  # nothing asked, nothing installed


# -- the panel -----------------------------------------------------------------------------------------------
class FakeWidget:
    def __init__(self):
        self.enabled, self.text, self.toolTip, self.value, self.lines = True, "", "", 0, []
        self.signals = {}

    def connect(self, signal, slot):
        self.signals[signal] = slot

    def setValue(self, value):
        self.value = value

    def appendPlainText(self, text):
        self.lines.append(text)

    def clear(self):
        self.lines = []


@pytest.fixture()
def panel(slicer, logic, monkeypatch):
    from MedFuseLib.widget import WIDGET_NAMES, MedFuseWidgetController

    ui = types.SimpleNamespace(**{name: FakeWidget() for name in WIDGET_NAMES})
    monkeypatch.setattr(logic, "ensureMedfuse", lambda log=None: True)
    return MedFuseWidgetController(ui, logic), ui


def test_panel_modality_from_the_volume_and_kept_when_reopened(slicer, logic, panel):
    controller, ui = panel
    p = logic.getParameterNode()
    controller.setParameterNode(p)
    assert ui.applyButton.enabled is False and "choose a reference and a moving volume" in ui.applyButton.toolTip
    pet = _volume(slicer, "FDG PET")
    p.movingVolume = pet
    controller.onParameterNodeModified()  # what the parameter node's Modified event calls
    assert p.movingModality == "PT" and ui.movingModalitySourceLabel.text == "PET, from the volume name"
    anonymous = _volume(slicer, "Volume")
    p.referenceVolume = anonymous
    controller.onParameterNodeModified()
    assert p.referenceModality == "unknown" and "choose" in ui.referenceModalitySourceLabel.text  # never a default
    p.referenceModality = "MR"  # the user chooses
    controller.onParameterNodeModified()
    assert ui.applyButton.enabled is True and ui.windowComboBox.enabled is False and ui.colormapComboBox.enabled
    # the scene is saved and reopened: the panel shows the same nodes again; the choice is kept
    controller.setParameterNode(None)
    controller.setParameterNode(p)
    assert p.referenceModality == "MR" and ui.referenceModalitySourceLabel.text == "MRI, as chosen"


def test_panel_apply_progress_log_and_cancel(slicer, logic, panel):
    controller, ui = panel
    p = _parameters(slicer, logic, method="max")
    controller.setParameterNode(p)
    assert ui.applyButton.enabled and not ui.cancelButton.enabled
    ui.applyButton.signals["clicked(bool)"](False)
    assert not ui.applyButton.enabled and ui.cancelButton.enabled
    assert ui.logTextEdit.lines[0].startswith("medfuse running in a separate process: ")
    assert ui.progressBar.value == 2 and ui.statusLabel.text == "starting medfuse (2%)"
    ui.cancelButton.signals["clicked(bool)"](False)
    _run_timer_until(lambda: not ui.cancelButton.enabled, timeout=15)
    assert ui.statusLabel.text == "medfuse: cancelled" and ui.progressBar.value == 0 and ui.applyButton.enabled


def test_panel_apply_success(slicer, logic, panel):
    controller, ui = panel
    p = _parameters(slicer, logic)
    controller.setParameterNode(p)
    ui.applyButton.signals["clicked(bool)"](False)
    _run_timer_until(lambda: not ui.cancelButton.enabled)
    assert ui.progressBar.value == 100
    assert ui.statusLabel.text == "done: fused volume in the slice views, PET/SPECT overlay in colour"
    assert "PROGRESS 60 fusing" in ui.logTextEdit.lines and ui.logTextEdit.lines[-1].startswith("done: fused: ")


def test_panel_detects_the_modality_of_a_volume_already_in_the_parameter_node(slicer, logic, panel):
    """MedFuse.py picks the scene's first volume as reference before showing the panel: detected, not assumed."""
    controller, ui = panel
    p = logic.getParameterNode()
    p.referenceVolume = _volume(slicer, "sub-01_T1w")
    controller.setParameterNode(p)
    assert p.referenceModality == "MR" and ui.referenceModalitySourceLabel.text == "MRI, from the volume name"
    assert p.movingModality == "unknown"
