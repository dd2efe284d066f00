"""No silent modality guess: user, DICOM, file name, Hounsfield content, else a one-line error.

The content rule (CT = air at -1000 HU and tissue above 100 HU) is checked on two independent
sources: the project's phantom and the real scans in ../shared/data/real (MNI templates, one
patient's native MR, a BraTS case and a real head CT series): no false CT, no missed HU CT.
"""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.cli import main
from medfuse.errors import UnknownModalityError
from medfuse.io import load_volume, save_volume
from medfuse.modality import canonical_modality, modality_from_content, modality_from_name, resolve_modality
from medfuse.phantom import make_case
from medfuse.volume import Volume


@pytest.fixture(scope="module")
def phantom_scans(tmp_path_factory):
    """A CT, a PET and an MRI of the phantom saved as scan1/2/3.nii.gz: names that say nothing."""
    folder = tmp_path_factory.mktemp("anonymous")
    ct = make_case("ct", seed=1)
    pet = make_case("pet", seed=1)
    save_volume(ct.moving, folder / "scan1.nii.gz")
    save_volume(pet.moving, folder / "scan2.nii.gz")
    save_volume(ct.mri, folder / "scan3.nii.gz")
    return folder


@pytest.mark.parametrize("name, code", [
    ("mri.png", "MR"), ("pet.png", "PT"), ("spect.png", "NM"), ("ct.png", "CT"), ("sub-01_T1w.nii.gz", "MR"),
    ("TCGA-XX_t1c_native.nii.gz", "MR"), ("case-t2f.nii.gz", "MR"), ("fdg_pet.nii.gz", "PT"), ("scan2.nii.gz", None),
    ("patient.nii.gz", None),
])
def test_modality_from_name(name, code):
    assert modality_from_name(name) == code


def test_aliases_and_typos():
    assert canonical_modality("pet") == "PT" and canonical_modality("SPECT") == "NM" and canonical_modality("mri") == "MR"
    with pytest.raises(ValueError, match="did you mean"):
        canonical_modality("PTT")


def test_anonymous_files_ct_by_content_others_need_the_flag(phantom_scans):
    ct = load_volume(phantom_scans / "scan1.nii.gz")
    assert ct.modality == "CT" and ct.meta["modality_source"] == "content"
    for name in ("scan2.nii.gz", "scan3.nii.gz"):
        v = load_volume(phantom_scans / name)
        assert v.modality is None and "modality_source" not in v.meta
    given = load_volume(phantom_scans / "scan2.nii.gz", modality="pet")
    assert given.modality == "PT" and given.meta["modality_source"] == "user"


class _Reached(Exception):
    """Raised by the stand-in for register(): the pipeline got as far as registration."""


def test_cli_asks_for_the_modality_in_one_line_before_registering(phantom_scans, tmp_path, capsys, monkeypatch):
    import medfuse.registration as reg

    def reached(*args, **kwargs):
        raise _Reached

    monkeypatch.setattr(reg, "register", reached)
    out = tmp_path / "fused.nii.gz"

    def fuse(moving, *extra):
        return main(["fuse", "--reference", str(phantom_scans / "scan3.nii.gz"), "--moving",
                     str(phantom_scans / moving), "--out", str(out), "--method", "mean", *extra])

    # the MRI named scan3 is refused first, with the reference flag
    assert fuse("scan2.nii.gz") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--reference-modality MR|CT|PT|NM" in err and "the reference scan:" in err
    # the PET named scan2 next, with the moving flag
    assert fuse("scan2.nii.gz", "--reference-modality", "MR") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--moving-modality MR|CT|PT|NM" in err and "the moving scan:" in err
    assert not out.exists()
    # with both given, or with the CT recognised by its Hounsfield units, the pipeline goes on to register
    with pytest.raises(_Reached):
        fuse("scan2.nii.gz", "--reference-modality", "MR", "--moving-modality", "PT")
    with pytest.raises(_Reached):
        fuse("scan1.nii.gz", "--reference-modality", "MR")


def test_content_rule_on_phantom_contrasts():
    for modality in ("pet", "spect", "t2"):
        case = make_case(modality, seed=2)
        assert modality_from_content(case.moving.array) is None, modality
    assert modality_from_content(make_case("ct", seed=2).moving.array) == "CT"
    assert modality_from_content(make_case("ct", seed=2).mri.array) is None
    # a CT shifted out of HU (e.g. stored +1024 without intercept) is not called CT
    assert modality_from_content(make_case("ct", seed=2).moving.array + 1024.0) is None


@pytest.mark.real
def test_content_rule_on_real_scans_has_no_false_ct(real_dir):
    files = sorted((real_dir / "templates").glob("*.nii")) + sorted((real_dir / "tcga_fg6692_native" / "native").glob(
        "*.nii.gz")) + sorted((real_dir / "brats").rglob("*.nii.gz"))
    assert len(files) >= 15
    for f in files:
        v = load_volume(f, check=False)
        # clinical_scct is a CT template on its own 0..3794 scale, not HU: not recognisable, so not claimed
        assert modality_from_content(v.array) is None, f.name


@pytest.mark.real
def test_content_rule_finds_a_real_hu_ct(real_dir):
    """A real head CT (GE, via the reference converter's tilt-corrected NIfTI: the raw series is tilted, which
    the DICOM reader refuses) is recognised by its values, with no name or tag to help."""
    ref = real_dir / "dicom_qa" / "ge_ct_gantry_tilt" / "Ref_regenerated_v1.0.20260724" / "_2_Tilt_Eq_1.nii.gz"
    ct = load_volume(ref)
    assert ct.modality == "CT" and ct.meta["modality_source"] == "content"


def test_resolve_keeps_dicom_modality_and_user_wins():
    v = Volume(np.zeros((4, 4, 4)), modality="PT")
    assert resolve_modality(v, "ct.nii.gz") == "PT" and v.meta["modality_source"] == "dicom"
    assert resolve_modality(v, "ct.nii.gz", "MR") == "MR" and v.meta["modality_source"] == "user"


def test_pipeline_refuses_unknown_modality_in_the_api():
    from medfuse.pipeline import FusionOptions, fuse_volumes

    a = Volume(np.random.default_rng(0).random((16, 16, 16)), modality="MR")
    b = Volume(np.random.default_rng(1).random((16, 16, 16)))
    with pytest.raises(UnknownModalityError, match="give it with the modality option MR") as info:
        fuse_volumes(a, b, FusionOptions(method="mean"))
    assert info.value.role == "moving" and info.value.option == "modality"  # the CLI: --moving-modality
