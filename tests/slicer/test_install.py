"""Install logic: what the module would install for a given Slicer environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from MedFuseLib import install
from MedFuseLib.install import MEDFUSE_VERSION, InstallPlan, install_dependencies, medfuse_source, plan_install

ROOT = Path(__file__).resolve().parents[2]

#: roughly what Slicer 5.10 ships (Python 3.12): numpy, scipy, SimpleITK, pydicom, pillow, requests...
SLICER_510 = {"numpy": "2.2.6", "scipy": "1.15.3", "SimpleITK": "2.5.0", "pydicom": "3.0.2", "Pillow": "11.2.1",
              "requests": "2.32.3", "pip": "25.1", "setuptools": "80.9", "packaging": "25.0", "vtk": "9.4.2"}


def _pyproject():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_version_and_requirements_match_pyproject():
    project = _pyproject()
    assert MEDFUSE_VERSION == project["version"]
    # the required dependencies plus the networks extra (the module runs the networks), torch apart
    networks = project["optional-dependencies"]["networks"]
    deps = [d for d in project["dependencies"] + networks if not d.startswith("torch")]
    assert sorted(install.MEDFUSE_REQUIREMENTS) == sorted(deps)
    assert install.TORCH_REQUIREMENT in networks
    minimum = tuple(int(x) for x in re.findall(r"\d+", project["requires-python"]))
    assert install.MIN_PYTHON == minimum


def test_fresh_slicer_510():
    plan = plan_install(SLICER_510, python_version=(3, 12))
    assert plan.ok and plan.torch  # torch through the PyTorch extension
    assert plan.medfuse == [f"medfuse=={MEDFUSE_VERSION}", "--no-deps"]
    names = {re.split(r"[<>=]", p)[0].lower() for p in plan.packages}
    assert names == {"monai", "nibabel", "tqdm", "nilearn", "scikit-image", "pywavelets", "edt"}
    # nothing Slicer ships, and never torch from PyPI
    assert not names & {"numpy", "scipy", "simpleitk", "pydicom", "pillow", "torch"}
    assert {"numpy==2.2.6", "simpleitk==2.5.0", "scipy==1.15.3"} <= set(plan.constraints)
    assert plan.warnings == [] and not plan.restart_needed
    commands = plan.pip_commands("/tmp/c.txt")
    assert commands[-1] == [f"medfuse=={MEDFUSE_VERSION}", "--no-deps", "-c", "/tmp/c.txt"]
    assert all("-c" in c for c in commands)


def test_everything_installed_nothing_to_do():
    env = {**SLICER_510, "torch": "2.7.1+cu126", "medfuse": MEDFUSE_VERSION, "monai": "1.5.0", "nibabel": "5.3.2",
           "tqdm": "4.67.1", "nilearn": "0.11.1", "scikit-image": "0.25.2", "PyWavelets": "1.8.0",
           "edt": "3.1.2"}
    plan = plan_install(env, python_version=(3, 12))
    assert plan.nothing_to_do and plan.ok and "torch==2.7.1+cu126" in plan.constraints


def test_other_medfuse_version_is_replaced_pinned():
    env = {**SLICER_510, "torch": "2.7.1", "medfuse": "0.0.9"}
    plan = plan_install(env, python_version=(3, 12), imported=["medfuse"])
    assert plan.medfuse == [f"medfuse=={MEDFUSE_VERSION}", "--no-deps"] and plan.restart_needed


def test_source_checkout(tmp_path):
    assert medfuse_source(ROOT / "slicer_extension" / "MedFuse") == str(ROOT)
    assert medfuse_source(tmp_path / "a" / "MedFuse") is None
    plan = plan_install(SLICER_510, python_version=(3, 12), medfuse_spec=str(ROOT))
    assert plan.medfuse == [str(ROOT), "--no-deps"]


def test_slicer_58_python_39_refused():
    plan = plan_install(SLICER_510, python_version=(3, 9))
    assert not plan.ok and "Python 3.10 or later" in plan.problems[0] and "Slicer 5.10" in plan.problems[0]
    assert plan.nothing_to_do  # nothing installed at all


def test_old_slicer_numpy_is_not_replaced():
    plan = plan_install({**SLICER_510, "numpy": "1.21.0"}, python_version=(3, 12))
    assert not plan.ok and "numpy is 1.21.0" in plan.problems[0] and "numpy==1.21.0" in plan.constraints
    assert not any(p.startswith("numpy") for p in plan.packages)


def test_old_pydicom_is_only_a_warning():
    plan = plan_install({**SLICER_510, "pydicom": "2.4.4"}, python_version=(3, 12))
    assert plan.ok and "pydicom is 2.4.4" in plan.warnings[0]
    assert not any(p.startswith("pydicom") for p in plan.packages)


def test_missing_simpleitk_is_not_installed_by_the_module():
    env = {k: v for k, v in SLICER_510.items() if k != "SimpleITK"}
    plan = plan_install(env, python_version=(3, 12))
    assert not plan.ok and "SimpleITK is not installed" in plan.problems[0]


def test_old_torch_asks_for_pytorch_utils():
    plan = plan_install({**SLICER_510, "torch": "1.13.1"}, python_version=(3, 12))
    assert not plan.ok and "PyTorch Utils" in plan.problems[0] and not plan.torch


def test_imported_package_update_needs_restart():
    plan = plan_install({**SLICER_510, "nibabel": "3.2.0"}, python_version=(3, 12), imported=["nibabel"])
    assert "nibabel>=5.0" in plan.packages and plan.restart_needed


class Recorder:
    def __init__(self, answer=True, torch_ok=True):
        self.answer, self.torch_ok = answer, torch_ok
        self.questions, self.pip, self.torch, self.log, self.constraints = [], [], 0, [], []

    def confirm(self, text):
        self.questions.append(text)
        return self.answer

    def pip_install(self, args):
        self.pip.append(list(args))
        self.constraints.append(Path(args[args.index("-c") + 1]).read_text())

    def install_torch(self):
        self.torch += 1
        return self.torch_ok

    def run(self, plan, installed=lambda: {"torch": "2.8.0+cpu"}):
        return install_dependencies(plan, confirm=self.confirm, pip_install=self.pip_install,
                                    install_torch=self.install_torch, log=self.log.append, installed=installed)


def test_install_asks_first_then_torch_then_pip():
    r = Recorder()
    assert r.run(plan_install(SLICER_510, python_version=(3, 12)))
    assert len(r.questions) == 1 and "PyTorch" in r.questions[0] and f"medfuse {MEDFUSE_VERSION}" in r.questions[0]
    assert r.torch == 1 and len(r.pip) == 2 and r.pip[-1][0] == f"medfuse=={MEDFUSE_VERSION}"
    # pip keeps what Slicer ships and the torch the PyTorch extension chose
    assert "numpy==2.2.6" in r.constraints[0] and "torch==2.8.0+cpu" in r.constraints[0]


def test_install_declined_installs_nothing():
    r = Recorder(answer=False)
    assert not r.run(plan_install(SLICER_510, python_version=(3, 12)))
    assert r.torch == 0 and r.pip == [] and "declined" in r.log[-1]


def test_install_blocking_problem_raises_before_asking():
    r = Recorder()
    with pytest.raises(RuntimeError, match="Python 3.10"):
        r.run(plan_install(SLICER_510, python_version=(3, 9)))
    assert r.questions == [] and r.pip == []


def test_install_torch_failure_stops():
    r = Recorder(torch_ok=False)
    with pytest.raises(RuntimeError, match="PyTorch extension"):
        r.run(plan_install(SLICER_510, python_version=(3, 12)))
    assert r.pip == []


def test_nothing_to_do_asks_nothing():
    r = Recorder()
    assert r.run(InstallPlan())
    assert r.questions == [] and r.pip == []
