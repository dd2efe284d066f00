"""Classical fusion baselines: shapes, identity, mean/max voxelwise, detail selection, 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.classical import (
    CLASSICAL_METHODS,
    OUTPUT_MARGIN,
    clamp_to_local_range,
    fuse_classical,
    guided_filter,
    laplacian_pyramid,
    reconstruct_laplacian_pyramid,
)
from medfuse.errors import NonFiniteError, SpaceMismatchError

METHODS = ["mean", "max", "laplacian", "wavelet", "guided"]


def _image(seed: int, shape=(96, 80)) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random(shape), (2, 2) + (0,) * (len(shape) - 2))
    return (x - x.min()) / (x.max() - x.min())


def test_registry_lists_the_five_methods():
    assert list(CLASSICAL_METHODS) == METHODS


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(96, 80), (64, 72, 5)], ids=["2d", "3d"])
def test_shape_and_dtype(method, shape):
    """(The values are checked below: identity, mean/max voxelwise, detail selection. fuse_classical clips to
    [0, 1] by construction, so a range check here could not fail.)"""
    a, b = _image(0, shape), _image(1, shape)
    f = fuse_classical(a, b, method)
    assert f.shape == shape and f.dtype == np.float32


@pytest.mark.parametrize("method", METHODS)
def test_identical_inputs_give_the_input_back(method):
    a = _image(2)
    np.testing.assert_allclose(fuse_classical(a, a, method), a, atol=1e-6)


@pytest.mark.parametrize("method", ["laplacian", "wavelet", "guided"])
def test_volumes_are_fused_slice_by_slice(method):
    a, b = _image(3, (64, 64, 4)), _image(4, (64, 64, 4))
    vol = fuse_classical(a, b, method)
    for k in range(4):
        np.testing.assert_allclose(vol[..., k], fuse_classical(a[..., k], b[..., k], method), atol=1e-6)


def test_mean_and_max_are_voxelwise():
    a, b = _image(5, (32, 32, 3)), _image(6, (32, 32, 3))
    np.testing.assert_allclose(fuse_classical(a, b, "mean"), (a + b) / 2, atol=1e-7)
    np.testing.assert_array_equal(fuse_classical(a, b, "max"), np.maximum(a, b).astype(np.float32))


def _half_textured(seed: int, left: bool) -> np.ndarray:
    """0.5 everywhere with a fine high-contrast checkerboard texture on one half."""
    x = np.full((128, 128), 0.5)
    yy, xx = np.mgrid[:128, :128]
    tex = 0.5 + 0.3 * np.where((yy // 2 + xx // 2) % 2 == 0, 1.0, -1.0)
    side = (slice(None), slice(0, 64)) if left else (slice(None), slice(64, 128))
    x[side] = tex[side]
    return x


@pytest.mark.parametrize("method", ["laplacian", "wavelet", "guided"])
def test_each_region_keeps_the_stronger_detail(method):
    """Multi-scale rules take the larger-magnitude detail: textures from both halves survive."""
    a, b = _half_textured(0, left=True), _half_textured(1, left=False)
    f = fuse_classical(a, b, method)
    inner_left = (slice(16, -16), slice(16, 48))
    inner_right = (slice(16, -16), slice(80, 112))
    for src, region in ((a, inner_left), (b, inner_right)):
        # almost all of the texture's contrast is kept (mean fusion would keep half of it)
        kept = np.std(f[region]) / np.std(src[region])
        assert kept > 0.9, (method, kept)
    mean_kept = np.std(fuse_classical(a, b, "mean")[inner_left]) / np.std(a[inner_left])
    assert mean_kept == pytest.approx(0.5, abs=0.01)


def test_laplacian_pyramid_reconstructs_exactly_and_selects_max_abs_details():
    a, b = _image(7, (100, 90)), _image(8, (100, 90))
    pa = laplacian_pyramid(a, 4)
    assert len(pa) == 5 and pa[-1].shape == (7, 6)
    np.testing.assert_allclose(reconstruct_laplacian_pyramid(pa), a, atol=1e-12)
    pb = laplacian_pyramid(b, 4)
    chosen = [np.where(np.abs(x) >= np.abs(y), x, y) for x, y in zip(pa[:-1], pb[:-1])]
    expected = reconstruct_laplacian_pyramid(chosen + [(pa[-1] + pb[-1]) / 2])
    np.testing.assert_allclose(fuse_classical(a, b, "laplacian", margin=None, rule="max_abs"),
                               np.clip(expected, 0, 1), atol=1e-6)
    # the default is the same rule bounded to the sources' local range (medfuse.classical.clamp_to_local_range)
    bounded = np.clip(clamp_to_local_range(expected, a, b, OUTPUT_MARGIN), 0, 1)
    np.testing.assert_allclose(fuse_classical(a, b, "laplacian", rule="max_abs"), bounded, atol=1e-6)


def test_clamp_to_local_range_bounds():
    rng = np.random.default_rng(3)
    a, b = rng.random((40, 40)), rng.random((40, 40))
    wild = rng.uniform(-1.0, 2.0, (40, 40))
    out = clamp_to_local_range(wild, a, b, 0.05)
    from scipy import ndimage

    lo = ndimage.minimum_filter(np.minimum(a, b), 3, mode="nearest")
    hi = ndimage.maximum_filter(np.maximum(a, b), 3, mode="nearest")
    assert (out >= lo - 0.05 - 1e-12).all() and (out <= hi + 0.05 + 1e-12).all()
    assert (out <= 0.5 * (1 + np.maximum(a, b)) + 1e-12).all() and (out >= 0.5 * np.minimum(a, b) - 1e-12).all()
    inside = 0.5 * (a + b)
    np.testing.assert_array_equal(clamp_to_local_range(inside, a, b, 0.05), inside)  # in range: untouched


def test_small_images_use_fewer_levels():
    a = _image(9, (10, 12))
    assert len(laplacian_pyramid(a, 4)) == 2  # one halving keeps >= 4 px per side
    np.testing.assert_allclose(fuse_classical(a, a, "wavelet", levels=5), a, atol=1e-6)


def test_guided_filter_is_edge_preserving_smoothing():
    step = np.zeros((64, 64))
    step[:, 32:] = 1.0
    noisy = step + np.random.default_rng(0).normal(0, 0.05, step.shape)
    out = guided_filter(step, noisy, radius=4, eps=1e-3)
    assert np.std(out[:, :28] - 0.0) < 0.03 and abs(out[:, 36:].mean() - 1.0) < 0.02  # smoothed
    assert out[:, 34].mean() - out[:, 29].mean() > 0.9  # the edge stays sharp


def test_options_reach_the_method():
    a, b = _image(10), _image(11)
    assert not np.allclose(fuse_classical(a, b, "wavelet", wavelet="haar", levels=1),
                           fuse_classical(a, b, "wavelet"))
    with pytest.raises(TypeError):
        fuse_classical(a, b, "mean", levels=3)


def test_bad_inputs():
    a = _image(12)
    with pytest.raises(ValueError, match="laplacian"):
        fuse_classical(a, a, "laplacain")
    with pytest.raises(SpaceMismatchError, match="register/resample"):
        fuse_classical(a, a[:50], "mean")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fuse_classical(a * 255, a, "mean")
    bad = a.copy()
    bad[0, 0] = np.nan
    with pytest.raises(NonFiniteError):
        fuse_classical(bad, a, "max")


def test_missing_pywavelets_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pywt":
            raise ImportError("No module named 'pywt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    a = _image(13)
    with pytest.raises(ImportError, match=r"pip install PyWavelets"):
        fuse_classical(a, a, "wavelet")
