"""The MRI-PET bundle on inputs medfuse never made (issue 23): a pydicom-written PET series carrying a real
scanner's complete header, and input paths that hold a patient's name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.io.dicom_fixtures import pet_tags_from_real_header, write_series

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bundles" / "mri_pet_fusion"


def _run_bundle(out_dir, reference, moving, cwd=None):
    """The README's bundle command, as a user types it."""
    env = {**os.environ, "MONAI_EVAL_EXPR": "0", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(BUNDLE / "configs" / "inference.json"),
           "--bundle_root", str(BUNDLE), "--reference", str(reference), "--moving", str(moving),
           "--output_dir", str(out_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=cwd)


def test_bundle_fuses_a_pet_dicom_series_with_a_real_ge_header(tmp_path, real_dir):
    """Issue 23 item 1: the README's command with `--moving pet_dicom/` (the SPM PET template written slice by slice
    by pydicom with a real GE PET header) used to end in default_collate's TypeError on None-valued vendor fields."""
    import nibabel as nib

    from medfuse.io import load_volume

    pet = nib.load(real_dir / "templates" / "spm_PET.nii")
    write_series(tmp_path / "pet_dicom", np.round(np.asarray(pet.dataobj)).astype(np.int32), pet.affine,
                 modality="PT", pet_tags=pet_tags_from_real_header(
                     real_dir / "pet_suv_headers" / "GE_MEDICAL_AND_BQML-instances.json"))
    t1 = real_dir / "templates" / "spm_T1.nii"
    proc = _run_bundle(tmp_path / "out", t1, str(tmp_path / "pet_dicom") + "/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "default_collate" not in proc.stderr

    fused = nib.load(tmp_path / "out" / "spm_T1_fused.nii.gz")
    np.testing.assert_allclose(fused.affine, nib.load(t1).affine, atol=1e-4)  # the MRI's grid and affine
    assert fused.shape == nib.load(t1).shape
    assert load_volume(tmp_path / "out" / "spm_T1_fused.nii.gz", modality="MR").array.max() > 0
    sidecar = json.loads((tmp_path / "out" / "spm_T1_fused.json").read_text())
    moving = sidecar["inputs"]["moving"]
    assert sidecar["registration"]["check_failures"] == []  # as the CLI's sidecar says it, not null
    assert moving["modality"] == "PT" and moving["format"] == "dicom"
    # SUV from the real header, equal to an independent library's factor for this vendor's series
    expected = json.loads((real_dir / "pet_suv_headers" / "expected_suvbw.json").read_text())
    assert moving["normalization"]["method"] == "suv"
    assert moving["normalization"]["suv_factor"] == pytest.approx(
        expected["cases"]["GE_MEDICAL_AND_BQML"]["suvbw_factor_g_per_bq_ml"], rel=1e-6)


def test_bundle_logs_and_messages_hold_no_input_path(tmp_path, real_dir):
    """Issue 23 item 8: "/.../spm_PET.nii: PET normalized by percentiles, not SUV" reached the console through the
    bundle, and MONAI's input summary echoed both paths. Inputs here sit in a folder named after a (fake) patient;
    nothing the bundle prints may hold it, and medfuse's lines name the inputs by their role."""
    import shutil

    folder = tmp_path / "Doe^John_19570101"
    folder.mkdir()
    for name in ("spm_T1.nii", "spm_PET.nii"):
        shutil.copy(real_dir / "templates" / name, folder / name)
    proc = _run_bundle(tmp_path / "out", folder / "spm_T1.nii", folder / "spm_PET.nii", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout + proc.stderr
    assert "PET normalized by percentiles, not SUV" in printed  # the line the issue saw, still there
    assert "the moving scan (--moving): PET normalized by percentiles" in printed
    assert "Doe^John" not in printed and str(tmp_path) not in printed
    sidecar = (tmp_path / "out" / "spm_T1_fused.json").read_text()
    assert "Doe^John" not in sidecar

    # a bad input: one line naming its role, not its path
    (folder / "broken.nii").write_bytes(b"not a nifti file")
    proc = _run_bundle(tmp_path / "out2", folder / "spm_T1.nii", folder / "broken.nii", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "medfuse bundle: error: the moving scan (--moving): not a readable NIfTI file" in proc.stderr
    assert "Doe^John" not in proc.stdout + proc.stderr
