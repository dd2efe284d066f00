"""Installing medfuse into Slicer's Python safely: what to install (no Slicer import) and doing it.

:func:`plan_install` decides, for a given environment (Python version, installed distributions),
what the module would install; :func:`install_dependencies` asks the user, then carries the plan
out with Slicer's ``pip_install`` and the PyTorch extension. The rules:

* medfuse is pinned to the module's version (:data:`MEDFUSE_VERSION`) and installed with
  ``--no-deps``: its requirements are handled one by one below, so pip never resolves the whole
  tree on its own;
* PyTorch comes from the PyTorch extension (``PyTorchUtils.PyTorchUtilsLogic().installTorch``),
  which picks the wheel for the computer's GPU/CPU, as SlicerTotalSegmentator does; never from
  PyPI through a dependency (that pulls a multi-GB CUDA build on Linux);
* packages Slicer ships (:data:`SLICER_PROVIDED`: numpy, SimpleITK, scipy, pydicom, ...) are never
  installed, upgraded or downgraded; every pip call gets a constraints file pinning them (and
  torch) to the installed versions, so pip fails instead of replacing them. If one is too old for
  medfuse the plan says so (blocking for the ones medfuse needs to fuse NRRD files);
* requirements already satisfied are skipped; only the missing ones are installed;
* medfuse needs Python >= 3.10: Slicer 5.10 or later (Python 3.12); Slicer 5.8 and older bundle
  Python 3.9 and are refused with that message.

After installing, Slicer needs a restart only when a package that was already imported in this
session changed (:attr:`InstallPlan.restart_needed`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

__all__ = [
    "PipInstallError",
    "slicer_pip_install",
    "MEDFUSE_VERSION",
    "MEDFUSE_REQUIREMENTS",
    "TORCH_REQUIREMENT",
    "SLICER_PROVIDED",
    "MIN_PYTHON",
    "SUPPORTED_SLICER",
    "InstallPlan",
    "plan_install",
    "installed_distributions",
    "medfuse_source",
    "install_dependencies",
]

#: the medfuse version this module drives (its command line and outputs); kept equal to pyproject's by tests
MEDFUSE_VERSION = "0.1.0"
#: medfuse's runtime requirements except torch (pyproject ``dependencies``; kept equal by tests)
MEDFUSE_REQUIREMENTS = (
    "numpy>=1.24",
    "scipy>=1.10",
    "edt>=2.3",
    "monai>=1.4",
    "nibabel>=5.0",
    "SimpleITK>=2.3",
    "pydicom>=3.0.2",
    "pillow>=10.0",
    "tqdm>=4.60",
    "nilearn>=0.10",
    "scikit-image>=0.21",
    "PyWavelets>=1.4",
)
#: installed through the PyTorch extension, never by pip here
TORCH_REQUIREMENT = "torch>=2.2"
#: distributions Slicer ships and other modules rely on: never installed or replaced by this module.
#: value: True when medfuse cannot fuse NRRD files without a suitable version (else only a warning:
#: pydicom is needed only to read DICOM folders, which the module never passes).
SLICER_PROVIDED: Dict[str, bool] = {
    "numpy": True,
    "simpleitk": True,
    "scipy": True,
    "pydicom": False,
    "pillow": False,
    "vtk": False,
    "requests": False,
    "pip": False,
    "setuptools": False,
    "packaging": False,
}
#: medfuse's requires-python
MIN_PYTHON = (3, 10)
#: what the README states; Slicer 5.10 is the first release bundling Python 3.12
SUPPORTED_SLICER = "3D Slicer 5.10 or later (Python 3.12)"


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@dataclass
class InstallPlan:
    """What :func:`install_dependencies` would do in one environment.

    Attributes:
        medfuse: the pip arguments that install medfuse itself (``[]`` when the right version is there).
        packages: requirements pip installs (each missing or too old, none Slicer-provided).
        torch: True when PyTorch must be installed through the PyTorch extension.
        constraints: ``name==version`` lines pip must respect (Slicer-provided packages and torch).
        problems: blocking reasons (nothing is installed when there is one).
        warnings: non-blocking remarks for the log.
        restart_needed: a package already imported in this Slicer session gets replaced.
    """

    medfuse: List[str] = field(default_factory=list)
    packages: List[str] = field(default_factory=list)
    torch: bool = False
    constraints: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    restart_needed: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not (self.medfuse or self.packages or self.torch)

    @property
    def ok(self) -> bool:
        return not self.problems

    def pip_commands(self, constraints_file: str = "constraints.txt") -> List[List[str]]:
        """The ``pip install`` argument lists, in order (torch is installed before them, by the extension)."""
        commands = []
        if self.packages:
            commands.append(list(self.packages) + ["-c", constraints_file])
        if self.medfuse:
            commands.append(list(self.medfuse) + ["-c", constraints_file])
        return commands

    def describe(self) -> str:
        """A short text for the confirmation dialog."""
        lines = []
        if self.torch:
            lines.append("PyTorch, through the PyTorch extension (the build for this computer)")
        if self.packages:
            lines.append("Python packages: " + ", ".join(self.packages))
        if self.medfuse:
            lines.append(f"medfuse {MEDFUSE_VERSION} (without changing numpy, SimpleITK or other packages Slicer ships)")
        return "\n".join(lines) if lines else "nothing: medfuse is installed"


def _version_ok(installed: str, requirement: str) -> bool:
    from packaging.requirements import Requirement
    from packaging.version import InvalidVersion, Version

    try:
        return Version(installed) in Requirement(requirement).specifier
    except InvalidVersion:
        return False


def plan_install(installed: Mapping[str, str], *, python_version: Sequence[int] = tuple(sys.version_info[:2]),
                 medfuse_spec: Optional[str] = None, imported: Sequence[str] = ()) -> InstallPlan:
    """What to install into an environment with these distributions.

    Args:
        installed: distribution name -> version (any spelling; see :func:`installed_distributions`).
        python_version: the interpreter's (major, minor).
        medfuse_spec: what pip installs for medfuse (default ``medfuse==MEDFUSE_VERSION``; a source folder
            from :func:`medfuse_source` for a checkout).
        imported: module names already imported in this session (``sys.modules``), for ``restart_needed``.
    """
    from packaging.requirements import Requirement

    have = {_canonical(k): v for k, v in installed.items()}
    plan = InstallPlan()
    if tuple(python_version) < MIN_PYTHON:
        plan.problems.append(
            f"medfuse needs Python {'.'.join(map(str, MIN_PYTHON))} or later; this Slicer bundles Python "
            f"{'.'.join(map(str, python_version))}. Use {SUPPORTED_SLICER}.")
        return plan
    for name, version in sorted(have.items()):
        if name in SLICER_PROVIDED or name == "torch":
            plan.constraints.append(f"{name}=={version}")
    torch_version = have.get("torch")
    if torch_version is None:
        plan.torch = True
    elif not _version_ok(torch_version, TORCH_REQUIREMENT):
        plan.problems.append(f"PyTorch {torch_version} is older than medfuse needs ({TORCH_REQUIREMENT}); update it "
                             "in the PyTorch Utils module (Utilities > PyTorch Utils), then restart Slicer")
    for requirement in MEDFUSE_REQUIREMENTS:
        name = _canonical(Requirement(requirement).name)
        version = have.get(name)
        if version is not None and _version_ok(version, requirement):
            continue
        if name in SLICER_PROVIDED:
            found = f"{version}" if version else "not installed"
            message = (f"Slicer's {Requirement(requirement).name} is {found}; medfuse needs {requirement}. The module "
                       "does not replace packages Slicer ships")
            if SLICER_PROVIDED[name]:
                plan.problems.append(f"{message}: use {SUPPORTED_SLICER}")
            else:  # not needed for the NRRD files the module passes
                plan.warnings.append(f"{message}; medfuse does not need it for the volumes this module passes")
            continue
        plan.packages.append(requirement)
        if version is not None and _import_name(name) in imported:
            plan.restart_needed = True
    spec = medfuse_spec or f"medfuse=={MEDFUSE_VERSION}"
    if have.get("medfuse") != MEDFUSE_VERSION:
        plan.medfuse = [spec, "--no-deps"]
        if "medfuse" in have and "medfuse" in imported:
            plan.restart_needed = True
    return plan


def _import_name(distribution: str) -> str:
    return {"scikit-image": "skimage", "pywavelets": "pywt", "pillow": "PIL", "simpleitk": "SimpleITK"}.get(
        distribution, distribution.replace("-", "_"))


def installed_distributions() -> Dict[str, str]:
    """Distribution name -> version of what this Python has installed."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[_canonical(name)] = dist.version
    return found


def medfuse_source(module_dir: os.PathLike) -> Optional[str]:
    """The medfuse source folder when the module runs from a medfuse checkout (``slicer_extension/MedFuse``), else None."""
    root = Path(module_dir).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "medfuse"' in pyproject.read_text(encoding="utf-8"):
        return str(root)
    return None


def install_dependencies(plan: InstallPlan, *, confirm: Callable[[str], bool], pip_install: Callable[[List[str]], None],
                         install_torch: Callable[[], bool], log: Callable[[str], None] = lambda text: None,
                         installed: Callable[[], Mapping[str, str]] = installed_distributions) -> bool:
    """Carry a plan out after asking; True when medfuse can run now.

    Args:
        confirm: shows the question, returns the user's answer (``slicer.util.confirmOkCancelDisplay``).
        pip_install: runs ``pip install`` with an argument list (``slicer.util.pip_install``).
        install_torch: installs PyTorch through the PyTorch extension; False when it could not.
        log: one line per step, for the module's log box.
        installed: the installed distributions, read again after PyTorch is installed so that pip keeps it.

    Raises:
        RuntimeError: the plan has a blocking problem (the message says what to do).
    """
    if plan.problems:
        raise RuntimeError(plan.problems[0])
    for warning in plan.warnings:
        log(warning)
    if plan.nothing_to_do:
        return True
    question = ("MedFuse runs the medfuse Python package, which is not installed in Slicer yet. Install now? "
                "This needs a network connection and may take several minutes.\n\n" + plan.describe())
    if not confirm(question):
        log("installation declined: MedFuse cannot run without medfuse")
        return False
    if plan.torch:
        log("installing PyTorch through the PyTorch extension...")
        if not install_torch():
            raise RuntimeError("PyTorch could not be installed: install the PyTorch extension (Extensions Manager), "
                               "restart Slicer and try again")
    with tempfile.TemporaryDirectory(prefix="medfuse-install-") as tmp:
        constraints = Path(tmp) / "constraints.txt"
        pins = list(plan.constraints)
        if plan.torch:  # the version the PyTorch extension chose: pip must not replace it
            torch_version = {_canonical(k): v for k, v in installed().items()}.get("torch")
            if torch_version:
                pins.append(f"torch=={torch_version}")
        constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
        for args in plan.pip_commands(str(constraints)):
            log("pip install " + " ".join(args))
            pip_install(args)
    log("medfuse installed" + ("; restart Slicer to use the updated packages" if plan.restart_needed else ""))
    return True


class PipInstallError(RuntimeError):
    """``pip_install`` failed on Slicer 5.12+, which reports the failure itself (its own error dialog for a
    dependency conflict, pip's output in the Python console): the module must not show a second dialog."""


def slicer_pip_install(pip_install: Callable[..., None], reports_itself: bool) -> Callable[[List[str]], None]:
    """``pip_install(args)`` as :func:`install_dependencies` calls it, over Slicer's ``slicer.util.pip_install``.

    ``reports_itself``: Slicer 5.12+ (``slicer.packaging``, pip through uv), whose ``pip_install`` asks the user
    again unless ``interactive=False`` (the module has asked already) and shows its own error dialog before it
    raises ``CalledProcessError``; that error is raised as :class:`PipInstallError`. Earlier Slicer versions
    neither ask nor show anything: ``pip_install`` is used as it is.
    """
    if not reports_itself:
        return pip_install

    def run(args: List[str]) -> None:
        try:
            pip_install(args, interactive=False)
        except subprocess.CalledProcessError as err:
            raise PipInstallError(f"pip install failed (exit code {err.returncode}); pip's output is in the "
                                  "Python console") from err

    return run
