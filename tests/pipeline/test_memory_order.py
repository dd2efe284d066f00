"""Fortran-ordered volumes (NIfTI as read, SimpleITK's resampling) are fused in their memory order (issue 26): the
same numbers as C-ordered copies of the same volumes, and the RGB24 NIfTI written without reordering copies."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest

from medfuse.io.nifti import _rgb24
from medfuse.pipeline import FusionOptions, InputOptions, fuse_volumes
from medfuse.volume import Volume


def _pair():
    rng = np.random.default_rng(7)
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in (36, 40, 22)), indexing="ij")
    head = (x ** 2 + y ** 2 + z ** 2) < 0.8
    t1 = np.asfortranarray((head * (300 + 80 * rng.random(head.shape))).astype(np.float32))
    pet = np.asfortranarray((head * (1000 * np.exp(-((x - 0.3) ** 2 + y ** 2 + z ** 2) / 0.1)
                                     + 50 * rng.random(head.shape))).astype(np.float32))
    return Volume(t1, affine, "MR"), Volume(pet, affine, "PT")


@pytest.mark.parametrize("method", ["max", "mean"])
def test_fortran_and_c_ordered_inputs_fuse_to_the_same_colour_volume(method):
    t1, pet = _pair()
    assert t1.array.flags.f_contiguous and not t1.array.flags.c_contiguous
    options = FusionOptions(method=method, register=False)
    f_result = fuse_volumes(t1, pet, options, rgb_dtype=np.uint8)
    c_result = fuse_volumes(dataclasses.replace(t1, array=np.ascontiguousarray(t1.array)),
                            dataclasses.replace(pet, array=np.ascontiguousarray(pet.array)), options, rgb_dtype=np.uint8)
    np.testing.assert_array_equal(f_result.fused.array, c_result.fused.array)
    np.testing.assert_array_equal(f_result.fused.rgb, c_result.fused.rgb)
    assert f_result.fused.rgb.dtype == np.uint8 and f_result.fused.rgb.std() > 1


@pytest.mark.parametrize("method", ["max", "mean", "a network-like whole-volume fusion"])
def test_the_fortran_path_of_the_colour_fusion_gives_the_c_path_numbers(method):
    from medfuse.fusion import fuse_arrays
    from medfuse.pipeline.fuse import _fuse_colormapped_in_memory_order

    rng = np.random.default_rng(3)
    a_c = rng.random((20, 24, 12)).astype(np.float32)
    b_c = rng.random((20, 24, 12)).astype(np.float32)
    a_f, b_f = np.asfortranarray(a_c), np.asfortranarray(b_c)

    if method.startswith("a network"):  # not voxelwise, and not symmetric in its axes: a wrong transpose shows
        def fuse(y):
            return np.clip(0.5 * np.asarray(a_f if y.flags.f_contiguous else a_c) + 0.5 * np.roll(y, 1, axis=0), 0, 1)
        name = "light"
    else:
        def fuse(y):
            return fuse_arrays(a_c, np.ascontiguousarray(y), method)
        name = method
    f_fused, f_rgb = _fuse_colormapped_in_memory_order(a_f, b_f, "hot", fuse, name)
    c_fused, c_rgb = _fuse_colormapped_in_memory_order(a_c, b_c, "hot", fuse, name)
    assert f_fused.flags.f_contiguous and f_rgb.transpose(2, 1, 0, 3).flags.c_contiguous  # the Fortran path ran
    np.testing.assert_array_equal(f_fused, c_fused)
    np.testing.assert_array_equal(f_rgb, c_rgb)


def test_fortran_ordered_rgb_is_viewed_as_rgb24_and_written_as_the_c_ordered_one(tmp_path):
    from medfuse.io import save_volume

    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 8, 3)).astype(np.uint8)
    fortran_voxels = np.ascontiguousarray(rgb.transpose(2, 1, 0, 3)).transpose(2, 1, 0, 3)
    view = _rgb24(fortran_voxels)
    assert np.shares_memory(view, fortran_voxels) and np.array_equal(view, _rgb24(rgb))
    paths = []
    for name, colour in (("c", rgb), ("f", fortran_voxels)):
        vol = Volume(np.zeros(rgb.shape[:3], np.float32), np.eye(4), "MR")
        vol.rgb = colour
        paths.append(save_volume(vol, tmp_path / f"{name}.nii.gz"))
    a, b = (np.asarray(nib.load(p).dataobj) for p in paths)
    assert a.dtype.names == ("R", "G", "B") and np.array_equal(a, b)
    np.testing.assert_array_equal(np.stack([a["R"], a["G"], a["B"]], -1), rgb)
