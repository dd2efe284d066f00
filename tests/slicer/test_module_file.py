"""MedFuse.py and the self-test file as Slicer runs them, without Slicer (issue 27, items 2 and 3).

Slicer's behaviour reproduced here, from its sources (Base/Python/slicer/testing.py, ScriptedLoadableModule.py,
packaging/installer.py of Slicer 5.12+):

* the ctest (``slicer_add_python_unittest``) runs ``slicer.testing.runUnitTest([...], "MedFuseTest")``:
  ``unittest.TestLoader().loadTestsFromName`` on the module, failing when the result is not successful;
* "Reload and Test" calls ``MedFuse.runTest`` -> ``MedFuseTest().runTest()`` inside ``tryWithErrorDisplay``: any
  exception, a ``SkipTest`` included, is an error popup; its reload re-runs ``MedFuse.py`` only;
* Slicer 5.12+'s ``pip_install`` asks itself unless ``interactive=False`` and shows its own error dialog before
  raising ``CalledProcessError``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
import unittest
from pathlib import Path

import pytest

import fake_slicer

MODULE = Path(__file__).resolve().parents[2] / "slicer_extension" / "MedFuse"
SELF_TEST = MODULE / "Testing" / "Python" / "MedFuseTest.py"


class ScriptedLoadableModuleTest(unittest.TestCase):
    """Slicer's base: a TestCase with ``runTest`` (so a loader that finds the class runs it) and delayDisplay."""

    shown = []

    def delayDisplay(self, message, msec=None):
        ScriptedLoadableModuleTest.shown.append(message)

    def runTest(self):
        pass


class ScriptedLoadableModuleWidget:
    reloads = []

    def onReload(self):
        ScriptedLoadableModuleWidget.reloads.append(sorted(n for n in sys.modules if n.startswith("MedFuseLib")))


@pytest.fixture()
def slicer(tmp_path, monkeypatch):
    s = fake_slicer.install(monkeypatch, tmp_path, tmp_path / "MedFuse.py")
    slm = sys.modules["slicer.ScriptedLoadableModule"]
    slm.ScriptedLoadableModule = type("ScriptedLoadableModule", (), {"__init__": lambda self, parent: None})
    slm.ScriptedLoadableModuleTest = ScriptedLoadableModuleTest
    slm.ScriptedLoadableModuleWidget = ScriptedLoadableModuleWidget
    s.ScriptedLoadableModule = slm  # "import slicer.ScriptedLoadableModule" binds the attribute
    ScriptedLoadableModuleTest.shown = []
    ScriptedLoadableModuleWidget.reloads = []
    monkeypatch.setitem(sys.modules, "medfuse", None)  # medfuse not installed in Slicer's Python
    return s


def _load(path, name, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_ctest_without_medfuse_skips_with_the_reason(slicer, monkeypatch):
    """What runUnitTest does: the module's tests through loadTestsFromName; one test, skipped, successful."""
    monkeypatch.syspath_prepend(str(SELF_TEST.parent))
    monkeypatch.delitem(sys.modules, "MedFuseTest", raising=False)
    suite = unittest.TestLoader().loadTestsFromName("MedFuseTest")
    result = unittest.TextTestRunner(stream=open("/dev/null", "w")).run(suite)
    monkeypatch.delitem(sys.modules, "MedFuseTest", raising=False)
    assert result.wasSuccessful() and result.testsRun == 1  # not the imported base as an empty second test
    assert len(result.skipped) == 1 and "medfuse is not installed in Slicer's Python" in result.skipped[0][1]


def test_reload_and_test_without_medfuse_shows_the_reason_without_an_error(slicer, monkeypatch):
    module = _load(MODULE / "MedFuse.py", "MedFuse", monkeypatch)
    module.MedFuseTest().runTest()  # raises nothing: tryWithErrorDisplay would show any exception as an error
    assert len(ScriptedLoadableModuleTest.shown) == 1
    assert ScriptedLoadableModuleTest.shown[0].startswith("MedFuse self-test skipped: medfuse is not installed")


def test_the_self_test_file_called_directly_without_medfuse_says_why(slicer, monkeypatch):
    module = _load(SELF_TEST, "MedFuseSelfTestDirect", monkeypatch)
    module.MedFuseTest().runTest()
    assert ScriptedLoadableModuleTest.shown[-1].startswith("MedFuse self-test skipped: medfuse is not installed")


def test_reload_reimports_medfuselib(slicer, monkeypatch):
    module = _load(MODULE / "MedFuse.py", "MedFuse", monkeypatch)
    for name in [n for n in sys.modules if n.startswith("MedFuseLib")]:  # restored after the test
        monkeypatch.setitem(sys.modules, name, sys.modules[name])
    assert "MedFuseLib.logic" in sys.modules
    widget = module.MedFuseWidget.__new__(module.MedFuseWidget)
    widget.onReload()
    assert ScriptedLoadableModuleWidget.reloads == [[]]  # Slicer's reload then imports the library afresh


# -- Slicer 5.12+'s pip_install ---------------------------------------------------------------------------
@pytest.fixture()
def slicer_512(slicer, monkeypatch):
    """slicer.packaging present; pip_install(args, interactive=True) as in 5.12+, failing after its own dialog."""
    monkeypatch.setitem(sys.modules, "slicer.packaging", types.ModuleType("slicer.packaging"))
    calls = []

    def pip_install(args, *, requirements=None, interactive=True):
        calls.append((list(args), interactive))
        if args[0].startswith("medfuse"):
            slicer.util.error_displayed.append("Packages cannot be installed.")  # Slicer's own dialog
            raise subprocess.CalledProcessError(1, ["uv", "pip", "install", *args])

    monkeypatch.setattr(slicer.util, "pip_install", pip_install)
    return calls


def test_failed_pip_install_on_slicer_512_is_shown_once(slicer, slicer_512, monkeypatch):
    import MedFuseLib.logic as logic_module
    from MedFuseLib.logic import MedFuseLogic

    monkeypatch.setattr(logic_module, "installed_distributions",
                        lambda: {"numpy": "2.2.6", "scipy": "1.15.3", "SimpleITK": "2.5.0", "torch": "2.5.1"})
    lines = []
    assert MedFuseLogic().ensureMedfuse(log=lines.append) is False
    assert slicer.util.error_displayed == ["Packages cannot be installed."]  # Slicer's dialog, not a second one
    assert lines[-1].startswith("installing medfuse failed: pip install failed (exit code 1)")
    assert slicer_512 and all(interactive is False for _, interactive in slicer_512)  # asked once, by the module
    assert [c[0] for c in slicer.util.calls] == ["confirmOkCancelDisplay"]


def test_failed_pip_install_before_512_is_shown_by_the_module(slicer, monkeypatch):
    """Slicer 5.10's pip_install shows nothing: the module's tryWithErrorDisplay shows the one dialog."""
    import MedFuseLib.logic as logic_module
    from MedFuseLib.logic import MedFuseLogic

    def pip_install(args):
        raise subprocess.CalledProcessError(1, ["pip", "install", *args])

    monkeypatch.setattr(slicer.util, "pip_install", pip_install)
    monkeypatch.setattr(logic_module, "installed_distributions",
                        lambda: {"numpy": "2.2.6", "scipy": "1.15.3", "SimpleITK": "2.5.0", "torch": "2.5.1"})
    assert MedFuseLogic().ensureMedfuse(log=lambda line: None) is False
    assert len(slicer.util.error_displayed) == 1 and "Installing medfuse failed." in slicer.util.error_displayed[0]
