"""The network registry and the properties every fusion network shares (2D and 3D)."""

from __future__ import annotations

import warnings

import pytest
import torch

from medfuse.errors import UnsupportedInputError
from medfuse.networks import NETWORKS, build_network, count_flops, count_parameters, network_name

# small configurations that keep 3D tests fast
SMALL = {
    "fmmf": {"features": (4, 8, 8)},
    "mdgan": {"features": (4, 8), "growth": 4, "dense_layers": 2},
    "msra": {"features": (4, 8), "num_blocks": 1},
    "light": {"features": (4, 8)},
}


def test_registry_names():
    assert set(NETWORKS) == {"fmmf", "mdgan", "msra", "light"}
    assert network_name("LIGHT") == "light"
    with pytest.raises(UnsupportedInputError, match="ligth|light"):
        network_name("ligth")


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("dims", [2, 3])
def test_forward_backward(name, dims):
    torch.manual_seed(0)
    net = build_network(name, spatial_dims=dims, **SMALL[name])
    size = 16 if dims == 2 else 8
    x = torch.rand((2, 2) + (size,) * dims)
    y = net(x)
    assert y.shape == (2, 1) + (size,) * dims
    assert float(y.detach().min()) >= 0.0 and float(y.detach().max()) <= 1.0
    y.mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_torchscript_export(name, tmp_path):
    torch.manual_seed(0)
    net = build_network(name, **SMALL[name]).eval()
    x = torch.rand(1, 2, 24, 32)
    scripted = torch.jit.script(net)
    path = tmp_path / f"{name}.ts"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-6)
        with warnings.catch_warnings():  # the input-size check is not traced (script keeps it)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(net, x, check_trace=False)
        other = torch.rand(2, 2, 40, 16)
        assert torch.allclose(traced(other), net(other), atol=1e-6)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_size_divisor_enforced(name):
    net = build_network(name, **SMALL[name])
    d = net.size_divisor
    net(torch.rand(1, 2, 2 * d, 3 * d))
    if d > 1:
        with pytest.raises(ValueError, match="divisible"):
            net(torch.rand(1, 2, 2 * d + 1, 2 * d))
    with pytest.raises(ValueError, match=r"\(N, 2"):
        net(torch.rand(1, 3, 2 * d, 2 * d))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_bad_arguments(name):
    with pytest.raises(ValueError, match="spatial_dims"):
        build_network(name, spatial_dims=4)
    with pytest.raises(ValueError, match="in_channels"):
        build_network(name, in_channels=0)
    with pytest.raises(ValueError, match="features"):
        build_network(name, features=(4,))
    with pytest.raises(ValueError, match="invalid arguments"):
        build_network(name, no_such_option=1)


def test_json_style_arguments():
    """Config files give lists where the constructors document tuples."""
    net = build_network("light", features=[4, 8], act=["leakyrelu", {"negative_slope": 0.2}], norm=["batch", {}])
    assert net(torch.rand(2, 2, 16, 16)).shape == (2, 1, 16, 16)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_counters():
    net = build_network("light")
    assert 1000 < count_parameters(net) < 10_000  # "a few thousand parameters"
    flops = count_flops(net, (1, 2, 32, 32))
    assert count_flops(net, (1, 2, 64, 64)) == 4 * flops  # fully convolutional: linear in pixels
    assert net.training  # restored
    # a 3x3 convolution from 2 to 4 channels on 8x8 costs 2 * 8*8 * 4 * 2*9 FLOPs
    conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 2, 8, 8)) == 2 * 64 * 4 * 18


def test_fusion_knows_every_network_without_importing_torch():
    """medfuse.fusion lists the network names itself (so choosing a classical method imports no torch);
    they must be exactly the registry's."""
    from medfuse.fusion import NETWORK_NAMES, available_methods
    from medfuse.networks import NETWORKS

    assert set(NETWORK_NAMES) == set(NETWORKS)
    assert {m for m, kind in available_methods().items() if kind == "network"} == set(NETWORKS)
