"""``light``: a lightweight fusion network for CPU speed, in the spirit of AE-Netv2.

Reference:
    Fang et al., *AE-Netv2: optimization of image fusion efficiency and network architecture*
    (``../shared/papers/003_7c5282c5fbda296f.txt``): a network of a few thousand parameters built
    from plain convolution blocks plus group convolutions with channel shuffle, and a variant with
    pooling layers and U-Net skip connections (their Fig. 3), which keeps fine texture through the
    skips while pooling brings larger-scale context.

Our design (choices the paper leaves open, made for CPU speed and measured on 2 cores):

* **Space-to-depth stem.** The concatenated pair is rearranged losslessly into ``2**d`` times more
  channels at half resolution (pixel unshuffle); the output is predicted at half resolution with
  ``2**d`` channels per output channel and rearranged back (pixel shuffle, as in ESPCN). On CPU
  full-resolution activations dominate run time (memory traffic more than arithmetic); this way no
  convolution runs at full resolution, yet every full-resolution detail is kept: the stem is
  lossless and is skip-connected to the output head.
* **U-Net with pooling** (AE-Netv2 Fig. 3): two 2x max-pool levels below the stem; group
  convolutions + channel shuffle at the low resolutions (AE-Netv2's GCB); skips are added
  (LinkNet-style) rather than concatenated, which halves the cost of the decoder convolutions;
  nearest-neighbour upsampling; a 1x1 output head; ``sigmoid`` output in (0, 1).
* 2D tensors run in channels-last memory layout inside the network (faster oneDNN kernels and
  pooling on CPU; the output is returned as a regular tensor).

Measured (defaults, 2D, 256x256 slices in batches of 16, torch 2.13 CPU, shared 2-core
machine): 7,512 parameters, 0.100 GFLOP per slice, ~9 ms per slice with 1 thread and 5.1-5.8 ms
with 2 threads (target <= 10 ms). Concatenated skips, a 3x3 head and 4 groups (the first
version) took 17-18 ms with 1 thread; most of the gain came from the additive skips, the 1x1 head
and the channels-last layout (channel shuffle in channels-last memory costs one copy).

The total downsampling factor is 8 (stem 2 x two pools): spatial sizes must be divisible by 8;
:mod:`medfuse.inference` pads and crops.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medfuse.networks.blocks import (
    FusionNetwork,
    ChannelShuffle,
    DepthToSpace,
    LayerSpec,
    SpaceToDepth,
    check_features,
    check_positive,
    conv_norm_act,
    pool_layer,
    resize_like,
)

__all__ = ["LightFusionNet"]


class LightFusionNet(FusionNetwork):
    """Lightweight U-Net fusion network (AE-Netv2 style): a few thousand parameters, fast on CPU.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels per modality (1 for gray images).
        out_channels: channels of the fused image.
        features: channels at 1/2 of the input size and at the 1/4 and 1/8 levels.
        groups: groups of the group convolutions at the 1/4 and 1/8 levels (both ``features``
            must be divisible by it); 1 disables group convolution.
        act: MONAI activation spec, e.g. ``("relu", {"inplace": True})``.
        norm: MONAI normalization spec or ``None`` (default: none, so the network keeps the
            images' contrast and runs fastest; AE-Netv2 uses batch norm: ``("batch", {})``).
        output: the output head, ``"image"``, ``"blend"``, ``"anchor"`` or ``"pyramid"``
            (:class:`~medfuse.networks.blocks.FusionNetwork`). light's config uses ``"blend"``:
            measured on the Harvard validation cases (benchmarks/quality.py), the image head blurred
            fine texture.
        anchor_gain: the fixed gain of the max selection of ``output="anchor"`` (ignored otherwise).

    Shapes:
        input ``(N, 2 * in_channels, H, W[, D])``: channel(s) ``[:in_channels]`` the anatomical
        MRI, the rest the other scan, registered and normalized to [0, 1]; sizes divisible by 8.
        Output ``(N, out_channels, H, W[, D])`` in (0, 1).

    Raises:
        ValueError: invalid arguments.

    Example:
        >>> import torch
        >>> net = LightFusionNet(spatial_dims=2)
        >>> net(torch.rand(4, 2, 64, 64)).shape
        torch.Size([4, 1, 64, 64])
        >>> net3d = LightFusionNet(spatial_dims=3, features=(8, 16))
        >>> net3d(torch.rand(1, 2, 16, 16, 16)).shape
        torch.Size([1, 1, 16, 16, 16])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (12, 24),
        groups: int = 2,
        act: LayerSpec = ("relu", {"inplace": True}),
        norm: LayerSpec = None,
        output: str = "image",
        anchor_gain: float = 25.0,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, size_divisor=8, output=output,
                         anchor_gain=anchor_gain)
        f1, f2 = check_features(features, 2)
        groups = check_positive(groups, "groups")
        if f1 % groups or f2 % groups:
            raise ValueError(f"groups={groups} must divide every entry of features={tuple(features)}")
        d = self.spatial_dims
        stem_channels = 2 * self.in_channels * 2**d

        self.stem = SpaceToDepth(d, 2)
        self.enc1 = conv_norm_act(d, stem_channels, f1, 3, act=act, norm=norm)  # 1/2
        self.pool1 = pool_layer(d, "max", 2)
        self.enc2 = nn.Sequential(conv_norm_act(d, f1, f2, 3, groups=groups, act=act, norm=norm),
                                  ChannelShuffle(groups))  # 1/4
        self.pool2 = pool_layer(d, "max", 2)
        self.bottom = nn.Sequential(conv_norm_act(d, f2, f2, 3, groups=groups, act=act, norm=norm),
                                    ChannelShuffle(groups))  # 1/8
        self.dec2 = nn.Sequential(conv_norm_act(d, f2, f1, 3, groups=groups, act=act, norm=norm),
                                  ChannelShuffle(groups))  # 1/4, input: up(bottom) + enc2
        self.dec1 = conv_norm_act(d, f1, f1, 3, act=act, norm=norm)  # 1/2, input: up(dec2) + enc1
        self.head = conv_norm_act(d, f1 + stem_channels, self.head_channels * 2**d, 1, act=None, norm=None)
        self.unstem = DepthToSpace(d, 2)
        self.subpixel_factor = self.unstem.factor  # one head channel per sub-pixel phase (medfuse.inference)
        self.init_head(self.head)  # output="anchor"/"pyramid": untrained = the classical rule it is anchored on

    def _head_output(self, x: torch.Tensor) -> torch.Tensor:
        """The head's output at full resolution (before sigmoid / the blend)."""
        self.check_input(x)
        s = self.stem(x)
        if self.spatial_dims == 2:
            s = s.contiguous(memory_format=torch.channels_last)
        e1 = self.enc1(s)
        e2 = self.enc2(self.pool1(e1))
        b = self.bottom(self.pool2(e2))
        d2 = self.dec2(resize_like(b, e2) + e2)
        d1 = self.dec1(resize_like(d2, e1) + e1)
        return self.unstem(self.head(torch.cat([d1, s], dim=1))).contiguous()
