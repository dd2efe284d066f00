"""Shared network blocks."""

from __future__ import annotations

import pytest
import torch

from medfuse.networks.blocks import (
    ChannelAttention,
    ChannelShuffle,
    DenseBlock,
    DepthToSpace,
    ResidualBlock,
    SpaceToDepth,
    SpatialAttention,
    conv_norm_act,
)


@pytest.mark.parametrize("dims", [2, 3])
def test_space_to_depth_is_lossless(dims):
    x = torch.rand((2, 3) + (4,) * dims)
    s = SpaceToDepth(dims, 2)(x)
    assert s.shape == (2, 3 * 2**dims) + (2,) * dims
    assert torch.equal(DepthToSpace(dims, 2)(s), x)


def test_space_to_depth_3d_layout():
    """Channel c*8 + (dy*4 + dx*2 + dz) holds voxel (2i+dy, 2j+dx, 2k+dz), as pixel_unshuffle does in 2D."""
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 1, 2, 4, 6)
    s = SpaceToDepth(3, 2)(x)
    assert s[0, 0 * 4 + 1 * 2 + 1, 0, 1, 2] == x[0, 0, 0, 3, 5]
    assert s[0, 1 * 4 + 0 * 2 + 0, 0, 0, 0] == x[0, 0, 1, 0, 0]


def test_channel_shuffle():
    x = torch.arange(6, dtype=torch.float32).reshape(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert torch.equal(ChannelShuffle(1)(x), x)


@pytest.mark.parametrize("dims", [2, 3])
def test_block_shapes(dims):
    x = torch.rand((1, 8) + (6,) * dims)
    assert ResidualBlock(dims, 8)(x).shape == x.shape
    dense = DenseBlock(dims, 8, 4, 3)
    assert dense(x).shape[1] == dense.out_channels == 20
    assert ChannelAttention(dims, 8)(x).shape == x.shape
    assert SpatialAttention(dims)(x).shape == x.shape
    assert conv_norm_act(dims, 8, 4, 3, stride=2)(x).shape == (1, 4) + (3,) * dims


def test_attention_gates_scale_between_zero_and_input():
    x = torch.rand(2, 4, 5, 5) + 0.1
    for gate in (ChannelAttention(2, 4), SpatialAttention(2)):
        y = gate(x)
        assert torch.all(y >= 0) and torch.all(y <= x)


def test_conv_norm_act_errors():
    with pytest.raises(ValueError, match="groups"):
        conv_norm_act(2, 6, 4, groups=4)
    with pytest.raises(ValueError, match="odd"):
        conv_norm_act(2, 4, 4, kernel_size=2)
