"""Appearance augmentation (issue 24 item 2): the patch sampler's ``appearance`` and the robustness
benchmark's fixed perturbations share :mod:`medfuse.training.augment`."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from medfuse.training.augment import APPEARANCE_KINDS, perturb_appearance, random_appearance
from medfuse.training.data import PatchSampler, SlicePair

_ROBUST = Path(__file__).resolve().parents[2] / "benchmarks" / "quality_robust.py"

#: sha256 of the patches below drawn by the sampler of commit 91cc78c (before ``appearance`` existed)
_BEFORE = "a3cb7bb7350e097f71a0e6da68a90df53a7aa09e9cdb36c881d35cfe0418f1f2"


def _pairs():
    rng = np.random.default_rng(7)
    return [SlicePair(f"k{i}", f"c{i}", rng.random((150 + 10 * i, 140), dtype=np.float32),
                      rng.random((150 + 10 * i, 140), dtype=np.float32)) for i in range(3)]


def _patches(seed=11, batches=3, **kw):
    s = PatchSampler(_pairs(), 64, generator=torch.Generator().manual_seed(seed), **kw)
    return [s.sample(4) for _ in range(batches)]


def _digest(batches):
    h = hashlib.sha256()
    for a, b in batches:
        h.update(a.numpy().tobytes())
        h.update(b.numpy().tobytes())
    return h.hexdigest()


def test_probability_zero_draws_the_patches_of_before():
    assert _digest(_patches()) == _BEFORE
    assert _digest(_patches(appearance=0.0)) == _BEFORE


def test_appearance_changes_the_patch_and_only_its_intensities():
    (a0, b0), = _patches(batches=1)
    (a1, b1), = _patches(batches=1, appearance=1.0)
    # the crop, flips and rotation are drawn before the appearance: same place, other intensities
    for before, after in ((a0, a1), (b0, b1)):
        assert after.shape == before.shape and after.dtype == torch.float32
        assert float(after.min()) >= 0.0 and float(after.max()) <= 1.0
        changed = (after != before).flatten(1).any(1)
        assert bool(changed.all()), changed
    # the patch is still the same image: strongly correlated with the unperturbed patch
    r = np.corrcoef(a0[0].flatten().numpy(), a1[0].flatten().numpy())[0, 1]
    assert r > 0.3


def test_seed_reproduces_and_another_seed_differs():
    assert _digest(_patches(appearance=0.5)) == _digest(_patches(appearance=0.5))
    assert _digest(_patches(appearance=0.5)) != _digest(_patches(seed=12, appearance=0.5))
    assert _digest(_patches(appearance=0.5)) != _BEFORE


def test_appearance_probability_is_checked():
    with pytest.raises(ValueError, match="appearance"):
        PatchSampler(_pairs(), 64, appearance=1.5)


def test_each_kind_does_what_it_says():
    rng = np.random.default_rng(3)
    x = np.clip(rng.random((32, 32)) * 0.8 + 0.1, 0, 1)
    assert np.allclose(perturb_appearance(x, "gamma", 2.0), x * x)
    assert np.allclose(perturb_appearance(x, "scale", 0.5), 0.5 * x)
    noise = rng.normal(0, 0.1, (32, 32))
    assert np.allclose(perturb_appearance(x, "noise", noise=noise), x + noise)
    blurred = perturb_appearance(x, "blur", 1.0)
    assert blurred.std() < x.std() and abs(blurred.mean() - x.mean()) < 0.01
    low = perturb_appearance(x, "lowres")
    assert low.shape == x.shape and low.std() < x.std()
    # half resolution: detail at the pixel scale (a one-pixel checkerboard) is gone, a flat image stays
    checker = np.indices((32, 32)).sum(0) % 2 * 1.0
    assert np.allclose(perturb_appearance(checker, "lowres"), 0.5)
    assert np.allclose(perturb_appearance(np.full((32, 32), 0.3), "lowres"), 0.3)
    with pytest.raises(ValueError, match="expected one of"):
        perturb_appearance(x, "sharpen", 1.0)


def test_random_appearance_reaches_every_kind():
    x = np.full((16, 16), 0.5, dtype=np.float32)
    x[4:12, 4:12] = 0.9
    g = torch.Generator().manual_seed(0)
    outs = [random_appearance(x, g) for _ in range(60)]
    assert all(o.dtype == np.float32 and o.min() >= 0 and o.max() <= 1 for o in outs)
    assert sum(not np.array_equal(o, x) for o in outs) >= 55
    # every kind is drawn: 5 kinds, 60 draws
    g = torch.Generator().manual_seed(0)
    kinds = {APPEARANCE_KINDS[int(torch.randint(5, (1,), generator=g))] for _ in range(60)}
    assert kinds == set(APPEARANCE_KINDS)


def _robust():
    spec = importlib.util.spec_from_file_location("quality_robust_bench", _ROBUST)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _perturb_before(x, kind, role, seed):
    """quality_robust.perturb as it was before it used medfuse.training.augment (commit 91cc78c)."""
    from scipy import ndimage
    import torch.nn.functional as F

    v = x.astype(np.float64) / 255.0
    if kind == "gamma":
        v = v ** (0.7 if role == "mri" else 1.5)
    elif kind == "scale":
        v = 0.6 * v
    elif kind == "noise":
        rng = np.random.default_rng(seed + (0 if role == "mri" else 1))
        v = v + rng.normal(0.0, 0.03, v.shape[:2])[(...,) + ((None,) if v.ndim == 3 else ())]
    elif kind == "blur":
        v = ndimage.gaussian_filter(v, (1.0, 1.0) + (0,) * (v.ndim - 2), mode="nearest")
    elif kind == "lowres":
        t = torch.from_numpy(np.atleast_3d(v).transpose(2, 0, 1)[None].copy())
        small = F.interpolate(t, scale_factor=0.5, mode="area")
        v = F.interpolate(small, size=v.shape[:2], mode="bilinear", align_corners=False)[0].numpy().transpose(1, 2, 0)
        v = v[:, :, 0] if x.ndim == 2 else v
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)


def test_robustness_perturbations_are_unchanged_on_real_pairs(harvard_dir):
    from PIL import Image

    robust = _robust()
    mri = next(iter(sorted((harvard_dir / "pet_mri").glob("*/mri.png"))))
    pet = mri.parent / "pet.png"
    for path, role in ((mri, "mri"), (pet, "other")):
        img = np.asarray(Image.open(path))  # grey MRI, colour PET
        for kind in robust.PERTURBATIONS:
            got = robust.perturb(img, kind, role, seed=5)
            assert got.dtype == np.uint8 and got.shape == img.shape
            assert np.array_equal(got, _perturb_before(img, kind, role, 5)), (path.name, kind)
            assert not np.array_equal(got, img), (path.name, kind)


def test_colour_map_augmentation():
    """``colormap``: 0 draws the patches of before; 1 always takes ``b_alt`` where a pair has one (the MRI and the
    crop positions unchanged), and ``b`` where it has none."""
    assert _digest(_patches(colormap=0.0)) == _BEFORE
    base = _pairs()
    alt = [SlicePair(p.key, p.case, p.a, p.b, 1.0 - p.b) for p in base]

    def draw(pairs, p):
        s = PatchSampler(pairs, 64, generator=torch.Generator().manual_seed(3), colormap=p)
        return s.sample(4)

    a1, b1 = draw(alt, 1.0)
    # the same draws with p = 1 on pairs whose b_alt is b: identical patches, so b_alt was the only change
    a2, b2 = draw([SlicePair(p.key, p.case, p.a, p.b, p.b) for p in base], 1.0)
    torch.testing.assert_close(a1, a2)
    torch.testing.assert_close(b1, 1.0 - b2)
    a3, b3 = draw(base, 1.0)  # no b_alt: b itself
    torch.testing.assert_close(b3, b2)
    with pytest.raises(ValueError, match="colormap"):
        PatchSampler(base, 64, colormap=2.0)


def test_recoloured_slices_of_real_pairs(harvard_dir):
    """On AANLIB slices (data we did not make): a PET slice re-drawn in its own map, the AANLIB PET map, gives its
    luminance back within the 8-bit rounding; a SPECT slice (AANLIB SPECT map) re-drawn in the PET map differs."""
    from medfuse.training.data import load_harvard_slices

    pet = load_harvard_slices(harvard_dir, "pet_mri", recolour="aanlib_pet")[::40]
    assert all(p.b_alt is not None for p in pet)
    assert max(float(np.abs(p.b_alt - p.b).max()) for p in pet) < 0.03
    spect = [p for p in load_harvard_slices(harvard_dir, "spect_mri", recolour="aanlib_pet")
             if not p.case.startswith("cdd-")][::40]
    assert all(p.b_alt is not None and p.b_alt.shape == p.b.shape for p in spect)
    assert min(float(np.abs(p.b_alt - p.b).mean()) for p in spect) > 0.02
