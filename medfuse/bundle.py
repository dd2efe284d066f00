"""Glue for the MONAI bundles in ``bundles/``: the pieces their configs compose.

Each bundle (``ct_mri_fusion``, ``mri_pet_fusion``, ``mri_spect_fusion``) has an
``inference.json`` that composes medfuse's MONAI transforms (load, register, normalize, stack as
two channels), the network, :class:`SliceFusionInferer` and :func:`run_fusion`, which writes the
fused image with the reference's geometry. The configs use no ``$`` expressions, so they run
with ``MONAI_EVAL_EXPR=0``.

The bundle's ``models/model.pt`` is the ``state_dict`` of the shipped weights in
:mod:`medfuse.weights` (the one source of truth): :func:`sync_bundle_weights` writes it and
:func:`check_bundle_weights` (run by the tests) fails when the two drift apart.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BUNDLE_OF_PAIR",
    "MODALITY_OF_PAIR",
    "SliceFusionInferer",
    "run_fusion",
    "bundle_dir",
    "sync_bundle_weights",
    "check_bundle_weights",
]

log = logging.getLogger(__name__)

BUNDLE_OF_PAIR = {"ct_mri": "ct_mri_fusion", "pet_mri": "mri_pet_fusion", "spect_mri": "mri_spect_fusion"}
MODALITY_OF_PAIR = {"ct_mri": "CT", "pet_mri": "PT", "spect_mri": "NM"}
BUNDLES_ROOT = Path(__file__).resolve().parents[1] / "bundles"


def bundle_dir(pair: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of the bundle for ``pair`` (in the source tree's ``bundles/`` by default)."""
    return Path(root or BUNDLES_ROOT) / BUNDLE_OF_PAIR[pair]


class SliceFusionInferer:
    """A MONAI-style inferer running a 2D fusion network over volumes slice by slice, batched.

    ``inferer(inputs, network)``: ``inputs`` ``(B, 2, H, W)`` or ``(B, 2, X, Y, Z)`` in [0, 1];
    returns ``(B, 1, ...)`` in [0, 1]. Slices along ``axis`` (of the spatial axes) are padded to the
    network's ``size_divisor`` and cropped back (:func:`medfuse.inference.predict`).
    """

    def __init__(self, axis: int = -1, batch_size: int = 16) -> None:
        self.axis, self.batch_size = axis, batch_size

    def __call__(self, inputs, network, *args: Any, **kwargs: Any):
        import torch

        from medfuse.inference import predict

        if inputs.ndim == 4:
            return predict(network, inputs, self.batch_size)
        if inputs.ndim != 5:
            raise ValueError(f"SliceFusionInferer expects (B, 2, H, W) or (B, 2, X, Y, Z); got {tuple(inputs.shape)}")
        axis = 2 + (int(self.axis) % 3)
        outs = []
        for sample in inputs:  # (2, X, Y, Z)
            slices = torch.movedim(sample, axis - 1, 0)  # (S, 2, H, W)
            fused = predict(network, slices, self.batch_size)  # (S, 1, H, W)
            outs.append(torch.movedim(fused, 0, axis - 1))
        return torch.stack(outs)


def run_fusion(
    reference: str,
    moving: str,
    output_dir: str,
    preprocessing,
    network,
    inferer,
    bundle_root: str = ".",
    checkpoint: str = "models/model.pt",
    device: str = "cpu",
    force: bool = False,
) -> Path:
    """What a bundle's ``run`` does: preprocess, infer, write ``output_dir/fused.{nii.gz|png}``.

    Args:
        reference, moving: input paths (NIfTI, NRRD, DICOM folder, PNG).
        output_dir: where ``fused.nii.gz`` (3D) or ``fused.png`` (2D, colour kept) is written.
        preprocessing: a callable on ``{"reference": path, "moving": path}`` producing ``"image"``
            ``(2, ...)`` and the normalized ``"reference"``/``"moving"`` MetaTensors.
        network: the fusion network; ``checkpoint`` (relative to ``bundle_root``) is loaded into it
            with ``torch.load(..., weights_only=True)``.
        inferer: e.g. :class:`SliceFusionInferer`.
        force: overwrite an existing output.

    Returns:
        The written path. Its affine equals the reference's.
    """
    import torch

    from medfuse.io import save_volume
    from medfuse.transforms.array import CHROMA_META_KEY, MergeLuminance, to_volume

    if not reference or not moving:
        raise ValueError("give both inputs: --reference MRI --moving OTHER (and --output_dir OUT)")
    ckpt = Path(bundle_root) / checkpoint
    state = torch.load(ckpt, map_location=device, weights_only=True)
    network.load_state_dict(state)
    network.to(device).eval()
    data = preprocessing({"reference": reference, "moving": moving})
    image = data["image"]
    pred = inferer(image.as_tensor()[None].to(device), network)[0].cpu()  # (1, ...)
    ref_vol = to_volume(data["reference"])
    fused = ref_vol.with_array(pred[0].numpy())
    fused.meta = {"fusion_method": type(network).__name__}
    out_dir = Path(output_dir)
    if ref_vol.ndim == 2:
        chroma = data["moving"].meta.get(CHROMA_META_KEY)
        fused = fused.with_array(255.0 * fused.array)
        if chroma is not None:
            rgb = MergeLuminance()(torch.from_numpy(fused.array[None]), chroma)
            fused.rgb = np.moveaxis(np.asarray(rgb), 0, -1)
        path = out_dir / "fused.png"
    else:
        path = out_dir / "fused.nii.gz"
    save_volume(fused, path, force=force)
    log.info("bundle wrote %s", path)
    return path


def _default_weights(pair: str) -> Path:
    from medfuse.errors import UnsupportedInputError
    from medfuse.weights import default_network, weights_path

    method = default_network(pair)
    path = weights_path(pair, method) if method else None
    if path is None:
        raise UnsupportedInputError(f"no default trained network is shipped for {pair}; train one (issue 6)")
    return path


def sync_bundle_weights(pair: str, root: str | os.PathLike | None = None) -> Path:
    """Write ``bundles/<bundle>/models/model.pt`` from the shipped default weights of ``pair``."""
    import torch

    from medfuse.io.atomic import atomic_output
    from medfuse.training.checkpoint import read_checkpoint

    ckpt = read_checkpoint(_default_weights(pair))
    target = bundle_dir(pair, root) / "models" / "model.pt"
    with atomic_output(target, force=True) as tmp:
        torch.save(ckpt["model"], tmp)
    return target


def check_bundle_weights(pair: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Compare a bundle's ``model.pt`` and ``inference.json`` network with the shipped weights.

    Returns:
        ``{"network": name, "kwargs": {...}}`` of the shipped checkpoint.

    Raises:
        AssertionError: the tensors, the network class or its arguments differ (run
            :func:`sync_bundle_weights` after retraining).
    """
    import torch

    from medfuse.networks import NETWORKS
    from medfuse.training.checkpoint import read_checkpoint

    ckpt = read_checkpoint(_default_weights(pair))
    folder = bundle_dir(pair, root)
    state = torch.load(folder / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert state.keys() == ckpt["model"].keys(), f"{folder}: model.pt layers differ from the shipped weights"
    for k, v in ckpt["model"].items():
        assert torch.equal(state[k], v), f"{folder}: model.pt tensor {k} differs from the shipped weights"
    cfg = json.loads((folder / "configs" / "inference.json").read_text())
    net = cfg["network_def"]
    name = ckpt["network"]["name"]
    cls = NETWORKS[name]
    assert net["_target_"] == f"{cls.__module__}.{cls.__name__}", f"{folder}: network_def is not {cls.__name__}"
    expected = {"spatial_dims": ckpt["network"]["spatial_dims"], **ckpt["network"]["kwargs"]}
    given = {k: v for k, v in net.items() if not k.startswith("_")}
    assert given == json.loads(json.dumps(expected)), f"{folder}: network_def arguments {given} != {expected}"
    return {"network": name, "kwargs": expected}
