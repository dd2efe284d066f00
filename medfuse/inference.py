"""Run a trained fusion network over 2D images and 3D volumes.

Inputs are two float arrays on one grid, already registered and normalized to [0, 1] (the
pipeline normalizes per volume, never per slice): ``a`` the anatomical scan (MRI), ``b`` the
other scan. Arrays are index-ordered like nibabel (``(i, j, k)``, RAS world); geometry is not
changed here: the output has exactly the input's shape and storage order.

* A 2D network (``spatial_dims=2``) fuses a 2D image directly and a 3D volume slice by slice,
  ``batch_size`` slices per forward pass (the equivalent of MONAI's ``SliceInferer``, without its
  sliding-window overhead), through :func:`fuse_slices` and the one slice runner
  :func:`medfuse.fusion.fuse_slicewise`: given the reference ``affine``, in axial slices oriented
  like the AANLIB training slices (rows anterior -> posterior, columns patient right -> left)
  whatever the storage order; without it, across the stored ``axis``.
* A 3D network fuses a volume natively, with :func:`monai.inferers.sliding_window_inference`
  (window = the training crop, at most the volume) for volumes larger than the window.
* Sizes not divisible by the network's ``size_divisor`` are padded (edge values repeated) and
  the result cropped back.

Checkpoints are read with ``torch.load(..., weights_only=True)`` only
(:func:`medfuse.training.checkpoint.read_checkpoint`).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.errors import UnsupportedInputError, look_up
from medfuse.fusion import PAIRS, check_fusion_inputs, fuse_slicewise

__all__ = ["load_model", "fuse_with_network", "fuse_slices", "shipped_weights_path", "predict", "torch_device"]

log = logging.getLogger(__name__)


def torch_device(device: str):
    """``torch.device(device)``; raises :class:`UnsupportedInputError` for CUDA on a machine without it."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise UnsupportedInputError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnsupportedInputError(f"device {device!r} requested but no CUDA GPU is available; use --device cpu")
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
            f"be chosen; pass weights=... (--weights CKPT) or pair= one of {', '.join(PAIRS)}"
        )
    look_up(pair, PAIRS, "modality pair", error=UnsupportedInputError)
    path = weights_path(pair, method)
    if path is None:
        raise UnsupportedInputError(
            f"no trained weights are shipped for method {method!r} and pair {pair!r} "
            f"(medfuse/weights/{pair}_{method}.pt). Train them with `medfuse train --pair {pair} --method {method} "
            f"--data HARVARD_DIR --out {pair}_{method}.pt` and pass --weights {pair}_{method}.pt, "
            "or choose a classical method (mean, max, laplacian, wavelet, guided)"
        )
    return path


def _pad_to_multiple(x, divisor: int):
    """Pad the spatial axes of ``x`` ``(N, C, *S)`` at their ends to multiples of ``divisor`` (edge values)."""
    import torch.nn.functional as F

    spatial = x.shape[2:]
    pads = [(-s) % divisor for s in spatial]
    if not any(pads):
        return x, spatial
    flat: list[int] = []
    for p in reversed(pads):  # F.pad lists the last axis first
        flat += [0, p]
    return F.pad(x, flat, mode="replicate"), spatial


def predict(model, x, batch_size: int = 16):
    """Run a 2D or 3D fusion network on a batch, padding to its ``size_divisor`` and cropping back.

    Args:
        model: a fusion network (``spatial_dims`` and ``size_divisor`` attributes).
        x: tensor ``(N, 2, *S)`` on the model's device, values in [0, 1].
        batch_size: samples per forward pass.

    Returns:
        tensor ``(N, out_channels, *S)`` in [0, 1] (no gradients).
    """
    import torch

    divisor = int(getattr(model, "size_divisor", 1))
    outs = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], max(int(batch_size), 1)):
            chunk, spatial = _pad_to_multiple(x[start : start + batch_size], divisor)
            y = model(chunk)
            outs.append(y[(slice(None), slice(None), *(slice(0, s) for s in spatial))])
    return torch.cat(outs, dim=0).clamp_(0.0, 1.0)


def fuse_slices(
    model,
    a: np.ndarray,
    b: np.ndarray,
    *,
    affine: np.ndarray | None = None,
    axis: int = -1,
    batch_size: int = 16,
    device=None,
) -> np.ndarray:
    """Run a 2D fusion network over a 2D image or a 3D volume, ``batch_size`` slices per pass.

    Every door (``fuse_arrays``, the MONAI transforms, the bundles' :class:`~medfuse.bundle.SliceFusionInferer`)
    comes through here and :func:`medfuse.fusion.fuse_slicewise`.

    Args:
        model: a 2D fusion network (eval mode).
        a, b: float32 ``(H, W)`` or ``(X, Y, Z)`` in [0, 1], one grid (not checked here).
        affine: a volume's voxel-to-RAS affine: fuse axial slices in the training orientation.
        axis: stored slice axis when ``affine`` is None.
        batch_size: slices per forward pass.
        device: torch device of ``model`` (default: where its parameters are).

    Returns:
        float32 numpy array of ``a``'s shape and storage order, values in [0, 1].
    """
    import torch

    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")

    def fuse_stack(sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(np.stack([sa, sb], axis=1), dtype=np.float32)).to(device)
        return predict(model, x, batch_size)[:, 0].cpu().numpy()  # (S, 2, H, W) -> (S, H, W)

    return fuse_slicewise(a, b, fuse_stack, affine=affine, axis=axis)


def _fuse_volume(model, info: dict, a: np.ndarray, b: np.ndarray, batch_size: int, device) -> np.ndarray:
    import torch
    from monai.inferers import sliding_window_inference

    if a.ndim != 3:
        raise UnsupportedInputError(
            f"{info.get('path')}: a 3D network cannot fuse a 2D image of shape {a.shape}; use a 2D network"
        )
    divisor = int(info["size_divisor"])
    crop = int((info.get("config") or {}).get("crop", 96))
    roi = []
    for s in a.shape:
        r = min(crop, s)
        roi.append(-(-r // divisor) * divisor)  # round up to the divisor
    x = torch.from_numpy(np.stack([a, b])[None]).to(device)
    padded, spatial = _pad_to_multiple(x, divisor)
    with torch.inference_mode():
        if all(p <= r for p, r in zip(padded.shape[2:], roi)):
            y = model(padded)
        else:
            y = sliding_window_inference(padded, roi, max(1, min(batch_size, 4)), model, overlap=0.25,
                                         mode="gaussian")
    y = y[(slice(None), slice(None), *(slice(0, s) for s in spatial))]
    return y[0, 0].clamp(0.0, 1.0).cpu().numpy()


def fuse_with_network(
    a: np.ndarray,
    b: np.ndarray,
    method: str | None,
    weights: str | os.PathLike | None = None,
    *,
    pair: str | None = None,
    axis: int = -1,
    affine: np.ndarray | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> np.ndarray:
    """Fuse two registered, normalized images with a trained network.

    Args:
        a: anatomical image (MRI), float in [0, 1], ``(H, W)`` or ``(X, Y, Z)``.
        b: the other image (CT/PET-Y/SPECT-Y) on the same grid, float in [0, 1].
        method: network name (``fmmf``, ``mdgan``, ``msra``, ``light``); must match the
            checkpoint's network when ``weights`` is given; None: whatever the checkpoint holds.
        weights: a ``medfuse train`` checkpoint; default the shipped weights of ``pair``/``method``.
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``: selects the shipped weights.
        axis: stored slicing axis for a 2D network on a 3D volume, used only without ``affine``.
        affine: for a 3D volume, the reference's voxel-to-RAS affine: a 2D network then fuses
            axial slices oriented like its training slices, whatever the storage order
            (:func:`medfuse.fusion.fuse_slicewise`). Ignored by 3D networks and for 2D images.
        batch_size: slices (2D network) or windows (3D network, at most 4) per forward pass.
        device: torch device.

    Returns:
        float32 array of the inputs' shape, values in [0, 1].

    Raises:
        UnsupportedInputError: no weights for the method/pair, wrong method for the checkpoint,
            inputs outside [0, 1], a 3D network on a 2D image, or CUDA requested but missing.
        NonFiniteError: NaN/inf in the inputs.
        SpaceMismatchError: ``a`` and ``b`` differ in shape.
        FileNotFoundError, CorruptFileError: bad checkpoint.
    """
    from medfuse.networks import network_name

    if method is not None:
        method = network_name(method)
    if weights is None:
        if method is None:
            raise UnsupportedInputError("fuse_with_network needs a method name or a weights checkpoint")
        weights = shipped_weights_path(method, pair)
    a, b = check_fusion_inputs(a, b, "network fusion")
    dev = torch_device(device)
    model, info = load_model(weights, str(dev))
    stored = info["network"]["name"]
    if method is not None and stored != method:
        raise UnsupportedInputError(
            f"{weights}: this checkpoint holds a {stored!r} network, not {method!r}; pass --method {stored} "
            "or the checkpoint of the method you want"
        )
    if pair is not None and info.get("pair") not in (None, pair):
        log.warning("checkpoint %s was trained for %s, used here for %s", Path(weights).name, info.get("pair"), pair)
    if int(getattr(model, "in_channels", 1)) != 1:
        raise UnsupportedInputError(f"{weights}: network expects {model.in_channels} channels per modality; "
                                    "fuse_with_network takes gray images (1 channel each)")
    if info["spatial_dims"] == 2:
        fused = fuse_slices(model, a, b, affine=affine, axis=axis, batch_size=batch_size, device=dev)
    else:
        fused = _fuse_volume(model, info, a, b, batch_size, dev)
    return np.ascontiguousarray(fused, dtype=np.float32)
