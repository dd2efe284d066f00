"""Geometry survives every reader and writer; RAS (nibabel, MONAI) vs LPS (ITK) is explicit."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.io import load_volume, save_volume
from medfuse.io.sitk import from_sitk, to_sitk
from medfuse.volume import Volume, affine_from_lps, lps_from_affine, ras_to_lps

# an oblique, anisotropic, LPS-like grid: nothing about it is the identity
_ROT = np.array([[0.0, -1.0, 0.0], [0.96, 0.0, -0.28], [0.28, 0.0, 0.96]])
AFFINE = np.eye(4)
AFFINE[:3, :3] = _ROT @ np.diag([0.9, 1.1, 2.5])
AFFINE[:3, 3] = -AFFINE[:3, :3] @ [11.5, 9.5, 5.5] + [0.5, -2.25, 4.0]  # head centred near the origin


def asymmetric_volume() -> tuple[Volume, np.ndarray]:
    """A volume with a bright marker in the patient's LEFT (RAS x < 0); returns it and the marker's RAS centre."""
    shape = (24, 20, 12)
    a = np.zeros(shape, dtype=np.float32)
    a[2:22, 2:18, 2:10] = 100.0  # "head"
    world = Volume(a, AFFINE).world_coordinates(np.argwhere(a > 0))
    left = np.argwhere(a > 0)[world[:, 0] < world[:, 0].mean() - 5][:10]
    a[tuple(left.T)] = 1000.0
    vol = Volume(a, AFFINE, modality="MR")
    return vol, marker_centre(vol)


def marker_centre(vol: Volume) -> np.ndarray:
    return vol.world_coordinates(np.argwhere(vol.array > 500)).mean(axis=0)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_roundtrip_keeps_affine_and_marker(tmp_path, ext):
    vol, centre = asymmetric_volume()
    assert centre[0] < 0  # left hemisphere in RAS
    path = tmp_path / f"vol{ext}"
    save_volume(vol, path)
    back = load_volume(path)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-4)
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(marker_centre(back), centre, atol=1e-4)


@pytest.mark.parametrize("first,second", [(".nii.gz", ".nrrd"), (".nrrd", ".nii.gz"), (".mha", ".nii")])
def test_chained_conversions(tmp_path, first, second):
    vol, centre = asymmetric_volume()
    save_volume(vol, tmp_path / f"a{first}")
    save_volume(load_volume(tmp_path / f"a{first}"), tmp_path / f"b{second}")
    back = load_volume(tmp_path / f"b{second}")
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-4)
    np.testing.assert_allclose(marker_centre(back), centre, atol=1e-4)


def test_simpleitk_sees_the_marker_in_lps(tmp_path):
    """Read our NIfTI and NRRD with SimpleITK itself: the marker is at the same point, x and y negated."""
    import SimpleITK as sitk

    vol, centre = asymmetric_volume()
    for ext in (".nii.gz", ".nrrd"):
        path = tmp_path / f"m{ext}"
        save_volume(vol, path)
        img = sitk.ReadImage(str(path))
        idx = np.argwhere(sitk.GetArrayFromImage(img) > 500)[:, ::-1]  # (z,y,x) -> (i,j,k)
        pts = np.array([img.TransformContinuousIndexToPhysicalPoint(i.astype(float).tolist()) for i in idx])
        lps_centre = pts.mean(axis=0)
        np.testing.assert_allclose(lps_centre, ras_to_lps(centre[None])[0], atol=1e-4)
        assert lps_centre[0] > 0  # LPS: +x is the patient's left


def test_monai_loader_agrees(tmp_path):
    """MONAI's LoadImage (RAS affine by default) finds the marker at the same RAS point."""
    from monai.transforms import LoadImage

    vol, centre = asymmetric_volume()
    for ext in (".nii.gz", ".nrrd"):
        path = tmp_path / f"m{ext}"
        save_volume(vol, path)
        img = LoadImage(image_only=True)(str(path))
        aff = np.asarray(img.affine, dtype=np.float64)
        np.testing.assert_allclose(aff, vol.affine, atol=1e-4)
        idx = np.argwhere(np.asarray(img) > 500)
        pts = idx @ aff[:3, :3].T + aff[:3, 3]
        np.testing.assert_allclose(pts.mean(axis=0), centre, atol=1e-4)


def test_sitk_conversion_is_exact():
    vol, _ = asymmetric_volume()
    img = to_sitk(vol)
    np.testing.assert_allclose(np.array(img.GetOrigin()), ras_to_lps(vol.affine)[:3, 3])
    back = from_sitk(img, template=vol)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-12)
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.modality == "MR"


def test_lps_helpers_invert_each_other():
    origin, spacing, direction = lps_from_affine(AFFINE)
    np.testing.assert_allclose(affine_from_lps(origin, spacing, direction), AFFINE, atol=1e-12)
    np.testing.assert_allclose(spacing, [0.9, 1.1, 2.5])


def test_left_handed_axes_keep_world_coordinates(tmp_path):
    """Negative determinant (LAS-like voxel axes): the marker keeps its world position (bad input 5)."""
    vol, centre = asymmetric_volume()
    flipped = np.diag([-1.0, 1, 1, 1]) @ vol.affine  # reflect world x: now marker is at +x
    lh = Volume(vol.array, flipped)
    assert np.linalg.det(lh.affine[:3, :3]) * np.linalg.det(vol.affine[:3, :3]) < 0
    save_volume(lh, tmp_path / "lh.nii.gz")
    back = load_volume(tmp_path / "lh.nii.gz")
    np.testing.assert_allclose(back.affine, flipped, atol=1e-4)
    np.testing.assert_allclose(marker_centre(back), centre * [-1, 1, 1], atol=1e-4)


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_rgb_volume_roundtrip(tmp_path, ext):
    """A colour volume (NIfTI RGB24, NRRD/MHA 3-component uint8) keeps its affine and colours, for
    medfuse and for SimpleITK (which sees a vector image with the same LPS geometry)."""
    import SimpleITK as sitk

    vol, _ = asymmetric_volume()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (*vol.shape, 3)).astype(np.float32)
    colour = Volume(vol.array / 1000, vol.affine, modality="MR", rgb=rgb)
    path = save_volume(colour, tmp_path / f"rgb{ext}")
    back = load_volume(path, modality="MR")
    np.testing.assert_allclose(back.affine, AFFINE, atol=1e-4)
    np.testing.assert_array_equal(back.rgb, rgb)
    image = sitk.ReadImage(str(path))
    assert image.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_allclose(affine_from_lps(image.GetOrigin(), image.GetSpacing(), image.GetDirection()), AFFINE,
                               atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0, 3), rgb.astype(np.uint8))
