"""Building blocks shared by the fusion networks (2D and 3D).

Layers are looked up by spatial dimension (``nn.Conv2d``/``nn.Conv3d``, pooling), and activation and
normalization layers are given MONAI-style (``"relu"``, ``("leakyrelu", {"negative_slope": 0.2})``,
``"instance"``, ``("group", {"num_groups": 4})``), so one block serves ``spatial_dims`` 2 and 3.
Tensors are channel-first ``(N, C, H, W[, D])``. The blocks are TorchScript-compatible
(``torch.jit.script``).

The common specs (the activations and normalizations of MONAI's ``Act``/``Norm`` factories that are
plain ``torch.nn`` classes) are resolved here with the same semantics as MONAI's
:func:`~monai.networks.layers.utils.get_act_layer` / ``get_norm_layer`` (case-insensitive names,
``num_features``/``num_channels`` filled in from the channel count); any other spec (MONAI's own
layers such as ``"swish"``/``"mish"``, a callable) is handed to MONAI's factories. Importing MONAI
costs seconds, and the fusion networks are on the path of every ``medfuse fuse``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medfuse.networks.pyramid import PYRAMID_LEVELS, compose_pyramid

__all__ = [
    "FusionNetwork",
    "OUTPUT_HEADS",
    "LayerSpec",
    "check_spatial_dims",
    "check_positive",
    "check_features",
    "conv_norm_act",
    "ResidualBlock",
    "DenseBlock",
    "ChannelShuffle",
    "SpaceToDepth",
    "DepthToSpace",
    "ChannelAttention",
    "SpatialAttention",
    "resize_like",
    "split_modalities",
    "pool_layer",
    "linear_mode",
    "check_input",
    "Conv",
    "Pool",
    "get_act_layer",
    "get_norm_layer",
]

#: A layer given MONAI-style: a name (``"relu"``) or ``(name, kwargs)``; JSON lists are accepted too.
LayerSpec = Any


class _DimFactory:
    """A by-dimension layer lookup with the interface of MONAI's ``Conv``/``Pool`` factories as
    medfuse uses them: ``Conv[Conv.CONV, 3]`` is ``nn.Conv3d``, ``Pool[Pool.AVG, 2]`` is ``nn.AvgPool2d``."""

    def __init__(self, **types: tuple[type[nn.Module], ...]) -> None:
        self._types = {name.upper(): classes for name, classes in types.items()}
        for name in self._types:
            setattr(self, name, name)

    def __getitem__(self, key: tuple[str, int]) -> type[nn.Module]:
        name, dim = key
        return self._types[name.upper()][dim - 1]


#: ``Conv[Conv.CONV, spatial_dims]`` -> ``nn.Conv1d``/``nn.Conv2d``/``nn.Conv3d``
Conv = _DimFactory(conv=(nn.Conv1d, nn.Conv2d, nn.Conv3d))
#: ``Pool[Pool.MAX | Pool.AVG, spatial_dims]`` -> ``nn.MaxPool{d}d`` / ``nn.AvgPool{d}d``
Pool = _DimFactory(max=(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), avg=(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d))

# MONAI's Act entries that are torch.nn classes (monai.networks.layers.factories)
_ACTS: dict[str, type[nn.Module]] = {
    "ELU": nn.ELU, "RELU": nn.ReLU, "LEAKYRELU": nn.LeakyReLU, "PRELU": nn.PReLU, "RELU6": nn.ReLU6,
    "SELU": nn.SELU, "CELU": nn.CELU, "GELU": nn.GELU, "SIGMOID": nn.Sigmoid, "TANH": nn.Tanh,
    "SOFTMAX": nn.Softmax, "LOGSOFTMAX": nn.LogSoftmax,
}
# MONAI's Norm entries that are torch.nn classes, by spatial dimension, and the argument that takes
# the channel count (MONAI fills ``num_features`` / ``num_channels`` when the class has it)
_NORMS: dict[str, tuple[tuple[type[nn.Module], ...], str | None]] = {
    "INSTANCE": ((nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d), "num_features"),
    "BATCH": ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), "num_features"),
    "GROUP": ((nn.GroupNorm,) * 3, "num_channels"),
    "LAYER": ((nn.LayerNorm,) * 3, None),
    "LOCALRESPONSE": ((nn.LocalResponseNorm,) * 3, None),
    "SYNCBATCH": ((nn.SyncBatchNorm,) * 3, "num_features"),
}


def _split_spec(spec: Any) -> tuple[Any, dict] | None:
    """``"name"`` -> ``("NAME", {})``, ``("name", {...})`` -> ``("NAME", {...})``; None for anything
    else (a callable, a malformed spec): those go to MONAI, which builds or rejects them."""
    if isinstance(spec, str):
        return spec.upper(), {}
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], dict):
        return spec[0].upper(), spec[1]
    return None


def get_act_layer(name: LayerSpec) -> nn.Module:
    """An activation layer from a MONAI-style spec (as :func:`monai.networks.layers.get_act_layer`)."""
    if name == "":
        return nn.Identity()
    split = _split_spec(name)
    if split is not None and split[0] in _ACTS:
        return _ACTS[split[0]](**split[1])
    from monai.networks.layers.utils import get_act_layer as monai_act  # MONAI's own layers

    return monai_act(name)


def get_norm_layer(name: LayerSpec, spatial_dims: int | None = 1, channels: int | None = 1) -> nn.Module:
    """A normalization layer from a MONAI-style spec (as :func:`monai.networks.layers.get_norm_layer`)."""
    if name == "":
        return nn.Identity()
    split = _split_spec(name)
    if split is not None and split[0] in _NORMS and spatial_dims in (1, 2, 3):
        classes, channel_arg = _NORMS[split[0]]
        kwargs = dict(split[1])
        if channel_arg is not None and channel_arg not in kwargs:
            kwargs[channel_arg] = channels
        return classes[spatial_dims - 1](**kwargs)
    from monai.networks.layers.utils import get_norm_layer as monai_norm  # MONAI's own layers

    return monai_norm(name, spatial_dims=spatial_dims, channels=channels)


def check_spatial_dims(spatial_dims: int) -> int:
    """Return ``spatial_dims`` if it is 2 or 3, else raise ``ValueError``."""
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3; got {spatial_dims!r}")
    return int(spatial_dims)


def check_positive(value: Any, name: str) -> int:
    """Return ``value`` as int if it is a positive integer, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_features(features: Sequence[int], length: int, name: str = "features") -> tuple[int, ...]:
    """Return ``features`` as a tuple of ``length`` positive ints, else raise ``ValueError``."""
    try:
        feats = tuple(features)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of {length} positive integers; got {features!r}") from None
    if len(feats) != length or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in feats):
        raise ValueError(f"{name} must be a sequence of {length} positive integers; got {features!r}")
    return feats


#: the output heads every fusion network offers (see :class:`FusionNetwork`)
OUTPUT_HEADS = ("image", "blend", "anchor", "pyramid")


class FusionNetwork(nn.Module):
    """Base of the fusion networks: checks and stores the arguments every one of them takes, and owns
    the output head, which is the same for every family.

    A subclass builds its body and a last convolution with :attr:`head_channels` output channels, and
    implements :meth:`_head_output` (that convolution's output at full resolution, before any
    activation). The base turns it into the fused image according to ``output``:

    * ``"image"``: ``sigmoid`` of the head: the network synthesizes the fused image.
    * ``"blend"``: the head predicts a per-pixel weight map ``w = sigmoid(y_w)`` and a detail residual
      ``r = 0.5 tanh(y_r)``; the output is ``clip(w * A + (1 - w) * B + r, 0, 1)``, so the sources' own
      pixels carry the fine detail (nothing is re-synthesized through the bottleneck).
    * ``"anchor"``: the blend head anchored on the pixel-wise maximum,
      ``w = sigmoid(y_w + anchor_gain * (A - B))``, with the last convolution zero-initialised (call
      :meth:`init_head` on it), so the untrained network is a soft ``max(A, B)`` (within about 0.012
      for ``anchor_gain = 25``) and training learns only the departures from it (where the other
      source is the better choice, and a bounded detail residual). Issue 14's fidelity head.
    * ``"pyramid"`` (2D): the multiscale anchored head (:mod:`medfuse.networks.pyramid`): Laplacian
      pyramids of both sources, the base anchored on their maximum, each band-pass level on the
      source with more local energy, one zero-initialised logit map per level: untrained, it is that classical rule;
      training learns per-level departures. Issue 24's head.

    ``"blend"`` and ``"anchor"`` need ``in_channels = out_channels = 1``; :mod:`medfuse.inference`
    uses :meth:`blend_components` to compose the fused image from the sources it was given and to
    bound the residual (no halos, no saturation).

    Attributes:
        spatial_dims: 2 or 3.
        in_channels: channels per modality; the input has ``2 * in_channels``.
        out_channels: channels of the fused output.
        size_divisor: spatial sizes of the input must be multiples of it.
        class_name: the subclass's name, used in input errors.
        output: the head (one of :data:`OUTPUT_HEADS`).
        blend: ``output`` is ``"blend"`` or ``"anchor"`` (read by :mod:`medfuse.inference`).
        anchor_gain: the fixed gain of the max selection (0 unless ``output="anchor"``).
        head_channels: output channels of the subclass's last convolution.
        subpixel_factor: 1, or the factor of a pixel-shuffle output (``DepthToSpace``) that predicts
            each of the ``factor**d`` sub-pixel phases with its own head channel; where those
            channels disagree by a constant, the output carries a grid of that period (seen on
            ``light`` on smooth real templates), so :mod:`medfuse.inference` low-passes a blend
            head's maps at that period (read by :mod:`medfuse.inference`).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, size_divisor: int,
                 output: str = "image", anchor_gain: float = 25.0) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = check_positive(in_channels, "in_channels")
        self.out_channels = check_positive(out_channels, "out_channels")
        self.size_divisor = int(size_divisor)
        # a plain attribute (not in the state_dict) so that scripted networks name themselves in errors
        self.class_name: str = type(self).__name__
        if output not in OUTPUT_HEADS:
            raise ValueError(f"output must be one of {OUTPUT_HEADS}, got {output!r}")
        if output == "pyramid" and self.spatial_dims != 2:
            raise ValueError("output='pyramid' is 2D only (spatial_dims=2)")
        if output != "image" and (self.in_channels != 1 or self.out_channels != 1):
            raise ValueError(f"output={output!r} needs in_channels=1 and out_channels=1")
        self.output: str = output
        self.blend: bool = output in ("blend", "anchor")
        self.anchor_gain: float = float(anchor_gain) if output in ("anchor", "pyramid") else 0.0
        self.head_channels: int = 2 if self.blend else PYRAMID_LEVELS + 1 if output == "pyramid" else self.out_channels
        self.subpixel_factor: int = 1

    def init_head(self, head: nn.Module) -> None:
        """Zero-initialise the last convolution(s) ``head`` when ``output="anchor"`` (no-op otherwise),
        so the untrained network is the soft maximum of its sources."""
        if self.output not in ("anchor", "pyramid"):
            return
        for m in head.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.zeros_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, 2 * in_channels, *S)`` with sizes divisible by ``size_divisor``."""
        check_input(x, 2 * self.in_channels, self.spatial_dims, self.size_divisor, self.class_name)

    def split_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The anatomical scan ``x[:, :in_channels]`` and the other scan ``x[:, in_channels:]``."""
        return split_modalities(x, self.in_channels)

    def _head_output(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolution's output ``(N, head_channels, *S)`` (before any activation)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fuse ``x`` ``(N, 2 * in_channels, *S)`` into ``(N, out_channels, *S)`` in (0, 1)."""
        if self.blend:
            w, r = self.blend_components(x)
            return (w * x[:, :1] + (1.0 - w) * x[:, 1:2] + r).clamp(0.0, 1.0)
        if self.output == "pyramid":
            return compose_pyramid(x[:, :1], x[:, 1:2], self._head_output(x), self.anchor_gain).clamp(0.0, 1.0)
        return torch.sigmoid(self._head_output(x))

    def head_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolution's output at full resolution: for ``output="pyramid"``, the per-level
        logit maps that :func:`~medfuse.networks.pyramid.compose_pyramid` takes."""
        return self._head_output(x)

    def blend_components(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight map ``w`` in (0, 1) and detail residual ``r`` in (-0.5, 0.5) of a blend head.

        ``forward(x) == clip(w * x[:, :1] + (1 - w) * x[:, 1:2] + r, 0, 1)``. Only for
        ``output="blend"`` or ``"anchor"`` (where ``w = sigmoid(y_w + anchor_gain * (x[:, :1] - x[:, 1:2]))``).
        """
        if not self.blend:
            raise ValueError("blend_components needs a network built with output='blend' or 'anchor'")
        y = self._head_output(x)
        yw = y[:, :1]
        if self.output == "anchor":
            yw = yw + self.anchor_gain * (x[:, :1] - x[:, 1:2])
        return torch.sigmoid(yw), 0.5 * torch.tanh(y[:, 1:])


def _layer_spec(spec: LayerSpec) -> Any:
    """``None``/``""`` -> None; a JSON list ``[name, kwargs]`` -> tuple (MONAI expects str or tuple)."""
    if spec is None or spec == "":
        return None
    if isinstance(spec, list):
        spec = tuple(spec)
    return spec


def conv_norm_act(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    act: LayerSpec = ("relu", {"inplace": True}),
    norm: LayerSpec = None,
) -> nn.Sequential:
    """Convolution ("same" padding for stride 1), then optional normalization, then optional activation.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        stride: stride (2 halves each spatial size).
        dilation: dilation of the kernel.
        groups: group convolution (``in_channels`` and ``out_channels`` divisible by it).
        act: MONAI activation spec, ``None`` for none.
        norm: MONAI normalization spec, ``None`` for none. The convolution has a bias only without norm.

    Returns:
        ``nn.Sequential`` mapping ``(N, in_channels, *S)`` to ``(N, out_channels, *S/stride)``.
    """
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd; got {kernel_size}")
    norm = _layer_spec(norm)
    act = _layer_spec(act)
    conv_type = Conv[Conv.CONV, spatial_dims]
    layers: list[nn.Module] = [
        conv_type(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            groups=groups,
            bias=norm is None,
        )
    ]
    if norm is not None:
        layers.append(get_norm_layer(norm, spatial_dims=spatial_dims, channels=out_channels))
    if act is not None:
        layers.append(get_act_layer(act))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut: ``act(x + norm(conv(act(norm(conv(x))))))``.

    Shape: ``(N, C, *S) -> (N, C, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: int, act: LayerSpec = ("relu", {"inplace": True}),
                 norm: LayerSpec = None) -> None:
        super().__init__()
        self.conv1 = conv_norm_act(spatial_dims, channels, channels, 3, act=act, norm=norm)
        self.conv2 = conv_norm_act(spatial_dims, channels, channels, 3, act=None, norm=norm)
        act = _layer_spec(act)
        self.act = get_act_layer(act) if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.conv1(x)))


class DenseBlock(nn.Module):
    """DenseNet block: each 3x3 layer sees the concatenation of the input and all earlier layers.

    Shape: ``(N, in_channels, *S) -> (N, in_channels + layers * growth, *S)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, growth: int, layers: int,
                 act: LayerSpec = ("relu", {"inplace": True}), norm: LayerSpec = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [conv_norm_act(spatial_dims, in_channels + i * growth, growth, 3, act=act, norm=norm) for i in range(layers)]
        )
        self.out_channels = in_channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        return torch.cat(feats, dim=1)


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: lets information cross the groups of a group convolution.

    Shape: ``(N, C, *S) -> (N, C, *S)``, ``C`` divisible by ``groups``.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = int(groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups == 1:
            return x
        n, c = x.shape[0], x.shape[1]
        g = self.groups
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            # channels are the fastest axis in memory: shuffle them in place of layout, one copy,
            # and the result stays channels-last (no reorder before the next convolution)
            h, w = x.shape[2], x.shape[3]
            y = x.permute(0, 2, 3, 1).reshape(n, h, w, g, c // g).transpose(3, 4).reshape(n, h, w, c)
            return y.permute(0, 3, 1, 2)
        return x.reshape(n, g, c // g, -1).transpose(1, 2).reshape(x.shape)


class _VoxelShuffle(nn.Module):
    """Base of :class:`SpaceToDepth` and :class:`DepthToSpace` (no parameters)."""

    def __init__(self, spatial_dims: int, factor: int = 2) -> None:
        super().__init__()
        self.spatial_dims = int(spatial_dims)
        self.factor = int(factor)


class SpaceToDepth(_VoxelShuffle):
    """Lossless downsampling: each ``factor**d`` block of voxels becomes channels (pixel unshuffle).

    Shape: ``(N, C, H, W[, D]) -> (N, C * factor**d, H/factor, W/factor[, D/factor])``; every
    spatial size must be divisible by ``factor``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.factor
        if self.spatial_dims == 2:
            return F.pixel_unshuffle(x, r)
        n, c, h, w, d = x.shape
        x = x.reshape(n, c, h // r, r, w // r, r, d // r, r)
        x = x.permute(0, 1, 3, 5, 7, 2, 4, 6)
        return x.reshape(n, c * r * r * r, h // r, w // r, d // r)


class DepthToSpace(_VoxelShuffle):
    """Inverse of :class:`SpaceToDepth` (pixel shuffle).

    Shape: ``(N, C * factor**d, H, W[, D]) -> (N, C, H*factor, W*factor[, D*factor])``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.factor
        if self.spatial_dims == 2:
            n, c, h, w = x.shape
            if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
                # from a channels-last head (medfuse.networks.light) in one copy: pixel_shuffle would first make
                # it contiguous, then shuffle (two copies); the same values, moved only
                y = x.permute(0, 2, 3, 1).reshape(n, h, w, c // (r * r), r, r).permute(0, 3, 1, 4, 2, 5)
                return y.reshape(n, c // (r * r), h * r, w * r)
            return F.pixel_shuffle(x, r)
        n, c, h, w, d = x.shape
        c_out = c // (r * r * r)
        x = x.reshape(n, c_out, r, r, r, h, w, d)
        x = x.permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(n, c_out, h * r, w * r, d * r)


class ChannelAttention(nn.Module):
    """CBAM channel attention: a shared bottleneck MLP on global average and max pooling, sigmoid gate.

    Shape: ``(N, C, *S) -> (N, C, *S)`` (input times a per-channel weight in (0, 1)).
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.mlp = nn.Sequential(conv_type(channels, hidden, 1), nn.ReLU(inplace=True), conv_type(hidden, channels, 1))
        self.spatial_dims = int(spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        shape = [x.shape[0], x.shape[1]] + [1] * self.spatial_dims
        avg = flat.mean(dim=2).reshape(shape)
        mx = flat.amax(dim=2).reshape(shape)
        return x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a convolution over the channel-wise mean and max, sigmoid gate.

    Shape: ``(N, C, *S) -> (N, C, *S)`` (input times a per-voxel weight in (0, 1)).
    """

    def __init__(self, spatial_dims: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = Conv[Conv.CONV, spatial_dims](2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(stats))


def resize_like(x: torch.Tensor, ref: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """Resample ``x`` to the spatial size of ``ref`` (``mode``: ``nearest``, ``bilinear`` or ``trilinear``)."""
    size = ref.shape[2:]
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def split_modalities(x: torch.Tensor, in_channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the network input ``(N, 2 * in_channels, *S)`` into the anatomical and the other scan."""
    return x[:, :in_channels], x[:, in_channels:]


def pool_layer(spatial_dims: int, kind: str = "max", size: int = 2) -> nn.Module:
    """A ``size``-strided max or average pooling layer (``nn.MaxPool{d}d`` or ``nn.AvgPool{d}d``)."""
    pool_type = Pool[Pool.MAX if kind == "max" else Pool.AVG, spatial_dims]
    return pool_type(kernel_size=size, stride=size)


def linear_mode(spatial_dims: int) -> str:
    """``"bilinear"`` in 2D, ``"trilinear"`` in 3D (for :func:`resize_like`)."""
    return "bilinear" if spatial_dims == 2 else "trilinear"


def check_input(x: torch.Tensor, channels: int, spatial_dims: int, divisor: int, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(N, channels, *S)`` with ``spatial_dims`` sizes divisible by ``divisor``."""
    if x.dim() != spatial_dims + 2 or x.shape[1] != channels:
        raise ValueError(
            f"{name}: expected input of shape (N, {channels}, {', '.join(['...'] * spatial_dims)}) "
            f"(the two modalities stacked on the channel axis); got {list(x.shape)}"
        )
    for s in x.shape[2:]:
        if s % divisor != 0:
            raise ValueError(
                f"{name}: spatial sizes must be divisible by {divisor}; got {list(x.shape[2:])}. "
                "Pad the input (medfuse.inference pads and crops automatically)"
            )

