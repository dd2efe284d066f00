"""Training fusion networks: slice-pair data, a case-level split, the trainer, checkpoints.

``medfuse train --pair ct_mri --method light --data HARVARD_DIR --out ct_mri_light.pt`` runs
:func:`~medfuse.training.trainer.train`; configs live in ``medfuse/training/configs/<method>.json``.
``--volumes DIR_OR_LIST`` trains on one's own registered volume pairs, ``--init-from shipped``
fine-tunes the shipped network (docs/training.md).
"""

from __future__ import annotations

from medfuse.training.augment import APPEARANCE_KINDS, perturb_appearance, random_appearance
from medfuse.training.checkpoint import read_checkpoint, save_checkpoint, strip_training_state
from medfuse.training.data import PatchSampler, SlicePair, load_harvard_slices, load_phantom_slices, split_by_case
from medfuse.training.trainer import DEFAULT_CONFIG, load_config, train
from medfuse.training.volumes import find_volume_pairs, load_volume_slices

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
    "find_volume_pairs",
    "load_volume_slices",
    "APPEARANCE_KINDS",
    "perturb_appearance",
    "random_appearance",
]
