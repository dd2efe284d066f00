"""The Harvard Whole Brain Atlas (AANLIB) fusion-pair layout.

::

    DATA/{ct_mri,pet_mri,spect_mri}/<pair>/{mri.png, ct.png | pet.png | spect.png}

``DATA/index.csv`` (optional) maps each pair to its AANLIB case, used to split by subject.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HARVARD_TASKS", "HarvardPair", "find_harvard_pairs"]

#: task folder -> file name of the second (non-MRI) image
HARVARD_TASKS = {"ct_mri": "ct.png", "pet_mri": "pet.png", "spect_mri": "spect.png"}


@dataclass(frozen=True)
class HarvardPair:
    """One co-registered slice pair."""

    task: str
    pair_id: str
    mri: Path
    other: Path
    case: str

    @property
    def key(self) -> str:
        """``<task>/<pair_id>``: the pair's relative folder (and id in logs)."""
        return f"{self.task}/{self.pair_id}"


def _cases(data: Path) -> dict[tuple[str, str], str]:
    index = data / "index.csv"
    if not index.is_file():
        return {}
    with index.open(newline="") as fh:
        return {(row["modality"], row["pair_id"]): row["case"] for row in csv.DictReader(fh)}


def _case_from_id(pair_id: str) -> str:
    """``xg-<case><3-digit slice>`` -> ``aanlib-<case>``; other ids are their own case."""
    m = re.fullmatch(r"xg-(\d+)(\d{3})", pair_id)
    return f"aanlib-{int(m.group(1))}" if m else pair_id


def find_harvard_pairs(data: str | os.PathLike, tasks=None) -> list[HarvardPair]:
    """All complete pairs under ``data``, sorted by task and pair id.

    Args:
        data: the folder holding ``ct_mri/``, ``pet_mri/``, ``spect_mri/`` (any subset).
        tasks: restrict to these task names.

    Raises:
        NotADirectoryError: ``data`` is not a folder.
        FileNotFoundError: no pair was found (the message shows the expected layout).
    """
    data = Path(data)
    if not data.is_dir():
        raise NotADirectoryError(f"{data}: not a folder")
    cases = _cases(data)
    pairs = []
    for task, other_name in HARVARD_TASKS.items():
        if tasks is not None and task not in tasks:
            continue
        task_dir = data / task
        if not task_dir.is_dir():
            continue
        for pair_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            mri, other = pair_dir / "mri.png", pair_dir / other_name
            if mri.is_file() and other.is_file():
                case = cases.get((task, pair_dir.name)) or _case_from_id(pair_dir.name)
                pairs.append(HarvardPair(task, pair_dir.name, mri, other, case))
    if not pairs:
        raise FileNotFoundError(
            f"{data}: no fusion pairs found; expected {{ct_mri,pet_mri,spect_mri}}/<pair>/"
            "{mri.png, ct.png|pet.png|spect.png}"
        )
    return pairs
