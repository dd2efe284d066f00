"""Colour maps and the YCbCr luminance/chroma path shared by 2D slices and 3D volumes."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.color import (
    COLORMAPS,
    apply_colormap,
    colormap_lut,
    colormap_name,
    default_colormap,
    fuse_in_colour,
    merge_luminance,
    split_luminance,
)
from medfuse.errors import OptionError


@pytest.mark.parametrize("name", sorted(COLORMAPS))
def test_colormap_tables(name):
    lut = colormap_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    np.testing.assert_array_equal(apply_colormap(np.array([0.0, 1.0]), name), lut[[0, -1]].astype(np.float32))
    # values outside [0, 1] are clipped, NaN is 0
    np.testing.assert_array_equal(apply_colormap(np.array([-3.0, 7.0, np.nan]), name), lut[[0, -1, 0]])


def test_colormap_ends():
    assert tuple(colormap_lut("aanlib_pet")[-1]) == (255, 0, 255)
    assert tuple(colormap_lut("hot_iron")[-1]) == (255, 255, 255)
    assert tuple(colormap_lut("hot_yellow")[-1]) == (255, 255, 0)  # the QC overlay: hottest never white
    assert tuple(colormap_lut("viridis")[0]) == (0x44, 0x01, 0x54)
    assert tuple(colormap_lut("viridis")[-1]) == (0xFD, 0xE7, 0x25)


def test_colormap_names():
    assert colormap_name("Hot-Iron") == "hot_iron"
    assert colormap_name("pet") == "aanlib_pet"
    with pytest.raises(OptionError, match="did you mean"):
        colormap_name("viridiss")
    assert default_colormap("PT") == "aanlib_pet" and default_colormap("NM") == "aanlib_pet"
    assert default_colormap("CT") is None and default_colormap("MR") is None


def test_aanlib_pet_table_matches_the_training_pngs(harvard_dir):
    """Every colour of the AANLIB PET slices is a colour of the fitted table (within 2 RGB units)."""
    from PIL import Image

    lut = colormap_lut("aanlib_pet", 128).astype(float)
    files = sorted((harvard_dir / "pet_mri").glob("*/pet.png"))[:40]
    colours = np.unique(np.concatenate([np.asarray(Image.open(f).convert("RGB")).reshape(-1, 3) for f in files]),
                        axis=0).astype(float)
    dist = np.linalg.norm(colours[:, None] - lut[None], axis=2).min(axis=1)
    assert dist.max() <= 2.0


def test_aanlib_spect_table_fits_the_training_pngs(harvard_dir):
    from PIL import Image

    lut = colormap_lut("aanlib_spect", 1024).astype(float)
    files = sorted((harvard_dir / "spect_mri").glob("*/spect.png"))[::10]
    px = np.concatenate([np.asarray(Image.open(f).convert("RGB")).reshape(-1, 3) for f in files]).astype(float)
    px = px[px.sum(axis=1) > 0][::7]
    dist = np.linalg.norm(px[:, None] - lut[None], axis=2).min(axis=1)
    assert np.mean(dist <= 10) > 0.9


def test_split_merge_nd_equals_per_slice():
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 256, (6, 5, 4, 3)).astype(np.float32)
    y, cb, cr = split_luminance(vol)
    assert y.shape == (6, 5, 4)
    for k in range(4):
        ys, cbs, crs = split_luminance(vol[:, :, k])
        np.testing.assert_array_equal(y[:, :, k], ys)
        np.testing.assert_array_equal(cb[:, :, k], cbs)
        np.testing.assert_array_equal(cr[:, :, k], crs)
    back = merge_luminance(y, cb, cr)
    assert back.shape == vol.shape and back.dtype == np.uint8
    for k in range(4):
        np.testing.assert_array_equal(back[:, :, k], merge_luminance(*split_luminance(vol[:, :, k])))
    assert np.abs(back.astype(float) - vol).max() <= 3  # YCbCr round trip on 8 bits


def test_fuse_in_colour_keeps_chroma():
    rgb = apply_colormap(np.linspace(0, 1, 60).reshape(3, 4, 5), "aanlib_pet")
    fused, out = fuse_in_colour(rgb, lambda y: y)  # identity "fusion": the colours come back
    assert fused.shape == (3, 4, 5) and out.shape == (3, 4, 5, 3)
    assert np.abs(out - rgb).max() <= 4  # 8-bit YCbCr round trip
    y, cb, cr = split_luminance(rgb)
    darker, out = fuse_in_colour(rgb, lambda y01: 0.8 * y01)
    np.testing.assert_allclose(darker, 0.8 * y / 255, atol=1e-6)
    np.testing.assert_array_equal(out, merge_luminance(255 * darker, cb, cr))
