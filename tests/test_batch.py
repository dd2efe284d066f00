"""``medfuse batch``: manifest, resume, failure recording, multi-input BraTS, Dask cluster with a killed worker."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from medfuse.batch import DONE_MARKER, MANIFEST, STAGING, read_manifest, run_batch
from medfuse.batch_cli import add_batch_parser
from tests.datasets.synthetic_trees import write_adni_series, write_brats_case, write_harvard_tree, brain_like

pytestmark = pytest.mark.filterwarnings("ignore")


def _parser():
    p = argparse.ArgumentParser(prog="medfuse")
    add_batch_parser(p.add_subparsers(dest="command"))
    return p


def _final_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and STAGING not in p.parts]


def test_batch_parser():
    args = _parser().parse_args(["batch", "--dataset", "brats", "root", "--out", "o", "--sequences", "all",
                                 "--workers", "2", "--force", "--limit", "3"])
    assert (args.dataset, args.sequences, args.workers, args.force, args.limit) == ("brats", "all", 2, True, 3)
    assert args.func.__name__ == "run_batch_command"
    with pytest.raises(SystemExit):
        _parser().parse_args(["batch", "--dataset", "adni", "r", "--out", "o", "--workers", "2",
                              "--scheduler", "tcp://x:8786"])


def test_harvard_batch_resume_failure_and_report(tmp_path, capsys):
    root = write_harvard_tree(tmp_path / "harvard", n=2)
    (root / "pet_mri" / "xg-1001" / "pet.png").write_bytes(b"not a png")  # this case must fail, the rest go on
    out = tmp_path / "out"
    args = _parser().parse_args(["batch", "--dataset", "harvard", str(root), "--out", str(out), "--workers", "0",
                                 "--method", "mean", "--no-progress"])
    assert args.func(args) == 1  # a case failed
    rows = {r["case_id"]: r for r in read_manifest(out / MANIFEST)}
    assert len(rows) == 4
    assert [rows[k]["status"] for k in sorted(rows)] == ["done", "done", "done", "failed"]
    bad = rows["pet_mri/xg-1001"]
    assert bad["message"] and "\n" not in bad["message"] and "the pet input (the moving scan of the case)" in bad["message"]
    assert "--moving" not in bad["message"] and str(root) not in bad["message"]
    good = rows["pet_mri/xg-1000"]
    assert good["method"] == "mean" and float(good["EN"]) > 0 and float(good["SSIM"]) > 0 and good["settings_hash"]
    assert (out / "pet_mri" / "xg-1000" / "fused.png").is_file() and (out / "pet_mri" / "xg-1000" / DONE_MARKER).is_file()
    assert not (out / "pet_mri" / "xg-1001").exists()  # no partial output under a final name
    report = (out / "report.html").read_text()
    assert "data:image/png;base64" in report and "pet_mri/xg-1001" in report
    assert json.loads((out / "discovery.json").read_text())["cases"] == 4
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("fused.png")}

    # rerun: finished cases skipped (outputs untouched), the failed one tried again
    summary = run_batch("harvard", root, out, method="mean", workers=0, progress=False)
    assert summary.counts == {"done": 0, "skipped": 3, "failed": 1}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("fused.png")} == mtimes
    skipped = next(r for r in summary.rows if r["case_id"] == "pet_mri/xg-1000")
    assert skipped["EN"] == good["EN"] or abs(float(skipped["EN"]) - float(good["EN"])) < 1e-9

    # fix the input, touch another (same values), simulate an interrupted run (stale staging, a final folder
    # without its batch record): only what is not finished is redone
    import shutil
    shutil.copy(root / "pet_mri" / "xg-1000" / "pet.png", root / "pet_mri" / "xg-1001" / "pet.png")
    os.utime(root / "ct_mri" / "xg-1000" / "ct.png", ns=(1, 1))
    (out / STAGING / "ct_mri__xg-1001.dead").mkdir(parents=True)
    (out / STAGING / "ct_mri__xg-1001.dead" / "fused.png").write_bytes(b"half")
    (out / "ct_mri" / "xg-1001" / DONE_MARKER).unlink()
    summary = run_batch("harvard", root, out, method="mean", workers=0, progress=False)
    status = {r["case_id"]: (r["status"], r["message"]) for r in summary.rows}
    assert status["pet_mri/xg-1001"][0] == "done" and status["ct_mri/xg-1001"][0] == "done"
    assert status["ct_mri/xg-1000"] == ("skipped", "up to date (input files touched, values unchanged)")
    assert status["pet_mri/xg-1000"][0] == "skipped"
    assert not (out / STAGING).exists() or not any((out / STAGING).iterdir())

    # a change of settings redoes everything; --force too
    assert run_batch("harvard", root, out, method="max", workers=0, progress=False, report=False).counts["done"] == 4
    assert run_batch("harvard", root, out, method="max", workers=0, progress=False, force=True,
                     report=False).counts["done"] == 4
    assert len(read_manifest(out / MANIFEST)) == 4


def test_brats_four_sequences_into_one_with_segmentation(tmp_path):
    import nibabel as nib

    root = tmp_path / "brats"
    folder = write_brats_case(root, "BraTS2021_00001", "2021", extra_files=("README",))
    out = tmp_path / "out"
    summary = run_batch("brats", root, out, sequences="all", workers=0, progress=False, metrics="EN,SD")
    row = summary.rows[0]
    assert row["status"] == "done", row["message"]
    case_out = out / "BraTS2021_00001"
    ref = nib.load(str(folder / "BraTS2021_00001_t1.nii.gz"))
    fused = nib.load(str(case_out / "fused.nii.gz"))
    assert fused.shape == ref.shape and np.allclose(fused.affine, ref.affine)
    # every sequence counts, the T1 as reference: the mean of its mean fusions with T1ce, T2 and FLAIR, voxel by
    # voxel (the inputs normalized here as the pipeline does; the fusion and the averaging in numpy). A [0, 1]
    # range check could not fail: the fusion clips.
    from medfuse.intensity import normalize
    from medfuse.io import load_volume

    sidecar = json.loads((case_out / "fused.json").read_text())
    assert sidecar["method"] == "mean"  # the pipeline's default for MR pairs
    norm = {s: normalize(load_volume(folder / f"BraTS2021_00001_{s}.nii.gz", modality="MR")).array.astype(np.float64)
            for s in ("t1", "t1ce", "t2", "flair")}
    expected = np.mean([(norm["t1"] + norm[s]) / 2 for s in ("t1ce", "t2", "flair")], axis=0)
    np.testing.assert_allclose(fused.get_fdata(), expected, atol=1e-6)
    seg_in = np.asarray(nib.load(str(folder / "BraTS2021_00001_seg.nii.gz")).dataobj)
    seg_out = nib.load(str(case_out / "seg.nii.gz"))
    assert np.issubdtype(seg_out.get_data_dtype(), np.integer) and np.array_equal(np.asarray(seg_out.dataobj), seg_in)
    sidecar = json.loads((case_out / "fused.json").read_text())
    assert sidecar["multi_input"]["inputs"] == ["t1", "t1ce", "t2", "flair"]
    assert sidecar["multi_input"]["strategy"] == "mean_of_pairs"
    assert set(sidecar["inputs"]) == {"t1", "t1ce", "t2", "flair"}
    assert float(row["EN"]) > 0
    # the resume check works for multi-input cases too; another strategy is another setting
    assert run_batch("brats", root, out, sequences="all", workers=0, progress=False, report=False,
                     metrics="none").counts["skipped"] == 1
    assert run_batch("brats", root, out, sequences="all", strategy="sequential", workers=0, progress=False,
                     report=False, metrics="none").counts["done"] == 1


def test_brats_pair_2023_naming(tmp_path):
    root = tmp_path / "brats"
    write_brats_case(root, "BraTS-GLI-00002-000", "2023")
    out = tmp_path / "out"
    summary = run_batch("brats", root, out, workers=0, progress=False, method="mean", metrics="EN")
    row = summary.rows[0]
    assert row["status"] == "done", row["message"]
    names = {p.name for p in (out / "BraTS-GLI-00002-000").iterdir()}
    assert {"fused.nii.gz", "fused.json", "fused_qc.png", "seg.nii.gz", DONE_MARKER} <= names
    assert json.loads((out / "BraTS-GLI-00002-000" / "fused.json").read_text())["registration"]["registered"] is False


def test_adni_batch_sagittal_mprage_and_pet_registered_no_patient_names(tmp_path):
    axial = brain_like((32, 36, 28), seed=1)
    mri = np.rint(axial.transpose(1, 2, 0)).astype(np.int64)  # stored sagittal: i -> A, j -> S, k -> R
    mri_affine = np.array([[0.0, 0.0, 2.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0, 0, 0, 1]])
    pet = np.rint(brain_like((24, 26, 20), seed=2, contrast=3.0) * 10).astype(np.int64)
    pet_affine = np.diag([3.0, 3.0, 3.0, 1.0])
    pet_affine[:3, 3] = [-4.0, -3.0, -2.0]
    write_adni_series(tmp_path, "002_S_0295", "Sagittal_MPRAGE", dt.date(2010, 1, 1), "I1", "MR", array=mri,
                      affine=mri_affine)
    write_adni_series(tmp_path, "002_S_0295", "ADNI_Brain_PET__Raw_FDG", dt.date(2010, 2, 1), "I2", "PT", array=pet,
                      affine=pet_affine)
    out = tmp_path / "out"
    summary = run_batch("adni", tmp_path, out, workers=0, progress=False, method="mean", metrics="EN")
    row = summary.rows[0]
    assert row["case_id"] == "002_S_0295_I2" and row["status"] == "done", row["message"]
    assert row["reg_registered"] in (True, "True") and float(row["EN"]) > 0
    sidecar = json.loads((out / "002_S_0295_I2" / "fused.json").read_text())
    assert sidecar["slice_plane"]["slice_axis"] == 1  # axial slices of a sagittal MPRAGE: stored axis j (S)
    text = (out / MANIFEST).read_text() + (out / "report.html").read_text()
    assert "Synthetic" not in text and "SYN0001" not in text  # DICOM PatientName / PatientID never copied


# ---------------------------------------------------------------------------------------- Dask


def kill_once_case(case, out, settings, *, root=None, force=False):
    """Like process_case, but the first attempt of ``ct_mri/xg-1000`` SIGKILLs its worker right after writing
    the fused image (a half-finished case in staging)."""
    from medfuse.batch import process_case

    flag = Path(out).parent / "killed-once"
    if case.case_id == "ct_mri/xg-1000" and not flag.exists():
        import medfuse.io

        real = medfuse.io.save_volume

        def save_then_die(*a, **k):
            real(*a, **k)
            flag.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

        medfuse.io.save_volume = save_then_die
    return process_case(case, out, settings, root=root, force=force)


def test_two_worker_cluster_survives_a_killed_worker(tmp_path):
    pytest.importorskip("dask.distributed")
    root = write_harvard_tree(tmp_path / "harvard", n=2)
    out = tmp_path / "out"
    summary = run_batch("harvard", root, out, method="mean", workers=2, progress=False, metrics="EN",
                        case_function=kill_once_case)
    assert (tmp_path / "killed-once").is_file()  # a worker really died mid-case
    rows = read_manifest(out / MANIFEST)
    assert sorted(r["case_id"] for r in rows) == sorted(set(r["case_id"] for r in rows)) and len(rows) == 4
    assert all(r["status"] == "done" for r in rows), [(r["case_id"], r["message"]) for r in rows]
    victim = out / "ct_mri" / "xg-1000"
    assert {p.name for p in victim.iterdir()} == {"fused.png", "fused.json", "fused_qc.png", DONE_MARKER}
    assert not [p for p in _final_files(out) if ".part" in p.name]
    # the next run cleans the killed attempt's staging folder and redoes nothing
    again = run_batch("harvard", root, out, method="mean", workers=0, progress=False, metrics="EN", report=False)
    assert again.counts["skipped"] == 4 and not (out / STAGING).exists()


# ---------------------------------------------------------------------------------------- real data


@pytest.mark.harvard
def test_harvard_real_subset(harvard_dir, tmp_path):
    summary = run_batch("harvard", harvard_dir, tmp_path / "out", workers=0, progress=False, limit=3, method="mean")
    assert summary.counts["done"] == 3


@pytest.mark.real
@pytest.mark.slow
def test_brats_real_case_batch(real_dir, tmp_path):
    summary = run_batch("brats", real_dir / "brats", tmp_path / "out", workers=0, progress=False, method="mean")
    assert summary.counts["done"] == 1, summary.rows[0]["message"]
