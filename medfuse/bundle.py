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

from medfuse.fusion import MODALITY_OF_PAIR

__all__ = [
    "BUNDLE_OF_PAIR",
    "MODALITY_OF_PAIR",
    "SliceFusionInferer",
    "run_fusion",
    "bundle_dir",
    "sync_bundle_weights",
    "check_bundle_weights",
    "write_bundle",
]

log = logging.getLogger(__name__)

BUNDLE_OF_PAIR = {"ct_mri": "ct_mri_fusion", "pet_mri": "mri_pet_fusion", "spect_mri": "mri_spect_fusion"}
BUNDLES_ROOT = Path(__file__).resolve().parents[1] / "bundles"


def bundle_dir(pair: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of the bundle for ``pair`` (in the source tree's ``bundles/`` by default)."""
    return Path(root or BUNDLES_ROOT) / BUNDLE_OF_PAIR[pair]


class SliceFusionInferer:
    """A MONAI-style inferer running a 2D fusion network over volumes slice by slice, batched.

    ``inferer(inputs, network, affine=None)``: ``inputs`` ``(B, 2, H, W)`` or ``(B, 2, X, Y, Z)`` in
    [0, 1]; returns ``(B, 1, ...)`` in [0, 1]. Volumes go through the same slice runner as
    :func:`medfuse.fusion.fuse_arrays` (:func:`medfuse.inference.fuse_slices`): given ``affine`` (the
    reference's voxel-to-RAS affine, ``(4, 4)`` or one per sample ``(B, 4, 4)``), axial slices in the
    orientation of the training slices whatever the storage order; without it, slices across the
    stored spatial ``axis``. Slices are padded to the network's ``size_divisor`` and cropped back
    (:func:`medfuse.inference.predict`).
    """

    def __init__(self, axis: int = -1, batch_size: int = 16) -> None:
        self.axis, self.batch_size = axis, batch_size

    def __call__(self, inputs, network, *args: Any, affine=None, **kwargs: Any):
        import torch

        from medfuse.inference import fuse_slices, predict

        if inputs.ndim == 4:
            return predict(network, inputs, self.batch_size)
        if inputs.ndim != 5:
            raise ValueError(f"SliceFusionInferer expects (B, 2, H, W) or (B, 2, X, Y, Z); got {tuple(inputs.shape)}")
        affines = [None] * inputs.shape[0]
        if affine is not None:
            aff = np.asarray(affine.cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
            affines = [aff] * inputs.shape[0] if aff.ndim == 2 else list(aff)
        outs = []
        for sample, aff in zip(inputs, affines):  # (2, X, Y, Z)
            pair = sample.detach().float().cpu().numpy()
            fused = fuse_slices(network, pair[0], pair[1], affine=aff, axis=self.axis, batch_size=self.batch_size,
                                device=inputs.device)
            outs.append(torch.from_numpy(fused)[None])
        return torch.stack(outs).to(inputs.device)


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
    ref_vol = to_volume(data["reference"])
    # the slice inferer fuses axial slices in the training orientation: give it the reference's geometry
    extra = {"affine": ref_vol.affine} if isinstance(inferer, SliceFusionInferer) and ref_vol.ndim == 3 else {}
    pred = inferer(image.as_tensor()[None].to(device), network, **extra)[0].cpu()  # (1, ...)
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
    from medfuse.training.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(_default_weights(pair))
    target = bundle_dir(pair, root) / "models" / "model.pt"
    return save_checkpoint(ckpt["model"], target)


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


_PAIR_TEXT = {
    "ct_mri": ("CT", "CT-MRI", "CT (bone, calcification) fused into the MRI's soft-tissue anatomy"),
    "pet_mri": ("PET", "MRI-PET", "FDG-PET uptake fused into the MRI's anatomy"),
    "spect_mri": ("SPECT", "MRI-SPECT", "SPECT perfusion fused into the MRI's anatomy"),
}


def _metadata(pair: str, ckpt: dict, version: str) -> dict:
    import monai
    import numpy
    import torch

    name, title, what = _PAIR_TEXT[pair]
    val = (ckpt.get("provenance") or {}).get("benchmark", {})
    return {
        "schema": "bundles/schema/meta_schema.json",
        "version": version,
        "changelog": {version: f"{ckpt['network']['name']} network trained with medfuse for {pair} (medfuse weights)"},
        "monai_version": monai.__version__.split("+")[0],
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "optional_packages_version": {"medfuse": _medfuse_version(), "nibabel": _version("nibabel"),
                                      "SimpleITK": _version("SimpleITK"), "pydicom": _version("pydicom")},
        "name": f"{title} fusion",
        "task": f"{title} image fusion: {what}",
        "description": (f"Registers the {name} scan onto the MRI (mutual information, rigid), normalizes each modality, "
                        f"and fuses them slice by slice with the trained '{ckpt['network']['name']}' network; "
                        "the fused image keeps the MRI's grid and affine."),
        "authors": "medfuse developers",
        "copyright": "Copyright (c) medfuse developers",
        "data_source": "Harvard Whole Brain Atlas (AANLIB) co-registered slice pairs, (c) K. A. Johnson and J. A. Becker",
        "data_type": "nifti, nrrd, dicom, png",
        "image_classes": f"2 channels: channel 0 the MRI, channel 1 the {name} (luminance for colour slices), each normalized to [0, 1]",
        "pred_classes": "1 channel: the fused image in [0, 1]",
        "eval_metrics": val,
        "intended_use": "research only; not for clinical diagnosis",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": f"MR+{MODALITY_OF_PAIR[pair]}",
                    "num_channels": 2,
                    "spatial_shape": ["8*n", "8*n"],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "MRI", "1": name},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": 1,
                    "spatial_shape": ["8*n", "8*n"],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "fused"},
                }
            },
        },
    }


def _version(module: str) -> str:
    from importlib.metadata import version

    return version(module)


def _medfuse_version() -> str:
    from medfuse import __version__

    return __version__


def _inference_config(pair: str, ckpt: dict) -> dict:
    from medfuse.networks import NETWORKS

    cls = NETWORKS[ckpt["network"]["name"]]
    return {
        "bundle_root": ".",
        "device": "cpu",
        "reference": "",
        "moving": "",
        "output_dir": "eval",
        "force": False,
        "moving_modality": MODALITY_OF_PAIR[pair],
        "registration": "rigid",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "medfuse.transforms.LoadVolumed", "keys": ["reference", "moving"],
                 "modality": ["MR", "@moving_modality"], "keep_color": True},
                {"_target_": "medfuse.transforms.SplitLuminanced", "keys": ["moving"]},
                {"_target_": "medfuse.transforms.RegisterToReferenced", "keys": ["moving"], "ref_key": "reference",
                 "transform": "@registration"},
                {"_target_": "medfuse.transforms.NormalizeModalityd", "keys": ["reference", "moving"]},
                {"_target_": "ConcatItemsd", "keys": ["reference", "moving"], "name": "image", "dim": 0},
            ],
        },
        "network_def": {"_target_": f"{cls.__module__}.{cls.__name__}",
                        "spatial_dims": ckpt["network"]["spatial_dims"], **ckpt["network"]["kwargs"]},
        "inferer": {"_target_": "medfuse.bundle.SliceFusionInferer", "axis": -1, "batch_size": 16},
        "run": {"_target_": "medfuse.bundle.run_fusion", "reference": "@reference", "moving": "@moving",
                "output_dir": "@output_dir", "preprocessing": "@preprocessing", "network": "@network_def",
                "inferer": "@inferer", "bundle_root": "@bundle_root", "device": "@device", "force": "@force"},
    }


def _train_config(pair: str, ckpt: dict) -> dict:
    return {
        "bundle_root": ".",
        "device": "cpu",
        "dataset_dir": "",
        "pair": pair,
        "method": ckpt["network"]["name"],
        "iterations": int(ckpt.get("iteration", 0)) or None,
        "seed": int((ckpt.get("config") or {}).get("seed", 0)),
        "output": "trained.pt",
        "force": False,
        "run": {"_target_": "medfuse.training.train", "pair": "@pair", "method": "@method", "out": "@output",
                "data_dir": "@dataset_dir", "iterations": "@iterations", "device": "@device", "seed": "@seed",
                "force": "@force"},
    }


def write_bundle(pair: str, root: str | os.PathLike | None = None, version: str = "0.1.0") -> Path:
    """(Re)write a bundle's configs and ``models/model.pt`` from the shipped default weights of ``pair``.

    The prose files (``docs/README.md``, ``LICENSE``, ``docs/data_license.txt``) are written by hand
    and left alone.
    """
    from medfuse.io.atomic import atomic_output
    from medfuse.training.checkpoint import read_checkpoint

    ckpt = read_checkpoint(_default_weights(pair))
    folder = bundle_dir(pair, root)
    for name, content in (("metadata.json", _metadata(pair, ckpt, version)),
                          ("inference.json", _inference_config(pair, ckpt)),
                          ("train.json", _train_config(pair, ckpt))):
        with atomic_output(folder / "configs" / name, force=True) as tmp:
            tmp.write_text(json.dumps(content, indent=2) + "\n")
    sync_bundle_weights(pair, root)
    return folder


if __name__ == "__main__":  # python -m medfuse.bundle: rebuild every bundle from the shipped weights
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for _pair in BUNDLE_OF_PAIR:
        log.info("wrote %s", write_bundle(_pair))
