"""Fusion-network checkpoints: what they hold, how they are written and read.

A checkpoint is a plain dictionary of tensors and primitive containers, so that it loads with
``torch.load(path, weights_only=True)`` (no pickled classes, no code execution):

============== ===========================================================================
key            content
============== ===========================================================================
``format``     ``"medfuse-fusion-network"``
``version``    ``1``
``network``    ``{"name": "light", "spatial_dims": 2, "kwargs": {...}}``: rebuilds the network
               with :func:`medfuse.networks.build_network`
``model``      the network's ``state_dict``
``pair``       ``"ct_mri"``, ``"pet_mri"`` or ``"spect_mri"``
``method``     the network name again (what users type)
``iteration``  iterations done
``config``     the full training config (dict)
``split``      ``train_cases``/``val_cases`` (whole cases), ``train_pairs``/``val_pairs`` (all
               pair keys), ``val_loss_pairs`` (the subset scored during training),
               ``train_sha256`` (the training data's fingerprint), ``val_fraction``, ``split_seed``
``history``    ``[{iteration, loss terms, lr}, ...]`` and ``validation``: ``[{iteration, ...}]``
``optimizer``, ``discriminators``, ``optimizer_d``, ``rng``: training state (for ``--resume``);
               :func:`strip_training_state` removes them for shipping
``provenance`` versions, device, git commit, wall time, time per iteration
============== ===========================================================================
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "TRAINING_STATE_KEYS",
    "make_checkpoint",
    "save_checkpoint",
    "read_checkpoint",
    "network_from_checkpoint",
    "strip_training_state",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "medfuse-fusion-network"
CHECKPOINT_VERSION = 1
#: keys only needed to resume training
TRAINING_STATE_KEYS = ("optimizer", "discriminators", "optimizer_d", "rng")


def make_checkpoint(model, name: str, kwargs: dict[str, Any] | None = None, *, pair: str | None = None,
                    **extra: Any) -> dict[str, Any]:
    """The checkpoint dictionary of ``model`` (a network built by ``build_network(name, **kwargs)``).

    Args:
        model: the network; its ``spatial_dims`` attribute and ``state_dict`` (copied to CPU) are stored.
        name: its registered name (``light``...).
        kwargs: the constructor arguments other than ``spatial_dims`` (JSON-compatible).
        pair: the modality pair it was trained for.
        extra: more keys (``iteration``, ``config``, ``split``, ``history``, ``optimizer``...).
    """
    ckpt: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "network": {"name": name, "spatial_dims": int(model.spatial_dims), "kwargs": dict(kwargs or {})},
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "pair": pair,
        "method": name,
    }
    ckpt.update(extra)
    return ckpt


def save_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temporary file beside it, then :func:`os.replace`).

    An existing file at ``path`` is replaced: callers check for accidental overwrites first. The
    bytes depend only on the content (serialized in memory: ``torch.save`` to a file name records
    that name in the archive), so re-shipping unchanged weights leaves the file unchanged in git.
    """
    import io

    import torch

    from medfuse.io.atomic import atomic_output

    path = Path(path)
    buffer = io.BytesIO()
    torch.save(_plain(checkpoint, "checkpoint"), buffer)
    with atomic_output(path, force=True) as tmp:
        Path(tmp).write_bytes(buffer.getvalue())
    return path


def _plain(obj: Any, where: str) -> Any:
    """``obj`` with only tensors and primitive containers (what ``weights_only=True`` can load).

    ``str``/``int``/``float`` subclasses (``torch.__version__``, numpy scalars) become the plain
    type; anything else raises ``TypeError`` naming where it was found.
    """
    import numpy as np
    import torch

    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        return {_plain(k, where): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    raise TypeError(f"{where}: {type(obj).__name__} cannot be stored in a weights_only checkpoint")


def read_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint with ``torch.load(..., weights_only=True)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptFileError: unreadable, not a medfuse fusion checkpoint, or missing keys.
    """
    import torch

    from medfuse.errors import CorruptFileError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CorruptFileError(
            f"{path}: not a loadable medfuse checkpoint ({err.__class__.__name__}); checkpoints must load with "
            "torch.load(weights_only=True): re-train with `medfuse train` or re-download the file"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CorruptFileError(
            f"{path}: not a medfuse fusion-network checkpoint (expected format {CHECKPOINT_FORMAT!r}); "
            "produce one with `medfuse train`"
        )
    if int(ckpt.get("version", 0)) > CHECKPOINT_VERSION:
        raise CorruptFileError(
            f"{path}: checkpoint version {ckpt.get('version')} is newer than this medfuse supports "
            f"({CHECKPOINT_VERSION}); upgrade medfuse"
        )
    net = ckpt.get("network")
    if not isinstance(net, dict) or "name" not in net or not isinstance(ckpt.get("model"), dict):
        raise CorruptFileError(f"{path}: checkpoint lacks the network description or its weights")
    return ckpt


def network_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike = "<checkpoint>"):
    """Rebuild the network described by ``ckpt["network"]`` and load ``ckpt["model"]`` into it.

    Raises:
        CorruptFileError: the description does not build or the weights do not fit it.
    """
    from medfuse.errors import CorruptFileError
    from medfuse.networks import build_network

    net = ckpt["network"]
    try:
        model = build_network(net["name"], spatial_dims=int(net.get("spatial_dims", 2)), **dict(net.get("kwargs", {})))
        model.load_state_dict(ckpt["model"])
    except (ValueError, RuntimeError, KeyError) as err:
        raise CorruptFileError(f"{path}: the stored network {net.get('name')!r} cannot be rebuilt: {err}") from err
    return model


def strip_training_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``ckpt`` without optimizer, discriminator and RNG state (for shipping weights)."""
    return {k: v for k, v in ckpt.items() if k not in TRAINING_STATE_KEYS}
