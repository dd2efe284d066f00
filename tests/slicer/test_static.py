"""Static checks of the extension: the .ui, CMake lists, icon, catalog entry, and Python versions.

Supported: 3D Slicer 5.10 and later, which bundle Python 3.12 (Slicer switched from 3.9.10 to
3.12.10 in June 2025, Slicer/Slicer#8456; 5.8 and older bundle 3.9). medfuse requires Python >= 3.10,
so Slicer 5.8 is refused by the install logic; the module's own files still compile on 3.9 so that
Slicer 5.8 loads the module and shows that message instead of a SyntaxError.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "slicer_extension"
MODULE = EXT / "MedFuse"
UI = MODULE / "Resources" / "UI" / "MedFuse.ui"
MODULE_PY = sorted(p for p in MODULE.rglob("*.py"))
#: (major, minor) of the Python that Slicer releases bundle: 5.8 (3.9, refused with a message) and 5.10+ (3.12)
SLICER_PYTHONS = {(3, 9): "Slicer 5.8", (3, 12): "Slicer 5.10"}


def _ui():
    return ET.parse(UI).getroot()


def _ui_widgets():
    return {w.get("name"): w for w in _ui().iter("widget")}


def _parameter_node_fields():
    tree = ast.parse((MODULE / "MedFuseLib" / "parameter_node.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MedFuseParameterNode")
    return [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)]


def _widget_names_from_code():
    """Every ``ui.<name>`` the Slicer-side code uses, and WIDGET_NAMES."""
    names = set()
    for path in (MODULE / "MedFuseLib" / "widget.py", MODULE / "MedFuse.py"):
        names |= set(re.findall(r"\bui\.([A-Za-z]\w*)", path.read_text()))
    tree = ast.parse((MODULE / "MedFuseLib" / "widget.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "WIDGET_NAMES" for t in node.targets):
            names |= set(ast.literal_eval(node.value))
    # getattr(self.ui, f"{role}ModalitySourceLabel")
    names |= {f"{role}ModalitySourceLabel" for role in ("reference", "moving")}
    return names


def test_ui_parses_as_designer_xml():
    root = _ui()
    assert root.tag == "ui" and root.get("version") == "4.0"
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == "MedFuse"
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    qt_builtin = {c for c in used if c.startswith("Q")}
    assert used - qt_builtin <= declared, "every Slicer/CTK widget class is declared in <customwidgets>"
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names)), "widget names are unique"


def test_ui_holds_every_widget_the_code_uses():
    widgets = _ui_widgets()
    missing = sorted(_widget_names_from_code() - set(widgets))
    assert not missing, f"used in the code but not in MedFuse.ui: {missing}"


def test_ui_binds_every_parameter_node_input():
    bound = {}
    for name, w in _ui_widgets().items():
        for prop in w.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                assert prop.get("stdset") == "0", f"{name}: dynamic property needs stdset=0"
                bound[prop.findtext("string")] = w.get("class")
    fields = _parameter_node_fields()
    results = {"fusedVolume", "quantitativeVolume", "outputTransform"}  # set by the logic, not shown as inputs
    assert set(bound) == set(fields) - results
    assert bound["referenceVolume"] == bound["movingVolume"] == "qMRMLNodeComboBox"
    assert bound["overlayOpacity"] == "ctkSliderWidget" and bound["register"] == "QCheckBox"
    assert bound["method"] == bound["movingModality"] == "QComboBox"


def test_ui_scene_connections():
    receivers = {c.findtext("receiver") for c in _ui().iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}
    combos = {n for n, w in _ui_widgets().items() if w.get("class") == "qMRMLNodeComboBox"}
    assert combos <= receivers


def _cmake_entries(text, variable):
    m = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    return [line.strip().replace("${MODULE_NAME}", "MedFuse") for line in m.group(1).splitlines() if line.strip()]


def test_every_file_is_listed_in_cmake():
    text = (MODULE / "CMakeLists.txt").read_text()
    scripts = set(_cmake_entries(text, "MODULE_PYTHON_SCRIPTS"))
    resources = set(_cmake_entries(text, "MODULE_PYTHON_RESOURCES"))
    on_disk_scripts = {p.relative_to(MODULE).as_posix() for p in MODULE_PY if "Testing" not in p.parts}
    on_disk_resources = {p.relative_to(MODULE).as_posix() for p in (MODULE / "Resources").rglob("*") if p.is_file()}
    assert scripts == on_disk_scripts
    assert resources == on_disk_resources
    assert "slicerMacroBuildScriptedModule" in text and "add_subdirectory(Testing)" in text
    testing = (MODULE / "Testing" / "Python" / "CMakeLists.txt").read_text()
    assert "MedFuseTest.py" in testing and (MODULE / "Testing" / "Python" / "MedFuseTest.py").is_file()


def test_extension_cmake_fields():
    text = (EXT / "CMakeLists.txt").read_text()
    fields = dict(re.findall(r'set\((EXTENSION_\w+)\s+"([^"]*)"\)', text))
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert fields.get(key), f"{key} is empty"
    assert fields["EXTENSION_ICONURL"].endswith("Resources/Icons/MedFuse.png")
    assert "PyTorch" in fields["EXTENSION_DEPENDS"]
    assert "add_subdirectory(MedFuse)" in text
    # the range of Slicer 5.10's extension template (Utilities/Templates/Extensions/Default/CMakeLists.txt)
    assert "cmake_minimum_required(VERSION 3.20.6...3.22.6 FATAL_ERROR)" in text
    # the icon and screenshot URLs name files of this repository (raw.githubusercontent.com/<org>/<repo>/main/...)
    for key in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        for url in fields[key].split():
            path = re.fullmatch(r"https://raw\.githubusercontent\.com/medfuse/medfuse/main/(.+)", url)
            assert path and (EXT.parent / path[1]).is_file(), f"{key}: {url} is not a file in the repository"
    readme_images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (EXT / "README.md").read_text())
    assert readme_images and all((EXT / image).is_file() for image in readme_images)


def test_icon():
    from PIL import Image

    with Image.open(MODULE / "Resources" / "Icons" / "MedFuse.png") as icon:
        assert icon.size == (128, 128) and icon.mode == "RGBA"


def test_catalog_entry_follows_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    entry = json.loads((EXT / "MedFuse.json").read_text())
    # Slicer/Slicer Schemas/slicer-extension-catalog-entry-schema-v1.0.2.json (fields and types)
    schema = {
        "type": "object", "required": ["$schema", "category", "scm_url"], "additionalProperties": False,
        "properties": {
            "$schema": {"type": "string"}, "category": {"type": "string"}, "scm_url": {"type": "string"},
            "scm_revision": {"type": "string"}, "scm_type": {"type": "string", "enum": ["git", "local"]},
            "build_dependencies": {"type": "array", "items": {"type": "string"}},
            "dicom_support_rule": {"type": "string"}, "build_subdirectory": {"type": "string"},
            "enabled": {"type": "boolean"}, "tier": {"type": "integer", "minimum": 1, "maximum": 5},
        },
    }
    jsonschema.validate(entry, schema)
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert entry["category"] == re.search(r'EXTENSION_CATEGORY "([^"]+)"', (EXT / "CMakeLists.txt").read_text())[1]


# -- Python versions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", MODULE_PY, ids=lambda p: p.relative_to(MODULE).as_posix())
@pytest.mark.parametrize("version", sorted(SLICER_PYTHONS), ids=lambda v: f"py{v[0]}{v[1]}")
def test_module_grammar_for_slicer_python(path, version):
    ast.parse(path.read_text(), filename=str(path), feature_version=version)


def _interpreter(version):
    """A working Python major.minor interpreter (pyenv's or on PATH), or None."""
    name = f"python{version[0]}.{version[1]}"
    candidates = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version[0]}.{version[1]}.*/bin/{name}"))
    candidates.append(shutil.which(name))
    for exe in candidates:
        if exe is None:
            continue
        try:
            out = subprocess.run([str(exe), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                 text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == str(tuple(version)):
            return str(exe)
    return None


_COMPILE = ("import sys\n"
            "bad = []\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n"
            "        compile(open(p, encoding='utf-8').read(), p, 'exec')\n"
            "    except SyntaxError as err:\n"
            "        bad.append(f'{p}:{err.lineno}: {err.msg}')\n"
            "print('\\n'.join(bad))\n"
            "sys.exit(1 if bad else 0)\n")


def _compile_with(python, files):
    """compile() every file with that interpreter (no .pyc written); the files that fail, one per line."""
    out = subprocess.run([python, "-c", _COMPILE, *map(str, files)], capture_output=True, text=True, timeout=300)
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("version", sorted(SLICER_PYTHONS), ids=lambda v: f"py{v[0]}{v[1]}")
def test_module_compiles_with_that_python(version):
    """compile() with the real interpreter (catches what ast feature_version does not); skips when absent."""
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version[0]}.{version[1]} interpreter here ({SLICER_PYTHONS[version]})")
    code, report = _compile_with(python, MODULE_PY)
    assert code == 0, report


def test_module_has_no_runtime_annotations_newer_than_39():
    """``X | None`` in annotations needs ``from __future__ import annotations`` on 3.9 (evaluated at import),
    except in Slicer-only files whose annotations the parameter node wrapper evaluates (no ``|`` there)."""
    for path in MODULE_PY:
        text = path.read_text()
        if re.search(r":\s*[\w\[\]]+\s*\|\s*\w+", text) or re.search(r"->\s*[\w\[\]]+\s*\|", text):
            assert "from __future__ import annotations" in text, f"{path.name} uses X | Y without the future import"


MEDFUSE_PY = sorted((ROOT / "medfuse").rglob("*.py"))


@pytest.mark.parametrize("path", MEDFUSE_PY, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_medfuse_grammar_for_slicer_510_python(path):
    """medfuse's own code runs in PythonSlicer: its grammar must be Python 3.12's (Slicer 5.10+)."""
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 12))


def test_medfuse_compiles_with_python_312():
    python = _interpreter((3, 12))
    if python is None:
        pytest.skip("no Python 3.12 interpreter here")
    code, report = _compile_with(python, MEDFUSE_PY)
    assert code == 0, report


_RUN_LIBRARY = ("import sys\n"
                "sys.path.insert(0, sys.argv[1])\n"
                "import MedFuseLib\n"
                "from MedFuseLib.process import build_command, failure_message, parse_progress\n"
                "from MedFuseLib.modality import modality_for_selection\n"
                "p = MedFuseLib.MedFuseParameters(reference_modality='MR', moving_modality='PT')\n"
                "assert build_command(p, 'r', 'm', 'o', python='PythonSlicer')[:5] == "
                "['PythonSlicer', '-m', 'medfuse.cli', '-v', 'fuse']\n"
                "assert parse_progress('PROGRESS 40 fusing') == (40, 'fusing')\n"
                "assert failure_message(['medfuse fuse: error: x'], 2) == 'x'\n"
                "class N:\n"
                "    def GetName(self): return 'FDG PET'\n"
                "    def GetAttribute(self, key): return None\n"
                "assert modality_for_selection(N(), 'unknown', False)[0] == 'PT'\n"
                "print('ok')\n")


@pytest.mark.parametrize("version", sorted(SLICER_PYTHONS), ids=lambda v: f"py{v[0]}{v[1]}")
def test_slicer_free_library_runs_with_that_python(version):
    """The Slicer-free MedFuseLib (what the panel needs before medfuse is installed) imports and works on the
    bundled Python of each Slicer the module loads in, with no third-party package; skips when absent."""
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version[0]}.{version[1]} interpreter here ({SLICER_PYTHONS[version]})")
    out = subprocess.run([python, "-I", "-B", "-c", _RUN_LIBRARY, str(MODULE)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
