"""The phantom's 1 mm tissue model: the MNI152 template (or an analytic head) with skull and scalp shells."""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medfuse.errors import look_up

__all__ = [
    "Anatomy", "LABELS", "MARKER_CENTER_MM", "MARKER_RADIUS_MM", "HEAD_CENTER_MM", "TISSUES", "cached_anatomy",
    "load_anatomy", "template_dir",
]

log = logging.getLogger("medfuse.phantom")

#: Tissue label values of :attr:`PhantomCase.labels`.
LABELS = {"background": 0, "csf": 1, "gm": 2, "wm": 3, "skull": 4, "scalp": 5, "marker": 6}

#: Centre (reference RAS mm) and radius of the left-hemisphere marker lesion.
MARKER_CENTER_MM = (-30.0, -18.0, 28.0)
MARKER_RADIUS_MM = 6.0

#: Rotation centre of the misalignment and centre of every default field of view (RAS mm): the
#: centre of the head's bounding box above the neck.
HEAD_CENTER_MM = (0.0, -17.0, 13.0)

_TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

# Tissue fraction maps of the model, in this order (air is what is left).
TISSUES = ("csf", "gm", "wm", "bone", "marrow", "scalp")

# Shells outside the brain mask: outer boundary (mm from the brain) of each layer.
_CSF_OUT, _INNER_TABLE, _DIPLOE, _OUTER_TABLE, _SCALP = 2.5, 4.0, 7.5, 9.0, 15.0
_NECK_MM = 24  # the brain stem is extended this far below the template (as a cord)
T1_TEMPLATE_SCALE = 4.0  # template T1 (0..255) to phantom MR units (WM ~ 880)


@dataclass(frozen=True)
class Anatomy:
    """The 1 mm tissue model (read-only arrays, shared through the cache)."""

    kind: str  # "mni152" or "analytic"
    affine: np.ndarray  # voxel -> RAS mm of every array below
    fractions: dict  # tissue -> uint8 fraction map (0..255)
    brain: np.ndarray  # bool, the brain mask (inside the pial surface, ventricles included)
    labels: np.ndarray  # uint8: label 0..5, plus 128 inside the brain mask
    t1: np.ndarray | None  # template T1 (0..255) where available


def template_dir() -> Path | None:
    """The folder holding nilearn's packaged MNI152 2009 files, or ``None`` when absent.

    The package is located without importing it (nilearn's import is slow) and nothing is
    downloaded.
    """
    try:
        spec = importlib.util.find_spec("nilearn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "datasets" / "data"
        if all((folder / name).is_file() for name in _TEMPLATE_FILES.values()):
            return folder
    return None


def _shells(brain: np.ndarray) -> dict:
    """Fractions (float32, 0..1) of the layers outside ``brain`` (bool, 1 mm voxels)."""
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(~brain).astype(np.float32)

    def beyond(mm: float) -> np.ndarray:  # fraction of a voxel lying further than ``mm`` out
        return np.clip(dist - mm + 0.5, 0.0, 1.0)

    outside = (~brain).astype(np.float32)
    b1, b2, b3, b4, b5 = (beyond(mm) for mm in (_CSF_OUT, _INNER_TABLE, _DIPLOE, _OUTER_TABLE, _SCALP))
    return {
        "csf": outside - b1,
        "bone": (b1 - b2) + (b3 - b4),
        "marrow": b2 - b3,
        "scalp": b4 - b5,
    }


def _finish_anatomy(kind, affine, brain, csf_in, gm, wm, t1) -> Anatomy:
    """Add the shells, quantize to uint8 and derive labels; every input is on one 1 mm grid."""
    shells = _shells(brain)
    frac = {
        "csf": csf_in + shells["csf"],
        "gm": gm,
        "wm": wm,
        "bone": shells["bone"],
        "marrow": shells["marrow"],
        "scalp": shells["scalp"],
    }
    fractions = {k: np.round(np.clip(v, 0, 1) * 255).astype(np.uint8) for k, v in frac.items()}
    stack = np.stack(
        [
            255 - sum(fractions[k].astype(np.int16) for k in TISSUES),  # air
            fractions["csf"], fractions["gm"], fractions["wm"],
            fractions["bone"].astype(np.int16) + fractions["marrow"], fractions["scalp"],
        ]
    )
    labels = np.argmax(stack, axis=0).astype(np.uint8)
    labels[brain & (labels == 0)] = LABELS["csf"]
    labels |= brain.astype(np.uint8) << 7
    arrays = [labels, brain, *fractions.values()] + ([t1] if t1 is not None else [])
    for a in arrays:
        a.flags.writeable = False
    return Anatomy(kind, affine, fractions, brain, labels, t1)


def _crop_to_head(affine: np.ndarray, brain: np.ndarray, *maps: np.ndarray):
    """Crop ``maps`` to the brain's bounding box plus room for the shells (air beyond).

    The far side of each axis is zero-padded so every side is a multiple of 4 (the block-averaged
    sampling levels). Returns the cropped grid's affine and the cropped maps.
    """
    margin = int(np.ceil(_SCALP)) + 2
    lo, hi = [], []
    for axis in range(3):
        present = np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != axis)))
        lo.append(max(0, int(present[0]) - margin))
        hi.append(min(brain.shape[axis], int(present[-1]) + margin + 1))
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    extra = [(0, (-(b - a)) % 4) for a, b in zip(lo, hi)]
    cropped = [np.pad(m[box], extra) for m in maps]
    out = affine.copy()
    out[:3, 3] = affine[:3, :3] @ np.asarray(lo, dtype=np.float64) + affine[:3, 3]
    return out, cropped


def _mni152_anatomy(folder: Path) -> Anatomy:
    import nibabel as nib

    raw = {}
    for key, name in _TEMPLATE_FILES.items():
        img = nib.load(str(folder / name))
        raw[key] = np.asarray(img.dataobj)
        affine = img.affine
    # below the template the brain stem continues (edge padding: a cord and a neck, not a cap)
    pad = ((0, 0), (0, 0), (_NECK_MM, 0))
    brain = np.pad(raw["t1"] > 0, pad, mode="edge")
    shifted = affine.copy()
    shifted[:3, 3] -= affine[:3, 2] * _NECK_MM
    shifted, (brain, gm, wm, t1) = _crop_to_head(
        shifted, brain, brain, *(np.pad(raw[k], pad, mode="edge") for k in ("gm", "wm", "t1"))
    )
    gm = gm.astype(np.float32) / 255.0
    wm = wm.astype(np.float32) / 255.0
    # probability tails outside the template's brain mask belong to the CSF layer
    gm[~brain] = 0.0
    wm[~brain] = 0.0
    t1[~brain] = 0
    total = gm + wm
    over = total > 1.0
    gm[over] /= total[over]
    wm[over] /= total[over]
    csf_in = np.where(brain, 1.0 - gm - wm, 0.0).astype(np.float32)
    return _finish_anatomy("mni152", shifted, brain, csf_in, gm, wm, t1)


def _soft_ellipsoid(coords, center, semi_axes) -> np.ndarray:
    """Fraction (0..1) of each 1 mm voxel inside an ellipsoid (approximate signed distance ramp)."""
    x, y, z = coords
    c = np.asarray(center, np.float32)
    a = np.asarray(semi_axes, np.float32)
    r = np.sqrt(((x - c[0]) / a[0]) ** 2 + ((y - c[1]) / a[1]) ** 2 + ((z - c[2]) / a[2]) ** 2)
    return np.clip((1.0 - r) * a.min() + 0.5, 0.0, 1.0)


def _analytic_anatomy() -> Anatomy:
    """An ellipsoid head on the same 1 mm grid and world as the MNI152 model."""
    shape = (200, 236, 216)
    affine = np.array([[1.0, 0, 0, -98.0], [0, 1.0, 0, -134.0], [0, 0, 1.0, -72.0 - _NECK_MM], [0, 0, 0, 1]])
    axes = [np.arange(n, dtype=np.float32) + affine[i, 3] for i, n in enumerate(shape)]
    coords = np.meshgrid(*axes, indexing="ij", sparse=True)
    centre, semi = (0.0, -18.0, 10.0), np.array([68.0, 86.0, 64.0])
    brain_frac = _soft_ellipsoid(coords, centre, semi)
    brain = brain_frac >= 0.5
    wm = _soft_ellipsoid(coords, centre, semi - 4.0)  # a 4 mm cortex
    ventricles = np.maximum(
        _soft_ellipsoid(coords, (-9.0, -12.0, 16.0), (6.0, 24.0, 9.0)),
        _soft_ellipsoid(coords, (9.0, -12.0, 16.0), (6.0, 24.0, 9.0)),
    )
    thalami = np.maximum(
        _soft_ellipsoid(coords, (-11.0, -20.0, 4.0), (8.0, 13.0, 8.0)),
        _soft_ellipsoid(coords, (11.0, -20.0, 4.0), (8.0, 13.0, 8.0)),
    )
    wm = np.clip(wm - ventricles - thalami, 0.0, 1.0)
    csf_in = ventricles * brain
    gm = np.clip(brain - wm - csf_in, 0.0, 1.0)
    affine, maps = _crop_to_head(affine, brain, brain, csf_in, gm, wm)
    brain, csf_in, gm, wm = maps[0], *(m.astype(np.float32) for m in maps[1:])
    return _finish_anatomy("analytic", affine, brain, csf_in, gm, wm, None)


@functools.lru_cache(maxsize=2)
def cached_anatomy(kind: str) -> Anatomy:
    if kind == "analytic":
        return _analytic_anatomy()
    return _mni152_anatomy(template_dir())


def load_anatomy(anatomy: str) -> Anatomy:
    anatomy = look_up(anatomy, ("auto", "mni152", "analytic"), "anatomy", ignore_case=True)
    if anatomy == "analytic":
        return cached_anatomy("analytic")
    if template_dir() is None:
        if anatomy == "mni152":
            raise FileNotFoundError(
                "the MNI152 2009 template files shipped with nilearn (nilearn/datasets/data/"
                f"{_TEMPLATE_FILES['t1']} and the gm/wm maps) were not found; install nilearn>=0.10 "
                "or use anatomy='analytic'"
            )
        log.warning(
            "MNI152 template files not found in the nilearn package; the phantom uses the "
            "analytic ellipsoid head instead (install nilearn>=0.10 for realistic anatomy)"
        )
        return cached_anatomy("analytic")
    return cached_anatomy("mni152")
