"""Training configs: the package defaults, the method files and the user's overrides.

:func:`load_config` merges :data:`DEFAULT_CONFIG`, the method's file ``configs/<method>.json`` (and its
``"pairs": {pair: {...}}`` section for the pair being trained), then the user's file or dict (or a shipped
weights' provenance record, whose exact config is taken); unknown keys are an error that names the
closest known key, and every value is validated (:func:`validate`). :func:`loss_fn` builds the content
loss a config describes. Used by :func:`medfuse.training.trainer.train`, the bundles and the tests.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping

from medfuse.errors import UnsupportedInputError

__all__ = ["DEFAULT_CONFIG", "CONFIG_DIR", "load_config", "validate", "loss_fn"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: every config key and its default; method files and user files override parts of it
DEFAULT_CONFIG: dict[str, Any] = {
    "network": {"spatial_dims": 2, "kwargs": {}},
    "seed": 0,
    "iterations": 2000,
    "batch_size": 8,
    "crop": 128,
    "lr": 1e-3,
    "lr_min": 1e-5,
    "schedule": "cosine",
    "betas": [0.9, 0.999],
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "loss": {"weights": {"var_ssim": 1.0}, "win_size": 11, "intensity_mode": "max", "saliency_window": 11,
             "gradient_gain": 1.0},
    "adversarial": {"weight": 0.0, "lr": 2e-4, "channels": 16, "num_layers": 3},
    "augment": {"flip": True, "rot90": True, "min_foreground": 0.1, "appearance": 0.0, "colormap": 0.0},
    "val_fraction": 0.2,
    "split_seed": 0,
    "val_every": 250,
    "val_max_pairs": 32,
    "checkpoint_every": 250,
    "log_every": 10,
    "phantom": {"cases": 0, "slices_per_case": 16, "seed": 0},
    "volumes": {"min_head_fraction": 0.25},
    "fine_tune_lr": 1e-4,
}
_SCHEDULES = ("cosine", "constant")


def _merge(base: dict, override: Mapping, where: str, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key.startswith("_"):  # "_comment" and friends
            continue
        full = f"{path}{key}"
        if key not in base:
            import difflib

            close = difflib.get_close_matches(key, list(base), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnsupportedInputError(f"{where}: unknown config key {full!r}{hint} (known: {sorted(base)})")
        # free-form dictionaries: network kwargs and loss weights are taken as given
        if isinstance(base[key], dict) and isinstance(value, Mapping) and full not in ("network.kwargs", "loss.weights"):
            out[key] = _merge(base[key], value, where, f"{full}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_json(path: Path) -> dict:
    from medfuse.errors import CorruptFileError

    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CorruptFileError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path}: a training config must be a JSON object")
    return data


def load_config(method: str, config: str | os.PathLike | Mapping | None = None,
                pair: str | None = None) -> dict[str, Any]:
    """The full training config of ``method``: defaults, then the method's file (then its ``"pairs"``
    entry for ``pair``, if any), then ``config``.

    Args:
        method: network name (its file ``configs/<method>.json`` sets the network and the loss).
        pair: the modality pair being trained; the method file's ``"pairs": {pair: {...}}`` overrides
            apply to it only (e.g. ``fmmf`` on ``spect_mri``, chosen on inner cross-validation splits).
        config: a JSON file or a dict of overrides; a shipped weights' provenance record
            (``medfuse/weights/<pair>_<method>.json``) gives its exact training config.

    Raises:
        UnsupportedInputError: unknown keys or invalid values.
        FileNotFoundError, CorruptFileError: a missing or malformed config file.
    """
    from medfuse.networks import network_name

    method = network_name(method)
    own = _read_json(CONFIG_DIR / f"{method}.json")
    per_pair = own.pop("pairs", {})
    cfg = _merge(DEFAULT_CONFIG, own, f"configs/{method}.json")
    if pair is not None and pair in per_pair:
        cfg = _merge(cfg, per_pair[pair], f"configs/{method}.json pairs.{pair}")
    if config is not None:
        if isinstance(config, Mapping):
            cfg = _merge(cfg, config, "config")
        else:
            path = Path(config)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: training config not found")
            data = _read_json(path)
            if "reproduce" in data and isinstance(data.get("config"), Mapping):
                # a shipped weights' provenance record: train with its exact config
                data = copy.deepcopy(data["config"])
                data.get("network", {}).pop("name", None)
            cfg = _merge(cfg, data, str(path))
    cfg["network"]["name"] = method
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise UnsupportedInputError(f"training config: {what}")

    for key in ("iterations", "batch_size", "crop", "val_every", "val_max_pairs", "checkpoint_every", "log_every"):
        need(isinstance(cfg[key], int) and not isinstance(cfg[key], bool) and cfg[key] >= 1,
             f"{key} must be a positive integer; got {cfg[key]!r}")
    need(isinstance(cfg["lr"], (int, float)) and cfg["lr"] > 0, f"lr must be > 0; got {cfg['lr']!r}")
    need(isinstance(cfg["fine_tune_lr"], (int, float)) and cfg["fine_tune_lr"] > 0,
         f"fine_tune_lr must be > 0; got {cfg['fine_tune_lr']!r}")
    need(0.0 <= cfg["volumes"]["min_head_fraction"] <= 1.0,
         f"volumes.min_head_fraction must be in [0, 1]; got {cfg['volumes']['min_head_fraction']!r}")
    need(isinstance(cfg["augment"]["appearance"], (int, float)) and 0.0 <= cfg["augment"]["appearance"] <= 1.0,
         f"augment.appearance must be a probability in [0, 1]; got {cfg['augment']['appearance']!r}")
    need(isinstance(cfg["augment"]["colormap"], (int, float)) and 0.0 <= cfg["augment"]["colormap"] <= 1.0,
         f"augment.colormap must be a probability in [0, 1]; got {cfg['augment']['colormap']!r}")
    need(cfg["schedule"] in _SCHEDULES, f"schedule must be one of {_SCHEDULES}; got {cfg['schedule']!r}")
    need(cfg["network"]["spatial_dims"] == 2, "only spatial_dims 2 can be trained from 2D slices; got "
         f"{cfg['network']['spatial_dims']!r} (3D networks are built with medfuse.networks.build_network)")
    need(0.0 <= cfg["val_fraction"] < 1.0, f"val_fraction must be in [0, 1); got {cfg['val_fraction']!r}")
    need(cfg["adversarial"]["weight"] >= 0, "adversarial.weight must be >= 0")
    if cfg["adversarial"]["weight"] > 0 and cfg["network"]["name"] != "mdgan":
        need(False, f"adversarial training is for mdgan only; set adversarial.weight to 0 for {cfg['network']['name']}")

    try:  # checks the loss weights and options
        loss_fn(cfg)
    except ValueError as err:
        raise UnsupportedInputError(f"training config: loss: {err}") from err
    need(cfg["crop"] >= cfg["loss"]["win_size"], f"crop {cfg['crop']} is smaller than the SSIM window")


def loss_fn(cfg: dict):
    """The content loss the config describes."""
    from medfuse.losses import FusionLoss

    loss = cfg["loss"]
    return FusionLoss(loss["weights"], win_size=loss["win_size"], intensity_mode=loss["intensity_mode"],
                      saliency_window=loss["saliency_window"], gradient_gain=loss["gradient_gain"])
