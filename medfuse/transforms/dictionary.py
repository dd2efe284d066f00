"""MONAI dictionary transforms: each only wraps its array transform from :mod:`medfuse.transforms.array`.

Keys name entries of the data dictionary; the reference (MRI) image is ``ref_key``. Outputs keep
MetaTensor geometry: registered, normalized and fused images carry the reference's affine. Each
takes every argument of its array transform (as MONAI's ``NormalizeIntensityd`` mirrors
``NormalizeIntensity``); arguments that can differ per image (``modality``) also take one value per key.
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
    NormalizeModality,
    RegisterToReference,
)
from medfuse.transforms.colour import ApplyColormap, KeepHotRegions, MergeLuminance, SplitLuminance
from medfuse.transforms.sidecar import WriteSidecar

__all__ = [
    "LoadVolumed", "LoadVolumeD", "LoadVolumeDict",
    "RegisterToReferenced", "RegisterToReferenceD", "RegisterToReferenceDict",
    "NormalizeModalityd", "NormalizeModalityD", "NormalizeModalityDict",
    "SplitLuminanced", "SplitLuminanceD", "SplitLuminanceDict",
    "MergeLuminanced", "MergeLuminanceD", "MergeLuminanceDict",
    "ApplyColormapd", "ApplyColormapD", "ApplyColormapDict",
    "KeepHotRegionsd", "KeepHotRegionsD", "KeepHotRegionsDict",
    "FuseImagesd", "FuseImagesD", "FuseImagesDict",
    "WriteSidecard", "WriteSidecarD", "WriteSidecarDict",
]


def _per_key(value: Any, keys: Sequence[Hashable], name: str) -> list[Any]:
    """One value per key: a list/tuple gives them in key order, anything else is used for every key."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(keys):
            raise ValueError(f"{name} gives {len(value)} value(s) for {len(keys)} key(s) {list(keys)}")
        return list(value)
    return [value] * len(keys)


def _role(key: Hashable) -> str:
    """How messages name the input under ``key``: the bundles' flags for ``reference``/``moving``."""
    return f"the {key} scan (--{key})" if key in ("reference", "moving") else f"the {key!r} input"


class LoadVolumed(MapTransform):
    """Dictionary wrapper of :class:`LoadVolume`; ``modality`` may give one code per key.

    ``label`` (one per key, or one for all) names each input in messages and log lines; by default its role:
    ``the reference scan (--reference)`` / ``the moving scan (--moving)`` (the bundles' flags), ``the 'KEY'
    input`` for other keys. Input paths never reach messages or logs (:mod:`medfuse.io.naming`).
    """

    backend = LoadVolume.backend

    def __init__(self, keys: KeysCollection, modality: Sequence[str | None] | str | None = None,
                 keep_color: bool = False, allow_missing_keys: bool = False,
                 label: Sequence[str | None] | str | None = None) -> None:
        super().__init__(keys, allow_missing_keys)
        mods = _per_key(modality, self.keys, "modality")
        labels = [lb or _role(k) for k, lb in zip(self.keys, _per_key(label, self.keys, "label"))]
        self.loaders = {k: LoadVolume(modality=m, keep_color=keep_color, label=lb)
                        for k, m, lb in zip(self.keys, mods, labels)}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loaders[key](d[key])
        return d


class RegisterToReferenced(MapTransform):
    """Dictionary wrapper of :class:`RegisterToReference`: each key is registered onto ``d[ref_key]``;
    ``modality`` and ``label_map`` may give one value per key."""

    backend = RegisterToReference.backend

    def __init__(
        self,
        keys: KeysCollection,
        ref_key: str,
        transform: str = "rigid",
        label_map: bool | Sequence[bool] = False,
        register: bool = True,
        modality: Sequence[str | None] | str | None = None,
        reference_modality: str | None = None,
        settings: Mapping[str, Any] | None = None,
        skip_same_frame: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key
        self.registrars = {
            k: RegisterToReference(transform=transform, label_map=lm, register=register, modality=m,
                                   reference_modality=reference_modality, settings=settings,
                                   skip_same_frame=skip_same_frame)
            for k, m, lm in zip(self.keys, _per_key(modality, self.keys, "modality"),
                                _per_key(label_map, self.keys, "label_map"))
        }

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.registrars[key](d[key], d[self.ref_key])
        return d


class NormalizeModalityd(MapTransform):
    """Dictionary wrapper of :class:`NormalizeModality`; ``modality`` may give one code per key
    (``window`` is a CT preset or HU/SUV range: give one per transform when the keys differ)."""

    backend = NormalizeModality.backend

    def __init__(self, keys: KeysCollection, modality: Sequence[str | None] | str | None = None,
                 window: Any = None, percentiles: Sequence[float] = (0.5, 99.5),
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        mods = _per_key(modality, self.keys, "modality")
        self.normalizers = {k: NormalizeModality(modality=m, window=window, percentiles=percentiles)
                            for k, m in zip(self.keys, mods)}

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


class ApplyColormapd(MapTransform):
    """Dictionary wrapper of :class:`ApplyColormap`: a normalized 3D PET/SPECT becomes its colour map's
    luminance, the chroma kept in its metadata for :class:`MergeLuminanced` (``chroma_key`` this key);
    CT, MR and colour slices pass through. ``colormap`` may give one name per key."""

    backend = ApplyColormap.backend

    def __init__(self, keys: KeysCollection, colormap: Sequence[str | None] | str | None = None,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mappers = {k: ApplyColormap(colormap=c)
                        for k, c in zip(self.keys, _per_key(colormap, self.keys, "colormap"))}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.mappers[key](d[key])
        return d


class KeepHotRegionsd(MapTransform):
    """Dictionary wrapper of :class:`KeepHotRegions`: floors each key's fused luminance where ``d[moving_key]``
    (the functional image's luminance, with the uptake a colour transform recorded) is hot. The bundles put it
    between the inferer and :class:`MergeLuminanced`, as ``medfuse fuse`` floors before it merges the colour."""

    backend = KeepHotRegions.backend

    def __init__(self, keys: KeysCollection, moving_key: str, pair: str | None = None, method: str = "light",
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.moving_key = moving_key
        self.floor = KeepHotRegions(pair=pair, method=method)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.floor(d[key], d[self.moving_key])
        return d


class FuseImagesd(MapTransform):
    """Dictionary wrapper of :class:`FuseImages`: ``keys`` = (reference key, other key, ...); the result
    goes to ``d[output_key]`` with the reference's affine. Two keys fuse a pair; more keys are fused
    by ``strategy`` (``"mean_of_pairs"``: the mean of the reference fused with each other image;
    ``"sequential"``: each fusion the reference of the next; see :class:`FuseImages`). A
    ``MetaTensor`` reference's affine chooses the slices of 2D methods (axial, in the training
    orientation); ``axis`` only serves inputs without geometry."""

    backend = FuseImages.backend

    def __init__(self, keys: KeysCollection, output_key: str = "fused", method: str = "mean",
                 weights: str | None = None, pair: str | None = None, device: str = "cpu", axis: int = -1,
                 strategy: str = "mean_of_pairs", keep_hot: bool = True, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) < 2:
            raise ValueError(f"FuseImagesd needs two or more keys (reference first); got {self.keys}")
        self.output_key = output_key
        self.fuser = FuseImages(method=method, weights=weights, pair=pair, device=device, axis=axis,
                                strategy=strategy, keep_hot=keep_hot)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref_key, *other_keys = self.keys
        others = [d[k] for k in other_keys if k in d or not self.allow_missing_keys]
        d[self.output_key] = self.fuser(d[ref_key], *others)
        return d


class WriteSidecard(MapTransform):
    """Dictionary wrapper of :class:`WriteSidecar`: for each key (a fused image saved by
    ``SaveImaged(savepath_in_metadict=True)``), the sidecar reports ``d[reference_key]`` and ``d[moving_key]``."""

    backend = WriteSidecar.backend

    def __init__(self, keys: KeysCollection, reference_key: str | None = None, moving_key: str | None = None,
                 method: str | None = None, weights: str | None = None, command: str = "medfuse transforms",
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reference_key, self.moving_key = reference_key, moving_key
        self.writer = WriteSidecar(method=method, weights=weights, command=command)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref = d.get(self.reference_key) if self.reference_key else None
        mov = d.get(self.moving_key) if self.moving_key else None
        for key in self.key_iterator(d):
            d[key] = self.writer(d[key], ref, mov)
        return d


LoadVolumeD = LoadVolumeDict = LoadVolumed
RegisterToReferenceD = RegisterToReferenceDict = RegisterToReferenced
NormalizeModalityD = NormalizeModalityDict = NormalizeModalityd
SplitLuminanceD = SplitLuminanceDict = SplitLuminanced
MergeLuminanceD = MergeLuminanceDict = MergeLuminanced
ApplyColormapD = ApplyColormapDict = ApplyColormapd
KeepHotRegionsD = KeepHotRegionsDict = KeepHotRegionsd
FuseImagesD = FuseImagesDict = FuseImagesd
WriteSidecarD = WriteSidecarDict = WriteSidecard
