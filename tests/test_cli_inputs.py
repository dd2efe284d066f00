"""`medfuse fuse` and `medfuse register` as a user meets them: options checked before any work, every
flag a message suggests exists on the command, per-input reading flags, inputs on one grid not
registered, and a sidecar beside each output."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medfuse.cli import build_parser, main
from medfuse.io import save_volume
from medfuse.volume import Volume

ROOT = Path(__file__).resolve().parents[1]
#: flags of other programs that medfuse messages quote (converters)
EXTERNAL_FLAGS = {"--raw"}


class _Reached(Exception):
    """Raised by a stand-in: the pipeline got as far as loading or registering."""


def _commands() -> set[str]:
    parser = build_parser()
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def _options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {opt for action in sub.choices[command]._actions for opt in action.option_strings}


def _strings(node):
    """The string literals under ``node``, f-strings joined with ``{}`` for their fields."""
    if isinstance(node, ast.JoinedStr):
        yield "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
        return
    for child in ast.iter_child_nodes(node):
        yield from _strings(child)


def _message_flags(paths, default: str) -> dict[tuple[str, str], set[str]]:
    """``(command, --flag)`` named in the raise statements and calls (log lines) of these modules: the
    command is the one the text names before the flag (```medfuse train --pair```), else ``default``."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.Raise, ast.Call)):
                continue
            for text in _strings(node):
                # `medfuse CMD --flag ...` spans name flags of CMD; flags elsewhere are the default command's
                for span in re.findall(r"`medfuse ([a-z][a-z-]*)([^`]*)`", text):
                    if span[0] in _commands():
                        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", span[1]):
                            found.setdefault((span[0], flag), set()).add(path.name)
                rest = re.sub(r"`medfuse [^`]*`", "", text)
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
                    found.setdefault((default, flag), set()).add(path.name)
    return found


def _modules(*names):
    out = []
    for name in names:
        p = ROOT / "medfuse" / name
        out += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return out


#: the doors: modules that speak to a user in their own command's words (flags); everything else speaks the API's
DOORS = ("cli.py", "batch_cli.py", "batch", "bundle.py", "demo.py", "weights/ship.py", "training", "datasets")


def _core_modules() -> list[Path]:
    package = ROOT / "medfuse"
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if not any(rel == door or rel.startswith(door + "/") or rel == door + ".py" for door in DOORS):
            out.append(path)
    return out


def _all_flags() -> set[str]:
    flags = set()
    for command in _commands():
        flags |= _options(command)
    return flags - {"-h", "--help"}


def test_no_message_outside_the_doors_names_a_command_line_flag():
    """Core code speaks the API: a message raised or logged outside the doors names an option as errors.OPTION
    (carried as err.option), and each door words it; none names a flag of any medfuse command."""
    flags = _all_flags()
    found = []
    for path in _core_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.Raise, ast.Call)):
                continue
            for text in _strings(node):
                text = re.sub(r"`medfuse [^`]*`", "", text)  # a whole command to run (`medfuse train ...`) is advice
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
                    if flag in flags:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {flag}")
    assert not found, "\n".join(sorted(set(found)))


def _options_carried() -> dict[str, set[str]]:
    """``option="..."`` given to an error (or to look_up) anywhere outside the doors -> where."""
    found: dict[str, set[str]] = {}
    for path in _core_modules():
        tree = ast.parse(path.read_text())
        names = {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)  # NAME = "option"
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    value = kw.value.value if isinstance(kw.value, ast.Constant) else (
                        names.get(kw.value.id) if isinstance(kw.value, ast.Name) else None)
                    if kw.arg == "option" and isinstance(value, str):
                        found.setdefault(value, set()).add(path.name)
    return found


def test_every_option_an_error_carries_is_a_flag_of_fuse():
    """What the command line makes of err.option exists: each option a core error can carry is a flag of `medfuse
    fuse` (per input where it is one), and the rendering puts it in the message."""
    from medfuse.cli import option_flag
    from medfuse.errors import OPTION, OptionError

    carried = _options_carried()
    assert {"accept_registration", "accept_mismatch", "force", "series", "frame", "modality", "method"} <= set(carried)
    fuse = _options("fuse")
    for option, where in carried.items():
        for role in ("reference", "moving"):
            assert option_flag(option, role) in fuse, f"{option} (carried in {sorted(where)}) is no flag of fuse"
    err = OptionError(f"bad; use {OPTION}", option="series", role="moving")
    assert str(err) == "bad; use the series option"
    assert err.render(option_flag) == "bad; use --moving-series"


def test_per_input_flags_exist():
    for command in ("fuse", "register"):
        options = _options(command)
        for name in ("series", "frame", "xform", "assume-orientation", "modality"):
            assert f"--reference-{name}" in options and f"--moving-{name}" in options, (command, name)
        for name in ("series", "frame", "xform", "assume-orientation"):
            assert f"--{name}" in options
        assert "--accept-registration" in options and "--registration" in options


def _stop_loading(monkeypatch):
    import medfuse.io

    def reached(*args, **kwargs):
        raise _Reached

    monkeypatch.setattr(medfuse.io, "load_volume", reached)


@pytest.mark.parametrize("args, words", [
    (["--method", "average"], ["average", "mean"]),
    (["--out", "{tmp}/fused.xyz"], [".xyz", "--out"]),
    (["--out", "{tmp}/fused"], ["without extension", "--out"]),
    (["--transform", "{tmp}/t.json"], ["--transform", ".tfm"]),
    (["--window", "brian"], ["brain"]),
    (["--window", "40,wide"], ["LEVEL,WIDTH"]),
    (["--weights", "{tmp}/missing.pt"], ["missing.pt", "--weights"]),
])
def test_bad_options_fail_before_any_loading(tmp_path, capsys, monkeypatch, args, words):
    _stop_loading(monkeypatch)
    base = {"--reference": "{tmp}/t1.nii.gz", "--moving": "{tmp}/pet.nii.gz", "--out": "{tmp}/fused.nii.gz"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    argv = ["fuse"] + [v.replace("{tmp}", str(tmp_path)) for kv in base.items() for v in kv]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert any(w in err for w in words), err


def test_existing_output_fails_before_loading(tmp_path, capsys, monkeypatch):
    _stop_loading(monkeypatch)
    (tmp_path / "fused.json").write_text("{}")
    code = main(["fuse", "--reference", "a.nii.gz", "--moving", "b.nii.gz", "--out", str(tmp_path / "fused.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2 and "fused.json exists already" in err and "--force" in err and "force=True" not in err


def test_png_output_for_volumes_fails_before_registration(tmp_path, capsys, monkeypatch):
    import medfuse.registration as reg

    monkeypatch.setattr(reg, "register", lambda *a, **k: (_ for _ in ()).throw(_Reached()))
    rng = np.random.default_rng(0)
    save_volume(Volume(rng.random((20, 20, 20)) * 100, np.diag([2.0, 2, 2, 1]), "MR"), tmp_path / "t1.nii.gz")
    save_volume(Volume(rng.random((20, 20, 20)) * 100, np.diag([3.0, 3, 3, 1]), "PT"), tmp_path / "pet.nii.gz")
    code = main(["fuse", "--reference", str(tmp_path / "t1.nii.gz"), "--moving", str(tmp_path / "pet.nii.gz"),
                 "--out", str(tmp_path / "fused.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "3D result cannot be written as .png" in err and "give the output a volume name" in err


def _series(folder, modality, uid, seed, number):
    from tests.io.dicom_fixtures import write_series

    rng = np.random.default_rng(seed)
    arr = (rng.random((12, 12, 6)) * 1000).astype(np.int16)
    write_series(folder, arr, np.diag([2.0, 2.0, 3.0, 1.0]), modality=modality, series_uid=uid,
                 series_number=number, file_names=[f"s{number}_{i}.dcm" for i in range(6)])


def test_study_folder_with_two_series_fused_from_the_command_line(tmp_path, capsys):
    study = tmp_path / "study"
    _series(study, "MR", "1.2.3.4.1", 0, 1)
    _series(study, "PT", "1.2.3.4.2", 1, 2)
    out = tmp_path / "fused.nii.gz"
    code = main(["fuse", "--reference", str(study), "--moving", str(study), "--out", str(out), "--method", "mean"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--reference-series" in err and "\n" not in err
    from medfuse.io.dicom import list_series

    found = {s.modality: s.opaque_id for s in list_series(study)}
    assert set(found) == {"MR", "PT"}
    code = main(["fuse", "--reference", str(study), "--moving", str(study), "--out", str(out), "--method", "mean",
                 "--reference-series", found["MR"], "--moving-series", found["PT"], "--no-qc"])
    assert code == 0, capsys.readouterr().err
    side = json.loads((tmp_path / "fused.json").read_text())
    assert side["inputs"]["reference"]["modality"] == "MR" and side["inputs"]["moving"]["modality"] == "PT"
    assert side["inputs"]["moving"]["modality_source"] == "dicom"
    # same grid, same world: taken as aligned, and the sidecar says so
    assert side["registration"]["registered"] is False and "one grid" in side["registration"]["reason"]


def test_sidecar_and_descrip(tmp_path):
    rng = np.random.default_rng(0)
    aff = np.diag([2.0, 2, 2, 1])
    aff[:3, 3] = [-20, -20, -20]
    head = np.zeros((20, 20, 20), np.float32)
    head[4:16, 4:16, 4:16] = 100 + 10 * rng.random((12, 12, 12))
    save_volume(Volume(head, aff, "MR"), tmp_path / "t1.nii.gz")
    save_volume(Volume(head[::-1] * 2, aff, "PT"), tmp_path / "pet.nii.gz")
    out = tmp_path / "out" / "fused.nii.gz"
    assert main(["fuse", "--reference", str(tmp_path / "t1.nii.gz"), "--moving", str(tmp_path / "pet.nii.gz"),
                 "--out", str(out), "--no-qc", "--method", "light"]) == 0
    side = json.loads((tmp_path / "out" / "fused.json").read_text())
    assert side["command"] == "fuse" and side["medfuse_version"]
    assert side["method"] == "light" and len(side["weights"]["sha256"]) == 64
    assert side["weights"]["file"] == "pet_mri_light.pt"
    assert side["inputs"]["moving"]["normalization"]["method"] in ("percentile", "suv")
    assert side["inputs"]["reference"]["modality_source"] == "file name"
    assert side["slice_plane"]["slice_axis"] == 2 and side["slice_plane"]["reference_orientation"] == "RAS"
    text = json.dumps(side)
    assert str(tmp_path) not in text  # no input paths (they may hold patient names)
    img = nib.load(str(out))
    assert img.header["descrip"].tobytes().rstrip(b"\0").decode() == "medfuse 0.1.0 fused light aanlib_pet"
    np.testing.assert_allclose(img.affine, aff, atol=1e-5)


@pytest.mark.real
def test_brats_case_is_not_registered_again(real_dir, tmp_path, capsys):
    case = real_dir / "brats" / "TCGA-FG-6692"
    t1ce, flair = sorted(case.glob("*_t1ce.nii.gz"))[0], sorted(case.glob("*_flair.nii.gz"))[0]
    out = tmp_path / "fused.nii.gz"
    assert main(["fuse", "--reference", str(t1ce), "--moving", str(flair), "--out", str(out), "--method", "mean"]) == 0
    side = json.loads((tmp_path / "fused.json").read_text())
    assert side["registration"]["registered"] is False and "taken as aligned" in side["registration"]["reason"]
    fused = nib.load(str(out))
    np.testing.assert_allclose(fused.affine, nib.load(str(t1ce)).affine, atol=1e-4)
    assert (tmp_path / "fused_qc.png").is_file()


def test_progress_lines(tmp_path, capsys):
    rng = np.random.default_rng(0)
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (32, 32)).astype(np.uint8)).save(tmp_path / "mri.png")
    Image.fromarray(rng.integers(0, 256, (32, 32)).astype(np.uint8)).save(tmp_path / "ct.png")
    assert main(["fuse", "--reference", str(tmp_path / "mri.png"), "--moving", str(tmp_path / "ct.png"), "--out",
                 str(tmp_path / "f.png"), "--method", "max", "--progress", "--no-qc"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("PROGRESS ")]
    percents = [int(ln.split()[1]) for ln in lines]
    assert percents == sorted(percents) and percents[0] <= 5 and percents[-1] == 100 and len(lines) >= 5


def test_default_method_is_the_benchmark_decision(tmp_path):
    """Without --method, fuse uses defaults.json's "method" for the pair (the quality benchmark's choice),
    and records it in the sidecar; a classical default records no weights."""
    from medfuse.classical import CLASSICAL_METHODS
    from medfuse.weights import default_method_for_pair

    head = np.zeros((16, 16, 16), np.float32)
    head[3:13, 3:13, 3:13] = 100 + 10 * np.random.default_rng(1).random((10, 10, 10))
    save_volume(Volume(head, np.eye(4), "MR"), tmp_path / "t1.nii.gz")
    save_volume(Volume(head[::-1] * 2, np.eye(4), "PT"), tmp_path / "pet.nii.gz")
    out = tmp_path / "fused.nii.gz"
    assert main(["fuse", "--reference", str(tmp_path / "t1.nii.gz"), "--moving", str(tmp_path / "pet.nii.gz"),
                 "--out", str(out), "--no-qc"]) == 0
    side = json.loads((tmp_path / "fused.json").read_text())
    expected = default_method_for_pair("pet_mri")
    assert expected is not None and side["method"] == expected
    if expected in CLASSICAL_METHODS:
        assert side["weights"] is None
