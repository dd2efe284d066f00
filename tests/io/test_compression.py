"""Output compression (issue 26): the threaded gzip writer, ``write_nifti(compress_level=)`` and ``--compress-level``."""

from __future__ import annotations

import gzip
import zlib

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medfuse.errors import OptionError
from medfuse.io import save_volume
from medfuse.io.atomic import GzipWriter, check_compress_level
from medfuse.volume import Volume


def _payload(real_dir) -> bytes:
    """Real image bytes (the SPM T1 template) followed by noise: compressible and incompressible parts."""
    t1 = np.asarray(nib.load(str(real_dir / "templates" / "spm_T1.nii")).dataobj, dtype=np.float32)
    noise = np.random.default_rng(3).integers(0, 256, 700_001, dtype=np.uint8)
    return t1.tobytes() + noise.tobytes()


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_gzip_writer_is_one_standard_member_whatever_the_threads(tmp_path, real_dir, level):
    data = _payload(real_dir)
    files = []
    for threads in (1, 3):
        path = tmp_path / f"x{threads}.gz"
        with GzipWriter(path, level, threads=threads, block=100_000) as fh:
            fh.write(data[:7])  # small, then large writes, around the block size
            fh.write(data[7:250_007])
            fh.write(memoryview(data)[250_007:])
        files.append(path.read_bytes())
    assert files[0] == files[1]  # the bytes do not depend on the number of threads
    raw = files[0]
    assert gzip.decompress(raw) == data
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # exactly one gzip member, nothing after it
    assert d.decompress(raw) == data and d.eof and d.unused_data == b""
    if level == 0:
        assert len(raw) > len(data)
    else:
        assert len(raw) < len(data)


def test_compress_level_is_checked():
    assert check_compress_level(0) == 0 and check_compress_level("9") == 9
    for bad in (-1, 10, "fast", 1.5, None):
        with pytest.raises(OptionError, match="the compress_level option"):
            check_compress_level(bad)


def _volumes(real_dir):
    img = nib.load(str(real_dir / "templates" / "spm_PET.nii"))
    pet = np.asarray(img.dataobj, dtype=np.float32)
    rgb = np.stack([pet, pet[::-1], np.full_like(pet, 7.4)], axis=-1) * (255.0 / pet.max())
    return Volume(pet, img.affine, modality="PT"), Volume(pet / pet.max(), img.affine, rgb=rgb)


def test_nifti_levels_hold_the_same_image(tmp_path, real_dir):
    grey, colour = _volumes(real_dir)
    for vol, name in ((grey, "g"), (colour, "c")):
        save_volume(vol, tmp_path / f"{name}.nii")
        plain = (tmp_path / f"{name}.nii").read_bytes()
        sizes = {}
        for level in (0, 1, 9):
            path = save_volume(vol, tmp_path / f"{name}{level}.nii.gz", compress_level=level)
            assert gzip.decompress(path.read_bytes()) == plain  # the same NIfTI file, only compressed differently
            sizes[level] = path.stat().st_size
        assert sizes[0] > sizes[1] > sizes[9]
        back = nib.load(str(tmp_path / f"{name}1.nii.gz"))
        np.testing.assert_array_equal(back.affine, vol.affine)
        if vol.rgb is None:
            np.testing.assert_array_equal(np.asarray(back.dataobj), vol.array)
        else:  # RGB24, rounded and clipped as before; ITK reads it as a 3-component image
            data = np.asarray(back.dataobj)
            expected = np.clip(np.rint(vol.rgb), 0, 255).astype(np.uint8)
            for c, key in enumerate("RGB"):
                np.testing.assert_array_equal(data[key], expected[..., c])
            itk = sitk.ReadImage(str(tmp_path / f"{name}9.nii.gz"))
            assert itk.GetNumberOfComponentsPerPixel() == 3
            np.testing.assert_array_equal(sitk.GetArrayFromImage(itk).transpose(2, 1, 0, 3), expected)


def test_cli_compress_level(tmp_path, capsys):
    from medfuse.cli import main

    rng = np.random.default_rng(0)
    shape, affine = (24, 26, 20), np.diag([2.0, 2.0, 2.0, 1.0])
    idx = np.indices(shape)
    head = ((idx - np.array(shape)[:, None, None, None] / 2) ** 2).sum(0) < 81
    mri = np.where(head, 500 + 50 * rng.standard_normal(shape), 5).astype(np.float32)
    pet = np.where(head, 4000 + 500 * rng.random(shape), 10).astype(np.float32)
    save_volume(Volume(mri, affine), tmp_path / "mri.nii.gz")
    save_volume(Volume(pet, affine), tmp_path / "pet.nii.gz")
    args = ["fuse", "--reference", str(tmp_path / "mri.nii.gz"), "--moving", str(tmp_path / "pet.nii.gz"), "--method",
            "max", "--no-qc"]
    assert main([*args, "--out", str(tmp_path / "a.nii.gz"), "--compress-level", "0"]) == 0
    assert main([*args, "--out", str(tmp_path / "b.nii.gz"), "--compress-level", "9"]) == 0
    assert main([*args, "--out", str(tmp_path / "c.nii")]) == 0
    for stem in ("a", "b"):
        for suffix in (".nii.gz", "_moving.nii.gz"):
            assert gzip.decompress((tmp_path / f"{stem}{suffix}").read_bytes()) == \
                (tmp_path / f"c{suffix.replace('.gz', '')}").read_bytes()
    assert (tmp_path / "a.nii.gz").stat().st_size > (tmp_path / "b.nii.gz").stat().st_size
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "d.nii.gz"), "--compress-level", "12"])
    assert "--compress-level" in capsys.readouterr().err
