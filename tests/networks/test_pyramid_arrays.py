"""The inference form of the pyramid head's composition (:func:`compose_pyramid_arrays`, numpy) equals the
training form (:func:`compose_pyramid`, torch with autograd) bit for bit: on real Harvard slices with the shipped
networks' own logits, and on odd sizes, batches and negative-stride views with random logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medfuse.networks.pyramid import PYRAMID_LEVELS, compose_pyramid, compose_pyramid_arrays

GAIN = 25.0


def _training_form(a: np.ndarray, b: np.ndarray, logits: np.ndarray, gain: float = GAIN) -> np.ndarray:
    """compose_pyramid as the trainer calls it: torch tensors, gradients on (the logits require them)."""
    y = torch.from_numpy(np.ascontiguousarray(logits)).requires_grad_(True)
    with torch.enable_grad():
        out = compose_pyramid(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b)),
                              y, gain)
    assert out.requires_grad
    return out.detach().numpy()


def _assert_same(a, b, logits, gain=GAIN):
    expected = _training_form(a, b, logits, gain)
    got = compose_pyramid_arrays(a, b, logits, gain)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert torch.equal(torch.from_numpy(np.ascontiguousarray(got)), torch.from_numpy(expected))


@pytest.mark.parametrize("shape", [(1, 1), (7, 9), (255, 256), (3, 200), (129, 127), (64, 33), (256, 256)])
@pytest.mark.parametrize("batch", [1, 3])
def test_equal_on_odd_sizes(shape, batch):
    rng = np.random.default_rng(sum(shape) * 10 + batch)
    a = rng.random((batch, 1, *shape), dtype=np.float32)
    b = rng.random((batch, 1, *shape), dtype=np.float32)
    b[:, :, : shape[0] // 2] = 0.0  # flat zero regions: zero energies, the 1e-8 floor decides
    logits = (3.0 * rng.standard_normal((batch, PYRAMID_LEVELS + 1, *shape))).astype(np.float32)
    _assert_same(a, b, logits)
    _assert_same(a, b, np.zeros_like(logits), 7.5)  # the untrained head: the classical rule


def test_views_of_any_strides():
    """Slices of a stacked volume come as views, reversed ones included (negative strides)."""
    rng = np.random.default_rng(5)
    vol = rng.random((2, 9, 40, 33), dtype=np.float32)
    a, b = vol[0, ::-1, None], vol[1, ::-2, None].repeat(2, axis=0)[:9]  # (9, 1, 40, 33), negative strides
    logits = rng.standard_normal((9, PYRAMID_LEVELS + 1, 40, 33)).astype(np.float32)
    _assert_same(a, b, logits)


def _gray(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), np.float32) / 255.0


@pytest.mark.parametrize("task,other", [("ct_mri", "ct"), ("pet_mri", "pet"), ("spect_mri", "spect")])
def test_equal_on_real_slices_with_the_shipped_logits(harvard_dir, task, other):
    """Real AANLIB pairs, the logits the shipped pyramid network predicts for them (CT-MRI's network for SPECT,
    which ships a blend head): what medfuse.inference composes."""
    from medfuse.inference import _run_padded, load_model, shipped_weights_path

    model, _ = load_model(shipped_weights_path("light", "pet_mri" if task == "pet_mri" else "ct_mri"))
    cases = sorted(p for p in (harvard_dir / task).iterdir() if p.is_dir())
    for d in cases[:: max(len(cases) // 4, 1)][:4]:
        a, b = _gray(d / "mri.png")[None, None], _gray(d / f"{other}.png")[None, None]
        x = torch.from_numpy(np.concatenate([a, b], axis=1))
        logits = _run_padded(model.head_logits, model, x, 4).numpy()
        assert np.abs(logits).max() > 0  # a trained head departs from the classical rule somewhere
        _assert_same(a, b, logits, float(model.anchor_gain))
