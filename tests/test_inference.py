"""Running trained networks over 2D images and 3D volumes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from medfuse.errors import CorruptFileError, NonFiniteError, SpaceMismatchError, UnsupportedInputError
from medfuse.inference import OUTPUT_MARGIN, fuse_with_network, load_model, predict
from medfuse.networks import build_network
from medfuse.networks.blocks import FusionNetwork
from medfuse.training.checkpoint import make_checkpoint, save_checkpoint

KWARGS = {"light": {"features": [4, 8]}, "fmmf": {"features": [4, 8, 8]}}


def _checkpoint(path, name="light", spatial_dims=2, crop=16):
    torch.manual_seed(0)
    model = build_network(name, spatial_dims=spatial_dims, **KWARGS[name])
    save_checkpoint(make_checkpoint(model, name, KWARGS[name], pair="ct_mri", iteration=1, config={"crop": crop}),
                    path)
    return model.eval()


@pytest.fixture
def light_ckpt(tmp_path):
    path = tmp_path / "light.pt"
    return path, _checkpoint(path)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_2d_any_size(light_ckpt):
    path, model = light_ckpt
    a, b = _rand(37, 50), _rand(37, 50, seed=1)
    fused = fuse_with_network(a, b, "light", path, margin=None)
    assert fused.shape == (37, 50) and fused.dtype == np.float32
    assert 0.0 <= fused.min() and fused.max() <= 1.0
    # the padded region does not leak: equal to running the model on an edge-padded 40x56 input
    x = torch.nn.functional.pad(torch.from_numpy(np.stack([a, b]))[None], [0, 6, 0, 3], mode="replicate")
    with torch.no_grad():
        ref = model(x)[0, 0, :37, :50].numpy()
    assert np.allclose(fused, ref, atol=1e-6)
    # by default the output is bounded to the sources' local range (+ OUTPUT_MARGIN)
    bounded = fuse_with_network(a, b, "light", path)
    from scipy import ndimage

    hi = ndimage.maximum_filter(np.maximum(a, b), 3, mode="nearest")
    lo = ndimage.minimum_filter(np.minimum(a, b), 3, mode="nearest")
    assert (bounded <= hi + OUTPUT_MARGIN + 1e-6).all() and (bounded >= lo - OUTPUT_MARGIN - 1e-6).all()


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_2d_network_runs_slice_by_slice(light_ckpt, axis):
    path, _ = light_ckpt
    a, b = _rand(9, 16, 12), _rand(9, 16, 12, seed=1)
    # without the per-volume intensity map (2D images get none) each slice is fused on its own
    fused = fuse_with_network(a, b, "light", path, axis=axis, batch_size=4, match_intensities=False)
    assert fused.shape == a.shape
    k = a.shape[axis] // 2
    one = fuse_with_network(np.take(a, k, axis=axis), np.take(b, k, axis=axis), "light", path)
    assert np.allclose(np.take(fused, k, axis=axis), one, atol=1e-6)
    # with it (the default for volumes of a known pair), one map per volume: slices still independent of batching
    mapped = fuse_with_network(a, b, "light", path, axis=axis, batch_size=4)
    assert np.allclose(mapped, fuse_with_network(a, b, "light", path, axis=axis, batch_size=1), atol=1e-6)


def test_3d_network_native_and_sliding_window(tmp_path):
    path = tmp_path / "fmmf3d.pt"
    model = _checkpoint(path, "fmmf", spatial_dims=3, crop=8)
    small_a, small_b = _rand(8, 8, 6), _rand(8, 8, 6, seed=1)
    fused = fuse_with_network(small_a, small_b, "fmmf", path)
    assert fused.shape == (8, 8, 6)
    x = torch.nn.functional.pad(torch.from_numpy(np.stack([small_a, small_b]))[None], [0, 2, 0, 0, 0, 0], mode="replicate")
    with torch.no_grad():
        assert np.allclose(fused, model(x)[0, 0, :, :, :6].numpy(), atol=1e-5)
    big = fuse_with_network(_rand(20, 12, 10), _rand(20, 12, 10, seed=1), "fmmf", path)  # windows of 8^3
    assert big.shape == (20, 12, 10) and 0.0 <= big.min() and big.max() <= 1.0
    with pytest.raises(UnsupportedInputError, match="3D network"):
        fuse_with_network(_rand(8, 8), _rand(8, 8), "fmmf", path)


def test_load_model(light_ckpt):
    path, _ = light_ckpt
    model, info = load_model(path)
    assert not model.training and info["network"]["name"] == "light" and info["pair"] == "ct_mri"
    assert info["spatial_dims"] == 2 and info["size_divisor"] == 8 and "model" not in info
    assert load_model(path)[0] is model  # cached
    out = predict(model, torch.rand(3, 2, 10, 10), batch_size=2)
    assert out.shape == (3, 1, 10, 10)


def test_input_errors(light_ckpt):
    path, _ = light_ckpt
    a = _rand(16, 16)
    with pytest.raises(SpaceMismatchError):
        fuse_with_network(a, _rand(16, 15), "light", path)
    bad = a.copy()
    bad[3, 3] = np.nan
    with pytest.raises(NonFiniteError):
        fuse_with_network(a, bad, "light", path)
    with pytest.raises(UnsupportedInputError, match=r"normalized to \[0, 1\]"):
        fuse_with_network(a * 255, a, "light", path)
    with pytest.raises(UnsupportedInputError, match="2D"):
        fuse_with_network(_rand(2, 2, 2, 2), _rand(2, 2, 2, 2), "light", path)
    with pytest.raises(UnsupportedInputError, match="holds a 'light' network"):
        fuse_with_network(a, a, "msra", path)
    assert fuse_with_network(a, a, None, path).shape == a.shape  # method from the checkpoint
    with pytest.raises(UnsupportedInputError, match="device"):
        fuse_with_network(a, a, "light", path, device="gpu")


def test_no_shipped_weights_says_how_to_train(tmp_path, monkeypatch):
    import medfuse.weights

    monkeypatch.setattr(medfuse.weights, "WEIGHTS_DIR", tmp_path)  # an install without weights
    a = _rand(16, 16)
    with pytest.raises(UnsupportedInputError, match="medfuse train --pair pet_mri --method msra"):
        fuse_with_network(a, a, "msra", pair="pet_mri")
    with pytest.raises(UnsupportedInputError, match="pair"):
        fuse_with_network(a, a, "msra")


def test_unsafe_or_broken_checkpoints_are_refused(tmp_path):
    a = _rand(16, 16)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFileError):
        fuse_with_network(a, a, "light", junk)

    evil = tmp_path / "evil.pt"  # a pickled global (a code-execution vector): weights_only refuses it
    torch.save({"format": "medfuse-fusion-network", "payload": os.system}, evil)
    with pytest.raises(CorruptFileError, match="weights_only"):
        fuse_with_network(a, a, "light", evil)
    other = tmp_path / "other.pt"
    torch.save({"state": torch.zeros(1)}, other)
    with pytest.raises(CorruptFileError, match="not a medfuse"):
        fuse_with_network(a, a, "light", other)
    with pytest.raises(FileNotFoundError):
        fuse_with_network(a, a, "light", tmp_path / "missing.pt")


class _CheckerHead(FusionNetwork):
    """A stand-in network whose weight map flips between the sources pixel by pixel (a checkerboard)."""

    def __init__(self, output: str) -> None:
        super().__init__(2, 1, 1, 1, output=output, anchor_gain=0.0)

    def _head_output(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        checker = (((yy + xx) % 2) * 2 - 1).to(x.dtype) * 20.0
        return torch.stack([checker.expand(x.shape[0], h, w), torch.zeros(x.shape[0], h, w)], dim=1)


def test_anchor_weight_map_is_averaged_so_no_speckle():
    """An anchored head's per-pixel choice is averaged over ANCHOR_WEIGHT_BOX^2 before composing (no
    salt-and-pepper where the choice flips with the noise); a plain blend head is composed as predicted."""
    from medfuse.inference import ANCHOR_WEIGHT_BOX, fuse_slices

    assert ANCHOR_WEIGHT_BOX > 1
    a, b = np.full((32, 32), 0.8, np.float32), np.full((32, 32), 0.2, np.float32)
    kw = dict(match_intensities=False, margin=None, residual_bound=None)
    anchored = fuse_slices(_CheckerHead("anchor").eval(), a, b, **kw)
    plain = fuse_slices(_CheckerHead("blend").eval(), a, b, **kw)
    assert np.allclose(np.unique(plain), [0.2, 0.8])  # the checkerboard itself
    assert anchored.min() >= 0.2 and anchored.max() <= 0.8  # still a convex combination
    assert abs(float(anchored.mean()) - 0.5) < 0.02 and float(anchored.std()) < 0.03


class _PhaseGridHead(_CheckerHead):
    """A stand-in pixel-shuffle network: each 2 x 2 sub-pixel phase has its own weight and residual offset."""

    def __init__(self, factor: int) -> None:
        super().__init__("blend")
        self.subpixel_factor = factor

    def _head_output(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        phase = (yy % 2) * 2 + (xx % 2)  # 0..3
        logit = torch.tensor([-1.0, 0.5, 1.0, -0.3])[phase]
        resid = torch.tensor([0.05, -0.05, 0.02, -0.02])[phase]
        return torch.stack([logit.expand(x.shape[0], h, w), resid.expand(x.shape[0], h, w)], dim=1)


def test_pixel_shuffle_phases_leave_no_grid():
    """A head whose 2 x 2 sub-pixel phases disagree (light's pixel-shuffle output) is low-passed at that
    period before composing: flat sources give a flat fused image; without the declared factor the grid shows."""
    from medfuse.inference import fuse_slices, suppress_subpixel_phases

    a, b = np.full((32, 32), 0.8, np.float32), np.full((32, 32), 0.2, np.float32)
    kw = dict(match_intensities=False, margin=None, residual_bound=None)
    filtered = fuse_slices(_PhaseGridHead(2).eval(), a, b, **kw)
    raw = fuse_slices(_PhaseGridHead(1).eval(), a, b, **kw)
    assert float(raw[4:-4, 4:-4].std()) > 0.05
    assert float(filtered[4:-4, 4:-4].std()) < 1e-5
    ramp = np.tile(np.linspace(0.0, 1.0, 16, dtype=np.float32), (16, 1))[None].copy()
    assert np.allclose(suppress_subpixel_phases(ramp.copy(), 2)[..., 1:-1], ramp[..., 1:-1], atol=1e-6)
    assert np.array_equal(suppress_subpixel_phases(ramp.copy(), 1), ramp)  # factor 1: unchanged


def test_shipped_light_leaves_no_grid_on_smooth_sources():
    """The shipped ``light`` on smooth, noise-free sources (a real template's kind of image): the fused
    image has no more high-frequency content in flat regions than the sources have (it had a 2-pixel
    grid before the sub-pixel filter)."""
    from scipy import ndimage

    from medfuse.inference import _local_contrast, fuse_with_network, shipped_weights_path

    weights = shipped_weights_path("light", "ct_mri")
    if not weights.is_file():
        pytest.skip("shipped light weights not installed")
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    head = np.exp(-(((yy - 0.5) / 0.38) ** 2 + ((xx - 0.5) / 0.32) ** 2) ** 3)
    a = ndimage.gaussian_filter((0.7 * head + 0.15 * np.sin(6 * xx) * head).astype(np.float32), 2)
    b = ndimage.gaussian_filter((0.35 * head + 0.5 * (head > 0.5) * (head < 0.7)).astype(np.float32), 2)
    fused = np.asarray(fuse_with_network(a, b, "light", weights))
    flat = (_local_contrast(a[None], b[None])[0] < 0.05) & (np.maximum(a, b) > 0.1)
    assert flat.sum() > 500
    k = np.array([1.0, 2.0, 1.0]) / 4

    def high(x):
        x = x.astype(np.float64)
        return np.abs(x - ndimage.convolve1d(ndimage.convolve1d(x, k, axis=0), k, axis=1))[flat].mean()

    assert high(fused) <= 1.5 * max(high(a), high(b)) + 1e-3
