"""fuse_files lets the reference's voxels go before writing (issue 26: memory), and the sidecar still records the
hash of the reference as read (computed independently here from the file with nibabel)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from medfuse.pipeline import FusionOptions, InputOptions, fuse_files
from medfuse.report.sidecar import array_sha256


def test_the_sidecar_hashes_the_reference_as_read(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    t1 = np.zeros((40, 44, 24), np.float32)
    t1[8:32, 8:36, 4:20] = 100 + 20 * rng.random((24, 28, 16))
    ct = np.full(t1.shape, -1000.0, np.float32)
    ct[8:32, 8:36, 4:20] = 40 + 10 * rng.random((24, 28, 16))
    nib.save(nib.Nifti1Image(t1, affine), tmp_path / "t1.nii.gz")
    nib.save(nib.Nifti1Image(ct, affine), tmp_path / "ct.nii.gz")
    written = fuse_files(tmp_path / "t1.nii.gz", tmp_path / "ct.nii.gz", tmp_path / "fused.nii.gz",
                         FusionOptions(method="max", register=False, qc=False, reference=InputOptions(modality="MR"),
                                       moving=InputOptions(modality="CT")))
    record = json.loads(written["sidecar"].read_text())
    as_read = np.asarray(nib.load(tmp_path / "t1.nii.gz").dataobj, dtype=np.float32)
    assert record["inputs"]["reference"]["sha256_of_values"] == array_sha256(as_read)
    assert record["inputs"]["reference"]["shape"] == [40, 44, 24]
    assert record["slice_plane"]["reference_orientation"] == "RAS"
    fused = nib.load(written["fused"])
    np.testing.assert_allclose(fused.affine, affine)


def test_a_consumed_reference_is_normalized_in_place_with_the_same_numbers():
    import dataclasses

    from medfuse.pipeline import fuse_volumes
    from medfuse.volume import Volume

    rng = np.random.default_rng(1)
    t1 = np.zeros((30, 34, 20), np.float32)
    t1[5:25, 6:28, 3:17] = 100 + 50 * rng.random((20, 22, 14))
    pet = np.zeros_like(t1)
    pet[8:22, 8:26, 5:15] = 1000 * rng.random((14, 18, 10))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    options = FusionOptions(method="max", register=False)
    keep = fuse_volumes(Volume(t1.copy(), affine, "MR"), Volume(pet, affine, "PT"), options, rgb_dtype=np.uint8)
    given = Volume(np.asfortranarray(t1), affine, "MR")
    raw = given.array
    used = fuse_volumes(given, Volume(pet, affine, "PT"), options, rgb_dtype=np.uint8, consume_reference=True)
    np.testing.assert_array_equal(used.fused.rgb, keep.fused.rgb)
    np.testing.assert_array_equal(used.reference.array, keep.reference.array)
    assert np.shares_memory(used.reference.array, raw)  # no second head volume: the voxels given were reused
    assert dataclasses.asdict(used.options) == dataclasses.asdict(keep.options)
