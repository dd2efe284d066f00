"""The multiscale anchored head (``output="pyramid"``, issue 24): untrained it is the classical rule
(max base, local-energy detail selection) computed by an independent implementation
(:func:`medfuse.classical.laplacian_pyramid`, numpy); it reconstructs exactly; it learns; at inference
it keeps the no-halo and flat-noise rules; the differentiable Qabf term agrees with the metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from medfuse.classical import OUTPUT_MARGIN, fuse_laplacian, laplacian_pyramid as np_pyramid, reconstruct_laplacian_pyramid
from medfuse.inference import fuse_slices
from medfuse.losses import FusionLoss, edge_transfer_loss
from medfuse.metrics.gradient import edge_preservation
from medfuse.networks import build_network
from medfuse.networks.pyramid import PYRAMID_LEVELS, laplacian_pyramid, reconstruct

FAMILIES = ["light", "fmmf", "mdgan", "msra"]


def _real_pair(harvard_dir, pair="ct_mri", other="ct", index=3):
    cases = sorted(p for p in (harvard_dir / pair).iterdir() if p.is_dir())
    d = cases[index]
    a = np.asarray(Image.open(d / "mri.png").convert("L"), np.float32) / 255.0
    b = np.asarray(Image.open(d / f"{other}.png").convert("L"), np.float32) / 255.0
    return a, b


def _classical_rule(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Max base; each band-pass coefficient weighted by the sources' 3 x 3 local energies,
    ``w = sigmoid(2 log(E_a / E_b))``; on numpy pyramids (medfuse.classical), scipy filters."""
    pa, pb = np_pyramid(a, PYRAMID_LEVELS), np_pyramid(b, PYRAMID_LEVELS)
    bands = []
    for x, y in zip(pa[:-1], pb[:-1]):
        ex = ndimage.uniform_filter(x * x, 3, mode="nearest") + 1e-8
        ey = ndimage.uniform_filter(y * y, 3, mode="nearest") + 1e-8
        w = 1.0 / (1.0 + (ey / ex) ** 2)
        bands.append(w * x + (1 - w) * y)
    return reconstruct_laplacian_pyramid(bands + [np.maximum(pa[-1], pb[-1])])


def test_pyramid_reconstructs_exactly_and_matches_the_classical_bands():
    x = torch.rand(2, 1, 61, 77)
    assert float((reconstruct(laplacian_pyramid(x, 4)) - x).abs().max()) < 1e-5
    img = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    ours = laplacian_pyramid(torch.from_numpy(img)[None, None], 4)
    theirs = np_pyramid(img, 4)
    for lvl in range(2):  # the fine levels, away from the borders (border handling differs)
        diff = np.abs(ours[lvl][0, 0].numpy() - theirs[lvl])[8:-8, 8:-8]
        assert diff.max() < 1e-5


def test_untrained_pyramid_head_is_the_classical_rule(harvard_dir):
    a, b = _real_pair(harvard_dir)
    net = build_network("light", output="pyramid").eval()
    with torch.no_grad():
        fused = net(torch.from_numpy(np.stack([a, b])[None]))[0, 0].numpy()
    rule = np.clip(_classical_rule(a, b), 0, 1)
    diff = np.abs(fused - rule)[8:-8, 8:-8].mean()  # soft vs hard selection, borders handled differently
    # much closer to the hard rule than to plain max or to the classical mean-base laplacian
    # (measured on this pair: 0.0024 vs 0.041 and 0.069)
    assert diff < 0.004
    assert np.abs(fused - np.maximum(a, b))[8:-8, 8:-8].mean() > 10 * diff
    assert np.abs(fused - fuse_laplacian(a, b, margin=None))[8:-8, 8:-8].mean() > 20 * diff


@pytest.mark.parametrize("family", FAMILIES)
def test_pyramid_head_zero_initialised_and_learns(family):
    net = build_network(family, output="pyramid")
    a = torch.rand(2, 1, 64, 64)
    with torch.no_grad():  # b flat at 0: no detail, base below a's: the rule returns a
        assert float((net(torch.cat([a, torch.zeros_like(a)], 1)) - a).abs().max()) < 2e-3
    x = torch.rand(2, 2, 64, 64)
    loss, _ = FusionLoss({"qabf": 1.0, "ssim": 1.0})(net(x), x[:, :1], x[:, 1:])
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    with pytest.raises(ValueError):
        build_network(family, spatial_dims=3, output="pyramid")
    scripted = torch.jit.script(net.eval())  # every network exports with torch.jit.script
    with torch.no_grad():
        assert torch.allclose(scripted(x[:, :, :40, :56]), net(x[:, :, :40, :56]), atol=1e-6)


def test_pyramid_head_keeps_the_no_halo_and_noise_rules():
    """Step edges plus independent noise (as tests/test_no_halo.py): the composed output stays within
    the 3 x 3 local range + margin, and flat-region noise is not amplified beyond 1.1x."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    ca = np.where(x < 32, 0.25, 0.7)
    cb = np.where((x - 40) ** 2 + (y - 20) ** 2 < 144, 0.85, np.where(y < 44, 0.15, 0.45))
    a = np.clip(ca + rng.normal(0, 0.02, ca.shape), 0, 1).astype(np.float32)
    b = np.clip(cb + rng.normal(0, 0.02, cb.shape), 0, 1).astype(np.float32)
    net = build_network("light", output="pyramid").eval()
    with torch.no_grad():  # a trained-looking departure: random logits in the head
        for p in net.head.parameters():
            p.normal_(0, 0.5)
    fused = fuse_slices(net, a, b)
    lo = ndimage.minimum_filter(np.minimum(a, b), 3) - OUTPUT_MARGIN
    hi = ndimage.maximum_filter(np.maximum(a, b), 3) + OUTPUT_MARGIN
    assert np.all(fused >= lo - 1e-6) and np.all(fused <= hi + 1e-6)
    flat = (ndimage.uniform_filter((np.abs(np.gradient(ca)[0]) + np.abs(np.gradient(ca)[1])
                                    + np.abs(np.gradient(cb)[0]) + np.abs(np.gradient(cb)[1])), 9) == 0)

    def local_std(v):
        m = ndimage.uniform_filter(v, 5)
        return np.sqrt(np.clip(ndimage.uniform_filter(v * v, 5) - m * m, 0, None))

    ratio = np.median(local_std(fused)[flat]) / max(np.median(local_std(a)[flat]), np.median(local_std(b)[flat]))
    assert ratio <= 1.1


def test_edge_transfer_loss_agrees_with_the_metric(harvard_dir):
    a, b = _real_pair(harvard_dir)
    t = lambda v: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))[None, None]  # noqa: E731
    scores = {}
    for name, f in {"max": np.maximum(a, b), "mean": 0.5 * (a + b), "mri": a}.items():
        ours = 1.0 - float(edge_transfer_loss(t(f), t(a), t(b)))
        assert abs(ours - edge_preservation(a * 255, b * 255, f * 255)) < 0.02
        scores[name] = ours
    assert scores["max"] > scores["mri"] > scores["mean"]
    f = t(0.5 * (a + b)).requires_grad_(True)
    edge_transfer_loss(f, t(a), t(b)).backward()
    assert torch.isfinite(f.grad).all() and float(f.grad.abs().sum()) > 0
