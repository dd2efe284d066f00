"""MONAI transforms: geometry carried as MetaTensor, dictionary versions equal to array versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from medfuse.errors import SpaceMismatchError
from medfuse.transforms import (
    ApplyColormap,
    ApplyColormapd,
    FuseImages,
    FuseImagesd,
    LoadVolume,
    LoadVolumed,
    MergeLuminance,
    MergeLuminanced,
    NormalizeModality,
    NormalizeModalityd,
    RegisterToReference,
    RegisterToReferenced,
    SplitLuminance,
    SplitLuminanced,
    to_metatensor,
    to_volume,
)
from medfuse.volume import Volume

AFFINE = np.array([[-1.2, 0, 0, 30.0], [0, 1.1, 0, -20.0], [0, 0, 2.0, 5.0], [0, 0, 0, 1]])


def _mt(arr, affine=AFFINE, modality="MR"):
    return to_metatensor(Volume(arr, affine, modality=modality))


def _head(seed=0, shape=(20, 22, 12)):
    rng = np.random.default_rng(seed)
    a = np.zeros(shape, np.float32)
    a[3:-3, 3:-3, 2:-2] = 100 + 20 * rng.random((shape[0] - 6, shape[1] - 6, shape[2] - 4))
    return a


def test_volume_metatensor_round_trip():
    mt = _mt(_head())
    assert isinstance(mt, MetaTensor) and mt.shape == (1, 20, 22, 12)
    np.testing.assert_allclose(mt.affine.numpy(), AFFINE)
    back = to_volume(mt)
    np.testing.assert_allclose(back.affine, AFFINE)
    assert back.modality == "MR"


def test_normalize_modality_keeps_affine_and_dict_matches():
    mt = _mt(_head())
    out = NormalizeModality()(mt)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    np.testing.assert_allclose(out.affine.numpy(), AFFINE)
    d = NormalizeModalityd(keys="img")({"img": mt})
    torch.testing.assert_close(d["img"].as_tensor(), out.as_tensor())


def test_fuse_images_on_reference_grid():
    ref, mov = NormalizeModality()(_mt(_head(0))), NormalizeModality()(_mt(_head(1), modality="PT"))
    fused = FuseImages(method="max")(ref, mov)
    np.testing.assert_allclose(fused.affine.numpy(), AFFINE)
    torch.testing.assert_close(fused.as_tensor(), torch.maximum(ref.as_tensor(), mov.as_tensor()))
    d = FuseImagesd(keys=("mri", "pet"), method="max")({"mri": ref, "pet": mov})
    torch.testing.assert_close(d["fused"].as_tensor(), fused.as_tensor())


def test_fuse_images_refuses_different_grids():
    other = AFFINE.copy()
    other[0, 3] += 7
    with pytest.raises(SpaceMismatchError, match="RegisterToReference"):
        FuseImages()(_mt(_head(0)), _mt(_head(1), affine=other))


def test_register_to_reference_resamples_onto_reference_grid():
    shifted = AFFINE.copy()
    shifted[:3, 3] += [2.4, -1.1, 2.0]
    ref = _mt(_head(0))
    mov = _mt(_head(0), affine=shifted)
    out = RegisterToReference(register=False)(mov, ref)  # pure world-coordinate resampling
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.affine.numpy(), AFFINE)
    d = RegisterToReferenced(keys="mov", ref_key="ref", register=False)({"ref": ref, "mov": mov})
    torch.testing.assert_close(d["mov"].as_tensor(), out.as_tensor())


def test_luminance_split_merge_round_trip():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 16, 12)).astype(np.float32)
    mt = MetaTensor(torch.from_numpy(rgb))
    y = SplitLuminance()(mt)
    assert y.shape == (1, 16, 12) and y.meta["medfuse_chroma"].shape == (2, 16, 12)
    back = MergeLuminance()(y)
    assert back.shape == (3, 16, 12)
    assert float((back - torch.from_numpy(rgb)).abs().max()) <= 3  # two 8-bit colour conversions
    d = SplitLuminanced(keys="pet")({"pet": mt})
    d["fused"] = d["pet"].clone()
    d = MergeLuminanced(keys="fused", chroma_key="pet")(d)
    torch.testing.assert_close(d["fused"].as_tensor(), back.as_tensor())


def test_apply_colormap_fuse_merge_equals_fuse_volumes():
    """ApplyColormapd + fusion + MergeLuminanced (the bundles' 3D PET path) give what the CLI/API gives in colour."""
    from medfuse.pipeline import FusionOptions, fuse_volumes

    mri, pet = Volume(_head(0), AFFINE, modality="MR"), Volume(_head(1) * 0.05, AFFINE, modality="PT")
    d = NormalizeModalityd(keys=["mri", "pet"])({"mri": to_metatensor(mri), "pet": to_metatensor(pet)})
    d = ApplyColormapd(keys="pet")(d)
    assert d["pet"].shape == (1, 20, 22, 12) and d["pet"].meta["medfuse_chroma"].shape == (2, 20, 22, 12)
    assert d["pet"].meta["colour"]["colormap"] == "aanlib_pet" and len(d["pet"].meta["colour"]["range"]) == 2
    assert 0 <= float(d["pet"].min()) and float(d["pet"].max()) <= 1
    np.testing.assert_allclose(d["pet"].affine.numpy(), AFFINE)
    d = FuseImagesd(keys=("mri", "pet"), method="light")(d)
    d = MergeLuminanced(keys="fused", chroma_key="pet", scale=255.0)(d)
    assert d["fused"].shape == (3, 20, 22, 12)
    expected = fuse_volumes(mri, pet, FusionOptions(method="light", register=False)).fused.rgb  # (X, Y, Z, 3) on 0..255
    got = np.moveaxis(d["fused"].numpy(), 0, -1)
    assert float(np.abs(got - expected).max()) <= 1.0  # within rounding (1/255 of the range)
    # pass-through: already split (applying twice changes nothing), MR, 2D colour slices
    assert ApplyColormap()(d["pet"]) is d["pet"]
    assert ApplyColormap()(d["mri"]) is d["mri"]
    slice_pt = MetaTensor(torch.rand(1, 16, 12), meta={"modality": "PT"})
    assert ApplyColormap()(slice_pt) is slice_pt
    assert ApplyColormap("gray")(NormalizeModality()(to_metatensor(pet))).shape == (1, 20, 22, 12)
    with pytest.raises(Exception, match="did you mean"):
        ApplyColormap("aanlib_pte")


def test_luminance_split_merge_3d():
    rgb = np.random.default_rng(1).integers(0, 256, (3, 6, 5, 4)).astype(np.float32)
    y = SplitLuminance()(MetaTensor(torch.from_numpy(rgb), affine=torch.as_tensor(AFFINE)))
    assert y.shape == (1, 6, 5, 4) and y.meta["medfuse_chroma"].shape == (2, 6, 5, 4)
    back = MergeLuminance()(y)
    assert back.shape == (3, 6, 5, 4) and float((back - torch.from_numpy(rgb)).abs().max()) <= 3
    np.testing.assert_allclose(back.affine.numpy(), AFFINE)


def test_load_volume_transform(tmp_path):
    from medfuse.io import save_volume

    save_volume(Volume(_head(), AFFINE), tmp_path / "mri.nii.gz")
    rgb = np.random.default_rng(0).integers(0, 256, (16, 12, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "pet.png")
    mt = LoadVolume()(tmp_path / "mri.nii.gz")
    np.testing.assert_allclose(mt.affine.numpy(), AFFINE, atol=1e-4)
    assert mt.meta["modality"] == "MR"
    d = LoadVolumed(keys=["mri", "pet"], keep_color=True)({"mri": tmp_path / "mri.nii.gz", "pet": tmp_path / "pet.png"})
    assert d["pet"].shape == (3, 16, 12) and d["mri"].shape == (1, 20, 22, 12)


def _signature_args(cls):
    import inspect

    return {p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")}


@pytest.mark.parametrize("array_cls, dict_cls", [
    (LoadVolume, LoadVolumed), (RegisterToReference, RegisterToReferenced), (NormalizeModality, NormalizeModalityd),
    (SplitLuminance, SplitLuminanced), (MergeLuminance, MergeLuminanced), (FuseImages, FuseImagesd),
    (ApplyColormap, ApplyColormapd),
])
def test_dictionary_transforms_take_every_array_argument(array_cls, dict_cls):
    assert _signature_args(array_cls) <= _signature_args(dict_cls)


def test_meta_kept_without_round_trip_and_track_meta_respected():
    from monai.data import set_track_meta

    ref, mov = NormalizeModality()(_mt(_head(0))), NormalizeModality()(_mt(_head(1), modality="PT"))
    ref.meta["custom"] = "kept"
    fused = FuseImages(method="max")(ref, mov)
    assert fused.meta["custom"] == "kept" and fused.meta["normalization"] == ref.meta["normalization"]
    set_track_meta(False)
    try:
        plain = FuseImages(method="max")(ref, mov)
        assert not isinstance(plain, MetaTensor) and isinstance(plain, torch.Tensor)
        assert not isinstance(NormalizeModality()(_mt(_head(0))), MetaTensor)
    finally:
        set_track_meta(True)


def test_fuse_more_than_two_images_strategies():
    imgs = [NormalizeModality()(_mt(_head(i))) for i in range(3)]
    a, b, c = (x.as_tensor() for x in imgs)
    pairs = FuseImages(method="max")(*imgs)
    torch.testing.assert_close(pairs.as_tensor(), (torch.maximum(a, b) + torch.maximum(a, c)) / 2)
    seq = FuseImagesd(keys=("a", "b", "c"), method="max", strategy="sequential")(dict(zip("abc", imgs)))["fused"]
    torch.testing.assert_close(seq.as_tensor(), torch.maximum(torch.maximum(a, b), c))
    np.testing.assert_allclose(seq.affine.numpy(), AFFINE)
    with pytest.raises(ValueError, match="did you mean"):
        FuseImages(strategy="sequentail")


@pytest.mark.real
def test_fuse_brats_four_sequences(real_dir):
    """BraTS: T1 fused with T1ce, T2 and FLAIR (one grid) by the mean of pairwise fusions, T1's geometry kept."""
    case = real_dir / "brats" / "TCGA-FG-6692"
    keys = ["t1", "t1ce", "t2", "flair"]
    data = {k: str(case / f"TCGA-FG-6692_{k}.nii.gz") for k in keys}
    d = LoadVolumed(keys=keys, modality="MR")(data)
    d = NormalizeModalityd(keys=keys)(d)
    out = FuseImagesd(keys=keys, method="mean")(d)["fused"]
    np.testing.assert_allclose(out.affine.numpy(), d["t1"].affine.numpy())
    assert out.shape == d["t1"].shape
    expected = (3 * d["t1"].as_tensor() + d["t1ce"].as_tensor() + d["t2"].as_tensor() + d["flair"].as_tensor()) / 6
    torch.testing.assert_close(out.as_tensor(), expected, atol=1e-5, rtol=0)
    assert 0 <= float(out.min()) and float(out.max()) <= 1
