"""Which modality a scan is: one table of codes and names, and one rule for deciding.

medfuse needs the modality of every input: it picks the normalization (CT Hounsfield window, MRI
percentiles, PET SUV), the head mask and the trained network of the pair. It is never guessed
silently. :func:`resolve_modality` takes, in this order:

1. the user's word (``modality=`` / ``--reference-modality``, ``--moving-modality``);
2. the DICOM Modality attribute (0008,0060), set by the DICOM reader;
3. a modality word in the file or folder name (``pet.nii.gz``, ``sub-01_T1w.nii.gz``, ``ct_head.nrrd``);
4. a content check that is reliable: a CT in Hounsfield units has air at -1000 HU (at least 1% of
   the voxels within -1100..-900) and tissue or bone above 100 HU; no MR, PET or SPECT scan looks
   like that (checked on the phantom, the real MNI templates, one patient's native MR and a BraTS
   case, see ``tests/test_modality.py``).

When none of these answers, :func:`require_modality` raises :class:`~medfuse.errors.UnknownModalityError`
with the flag that fixes it. The decision and where it came from are kept in
``volume.meta["modality_source"]`` (``"user"``, ``"dicom"``, ``"file name"``, ``"content"``) and end
up in the output's sidecar.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = [
    "MODALITIES",
    "MODALITY_LABELS",
    "canonical_modality",
    "modality_from_name",
    "modality_from_content",
    "resolve_modality",
    "require_modality",
]

#: medfuse modality codes (DICOM Modality values): MR, CT, PT (PET), NM (SPECT)
MODALITIES = ("MR", "CT", "PT", "NM")
#: code -> what a person calls it
MODALITY_LABELS = {"MR": "MRI", "CT": "CT", "PT": "PET", "NM": "SPECT"}
#: names accepted for each code on the command line and in the API (case-insensitive)
_ALIASES = {"MRI": "MR", "PET": "PT", "SPECT": "NM"}
#: words in file or folder names that say the modality (BIDS suffixes, BraTS sequence names, AANLIB names)
_NAME_TOKENS = {
    "mr": "MR", "mri": "MR", "t1": "MR", "t1w": "MR", "t2": "MR", "t2w": "MR", "flair": "MR", "t1ce": "MR",
    "t1c": "MR", "t1n": "MR", "t2f": "MR", "mprage": "MR", "pd": "MR", "pdw": "MR",
    "ct": "CT", "pet": "PT", "pt": "PT", "fdg": "PT", "spect": "NM", "nm": "NM",
}
#: content check for CT: voxels within this HU range are air ...
_AIR_HU = (-1100.0, -900.0)
#: ... at least this fraction of the scan is air ...
_MIN_AIR_FRACTION = 0.01
#: ... and the 99.9th percentile reaches tissue/bone (HU)
_MIN_TISSUE_HU = 100.0


def canonical_modality(modality: str | None) -> str | None:
    """``"MR"``/``"CT"``/``"PT"``/``"NM"`` from a code or alias (``"mri"``, ``"PET"``, ``"SPECT"``); None stays None.

    Raises:
        OptionError (a ``ValueError``): an unknown name (with a "did you mean" suggestion).
    """
    if modality is None:
        return None
    from medfuse.errors import look_up

    code = str(modality).strip().upper()
    return look_up(_ALIASES.get(code, code), MODALITIES, "modality")


def modality_from_name(path: str | os.PathLike) -> str | None:
    """Modality code from a file or folder name (``mri.png`` -> ``"MR"``, ``sub-01_pet.nii.gz`` -> ``"PT"``), or None."""
    name = Path(path).name.lower()
    for suffix in (".nii.gz", *(Path(name).suffixes[-1:])):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    for token in reversed(name.replace("-", "_").replace(".", "_").split("_")):
        if token in _NAME_TOKENS:
            return _NAME_TOKENS[token]
    return None


def modality_from_content(array: np.ndarray) -> str | None:
    """``"CT"`` when the values are Hounsfield units of a scan with air in it, else None.

    Only CT can be told from its values alone: air sits at -1000 HU and tissue above 0. MR, PET and
    SPECT values are arbitrary positive numbers, so they are never decided here.
    """
    a = np.asarray(array)
    if a.size == 0 or a.ndim < 3:  # 2D display images (0..255) are never HU
        return None
    sample = a.ravel()[:: max(1, a.size // 2_000_000)].astype(np.float32, copy=False)
    air = np.count_nonzero((sample >= _AIR_HU[0]) & (sample <= _AIR_HU[1])) / sample.size
    if air >= _MIN_AIR_FRACTION and float(np.percentile(sample, 99.9)) >= _MIN_TISSUE_HU:
        return "CT"
    return None


def resolve_modality(volume, path: str | os.PathLike | None = None, given: str | None = None) -> str | None:
    """Set ``volume.modality`` (and ``meta["modality_source"]``) by the rule of this module; return it.

    Args:
        volume: a freshly read :class:`~medfuse.volume.Volume` (``modality`` set only by a DICOM reader).
        path: the path it was read from (for the file-name rule).
        given: the user's modality (code or alias), which wins.

    Returns:
        The code, or None when nothing decides it (see :func:`require_modality`).
    """
    if given is not None:
        code, source = canonical_modality(given), "user"
    elif volume.modality is not None:
        code, source = canonical_modality(volume.modality), volume.meta.get("modality_source", "dicom")
    elif path is not None and modality_from_name(path) is not None:
        code, source = modality_from_name(path), "file name"
    else:
        code = modality_from_content(volume.array)
        source = "content" if code is not None else None
    volume.modality = code
    if source is not None:
        volume.meta["modality_source"] = source
    return code


def require_modality(volume, role: str | None = None) -> str:
    """The volume's modality code, or raise when it is unknown.

    Args:
        volume: a :class:`~medfuse.volume.Volume` after :func:`resolve_modality`.
        role: ``"reference"`` or ``"moving"`` when the volume is one input of a pair (the error carries it, so
            that the command line names ``--moving-modality``).

    Raises:
        UnknownModalityError: no modality from the user, DICOM, the file name or the content; its ``option`` is
            ``modality``.
    """
    if volume.modality is not None:
        return canonical_modality(volume.modality)
    from medfuse.errors import OPTION, UnknownModalityError

    raise UnknownModalityError(
        f"{volume.name}: cannot tell which modality this scan is (no DICOM Modality tag, no modality word such as "
        f"t1, ct, pet or spect in the file name, and the values are not Hounsfield units); give it with "
        f"{OPTION} MR|CT|PT|NM", role=role, option="modality",
    )
