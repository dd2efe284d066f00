"""What every data set adapter returns: the cases it found and what it skipped, and why.

An adapter (:mod:`~medfuse.datasets.harvard`, :mod:`~medfuse.datasets.brats`,
:mod:`~medfuse.datasets.adni`) walks a download tree and returns a :class:`Discovery`: one
:class:`Case` per fusion to run (its id, its input files by role, their modalities) and one
:class:`Skipped` per folder or series it did not use, with the reason. Files that belong to no
case (README, JSON, masks...) are counted in ``ignored``.

Case ids are the data set's own case or subject pseudonyms (``ct_mri/xg-16003``,
``BraTS2021_00000``, ``002_S_0295_I45108``); adapters never read patient names.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Case", "Skipped", "Discovery"]


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
        from medfuse.pipeline import SLICE_SUFFIXES
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
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def limit(self, n: int | None) -> "Discovery":
        """The first ``n`` cases (all when ``n`` is None); skips and counts are kept."""
        if n is not None and n < len(self.cases):
            self.cases = self.cases[: max(0, int(n))]
        return self

    def skip_reasons(self) -> Counter:
        return Counter(s.reason.split(":")[0] for s in self.skipped)

    def summary(self) -> str:
        """A few lines: found, skipped by reason, stray files ignored."""
        lines = [f"{self.dataset} at {self.root}: {len(self.cases)} case(s) found, {len(self.skipped)} skipped, "
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
