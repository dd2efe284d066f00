"""The MONAI transforms carry a PET/SPECT's uptake to the hot-region floor (medfuse.hotspots)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medfuse.hotspots import HOT_QUANTILES, hot_regions, keep_hot_regions, uptake_from_colours
from medfuse.transforms import (
    ApplyColormapd,
    FuseImagesd,
    KeepHotRegions,
    KeepHotRegionsd,
    MergeLuminanced,
    NormalizeModalityd,
    SplitLuminance,
    to_metatensor,
)
from medfuse.transforms.array import UPTAKE_META_KEY
from medfuse.volume import Volume

AFFINE = np.diag([1.1, 1.2, 2.0, 1.0])


def _pair():
    """An MRI ball with texture, and a PET with a hot focus where the MRI is dark."""
    idx = np.indices((24, 26, 14)).astype(np.float32)
    r = np.sqrt(((idx - np.array([12, 13, 7], np.float32)[:, None, None, None]) ** 2).sum(0))
    rng = np.random.default_rng(0)
    mri = np.where(r < 10, 300 + 150 * np.sin(idx[0] / 1.5) + 10 * rng.standard_normal(r.shape), 0)
    mri[14:18, 10:14, 5:9] = 40.0  # dark on the MRI
    pet = np.where(r < 10, 3000.0, 0) + 200 * rng.random(r.shape)
    pet[14:18, 10:14, 5:9] = 9000.0  # hot on the PET
    return Volume(mri.astype(np.float32), AFFINE, modality="MR"), Volume(pet.astype(np.float32), AFFINE, modality="PT")


def test_bundle_path_floors_as_the_cli_does():
    """ApplyColormapd records the uptake; the network's fusion, KeepHotRegionsd and MergeLuminanced (the bundles'
    postprocessing) give the CLI's colour volume, with the floor and without it."""
    from medfuse.pipeline import FusionOptions, fuse_volumes

    mri, pet = _pair()
    d = NormalizeModalityd(keys=["mri", "pet"])({"mri": to_metatensor(mri), "pet": to_metatensor(pet)})
    d = ApplyColormapd(keys="pet")(d)
    np.testing.assert_array_equal(np.asarray(d["pet"].meta[UPTAKE_META_KEY]), NormalizeModalityd(keys=["pet"])(
        {"pet": to_metatensor(pet)})["pet"].numpy()[0])
    d = FuseImagesd(keys=("mri", "pet"), method="light", keep_hot=False)(d)
    raw = d["fused"].clone()
    plain = MergeLuminanced(keys="fused", chroma_key="pet", scale=255.0)(dict(d))["fused"]
    d = KeepHotRegionsd(keys="fused", moving_key="pet", pair="pet_mri")(d)
    kept = MergeLuminanced(keys="fused", chroma_key="pet", scale=255.0)(d)["fused"]
    for keep_hot, out in ((True, kept), (False, plain)):
        cli = fuse_volumes(mri, pet, FusionOptions(method="light", register=False, keep_hot=keep_hot)).fused.rgb
        assert float(np.abs(np.moveaxis(out.numpy(), 0, -1) - cli).max()) <= 1.0
    assert float((d["fused"] - raw).max()) > 0.05  # the floor acted on this pair
    assert float((d["fused"] - raw).min()) >= 0.0  # and never lowered a value
    np.testing.assert_allclose(d["fused"].affine.numpy(), AFFINE)
    # FuseImagesd floors by itself by default: the same numbers
    d2 = NormalizeModalityd(keys=["mri", "pet"])({"mri": to_metatensor(mri), "pet": to_metatensor(pet)})
    d2 = FuseImagesd(keys=("mri", "pet"), method="light")(ApplyColormapd(keys="pet")(d2))
    torch.testing.assert_close(d2["fused"].as_tensor(), d["fused"].as_tensor())


def test_keep_hot_regions_passes_other_pairs_and_max():
    fused = MetaTensor(torch.full((1, 8, 8), 0.1))
    moving = MetaTensor(torch.linspace(0, 1, 64).reshape(1, 8, 8))
    assert torch.equal(KeepHotRegions(pair="ct_mri")(fused, moving).as_tensor(), fused.as_tensor())
    assert torch.equal(KeepHotRegions(pair="pet_mri", method="max")(fused, moving).as_tensor(), fused.as_tensor())
    out = KeepHotRegions(pair="pet_mri")(fused, moving)  # grey moving: its values are the uptake
    b = moving.numpy()[0]
    expected = keep_hot_regions(np.full((8, 8), 0.1, np.float32), b, hot_regions(b))
    np.testing.assert_array_equal(out.numpy()[0], expected)


def test_split_luminance_records_a_real_slices_uptake(harvard_dir):
    """A real AANLIB SPECT slice (data we did not make): the uptake SplitLuminance records is the colour map's."""
    from medfuse.io import load_volume

    rgb = load_volume(harvard_dir / "spect_mri" / "cdd-spect-77" / "spect.png", modality="NM").rgb
    y = SplitLuminance()(MetaTensor(torch.from_numpy(np.moveaxis(rgb, -1, 0).copy())))
    np.testing.assert_array_equal(np.asarray(y.meta[UPTAKE_META_KEY]), uptake_from_colours(rgb).uptake)
    u = np.asarray(y.meta[UPTAKE_META_KEY])
    assert np.quantile(u[u > 0.05 * u.max()], HOT_QUANTILES[1]) > 0.5
    noise = np.random.default_rng(0).integers(0, 256, (3, 16, 16)).astype(np.float32)
    assert UPTAKE_META_KEY not in SplitLuminance()(MetaTensor(torch.from_numpy(noise))).meta  # no known map
