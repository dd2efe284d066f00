"""``light``: a lightweight fusion network for CPU speed, in the spirit of AE-Netv2.

Reference:
    Fang et al., *AE-Netv2: optimization of image fusion efficiency and network architecture*
    (``../shared/papers/003_7c5282c5fbda296f.txt``): a network of a few thousand parameters built
    from plain convolution blocks plus group convolutions with channel shuffle, and a variant with
    pooling layers and U-Net skip connections (their Fig. 3), which keeps fine texture through the
    skips while pooling brings larger-scale context.

Our design (choices the paper leaves open, chosen for CPU speed and measured; see
``docs``/the helper note for numbers):

* **Space-to-depth stem.** The concatenated pair is rearranged losslessly into ``2**d`` times more
  channels at half resolution (pixel unshuffle) and the network works from there; the output is
  produced at half resolution with ``2**d`` channels per output channel and rearranged back (pixel
  shuffle, as in ESPCN). On CPU the full-resolution activations dominate run time (memory traffic,
  not arithmetic); this keeps every full-resolution detail (the stem is lossless and the stem's
  input is skip-connected to the head) while no convolution runs at full resolution.
* **U-Net with pooling**: two max-pool levels below the stem, group convolutions + channel
  shuffle at the low resolutions (as AE-Netv2's GCB), skip connections by concatenation,
  nearest-neighbour upsampling.
* Output ``sigmoid``: values in (0, 1).

The total downsampling factor is 8 (stem 2 x two pools), so spatial sizes must be divisible by 8;
:mod:`medfuse.inference` pads and crops.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medfuse.networks.blocks import (
    ChannelShuffle,
    DepthToSpace,
    LayerSpec,
    SpaceToDepth,
    check_features,
    check_input,
    check_positive,
    check_spatial_dims,
    conv_norm_act,
    pool_layer,
    resize_like,
)

__all__ = ["LightFusionNet"]


class LightFusionNet(nn.Module):
    """Lightweight U-Net fusion network (AE-Netv2 style): a few thousand parameters, fast on CPU.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels per modality (1 for gray images).
        out_channels: channels of the fused image.
        features: channels at the three internal levels ``(1/2, 1/4, 1/8)`` of the input size.
        groups: groups of the group convolutions at the ``1/4`` and ``1/8`` levels (every entry of
            ``features`` must be divisible by it); 1 disables group convolution.
        act: MONAI activation spec, e.g. ``("relu", {"inplace": True})``.
        norm: MONAI normalization spec or ``None`` (default: none, so the network keeps the
            images' contrast and runs fastest; AE-Netv2 uses batch norm: ``("batch", {})``).

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
        >>> net3d = LightFusionNet(spatial_dims=3, features=(8, 16, 16))
        >>> net3d(torch.rand(1, 2, 16, 16, 16)).shape
        torch.Size([1, 1, 16, 16, 16])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (12, 24, 24),
        groups: int = 4,
        act: LayerSpec = ("relu", {"inplace": True}),
        norm: LayerSpec = None,
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = check_positive(in_channels, "in_channels")
        self.out_channels = check_positive(out_channels, "out_channels")
        f1, f2, f3 = check_features(features, 3)
        groups = check_positive(groups, "groups")
        if f1 % groups or f2 % groups or f3 % groups:
            raise ValueError(f"groups={groups} must divide every entry of features={tuple(features)}")
        self.size_divisor = 8
        d = self.spatial_dims
        stem_channels = 2 * self.in_channels * 2**d

        self.stem = SpaceToDepth(d, 2)
        self.enc1 = conv_norm_act(d, stem_channels, f1, 3, act=act, norm=norm)
        self.pool1 = pool_layer(d, "max", 2)
        self.enc2 = nn.Sequential(conv_norm_act(d, f1, f2, 3, groups=groups, act=act, norm=norm), ChannelShuffle(groups))
        self.pool2 = pool_layer(d, "max", 2)
        self.bottom = nn.Sequential(conv_norm_act(d, f2, f3, 3, groups=groups, act=act, norm=norm),
                                    ChannelShuffle(groups))
        self.dec2 = nn.Sequential(conv_norm_act(d, f3 + f2, f1, 3, groups=groups, act=act, norm=norm),
                                  ChannelShuffle(groups))
        self.dec1 = conv_norm_act(d, 2 * f1, f1, 3, act=act, norm=norm)
        conv_out = self.out_channels * 2**d
        self.head = conv_norm_act(d, f1 + stem_channels, conv_out, 3, act=None, norm=None)
        self.unstem = DepthToSpace(d, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fuse ``x`` ``(N, 2 * in_channels, *S)`` into ``(N, out_channels, *S)`` in (0, 1)."""
        check_input(x, 2 * self.in_channels, self.spatial_dims, self.size_divisor, "LightFusionNet")
        s = self.stem(x)
        e1 = self.enc1(s)
        e2 = self.enc2(self.pool1(e1))
        b = self.bottom(self.pool2(e2))
        d2 = self.dec2(torch.cat([resize_like(b, e2), e2], dim=1))
        d1 = self.dec1(torch.cat([resize_like(d2, e1), e1], dim=1))
        return torch.sigmoid(self.unstem(self.head(torch.cat([d1, s], dim=1))))
