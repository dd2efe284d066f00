"""Log lines of the Python API never hold the input path (issue 23 item 8; medfuse/io/naming.py, rule 1).

``load_volume(path)`` keeps the path for the caller's error messages; normalization and registration log a
volume by an opaque id instead. Inputs sit in a folder named after a (fake) patient."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np

from medfuse.intensity import normalize
from medfuse.io import load_volume
from medfuse.registration import register
from tests.io.dicom_fixtures import write_series

PATIENT = "Doe^Jane_19610203"


def test_normalize_logs_no_path(tmp_path, real_dir, caplog):
    folder = tmp_path / PATIENT
    folder.mkdir()
    img = nib.load(real_dir / "templates" / "spm_PET.nii")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine), folder / "pet.nii.gz")
    caplog.set_level(logging.DEBUG, logger="medfuse")
    normalize(load_volume(folder / "pet.nii.gz", modality="PT"))
    assert "PET normalized by percentiles, not SUV" in caplog.text
    assert PATIENT not in caplog.text and "pet.nii.gz" not in caplog.text


def test_registration_logs_no_path(tmp_path, caplog):
    """A hybrid pair (one DICOM frame of reference): the 'registration skipped' line names no path."""
    rng = np.random.default_rng(0)
    affine = np.array([[-2.0, 0, 0, 30.0], [0, -2.0, 0, 30.0], [0, 0, 3.0, -10.0], [0, 0, 0, 1.0]])
    for name, modality in (("ct", "CT"), ("pet", "PT")):
        write_series(tmp_path / PATIENT / name, rng.integers(0, 2000, (12, 12, 6)).astype(np.int32), affine,
                     modality=modality, frame_of_reference_uid="1.2.3.4.5", pet_tags={})
    caplog.set_level(logging.DEBUG, logger="medfuse")
    result = register(load_volume(tmp_path / PATIENT / "ct"), load_volume(tmp_path / PATIENT / "pet"))
    assert result.skipped and "registration skipped" in caplog.text
    assert PATIENT not in caplog.text and PATIENT not in " ".join(result.messages)
