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


@pytest.mark.parametrize("factor", [2, 3])
def test_depth_to_space_from_channels_last_equals_pixel_shuffle(factor):
    """The light network's head is channels-last: DepthToSpace moves it in one copy, the same values (and
    gradients) as F.pixel_shuffle on the contiguous tensor."""
    x = torch.rand(2, 5 * factor**2, 6, 7).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y = DepthToSpace(2, factor)(x)
    ref = torch.nn.functional.pixel_shuffle(x.detach().contiguous(), factor)
    assert torch.equal(y, ref) and y.is_contiguous()
    g = torch.rand_like(ref)
    (y * g).sum().backward()
    x2 = x.detach().contiguous().requires_grad_(True)
    (torch.nn.functional.pixel_shuffle(x2, factor) * g).sum().backward()
    assert torch.equal(x.grad, x2.grad)


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


# The layer lookups replace MONAI's factories (importing MONAI costs seconds on every `medfuse fuse`):
# same classes, same arguments, same errors, so networks and their checkpoints are unchanged.
ACT_SPECS = ["relu", "RELU", ("relu", {"inplace": True}), ["leakyrelu", {"negative_slope": 0.2}], "prelu",
             ("PReLU", {"num_parameters": 1, "init": 0.1}), "gelu", "sigmoid", "tanh", "elu", "selu", "celu",
             "relu6", ("softmax", {"dim": 1}), "logsoftmax", "swish", "mish", "memswish"]
NORM_SPECS = ["instance", ("instance", {"affine": True}), "batch", ("BATCH", {"momentum": 0.2}),
              ("group", {"num_groups": 2}), ("group", {"num_groups": 4, "num_channels": 8}),
              ("layer", {"normalized_shape": 8}), ("localresponse", {"size": 3})]


def _spec(spec):
    return tuple(spec) if isinstance(spec, list) else spec


@pytest.mark.parametrize("spec", ACT_SPECS)
def test_act_layer_as_monai(spec):
    from monai.networks.layers.utils import get_act_layer as monai_act

    from medfuse.networks.blocks import get_act_layer

    ours, theirs = get_act_layer(_spec(spec)), monai_act(_spec(spec))
    assert type(ours) is type(theirs) and repr(ours) == repr(theirs)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("spec", NORM_SPECS)
def test_norm_layer_as_monai(spec, dims):
    from monai.networks.layers.utils import get_norm_layer as monai_norm

    from medfuse.networks.blocks import get_norm_layer

    ours, theirs = get_norm_layer(spec, spatial_dims=dims, channels=8), monai_norm(spec, spatial_dims=dims, channels=8)
    assert type(ours) is type(theirs) and repr(ours) == repr(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("bad", [("relu",), 3, ("nope", {}), "nope", ("relu", "inplace")])
def test_layer_spec_errors_as_monai(bad):
    from monai.networks.layers.utils import get_act_layer as monai_act

    from medfuse.networks.blocks import get_act_layer

    with pytest.raises(Exception) as theirs:
        monai_act(bad)
    with pytest.raises(type(theirs.value)):
        get_act_layer(bad)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_and_pool_lookup_as_monai(dims):
    from monai.networks.layers.factories import Conv as MonaiConv
    from monai.networks.layers.factories import Pool as MonaiPool

    from medfuse.networks.blocks import Conv, Pool

    assert Conv[Conv.CONV, dims] is MonaiConv[MonaiConv.CONV, dims]
    assert Pool[Pool.MAX, dims] is MonaiPool[MonaiPool.MAX, dims]
    assert Pool[Pool.AVG, dims] is MonaiPool[MonaiPool.AVG, dims]


def test_blocks_with_norm_and_act_specs():
    x = torch.rand(2, 4, 8, 8)
    block = conv_norm_act(2, 4, 8, 3, act=["leakyrelu", {"negative_slope": 0.1}], norm=("group", {"num_groups": 2}))
    assert [type(m).__name__ for m in block] == ["Conv2d", "GroupNorm", "LeakyReLU"]
    assert block[0].bias is None and block(x).shape == (2, 8, 8, 8)
    assert type(ResidualBlock(3, 4, act="prelu", norm="instance").conv1[1]).__name__ == "InstanceNorm3d"
