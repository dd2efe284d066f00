"""The MONAI doors name inputs by their role in messages and logs, never by their path (issue 23 item 8).

Folder and file names of medical exports hold identifiers; the inputs here sit in a folder named after a
(fake) patient, which must appear in no log line or message."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest

from medfuse.errors import CorruptFileError
from medfuse.transforms import LoadVolume, LoadVolumed, NormalizeModality, NormalizeModalityd

PATIENT = "Doe^John_19570101"


def _pet(tmp_path, real_dir):
    folder = tmp_path / PATIENT
    folder.mkdir(exist_ok=True)
    img = nib.load(real_dir / "templates" / "spm_PET.nii")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine), folder / "pet.nii.gz")
    return folder / "pet.nii.gz"


def test_dictionary_door_logs_the_role(tmp_path, real_dir, caplog):
    caplog.set_level(logging.INFO, logger="medfuse")
    data = LoadVolumed(keys=["moving"], modality="PT")({"moving": str(_pet(tmp_path, real_dir))})
    NormalizeModalityd(keys=["moving"])(data)
    assert "the moving scan (--moving): PET normalized by percentiles, not SUV" in caplog.text
    assert PATIENT not in caplog.text and str(tmp_path) not in caplog.text
    assert str(tmp_path) in str(data["moving"].meta["filename_or_obj"])  # SaveImage still names the output


def test_array_door_without_a_role_logs_an_opaque_id(tmp_path, real_dir, caplog):
    caplog.set_level(logging.INFO, logger="medfuse")
    NormalizeModality()(LoadVolume(modality="PT")(_pet(tmp_path, real_dir)))
    assert "PET normalized by percentiles" in caplog.text and "input " in caplog.text
    assert PATIENT not in caplog.text and str(tmp_path) not in caplog.text


def test_a_bad_input_is_named_by_its_role(tmp_path):
    folder = tmp_path / PATIENT
    folder.mkdir()
    (folder / "t1.nii").write_bytes(b"not a nifti file")
    with pytest.raises(CorruptFileError) as err:
        LoadVolumed(keys=["reference"])({"reference": str(folder / "t1.nii")})
    assert str(err.value).startswith("the reference scan (--reference): not a readable NIfTI file")
    assert PATIENT not in str(err.value)
