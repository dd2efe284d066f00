"""The multiscale double-branch residual attention network."""

from __future__ import annotations

import doctest

import pytest
import torch

import medfuse.networks.msra as msra_module
from medfuse.networks import MSRANet
from medfuse.networks.msra import MultiscaleResidualAttentionBlock


@pytest.mark.parametrize("dims", [2, 3])
def test_block_branches(dims):
    block = MultiscaleResidualAttentionBlock(dims, 6, dilations=(1, 2, 3), kernel_sizes=(3, 5))
    assert len(block.dilated) == 3 and len(block.kernels) == 2
    assert [c[0].dilation[0] for c in block.dilated] == [1, 2, 3]
    assert [c[0].kernel_size[0] for c in block.kernels] == [3, 5]
    x = torch.rand((1, 6) + (8,) * dims)
    assert block(x).shape == x.shape


def test_block_is_residual():
    """With the merge convolution zeroed the block is the identity."""
    block = MultiscaleResidualAttentionBlock(2, 4)
    with torch.no_grad():
        block.merge[0].weight.zero_()
        block.merge[0].bias.zero_()
    x = torch.rand(1, 4, 8, 8)
    assert torch.allclose(block(x), x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        MultiscaleResidualAttentionBlock(2, 5, dilations=(1, 2))
    with pytest.raises(ValueError, match="odd"):
        MSRANet(kernel_sizes=(3, 4))
    with pytest.raises(ValueError, match="num_blocks"):
        MSRANet(num_blocks=0)


def test_docstring_examples():
    assert doctest.testmod(msra_module, raise_on_error=True).attempted >= 2
