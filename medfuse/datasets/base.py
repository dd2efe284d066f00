"""What every data set adapter returns: the cases it found and what it skipped, and why.

An adapter (:mod:`~medfuse.datasets.harvard`, :mod:`~medfuse.datasets.brats`,
:mod:`~medfuse.datasets.adni`) walks a download tree and returns a :class:`Discovery`: one
:class:`Case` per fusion to run (its id, its input files by role, their modalities) and one
:class:`Skipped` per folder or series it did not use, with the reason. Files that belong to no
case (README, JSON, masks...) are counted in ``ignored``.

Case ids are the data set's own case or subject pseudonyms (``ct_mri/xg-16003``,
``BraTS2021_00000``, ``002_S_0295_I45108``); adapters never read patient names.

Folder and file names may hold identifiers (an export named after the patient), and case ids become
output folder names, manifest rows and log lines. So a name is shown only when it matches the data set's
public naming pattern (:data:`PUBLIC_NAMES`); any other case id is replaced by a pseudonym
(:func:`pseudonym`: ``case-`` and 12 hex digits of the SHA-256 of the case folder's path relative to the
data set root, stable across reruns so a rerun resumes), and any other path component shown in
``discovery.json``, the manifest or the report by ``~`` and 8 hex digits (:meth:`Discovery.relative`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Case", "Skipped", "Discovery", "PUBLIC_NAMES", "pseudonym", "is_public", "public_relative"]


_BRATS_ID = (r"BraTS\d{4}_\d{5}|BraTS\d{2}_(?:Training|Validation|Testing)_\d{3}"
             r"|Brats\d{2}_(?:CBICA_[A-Z]{3}|TCIA\d{2}_\d{3}|2013_\d{1,2})_\d{1,2}"
             r"|BraTS19_(?:CBICA_[A-Z]{3}|TCIA\d{2}_\d{3}|2013_\d{1,2})_\d{1,2}"
             r"|BraTS-[A-Z]{2,4}-\d{5}-\d{3}|TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}")
#: data set -> the names (one path component, full match) that are the data set's own public pseudonyms or
#: layout names, shown as they are; any other name is pseudonymized
PUBLIC_NAMES = {
    # AANLIB pair ids (xg-<case><slice>, cdd-<modality>-<n>), its case ids, the task folders and file names
    "harvard": re.compile(r"xg-\d{1,8}|cdd-(?:ct|pet|spect|mri)-\d{1,6}|aanlib-\d{1,6}|(?:ct|pet|spect)_mri"
                          r"|(?:mri|ct|pet|spect)\.png|index\.csv|README\.md"),
    # BraTS 2018-2021 and 2023+ case ids (and TCGA subject ids of TCIA) and their files; release folders
    "brats": re.compile(rf"(?:{_BRATS_ID})(?:[_-](?:t1ce|t1c|t1n|t1|t2w|t2f|t2|flair|seg)\.nii(?:\.gz)?)?"
                        r"|MICCAI_BraTS_?\d{4}_(?:Training|Validation)Data|BraTS\d{4}(?:_(?:Training|Validation)"
                        r"Data)?|(?:ASNR-MICCAI-)?BraTS\d{4}(?:-[A-Za-z]+)*"),
    # ADNI subject ids (002_S_0295), image ids (I45108), case ids, acquisition-date folders, the ADNI folder
    "adni": re.compile(r"ADNI|\d{3}_S_\d{4,5}(?:_I\d{1,9})?|I\d{1,9}"
                       r"|\d{4}-\d{2}-\d{2}(?:_\d{2}_\d{2}_\d{2}(?:\.\d+)?)?"),
}


def is_public(name: str, dataset: str) -> bool:
    """Whether ``name`` (one path component, or a ``/``-joined case id) is made only of public names."""
    pattern = PUBLIC_NAMES.get(dataset)
    return pattern is not None and bool(name) and all(pattern.fullmatch(p) for p in str(name).split("/"))


def _digest(relative: str, n: int) -> str:
    return hashlib.sha256(str(relative).replace(os.sep, "/").encode("utf-8", "surrogateescape")).hexdigest()[:n]


def pseudonym(relative: str) -> str:
    """``case-<12 hex digits>`` of the SHA-256 of a path relative to the data set root (stable, not reversible)."""
    return "case-" + _digest(relative, 12)


def public_relative(path: str | os.PathLike, root: str | os.PathLike | None, dataset: str) -> str:
    """``path`` relative to ``root`` with every non-public component replaced by ``~<8 hex digits>``.

    The digit string is the SHA-256 of the relative path up to that component, so the same folder always
    gets the same name. A path outside ``root`` (or without one) is shown as ``~<8 hex digits>`` alone.
    """
    try:
        rel = Path(path).relative_to(root) if root is not None else None
    except ValueError:
        rel = None
    if rel is None:
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)) if root is not None else None
        except ValueError:
            rel = None
    if rel is None:
        return "~" + _digest(os.path.abspath(path), 8)
    parts, shown = rel.parts, []
    for k, part in enumerate(parts):
        shown.append(part if is_public(part, dataset) else "~" + _digest("/".join(parts[: k + 1]), 8))
    return "/".join(shown) or "."


@dataclass(frozen=True)
class Case:
    """One fusion to run.

    Attributes:
        case_id: unique within the data set; also the case's output folder (``/`` allowed).
        inputs: role -> input path (file or DICOM folder), in fusion order: the first is the
            reference (its grid is kept), the others are fused into it.
        modalities: role -> modality code (``MR``, ``CT``, ``PT``, ``NM``).
        labels: name -> label map carried through onto the reference grid (nearest neighbour),
            e.g. ``{"seg": path}`` for BraTS.
        info: non-identifying facts for the manifest (task, tracer, days between scans...).
    """

    case_id: str
    inputs: dict[str, Path]
    modalities: dict[str, str]
    labels: dict[str, Path] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def roles(self) -> list[str]:
        return list(self.inputs)

    @property
    def is_2d(self) -> bool:
        from medfuse.io.formats import SLICE_SUFFIXES
        from medfuse.io.atomic import full_suffix

        return all(full_suffix(p) in SLICE_SUFFIXES for p in self.inputs.values())


@dataclass(frozen=True)
class Skipped:
    """A folder or series the adapter did not turn into a case."""

    where: str  # path relative to the data set root
    reason: str


@dataclass
class Discovery:
    """The result of an adapter: cases found, things skipped (with reasons), stray files ignored."""

    dataset: str
    root: Path
    cases: list[Case] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)  # reason -> number of files
    ignored_examples: list[str] = field(default_factory=list)

    def ignore(self, path: str | os.PathLike, reason: str) -> None:
        """Count one stray file (keeps a few examples for the report)."""
        self.ignored[reason] += 1
        if len(self.ignored_examples) < 20:
            self.ignored_examples.append(self.relative(path))

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the root as it may be shown: non-public names pseudonymized (:func:`public_relative`)."""
        return public_relative(path, self.root, self.dataset)

    def case_id(self, name: str, folder: str | os.PathLike) -> str:
        """``name`` when it is a public case id of the data set, else :func:`pseudonym` of ``folder`` (the case's
        folder, or file, whose path relative to the root names the case)."""
        if is_public(name, self.dataset):
            return name
        try:
            rel = Path(folder).relative_to(self.root).as_posix()
        except ValueError:
            rel = Path(folder).as_posix()
        return pseudonym(rel)

    def limit(self, n: int | None) -> "Discovery":
        """The first ``n`` cases (all when ``n`` is None); skips and counts are kept."""
        if n is not None and n < len(self.cases):
            self.cases = self.cases[: max(0, int(n))]
        return self

    def skip_reasons(self) -> Counter:
        return Counter(s.reason.split(":")[0] for s in self.skipped)

    def summary(self) -> str:
        """A few lines: found, skipped by reason, stray files ignored."""
        lines = [f"{self.dataset}: {len(self.cases)} case(s) found, {len(self.skipped)} skipped, "
                 f"{sum(self.ignored.values())} stray file(s) ignored"]
        for reason, n in sorted(self.skip_reasons().items()):
            lines.append(f"  skipped {n}: {reason}")
        for reason, n in sorted(self.ignored.items()):
            lines.append(f"  ignored {n} file(s): {reason}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe record (for ``OUT/discovery.json``)."""
        return {
            "dataset": self.dataset,
            "cases": len(self.cases),
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
            "ignored": dict(self.ignored),
            "ignored_examples": list(self.ignored_examples),
        }
