"""No option of `medfuse fuse` is ignored silently (issue 23, item 4 and its sweep).

- ``--transform`` writes the identity (an ITK file SimpleITK reads) when registration is skipped, and the
  sidecar says why it is the identity;
- ``--register`` registers even when the inputs share a DICOM frame of reference (its help says so);
- ``--registration``, ``--window``, ``--colormap`` that have no effect on a pair are warned about and listed
  in the sidecar's ``ignored_options``; ``--weights`` with a classical method is refused.

Inputs: volumes written with nibabel (one grid, a known world), PNG slices written with Pillow, and the
small registration phantom.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest


@pytest.fixture
def same_grid_pair(tmp_path):
    """An MR and a CT on one 3 mm grid: a bright sphere, the CT in HU."""
    idx = np.indices((24, 24, 20)).astype(np.float32)
    r = np.sqrt(((idx - np.array([12, 12, 10])[:, None, None, None]) ** 2).sum(0))
    mr = np.where(r < 8, 100.0 + 10 * np.cos(idx[0]), 5.0).astype(np.float32)
    ct = np.where(r < 8, 40.0, -1000.0).astype(np.float32)
    affine = np.array([[-3.0, 0, 0, 30], [0, 3.0, 0, -40], [0, 0, 3.0, -30], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(mr, affine), tmp_path / "mr.nii.gz")
    nib.save(nib.Nifti1Image(ct, affine), tmp_path / "ct.nii.gz")
    return tmp_path / "mr.nii.gz", tmp_path / "ct.nii.gz"


def _fuse(pair, tmp_path, **kwargs):
    from medfuse.pipeline import FusionOptions, InputOptions, fuse_files

    kwargs.setdefault("qc", False)
    options = FusionOptions(method="mean", reference=InputOptions(modality="MR"), moving=InputOptions(modality="CT"),
                            **kwargs)
    written = fuse_files(*pair, tmp_path / "out" / "fused.nii.gz", options)
    return written, json.loads(written["sidecar"].read_text())


@pytest.mark.parametrize("register", [None, False])
def test_transform_is_the_identity_when_not_registered(same_grid_pair, tmp_path, register):
    import SimpleITK as sitk

    written, record = _fuse(same_grid_pair, tmp_path, transform_out=tmp_path / "out" / "t.tfm", register=register)
    assert written["transform"].is_file()
    tx = sitk.ReadTransform(str(written["transform"]))
    for point in [(0.0, 0.0, 0.0), (12.5, -40.0, 7.0)]:
        np.testing.assert_allclose(tx.TransformPoint(point), point)
    assert record["registration"]["transform_file"] == "t.tfm"
    assert record["registration"]["transform_note"].startswith("identity")
    assert record["outputs"]["transform"] == "t.tfm"


def test_transform_of_2d_slices_is_a_2d_identity(tmp_path):
    import SimpleITK as sitk
    from PIL import Image

    from medfuse.pipeline import FusionOptions, InputOptions, fuse_files

    rng = np.random.default_rng(0)
    for name in ("mr.png", "ct.png"):
        Image.fromarray((rng.random((32, 32)) * 255).astype(np.uint8)).save(tmp_path / name)
    written = fuse_files(tmp_path / "mr.png", tmp_path / "ct.png", tmp_path / "fused.png", FusionOptions(method="mean", transform_out=tmp_path / "t.tfm", qc=False, reference=InputOptions(modality="MR"), moving=InputOptions(modality="CT")))
    tx = sitk.ReadTransform(str(written["transform"]))
    assert tx.GetDimension() == 2
    np.testing.assert_allclose(tx.TransformPoint((3.0, 4.0)), (3.0, 4.0))
    record = json.loads(written["sidecar"].read_text())
    assert "2D slices" in record["registration"]["transform_note"]


def test_registration_type_without_registration_is_reported(same_grid_pair, tmp_path, caplog):
    _, record = _fuse(same_grid_pair, tmp_path, registration_type="affine")
    assert any(note.startswith("registration_type affine: not registered") for note in record["ignored_options"])
    assert "registration_type affine" in caplog.text


def test_colormap_for_a_grey_pair_is_reported(same_grid_pair, tmp_path):
    _, record = _fuse(same_grid_pair, tmp_path, colormap="hot_iron")
    assert any(note.startswith("colormap hot_iron") for note in record["ignored_options"])
    assert "colormap" not in record.get("colour", {}) if record.get("colour") else True


def test_a_used_option_is_not_reported(same_grid_pair, tmp_path):
    _, record = _fuse(same_grid_pair, tmp_path, window="brain")
    assert record["ignored_options"] == []


def test_weights_with_a_classical_method_are_refused(same_grid_pair, tmp_path):
    from medfuse.errors import OptionError

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not used")
    with pytest.raises(OptionError, match="weights are for networks") as info:
        _fuse(same_grid_pair, tmp_path, weights=weights)
    assert info.value.option == "weights"  # the command line names --weights (test_cli_inputs)


def test_register_registers_a_pair_sharing_a_dicom_frame_of_reference():
    from medfuse.phantom import make_case
    from medfuse.pipeline import FusionOptions, InputOptions, fuse_volumes

    case = make_case("ct", seed=2, mri_spacing=3.0, moving_spacing=(3.0, 3.0, 4.0))
    for volume in (case.mri, case.moving):
        volume.meta["frame_of_reference"] = "0123456789abcdef"  # what the DICOM reader records for one frame
    skipped = fuse_volumes(case.mri, case.moving, FusionOptions(method="mean"))
    assert not skipped.alignment["registered"]
    forced = fuse_volumes(case.mri, case.moving, FusionOptions(method="mean", register=True, accept_registration=True))
    assert forced.alignment["registered"] and not forced.alignment["skipped"]
