"""MONAI dictionary transforms: each only wraps its array transform from :mod:`medfuse.transforms.array`.

Keys name entries of the data dictionary; the reference (MRI) image is ``ref_key``. Outputs keep
MetaTensor geometry: registered, normalized and fused images carry the reference's affine.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

from medfuse.transforms.array import (
    CHROMA_META_KEY,
    FuseImages,
    LoadVolume,
    MergeLuminance,
    NormalizeModality,
    RegisterToReference,
    SplitLuminance,
)

__all__ = [
    "LoadVolumed", "LoadVolumeD", "LoadVolumeDict",
    "RegisterToReferenced", "RegisterToReferenceD", "RegisterToReferenceDict",
    "NormalizeModalityd", "NormalizeModalityD", "NormalizeModalityDict",
    "SplitLuminanced", "SplitLuminanceD", "SplitLuminanceDict",
    "MergeLuminanced", "MergeLuminanceD", "MergeLuminanceDict",
    "FuseImagesd", "FuseImagesD", "FuseImagesDict",
]


class LoadVolumed(MapTransform):
    """Dictionary wrapper of :class:`LoadVolume`; ``modality`` may give one code per key."""

    backend = LoadVolume.backend

    def __init__(self, keys: KeysCollection, modality: Sequence[str | None] | str | None = None,
                 keep_color: bool = False, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        mods = modality if isinstance(modality, (list, tuple)) else [modality] * len(self.keys)
        self.loaders = {k: LoadVolume(modality=m, keep_color=keep_color) for k, m in zip(self.keys, mods)}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loaders[key](d[key])
        return d


class RegisterToReferenced(MapTransform):
    """Dictionary wrapper of :class:`RegisterToReference`: each key is registered onto ``d[ref_key]``."""

    backend = RegisterToReference.backend

    def __init__(self, keys: KeysCollection, ref_key: str, transform: str = "rigid", label_map: bool = False,
                 register: bool = True, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key
        self.registrar = RegisterToReference(transform=transform, label_map=label_map, register=register)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.registrar(d[key], d[self.ref_key])
        return d


class NormalizeModalityd(MapTransform):
    """Dictionary wrapper of :class:`NormalizeModality`; ``modality`` may give one code per key."""

    backend = NormalizeModality.backend

    def __init__(self, keys: KeysCollection, modality: Sequence[str | None] | str | None = None,
                 window: Any = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        mods = modality if isinstance(modality, (list, tuple)) else [modality] * len(self.keys)
        self.normalizers = {k: NormalizeModality(modality=m, window=window) for k, m in zip(self.keys, mods)}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizers[key](d[key])
        return d


class SplitLuminanced(MapTransform):
    """Dictionary wrapper of :class:`SplitLuminance`; the chroma stays in the image's metadata."""

    backend = SplitLuminance.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.splitter = SplitLuminance()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.splitter(d[key])
        return d


class MergeLuminanced(MapTransform):
    """Dictionary wrapper of :class:`MergeLuminance`: colours ``d[key]`` with the chroma that
    :class:`SplitLuminanced` left in ``d[chroma_key]``'s metadata."""

    backend = MergeLuminance.backend

    def __init__(self, keys: KeysCollection, chroma_key: str, scale: float = 1.0,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.chroma_key = chroma_key
        self.merger = MergeLuminance(scale=scale)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        chroma = getattr(d[self.chroma_key], "meta", {}).get(CHROMA_META_KEY)
        for key in self.key_iterator(d):
            d[key] = self.merger(d[key], chroma)
        return d


class FuseImagesd(MapTransform):
    """Dictionary wrapper of :class:`FuseImages`: ``keys`` = (reference key, moving key); the result
    goes to ``d[output_key]`` with the reference's affine. A ``MetaTensor`` reference's affine
    chooses the slices of 2D methods (axial, in the training orientation); ``axis`` only serves
    inputs without geometry."""

    backend = FuseImages.backend

    def __init__(self, keys: KeysCollection, output_key: str = "fused", method: str = "mean",
                 weights: str | None = None, pair: str | None = None, device: str = "cpu", axis: int = -1,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"FuseImagesd needs two keys (reference, moving); got {self.keys}")
        self.output_key = output_key
        self.fuser = FuseImages(method=method, weights=weights, pair=pair, device=device, axis=axis)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref_key, mov_key = self.keys
        d[self.output_key] = self.fuser(d[ref_key], d[mov_key])
        return d


LoadVolumeD = LoadVolumeDict = LoadVolumed
RegisterToReferenceD = RegisterToReferenceDict = RegisterToReferenced
NormalizeModalityD = NormalizeModalityDict = NormalizeModalityd
SplitLuminanceD = SplitLuminanceDict = SplitLuminanced
MergeLuminanceD = MergeLuminanceDict = MergeLuminanced
FuseImagesD = FuseImagesDict = FuseImagesd
