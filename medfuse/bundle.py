"""What the MONAI bundles in ``bundles/`` need from medfuse beyond its transforms: only what a config cannot say.

Each bundle's ``configs/inference.json`` is a MONAI model-zoo workflow built from MONAI's own
components and :mod:`medfuse.transforms`::

    datalist -> Dataset -> DataLoader -> preprocessing (LoadVolumed, SplitLuminanced,
    RegisterToReferenced, NormalizeModalityd, ApplyColormapd (PET/SPECT), ConcatItemsd) ->
    SupervisedEvaluator (network, SliceFusionInferer, CheckpointLoader) -> postprocessing
    (KeepHotRegionsd (PET/SPECT), MergeLuminanced, SaveImaged with medfuse's VolumeWriter, WriteSidecard) -> run

A 3D PET/SPECT is fused in colour as the CLI fuses it: ApplyColormapd maps it through its colour map
and keeps the chroma, the network fuses the luminance, MergeLuminanced puts the chroma back and the
writer saves an RGB volume (NIfTI RGB24) with the MRI's affine.

This module owns no step of the fusion pipeline. It holds:

- :func:`make_datalist`: the cases, from ``--reference``/``--moving``, ``--dataset_dir`` with two
  globs, or a JSON datalist; it checks every input exists and no output would be overwritten
  (unless ``force``) before any work, which a config cannot express without ``$`` code.
- :class:`SliceFusionInferer`: a MONAI-style inferer over the one slice runner
  (:func:`medfuse.inference.fuse_slices`).
- :func:`bundle_path` (``bundle_root`` joined with a relative path: configs use no ``$``
  expressions, so they run with ``MONAI_EVAL_EXPR=0``) and :func:`report_errors` (the bundle
  ends on a medfuse error with medfuse's one-line message, as the CLI does).
- :func:`check_bundle_weights` (tests, release checks) and :func:`write_bundle` (``python -m
  medfuse.bundle BUNDLES_DIR``): a bundle's ``models/model.pt`` and ``network_def`` against the
  shipped weights of :mod:`medfuse.weights`, the one source of truth. Both take the bundle folder:
  they work from an installed wheel and under ``python -O``.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.errors import MedfuseError, OutputExistsError, UnsupportedInputError
from medfuse.pairs import MODALITY_OF_PAIR

__all__ = [
    "BUNDLE_OF_PAIR",
    "BundleMismatchError",
    "SliceFusionInferer",
    "make_datalist",
    "bundle_path",
    "report_errors",
    "check_bundle_weights",
    "sync_bundle_weights",
    "write_bundle",
]

log = logging.getLogger(__name__)

BUNDLE_OF_PAIR = {"ct_mri": "ct_mri_fusion", "pet_mri": "mri_pet_fusion", "spect_mri": "mri_spect_fusion"}


class BundleMismatchError(MedfuseError, ValueError):
    """A bundle's model file or network definition differs from the shipped weights."""


def bundle_path(bundle_root: str | os.PathLike, relative: str | os.PathLike) -> str:
    """``relative`` inside ``bundle_root`` (an absolute ``relative`` stays as it is)."""
    return str(Path(bundle_root) / relative)


def _output_path(reference: str, output_dir: str, dataset_dir: str | None, postfix: str, ext: str) -> Path:
    """Where ``SaveImaged(separate_folder=False, data_root_dir=dataset_dir)`` writes the case of ``reference``."""
    from monai.data import FolderLayout

    layout = FolderLayout(output_dir, postfix=postfix, extension=ext, parent=False, makedirs=False,
                          data_root_dir=dataset_dir or "")
    name = Path(reference).name
    for suffix in (".nii.gz", Path(name).suffix):
        if suffix and name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    subject = str(Path(reference).parent / name)
    return Path(layout.filename(subject=subject))


def make_datalist(
    reference: str = "",
    moving: str = "",
    dataset_dir: str = "",
    reference_glob: str = "",
    moving_glob: str = "",
    datalist_file: str = "",
    output_dir: str = "eval",
    output_postfix: str = "fused",
    output_ext: str = ".nii.gz",
    force: bool = False,
) -> list[dict[str, str]]:
    """The cases a bundle fuses: ``[{"reference": path, "moving": path}, ...]``.

    One source, in this order: ``reference`` and ``moving`` (one case, from the command line);
    ``datalist_file`` (a JSON list of ``{"reference", "moving"}`` cases, or a MONAI datalist with
    them under ``"testing"``; relative paths are taken from ``dataset_dir``, else the file's folder);
    ``dataset_dir`` with ``reference_glob`` and ``moving_glob`` (e.g. ``*/mri.nii.gz`` and
    ``*/pet.nii.gz``; the sorted matches are paired folder by folder).

    Args:
        output_dir, output_postfix, output_ext: as given to ``SaveImaged`` (``separate_folder=False``,
            ``data_root_dir=dataset_dir``); used to refuse overwriting.
        force: overwrite existing outputs.

    Raises:
        UnsupportedInputError: no cases, half a case, or globs that do not pair up.
        FileNotFoundError: an input does not exist.
        OutputExistsError: an output exists and ``force`` is false.
    """
    if reference or moving:
        if not (reference and moving):
            raise UnsupportedInputError("give both inputs: --reference MRI --moving OTHER (and --output_dir OUT)")
        cases = [{"reference": reference, "moving": moving}]
    elif datalist_file:
        path = Path(datalist_file)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such datalist file (a JSON list of {{reference, moving}} cases)")
        try:
            content = json.loads(path.read_text())
        except ValueError as err:
            raise UnsupportedInputError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from err
        items = content.get("testing") if isinstance(content, dict) else content
        if not isinstance(items, list) or not all(isinstance(c, dict) and {"reference", "moving"} <= set(c)
                                                  for c in items):
            raise UnsupportedInputError(f"{path}: expected a JSON list of {{\"reference\": ..., \"moving\": ...}} "
                                        "cases (or such a list under \"testing\")")
        base = Path(dataset_dir) if dataset_dir else path.parent
        cases = [{k: str(base / c[k]) for k in ("reference", "moving")} for c in items]
    elif dataset_dir:
        if not (reference_glob and moving_glob):
            raise UnsupportedInputError("with --dataset_dir give --reference_glob and --moving_glob "
                                        "(e.g. '*/mri.nii.gz' and '*/pet.nii.gz'), or use --datalist_file")
        refs = sorted(glob.glob(os.path.join(dataset_dir, reference_glob)))
        movs = sorted(glob.glob(os.path.join(dataset_dir, moving_glob)))
        if len(refs) != len(movs) or [Path(r).parent for r in refs] != [Path(m).parent for m in movs]:
            raise UnsupportedInputError(
                f"{dataset_dir}: {reference_glob!r} matches {len(refs)} file(s) and {moving_glob!r} {len(movs)}, "
                "not one of each per folder; fix the globs or list the cases in a --datalist_file")
        cases = [{"reference": r, "moving": m} for r, m in zip(refs, movs)]
    else:
        raise UnsupportedInputError("nothing to fuse: give --reference MRI --moving OTHER, or --datalist_file LIST.json, "
                                    "or --dataset_dir DIR with --reference_glob and --moving_glob")
    if not cases:
        raise UnsupportedInputError(f"{datalist_file or dataset_dir}: no cases found")
    outputs: dict[Path, int] = {}
    for number, case in enumerate(cases, start=1):
        # messages name an input by its role (and case number), never by its path: folder and file names may
        # hold patient identifiers (medfuse.io.naming)
        where = "" if len(cases) == 1 else f"case {number} of {len(cases)}: "
        for key in ("reference", "moving"):
            case[key] = os.path.normpath(case[key])  # "dicom_folder/" names its output like "dicom_folder"
            if not os.path.exists(case[key]):
                flag = f"--{key}" if reference or moving else ("--datalist_file" if datalist_file else f"--{key}_glob")
                raise FileNotFoundError(f"{where}the {key} scan ({flag}): no such file or folder")
        out = _output_path(case["reference"], output_dir, dataset_dir or None, output_postfix, output_ext)
        if out in outputs:
            raise UnsupportedInputError(f"cases {outputs[out]} and {number} would both be written to the same output "
                                        "file; give each case its own folder under --dataset_dir")
        outputs[out] = number
        if out.exists() and not force:
            raise OutputExistsError(f"{out}: exists; choose another --output_dir or add --force true to overwrite")
    return cases


def report_errors() -> None:
    """End the bundle's process on a medfuse error with one line (``medfuse bundle: error: ...``), not a traceback.

    A config's ``initialize`` calls this; it installs a ``sys.excepthook`` that finds a
    :class:`~medfuse.errors.MedfuseError` or a missing file in the exception's chain (MONAI wraps
    errors raised in transforms and in config instantiation) and prints its message; any other
    exception keeps Python's traceback.
    """
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        err: BaseException | None = exc
        while err is not None:
            if isinstance(err, (MedfuseError, FileNotFoundError)):
                print(f"medfuse bundle: error: {err}", file=sys.stderr)
                return
            err = err.__cause__ or err.__context__
        previous(exc_type, exc, tb)

    sys.excepthook = hook


class SliceFusionInferer:
    """A MONAI-style inferer running a 2D fusion network over volumes slice by slice, batched.

    ``inferer(inputs, network, affine=None)``: ``inputs`` ``(B, 2, H, W)`` or ``(B, 2, X, Y, Z)`` in
    [0, 1]; returns ``(B, 1, ...)`` in [0, 1], a ``MetaTensor`` with the inputs' metadata when they
    carry it. 2D images and volumes go through the one slice runner (:func:`medfuse.inference.fuse_slices`), as
    ``medfuse fuse`` fuses them (until session 10 a 2D image got the network's raw output here: no sub-pixel
    filter, no no-halo bound). Volumes: with
    the reference's voxel-to-RAS affine (``affine``, ``(4, 4)`` or ``(B, 4, 4)``, by default the
    affine of a ``MetaTensor`` batch) axial slices in the orientation of the training slices
    whatever the storage order; without one, slices across the stored spatial ``axis``. Slices are
    padded to the network's ``size_divisor`` and cropped back (:func:`medfuse.inference.predict`).
    ``pair`` (``ct_mri``, ``pet_mri``, ``spect_mri``) is the pair the network was trained for: a volume
    is mapped to its training intensities first, as :func:`medfuse.fusion.fuse_arrays` (the CLI) does;
    without it (and without the network's ``fusion_pair``) volumes are fused as they are.
    """

    def __init__(self, axis: int = -1, batch_size: int = 16, pair: str | None = None) -> None:
        self.axis, self.batch_size, self.pair = axis, batch_size, pair

    def __call__(self, inputs, network, *args: Any, affine=None, **kwargs: Any):
        import torch
        from monai.data import MetaTensor
        from monai.utils import convert_to_dst_type

        from medfuse.inference import fuse_slices

        if inputs.ndim not in (4, 5):
            raise ValueError(f"SliceFusionInferer expects (B, 2, H, W) or (B, 2, X, Y, Z); got {tuple(inputs.shape)}")
        affines = [None] * inputs.shape[0]
        if inputs.ndim == 5:  # volumes: axial slices in the training orientation where the affine is known
            if affine is None and isinstance(inputs, MetaTensor):
                from medfuse.transforms.array import ras_affine

                affine = ras_affine(inputs)
            if affine is not None:
                aff = np.asarray(affine.cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
                affines = [aff] * inputs.shape[0] if aff.ndim == 2 else list(aff)
        # 2D images as volumes through the one slice runner, as `medfuse fuse` fuses them (pyramid composition,
        # sub-pixel filter, no-halo bound), not the network's raw output
        outs = []
        for sample, aff in zip(inputs, affines):  # (2, H, W) or (2, X, Y, Z)
            images = np.asarray(sample.detach().float().cpu())
            fused = fuse_slices(network, images[0], images[1], affine=aff, axis=self.axis, batch_size=self.batch_size,
                                device=inputs.device, pair=self.pair)
            outs.append(torch.from_numpy(fused)[None])
        return convert_to_dst_type(torch.stack(outs).to(inputs.device), inputs)[0]


# ----------------------------------------------------------------------------------------------
# the bundle files against the shipped weights (one source of truth)


def _default_weights(pair: str) -> Path:
    from medfuse.weights import default_network, weights_path

    method = default_network(pair)
    path = weights_path(pair, method) if method else None
    if path is None:
        raise UnsupportedInputError(f"no default trained network is shipped for {pair}; train one (medfuse train)")
    return path


def _pair_of(bundle_root: str | os.PathLike) -> str:
    name = Path(bundle_root).resolve().name
    for pair, bundle in BUNDLE_OF_PAIR.items():
        if bundle == name:
            return pair
    raise UnsupportedInputError(f"{bundle_root}: not a medfuse bundle folder (expected one of "
                                f"{', '.join(BUNDLE_OF_PAIR.values())})")


def sync_bundle_weights(bundle_root: str | os.PathLike) -> Path:
    """Write ``<bundle_root>/models/model.pt`` from the shipped default weights of the bundle's pair."""
    from medfuse.training.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(_default_weights(_pair_of(bundle_root)))
    return save_checkpoint(ckpt["model"], Path(bundle_root) / "models" / "model.pt")


def check_bundle_weights(bundle_root: str | os.PathLike) -> dict[str, Any]:
    """Compare a bundle's ``models/model.pt`` and ``network_def`` with the shipped weights of its pair.

    Args:
        bundle_root: the bundle folder (``bundles/mri_pet_fusion``...); its name says the pair.

    Returns:
        ``{"network": name, "kwargs": {...}}`` of the shipped checkpoint.

    Raises:
        BundleMismatchError: the tensors, the network class or its arguments differ (run
            ``python -m medfuse.bundle BUNDLES_DIR`` after retraining).
    """
    import torch

    from medfuse.networks import NETWORKS
    from medfuse.training.checkpoint import read_checkpoint

    folder = Path(bundle_root)
    ckpt = read_checkpoint(_default_weights(_pair_of(folder)))
    state = torch.load(folder / "models" / "model.pt", map_location="cpu", weights_only=True)
    fix = "; rewrite it with python -m medfuse.bundle BUNDLES_DIR"
    if state.keys() != ckpt["model"].keys():
        raise BundleMismatchError(f"{folder}: models/model.pt layers differ from the shipped weights{fix}")
    for k, v in ckpt["model"].items():
        if not torch.equal(state[k], v):
            raise BundleMismatchError(f"{folder}: models/model.pt tensor {k} differs from the shipped weights{fix}")
    net = json.loads((folder / "configs" / "inference.json").read_text())["network_def"]
    name = ckpt["network"]["name"]
    cls = NETWORKS[name]
    if net.get("_target_") != f"{cls.__module__}.{cls.__name__}":
        raise BundleMismatchError(f"{folder}: network_def is {net.get('_target_')}, not {cls.__name__}{fix}")
    expected = json.loads(json.dumps({"spatial_dims": ckpt["network"]["spatial_dims"], **ckpt["network"]["kwargs"]}))
    given = {k: v for k, v in net.items() if not k.startswith("_")}
    if given != expected:
        raise BundleMismatchError(f"{folder}: network_def arguments {given} differ from {expected}{fix}")
    return {"network": name, "kwargs": expected}


_PAIR_TEXT = {
    "ct_mri": ("CT", "CT-MRI", "CT (bone, calcification) fused into the MRI's soft-tissue anatomy"),
    "pet_mri": ("PET", "MRI-PET", "FDG-PET uptake fused into the MRI's anatomy"),
    "spect_mri": ("SPECT", "MRI-SPECT", "SPECT perfusion fused into the MRI's anatomy"),
}


def _metadata(pair: str, ckpt: dict, version: str) -> dict:
    import monai
    import torch

    from medfuse import __version__

    name, title, what = _PAIR_TEXT[pair]
    val = (ckpt.get("provenance") or {}).get("benchmark", {})
    return {
        "schema": "bundles/schema/meta_schema.json",
        "version": version,
        "changelog": {version: f"{ckpt['network']['name']} network trained with medfuse for {pair} (medfuse weights); "
                               "MONAI workflow: datalist, DataLoader, SupervisedEvaluator, SaveImaged"},
        "monai_version": monai.__version__.split("+")[0],
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "required_packages_version": {"medfuse": __version__, "nibabel": _version("nibabel"),
                                      "SimpleITK": _version("SimpleITK"), "pydicom": _version("pydicom"),
                                      "fire": _version("fire")},
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


def _inference_config(pair: str, ckpt: dict) -> dict:
    from medfuse.networks import NETWORKS

    cls = NETWORKS[ckpt["network"]["name"]]
    functional = MODALITY_OF_PAIR[pair] in ("PT", "NM")
    # a 3D PET/SPECT is fused in colour, as the CLI does (medfuse.pipeline.fuse_volumes): its colour map's
    # luminance is fused, MergeLuminanced puts the chroma back; 2D colour slices are split by SplitLuminanced
    colour = [{"_target_": "medfuse.transforms.ApplyColormapd", "keys": ["moving"], "colormap": "@colormap"}] \
        if functional else []
    # the hottest uptake lifted to the PET/SPECT's own brightness before the colour goes back, as the CLI does
    hot = [{"_target_": "medfuse.transforms.KeepHotRegionsd", "keys": ["pred"], "moving_key": "moving", "pair": pair,
            "method": ckpt["network"]["name"]}] if functional else []
    return {
        "bundle_root": ".",
        "device": "cpu",
        "reference": "",
        "moving": "",
        "dataset_dir": "",
        "reference_glob": "",
        "moving_glob": "",
        "datalist_file": "",
        "output_dir": "eval",
        "output_postfix": "fused",
        "output_ext": ".nii.gz",
        "force": False,
        "reference_modality": "MR",
        "moving_modality": MODALITY_OF_PAIR[pair],
        "registration": "rigid",
        **({"colormap": None} if functional else {}),
        "initialize": [{"_target_": "medfuse.bundle.report_errors"}],
        "datalist": {"_target_": "medfuse.bundle.make_datalist", "reference": "@reference", "moving": "@moving",
                     "dataset_dir": "@dataset_dir", "reference_glob": "@reference_glob",
                     "moving_glob": "@moving_glob", "datalist_file": "@datalist_file", "output_dir": "@output_dir",
                     "output_postfix": "@output_postfix", "output_ext": "@output_ext", "force": "@force"},
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "medfuse.transforms.LoadVolumed", "keys": ["reference", "moving"],
                 "modality": ["@reference_modality", "@moving_modality"], "keep_color": True},
                {"_target_": "medfuse.transforms.SplitLuminanced", "keys": ["moving"]},
                {"_target_": "medfuse.transforms.RegisterToReferenced", "keys": ["moving"], "ref_key": "reference",
                 "transform": "@registration"},
                {"_target_": "medfuse.transforms.NormalizeModalityd", "keys": ["reference", "moving"]},
                *colour,
                {"_target_": "ConcatItemsd", "keys": ["reference", "moving"], "name": "image", "dim": 0},
            ],
        },
        "dataset": {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": False,
                       "num_workers": 0},
        "network_def": {"_target_": f"{cls.__module__}.{cls.__name__}",
                        "spatial_dims": ckpt["network"]["spatial_dims"], **ckpt["network"]["kwargs"]},
        "network": {"_target_": "torch.nn.Module.to", "self": "@network_def", "device": "@device"},
        "inferer": {"_target_": "medfuse.bundle.SliceFusionInferer", "axis": -1, "batch_size": 16, "pair": pair},
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                *hot,
                {"_target_": "medfuse.transforms.MergeLuminanced", "keys": ["pred"], "chroma_key": "moving",
                 "scale": 255.0},
                {"_target_": "SaveImaged", "keys": ["pred"], "output_dir": "@output_dir",
                 "output_postfix": "@output_postfix", "output_ext": "@output_ext", "separate_folder": False,
                 "data_root_dir": "@dataset_dir", "writer": "medfuse.transforms.VolumeWriter", "scale": 255,
                 "savepath_in_metadict": True, "print_log": False},
                {"_target_": "medfuse.transforms.WriteSidecard", "keys": ["pred"], "reference_key": "reference",
                 "moving_key": "moving", "method": ckpt["network"]["name"],
                 "weights": {"_target_": "medfuse.bundle.bundle_path", "bundle_root": "@bundle_root",
                             "relative": "models/model.pt"},
                 "command": "python -m monai.bundle run"},
            ],
        },
        "handlers": [
            {"_target_": "CheckpointLoader", "load_path": {"_target_": "medfuse.bundle.bundle_path",
                                                           "bundle_root": "@bundle_root",
                                                           "relative": "models/model.pt"},
             "load_dict": {"model": "@network"}, "map_location": "@device"},
        ],
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                      "network": "@network", "inferer": "@inferer", "postprocessing": "@postprocessing",
                      "val_handlers": "@handlers", "amp": False},
        "run": {"_target_": "monai.engines.Workflow.run", "self": "@evaluator"},
    }


def _shipped_training_config(ckpt: dict) -> dict | None:
    """The checkpoint's training config as :func:`medfuse.training.load_config` takes it (the method is given apart)."""
    config = json.loads(json.dumps(ckpt.get("config") or {}))
    config.get("network", {}).pop("name", None)
    return config or None


def _train_config(pair: str, ckpt: dict) -> dict:
    return {
        "bundle_root": ".",
        "device": "cpu",
        "dataset_dir": "",
        "pair": pair,
        "method": ckpt["network"]["name"],
        "iterations": int(ckpt.get("iteration", 0)) or None,
        "seed": int((ckpt.get("config") or {}).get("seed", 0)),
        # the shipped weights' own training configuration (network head, loss, schedule): train.json trains what
        # models/model.pt holds, not the method's default configuration
        "train_config": _shipped_training_config(ckpt),
        "output": "trained.pt",
        "force": False,
        "initialize": [{"_target_": "medfuse.bundle.report_errors"}],
        "run": {"_target_": "medfuse.training.train", "pair": "@pair", "method": "@method", "out": "@output",
                "data_dir": "@dataset_dir", "iterations": "@iterations", "device": "@device", "seed": "@seed",
                "config": "@train_config", "force": "@force"},
    }


def write_bundle(bundle_root: str | os.PathLike, version: str = "0.2.0") -> Path:
    """(Re)write a bundle's configs and ``models/model.pt`` from the shipped default weights of its pair.

    The prose files (``docs/README.md``, ``LICENSE``, ``docs/data_license.txt``) are written by hand
    and left alone.
    """
    from medfuse.io.atomic import atomic_output
    from medfuse.training.checkpoint import read_checkpoint

    folder = Path(bundle_root)
    pair = _pair_of(folder)
    ckpt = read_checkpoint(_default_weights(pair))
    for name, content in (("metadata.json", _metadata(pair, ckpt, version)),
                          ("inference.json", _inference_config(pair, ckpt)),
                          ("train.json", _train_config(pair, ckpt))):
        with atomic_output(folder / "configs" / name, force=True) as tmp:
            tmp.write_text(json.dumps(content, indent=2) + "\n")
    sync_bundle_weights(folder)
    return folder


if __name__ == "__main__":  # python -m medfuse.bundle [BUNDLES_DIR]: rebuild every bundle from the shipped weights
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _root = Path(sys.argv[1] if len(sys.argv) > 1 else "bundles")
    for _bundle in BUNDLE_OF_PAIR.values():
        log.info("wrote %s", write_bundle(_root / _bundle))
