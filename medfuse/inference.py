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

Two inference-side safeguards (no retraining; both on by default, both in :func:`fuse_slices`):

* **Training intensities** (3D volumes of a known pair only). The shipped networks were trained on
  AANLIB display slices (PNG / 255, colour PET/SPECT as luminance Y), whose intensities differ
  from volumes normalized by :mod:`medfuse.intensity.normalize`: AANLIB SPECT-Y peaks near 0.6 and
  half of the head is 0 in PET-Y, while a percentile-normalized SPECT spans [0, 1]; fed such a
  bright SPECT the ``light`` network's residual pushed half of the brain to white. Before the
  network, each input volume is therefore mapped, monotonically and once per volume, so that the
  quantiles of its content voxels (:func:`content_mask`) equal those of the pair's training slices
  (:data:`TRAINING_QUANTILES`, measured on the training pairs with the same mask rule;
  :func:`medfuse.training.data.training_quantiles` recomputes them). The fused image is then
  brought back to the inputs' own intensities: a blend network (``light``) returns its weight map
  ``w`` and residual ``r`` and the output is composed from the **unmapped** inputs,
  ``w * a + (1 - w) * b + r``; an image network's output goes through the monotone map taking the
  quantiles of the mapped inputs' mean to those of the inputs' mean. 2D images are display images
  like the training slices and are fed as they are.
* **Bounded output**: the fused value is clamped to the local range of the two sources,
  ``[min(a, b) - m, max(a, b) + m]`` over a 3 x 3 in-plane neighbourhood
  (:func:`clamp_to_local_range`, ``m`` = :data:`OUTPUT_MARGIN` = 0.05 of the [0, 1] scale): no
  halos, ringing, noise amplification or saturation beyond what the sources hold. For the blend
  network this bounds the residual only (the blend itself always lies in the sources' range).

Checkpoints are read with ``torch.load(..., weights_only=True)`` only
(:func:`medfuse.training.checkpoint.read_checkpoint`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from medfuse.classical import OUTPUT_MARGIN, clamp_to_local_range
from medfuse.errors import OPTION, UnsupportedInputError
from medfuse.intensity.training_match import (  # re-exported: medfuse.inference's API before the split
    TRAINING_QUANTILE_LEVELS,
    TRAINING_QUANTILES,
    content_mask,
    match_training_intensities,
    quantile_map,
    source_quantiles,
)
from medfuse.networks.loading import load_model, shipped_weights_path, torch_device  # re-exported (API before the split)
from medfuse.slicing import check_fusion_inputs, fuse_slicewise
from medfuse.threads import one_intra_op_thread

__all__ = [
    "suppress_subpixel_phases",
    "load_model",
    "fuse_with_network",
    "fuse_slices",
    "shipped_weights_path",
    "predict",
    "torch_device",
    "content_mask",
    "match_training_intensities",
    "clamp_to_local_range",
    "OUTPUT_MARGIN",
    "TRAINING_QUANTILES",
    "TRAINING_QUANTILE_LEVELS",
]

log = logging.getLogger(__name__)

#: a blend network's detail residual is bounded by this fraction of the sources' local contrast
#: (3 x 3 range) and by ``OUTPUT_MARGIN`` times the headroom of the blend (see :func:`fuse_slices`)
RESIDUAL_BOUND = 0.25
#: in-plane box size over which the weight map of a max-anchored head (``output="anchor"``) is averaged
#: before composing: where the sources are close, its per-pixel choice flips with the noise and the
#: fused image turns to salt-and-pepper (our T1 + CT phantom: flat-region noise 2.15x the sources'
#: with the per-pixel map, 1.23x averaged over 5 x 5, the speckle gone; benchmarks/results/quality3d.md).
#: The average of weights in [0, 1] is still a weight: the base stays within [min(a, b), max(a, b)].
ANCHOR_WEIGHT_BOX = 5
#: a blend network fuses a volume in slabs of this many batches of slices (after one intensity map per volume):
#: the temporaries of a slab, not of the whole volume (a 257 x 293 x 249 PET/MR: ~1.3 GB less peak memory)
SLAB_BATCHES = 2
#: slices per forward pass of a 2D network (``batch_size``' default): on the speed3d PET/MR (257 x 293 x 249, the
#: pyramid-head ``light``, 2 cores) 4 slices a pass against 16: 1.02-1.07 GB peak instead of 1.18 GB, 9-15% less CPU
#: (the activations of fewer slices stay in cache), the same uint8 fused colour volume
BATCH_SLICES = 4


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


def suppress_subpixel_phases(maps: np.ndarray, factor: int) -> np.ndarray:
    """Low-pass the last two axes of ``maps`` in place by a centred triangle of length ``2 * factor - 1``
    (a ``factor`` box convolved with itself, normalized), whose response is zero at every frequency of
    period ``factor``: a grid left by a pixel-shuffle head (``subpixel_filter`` of :func:`fuse_slices`) is
    removed exactly and nothing else of that period survives. ``factor <= 1``: unchanged."""
    from scipy import ndimage

    factor = int(factor)
    if factor <= 1:
        return maps
    kernel = np.convolve(np.ones(factor), np.ones(factor)) / factor**2
    for axis in (-2, -1):
        maps[...] = ndimage.convolve1d(maps, kernel, axis=axis, mode="nearest")
    return maps


def _local_contrast(a: np.ndarray, b: np.ndarray, size: int = 3) -> np.ndarray:
    """Largest in-plane ``size`` x ``size`` range (max - min) of either source after a light
    in-plane Gaussian smoothing (sigma 1 pixel, so that noise alone has little range), per pixel."""
    from scipy import ndimage

    from medfuse.filters import local_max, local_min

    sigma = (0,) * (a.ndim - 2) + (1.0, 1.0)
    out = None
    for x in (a, b):
        smooth = ndimage.gaussian_filter(x, sigma, mode="nearest")
        spread = local_max(smooth, size)
        spread -= local_min(smooth, size)
        out = spread if out is None else np.maximum(out, spread, out=out)
    return out


def _run_padded(fn, model, x, batch_size: int):
    """``fn(chunk)`` over ``batch_size`` samples at a time, padded to the model's divisor, cropped back."""
    import torch

    divisor = int(getattr(model, "size_divisor", 1))
    outs = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], max(int(batch_size), 1)):
            chunk, spatial = _pad_to_multiple(x[start : start + batch_size], divisor)
            y = fn(chunk)
            outs.append(y[(slice(None), slice(None), *(slice(0, s) for s in spatial))])
    return torch.cat(outs, dim=0)


def predict(model, x, batch_size: int = 16):
    """Run a 2D or 3D fusion network on a batch, padding to its ``size_divisor`` and cropping back.

    The raw network (no intensity map, no output bound: see :func:`fuse_slices`).

    Args:
        model: a fusion network (``spatial_dims`` and ``size_divisor`` attributes).
        x: tensor ``(N, 2, *S)`` on the model's device, values in [0, 1].
        batch_size: samples per forward pass.

    Returns:
        tensor ``(N, out_channels, *S)`` in [0, 1] (no gradients).
    """
    return _run_padded(model, model, x, batch_size).clamp_(0.0, 1.0)


def _predict_blend(model, x, batch_size: int = 16):
    """``(N, 2, *S)`` tensor of the blend network's weight map (channel 0) and residual (channel 1)."""
    import torch

    return _run_padded(lambda c: torch.cat(model.blend_components(c), dim=1), model, x, batch_size)


def fuse_slices(
    model,
    a: np.ndarray,
    b: np.ndarray,
    *,
    affine: np.ndarray | None = None,
    axis: int = -1,
    batch_size: int = BATCH_SLICES,
    device=None,
    pair: str | None = None,
    match_intensities: bool = True,
    margin: float | None = OUTPUT_MARGIN,
    residual_bound: float | None = RESIDUAL_BOUND,
    subpixel_filter: bool = True,
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
        pair: the pair the network was trained for (default ``model.fusion_pair``, set by
            :func:`load_model`): selects the training intensities of a volume's map.
        match_intensities: map a 3D volume to the training intensities before the network (see
            the module docstring); ignored for 2D images and without a known pair.
        margin: bound the output to the sources' local range plus this margin
            (:func:`clamp_to_local_range`); None: the raw network output.
        residual_bound: blend networks (``light``): the detail residual ``r`` is clipped to
            ``+- residual_bound`` times the sources' local contrast (largest 3 x 3 range of either,
            after a sigma-1 Gaussian smoothing)
            and to ``[-m * blend, m * (1 - blend)]`` (``m`` the margin, ``blend = w a + (1 - w) b``):
            edges are sharpened, flat-region noise is not amplified, and the output reaches 1
            only where a source does. None: the residual as trained (only ``margin`` applies).
        subpixel_filter: a blend head whose output comes through a pixel shuffle (``model.subpixel_factor``
            f > 1: ``light``) has its weight map and residual low-passed in-plane by a triangle of length 2f - 1
            (f = 2: the binomial [1, 2, 1] / 4; :func:`suppress_subpixel_phases`), whose response is zero at the
            period-f frequencies: the sub-pixel phases predicted by different head channels no longer show as a
            grid (the shipped ``light`` on the smooth real CT template: high-frequency content of flat regions
            0.0109 -> 0.0029, the MRI's own 0.0048). A weighted mean of weights is still a weight. False: as
            composed before the filter existed (``benchmarks/subpixel_grid.py`` compares the two).

    Returns:
        float32 numpy array of ``a``'s shape and storage order, values in [0, 1].
    """
    import torch

    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    pair = pair if pair is not None else getattr(model, "fusion_pair", None)
    matched = bool(match_intensities) and a.ndim == 3 and pair in TRAINING_QUANTILES
    blend = bool(getattr(model, "blend", False)) and hasattr(model, "blend_components")
    anchored = blend and getattr(model, "output", None) == "anchor"
    pyramid = getattr(model, "output", None) == "pyramid" and hasattr(model, "head_logits")
    slab = SLAB_BATCHES * max(int(batch_size), 1)  # slices per slab of a blend network

    def fuse_stack(sa: np.ndarray, sb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(sa.shape, dtype=np.float32) if out is None else out  # out: a view into the volume's result
        if not (blend or pyramid) or len(sa) <= slab:
            out[...] = fuse_slab(sa, sb, None)
            return out
        # a blend or pyramid network works slice by slice after one intensity map per volume: the maps' statistics
        # from the whole stack, then slabs of slices (the same numbers as the whole stack at once, a slab's memory)
        maps = None
        if matched:
            # the content voxels of each source, gathered slab by slab into one array each (no list of parts
            # concatenated, no copy for the percentiles: they partition these arrays in place)
            masks = [content_mask(sa[start : start + slab], sb[start : start + slab])  # holes filled per slice:
                     for start in range(0, len(sa), slab)]  # a slab at a time gives the same mask
            counts = [int(np.count_nonzero(m)) for m in masks]
            values = (np.empty(sum(counts), dtype=sa.dtype), np.empty(sum(counts), dtype=sb.dtype))
            at = 0
            for start, m, k in zip(range(0, len(sa), slab), masks, counts):
                values[0][at : at + k] = sa[start : start + slab][m]
                values[1][at : at + k] = sb[start : start + slab][m]
                at += k
            del masks
            qa, qb = TRAINING_QUANTILES[pair]
            maps = [(source_quantiles(v, TRAINING_QUANTILE_LEVELS, overwrite=True), np.asarray(q, dtype=np.float64))
                    for v, q in zip(values, (qa, qb))]
            del values
        for start in range(0, len(sa), slab):
            out[start : start + slab] = fuse_slab(sa[start : start + slab], sb[start : start + slab], maps)
        return out

    def fuse_slab(sa: np.ndarray, sb: np.ndarray, maps) -> np.ndarray:
        if maps is not None:
            ma, mb = (np.interp(x, src, q).astype(np.float32) for x, (src, q) in zip((sa, sb), maps))
        elif matched:
            mask = content_mask(sa, sb)
            ma, mb = match_training_intensities(sa, sb, pair, mask)
        else:
            ma, mb = sa, sb
        x = torch.from_numpy(np.ascontiguousarray(np.stack([ma, mb], axis=1), dtype=np.float32)).to(device)
        if pyramid:
            # the per-level departures predicted from the (matched) input, composed from the sources
            # given (medfuse.networks.pyramid): each level a convex blend of the sources' own coefficients
            del ma, mb
            logits = _run_padded(model.head_logits, model, x, batch_size).cpu().numpy()
            del x
            if subpixel_filter:  # the finest level's map only: the coarser ones are averaged
                # down over 2^l x 2^l blocks, which removes a period-2 pattern by itself
                suppress_subpixel_phases(logits[:, :1], getattr(model, "subpixel_factor", 1))
            from medfuse.networks.pyramid import compose_pyramid_arrays

            # compose_pyramid's numbers on numpy arrays (views of any strides), without torch's per-operator cost
            fused = compose_pyramid_arrays(sa[:, None], sb[:, None], logits, float(model.anchor_gain))[:, 0]
        elif blend:
            del ma, mb  # only x is needed from here (peak memory of a 3D volume: benchmarks/startup.py)
            wr = _predict_blend(model, x, batch_size).cpu().numpy()  # (S, 2, H, W)
            del x
            if subpixel_filter:
                suppress_subpixel_phases(wr, getattr(model, "subpixel_factor", 1))
            if anchored and ANCHOR_WEIGHT_BOX > 1:
                from scipy import ndimage

                wr[:, 0] = ndimage.uniform_filter(wr[:, 0], (1, ANCHOR_WEIGHT_BOX, ANCHOR_WEIGHT_BOX), mode="nearest")
            base = wr[:, 0] * sa + (1.0 - wr[:, 0]) * sb  # always within [min(a, b), max(a, b)]
            residual = wr[:, 1]
            if residual_bound is not None:
                # the detail: at most a fraction of the local contrast (no noise amplification in
                # flat regions), and at most the margin's share of the headroom (no saturation)
                contrast = residual_bound * _local_contrast(sa, sb)
                m = OUTPUT_MARGIN if margin is None else float(margin)
                residual = np.clip(residual, -np.minimum(contrast, m * base), np.minimum(contrast, m * (1.0 - base)))
            fused = base + residual
        else:
            fused = predict(model, x, batch_size)[:, 0].cpu().numpy()  # (S, 2, H, W) -> (S, H, W)
            if matched:  # back to the inputs' intensities: quantiles of the mapped mean -> of the mean
                levels = np.linspace(0.0, 100.0, 101)
                mean_in, mean_mapped = 0.5 * (sa + sb), 0.5 * (ma + mb)
                fused = quantile_map(fused, mean_mapped[mask], levels, np.percentile(mean_in[mask], levels))
        if margin is not None:
            fused = clamp_to_local_range(fused, sa, sb, float(margin))
        return np.clip(fused, 0.0, 1.0).astype(np.float32)

    # one 2D image on one thread: the same numbers on every machine, and less CPU (medfuse.threads)
    single = a.ndim == 2 and torch.device(device).type == "cpu"
    with one_intra_op_thread() if single else contextlib.nullcontext():
        # the stacks as views: every slab is copied into the network's input anyway
        return fuse_slicewise(a, b, fuse_stack, affine=affine, axis=axis, contiguous=False, into=True)


def _fuse_volume(model, info: dict, a: np.ndarray, b: np.ndarray, batch_size: int, device,
                 margin: float | None = OUTPUT_MARGIN) -> np.ndarray:
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
    fused = y[0, 0].clamp(0.0, 1.0).cpu().numpy()
    return clamp_to_local_range(fused, a, b) if margin is not None else fused


def fuse_with_network(
    a: np.ndarray,
    b: np.ndarray,
    method: str | None,
    weights: str | os.PathLike | None = None,
    *,
    pair: str | None = None,
    axis: int = -1,
    affine: np.ndarray | None = None,
    batch_size: int = BATCH_SLICES,
    device: str = "cpu",
    match_intensities: bool = True,
    margin: float | None = OUTPUT_MARGIN,
    subpixel_filter: bool = True,
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
        match_intensities: 2D network on a volume: map the inputs to the training intensities
            of the checkpoint's pair first (module docstring, :func:`match_training_intensities`).
        margin: bound of the output around the sources' local range (:func:`clamp_to_local_range`);
            None: the raw network output.
        subpixel_filter: see :func:`fuse_slices`.

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
            f"{weights}: this checkpoint holds a {stored!r} network, not {method!r}; choose {stored} as the method "
            f"({OPTION}) or the checkpoint of the method you want", option="method",
        )
    if pair is not None and info.get("pair") not in (None, pair):
        log.warning("checkpoint %s was trained for %s, used here for %s", Path(weights).name, info.get("pair"), pair)
    if int(getattr(model, "in_channels", 1)) != 1:
        raise UnsupportedInputError(f"{weights}: network expects {model.in_channels} channels per modality; "
                                    "fuse_with_network takes gray images (1 channel each)")
    if info["spatial_dims"] == 2:
        fused = fuse_slices(model, a, b, affine=affine, axis=axis, batch_size=batch_size, device=dev,
                            pair=info.get("pair") or pair, match_intensities=match_intensities, margin=margin,
                            subpixel_filter=subpixel_filter)
    else:
        fused = _fuse_volume(model, info, a, b, batch_size, dev, margin)
    return np.ascontiguousarray(fused, dtype=np.float32)
