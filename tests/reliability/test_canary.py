"""No identifier leaks: canary strings in every text attribute of the DICOM inputs and in their folder and file
names appear in no log line, message, output name, NIfTI header, sidecar or derived DICOM (apart from the
reference's patient and study modules, which a derived DICOM carries on purpose).

Path rule under test (``medfuse/io/naming.py``): through ``medfuse fuse``/``register`` an input is named by its
role (``the moving scan (--moving)``), never by its path; log lines never contain a path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.uid import generate_uid

from medfuse.cli import main
from tests.io.dicom_fixtures import CANARY_FIELDS, write_series

CANARY = "ZQXCANARY7731"
#: text attributes filled with the canary: the fixtures' identifying fields plus free-text descriptions
FIELDS = (*CANARY_FIELDS, "SeriesDescription", "ImageComments", "RequestingPhysician", "PerformedProcedureStepDescription")
#: what a derived DICOM carries from the reference on purpose (patient and study modules)
CARRIED = {"PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription"}


def _text(field: str) -> str:
    vr = dictionary_VR(field)
    return CANARY if vr in ("SH", "CS") else f"{CANARY}^{field}"[:64]


def _blob(shape, center, radii):
    g = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    return np.linalg.norm((g - center) / radii, axis=-1) < 1


@pytest.fixture()
def canary_inputs(tmp_path):
    root = tmp_path / f"{CANARY}_Doe^John_19570101"
    shape = (24, 22, 12)
    head = _blob(shape, (12, 11, 6), (10, 9, 5))
    mr = (head * 600 + _blob(shape, (8, 11, 6), (3, 3, 2)) * 400).astype(np.int16)
    pt = (head * 700 + _blob(shape, (16, 10, 6), (3, 3, 2)) * 5000).astype(np.int16)
    tags = {f: _text(f) for f in FIELDS}
    tags["PatientBirthDate"] = "19570101"
    study, frame = generate_uid(prefix=None), generate_uid(prefix=None)
    aff = np.diag([-1.8, -1.8, 3.0, 1.0])
    for name, arr, modality in (("mr", mr, "MR"), ("pt", pt, "PT")):
        write_series(root / f"{name}_{CANARY}", arr, aff, modality, study_uid=study, frame_of_reference_uid=frame,
                     tags=tags, series_description=_text("SeriesDescription"),
                     file_names=[f"{CANARY}_{k:03d}.dcm" for k in range(shape[2])])
    out = tmp_path / "outputs"
    out.mkdir()
    return root / f"mr_{CANARY}", root / f"pt_{CANARY}", out


def _assert_clean(where: str, text: str) -> None:
    assert CANARY not in text, f"canary leaked into {where}: ...{text[max(0, text.find(CANARY) - 80):][:200]}"
    assert "Doe^John" not in text and "19570101" not in text, where


def _check_outputs(out: Path) -> None:
    for path in out.rglob("*"):
        _assert_clean(f"the output name {path.name}", str(path.relative_to(out)))
        if path.suffix == ".json":
            _assert_clean(path.name, path.read_text())
        if path.name.endswith((".nii.gz", ".nii")):
            img = nib.load(str(path))
            for key in ("descrip", "aux_file", "intent_name", "db_name"):
                _assert_clean(f"{path.name} header {key}", img.header[key].tobytes().decode("latin-1"))
            assert len(img.header.extensions) == 0
        if path.suffix == ".dcm":
            ds = pydicom.dcmread(path)
            for elem in ds.iterall():
                if elem.keyword in CARRIED or elem.VR in ("OB", "OW", "SQ"):
                    continue
                _assert_clean(f"{path.name} {elem.keyword}", str(elem.value))
        if path.suffix in (".tfm", ".txt"):
            _assert_clean(path.name, path.read_text(errors="replace"))


def _run(argv, capsys, caplog) -> tuple[int, str]:
    caplog.clear()
    code = main(argv)
    captured = capsys.readouterr()
    for where, text in (("stdout", captured.out), ("stderr", captured.err), ("the log", caplog.text)):
        _assert_clean(where, text)
    return code, captured.err


def test_no_canary_in_fuse_register_outputs_logs_or_errors(canary_inputs, capsys, caplog):
    mr, pt, out = canary_inputs
    caplog.set_level(logging.DEBUG)
    assert CANARY.encode() in next(mr.glob("*.dcm")).read_bytes()

    code, err = _run(["-v", "fuse", "--reference", str(mr), "--moving", str(pt), "--out", str(out / "fused.nii.gz"),
                      "--method", "mean", "--transform", str(out / "t.tfm")], capsys, caplog)
    assert code == 0, err
    code, err = _run(["-v", "fuse", "--reference", str(mr), "--moving", str(pt), "--out", str(out / "dcm"),
                      "--format", "dicom", "--method", "mean"], capsys, caplog)
    assert code == 0, err
    ds = pydicom.dcmread(next((out / "dcm").glob("*.dcm")))
    assert CANARY in str(ds.PatientName)  # the reference's patient module is carried, on purpose
    code, err = _run(["-v", "register", "--reference", str(mr), "--moving", str(pt), "--out",
                      str(out / "registered.nii.gz")], capsys, caplog)
    assert code == 0, err
    _check_outputs(out)

    # failing cases: several series in one folder, a missing slice, a missing input
    study = mr.parent
    for bad in (study, pt, study / f"missing_{CANARY}"):
        if bad == pt:
            sorted(pt.glob("*.dcm"))[5].unlink()
        code, err = _run(["fuse", "--reference", str(mr), "--moving", str(bad), "--out", str(out / "x.nii.gz"),
                          "--method", "mean"], capsys, caplog)
        assert code == 2 and "the moving scan" in err, err
    assert not (out / "x.nii.gz").exists()


def test_no_canary_in_info(canary_inputs, capsys, caplog):
    mr, _, _ = canary_inputs
    caplog.set_level(logging.DEBUG)
    code, _ = _run(["info", str(mr)], capsys, caplog)
    assert code == 0
    _run(["info", str(mr.parent)], capsys, caplog)  # two series: an error


def test_api_logs_never_hold_paths(canary_inputs, caplog):
    """Even through the Python API (messages name the path the caller gave), log lines hold no path."""
    from medfuse.io import load_volume

    mr, _, _ = canary_inputs
    (mr / f"{CANARY}.txt").write_text("clutter")
    caplog.set_level(logging.DEBUG)
    vol = load_volume(mr)
    _assert_clean("the log", caplog.text)
    _assert_clean("repr(meta)", repr(vol.meta))
    assert "skipped 1 non-DICOM" in caplog.text


def test_no_canary_in_batch_outputs_manifest_report_or_logs(tmp_path, capsys, caplog):
    """A small Harvard-layout batch whose folder and file names hold the canary: the case ids become pseudonyms,
    and the canary appears in no output name, manifest, discovery.json, report.html, message or log line."""
    from medfuse.batch import MANIFEST, read_manifest
    from tests.datasets.synthetic_trees import write_harvard_tree

    root = write_harvard_tree(tmp_path / f"{CANARY}_Doe^John_19570101", n=2)
    (root / "pet_mri" / "xg-1000").rename(root / "pet_mri" / f"{CANARY}_pair")  # a named pair: fused, pseudonym
    (root / "ct_mri" / "xg-1001" / f"{CANARY}_notes.txt").write_text("x")  # stray file (counted, example kept)
    (root / f"{CANARY}_export").mkdir()  # not a task folder (skipped, with where)
    incomplete = root / "ct_mri" / f"{CANARY}_incomplete"
    incomplete.mkdir()
    (incomplete / "mri.png").write_bytes((root / "ct_mri" / "xg-1000" / "mri.png").read_bytes())
    (root / "pet_mri" / "xg-1001" / "pet.png").write_bytes(b"not a png")  # this case fails: its message is checked
    (root / "pet_mri" / "xg-1001").rename(root / "pet_mri" / f"Doe^John_{CANARY}")
    out = tmp_path / "batch_out"
    caplog.set_level(logging.DEBUG)
    argv = ["-v", "batch", "--dataset", "harvard", str(root), "--out", str(out), "--workers", "0", "--method", "mean",
            "--no-progress"]
    code, _ = _run(argv, capsys, caplog)
    assert code == 1  # the broken case failed, the others were fused
    rows = read_manifest(out / MANIFEST)
    assert sorted(r["status"] for r in rows) == ["done", "done", "done", "failed"]
    assert sum(r["case_id"].startswith("pet_mri/case-") for r in rows) == 2
    failed = next(r for r in rows if r["status"] == "failed")
    assert "the pet input (the moving scan of the case)" in failed["message"]
    for path in out.rglob("*"):
        _assert_clean(f"the output name {path.relative_to(out)}", str(path.relative_to(out)))
        if path.is_file() and path.suffix in (".csv", ".json", ".html"):
            _assert_clean(path.name, path.read_text())
    assert (out / "report.html").is_file() and (out / "discovery.json").is_file()
    code, _ = _run(argv, capsys, caplog)  # a rerun resumes: the same pseudonyms, the done cases skipped
    assert code == 1
    again = {r["case_id"]: r["status"] for r in read_manifest(out / MANIFEST)}
    assert again == {r["case_id"]: ("skipped" if r["status"] == "done" else "failed") for r in rows}
