"""The lightweight (AE-Netv2 style) network."""

from __future__ import annotations

import doctest

import pytest
import torch

import medfuse.networks.light as light_module
from medfuse.networks import LightFusionNet, count_parameters


def test_few_thousand_parameters_and_group_convolutions():
    net = LightFusionNet()
    assert 1000 < count_parameters(net) < 10_000
    groups = [m.groups for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(groups) == 2
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 2


def test_no_convolution_runs_at_full_resolution():
    """The speed design: every convolution sees at most half the input size."""
    net = LightFusionNet()
    sizes = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: sizes.append(inp[0].shape[-1]))
             for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    net(torch.rand(1, 2, 64, 64))
    for h in hooks:
        h.remove()
    assert sizes and max(sizes) <= 32


def test_full_resolution_detail_reaches_the_output():
    """The lossless stem is skip-connected to the head: a one-pixel change moves that pixel."""
    torch.manual_seed(0)
    net = LightFusionNet().eval()
    x = torch.rand(1, 2, 32, 32, requires_grad=True)
    net(x)[0, 0, 17, 9].backward()
    assert float(x.grad[0, 0, 17, 9].abs()) > 0 and float(x.grad[0, 1, 17, 9].abs()) > 0


def test_runs_channels_last_inside_returns_contiguous():
    y = LightFusionNet()(torch.rand(2, 2, 16, 16))
    assert y.is_contiguous()


def test_bad_groups():
    with pytest.raises(ValueError, match="groups"):
        LightFusionNet(features=(12, 24), groups=5)


def test_docstring_examples():
    assert doctest.testmod(light_module, raise_on_error=True).attempted >= 2
