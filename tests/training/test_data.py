"""Training data: Harvard-layout loading, the case split, the patch sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medfuse.training.data import PatchSampler, SlicePair, load_harvard_slices, split_by_case, split_digest

from harvard_fixture import make_harvard


def test_load_harvard_gray_and_colour(harvard_tiny):
    ct = load_harvard_slices(harvard_tiny, "ct_mri")
    assert len(ct) == 10 and {p.case for p in ct} == {f"aanlib-{i}" for i in range(1, 6)}
    first = ct[0]
    raw = np.asarray(Image.open(harvard_tiny / "ct_mri" / "xg-1000" / "ct.png"), dtype=np.float32) / 255
    assert first.key == "ct_mri/xg-1000" and np.array_equal(first.b, raw)
    assert first.a.dtype == np.float32 and first.a.shape == (32, 32)
    pet = load_harvard_slices(harvard_tiny, "pet_mri")[0]
    rgb = Image.open(harvard_tiny / "pet_mri" / "xg-1000" / "pet.png")
    y = np.asarray(rgb.convert("YCbCr"), dtype=np.float32)[..., 0] / 255  # Pillow's YCbCr luminance
    assert np.allclose(pet.b, y)
    assert 0.0 <= pet.b.min() and pet.b.max() <= 1.0


def test_cases_without_index_come_from_pair_ids(tmp_path):
    root = make_harvard(tmp_path / "h", cases=3, index=False)
    assert {p.case for p in load_harvard_slices(root, "ct_mri")} == {"aanlib-1", "aanlib-2", "aanlib-3"}


def test_missing_task(tmp_path):
    with pytest.raises(NotADirectoryError):
        load_harvard_slices(tmp_path / "nothing", "ct_mri")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no fusion pairs"):
        load_harvard_slices(tmp_path / "empty", "spect_mri")


def test_split_by_case_is_deterministic_and_disjoint():
    cases = [f"c{i}" for i in range(10)] * 3
    train, val = split_by_case(cases, 0.2, seed=7)
    assert (train, val) == split_by_case(list(reversed(cases)), 0.2, seed=7)  # order-independent
    assert len(val) == 2 and len(train) == 8 and not set(train) & set(val)
    assert split_by_case(cases, 0.2, seed=8) != (train, val)
    assert split_by_case(["a", "b", "c"], 0.2)[1].__len__() == 1  # at least one validation case
    assert split_by_case(["a", "b"], 0.0) == (["a", "b"], [])
    with pytest.raises(ValueError, match="cannot be split"):
        split_by_case(["only"], 0.2)
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_case(["a", "b"], 1.0)


def test_split_digest_tracks_content():
    p = SlicePair("t/1", "c", np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32))
    q = SlicePair("t/2", "c", np.ones((4, 4), np.float32), np.ones((4, 4), np.float32))
    assert split_digest([p, q]) == split_digest([q, p])
    changed = SlicePair("t/2", "c", np.ones((4, 4), np.float32), np.zeros((4, 4), np.float32))
    assert split_digest([p, changed]) != split_digest([p, q])


def test_patch_sampler():
    rng = np.random.default_rng(0)
    pairs = [SlicePair(f"k{i}", "c", rng.random((20, 24), dtype=np.float32), rng.random((20, 24), dtype=np.float32))
             for i in range(3)]
    small = SlicePair("small", "c", np.ones((8, 8), np.float32), np.ones((8, 8), np.float32))
    sampler = PatchSampler(pairs + [small], 16, generator=torch.Generator().manual_seed(1))
    a, b = sampler.sample(5)
    assert a.shape == b.shape == (5, 1, 16, 16) and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    again = PatchSampler(pairs + [small], 16, generator=torch.Generator().manual_seed(1)).sample(5)
    assert torch.equal(again[0], a) and torch.equal(again[1], b)  # the generator is the whole state


def test_patch_sampler_prefers_foreground():
    img = np.zeros((64, 64), np.float32)
    img[:16, :16] = 1.0  # foreground in one corner only
    sampler = PatchSampler([SlicePair("k", "c", img, img)], 16, flip=False, rot90=False, min_foreground=0.05,
                           generator=torch.Generator().manual_seed(0))
    a, _ = sampler.sample(40)
    hits = float((a.flatten(1).mean(1) >= 0.05).float().mean())
    # one uniform crop overlaps the corner enough with p ~ 0.09; up to 10 tries give p ~ 0.6
    assert hits > 0.35


@pytest.mark.slow
def test_phantom_slices_are_aligned_and_normalized():
    from medfuse.training.data import load_phantom_slices

    slices = load_phantom_slices("ct_mri", cases=1, slices_per_case=2, seed=0)
    assert len(slices) == 2 and all(s.case == "phantom-0-0" for s in slices)
    for s in slices:
        assert s.a.shape == s.b.shape and s.a.dtype == np.float32
        assert 0.0 <= s.a.min() and s.a.max() <= 1.0 and 0.0 <= s.b.min() and s.b.max() <= 1.0
        head = (s.a > 0.1) | (s.b > 0.1)
        assert head.mean() > 0.2  # a head, not background


def test_phantom_slices_are_axial_like_aanlib():
    """Phantom training slices come out like AANLIB / inference slices (medfuse.volume.to_axial):
    rows anterior -> posterior, columns patient right -> left, not the RAS storage order."""
    pytest.importorskip("medfuse.phantom")
    from medfuse.training.data import load_phantom_slices

    slices = load_phantom_slices("pet_mri", cases=1, slices_per_case=2, seed=0, max_rotation_deg=0.0)
    assert len(slices) == 2
    a = slices[0].a
    assert a.shape == (152, 128)  # (A-P rows, R-L columns) of the 128 x 152 x 120 RAS phantom MRI
    rows = np.flatnonzero(a.max(axis=1) > 0.1)
    # the head is longer front to back than side to side, and rows run over that long axis
    assert rows.size > np.flatnonzero(a.max(axis=0) > 0.1).size
