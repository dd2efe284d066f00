"""Fusion networks: registry, builder, and size/cost counters.

=========  ==========================  =================================================  ========  =======  ========
name       class                       design                                             params    GFLOP    CPU ms
=========  ==========================  =================================================  ========  =======  ========
``fmmf``   :class:`FMMF`               encoder-decoder with feature mutual mapping        355,681   8.34     ~570
``mdgan``  :class:`MDGANGenerator`     DenseNet generator of a multi-discriminator GAN    59,265    5.77     ~260
``msra``   :class:`MSRANet`            multiscale double-branch residual attention        80,181    4.17     ~215
``light``  :class:`LightFusionNet`     AE-Netv2-style lightweight U-Net (fast on CPU)     7,512     0.100    ~9 / 5.5
=========  ==========================  =================================================  ========  =======  ========

Parameters and FLOPs are for the 2D defaults on one 256x256 slice (:func:`count_parameters`,
:func:`count_flops`); "CPU ms" is the time per 256x256 slice in batches of 16 with one thread
(and, for ``light``, two threads), measured on a shared 2-core machine (torch 2.13 CPU): the
reference network of IFCNN's shape (7x7 and two 3x3 64-channel convolutions at full resolution)
takes ~234 ms there with two threads, ~45x ``light``.

Every network exports with ``torch.jit.script`` (tested). ``torch.jit.trace`` works as well and
the traced graph accepts other batch and spatial sizes, but it drops the input-size check.

Every network takes MONAI-style keyword arguments (``spatial_dims``, ``in_channels``,
``out_channels``, ``features``, ``act``, ``norm``, ...), maps the registered, normalized pair
``(N, 2 * in_channels, H, W[, D])`` (anatomical MRI first) to the fused image
``(N, out_channels, H, W[, D])`` in (0, 1), and has a ``size_divisor`` attribute: spatial sizes
must be multiples of it (:mod:`medfuse.inference` pads and crops).

Example:
    >>> from medfuse.networks import build_network, count_parameters
    >>> net = build_network("light", spatial_dims=2)
    >>> count_parameters(net) < 10_000
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from medfuse.networks.fmmf import FMMF
from medfuse.networks.light import LightFusionNet
from medfuse.networks.mdgan import MDGANGenerator, SourceDiscriminators
from medfuse.networks.msra import MSRANet

__all__ = [
    "NETWORKS",
    "network_name",
    "build_network",
    "count_parameters",
    "count_flops",
    "FMMF",
    "MDGANGenerator",
    "SourceDiscriminators",
    "MSRANet",
    "LightFusionNet",
]

#: ``--method`` name -> network class (the generator for ``mdgan``)
NETWORKS: dict[str, type[nn.Module]] = {
    "fmmf": FMMF,
    "mdgan": MDGANGenerator,
    "msra": MSRANet,
    "light": LightFusionNet,
}


def network_name(name: str) -> str:
    """The registered name for ``name`` (case-insensitive).

    Raises:
        UnsupportedInputError (a ``ValueError``): unknown name, with a "did you mean" hint.
    """
    from medfuse.errors import UnsupportedInputError, look_up

    return look_up(name, tuple(NETWORKS), "network", ignore_case=True, error=UnsupportedInputError)


def build_network(name: str, spatial_dims: int = 2, **kwargs: Any) -> nn.Module:
    """Build a fusion network by its ``--method`` name.

    Args:
        name: ``fmmf``, ``mdgan``, ``msra`` or ``light`` (a typo gets a "did you mean" hint).
        spatial_dims: 2 or 3.
        kwargs: constructor arguments of the network class (JSON-compatible: lists are accepted
            wherever tuples are documented).

    Returns:
        The network (in training mode, as constructed).

    Raises:
        ValueError: unknown name or invalid arguments.
    """
    cls = NETWORKS[network_name(name)]
    try:
        return cls(spatial_dims=spatial_dims, **kwargs)
    except TypeError as err:  # an unknown keyword
        raise ValueError(f"network {name!r}: invalid arguments {sorted(kwargs)}: {err}") from err


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` if ``trainable_only``: loaded
    inference models are frozen, so that count would be 0 for them)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Floating-point operations of one forward pass on a zero input of ``input_shape``.

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions, matrix products and
    attention; a multiply-add counts as 2 FLOPs; element-wise operations are not counted).

    Args:
        model: the network (put in eval mode for the count, then restored).
        input_shape: e.g. ``(1, 2, 256, 256)``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(tuple(input_shape), device=device)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)
