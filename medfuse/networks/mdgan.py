"""``mdgan``: multi-discriminator GAN fusion (a DenseNet encoder-decoder generator, one discriminator per source).

References:
    Zhou et al., *Deep learning methods for medical image fusion: a review*, sec. 4.2
    (``../shared/papers/004_5543e0096ea6a408.txt``): DDcGAN (Ma et al.: a DenseNet-based
    encoder-decoder generator, a specially designed content loss, two discriminators that each
    compare the fused image with one source) and MGMDcGAN (Huang et al.: the discriminators judge
    structure for the anatomical scan and function/intensity for the functional one).

Structure:

* :class:`MDGANGenerator` (registered as ``mdgan``; the network used for inference): a stem
  convolution on the stacked pair, a dense block at full resolution (the skip), a stride-2
  convolution and a second dense block at half resolution, upsampling, concatenation with the
  skip and a three-layer convolutional decoder; ``sigmoid`` output in (0, 1). Size divisor 2.
* :class:`SourceDiscriminators`: two MONAI :class:`~monai.networks.nets.PatchDiscriminator`.
  ``anatomical`` sees Sobel gradient magnitudes (:func:`medfuse.losses.gradient_magnitude`) of
  the fused image vs the MRI: it judges structure; ``functional`` sees intensities of the fused
  image vs the other scan. Used by the trainer with the least-squares loss
  (:func:`medfuse.losses.adversarial_loss`), which is stable without gradient penalties; the
  content loss (intensity + gradient, see the ``mdgan`` training config) anchors the generator.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medfuse.networks.blocks import (
    FusionNetwork,
    DenseBlock,
    LayerSpec,
    check_features,
    check_positive,
    check_spatial_dims,
    conv_norm_act,
    linear_mode,
    resize_like,
)

__all__ = ["MDGANGenerator", "SourceDiscriminators"]

_DEFAULT_ACT = ("leakyrelu", {"negative_slope": 0.2, "inplace": True})


class MDGANGenerator(FusionNetwork):
    """DenseNet encoder-decoder generator of the multi-discriminator fusion GAN (DDcGAN / MGMDcGAN style).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels per modality (1 for gray images).
        out_channels: channels of the fused image.
        features: channels after the stem (full resolution) and at half resolution.
        growth: channels added by each dense layer.
        dense_layers: layers per dense block.
        act: MONAI activation spec.
        norm: MONAI normalization spec or ``None`` (default none).
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
        >>> net = MDGANGenerator(spatial_dims=2)
        >>> net(torch.rand(2, 2, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
        >>> net3d = MDGANGenerator(spatial_dims=3, features=(8, 16), growth=4)
        >>> net3d(torch.rand(1, 2, 16, 16, 16)).shape
        torch.Size([1, 1, 16, 16, 16])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (16, 32),
        growth: int = 8,
        dense_layers: int = 3,
        act: LayerSpec = _DEFAULT_ACT,
        norm: LayerSpec = None,
        output: str = "image",
        anchor_gain: float = 25.0,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, size_divisor=2, output=output,
                         anchor_gain=anchor_gain)
        f0, f1 = check_features(features, 2)
        growth = check_positive(growth, "growth")
        dense_layers = check_positive(dense_layers, "dense_layers")
        d = self.spatial_dims
        self.mode = linear_mode(d)
        self.stem = conv_norm_act(d, 2 * self.in_channels, f0, 3, act=act, norm=norm)
        self.dense0 = DenseBlock(d, f0, growth, dense_layers, act=act, norm=norm)
        self.down = conv_norm_act(d, self.dense0.out_channels, f1, 3, stride=2, act=act, norm=norm)
        self.dense1 = DenseBlock(d, f1, growth, dense_layers, act=act, norm=norm)
        self.decoder = nn.Sequential(
            conv_norm_act(d, self.dense0.out_channels + self.dense1.out_channels, f1, 3, act=act, norm=norm),
            conv_norm_act(d, f1, f0, 3, act=act, norm=norm),
            conv_norm_act(d, f0, max(f0 // 2, 1), 3, act=act, norm=norm),
            conv_norm_act(d, max(f0 // 2, 1), self.head_channels, 3, act=None, norm=None),
        )
        self.init_head(self.decoder[-1])

    def _head_output(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        skip = self.dense0(self.stem(x))
        deep = self.dense1(self.down(skip))
        return self.decoder(torch.cat([skip, resize_like(deep, skip, self.mode)], dim=1))


class SourceDiscriminators(nn.Module):
    """One least-squares patch discriminator per source (training only).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels per modality.
        channels: channels of the first discriminator layer (doubled per layer).
        num_layers: strided layers of each :class:`~monai.networks.nets.PatchDiscriminator`.
        norm: normalization of the discriminators (MONAI spec).

    ``anatomical(img)`` scores the structure (Sobel gradient magnitude) of ``img`` against the
    MRI's; ``functional(img)`` scores its intensities against the other scan's. Both return raw
    patch scores ``(N, 1, *S')`` (no activation) for :func:`medfuse.losses.adversarial_loss`.

    Example:
        >>> import torch
        >>> d = SourceDiscriminators(spatial_dims=2)
        >>> d.anatomical(torch.rand(2, 1, 64, 64)).shape[:2]
        torch.Size([2, 1])
        >>> d3 = SourceDiscriminators(spatial_dims=3, channels=4)
        >>> d3.functional(torch.rand(1, 1, 32, 32, 32)).shape[:2]
        torch.Size([1, 1])
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, channels: int = 16, num_layers: int = 3,
                 norm: LayerSpec = "INSTANCE") -> None:
        super().__init__()
        from monai.networks.nets import PatchDiscriminator

        d = check_spatial_dims(spatial_dims)
        in_channels = check_positive(in_channels, "in_channels")
        channels = check_positive(channels, "channels")
        num_layers = check_positive(num_layers, "num_layers")
        kw = dict(spatial_dims=d, channels=channels, in_channels=in_channels, out_channels=1,
                  num_layers_d=num_layers, norm=tuple(norm) if isinstance(norm, list) else norm)
        self.anatomical_net = PatchDiscriminator(**kw)
        self.functional_net = PatchDiscriminator(**kw)

    def anatomical(self, img: torch.Tensor) -> torch.Tensor:
        """Patch scores of the structure (gradient magnitude) of ``img`` ``(N, C, *S)``."""
        from medfuse.losses import gradient_magnitude

        return self.anatomical_net(gradient_magnitude(img))[-1]

    def functional(self, img: torch.Tensor) -> torch.Tensor:
        """Patch scores of the intensities of ``img`` ``(N, C, *S)``."""
        return self.functional_net(img)[-1]
