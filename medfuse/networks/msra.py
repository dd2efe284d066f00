"""``msra``: multiscale double-branch residual attention fusion network.

References:
    Zhou et al., *Deep learning methods for medical image fusion: a review*
    (``../shared/papers/004_5543e0096ea6a408.txt``), sec. 3.2 (MSRPAN, Fu et al.: multi-scale
    residual pyramid attention for feature extraction) and sec. 4.1.3 (multi-scale residual
    blocks: parallel kernels plus dilated convolutions, MDRB; residual attention blocks).

Structure:

* Unshared shallow feature extractors for the anatomical and the other scan (anatomical and
  functional images have different statistics), concatenated and merged by a 1x1 convolution.
* :class:`MultiscaleResidualAttentionBlock`: two branches on the same input, one **dilated**
  (parallel 3x3 convolutions with dilations ``dilations``: growing receptive fields at the cost of
  a 3x3), one **multi-kernel** (parallel convolutions of sizes ``kernel_sizes``); their outputs
  are concatenated, merged by a 1x1 convolution, re-weighted by **channel attention** then
  **spatial attention** (CBAM order), and added to the input (residual).
* A pyramid of two scales: one block at full resolution, a stride-2 convolution, ``num_blocks``
  blocks at half resolution, upsampling, concatenation with the full-resolution features, a final
  block and a 3x3 output convolution with ``sigmoid`` (values in (0, 1)). Size divisor 2.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medfuse.networks.blocks import (
    FusionNetwork,
    ChannelAttention,
    LayerSpec,
    SpatialAttention,
    check_features,
    check_positive,
    conv_norm_act,
    linear_mode,
    resize_like,
)

__all__ = ["MSRANet", "MultiscaleResidualAttentionBlock"]

_DEFAULT_ACT = ("leakyrelu", {"negative_slope": 0.1, "inplace": True})


class MultiscaleResidualAttentionBlock(nn.Module):
    """Double-branch multi-scale residual block with channel and spatial attention.

    Args:
        spatial_dims: 2 or 3.
        channels: input = output channels (divisible by ``len(dilations)`` and ``len(kernel_sizes)``).
        dilations: dilations of the parallel 3x3 convolutions of the dilated branch.
        kernel_sizes: odd kernel sizes of the parallel convolutions of the multi-kernel branch.
        act: MONAI activation spec.
        norm: MONAI normalization spec or ``None``.
        reduction: channel-attention bottleneck reduction.

    Shape: ``(N, C, *S) -> (N, C, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: int, dilations: Sequence[int] = (1, 2),
                 kernel_sizes: Sequence[int] = (3, 5), act: LayerSpec = _DEFAULT_ACT, norm: LayerSpec = None,
                 reduction: int = 4) -> None:
        super().__init__()
        if not dilations or not kernel_sizes:
            raise ValueError("dilations and kernel_sizes must each hold at least one value")
        if channels % len(dilations) or channels % len(kernel_sizes):
            raise ValueError(
                f"channels={channels} must be divisible by len(dilations)={len(dilations)} and "
                f"len(kernel_sizes)={len(kernel_sizes)}"
            )
        for k in kernel_sizes:
            if k < 1 or k % 2 != 1:
                raise ValueError(f"kernel_sizes must be odd positive integers; got {list(kernel_sizes)}")
        for r in dilations:
            check_positive(r, "dilations entries")
        cd, ck = channels // len(dilations), channels // len(kernel_sizes)
        self.dilated = nn.ModuleList(
            [conv_norm_act(spatial_dims, channels, cd, 3, dilation=r, act=act, norm=norm) for r in dilations]
        )
        self.kernels = nn.ModuleList(
            [conv_norm_act(spatial_dims, channels, ck, k, act=act, norm=norm) for k in kernel_sizes]
        )
        self.merge = conv_norm_act(spatial_dims, 2 * channels, channels, 1, act=None, norm=norm)
        self.channel_attention = ChannelAttention(spatial_dims, channels, reduction)
        self.spatial_attention = SpatialAttention(spatial_dims, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches: list[torch.Tensor] = []
        for conv in self.dilated:
            branches.append(conv(x))
        for conv in self.kernels:
            branches.append(conv(x))
        y = self.merge(torch.cat(branches, dim=1))
        return x + self.spatial_attention(self.channel_attention(y))


class MSRANet(FusionNetwork):
    """Multiscale double-branch residual attention fusion network (MSRPAN-style).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels per modality (1 for gray images).
        out_channels: channels of the fused image.
        features: channels at full and at half resolution.
        num_blocks: residual attention blocks at half resolution.
        dilations: dilations of each block's dilated branch.
        kernel_sizes: kernel sizes of each block's multi-kernel branch.
        act: MONAI activation spec.
        norm: MONAI normalization spec or ``None`` (default none).
        reduction: channel-attention reduction.
        output: the output head, ``"image"`` (default), ``"blend"``, ``"anchor"`` or ``"pyramid"``
            (:class:`~medfuse.networks.blocks.FusionNetwork`); the family's body is unchanged.
        anchor_gain: the fixed gain of the max selection of ``output="anchor"`` (ignored otherwise).

    Shapes:
        input ``(N, 2 * in_channels, H, W[, D])`` (MRI first, then the other scan, registered, in
        [0, 1]); sizes divisible by 2. Output ``(N, out_channels, H, W[, D])`` in (0, 1).

    Raises:
        ValueError: invalid arguments.

    Example:
        >>> import torch
        >>> net = MSRANet(spatial_dims=2)
        >>> net(torch.rand(2, 2, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
        >>> net3d = MSRANet(spatial_dims=3, features=(8, 16), num_blocks=1)
        >>> net3d(torch.rand(1, 2, 16, 16, 16)).shape
        torch.Size([1, 1, 16, 16, 16])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (16, 32),
        num_blocks: int = 2,
        dilations: Sequence[int] = (1, 2),
        kernel_sizes: Sequence[int] = (3, 5),
        act: LayerSpec = _DEFAULT_ACT,
        norm: LayerSpec = None,
        reduction: int = 4,
        output: str = "image",
        anchor_gain: float = 25.0,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, size_divisor=2, output=output,
                         anchor_gain=anchor_gain)
        f0, f1 = check_features(features, 2)
        num_blocks = check_positive(num_blocks, "num_blocks")
        reduction = check_positive(reduction, "reduction")
        d = self.spatial_dims
        self.mode = linear_mode(d)
        block = lambda c: MultiscaleResidualAttentionBlock(d, c, dilations, kernel_sizes, act, norm, reduction)  # noqa: E731
        self.shallow_x = conv_norm_act(d, self.in_channels, f0, 3, act=act, norm=norm)
        self.shallow_y = conv_norm_act(d, self.in_channels, f0, 3, act=act, norm=norm)
        self.merge = conv_norm_act(d, 2 * f0, f0, 1, act=act, norm=norm)
        self.block0 = block(f0)
        self.down = conv_norm_act(d, f0, f1, 3, stride=2, act=act, norm=norm)
        self.blocks1 = nn.Sequential(*[block(f1) for _ in range(num_blocks)])
        self.up_merge = conv_norm_act(d, f0 + f1, f0, 1, act=act, norm=norm)
        self.block_out = block(f0)
        self.head = conv_norm_act(d, f0, self.head_channels, 3, act=None, norm=None)
        self.init_head(self.head)

    def _head_output(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        mri, other = self.split_input(x)
        fx = self.shallow_x(mri)
        fy = self.shallow_y(other)
        s0 = self.block0(self.merge(torch.cat([fx, fy], dim=1)))
        s1 = self.blocks1(self.down(s0))
        y = self.up_merge(torch.cat([s0, resize_like(s1, s0, self.mode)], dim=1))
        return self.head(self.block_out(y))
