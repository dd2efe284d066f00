"""BraTS case folders: 2018-2021 and 2023+ naming.

::

    ROOT/<ID>/<ID>_t1.nii.gz, <ID>_t1ce.nii.gz, <ID>_t2.nii.gz, <ID>_flair.nii.gz, <ID>_seg.nii.gz   (2018-2021)
    ROOT/<ID>/<ID>-t1n.nii.gz, <ID>-t1c.nii.gz, <ID>-t2w.nii.gz, <ID>-t2f.nii.gz, <ID>-seg.nii.gz   (2023+)

Case folders may sit one or two levels down (``MICCAI_BraTS2020_TrainingData/BraTS20_Training_001/``).
The sequences of a case are co-registered on one grid (BraTS preprocessing), so fusing them needs no
registration (the pipeline sees the shared grid and skips it).

Sequences are named with either naming (``t1ce`` = ``t1c``, ``flair`` = ``t2f``, ``t1`` = ``t1n``,
``t2`` = ``t2w``); the first one chosen is the reference (its grid and affine are kept), the others
are fused into it. Default: T1ce (reference) + FLAIR; ``all``: T1, T1ce, T2, FLAIR with T1 the
reference. The segmentation (``_seg``/``-seg``), when present, is carried through (nearest neighbour)
as a label map. Files that are none of these (README, JSON, masks, other NIfTI) are ignored and
counted; a case lacking a chosen sequence, or holding two files for one, is skipped with the reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["BRATS_SEQUENCES", "DEFAULT_SEQUENCES", "ALL_SEQUENCES", "parse_sequences", "discover_brats"]

#: canonical sequence name -> names it is written as (2018-2021, 2023+)
BRATS_SEQUENCES = {"t1": ("t1", "t1n"), "t1ce": ("t1ce", "t1c"), "t2": ("t2", "t2w"), "flair": ("flair", "t2f")}
DEFAULT_SEQUENCES = ("t1ce", "flair")
ALL_SEQUENCES = ("t1", "t1ce", "t2", "flair")
_ALIAS = {alias: name for name, aliases in BRATS_SEQUENCES.items() for alias in aliases}
_FILE = re.compile(r"^(?P<id>.+?)[_-](?P<seq>t1ce|t1c|t1n|t1|t2w|t2f|t2|flair|seg)\.nii(?:\.gz)?$", re.IGNORECASE)


def parse_sequences(text=None) -> tuple[str, ...]:
    """``"t1ce,flair"`` / ``"t1c,t2f"`` / ``"all"`` / None -> canonical names, reference first.

    Raises:
        OptionError: an unknown name (with "did you mean"), a repeated one, or fewer than two.
    """
    from medfuse.errors import OPTION, OptionError, look_up

    if text is None:
        return DEFAULT_SEQUENCES
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if str(s).strip()]
    if [s.lower() for s in items] == ["all"]:
        return ALL_SEQUENCES
    names = tuple(_ALIAS[look_up(s.lower(), list(_ALIAS), "BraTS sequence", option="sequences")] for s in items)
    if len(set(names)) != len(names):
        raise OptionError(f"{OPTION} {text!r}: a sequence is named twice; give each once, e.g. t1ce,flair",
                          option="sequences")
    if len(names) < 2:
        raise OptionError(f"{OPTION} {text!r}: give at least two sequences (e.g. t1ce,flair) or 'all'",
                          option="sequences")
    return names


def _case_folders(root: Path, depth: int = 3):
    """Folders (up to ``depth`` levels below ``root``) holding a file named ``<folder name>[_-]<seq>.nii*``."""
    stack = [(root, 0)]
    while stack:
        folder, level = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        names = [e.name for e in entries if e.is_file()]
        if any((m := _FILE.match(n)) and m.group("id") == folder.name for n in names):
            yield folder
            continue
        if level < depth:
            stack.extend((e, level + 1) for e in reversed(entries) if e.is_dir() and not e.name.startswith("."))


def discover_brats(root: str | os.PathLike, sequences=None) -> "Discovery":
    """Every BraTS case under ``root`` as a batch case.

    Args:
        root: a folder of case folders (or one case folder).
        sequences: names to fuse (see :func:`parse_sequences`); the first is the reference.

    Returns:
        A :class:`~medfuse.datasets.base.Discovery` (case id: the case folder's name when it is a BraTS id,
        else a pseudonym); each case's inputs are keyed by canonical
        sequence name (modality ``MR``), ``labels["seg"]`` when a segmentation is present,
        ``info["naming"]`` ``"2018-2021"`` or ``"2023+"``.

    Raises:
        NotADirectoryError: ``root`` is not a folder.
    """
    from medfuse.datasets.base import Case, Discovery, Skipped, is_public

    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder; give the folder holding the BraTS case folders")
    chosen = parse_sequences(sequences)
    found = Discovery("brats", root)
    folders = list(_case_folders(root))
    if root not in folders:
        for f in sorted(root.iterdir()):
            if f.is_file():
                found.ignore(f, "file outside the case folders")
    for folder in folders:
        files: dict[str, list[Path]] = {}
        namings = set()
        for f in sorted(folder.iterdir()):
            m = _FILE.match(f.name) if f.is_file() else None
            if m is None or m.group("id") != folder.name:
                if f.is_dir():
                    found.skipped.append(Skipped(found.relative(f), "folder inside a case folder: not read"))
                else:
                    found.ignore(f, "not a BraTS sequence or segmentation of its case")
                continue
            seq = m.group("seq").lower()
            namings.add("2023+" if seq in ("t1n", "t1c", "t2w", "t2f") else
                        "2018-2021" if seq in ("t1", "t1ce", "t2", "flair") else None)
            files.setdefault(_ALIAS.get(seq, seq), []).append(f)
        namings.discard(None)
        where = found.relative(folder) if folder != root else (folder.name if is_public(folder.name, "brats") else ".")
        doubles = sorted(k for k, v in files.items() if len(v) > 1)
        missing = [s for s in chosen if s not in files]
        if doubles:
            found.skipped.append(Skipped(where, f"ambiguous: two files for {', '.join(doubles)} "
                                                f"({', '.join(found.relative(p).split('/')[-1] for k in doubles for p in files[k])})"))
            continue
        if missing:
            found.skipped.append(Skipped(where, f"missing sequence: {', '.join(missing)}"))
            for seq, paths in files.items():
                if seq not in chosen:
                    found.ignore(paths[0], "sequence not chosen (--sequences)")
            continue
        for seq, paths in files.items():
            if seq not in chosen and seq != "seg":
                found.ignore(paths[0], "sequence not chosen (--sequences)")
        labels = {"seg": files["seg"][0]} if "seg" in files else {}
        info = {"naming": "/".join(sorted(namings)), "sequences": "+".join(chosen), "seg": bool(labels)}
        found.cases.append(Case(found.case_id(folder.name, folder), {s: files[s][0] for s in chosen},
                                {s: "MR" for s in chosen},
                                labels=labels, info=info))
    found.cases.sort(key=lambda c: c.case_id)
    ids = [c.case_id for c in found.cases]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:  # the same case id in two places: never guess which one
        for case in [c for c in found.cases if c.case_id in dupes]:
            found.skipped.append(Skipped(found.relative(next(iter(case.inputs.values())).parent),
                                         f"ambiguous: case id {case.case_id} appears in more than one folder"))
        found.cases = [c for c in found.cases if c.case_id not in dupes]
    return found
