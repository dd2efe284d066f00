"""The modality pairs medfuse ships trained networks for, named from the one modality table.

A pair is an MRI plus a second scan of another modality (:data:`medfuse.modality.MODALITIES`); its
name is the second modality's label and ``mri`` (``ct_mri``, ``pet_mri``, ``spect_mri``), the names
the trained weights, the trainer, the bundles and the Harvard AANLIB layout use.
"""

from __future__ import annotations

from medfuse.modality import MODALITIES, MODALITY_LABELS, canonical_modality

__all__ = ["PAIRS", "MODALITY_OF_PAIR", "pair_for_modality"]

#: pair name -> modality code of its second scan (the first is the MRI)
MODALITY_OF_PAIR = {f"{MODALITY_LABELS[code].lower()}_mri": code for code in MODALITIES if code != "MR"}
#: modality-pair names used by the trained weights, the trainer and the Harvard layout
PAIRS = tuple(MODALITY_OF_PAIR)
_PAIR_OF_MODALITY = {modality: pair for pair, modality in MODALITY_OF_PAIR.items()}


def pair_for_modality(modality: str | None) -> str | None:
    """The pair name (``"pet_mri"``...) for the second scan's modality (code or alias), or None (e.g. MR-MR)."""
    try:
        code = canonical_modality(modality)
    except ValueError:
        return None
    return _PAIR_OF_MODALITY.get(code or "")
