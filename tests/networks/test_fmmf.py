"""FMMF: encoder-decoder with feature mutual mapping."""

from __future__ import annotations

import doctest

import pytest
import torch

import medfuse.networks.fmmf as fmmf_module
from medfuse.networks import FMMF
from medfuse.networks.fmmf import MutualMapping


@pytest.mark.parametrize("dims", [2, 3])
def test_mutual_mapping_is_a_convex_combination(dims):
    torch.manual_seed(0)
    mapping = MutualMapping(dims, 8, kv_stride=2)
    fx, fy = torch.rand((2, 8) + (6,) * dims), torch.rand((2, 8) + (6,) * dims)
    fused, logits = mapping(fx, fy)
    assert logits.shape == (2, 16) + (6,) * dims
    lo, hi = torch.minimum(fx, fy), torch.maximum(fx, fy)
    assert torch.all(fused >= lo - 1e-6) and torch.all(fused <= hi + 1e-6)
    same, _ = mapping(fx, fx)  # Map_X + Map_Y = 1: fusing a map with itself returns it
    assert torch.allclose(same, fx, atol=1e-6)


def test_unshared_encoders_and_mapping_use_both_inputs():
    torch.manual_seed(0)
    net = FMMF(features=(4, 8, 8))
    assert net.encoder_x is not net.encoder_y
    assert not torch.equal(net.encoder_x.conv[0].weight, net.encoder_y.conv[0].weight)
    x = torch.rand(1, 2, 16, 16, requires_grad=True)
    net(x).sum().backward()
    assert float(x.grad[:, 0].abs().sum()) > 0 and float(x.grad[:, 1].abs().sum()) > 0


def test_full_attention_and_odd_coarse_sizes():
    net = FMMF(features=(4, 8, 8), kv_stride=1)
    assert net(torch.rand(1, 2, 12, 20)).shape == (1, 1, 12, 20)
    net2 = FMMF(features=(4, 8, 8), kv_stride=2)  # coarse 3x5 grid, keys pooled with ceil
    assert net2(torch.rand(1, 2, 12, 20)).shape == (1, 1, 12, 20)
    with pytest.raises(ValueError, match="kv_stride"):
        FMMF(kv_stride=0)


def test_docstring_examples():
    assert doctest.testmod(fmmf_module, raise_on_error=True).attempted >= 2
