"""Load a trained fusion network: the torch device, a ``medfuse train`` checkpoint (cached per file version),
and the weights shipped with medfuse for a modality pair.

Checkpoints are read with ``torch.load(..., weights_only=True)`` only
(:func:`medfuse.training.checkpoint.read_checkpoint`). Running the network over images and volumes is
:mod:`medfuse.inference`'s concern.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from medfuse.errors import OPTION, UnsupportedInputError, look_up
from medfuse.pairs import PAIRS

__all__ = ["torch_device", "load_model", "shipped_weights_path"]


def torch_device(device: str):
    """``torch.device(device)``; raises :class:`UnsupportedInputError` for CUDA on a machine without it."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise UnsupportedInputError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnsupportedInputError(f"device {device!r} requested but no CUDA GPU is available; set {OPTION} to cpu",
                                    option="device")
    return dev


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int, device: str):
    from medfuse.training.checkpoint import network_from_checkpoint, read_checkpoint

    ckpt = read_checkpoint(path)
    model = network_from_checkpoint(ckpt, path)
    model.eval().to(torch_device(device))
    for p in model.parameters():
        p.requires_grad_(False)
    info = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "discriminators", "optimizer_d", "rng")}
    info["path"] = path
    info["spatial_dims"] = int(model.spatial_dims)
    info["size_divisor"] = int(getattr(model, "size_divisor", 1))
    model.fusion_pair = ckpt.get("pair")  # read by fuse_slices (training-intensity map)
    return model, info


def load_model(weights_path: str | os.PathLike, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Load a fusion network from a ``medfuse train`` checkpoint.

    Args:
        weights_path: the checkpoint (``.pt``).
        device: torch device (``cpu``, ``cuda``, ``cuda:1``).

    Returns:
        ``(model, info)``: the network in eval mode on ``device`` (gradients off; cached, do not
        modify it), and the checkpoint's description: ``network`` (name, spatial_dims, kwargs),
        ``pair``, ``method``, ``iteration``, ``config``, ``split``, ``history``, ``provenance``,
        plus ``path``, ``spatial_dims`` and ``size_divisor``.

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: not a loadable medfuse checkpoint.
    """
    path = Path(weights_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{weights_path}: checkpoint not found")
    stat = path.stat()
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size, str(device))


def shipped_weights_path(method: str, pair: str | None) -> Path:
    """The weights shipped with medfuse for ``pair`` and ``method`` (``medfuse/weights/<pair>_<method>.pt``).

    Raises:
        UnsupportedInputError: ``pair`` unknown or None, or no weights shipped for it (the message
            says how to train them).
    """
    from medfuse.weights import weights_path

    if pair is None:
        raise UnsupportedInputError(
            f"network {method!r}: no checkpoint given and the modality pair is unknown, so no shipped weights can "
            f"be chosen; give a checkpoint with {OPTION}, or pair= one of {', '.join(PAIRS)}", option="weights",
        )
    look_up(pair, PAIRS, "modality pair", error=UnsupportedInputError)
    path = weights_path(pair, method)
    if path is None:
        raise UnsupportedInputError(
            f"no trained weights are shipped for method {method!r} and pair {pair!r} "
            f"(medfuse/weights/{pair}_{method}.pt). Train them with `medfuse train --pair {pair} --method {method} "
            f"--data HARVARD_DIR --out {pair}_{method}.pt` and give {pair}_{method}.pt with {OPTION}, "
            "or choose a classical method (mean, max, laplacian, wavelet, guided)", option="weights",
        )
    return path
