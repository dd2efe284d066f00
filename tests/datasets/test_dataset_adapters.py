"""Case discovery: Harvard, BraTS (2018-2021 and 2023+ naming) and ADNI (pairing rules) on tiny trees."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from medfuse.datasets import discover
from medfuse.datasets.adni import classify_series
from medfuse.datasets.brats import ALL_SEQUENCES, parse_sequences
from medfuse.errors import OptionError
from tests.datasets.synthetic_trees import write_adni_series, write_brats_case, write_harvard_tree

D = dt.date


# ---------------------------------------------------------------------------------------- Harvard


def test_harvard_discovery_counts_incomplete_and_strays(tmp_path):
    root = write_harvard_tree(tmp_path / "h", n=2)
    (root / "pet_mri" / "xg-1000" / "notes.txt").write_text("x")
    (root / "ct_mri" / "xg-1001" / "ct.png").unlink()
    (root / "other").mkdir()
    found = discover("harvard", root)
    assert [c.case_id for c in found.cases] == ["ct_mri/xg-1000", "pet_mri/xg-1000", "pet_mri/xg-1001"]
    case = found.cases[1]
    assert list(case.inputs) == ["mri", "pet"] and case.modalities == {"mri": "MR", "pet": "PT"} and case.is_2d
    reasons = {s.where: s.reason for s in found.skipped}
    assert "missing ct.png" in reasons["ct_mri/xg-1001"]
    other = next(w for w in reasons if "not a task folder" in reasons[w])  # a non-public name is never shown
    assert re.fullmatch(r"~[0-9a-f]{8}", other)
    assert sum(found.ignored.values()) == 1  # notes.txt (README.md and index.csv belong to the data set)
    assert "1 case(s)" not in found.summary() and "3 case(s) found" in found.summary()
    assert [c.case_id for c in discover("harvard", root, tasks=["pet_mri"]).cases] == ["pet_mri/xg-1000",
                                                                                       "pet_mri/xg-1001"]


def test_case_ids_are_public_ids_or_stable_pseudonyms(tmp_path):
    """Folder names may be identifiers: only the data set's own ids are shown, others get a pseudonym derived
    from the relative path (the same at every run, so a batch resumes)."""
    root = write_harvard_tree(tmp_path / "h", n=1)
    (root / "pet_mri" / "xg-1000").rename(root / "pet_mri" / "Doe^John_1957")
    ids = [c.case_id for c in discover("harvard", root).cases]
    assert ids[0] == "ct_mri/xg-1000" and re.fullmatch(r"pet_mri/case-[0-9a-f]{12}", ids[1])
    assert ids == [c.case_id for c in discover("harvard", root).cases]  # stable
    assert "Doe" not in repr(discover("harvard", root).as_dict())
    write_brats_case(tmp_path / "b", "Smith_Jane", "2021", seg=False)
    write_brats_case(tmp_path / "b", "BraTS2021_00001", "2021", seg=False)
    found = discover("brats", tmp_path / "b")
    assert sorted(c.case_id for c in found.cases)[0] == "BraTS2021_00001"
    assert re.fullmatch(r"case-[0-9a-f]{12}", sorted(c.case_id for c in found.cases)[1])
    assert "Smith" not in found.summary() + repr(found.as_dict())


@pytest.mark.harvard
def test_harvard_real_tree(harvard_dir):
    found = discover("harvard", harvard_dir)
    assert len(found.cases) == 708 and not found.skipped


# ---------------------------------------------------------------------------------------- BraTS


def test_brats_both_namings_default_sequences_and_strays(tmp_path):
    root = tmp_path / "brats"
    write_brats_case(root / "MICCAI_BraTS2020_TrainingData", "BraTS20_Training_001", "2021",
                     extra_files=("README.txt", "BraTS20_Training_001_mask.json"))
    write_brats_case(root, "BraTS-GLI-00000-000", "2023", seg=False)
    write_brats_case(root, "BraTS2021_00002", "2021", sequences=("t1", "t2", "flair"))  # no t1ce
    (root / "name_mapping.csv").write_text("x\n")
    found = discover("brats", root)
    ids = [c.case_id for c in found.cases]
    assert ids == ["BraTS-GLI-00000-000", "BraTS20_Training_001"]
    c2023, c2021 = found.cases
    assert list(c2021.inputs) == ["t1ce", "flair"] and c2021.inputs["t1ce"].name == "BraTS20_Training_001_t1ce.nii.gz"
    assert c2023.inputs["flair"].name == "BraTS-GLI-00000-000-t2f.nii.gz" and c2023.info["naming"] == "2023+"
    assert c2021.labels["seg"].name.endswith("_seg.nii.gz") and not c2023.labels
    assert [s.reason for s in found.skipped] == ["missing sequence: t1ce"]
    assert found.ignored["not a BraTS sequence or segmentation of its case"] == 2
    assert found.ignored["file outside the case folders"] == 1


def test_brats_all_sequences_and_parsing(tmp_path):
    write_brats_case(tmp_path, "BraTS-GLI-00001-000", "2023")
    found = discover("brats", tmp_path, sequences="all")
    assert list(found.cases[0].inputs) == list(ALL_SEQUENCES)
    assert parse_sequences("t1c,t2f") == ("t1ce", "flair") and parse_sequences(None) == ("t1ce", "flair")
    assert parse_sequences("FLAIR,t1") == ("flair", "t1")
    for bad in ("t1ce", "t1ce,t1c", "t1ce,flare"):
        with pytest.raises(OptionError):
            parse_sequences(bad)


def test_brats_two_files_for_one_sequence_is_ambiguous(tmp_path):
    folder = write_brats_case(tmp_path, "Case7", "2021", seg=False)
    (folder / "Case7_t1ce.nii").write_bytes((folder / "Case7_t1ce.nii.gz").read_bytes())
    found = discover("brats", tmp_path)
    assert not found.cases and found.skipped[0].reason.startswith("ambiguous: two files for t1ce")


def test_options_that_do_not_apply_are_refused(tmp_path):
    from medfuse.batch_cli import option_words

    with pytest.raises(OptionError) as info:  # the option is carried; the batch door names it by its flag
        discover("harvard", tmp_path, sequences="all")
    assert info.value.option == "sequences"
    assert info.value.render(option_words).startswith("--sequences does not apply to the harvard data set")
    with pytest.raises(OptionError, match="did you mean"):
        discover("bratz", tmp_path)


@pytest.mark.real
def test_brats_real_case(real_dir):
    found = discover("brats", real_dir / "brats", sequences="all")
    assert [c.case_id for c in found.cases] == ["TCGA-FG-6692"] and not found.skipped


# ---------------------------------------------------------------------------------------- ADNI


def test_adni_classification_rules():
    assert classify_series("MPRAGE", {"modality": "MR"})[3] is None
    assert classify_series("Accelerated Sagittal MPRAGE")[:1] == ("mri",)
    assert "not a T1" in classify_series("Axial T2-FLAIR", {"modality": "MR"})[3]
    assert classify_series("ADNI Brain PET  Raw FDG", {"modality": "PT"})[1:3] == ("FDG", "fdg")
    assert classify_series("AV45 Coreg, Avg, Std Img and Vox Siz", {"modality": "PT"})[1:3] == ("florbetapir",
                                                                                                  "amyloid")
    assert "tau PET" in classify_series("AV1451 Coreg, Avg", {"modality": "PT"})[3]
    assert "ambiguous" in classify_series("FDG PET", {"modality": "PT", "radiopharmaceutical": "Florbetapir"})[3]
    assert "ambiguous" in classify_series("MPRAGE", {"modality": "PT"})[3]
    assert "not recognised" in classify_series("PET something", {"modality": "PT"})[3]


def test_adni_pairing_nearest_within_window_ambiguous_and_unmatched(tmp_path):
    w = write_adni_series
    # subject 1: FDG paired with the nearest MPRAGE (30 days, not 200); an amyloid PET pairs too; a tau is skipped
    w(tmp_path, "002_S_0295", "MPRAGE", D(2010, 1, 1), "I100", "MR")
    w(tmp_path, "002_S_0295", "MPRAGE", D(2010, 8, 20), "I101", "MR")
    w(tmp_path, "002_S_0295", "ADNI_Brain_PET__Raw_FDG", D(2010, 1, 31), "I200", "PT")
    w(tmp_path, "002_S_0295", "AV45_Coreg,_Avg,_Std_Img_and_Vox_Siz", D(2010, 9, 1), "I201", "PT",
      tracer="Florbetapir")
    w(tmp_path, "002_S_0295", "AV1451_Coreg,_Avg", D(2010, 9, 2), "I202", "PT", tracer="Flortaucipir")
    w(tmp_path, "002_S_0295", "Axial_T2_FLAIR", D(2010, 1, 1), "I103", "MR")
    # subject 2: two MPRAGEs the same day -> ambiguous; --mri-series resolves it
    w(tmp_path, "011_S_0005", "MPRAGE", D(2012, 3, 1), "I300", "MR")
    w(tmp_path, "011_S_0005", "MPRAGE_Repeat", D(2012, 3, 1), "I301", "MR")
    w(tmp_path, "011_S_0005", "FDG_PET", D(2012, 4, 1), "I400", "PT")
    # subject 3: MRI 400 days away -> unmatched; NIfTI series work too
    w(tmp_path, "123_S_4567", "MPRAGE", D(2014, 1, 1), "I500", "MR", nifti=True)
    w(tmp_path, "123_S_4567", "Coreg,_Avg,_Standardized_Image_and_Voxel_Size_FDG", D(2015, 2, 5), "I600", "PT",
      nifti=True)
    (tmp_path / "ADNI" / "002_S_0295" / "MPRAGE" / "2010-01-01_08_20_30.0" / "I100" / "notes.txt").write_text("x")
    (tmp_path / "ADNI_clinical.csv").write_text("x\n")

    found = discover("adni", tmp_path)
    cases = {c.case_id: c for c in found.cases}
    assert sorted(cases) == ["002_S_0295_I200", "002_S_0295_I201"]
    fdg, amy = cases["002_S_0295_I200"], cases["002_S_0295_I201"]
    assert fdg.inputs["mri"].name == "I100" and fdg.info["days_mri_to_pet"] == 30 and fdg.info["tracer"] == "FDG"
    assert amy.inputs["mri"].name == "I101" and amy.info["tracer_kind"] == "amyloid"
    assert fdg.modalities == {"mri": "MR", "pet": "PT"}
    reasons = {s.where.split("/")[-1]: s.reason for s in found.skipped}
    assert reasons["I202"].startswith("tau PET")
    assert "not a T1" in reasons["I103"]
    assert reasons["I400"].startswith("ambiguous: 2 T1 MRIs 31 days") and "--mri-series" in reasons["I400"]
    assert reasons["I600"].startswith("unmatched") and "400 days" in reasons["I600"]
    assert found.ignored["not DICOM or NIfTI"] == 1

    resolved = discover("adni", tmp_path / "ADNI", mri_series="^MPRAGE$")
    assert "011_S_0005_I400" in {c.case_id for c in resolved.cases}
    wide = discover("adni", tmp_path, window_days=500)
    assert wide.cases and "123_S_4567_I600" in {c.case_id for c in wide.cases}
    assert next(c for c in wide.cases if c.case_id == "123_S_4567_I600").inputs["pet"].name.endswith(".nii")


def test_adni_description_and_tags_disagree(tmp_path):
    write_adni_series(tmp_path, "002_S_0001", "MPRAGE", D(2010, 1, 1), "I1", "MR")
    write_adni_series(tmp_path, "002_S_0001", "FDG_PET", D(2010, 1, 2), "I2", "PT", tracer="Florbetaben")
    found = discover("adni", tmp_path)
    assert not found.cases
    assert any("ambiguous: the description says FDG" in s.reason for s in found.skipped)
