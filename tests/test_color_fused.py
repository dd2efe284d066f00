"""The one-pass colour path of 3D PET/SPECT fusion (issue 26) gives the numbers of the composed path.

``fuse_colormapped`` (colour lookup, luminance split, fusion and merge in chunks, uint8 out) against
``fuse_in_colour(apply_colormap(...))`` (whole volumes, float32), and the voxelwise fast path of
``fuse_arrays`` against ``medfuse.classical``, on the real SPM12 templates (PET, SPECT, T1).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from medfuse.color import _to_uint8, apply_colormap, colormap_rgb8, fuse_colormapped, fuse_in_colour
from medfuse.errors import NonFiniteError, UnsupportedInputError
from medfuse.fusion import fuse_arrays, voxelwise_fusion


def _template(real_dir, name):
    img = nib.load(str(real_dir / "templates" / name))
    a = np.asarray(img.dataobj, dtype=np.float32)
    return (a - a.min()) / (a.max() - a.min()), img.affine


@pytest.fixture(scope="module")
def volumes(real_dir):
    t1, affine = _template(real_dir, "spm_T1.nii")
    pet, _ = _template(real_dir, "spm_PET.nii")
    spect, _ = _template(real_dir, "spm_SPECT.nii")
    # values beyond [0, 1] and a NaN-free gradient: the colour map clips them
    pet = pet * 1.1 - 0.05
    return t1, pet, spect[::-1].copy(), affine  # the SPECT flipped: a second, independent pattern


@pytest.mark.parametrize("method", ["max", "mean", "guided"])
@pytest.mark.parametrize("colormap", ["aanlib_pet", "aanlib_spect", "hot_iron"])
def test_fuse_colormapped_equals_the_composed_path(volumes, method, colormap):
    t1, pet, _, affine = volumes

    def fuse(y01):
        return fuse_arrays(t1, y01, method, affine=affine)

    expected_fused, expected_rgb = fuse_in_colour(apply_colormap(pet, colormap), fuse)
    # an odd chunk size, so that chunks end mid-row
    fused, rgb = fuse_colormapped(pet, colormap, fuse, voxelwise=voxelwise_fusion(method, t1), chunk=12_345)
    assert rgb.dtype == np.uint8 and rgb.shape == (*t1.shape, 3)
    np.testing.assert_array_equal(fused, expected_fused)
    np.testing.assert_array_equal(rgb.astype(np.float32), expected_rgb)
    assert (method == "guided") == (voxelwise_fusion(method, t1) is None)


def test_colormap_rgb8_is_the_rounded_colormap(volumes):
    _, pet, spect, _ = volumes
    for values in (pet, spect):
        np.testing.assert_array_equal(colormap_rgb8(values, "aanlib_pet"), _to_uint8(apply_colormap(values, "aanlib_pet")))


@pytest.mark.parametrize("method", ["max", "mean"])
def test_voxelwise_fast_path_equals_classical(volumes, method):
    from medfuse.classical import fuse_classical

    t1, _, spect, _ = volumes
    fused = fuse_arrays(t1, spect, method)
    assert fused.dtype == np.float32
    np.testing.assert_array_equal(fused, np.clip(fuse_classical(t1, spect, method), 0, 1))


def test_voxelwise_fast_path_keeps_the_input_checks(volumes):
    t1, _, spect, _ = volumes
    bad = t1.copy()
    bad[10, 10, 10] = np.nan
    with pytest.raises(NonFiniteError, match="a \\(the anatomical image\\) holds 1 NaN"):
        fuse_arrays(bad, spect, "max")
    bad = spect.copy()
    bad[5, 5, 5] = 1.5
    with pytest.raises(UnsupportedInputError, match="b \\(the second image\\) has values in \\[0, 1.5\\]"):
        fuse_arrays(t1, bad, "max")
