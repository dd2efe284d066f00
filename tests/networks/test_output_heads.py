"""The output heads every fusion network shares (``FusionNetwork``): the max-anchored blend head
(``output="anchor"``, issue 14), the blend head, and the unchanged image head of shipped weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medfuse.networks import build_network

FAMILIES = ["light", "fmmf", "mdgan", "msra"]


def _last_conv(net):
    """The family's last convolution (the one that predicts the head's channels)."""
    return net.decoder[-1] if hasattr(net, "decoder") else net.head

WEIGHTS = Path(__file__).resolve().parents[2] / "medfuse" / "weights"


@pytest.mark.parametrize("family", FAMILIES)
def test_untrained_anchor_is_a_soft_max(family):
    torch.manual_seed(0)
    net = build_network(family, output="anchor").eval()
    x = torch.rand(3, 2, 64, 64)
    with torch.no_grad():
        y = net(x)
    assert torch.allclose(y, x.max(dim=1, keepdim=True).values, atol=0.015)
    # where the sources differ clearly it is the max itself
    sure = (x[:, :1] - x[:, 1:2]).abs() > 0.3
    assert torch.allclose(y[sure], x.max(dim=1, keepdim=True).values[sure], atol=1e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_anchor_blend_components_consistent_with_forward(family):
    torch.manual_seed(1)
    net = build_network(family, output="anchor")
    with torch.no_grad():  # a "trained" head: y_w and r no longer zero
        for p in _last_conv(net).parameters():
            p.normal_(0.0, 0.3)
    net.eval()
    x = torch.rand(2, 2, 32, 32)
    with torch.no_grad():
        w, r = net.blend_components(x)
        y = net(x)
    assert w.shape == r.shape == (2, 1, 32, 32)
    assert float(w.min()) >= 0.0 and float(w.max()) <= 1.0 and float(r.abs().max()) < 0.5
    assert float(r.abs().max()) > 1e-3
    assert torch.allclose(y, (w * x[:, :1] + (1 - w) * x[:, 1:2] + r).clamp(0, 1), atol=1e-6)
    # the selection is anchored on A - B with the fixed gain
    with torch.no_grad():
        yw = net._head_output(x)[:, :1]
    assert torch.allclose(w, torch.sigmoid(yw + 25.0 * (x[:, :1] - x[:, 1:2])), atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_anchor_trains_and_has_the_blend_parameters(family):
    blend, anchor = build_network(family, output="blend"), build_network(family, output="anchor")
    assert anchor.blend and anchor.output == "anchor"
    assert {k: v.shape for k, v in blend.state_dict().items()} == {k: v.shape for k, v in anchor.state_dict().items()}
    x = torch.rand(2, 2, 32, 32)
    anchor(x).mean().backward()
    assert any(float(p.grad.abs().sum()) > 0 for p in _last_conv(anchor).parameters())
    with pytest.raises(ValueError):
        build_network(family, output="anchor", in_channels=3, out_channels=3)
    with pytest.raises(ValueError):
        build_network(family, output="weights")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("output", ["image", "blend", "anchor"])
def test_every_head_scripts_and_runs_in_3d(family, output):
    torch.manual_seed(3)
    small = {"light": {"features": (8, 16)}, "fmmf": {"features": (8, 16, 32)}, "mdgan": {"features": (8, 16), "growth": 4},
             "msra": {"features": (8, 16), "num_blocks": 1}}[family]
    net = build_network(family, spatial_dims=3, output=output, **small).eval()
    x = torch.rand(1, 2, 16, 16, 16)
    with torch.no_grad():
        y = net(x)
        assert torch.equal(torch.jit.script(net)(x), y)
    assert y.shape == (1, 1, 16, 16, 16) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert net.head_channels == (1 if output == "image" else 2)


@pytest.mark.parametrize("family", ["fmmf", "mdgan", "msra"])
@pytest.mark.parametrize("pair", ["ct_mri", "pet_mri", "spect_mri"])
def test_shipped_image_head_weights_load_strictly(family, pair):
    """Weights shipped with the image head (``output`` absent from their kwargs) still load strictly."""
    path = WEIGHTS / f"{pair}_{family}.pt"
    if not path.is_file():
        pytest.skip("shipped weights not present")
    from medfuse.training.checkpoint import network_from_checkpoint, read_checkpoint

    net = network_from_checkpoint(read_checkpoint(path), path).eval()
    x = torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 1, 32, 32) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    if net.output == "image":
        assert not net.blend and net.head_channels == 1
        with pytest.raises(ValueError):
            net.blend_components(x)


@pytest.mark.parametrize("pair", ["ct_mri", "pet_mri", "spect_mri"])
def test_shipped_light_weights_load_and_fuse_by_their_head(pair):
    """The shipped ``light`` weights load strictly and the output is exactly their head's formula:
    ``output="blend"`` (SPECT-MRI until session 10): ``clip(sigmoid(y0) A + (1 - sigmoid(y0)) B + tanh(y1) / 2)``;
    ``output="pyramid"`` (CT-MRI and PET-MRI since issue 24, SPECT-MRI since session 10): the clipped pyramid
    composition of the head's per-level logits, which gives a source fused with itself back."""
    path = WEIGHTS / f"{pair}_light.pt"
    if not path.is_file():
        pytest.skip("shipped weights not present")
    from medfuse.networks.pyramid import compose_pyramid
    from medfuse.training.checkpoint import network_from_checkpoint, read_checkpoint

    ckpt = read_checkpoint(path)
    net = network_from_checkpoint(ckpt, path).eval()
    assert net.output == ckpt["network"]["kwargs"]["output"]
    torch.manual_seed(2)
    x = torch.rand(2, 2, 64, 64)
    with torch.no_grad():
        y = net._head_output(x)
        out = net(x)
        if net.output == "pyramid":
            assert net.anchor_gain == 25.0
            expected = compose_pyramid(x[:, :1], x[:, 1:2], y, net.anchor_gain).clamp(0.0, 1.0)
            itself = net(torch.cat([x[:, :1], x[:, :1]], dim=1))
            assert torch.allclose(itself, x[:, :1], atol=1e-5)
        else:
            assert net.output == "blend" and net.anchor_gain == 0.0
            w, r = torch.sigmoid(y[:, :1]), 0.5 * torch.tanh(y[:, 1:])
            expected = (w * x[:, :1] + (1.0 - w) * x[:, 1:2] + r).clamp(0.0, 1.0)
            wc, rc = net.blend_components(x)
            assert torch.equal(wc, w) and torch.equal(rc, r)
    assert torch.equal(out, expected)
