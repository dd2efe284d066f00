"""Fusion does not invent structure: no halo/overshoot at edges, no noise amplification, no stripes.

Synthetic volumes with step edges and flat noisy regions, fused by every default method: the five
classical methods and the shipped default network of each pair (``medfuse/weights/defaults.json``).
Criteria (documented in :mod:`medfuse.classical` and :mod:`medfuse.inference`):

* **overshoot**: every fused value lies within ``[min(a, b) - m, max(a, b) + m]`` over its 3 x 3
  in-plane neighbourhood, ``m`` = :data:`medfuse.classical.OUTPUT_MARGIN` (0.05 of the scale);
* **flat-region noise**: where both sources are flat (noise only), the fused image's local standard
  deviation (5 x 5 in plane) is at most ``NOISE_RATIO`` = 1.1 times the larger of the sources'
  (max-abs detail selection of two independent noises gives ~1.05 by itself);
* **plane consistency**: the mean absolute difference between neighbouring axial slices of the
  fused volume is at most ``PLANE_RATIO`` = 1.2 times the larger of the sources'.
"""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage

from medfuse.classical import OUTPUT_MARGIN, fuse_classical
from medfuse.fusion import fuse_arrays
from medfuse.weights import weights_path

NOISE_RATIO = 1.1
PLANE_RATIO = 1.2
CLASSICAL = ["mean", "max", "laplacian", "wavelet", "guided"]


def _defaults() -> dict[str, str]:
    """The shipped default network of each pair (defaults.json's "network"; the default *method* may be
    a classical one, which CLASSICAL covers)."""
    from medfuse.weights import default_network

    return {pair: default_network(pair) for pair in ("ct_mri", "pet_mri", "spect_mri")}


DEFAULT_NETWORKS = sorted(_defaults().items())


def _synthetic(shape=(64, 64, 10), sigma=0.02, seed=0):
    """``(a, b, clean_a, clean_b)``: an edge in a, a bright disc and an edge in b, Gaussian noise."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    ca = np.where(x < shape[0] // 2, 0.25, 0.7)
    cb = np.where((x - 40) ** 2 + (y - 20) ** 2 < 12**2, 0.85, np.where(y < 44, 0.15, 0.45))
    ca, cb = (np.repeat(c[:, :, None], shape[2], axis=2) for c in (ca, cb))
    a = np.clip(ca + rng.normal(0, sigma, shape), 0, 1).astype(np.float32)
    b = np.clip(cb + rng.normal(0, sigma, shape), 0, 1).astype(np.float32)
    return a, b, ca, cb


def _local_std(x):
    size = (5, 5, 1)
    m = ndimage.uniform_filter(x, size)
    return np.sqrt(np.clip(ndimage.uniform_filter(x * x, size) - m * m, 0, None))


def _figures(a, b, f, ca, cb):
    a, b, f = (np.asarray(v, np.float64) for v in (a, b, f))
    lo = ndimage.minimum_filter(np.minimum(a, b), (3, 3, 1), mode="nearest")
    hi = ndimage.maximum_filter(np.maximum(a, b), (3, 3, 1), mode="nearest")
    overshoot = float(np.maximum(f - hi, lo - f).max())
    # flat in both sources: the noise-free images are constant over 7x7 around the pixel
    flat = np.ones(a.shape, bool)
    for c in (ca, cb):
        flat &= ndimage.maximum_filter(c, (7, 7, 1)) == ndimage.minimum_filter(c, (7, 7, 1))
    flat[:3], flat[-3:], flat[:, :3], flat[:, -3:] = False, False, False, False
    noise = float(_local_std(f)[flat].mean() / np.maximum(_local_std(a), _local_std(b))[flat].mean())

    def dz(v):
        return float(np.abs(np.diff(v, axis=2)).mean())

    plane = dz(f) / max(dz(a), dz(b))
    return overshoot, noise, plane


def _check(f, a, b, ca, cb, who):
    overshoot, noise, plane = _figures(a, b, f, ca, cb)
    assert overshoot <= OUTPUT_MARGIN + 1e-5, (who, overshoot)
    assert noise <= NOISE_RATIO, (who, noise)
    assert plane <= PLANE_RATIO, (who, plane)


AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])  # RAS: the stored k axis is axial


@pytest.mark.parametrize("method", CLASSICAL)
def test_classical_methods_invent_no_structure(method):
    a, b, ca, cb = _synthetic()
    f = fuse_classical(a, b, method, affine=AFFINE)
    _check(f, a, b, ca, cb, method)


@pytest.mark.parametrize("pair,method", DEFAULT_NETWORKS)
def test_default_networks_invent_no_structure(pair, method):
    if weights_path(pair, method) is None:
        pytest.skip(f"no shipped weights for {pair}/{method}")
    a, b, ca, cb = _synthetic()
    f = fuse_arrays(a, b, method, pair=pair, affine=AFFINE)
    _check(f, a, b, ca, cb, f"{pair}/{method}")
    # 2D images (no intensity map) are bounded the same way
    f2 = fuse_arrays(a[:, :, 3], b[:, :, 3], method, pair=pair)
    lo = ndimage.minimum_filter(np.minimum(a[:, :, 3], b[:, :, 3]), 3, mode="nearest")
    hi = ndimage.maximum_filter(np.maximum(a[:, :, 3], b[:, :, 3]), 3, mode="nearest")
    assert (f2 <= hi + OUTPUT_MARGIN + 1e-5).all() and (f2 >= lo - OUTPUT_MARGIN - 1e-5).all()


def test_unbounded_multiscale_fusion_does_overshoot():
    """The test sees halos: the textbook Laplacian pyramid (``margin=None``) overshoots at the edges."""
    a, b, ca, cb = _synthetic()
    f = fuse_classical(a, b, "laplacian", affine=AFFINE, margin=None, rule="max_abs")
    overshoot, _, _ = _figures(a, b, f, ca, cb)
    assert overshoot > OUTPUT_MARGIN


@pytest.fixture(scope="module")
def phantom_pet():
    from medfuse.intensity import normalize
    from medfuse.intensity.mask import head_mask
    from medfuse.phantom import make_case
    from medfuse.registration.resample import resample_to_reference

    case = make_case("pet", 0, rotation_deg=0, translation_mm=0)
    moving = resample_to_reference(case.moving, case.mri)
    mask = head_mask(case.mri, "MR") | head_mask(moving, "PT")
    return normalize(case.mri), normalize(moving), mask


@pytest.mark.parametrize("method", CLASSICAL + [_defaults()["pet_mri"]])
def test_phantom_is_consistent_in_every_plane(phantom_pet, method):
    """Slice-to-slice difference (axial neighbours, inside the head) of the fused phantom PET is at
    most PLANE_RATIO times the larger of the sources': a 2D method does not stripe in the other planes."""
    from medfuse.volume import to_axial

    ref, mov, mask = phantom_pet
    f = fuse_arrays(ref.array, mov.array, method, pair="pet_mri", affine=ref.affine)
    a, b, f, m = (to_axial(x, ref.affine) for x in (ref.array, mov.array, f, mask))
    both = m[:, :, 1:] & m[:, :, :-1]

    def dz(v):
        return float(np.abs(np.diff(v.astype(np.float64), axis=2))[both].mean())

    assert dz(f) / max(dz(a), dz(b)) <= PLANE_RATIO, method
