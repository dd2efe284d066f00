"""medfuse's own 8-bit PNG writer (:func:`medfuse.io.slices.encode_png`, used by ``write_slice``): the pixels read
back by two independent PNG readers (Pillow and SimpleITK's libpng) are the pixels written, gray and RGB, real
Harvard slices and odd sizes; 16-bit images still go through Pillow."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medfuse.io import save_volume
from medfuse.io.slices import encode_png
from medfuse.volume import Volume


def _read_both(path) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(path) as img:
        pil = np.asarray(img)
    itk = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return pil, itk


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (7, 9), (255, 256), (1, 1, 3), (2, 5, 3), (129, 64, 3)])
def test_random_pixels_round_trip(tmp_path, shape):
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(pixels))
    pil, itk = _read_both(path)
    assert np.array_equal(pil, pixels) and np.array_equal(itk, pixels)
    with Image.open(path) as img:
        assert img.mode == ("RGB" if pixels.ndim == 3 else "L")


def test_real_slices_through_save_volume(tmp_path, harvard_dir):
    """A gray MRI and a colour PET of the development set, written by save_volume as a fused image is."""
    case = sorted(p for p in (harvard_dir / "pet_mri").iterdir() if p.is_dir())[0]
    gray = np.asarray(Image.open(case / "mri.png").convert("L"))
    rgb = np.asarray(Image.open(case / "pet.png").convert("RGB"))
    assert rgb.ndim == 3 and not (rgb[..., 0] == rgb[..., 1]).all()  # a true colour image
    for name, vol, expected in (
        ("gray.png", Volume(gray.astype(np.float32), np.eye(4)), gray),
        ("rgb.png", Volume(gray.astype(np.float32), np.eye(4), rgb=rgb.astype(np.float32)), rgb),
    ):
        out = save_volume(vol, tmp_path / name)
        pil, itk = _read_both(out)
        assert np.array_equal(pil, expected) and np.array_equal(itk, expected)
        with Image.open(out) as img:  # Pillow's own writer, for comparison: the same pixels, a similar size
            img.save(tmp_path / f"pillow_{name}", compress_level=1)
        assert out.stat().st_size < 1.1 * (tmp_path / f"pillow_{name}").stat().st_size


def test_sixteen_bit_still_written(tmp_path):
    values = np.array([[0, 300], [65535, 7]], dtype=np.float32)
    out = save_volume(Volume(values, np.eye(4)), tmp_path / "x16.png")
    pil, itk = _read_both(out)
    assert np.array_equal(pil.astype(np.float32), values) and np.array_equal(itk.astype(np.float32), values)
