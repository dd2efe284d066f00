"""The pipeline's options object: checked once when made, frozen, its record in the sidecar, the steps' provenance,
and the output plan's formats (.nhdr/.mhd written and read back with their geometry)."""

from __future__ import annotations

import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest

from medfuse.errors import OptionError, OutputExistsError, UnsupportedInputError
from medfuse.io import load_volume, save_volume
from medfuse.pipeline import FusionOptions, InputOptions, RegistrationOptions, fuse_files
from medfuse.volume import Volume

AFFINE = np.array([[0.0, -2.0, 0.0, 30.0], [0.0, 0.0, 2.5, -20.0], [1.8, 0.0, 0.0, -25.0], [0.0, 0.0, 0.0, 1.0]])


@pytest.mark.parametrize("field, value, option", [
    ("method", "maxx", "method"),
    ("registration_type", "rigdi", "registration_type"),
    ("window", "brian", "window"),
    ("window", (40, -80), "window"),
    ("colormap", "hot_irn", "colormap"),
    ("out_format", "nift", "out_format"),
    ("compress_level", 11, "compress_level"),
])
def test_a_bad_option_fails_when_the_options_are_made(field, value, option):
    with pytest.raises(OptionError) as info:
        FusionOptions(**{field: value})
    assert info.value.option == option
    assert "{option}" not in str(info.value) and "--" not in str(info.value)  # the API's words


def test_options_are_canonical_frozen_and_checked_again_on_replace(tmp_path):
    options = FusionOptions(method="MAX", window="Soft-Tissue", colormap="Hot", registration_type="RIGID",
                            reference={"modality": "mri"}, qc=str(tmp_path / "qc.png"))
    assert (options.method, options.window, options.colormap, options.registration_type) == (
        "max", "soft_tissue", "hot_iron", "rigid")
    assert options.reference == InputOptions(modality="MR") and options.qc == tmp_path / "qc.png"
    assert FusionOptions(colormap="grey").colormap == "gray" and FusionOptions(window=("40", 80)).window == (40.0, 80.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.method = "mean"
    with pytest.raises(OptionError):
        options.replace(method="nope")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    with pytest.raises(OptionError) as info:
        FusionOptions(method="max", weights=weights)
    assert info.value.option == "weights"
    with pytest.raises(UnsupportedInputError) as info:
        FusionOptions(method="light", weights=tmp_path / "missing.pt")
    assert info.value.option == "weights"
    with pytest.raises(UnsupportedInputError) as info:
        RegistrationOptions(transform_out=tmp_path / "t.json")
    assert info.value.option == "transform_out"


def test_overrides_and_record_say_what_the_user_took_over():
    options = FusionOptions(method="max", register=False, accept_registration=True,
                            moving=InputOptions(modality="PET", series="abc"))
    lines = options.overrides({"overridden_check_failures": ["field of view"]},
                              {"mismatches_accepted": ["different patients"]})
    assert lines == ["no register: not registered", "accept_registration: field of view",
                     "moving modality given: PT", "accept_mismatch: different patients"]
    record = options.record()
    assert record["moving"] == {"modality": "PT", "series": "abc"} and record["register"] is False
    json.dumps(record)  # JSON-ready


def _pair(tmp_path):
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in (30, 24, 20)], indexing="ij"), -1)
    head = (np.linalg.norm(g / [0.9, 0.9, 0.9], axis=-1) < 1).astype(np.float32)
    mri = head * 600 + (np.linalg.norm(g - [0.2, 0, 0], axis=-1) < 0.4) * 300
    pet = head * 5000 + (np.linalg.norm(g - [-0.3, 0.2, 0], axis=-1) < 0.25) * 20000
    save_volume(Volume(mri, AFFINE, modality="MR"), tmp_path / "mri.nii.gz")
    save_volume(Volume(pet, AFFINE, modality="PT"), tmp_path / "pet.nii.gz")
    return tmp_path / "mri.nii.gz", tmp_path / "pet.nii.gz"


@pytest.mark.parametrize("ext, data", [(".nhdr", ".raw.gz"), (".mhd", ".zraw")])
def test_detached_header_outputs_are_written_with_the_reference_geometry(tmp_path, ext, data):
    mri, pet = _pair(tmp_path)
    options = FusionOptions(method="max", qc=False, reference=InputOptions(modality="MR"),
                            moving=InputOptions(modality="PT"), out_format="nrrd" if ext == ".nhdr" else None)
    written = fuse_files(mri, pet, tmp_path / "out" / f"fused{ext}", options)
    assert written["fused"] == tmp_path / "out" / f"fused{ext}"
    assert (tmp_path / "out" / f"fused{data}").is_file()  # the voxels beside the header
    assert written["quantitative"] == tmp_path / "out" / f"fused_moving{ext}"
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")) == []  # no staging left
    import SimpleITK as sitk

    rgb = sitk.ReadImage(str(written["fused"]))
    assert rgb.GetNumberOfComponentsPerPixel() == 3
    quant = load_volume(written["quantitative"])
    np.testing.assert_allclose(quant.affine, nib.load(str(mri)).affine, atol=1e-4)
    src = nib.load(str(pet)).get_fdata()
    assert np.allclose(quant.array, src, rtol=1e-5, atol=1e-3)  # same grid: the PET itself, in its units
    with pytest.raises(OutputExistsError):  # the header and its data file are outputs: no overwrite
        fuse_files(mri, pet, tmp_path / "out" / f"fused{ext}", options)


def test_sidecar_holds_the_options_and_the_steps(tmp_path):
    mri, pet = _pair(tmp_path)
    written = fuse_files(mri, pet, tmp_path / "fused.nii.gz", FusionOptions(
        method="max", qc=False, reference=InputOptions(modality="MR"), moving=InputOptions(modality="PT")))
    record = json.loads(written["sidecar"].read_text())
    assert [s["step"] for s in record["steps"]] == ["pair_check", "align", "normalize", "colour", "fuse",
                                                    "field_of_view", "write"]
    assert record["options"]["method"] == "max" and record["options"]["moving"] == {"modality": "PT"}
    assert record["steps"][1]["registered"] is False and record["method"] == "max"
    assert record["steps"][3]["colormap"] == "aanlib_pet" and record["steps"][-1]["outputs"]["fused"] == "fused.nii.gz"
    assert str(tmp_path) not in written["sidecar"].read_text()


def test_one_table_per_choice():
    """Registration types and output formats come from medfuse.choices everywhere; the Slicer module's own copy
    (it runs where medfuse may not be installed) is held equal."""
    import ast
    from pathlib import Path

    from medfuse.choices import OUT_FORMATS, REGISTRATION_TYPES
    from medfuse.cli import build_parser
    from medfuse.registration import TransformType

    assert tuple(t.value for t in TransformType) == REGISTRATION_TYPES
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("fuse", "register"):
        action = next(a for a in sub.choices[command]._actions if a.dest == "registration")
        assert tuple(action.choices) == REGISTRATION_TYPES
    assert tuple(next(a for a in sub.choices["fuse"]._actions if a.dest == "out_format").choices) == OUT_FORMATS
    slicer = Path(__file__).resolve().parents[2] / "slicer_extension/MedFuse/MedFuseLib/parameters.py"
    tree = ast.parse(slicer.read_text())
    copy = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "REGISTRATION_TYPES" for t in node.targets))
    assert ast.literal_eval(copy) == REGISTRATION_TYPES
