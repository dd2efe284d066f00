"""MONAI transforms for medfuse (array versions in :mod:`.array`, dictionary versions in :mod:`.dictionary`).

Importing this package imports MONAI and torch; ``import medfuse`` does not.
"""

from medfuse.transforms.array import (
    FuseImages,
    LoadVolume,
    NormalizeModality,
    RegisterToReference,
    collate_safe,
    ras_affine,
    to_metatensor,
    to_volume,
)
from medfuse.transforms.colour import ApplyColormap, KeepHotRegions, MergeLuminance, SplitLuminance
from medfuse.transforms.dictionary import (
    ApplyColormapd,
    ApplyColormapD,
    ApplyColormapDict,
    FuseImagesd,
    FuseImagesD,
    FuseImagesDict,
    KeepHotRegionsd,
    KeepHotRegionsD,
    KeepHotRegionsDict,
    LoadVolumed,
    LoadVolumeD,
    LoadVolumeDict,
    MergeLuminanced,
    MergeLuminanceD,
    MergeLuminanceDict,
    NormalizeModalityd,
    NormalizeModalityD,
    NormalizeModalityDict,
    RegisterToReferenced,
    RegisterToReferenceD,
    RegisterToReferenceDict,
    SplitLuminanced,
    SplitLuminanceD,
    SplitLuminanceDict,
    WriteSidecard,
    WriteSidecarD,
    WriteSidecarDict,
)
from medfuse.transforms.sidecar import WriteSidecar
from medfuse.transforms.writer import VolumeWriter

__all__ = [
    "to_volume", "to_metatensor", "ras_affine", "collate_safe", "VolumeWriter",
    "LoadVolume", "RegisterToReference", "NormalizeModality", "SplitLuminance", "MergeLuminance", "ApplyColormap",
    "KeepHotRegions", "FuseImages",
    "WriteSidecar",
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
