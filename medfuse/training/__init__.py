"""Training fusion networks: slice-pair data, a case-level split, the trainer, checkpoints.

``medfuse train --pair ct_mri --method light --data HARVARD_DIR --out ct_mri_light.pt`` runs
:func:`~medfuse.training.trainer.train`; configs live in ``medfuse/training/configs/<method>.json``.
"""

from __future__ import annotations

from medfuse.training.checkpoint import read_checkpoint, save_checkpoint, strip_training_state
from medfuse.training.data import PatchSampler, SlicePair, load_harvard_slices, load_phantom_slices, split_by_case
from medfuse.training.trainer import DEFAULT_CONFIG, load_config, train

__all__ = [
    "train",
    "load_config",
    "DEFAULT_CONFIG",
    "read_checkpoint",
    "save_checkpoint",
    "strip_training_state",
    "SlicePair",
    "PatchSampler",
    "load_harvard_slices",
    "load_phantom_slices",
    "split_by_case",
]
