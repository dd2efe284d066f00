"""One batch runner behind two doors (``medfuse batch``, ``medfuse fuse-dir``); multi-input cases through the
pipeline's steps (pair check included) with the pipeline's provenance; messages in each door's words."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from medfuse.batch import DONE_MARKER, MANIFEST, BatchSettings, process_case, read_manifest, run_batch
from medfuse.batch_cli import option_words
from medfuse.cli import build_parser, main
from medfuse.datasets.base import Case
from medfuse.errors import OptionError
from tests.datasets.synthetic_trees import brain_like, write_brats_case, write_harvard_tree

pytestmark = pytest.mark.filterwarnings("ignore")


def _fuse_flags() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {opt for action in sub.choices["fuse"]._actions for opt in action.option_strings}


# ---------------------------------------------------------------------------------------- fuse-dir


def test_fuse_dir_redoes_pairs_fused_with_other_settings(tmp_path, capsys):
    """fuse-dir skipped any pair whose fused.png existed, so a rerun with another method kept the old method's
    images under the new run; now it is the batch runner: a change of method redoes the pairs, an unchanged
    rerun skips them."""
    data = write_harvard_tree(tmp_path / "data", n=1)
    out = tmp_path / "out"
    assert main(["fuse-dir", str(data), "--out", str(out), "--method", "max"]) == 0
    pet = out / "pet_mri" / "xg-1000" / "fused.png"
    max_bytes = pet.read_bytes()
    assert main(["fuse-dir", str(data), "--out", str(out), "--method", "mean"]) == 0
    assert "fused 2, skipped 0" in capsys.readouterr().out
    assert pet.read_bytes() != max_bytes
    assert json.loads((out / "pet_mri" / "xg-1000" / "fused.json").read_text())["method"] == "mean"
    rows = list(csv.DictReader((out / "fuse-dir-log.csv").open()))
    assert [(r["key"], r["status"], r["method"]) for r in rows[-2:]] == [("ct_mri/xg-1000", "ok", "mean"),
                                                                          ("pet_mri/xg-1000", "ok", "mean")]
    assert main(["fuse-dir", str(data), "--out", str(out), "--method", "mean"]) == 0
    assert "fused 0, skipped 2" in capsys.readouterr().out
    # the batch's record of each pair: manifest row, sidecar, batch.json; no QC picture (fuse-dir never wrote one)
    assert {r["case_id"]: r["status"] for r in read_manifest(out / MANIFEST)} == {"ct_mri/xg-1000": "skipped",
                                                                                 "pet_mri/xg-1000": "skipped"}
    assert {p.name for p in pet.parent.iterdir()} == {"fused.png", "fused.json", DONE_MARKER}


# ---------------------------------------------------------------------------------------- multi-input cases


def _dicom_case(tmp_path: Path, patient_ids: tuple[str, str, str]) -> Case:
    """Three co-registered MR series written with pydicom, one PatientID each."""
    from tests.io.dicom_fixtures import write_series

    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    inputs = {}
    for k, (name, patient) in enumerate(zip(("t1", "t2", "flair"), patient_ids)):
        array = np.rint(brain_like((20, 22, 16), seed=k, contrast=1.0 - 0.4 * k) * 5).astype(np.int64)
        write_series(tmp_path / name, array, affine, modality="MR", tags={"PatientID": patient},
                     series_description=name)
        inputs[name] = tmp_path / name
    return Case("case-000000000001", inputs, {name: "MR" for name in inputs})


def test_three_inputs_of_two_patients_are_refused_by_the_pair_check(tmp_path):
    """_fuse_many read, normalized and fused the inputs without the pair check: a FLAIR of another patient was
    fused into the case. Now each (reference, other input) pair is checked as medfuse fuse checks it."""
    case = _dicom_case(tmp_path / "in", ("PAT-A-0001", "PAT-A-0001", "PAT-B-0002"))
    settings = BatchSettings("brats", "mean", metrics=(), qc=False, name_option=option_words)
    row = process_case(case, tmp_path / "out", settings, root=tmp_path / "in")
    assert row["status"] == "failed"
    message = row["message"]
    assert message.startswith("the flair input (the moving scan of the case): PairMismatchError")
    assert "different patients" in message and "PAT-" not in message and str(tmp_path) not in message
    assert "`medfuse fuse --accept-mismatch` (on this case alone)" in message
    assert "--accept-mismatch" in _fuse_flags()  # every flag a message suggests exists
    assert not (tmp_path / "out" / case.case_id).exists()
    # one patient: fused, and the sidecar records each pair's check among the steps
    case = _dicom_case(tmp_path / "same", ("PAT-A-0001",) * 3)
    row = process_case(case, tmp_path / "out2", settings, root=tmp_path / "same")
    assert row["status"] == "done", row["message"]
    sidecar = json.loads((tmp_path / "out2" / case.case_id / "fused.json").read_text())
    checks = [s for s in sidecar["steps"] if s["step"] == "pair_check"]
    assert [s["input"] for s in checks] == ["t2", "flair"] and all(s["same_patient"] is True for s in checks)
    assert sidecar["pair_check"]["flair"]["same_patient"] is True and sidecar["command"] == "batch"


def test_multi_input_sidecar_names_the_weights_by_sha256(tmp_path):
    """The multi-input sidecar recorded the checkpoint by file name only; the CLI's has its SHA-256."""
    pytest.importorskip("torch")
    from medfuse.weights import __file__ as weights_init

    checkpoint = Path(weights_init).parent / "ct_mri_light.pt"
    root = tmp_path / "brats"
    write_brats_case(root, "BraTS2021_00003", "2021", sequences=("t1", "t2", "flair"), seg=False)
    summary = run_batch("brats", root, tmp_path / "out", sequences="t1,t2,flair", method="light",
                        weights=checkpoint, workers=0, progress=False, report=False, metrics="none")
    assert summary.counts["done"] == 1, summary.rows[0]["message"]
    sidecar = json.loads((tmp_path / "out" / "BraTS2021_00003" / "fused.json").read_text())
    assert sidecar["weights"] == {"file": "ct_mri_light.pt",
                                  "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()}
    assert [s["step"] for s in sidecar["steps"]][-2:] == ["fuse", "write"]


# ---------------------------------------------------------------------------------------- words


def test_batch_options_refused_in_each_doors_words(tmp_path, capsys):
    """run_batch named its options by the command line's flags (and asked for --<role>-modality, which batch
    does not have); now the API says the keyword and each door its flag."""
    root = write_harvard_tree(tmp_path / "h", n=1)
    with pytest.raises(OptionError) as info:
        run_batch("harvard", root, tmp_path / "out", workers=-1, progress=False)
    assert info.value.option == "workers" and "the workers option is -1" in str(info.value)
    assert "--" not in str(info.value)
    with pytest.raises(OptionError, match="the sequences option does not apply to the harvard data set"):
        run_batch("harvard", root, tmp_path / "out", sequences="all", workers=0, progress=False)
    code = main(["batch", "--dataset", "harvard", str(root), "--out", str(tmp_path / "out"), "--workers", "-1"])
    assert code == 2 and "--workers is -1" in capsys.readouterr().err
    code = main(["batch", "--dataset", "brats", str(root), "--out", str(tmp_path / "out"), "--sequences", "t1ce"])
    assert code == 2 and "--sequences 't1ce': give at least two sequences" in capsys.readouterr().err


def test_option_words_name_only_flags_that_exist():
    batch = {opt for action in next(a for a in build_parser()._actions if a.dest == "command").choices["batch"]._actions
             for opt in action.option_strings}
    for option in ("workers", "method", "weights", "sequences", "window_days", "mri_series", "strategy"):
        assert option_words(option) in batch
    fuse = _fuse_flags()
    for option, role, flag in (("accept_registration", None, "--accept-registration"),
                               ("series", "moving", "--moving-series"), ("modality", "reference",
                                                                          "--reference-modality")):
        assert option_words(option, role) == f"`medfuse fuse {flag}` (on this case alone)" and flag in fuse


def test_fusion_options_refused_before_any_case(tmp_path, capsys):
    """Weights with a classical method failed every pair one by one (fuse-dir exit 1, one log row each); now the
    batch checks them as FusionOptions does, once, before any work: one line naming the flag, exit 2."""
    data = write_harvard_tree(tmp_path / "data", n=1)
    weights = tmp_path / "net.pt"
    weights.write_bytes(b"not used")
    out = tmp_path / "out"
    assert main(["fuse-dir", str(data), "--out", str(out), "--method", "max", "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert "classical method; drop --weights" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    code = main(["batch", "--dataset", "harvard", str(data), "--out", str(out), "--method", "mean", "--weights",
                 str(weights), "--workers", "0"])
    assert code == 2 and "drop --weights" in capsys.readouterr().err and not out.exists()
