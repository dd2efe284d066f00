"""The Harvard Whole Brain Atlas (AANLIB) fusion-pair layout.

::

    DATA/{ct_mri,pet_mri,spect_mri}/<pair>/{mri.png, ct.png | pet.png | spect.png}

``DATA/index.csv`` (optional) maps each pair to its AANLIB case, used to split by subject.
:func:`find_harvard_pairs` lists the complete pairs (training, ``fuse-dir``);
:func:`discover_harvard` returns them as batch cases with what was skipped and why (``medfuse batch``).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HARVARD_TASKS", "HarvardPair", "find_harvard_pairs", "discover_harvard", "require_pairs"]

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
    # one walk of the layout: the batch adapter's (which also reports what it skipped)
    found = require_pairs(discover_harvard(data, tasks=tasks), data)
    pairs = []
    for case in found.cases:
        task = case.info["task"]
        other = case.inputs[HARVARD_TASKS[task].split(".")[0]]
        pairs.append(HarvardPair(task, case.inputs["mri"].parent.name, case.inputs["mri"], other, case.info["subject"]))
    return pairs


def require_pairs(found: "Discovery", data: str | os.PathLike) -> "Discovery":
    """``found`` when it holds a pair.

    Raises:
        FileNotFoundError: no pair was found (the message shows the expected layout).
    """
    if not found.cases:
        raise FileNotFoundError(
            f"{data}: no fusion pairs found; expected {{ct_mri,pet_mri,spect_mri}}/<pair>/"
            "{mri.png, ct.png|pet.png|spect.png}"
        )
    return found


#: files at the root that belong to the data set (not stray)
_ROOT_FILES = {"index.csv", "readme.md", "readme.txt", "license", "license.txt"}


def discover_harvard(data: str | os.PathLike, tasks=None, *, folder_names: bool = False) -> "Discovery":
    """Every pair of a Harvard-layout folder as a batch case (``case_id`` = ``<task>/<pair>``; a pair folder
    whose name is not an AANLIB pair id gets a pseudonym, :meth:`~medfuse.datasets.base.Discovery.case_id`,
    unless ``folder_names``: then every case id is ``<task>/<folder name>``, so that an output tree mirrors
    ``data`` (``medfuse fuse-dir``, whose users name the folders)).

    Reference ``mri`` (MR), moving ``ct``/``pet``/``spect`` (CT, PT, NM). A pair folder without both
    images is skipped with the reason; other files are counted as ignored.

    Raises:
        NotADirectoryError: ``data`` is not a folder.
    """
    from medfuse.datasets.base import Case, Discovery, Skipped, is_public
    from medfuse.pairs import MODALITY_OF_PAIR

    data = Path(data)
    if not data.is_dir():
        raise NotADirectoryError(f"{data}: not a folder; give the folder holding ct_mri/, pet_mri/, spect_mri/")
    found = Discovery("harvard", data)
    cases = _cases(data)
    for entry in sorted(data.iterdir()):
        if entry.is_file() and entry.name.lower() not in _ROOT_FILES:
            found.ignore(entry, "file outside the task folders")
        elif entry.is_dir() and entry.name not in HARVARD_TASKS:
            found.skipped.append(Skipped(found.relative(entry), "not a task folder (ct_mri, pet_mri, spect_mri)"))
    for task, other_name in HARVARD_TASKS.items():
        if tasks is not None and task not in tasks:
            continue
        task_dir = data / task
        if not task_dir.is_dir():
            continue
        role = other_name.split(".")[0]
        for pair_dir in sorted(task_dir.iterdir()):
            if not pair_dir.is_dir():
                found.ignore(pair_dir, "file outside the pair folders")
                continue
            mri, other = pair_dir / "mri.png", pair_dir / other_name
            missing = [p.name for p in (mri, other) if not p.is_file()]
            for f in pair_dir.iterdir():
                if f.name not in ("mri.png", other_name):
                    found.ignore(f, "not one of the pair's two images")
            if missing:
                found.skipped.append(Skipped(found.relative(pair_dir), f"incomplete pair: missing {', '.join(missing)}"))
                continue
            case = cases.get((task, pair_dir.name)) or _case_from_id(pair_dir.name)
            subject = case if is_public(case, "harvard") else found.relative(pair_dir).split("/")[-1]
            name = pair_dir.name if folder_names else found.case_id(pair_dir.name, pair_dir)
            found.cases.append(Case(f"{task}/{name}", {"mri": mri, role: other},
                                    {"mri": "MR", role: MODALITY_OF_PAIR[task]},
                                    info={"task": task, "subject": subject}))
    return found
