"""``fmmf``: encoder-decoder fusion with feature mutual mapping.

Reference:
    Rao et al., *Unsupervised image fusion method based on feature mutual mapping* (FMMF),
    sections 3.1-3.3 (``../shared/papers/002_c3d5f9f507403807.txt``).

Structure (paper sec. 3.1-3.2):

* **Unshared encoders**, one per modality: a 3x3 convolution, then two residual blocks with a
  downsampling before each, giving features at 1, 1/2 and 1/4 of the input size.
* **Mutual mapping** at the coarsest scale (after two downsamplings, as in the paper): the two
  feature maps are correlated position by position (matrix product), passed through a softmax and
  multiplied with the features (cross attention in both directions). From the features and what
  each one gathered from the other modality, a map per modality is formed; the two maps are
  normalized against each other (softmax over the two modalities, so ``Map_X + Map_Y = 1``) and
  ``fuse = Map_X * f_X + Map_Y * f_Y`` (paper eq. 1).
* **Shallower scales**: the deeper maps are upsampled and densely connected (all deeper maps
  are concatenated with the scale's own features) to form that scale's maps; fused by eq. 1.
* **Decoder**: each block concatenates the fused features of its scale with the upsampled decoder
  output of the scale below and convolves (feature aggregation over all scales), then a last
  convolution gives the fused image (``sigmoid``, values in (0, 1)).

Choices the paper leaves open (documented here, measured in the helper note):

* Downsampling is a stride-2 3x3 convolution; upsampling is (bi/tri)linear.
* The correlation uses 1x1-projected queries/keys with ``features[-1] // 2`` channels and scaled
  dot products (``torch.nn.functional.scaled_dot_product_attention``, memory-efficient on CPU
  and GPU); keys/values are average-pooled by ``kv_stride`` (default 2) so that the attention matrix
  stays small: a 256x256 slice has 64x64 queries and 32x32 keys; a 3D 64^3 patch 16^3 queries
  and 8^3 keys.
* Default loss: the variance-selected SSIM (:func:`medfuse.losses.var_ssim_loss`, paper eq. 4-5).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medfuse.networks.blocks import (
    FusionNetwork,
    LayerSpec,
    Pool,
    ResidualBlock,
    check_features,
    check_positive,
    conv_norm_act,
    linear_mode,
    resize_like,
)

__all__ = ["FMMF", "MutualMapping"]

_DEFAULT_ACT = ("leakyrelu", {"negative_slope": 0.1, "inplace": True})


class _Encoder(nn.Module):
    """One modality's encoder: features at scales 1, 1/2 and 1/4."""

    def __init__(self, spatial_dims: int, in_channels: int, features: tuple[int, int, int], act: LayerSpec,
                 norm: LayerSpec) -> None:
        super().__init__()
        f0, f1, f2 = features
        self.conv = conv_norm_act(spatial_dims, in_channels, f0, 3, act=act, norm=norm)
        self.down1 = conv_norm_act(spatial_dims, f0, f1, 3, stride=2, act=act, norm=norm)
        self.res1 = ResidualBlock(spatial_dims, f1, act=act, norm=norm)
        self.down2 = conv_norm_act(spatial_dims, f1, f2, 3, stride=2, act=act, norm=norm)
        self.res2 = ResidualBlock(spatial_dims, f2, act=act, norm=norm)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s0 = self.conv(x)
        s1 = self.res1(self.down1(s0))
        s2 = self.res2(self.down2(s1))
        return [s0, s1, s2]


class MutualMapping(nn.Module):
    """Feature mutual mapping (FMMF eq. 1) at the coarsest scale.

    Each modality's features query the other's (correlation, softmax, product); a 1x1 convolution
    of ``[f, gathered]`` gives per-channel map logits; a softmax across the two modalities turns
    them into ``Map_X``, ``Map_Y`` (summing to 1) and ``fuse = Map_X * f_X + Map_Y * f_Y``.

    Shapes: ``f_x``, ``f_y`` ``(N, C, *S)`` -> ``(fused (N, C, *S), logits (N, 2C, *S))``.
    """

    def __init__(self, spatial_dims: int, channels: int, kv_stride: int = 2) -> None:
        super().__init__()
        conv = lambda i, o: conv_norm_act(spatial_dims, i, o, 1, act=None, norm=None)  # noqa: E731
        qk = max(channels // 2, 1)
        self.qk_channels = qk
        self.q_x, self.q_y = conv(channels, qk), conv(channels, qk)
        self.k_x, self.k_y = conv(channels, qk), conv(channels, qk)
        self.v_x, self.v_y = conv(channels, channels), conv(channels, channels)
        self.map_x, self.map_y = conv(2 * channels, channels), conv(2 * channels, channels)
        pool_type = Pool[Pool.AVG, spatial_dims]
        # ceil_mode: sizes not divisible by kv_stride keep their last (partial) window
        self.pool = pool_type(kv_stride, stride=kv_stride, ceil_mode=True) if kv_stride > 1 else nn.Identity()

    @staticmethod
    def _tokens(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(2).transpose(1, 2)  # (N, L, C)

    def forward(self, f_x: torch.Tensor, f_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        px, py = self.pool(f_x), self.pool(f_y)
        # X's positions gather from Y (correlation Q_x K_y^T, softmax, times V_y), and vice versa
        from_y = F.scaled_dot_product_attention(
            self._tokens(self.q_x(f_x)), self._tokens(self.k_y(py)), self._tokens(self.v_y(py))
        )
        from_x = F.scaled_dot_product_attention(
            self._tokens(self.q_y(f_y)), self._tokens(self.k_x(px)), self._tokens(self.v_x(px))
        )
        from_y = from_y.transpose(1, 2).reshape(f_x.shape)
        from_x = from_x.transpose(1, 2).reshape(f_y.shape)
        logit_x = self.map_x(torch.cat([f_x, from_y], dim=1))
        logit_y = self.map_y(torch.cat([f_y, from_x], dim=1))
        maps = torch.softmax(torch.stack([logit_x, logit_y], dim=0), dim=0)
        fused = maps[0] * f_x + maps[1] * f_y
        return fused, torch.cat([logit_x, logit_y], dim=1)


class _ShallowMapping(nn.Module):
    """Maps at a shallower scale from the upsampled deeper map logits (dense) and this scale's features."""

    def __init__(self, spatial_dims: int, channels: int, deeper_channels: int) -> None:
        super().__init__()
        # 1x1: a position-wise map from the (already spatially aware) features and the deeper maps;
        # a 3x3 here would dominate the network's cost at full resolution
        self.conv = conv_norm_act(spatial_dims, 2 * channels + deeper_channels, 2 * channels, 1, act=None, norm=None)
        self.channels = channels

    def forward(self, f_x: torch.Tensor, f_y: torch.Tensor, deeper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.conv(torch.cat([f_x, f_y, deeper], dim=1))
        c = self.channels
        maps = torch.softmax(torch.stack([logits[:, :c], logits[:, c:]], dim=0), dim=0)
        return maps[0] * f_x + maps[1] * f_y, logits


class FMMF(FusionNetwork):
    """Encoder-decoder fusion network with feature mutual mapping (Rao et al., FMMF).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels per modality (1 for gray images).
        out_channels: channels of the fused image.
        features: channels at scales 1, 1/2, 1/4.
        act: MONAI activation spec.
        norm: MONAI normalization spec or ``None`` (default none: fusion keeps the sources' contrast).
        kv_stride: average pooling of keys/values in the mutual mapping (1: full attention).
        output: the output head, ``"image"`` (default), ``"blend"``, ``"anchor"`` or ``"pyramid"``
            (:class:`~medfuse.networks.blocks.FusionNetwork`); the family's body is unchanged.
        anchor_gain: the fixed gain of the max selection of ``output="anchor"`` (ignored otherwise).

    Shapes:
        input ``(N, 2 * in_channels, H, W[, D])``: the anatomical MRI first, then the other scan,
        registered and normalized to [0, 1]; sizes divisible by 4. Output ``(N, out_channels, H, W[, D])`` in (0, 1).

    Raises:
        ValueError: invalid arguments.

    Example:
        >>> import torch
        >>> net = FMMF(spatial_dims=2)
        >>> net(torch.rand(2, 2, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
        >>> net3d = FMMF(spatial_dims=3, features=(8, 16, 32))
        >>> net3d(torch.rand(1, 2, 16, 16, 16)).shape
        torch.Size([1, 1, 16, 16, 16])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (16, 32, 64),
        act: LayerSpec = _DEFAULT_ACT,
        norm: LayerSpec = None,
        kv_stride: int = 2,
        output: str = "image",
        anchor_gain: float = 25.0,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, size_divisor=4, output=output,
                         anchor_gain=anchor_gain)
        feats = check_features(features, 3)
        kv_stride = check_positive(kv_stride, "kv_stride")
        d = self.spatial_dims
        f0, f1, f2 = feats
        self.mode = linear_mode(d)
        self.encoder_x = _Encoder(d, self.in_channels, feats, act, norm)
        self.encoder_y = _Encoder(d, self.in_channels, feats, act, norm)
        self.mapping2 = MutualMapping(d, f2, kv_stride)
        self.mapping1 = _ShallowMapping(d, f1, 2 * f2)
        self.mapping0 = _ShallowMapping(d, f0, 2 * f2 + 2 * f1)
        self.dec2 = conv_norm_act(d, f2, f2, 3, act=act, norm=norm)
        self.dec1 = conv_norm_act(d, f1 + f2, f1, 3, act=act, norm=norm)
        self.dec0 = conv_norm_act(d, f0 + f1, f0, 3, act=act, norm=norm)
        self.head = conv_norm_act(d, f0, self.head_channels, 3, act=None, norm=None)
        self.init_head(self.head)

    def _head_output(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        mri, other = self.split_input(x)
        fx = self.encoder_x(mri)
        fy = self.encoder_y(other)
        fused2, logits2 = self.mapping2(fx[2], fy[2])
        up2 = resize_like(logits2, fx[1], self.mode)
        fused1, logits1 = self.mapping1(fx[1], fy[1], up2)
        deeper0 = torch.cat([resize_like(logits2, fx[0], self.mode), resize_like(logits1, fx[0], self.mode)], dim=1)
        fused0, _ = self.mapping0(fx[0], fy[0], deeper0)
        d2 = self.dec2(fused2)
        d1 = self.dec1(torch.cat([fused1, resize_like(d2, fused1, self.mode)], dim=1))
        d0 = self.dec0(torch.cat([fused0, resize_like(d1, fused0, self.mode)], dim=1))
        return self.head(d0)
