"""Training slices from one's own registered 3D volume pairs (``medfuse train --volumes``).

Two ways to name the pairs (see docs/training.md):

* **A folder with one sub-folder per subject**, the sub-folder's name being the subject id::

      VOLUMES/sub-01/mri.nii.gz       the reference MRI
      VOLUMES/sub-01/pet.nii.gz       the second scan of the pair (ct | pet | spect), on the MRI's grid
      VOLUMES/sub-02/...

  Each file is ``<role>`` plus one of :data:`medfuse.io.VOLUME_SUFFIXES` (``.nii.gz``, ``.nii``,
  ``.nrrd``, ``.mha``); ``<role>`` is ``mri`` for the reference and ``ct``, ``pet`` or ``spect`` for
  the second scan (the pair's modality, ``--pair``). Hidden folders are ignored.
* **A list file**: a ``.csv`` with the header ``subject,reference,moving`` (one row per subject), or
  a ``.json`` list of ``{"subject": ..., "reference": ..., "moving": ...}`` objects (or of
  ``[subject, reference, moving]`` triples). Relative paths are taken from the list file's folder.

The pairs must already be registered: both scans on one grid (same shape and affine, what
``medfuse register --out`` writes), else :class:`~medfuse.errors.SpaceMismatchError` tells the user
to run ``medfuse register`` first. Subject ids are recorded in the checkpoint's split (use pseudonyms);
messages and logs name an input by its subject's position and role only (``subject 2 of 5, the
moving scan (PET)``), never by its path, which may hold a patient's name (:mod:`medfuse.io.naming`).

The slices are exactly what inference feeds a 2D network for that volume pair
(:func:`network_input_stacks`): each volume normalized once by :func:`medfuse.pipeline.prepare_pair`
(:func:`medfuse.intensity.normalize`), PET/SPECT through its default colour map and back to its
luminance (:func:`medfuse.color.fuse_in_colour`, as :func:`medfuse.pipeline.fuse_volumes` does),
axial slices in the AANLIB orientation (:func:`medfuse.volume.to_axial`), then mapped to the pair's
training intensities per volume (:func:`medfuse.intensity.training_match.match_training_intensities` inside
:func:`medfuse.intensity.training_match.content_mask`). Slices whose head (the same content mask) covers less than
``min_head_fraction`` of the largest head slice of that subject are dropped.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from medfuse.errors import CorruptFileError, SpaceMismatchError, UnsupportedInputError
from medfuse.training.data import SlicePair

__all__ = [
    "VolumePair",
    "find_volume_pairs",
    "read_volume_list",
    "network_input_stacks",
    "load_volume_slices",
    "REFERENCE_ROLE",
    "MIN_HEAD_FRACTION",
]

log = logging.getLogger(__name__)

#: file stem of the reference scan in a subject folder
REFERENCE_ROLE = "mri"
#: default least head area of a kept slice, as a fraction of the subject's largest head slice
MIN_HEAD_FRACTION = 0.25
_LIST_SUFFIXES = (".csv", ".json")
_LIST_COLUMNS = ("subject", "reference", "moving")


@dataclass(frozen=True)
class VolumePair:
    """One subject's registered pair: ``reference`` the MRI, ``moving`` the pair's second scan.

    ``index`` (1-based) and ``count`` name the subject in messages (``subject 2 of 5``).
    """

    subject: str
    reference: Path
    moving: Path
    index: int
    count: int

    @property
    def label(self) -> str:
        return f"subject {self.index} of {self.count}"


def _moving_role(pair: str) -> tuple[str, str]:
    """``(file stem, modality code)`` of the second scan of ``pair`` (``pet_mri`` -> ``("pet", "PT")``)."""
    from medfuse.errors import look_up
    from medfuse.modality import MODALITY_LABELS
    from medfuse.pairs import MODALITY_OF_PAIR, PAIRS

    look_up(pair, PAIRS, "modality pair", error=UnsupportedInputError)
    code = MODALITY_OF_PAIR[pair]
    return MODALITY_LABELS[code].lower(), code


def _role_file(folder: Path, stem: str, label: str, what: str) -> Path:
    from medfuse.io import VOLUME_SUFFIXES
    from medfuse.io.atomic import full_suffix

    found = [p for p in folder.iterdir()
             if p.is_file() and full_suffix(p) in VOLUME_SUFFIXES and p.name.lower() == stem + full_suffix(p)]
    names = " or ".join(f"{stem}{s}" for s in VOLUME_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"{label}: no {what} in its folder; each subject folder holds {REFERENCE_ROLE}.nii.gz "
                                f"and the second scan ({names}); see docs/training.md")
    if len(found) > 1:
        raise UnsupportedInputError(f"{label}: its folder holds {len(found)} files for the {what} ({names}); keep one")
    return found[0]


def find_volume_pairs(source: str | os.PathLike, pair: str) -> list[VolumePair]:
    """The subjects' volume pairs of a ``--volumes`` folder or list file (see the module docstring).

    Args:
        source: a folder with one sub-folder per subject, or a ``.csv``/``.json`` list file.
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``: names the second scan's file in a folder.

    Returns:
        The pairs in folder-name order (list order for a list file).

    Raises:
        FileNotFoundError: no such folder or list, or a subject lacks a scan.
        UnsupportedInputError: an empty folder, an ambiguous subject folder, or an unknown list format.
        CorruptFileError: a malformed list file.
    """
    source = Path(source)
    stem, code = _moving_role(pair)
    if source.is_file():
        return read_volume_list(source)
    if not source.is_dir():
        raise FileNotFoundError("the --volumes folder or list file does not exist")
    folders = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UnsupportedInputError(
            "the --volumes folder holds no subject folders; expected one folder per subject holding "
            f"{REFERENCE_ROLE}.nii.gz and {stem}.nii.gz (or pass a .csv/.json list; see docs/training.md)"
        )
    out = []
    for i, folder in enumerate(folders, 1):
        label = f"subject {i} of {len(folders)}"
        ref = _role_file(folder, REFERENCE_ROLE, label, "reference MRI")
        mov = _role_file(folder, stem, label, f"{code} scan ({stem})")
        out.append(VolumePair(folder.name, ref, mov, i, len(folders)))
    return out


def _rows_from_json(data) -> list:
    if isinstance(data, dict) and isinstance(data.get("pairs"), list):
        data = data["pairs"]
    if not isinstance(data, list):
        raise CorruptFileError("the --volumes list: a JSON list must be a list of {subject, reference, moving} objects")
    rows = []
    for n, item in enumerate(data, 1):
        if isinstance(item, dict):
            missing = [c for c in _LIST_COLUMNS if c not in item]
            if missing:
                raise CorruptFileError(f"the --volumes list: entry {n} lacks {', '.join(missing)}")
            rows.append([item[c] for c in _LIST_COLUMNS])
        elif isinstance(item, (list, tuple)) and len(item) == 3:
            rows.append(list(item))
        else:
            raise CorruptFileError(f"the --volumes list: entry {n} is neither an object with subject, reference, "
                                   "moving nor a [subject, reference, moving] triple")
    return rows


def _rows_from_csv(text: str) -> list:
    reader = csv.reader(line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in _LIST_COLUMNS if c not in header]
    if missing:
        raise CorruptFileError(f"the --volumes list: the CSV header must name the columns {', '.join(_LIST_COLUMNS)} "
                               f"(missing: {', '.join(missing)})")
    cols = [header.index(c) for c in _LIST_COLUMNS]
    rows = []
    for n, row in enumerate(reader, 1):
        if len(row) < len(header):
            raise CorruptFileError(f"the --volumes list: row {n} has {len(row)} columns, the header {len(header)}")
        rows.append([row[c].strip() for c in cols])
    return rows


def read_volume_list(path: str | os.PathLike) -> list[VolumePair]:
    """The pairs of a ``.csv`` (header ``subject,reference,moving``) or ``.json`` list file.

    Relative paths are taken from the list file's folder; every file must exist.

    Raises:
        FileNotFoundError: the list, or a scan it names, does not exist.
        UnsupportedInputError: an unknown list extension.
        CorruptFileError: malformed content, an empty list or a repeated subject id.
    """
    from medfuse.io.atomic import full_suffix

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError("the --volumes list file does not exist")
    suffix = full_suffix(path)
    if suffix not in _LIST_SUFFIXES:
        raise UnsupportedInputError(f"the --volumes list must be a .csv or .json file (got a {suffix or 'no'} "
                                    "extension), or pass a folder with one sub-folder per subject")
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".json":
        try:
            rows = _rows_from_json(json.loads(text))
        except json.JSONDecodeError as err:
            raise CorruptFileError(f"the --volumes list: not valid JSON ({err.msg} at line {err.lineno})") from None
    else:
        rows = _rows_from_csv(text)
    if not rows:
        raise CorruptFileError("the --volumes list names no subjects")
    out, seen = [], set()
    for i, (subject, ref, mov) in enumerate(rows, 1):
        label = f"subject {i} of {len(rows)}"
        subject = str(subject).strip()
        if not subject:
            raise CorruptFileError(f"the --volumes list: {label} has an empty subject id")
        if subject in seen:
            raise CorruptFileError(f"the --volumes list: {label} repeats an earlier subject id; give each subject "
                                   "one row (all its slices go to one side of the split)")
        seen.add(subject)
        files = []
        for role, value in (("reference MRI", ref), ("moving scan", mov)):
            p = Path(str(value).strip())
            p = p if p.is_absolute() else path.parent / p
            if not str(value).strip() or not p.exists():
                raise FileNotFoundError(f"the --volumes list: {label}: the {role} file does not exist")
            files.append(p)
        out.append(VolumePair(subject, files[0], files[1], i, len(rows)))
    return out


def _load(path: Path, modality: str, label: str):
    """``load_volume`` with every message naming the input by ``label``, never by its path."""
    from medfuse.errors import MedfuseError
    from medfuse.io import load_volume
    from medfuse.io.naming import input_label, redact

    with input_label(path, label):
        try:
            volume = load_volume(path, modality=modality)
        except (MedfuseError, OSError) as err:
            text = redact(str(err))
            if str(path) in text or os.path.abspath(path) in text:  # belt and braces
                text = f"{label}: cannot be read ({type(err).__name__})"
            raise type(err)(text) from None
    volume.source = label  # what later messages and logs (normalize, pipeline) name it by
    return volume


def network_input_stacks(reference, moving, pair: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a 2D network sees of a registered volume pair at inference, as axial slice stacks.

    The steps of :func:`medfuse.pipeline.fuse_volumes` and :func:`medfuse.inference.fuse_slices`
    for a 3D pair already on one grid, each by the function inference calls: normalization
    (:func:`medfuse.pipeline.prepare_pair`), PET/SPECT through their default colour map to its
    luminance (:func:`medfuse.color.fuse_in_colour`), axial slices (:func:`medfuse.volume.to_axial`),
    and the per-volume map to the pair's training intensities
    (:func:`medfuse.intensity.training_match.match_training_intensities` over :func:`medfuse.intensity.training_match.content_mask`).
    tests/training/test_volumes.py checks the numbers against what a network receives in
    ``fuse_volumes``.

    Args:
        reference: the MRI :class:`~medfuse.volume.Volume` (3D, modality set).
        moving: the pair's second scan on the same grid (3D, modality set).
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``.

    Returns:
        ``(a, b, mask)``: float32 ``(S, H, W)`` stacks in [0, 1] of the MRI and the second scan,
        slice ``s`` being the axial slice ``s`` (inferior -> superior; rows anterior -> posterior,
        columns patient right -> left), and the boolean content mask of the same shape.

    Raises:
        SpaceMismatchError: the two are not on one grid.
    """
    from medfuse.color import apply_colormap, default_colormap, fuse_in_colour
    from medfuse.intensity.training_match import content_mask, match_training_intensities
    from medfuse.pipeline import prepare_pair
    from medfuse.slicing import check_fusion_inputs
    from medfuse.volume import to_axial

    if not reference.same_grid(moving):
        raise SpaceMismatchError("the two volumes are not on one grid; register the second onto the MRI first "
                                 "(medfuse register)")
    prepared = prepare_pair(reference, moving)  # one grid: taken as aligned, not registered
    ref_n, mov_n = prepared.reference, prepared.moving
    moving01 = mov_n.array
    colour_map = default_colormap(moving.modality) if moving.rgb is None else None
    if colour_map is not None:  # as fuse_volumes: the network fuses the colour map's luminance
        seen = []
        fuse_in_colour(apply_colormap(mov_n.array, colour_map), lambda y01: seen.append(y01) or y01)
        moving01 = seen[0]
    a, b = check_fusion_inputs(ref_n.array, moving01, "training slices")
    a, b = (np.ascontiguousarray(np.moveaxis(to_axial(x, reference.affine), 2, 0)) for x in (a, b))
    mask = content_mask(a, b)
    a, b = match_training_intensities(a, b, pair, mask)
    return a, b, mask


def load_volume_slices(
    source: str | os.PathLike | Sequence[VolumePair],
    pair: str,
    *,
    min_head_fraction: float = MIN_HEAD_FRACTION,
) -> list[SlicePair]:
    """Axial training slices of every subject of a ``--volumes`` folder or list (or of given pairs).

    Args:
        source: the folder or list file (:func:`find_volume_pairs`), or :class:`VolumePair` objects.
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``.
        min_head_fraction: keep a slice when its head area (content mask) is at least this fraction
            of the subject's largest head slice.

    Returns:
        :class:`~medfuse.training.data.SlicePair` objects, ``case`` the subject id, ``key``
        ``volumes/<pair>/<subject>/k<slice>``; ``a``/``b`` float32 ``(H, W)`` in [0, 1] as
        :func:`network_input_stacks` makes them.

    Raises:
        SpaceMismatchError: a subject's two scans are not on one grid (run ``medfuse register``).
        UnsupportedInputError: a 2D image, a colour volume, or a subject without head slices.
        FileNotFoundError, CorruptFileError: missing or unreadable files.
    """
    if not 0.0 <= float(min_head_fraction) <= 1.0:
        raise UnsupportedInputError(f"min_head_fraction must be in [0, 1]; got {min_head_fraction}")
    stem, code = _moving_role(pair)
    pairs = find_volume_pairs(source, pair) if isinstance(source, (str, os.PathLike)) else list(source)
    if not pairs:
        raise UnsupportedInputError("no volume pairs to train on")
    out: list[SlicePair] = []
    for vp in pairs:
        ref_label, mov_label = f"{vp.label}, the reference (MRI)", f"{vp.label}, the moving scan ({stem.upper()})"
        reference = _load(vp.reference, "MR", ref_label)
        moving = _load(vp.moving, code, mov_label)
        for vol, label in ((reference, ref_label), (moving, mov_label)):
            if vol.ndim != 3 or vol.rgb is not None:
                raise UnsupportedInputError(f"{label}: expected a grey 3D volume; got shape {vol.shape}"
                                            + (" in colour" if vol.rgb is not None else ""))
        if not reference.same_grid(moving):
            raise SpaceMismatchError(
                f"{vp.label}: the moving scan ({stem.upper()}, shape {moving.shape}) is not on the reference MRI's "
                f"grid (shape {reference.shape}{', affine differs' if moving.shape == reference.shape else ''}); "
                "training needs registered pairs: run `medfuse register --reference MRI --moving "
                f"{stem.upper()} --out {stem.upper()}_on_MRI.nii.gz` and train on its output"
            )
        a, b, mask = network_input_stacks(reference, moving, pair)
        area = mask.reshape(mask.shape[0], -1).sum(axis=1)
        if not area.any():
            raise UnsupportedInputError(f"{vp.label}: no slice holds any head (both scans are dark after "
                                        "normalization); check the files")
        keep = np.flatnonzero((area > 0) & (area >= float(min_head_fraction) * area.max()))
        for k in keep:
            out.append(SlicePair(f"volumes/{pair}/{vp.subject}/k{int(k)}", vp.subject,
                                 np.ascontiguousarray(a[k]), np.ascontiguousarray(b[k])))
        log.info("%s: %d of %d axial slices inside the head", vp.label, len(keep), a.shape[0])
    log.info("loaded %d %s slices from %d subjects", len(out), pair, len(pairs))
    return out
