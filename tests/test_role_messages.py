"""Messages that name an input by its role read as sentences (issue 23, item 11).

Through the pipeline an input is named ``the moving scan (--moving)``; a message written around a file
name ("... with the 3D {name}") then read "a 2D image cannot be fused with the 3D the reference scan
(--reference)". Each message here is produced through the pipeline on inputs written with nibabel/Pillow
and checked for the role named once and no article glued to another.
"""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest

from medfuse.volume import Volume

#: what a label substituted into a sentence leaves behind when the sentence expected a file name
GLITCH = re.compile(r"\b(the|a|an) (\d+D )?the\b|\bthe (reference|moving) the (reference|moving)\b|"
                    r"(the (moving|reference) scan \(--\w+\)).*\b\2 scan is\b")


def _clean(message: str) -> None:
    assert not GLITCH.search(message), message
    for role in ("reference", "moving"):
        assert message.count(f"the {role} scan") <= 1, message


@pytest.fixture
def files(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    volume = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image((rng.random((20, 20, 12)) * 100).astype(np.float32), np.diag([2.0, 2, 2, 1])), volume)
    Image.fromarray((rng.random((32, 32)) * 255).astype(np.uint8)).save(tmp_path / "ct.png")
    Image.fromarray((rng.random((30, 32)) * 255).astype(np.uint8)).save(tmp_path / "mr.png")
    return tmp_path


def _error(reference, moving, out):
    from medfuse.errors import MedfuseError
    from medfuse.pipeline import FusionOptions, InputOptions, fuse_files

    with pytest.raises(MedfuseError) as info:
        fuse_files(reference, moving, out, FusionOptions(method="mean", reference=InputOptions(modality="MR"), moving=InputOptions(modality="CT")))
    return str(info.value)


def test_a_2d_and_a_3d_input_are_named_once_each(files):
    message = _error(files / "t1.nii.gz", files / "ct.png", files / "out.nii.gz")
    _clean(message)
    assert message.startswith("the moving scan is 2D and the reference scan is 3D")


def test_slices_of_different_sizes_name_the_reference_once(files):
    message = _error(files / "mr.png", files / "ct.png", files / "out.png")
    _clean(message)
    assert "(32, 32)" in message and "(30, 32)" in message


@pytest.mark.parametrize("role", ["moving", "reference"])
def test_register_names_a_blank_labelled_scan_once(role):
    from medfuse.errors import RegistrationError
    from medfuse.registration import register

    good = Volume(np.random.default_rng(1).random((16, 16, 16)).astype(np.float32), np.diag([3.0, 3, 3, 1]), "MR",
                  source="the reference scan (--reference)")
    blank = Volume(np.zeros((16, 16, 16), np.float32), np.diag([3.0, 3, 3, 1]), "CT", source=f"the {role} scan (--{role})")
    pair = (good, blank) if role == "moving" else (blank, good)
    if role == "reference":
        pair[1].source = "the moving scan (--moving)"
    with pytest.raises(RegistrationError) as info:
        register(*pair)
    _clean(str(info.value))
    assert str(info.value).startswith(f"the {role} scan (--{role}) is blank")


def test_register_api_without_labels_still_says_which_scan():
    from medfuse.errors import RegistrationError
    from medfuse.registration import register

    good = Volume(np.random.default_rng(1).random((16, 16, 16)).astype(np.float32), np.diag([3.0, 3, 3, 1]), "MR")
    blank = Volume(np.zeros((16, 16, 16), np.float32), np.diag([3.0, 3, 3, 1]), "CT")
    with pytest.raises(RegistrationError, match="CT: the moving scan is blank"):
        register(good, blank)
