"""A tiny synthetic folder in the Harvard AANLIB layout, and a tiny training config, for training tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["make_harvard", "TINY"]


def _blob(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.uniform(0.3 * size, 0.7 * size, 2).tolist() + [rng.uniform(0.2 * size, 0.4 * size)]
    img = np.clip(1.2 - np.hypot(yy - cy, xx - cx) / r, 0, 1) * rng.uniform(0.5, 1.0)
    return np.clip(img + 0.05 * rng.random((size, size)), 0, 1)


def make_harvard(root: Path, cases: int = 5, pairs_per_case: int = 2, size: int = 32, index: bool = True) -> Path:
    """ct_mri pairs (gray) and pet_mri pairs (RGB PET) named ``xg-<case><3-digit slice>``."""
    rng = np.random.default_rng(0)
    rows = []
    for task, other in (("ct_mri", "ct"), ("pet_mri", "pet")):
        for case in range(1, cases + 1):
            for k in range(pairs_per_case):
                pair_id = f"xg-{case}{k:03d}"
                folder = root / task / pair_id
                folder.mkdir(parents=True)
                Image.fromarray((255 * _blob(rng, size)).astype(np.uint8), "L").save(folder / "mri.png")
                second = (255 * _blob(rng, size)).astype(np.uint8)
                if other == "pet":  # pseudo-colour: channels differ
                    rgb = np.stack([second, (second * 0.5).astype(np.uint8), 255 - second], axis=-1)
                    Image.fromarray(rgb, "RGB").save(folder / "pet.png")
                else:
                    Image.fromarray(second, "L").save(folder / "ct.png")
                for role in ("mri", other):
                    rows.append({"modality": task, "pair_id": pair_id, "case": f"aanlib-{case}", "role": role})
    if index:
        with (root / "index.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["modality", "pair_id", "case", "role"])
            writer.writeheader()
            writer.writerows(rows)
    return root


#: a config small enough for 2-core CI: 16-pixel crops, batch 2
TINY = {"crop": 16, "batch_size": 2, "val_max_pairs": 2, "val_every": 2, "checkpoint_every": 2, "log_every": 1,
        "schedule": "constant"}
