"""3D PET/SPECT fusion in colour; quantitative output; RGB files read back with their geometry."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medfuse.io import load_volume, save_volume
from medfuse.pipeline import FusionOptions, InputOptions, fuse_files, fuse_volumes
from medfuse.volume import Volume

AFFINE = np.array([[0.0, -2.0, 0.0, 30.0], [0.0, 0.0, 2.5, -20.0], [1.8, 0.0, 0.0, -25.0], [0.0, 0.0, 0.0, 1.0]])
SHAPE = (28, 30, 24)


def _pair(modality: str = "PT") -> tuple[Volume, Volume]:
    """An MRI-like ball with texture and a second scan on the same grid with a hot spot (or CT bone)."""
    idx = np.indices(SHAPE).astype(np.float32)
    c = np.array(SHAPE, dtype=np.float32)[:, None, None, None] / 2
    r = np.sqrt(((idx - c) ** 2).sum(axis=0))
    head = r < 11
    rng = np.random.default_rng(1)
    mri = np.where(head, 400 + 200 * np.sin(idx[0] / 2) + 20 * rng.standard_normal(SHAPE), 0).astype(np.float32)
    if modality == "CT":
        mov = np.where(head, 30.0, -1000.0) + np.where((r > 9) & head, 1200.0, 0.0)
    else:
        mov = np.where(head, 5000.0, 0.0) + 500 * rng.random(SHAPE)
        mov[20:23, 14:17, 10:13] = 40000.0  # the hot lesion
    return Volume(mri, AFFINE, modality="MR"), Volume(mov.astype(np.float32), AFFINE, modality=modality)


@pytest.mark.parametrize("modality,colormap", [("PT", "aanlib_pet"), ("NM", "aanlib_pet")])
def test_pet_spect_volumes_fuse_in_colour(modality, colormap):
    mri, mov = _pair(modality)
    result = fuse_volumes(mri, mov, FusionOptions(method="mean"))
    fused = result.fused
    assert fused.rgb is not None and fused.rgb.shape == (*SHAPE, 3)
    np.testing.assert_array_equal(fused.affine, mri.affine)
    # the fused luminance keeps the MRI's texture inside the head (lesion aside): measured r = 0.999 (fusion clips to
    # [0, 1] by construction, so a range check here could not fail)
    head = mri.array > 0
    head[20:23, 14:17, 10:13] = False
    assert np.corrcoef(fused.array[head], mri.array[head])[0, 1] > 0.95
    assert result.colour["colormap"] == colormap and len(result.colour["range"]) == 2
    # the lesion keeps a colour of its own in the fused volume (not the MRI's grey), at least as bright as without
    # the hot-region floor. Its distance to the tissue's colour is no test here: the percentile normalization puts
    # the tissue at 0.99 of the lesion's uptake, so the PET alone draws both in nearly the same magenta; without the
    # floor the mean fusion darkened the lesion (216, 0, 216) against the tissue (255, 44, 244), with it the lesion
    # is the PET's own (253, 0, 253)
    lesion, tissue = fused.rgb[21, 15, 11], fused.rgb[14, 15, 6]
    assert lesion.max() - lesion.min() > 200
    plain = fuse_volumes(mri, mov, FusionOptions(method="mean", keep_hot=False)).fused
    assert np.linalg.norm(plain.rgb[21, 15, 11] - tissue) > 60
    assert fused.array[21, 15, 11] >= plain.array[21, 15, 11]
    # quantitative layer: the moving scan in its own values on the reference grid
    q = result.quantitative
    np.testing.assert_array_equal(q.affine, mri.affine)
    np.testing.assert_allclose(q.array, mov.array)


@pytest.mark.parametrize("modality", ["PT", "NM"])
def test_hot_spot_over_a_dark_mri_region_stays_visible_with_the_default_network(modality):
    """The phantom's lesion is dark on the MRI and hot on PET/SPECT: the fused image must still show it in colour."""
    mri, mov = _pair(modality)
    mri.array[19:24, 13:18, 9:14] = 150.0  # hypointense on the MRI where the tracer is hot
    fused = fuse_volumes(mri, mov).fused.rgb  # default method: the shipped network of the pair
    lesion, tissue = fused[21, 15, 11], fused[14, 15, 6]
    assert lesion.max() - lesion.min() > 80, lesion  # strongly coloured, not grey
    assert np.linalg.norm(lesion - tissue) > 60


def test_ct_and_gray_colormap_stay_gray():
    mri, ct = _pair("CT")
    result = fuse_volumes(mri, ct, FusionOptions(method="mean"))
    assert result.fused.rgb is None and result.colour is None
    assert result.quantitative.meta["units"] == "HU"
    mri, pet = _pair("PT")
    assert fuse_volumes(mri, pet, FusionOptions(method="mean", colormap="gray")).fused.rgb is None
    assert fuse_volumes(mri, pet, FusionOptions(method="mean", colormap="hot_iron")).colour["colormap"] == "hot_iron"


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_fuse_files_writes_rgb_and_quantitative(tmp_path, ext):
    mri, pet = _pair("PT")
    save_volume(mri, tmp_path / "mri.nii.gz")
    save_volume(pet, tmp_path / "pet.nii.gz")
    out = tmp_path / f"fused{ext}"
    written = fuse_files(tmp_path / "mri.nii.gz", tmp_path / "pet.nii.gz", out, FusionOptions(method="mean", qc=False, colormap="rainbow", reference=InputOptions(modality="MR"), moving=InputOptions(modality="PT")))
    assert written["quantitative"] == tmp_path / f"fused_moving{ext}"
    # SimpleITK sees a 3-component uint8 image with the reference geometry (LPS)
    image = sitk.ReadImage(str(out))
    assert image.GetNumberOfComponentsPerPixel() == 3 and image.GetPixelID() == sitk.sitkVectorUInt8
    ref = sitk.ReadImage(str(tmp_path / "mri.nii.gz"))
    np.testing.assert_allclose(image.GetOrigin(), ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), ref.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(image.GetDirection(), ref.GetDirection(), atol=1e-5)
    back = load_volume(out, modality="PT")
    assert back.rgb is not None and back.shape == SHAPE
    np.testing.assert_allclose(back.affine, mri.affine, atol=1e-4)
    arr = sitk.GetArrayFromImage(image).transpose(2, 1, 0, 3)
    np.testing.assert_array_equal(arr, back.rgb.astype(np.uint8))
    if ext == ".nii.gz":
        img = nib.load(str(out))
        assert int(img.header["datatype"]) == 128  # NIfTI-1 DT_RGB24
        data = np.asanyarray(img.dataobj)
        assert data.dtype.names == ("R", "G", "B")
        np.testing.assert_array_equal(data["R"], back.rgb[..., 0].astype(np.uint8))
        np.testing.assert_allclose(img.affine, mri.affine, atol=1e-5)
    quant = load_volume(written["quantitative"], modality="PT")
    np.testing.assert_allclose(quant.affine, mri.affine, atol=1e-4)
    np.testing.assert_allclose(quant.array, pet.array, rtol=1e-6)
    record = json.loads(written["sidecar"].read_text())
    assert record["fused_image"]["kind"] == "rgb"
    assert record["colour"]["colormap"] == "rainbow" and len(record["colour"]["range"]) == 2
    assert record["quantitative"]["file"] == f"fused_moving{ext}" and record["quantitative"]["units"]
    assert record["outputs"]["quantitative"] == f"fused_moving{ext}"


def test_quantitative_refused_before_work_and_can_be_turned_off(tmp_path):
    from medfuse.errors import OutputExistsError

    mri, pet = _pair("PT")
    save_volume(mri, tmp_path / "mri.nii.gz")
    save_volume(pet, tmp_path / "pet.nii.gz")
    (tmp_path / "fused_moving.nii.gz").write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        fuse_files(tmp_path / "mri.nii.gz", tmp_path / "pet.nii.gz", tmp_path / "fused.nii.gz", FusionOptions(method="mean", qc=False, reference=InputOptions(modality="MR"), moving=InputOptions(modality="PT")))
    assert not (tmp_path / "fused.nii.gz").exists()
    written = fuse_files(tmp_path / "mri.nii.gz", tmp_path / "pet.nii.gz", tmp_path / "fused.nii.gz", FusionOptions(method="mean", qc=False, quantitative=False, reference=InputOptions(modality="MR"), moving=InputOptions(modality="PT")))
    assert "quantitative" not in written
    assert (tmp_path / "fused_moving.nii.gz").read_bytes() == b"old"


def test_cli_colormap_and_no_quantitative(tmp_path, capsys):
    from medfuse.cli import main

    mri, pet = _pair("NM")
    save_volume(mri, tmp_path / "mri.nii.gz")
    save_volume(pet, tmp_path / "spect.nii.gz")
    args = ["fuse", "--reference", str(tmp_path / "mri.nii.gz"), "--moving", str(tmp_path / "spect.nii.gz"),
            "--reference-modality", "MR", "--moving-modality", "NM", "--method", "mean", "--no-qc"]
    assert main([*args, "--out", str(tmp_path / "a.nii.gz"), "--colormap", "viridiss"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "a.nii.gz"), "--colormap", "viridis", "--no-quantitative"]) == 0
    assert not (tmp_path / "a_moving.nii.gz").exists()
    assert json.loads((tmp_path / "a.json").read_text())["colour"]["colormap"] == "viridis"
