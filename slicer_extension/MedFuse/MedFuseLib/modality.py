"""Which modality a Slicer volume is, from what the scene knows about it (no Slicer import).

A volume loaded through Slicer's DICOM module carries the SOP Instance UIDs of its files in the
node attribute ``DICOM.instanceUIDs`` (space-separated); the DICOM database answers the
Modality attribute (0008,0060) of any of them. Otherwise the volume's name may say it
(``"T1w"``, ``"pet"``, ``"CT head"``), by the same word table medfuse applies to file names
(:func:`medfuse.modality.modality_from_name`). When neither tells, the answer is None and the
user chooses: the module never assumes a modality.
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

from MedFuseLib.parameters import MODALITIES, MODALITY_LABELS, UNKNOWN_MODALITY

__all__ = ["detect_modality", "modality_for_selection", "modality_from_dicom", "modality_from_volume_name",
           "DICOM_MODALITY_TAG", "INSTANCE_UIDS_ATTRIBUTE"]

#: DICOM Modality attribute, as ctkDICOMDatabase names tags
DICOM_MODALITY_TAG = "0008,0060"
#: node attribute that Slicer's DICOM scalar volume plugin sets
INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
#: DICOM Modality values that mean one of medfuse's codes (PET/CT and PET/MR exports say "PT")
_DICOM_CODES = {"MR": "MR", "CT": "CT", "PT": "PT", "NM": "NM", "PET": "PT", "SPECT": "NM"}
#: words in a volume name, for Slicer before medfuse is installed (medfuse's table is used when importable)
_NAME_TOKENS = {
    "mr": "MR", "mri": "MR", "t1": "MR", "t1w": "MR", "t2": "MR", "t2w": "MR", "flair": "MR", "t1ce": "MR",
    "mprage": "MR", "ct": "CT", "pet": "PT", "pt": "PT", "fdg": "PT", "spect": "NM", "nm": "NM",
}


def modality_from_dicom(node, dicom_database) -> Optional[str]:
    """The medfuse code of a volume loaded from DICOM, from the database, or None.

    Args:
        node: a volume node (``GetAttribute(name)``).
        dicom_database: ``slicer.dicomDatabase`` (``instanceValue(uid, tag)`` or ``fileForInstance(uid)`` and
            ``fileValue(file, tag)``); None when Slicer has no database.
    """
    uids = (node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
    if not uids or dicom_database is None:
        return None
    uid = uids[0]
    value = ""
    if hasattr(dicom_database, "instanceValue"):
        value = dicom_database.instanceValue(uid, DICOM_MODALITY_TAG) or ""
    if not value and hasattr(dicom_database, "fileForInstance"):
        path = dicom_database.fileForInstance(uid)
        if path:
            value = dicom_database.fileValue(path, DICOM_MODALITY_TAG) or ""
    code = _DICOM_CODES.get(str(value).strip().upper())
    return code if code in MODALITIES else None


def modality_from_volume_name(name: Optional[str]) -> Optional[str]:
    """The medfuse code a volume name says (``"sub-01_T1w"`` -> MR, ``"FDG PET"`` -> PT), or None."""
    if not name:
        return None
    try:
        from medfuse.modality import modality_from_name
    except ImportError:  # Slicer before medfuse is installed
        modality_from_name = None
    words = re.split(r"[\s_.\-:()\[\]]+", str(name).lower())
    if modality_from_name is not None:
        code = modality_from_name("_".join(w for w in words if w))
        if code is not None:
            return code
    for word in reversed(words):
        if word in _NAME_TOKENS:
            return _NAME_TOKENS[word]
    return None


def detect_modality(node, dicom_database=None) -> Tuple[Optional[str], str]:
    """``(code, source)`` of a volume node: source is "DICOM", "volume name", or "" when unknown (code None)."""
    if node is None:
        return None, ""
    code = modality_from_dicom(node, dicom_database)
    if code is not None:
        return code, "DICOM"
    code = modality_from_volume_name(node.GetName())
    if code is not None:
        return code, "volume name"
    return None, ""


def modality_for_selection(node, current: Optional[str], same_node: bool,
                           dicom_database=None) -> Tuple[str, str]:
    """``(modality selector value, source text)`` after a volume selector shows ``node``.

    * a newly chosen volume: its modality from the DICOM attributes, else from its name, else
      ``"unknown"`` (the user must choose; never a fixed default);
    * the same volume as before (the panel re-showing the parameter node, e.g. a reopened scene)
      with a modality already set: that modality is kept, so a choice the user made, and saved
      with the scene, is not overwritten by detection.

    Args:
        node: the volume node now selected (None: nothing selected).
        current: the modality the parameter node holds for this role.
        same_node: the node is the one the parameter node already held for this role.
        dicom_database: ``slicer.dicomDatabase`` or None.
    """
    if node is None:
        return current or UNKNOWN_MODALITY, ""
    code, source = detect_modality(node, dicom_database)
    if same_node and current not in (None, "", UNKNOWN_MODALITY):
        if code == current:
            return current, f"{MODALITY_LABELS.get(code, code)}, from the {source}"
        return current, f"{MODALITY_LABELS.get(current, current)}, as chosen"
    if code is None:
        return UNKNOWN_MODALITY, "not in the DICOM attributes or the name: choose"
    return code, f"{MODALITY_LABELS.get(code, code)}, from the {source}"
