"""The head mask's faster steps (issue 26) give the numbers of the steps as first written.

``block_mean`` from strided views equals the mean over a reshaped copy (float32 and float64, shapes that are not a
multiple of the factors, flipped and Fortran-ordered inputs); ``head_mask`` with its morphology on the candidates' box
equals the whole-array morphology below (the code as it was), on real scans of every modality rule (the SPM templates,
BraTS, the native TCGA series), on flipped and padded copies, on a head touching the array's edges and with NaNs.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from medfuse.intensity import mask as mk
from medfuse.volume import Volume


def _reshape_mean(a, factors):
    pad = [(0, (-s) % f) for s, f in zip(a.shape, factors)]
    a = np.pad(a, pad, mode="edge")
    shape = [n for s, f in zip(a.shape, factors) for n in (s // f, f)]
    return a.reshape(shape).mean(axis=tuple(range(1, 2 * a.ndim, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, factors", [((57, 63, 49), (2, 2, 2)), ((60, 51, 47), (3, 3, 3)),
                                            ((20, 30, 41), (2, 3, 4)), ((33, 40, 29), (1, 2, 7)),
                                            ((64, 66), (5, 3)), ((32, 32, 32), (2, 2, 2))])
def test_block_mean_equals_the_reshaped_mean(dtype, shape, factors):
    rng = np.random.default_rng(sum(shape))
    a = (rng.standard_normal(shape) * 1000 + 3e4).astype(dtype)
    # numpy's mean sums in memory order: C and Fortran order (nibabel's) differ in the last bits, and each must be kept
    for view in (a, a[::-1], np.asfortranarray(a), np.asfortranarray(a)[:, ::-1], a.T):
        out = mk.block_mean(view, factors if view.shape == a.shape else factors[::-1])
        expected = _reshape_mean(view, factors if view.shape == a.shape else factors[::-1])
        assert out.dtype == expected.dtype and out.shape == expected.shape
        assert (out.flags.c_contiguous, out.flags.f_contiguous) == (expected.flags.c_contiguous,
                                                                    expected.flags.f_contiguous)
        np.testing.assert_array_equal(out, expected)


def test_block_mean_of_integers_is_the_mean():
    a = np.arange(7 * 8 * 9, dtype=np.int16).reshape(7, 8, 9)
    np.testing.assert_array_equal(mk.block_mean(a, (2, 2, 2)), _reshape_mean(a, (2, 2, 2)))


def _whole_array_head_mask(volume, modality=None):
    """head_mask as written before issue 26: every step on the whole block-averaged array."""
    code = mk._modality_code(volume, modality)
    factors = mk._block_factors(volume.shape)
    a = np.asarray(volume.array, dtype=np.float32)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, np.nanmin(np.where(finite, a, np.inf)))
    a = _reshape_mean(a, factors) if any(f > 1 for f in factors) else a
    spacing = volume.spacing * np.asarray(factors, dtype=np.float64)
    if code == "CT" and mk.looks_like_hu(volume):
        threshold = mk.CT_AIR_THRESHOLD_HU
    elif code in ("PT", "NM"):
        a = ndimage.gaussian_filter(a, sigma=mk._FUNCTIONAL_SIGMA_MM / np.maximum(spacing, 1e-6), mode="nearest")
        lo, hi = np.percentile(a, [0.5, 99.5])
        threshold = float(lo + mk.PET_FRACTION[code] * (hi - lo))
    else:
        lo, hi = np.percentile(a, [0.5, 99.5])
        threshold = mk.otsu_threshold(np.clip(a, lo, hi))
    raw = a > threshold
    expand = lambda m: mk._expand(m, factors, volume.shape)  # noqa: E731
    if not raw.any():
        return expand(raw)
    ball = ndimage.generate_binary_structure(a.ndim, 1)
    m = ndimage.binary_opening(mk._fill_holes(raw), structure=ball, iterations=1)
    labels, n = ndimage.label(m)
    if n == 0:
        return expand(raw)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        m = labels == int(np.argmax(sizes))
    radius = min(3, max(1, int(round(3.0 / float(np.min(spacing))))))
    pad = radius + 1
    mp = ndimage.binary_closing(np.pad(m, pad), structure=ball, iterations=radius)
    m = mp[tuple(slice(pad, pad + s) for s in m.shape)] | m
    return expand(mk.fill_holes(m))


def _real_volumes(real_dir):
    templates = real_dir / "templates"
    for name, modality in (("spm_single_subj_T1.nii", "MR"), ("spm_T2.nii", "MR"), ("spm_PET.nii", "PT"),
                           ("spm_SPECT.nii", "NM"), ("clinical_scct.nii", "CT")):
        img = nib.load(str(templates / name))
        yield name, Volume(np.asarray(img.dataobj, dtype=np.float32), img.affine, modality=modality)
    for path in sorted((real_dir / "brats" / "TCGA-FG-6692").glob("*_flair.nii.gz")) + sorted(
            (real_dir / "tcga_fg6692_native" / "native").glob("*_t1c_native.nii.gz")):
        img = nib.load(str(path))
        yield path.name, Volume(np.asarray(img.dataobj, dtype=np.float32), img.affine, modality="MR")


@pytest.mark.real
def test_head_mask_equals_the_whole_array_morphology(real_dir):
    n = 0
    for name, volume in _real_volumes(real_dir):
        a = volume.array
        # as stored; flipped and padded with air; cut so the head touches the array's edges; upsampled past the
        # block-averaging size (odd shape) with a few NaNs
        variants = [a, np.pad(a[::-1, :, ::-1], [(3, 4), (0, 1), (5, 0)]),
                    a[a.shape[0] // 6: -a.shape[0] // 6, a.shape[1] // 5:, : a.shape[2] // 2]]
        if a.size < 2_000_000:
            big = np.repeat(np.repeat(np.repeat(a, 2, 0), 2, 1), 2, 2)[:-1, 1:, :-1].copy()
            big[5, 7, 9] = np.nan
            variants.append(big)
        for array in variants + [np.asfortranarray(variants[1])]:
            v = Volume(array, volume.affine, modality=volume.modality)
            expected = _whole_array_head_mask(v)
            assert expected.any(), name
            np.testing.assert_array_equal(mk.head_mask(v), expected, err_msg=f"{name} {array.shape}")
            n += 1
    assert n >= 25
