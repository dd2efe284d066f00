"""2D methods fuse a volume in the reference's axial plane, oriented like the 2D training slices (issue 11).

The same head stored axial, sagittal, coronal or with flipped axes (same world: permuted/flipped
arrays with matching affines) must give the same fused image in world space, through every door
(``fuse_arrays``, the MONAI transform, the bundle inferer), and keep its own storage's affine.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
from nibabel.orientations import (
    aff2axcodes,
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from medfuse.fusion import fuse_arrays
from medfuse.volume import (
    AXIAL_SLICE_AXES,
    axial_affine,
    axial_reorientation,
    from_axial,
    orientation_code,
    slice_axis,
    to_axial,
)

#: storage orders of the same head: axial (as rendered, RAS), DICOM-like axial, sagittal (ADNI
#: MPRAGE-like), coronal, and axial/sagittal with flipped axes
STORAGES = ["RAS", "LPS", "PIR", "ASL", "LIP", "RSA", "RPI", "SPL"]


def _restore(codes: str, arr: np.ndarray, affine: np.ndarray):
    """``arr`` (stored with ``affine``) re-stored in the order ``codes``: the same world, exactly."""
    ornt = ornt_transform(io_orientation(affine), axcodes2ornt(tuple(codes)))
    new_affine = affine @ inv_ornt_aff(ornt, arr.shape)
    return np.ascontiguousarray(apply_orientation(arr, ornt)), new_affine


@pytest.fixture(scope="module")
def head():
    """A small normalized MRI + PET pair of the phantom head on one RAS grid (non-cubic on purpose)."""
    from medfuse.intensity import normalize
    from medfuse.phantom import make_volume

    mri = make_volume("t1", shape=(40, 48, 36), seed=1)
    pet = make_volume("pet", shape=mri.shape, affine=mri.affine, seed=2)
    return normalize(mri).array, normalize(pet).array, mri.affine


def _stored(head, codes):
    a, b, affine = head
    a2, new_affine = _restore(codes, a, affine)
    b2, _ = _restore(codes, b, affine)
    assert "".join(aff2axcodes(new_affine)) == codes
    return a2, b2, new_affine


def _in_world(head, codes, fused, fused_affine):
    """``fused`` (stored as ``codes``) brought back to the head's original storage."""
    back, back_affine = _restore("".join(aff2axcodes(head[2])), fused, fused_affine)
    np.testing.assert_allclose(back_affine, head[2], atol=1e-9)
    return back


# ---------------------------------------------------------------- orientation helpers


def test_canonical_slices_look_like_the_aanlib_pngs():
    """Rows run anterior -> posterior (top = anterior), columns patient right -> left (image left =
    patient right), slices along inferior -> superior, for any storage."""
    assert AXIAL_SLICE_AXES == ("P", "L", "S")
    for codes in STORAGES:
        affine = _restore(codes, np.zeros((4, 5, 6)), np.diag([2.0, 3.0, 4.0, 1.0]))[1]
        canon = axial_affine(affine, _restore(codes, np.zeros((4, 5, 6)), np.eye(4))[0].shape)
        assert aff2axcodes(canon) == AXIAL_SLICE_AXES
        rows, cols = canon[:3, 0], canon[:3, 1]
        assert rows[1] < 0 and np.allclose(rows[[0, 2]], 0)  # down the image = posterior
        assert cols[0] < 0 and np.allclose(cols[[1, 2]], 0)  # rightwards in the image = patient left


def test_to_axial_is_exact_and_invertible_for_all_48_orientations():
    rng = np.random.default_rng(0)
    world = rng.random((5, 6, 7)).astype(np.float32)  # RAS storage, identity-like affine
    base = np.diag([1.0, 1.5, 2.0, 1.0])
    expected = to_axial(world, base)
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product([1, -1], repeat=3):
            codes = "".join(("RAS" if f > 0 else "LPI")[p] for p, f in zip(perm, flips))
            arr, affine = _restore(codes, world, base)
            canon = to_axial(arr, affine)
            np.testing.assert_array_equal(canon, expected)  # same canonical stack whatever the storage
            np.testing.assert_array_equal(from_axial(canon, affine), arr)
            np.testing.assert_allclose(axial_affine(affine, arr.shape), axial_affine(base, world.shape), atol=1e-12)
            assert axial_reorientation(affine).shape == (3, 2)


def _rotation_x(deg):
    t = np.deg2rad(deg)
    r = np.eye(4)
    r[1:3, 1:3] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    return r


@pytest.mark.parametrize(
    "codes, expected",
    [("RAS", 2), ("LPS", 2), ("RPI", 2), ("PIR", 1), ("ASL", 1), ("SPL", 0), ("LIP", 1), ("RSA", 1), ("IRP", 0)],
)
def test_slice_axis_picks_the_superior_inferior_axis(codes, expected):
    affine = _restore(codes, np.zeros((8, 9, 10)), np.diag([1.0, 1.0, 1.2, 1.0]))[1]
    assert slice_axis(affine) == expected
    assert orientation_code(affine) == codes


def test_slice_axis_of_oblique_scans():
    axial = np.diag([0.9, 0.9, 3.0, 1.0])
    sagittal = _restore("PIR", np.zeros((8, 9, 10)), np.diag([1.0, 1.0, 1.2, 1.0]))[1]
    coronal = _restore("LIP", np.zeros((8, 9, 10)), np.diag([1.0, 1.0, 1.2, 1.0]))[1]
    for tilt in (20.0, -20.0):
        assert slice_axis(_rotation_x(tilt) @ axial) == 2  # a 20 degree tilted axial series stays axial
        assert slice_axis(_rotation_x(tilt) @ sagittal) == 1
        assert slice_axis(_rotation_x(tilt) @ coronal) == 1
    assert slice_axis(_rotation_x(60.0) @ axial) == 1  # tilted past 45 degrees: the j axis is closer to S-I
    assert orientation_code(_rotation_x(20.0) @ axial) == "RAS"


def test_degenerate_affine_is_refused():
    from medfuse.errors import UnsupportedInputError

    with pytest.raises(UnsupportedInputError, match="orientation"):
        slice_axis(np.diag([1.0, 1.0, 0.0, 1.0]))


# ---------------------------------------------------------------- fusion in world space


@pytest.mark.parametrize("method", ["laplacian", "light"])
def test_same_fused_head_in_world_for_every_storage(head, method):
    a, b, affine = head
    reference = fuse_arrays(a, b, method, pair="pet_mri", affine=affine)
    assert reference.shape == a.shape
    for codes in STORAGES[1:]:
        a2, b2, aff2 = _stored(head, codes)
        fused = fuse_arrays(a2, b2, method, pair="pet_mri", affine=aff2)
        assert fused.shape == a2.shape and fused.dtype == np.float32
        np.testing.assert_allclose(_in_world(head, codes, fused, aff2), reference, atol=1e-6, err_msg=codes)


def test_slices_are_axial_in_the_training_orientation(head):
    """Fusing the stored volume equals fusing each canonical axial slice as a 2D image."""
    a2, b2, aff2 = _stored(head, "PIR")  # sagittal storage: slices across stored axis 1
    fused = fuse_arrays(a2, b2, "guided", affine=aff2)
    canon_a, canon_b, canon_f = (to_axial(x, aff2) for x in (a2, b2, fused))
    k = canon_a.shape[2] // 2
    np.testing.assert_allclose(canon_f[:, :, k], fuse_arrays(canon_a[:, :, k], canon_b[:, :, k], "guided"), atol=1e-6)
    assert slice_axis(aff2) == 1


def test_without_affine_the_old_stored_axis_is_kept_and_logged(head, caplog):
    a2, b2, aff2 = _stored(head, "PIR")
    with caplog.at_level(logging.DEBUG, logger="medfuse.fusion"):
        old = fuse_arrays(a2, b2, "laplacian")
    assert "no affine given" in caplog.text
    from medfuse.classical import fuse_classical

    np.testing.assert_array_equal(old, fuse_classical(a2, b2, "laplacian", axis=-1))
    # sagittal slices are not axial ones: the plane matters
    assert not np.allclose(old, fuse_arrays(a2, b2, "laplacian", affine=aff2), atol=1e-3)


def test_2d_inputs_ignore_the_affine():
    rng = np.random.default_rng(3)
    a, b = rng.random((24, 20), dtype=np.float32), rng.random((24, 20), dtype=np.float32)
    affine = _restore("PIR", np.zeros((2, 2, 2)), np.eye(4))[1]
    for method in ("laplacian", "light"):
        np.testing.assert_array_equal(fuse_arrays(a, b, method, pair="pet_mri", affine=affine),
                                      fuse_arrays(a, b, method, pair="pet_mri"))


# ---------------------------------------------------------------- the other doors


def test_fuse_images_transform_uses_the_reference_plane_and_keeps_its_affine(head):
    from medfuse.hotspots import floor_hot_regions
    from medfuse.transforms import FuseImages, FuseImagesd
    from medfuse.transforms.array import to_metatensor
    from medfuse.volume import Volume

    a, b, affine = head
    reference = fuse_arrays(a, b, "laplacian", affine=affine)
    floored = floor_hot_regions(reference.copy(), b, None, "pet_mri", "laplacian")
    assert float(np.abs(floored - reference).max()) > 0  # the floor acts on this pair
    for codes in ("PIR", "RSA", "LPS"):
        a2, b2, aff2 = _stored(head, codes)
        ref_mt = to_metatensor(Volume(a2, aff2, modality="MR"))
        mov_mt = to_metatensor(Volume(b2, aff2, modality="PT"))
        out = FuseImages(method="laplacian", keep_hot=False)(ref_mt, mov_mt)
        np.testing.assert_allclose(out.affine.numpy(), aff2, atol=1e-6)
        np.testing.assert_allclose(_in_world(head, codes, out[0].numpy(), aff2), reference, atol=1e-6)
        d = FuseImagesd(["mri", "pet"], method="laplacian", keep_hot=False)({"mri": ref_mt, "pet": mov_mt})
        np.testing.assert_array_equal(d["fused"].numpy(), out.numpy())
        # with the hot-region floor (the default for a PET): pointwise on the whole volume, so the same in any storage
        hot = FuseImages(method="laplacian")(ref_mt, mov_mt)
        np.testing.assert_allclose(_in_world(head, codes, hot[0].numpy(), aff2), floored, atol=1e-6)


def test_bundle_inferer_takes_the_same_path(head):
    import torch

    from medfuse.bundle import SliceFusionInferer
    from medfuse.inference import load_model, shipped_weights_path

    model, _ = load_model(shipped_weights_path("light", "pet_mri"))
    a2, b2, aff2 = _stored(head, "ASL")
    expected = fuse_arrays(a2, b2, "light", pair="pet_mri", affine=aff2)
    x = torch.from_numpy(np.stack([a2, b2])[None])
    out = SliceFusionInferer(batch_size=8)(x, model, affine=aff2)
    assert out.shape == (1, 1, *a2.shape)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-6)
    # per-sample affines (B, 4, 4) work too
    out2 = SliceFusionInferer(batch_size=8)(x, model, affine=torch.from_numpy(aff2[None]))
    np.testing.assert_array_equal(out2.numpy(), out.numpy())
