"""A deterministic digital brain phantom: MRI, CT, PET and SPECT of one head with a known misalignment.

The phantom gives tests, ``medfuse demo`` and the registration benchmarks realistic 3D cases whose
ground truth is known exactly: an MRI (the reference scan) and a second scan on its own grid
(different voxel size, field of view and axis order), rigidly misaligned by a transform drawn from
``seed``.

Anatomy
    The ICBM 2009a nonlinear symmetric MNI152 template (T1 and gray/white matter probability maps) that nilearn
    ships inside its package (``nilearn/datasets/data/mni_icbm152_*``; read with nibabel, nilearn is
    never imported and nothing is downloaded). The brain mask is the template's (T1 > 0); CSF is the
    part of the brain mask that is neither gray nor white matter (ventricles, sulci) plus a 2.5 mm
    subarachnoid layer. A skull (1.5 mm inner and outer tables of cortical bone around 3.5 mm of
    diploe, 6.5 mm in all) and a 6 mm scalp are shells at fixed Euclidean distances outside the
    brain mask; below the template's lowest slice the brain stem continues as a cord, so the head
    ends in a narrow neck instead of a closed cap. Without the template files an analytic head
    (ellipsoids: cortex, white matter, ventricles, thalami) with the same shells is used instead and
    a warning is logged. The tissue model lives on a 1 mm grid, is built once per process
    (:func:`functools.lru_cache`) and is read-only.

World convention
    Everything is in **RAS+** millimetres (nibabel's convention: +x toward the patient's Right,
    +y Anterior, +z Superior). The reference world is MNI space, so the **left** hemisphere has
    **x < 0**. The optional marker (label 6, a 6 mm radius lesion) sits in the left hemisphere at
    ``MARKER_CENTER_MM`` = (-30, -18, 28) mm, which makes the phantom chiral: a left-right flip of the
    moving scan cannot go unnoticed.

Transform convention
    ``reference_to_moving`` (4x4) maps a point ``p`` of the reference (MRI) world to the point
    ``q = reference_to_moving @ p`` of the moving scan's world that shows the **same anatomy**. The
    moving scan's intensity at its world point ``q`` is therefore the tissue model's intensity at
    ``inv(reference_to_moving) @ q``. The transform is a rotation about the head centre
    ``HEAD_CENTER_MM`` followed by a translation: ``q = R (p - c) + c + t`` with
    ``R = Rz(rz) @ Ry(ry) @ Rx(rx)`` (right-handed rotations about the RAS x, y, z axes, degrees).
    A registration that estimates ``reference_to_moving`` perfectly has zero TRE
    (:meth:`PhantomCase.tre`). To bring the moving scan onto the MRI grid, sample it at
    ``reference_to_moving @ (world of each MRI voxel)``.

Scans (default grids; ``make_case(moving_shape=..., moving_spacing=..., moving_axes=...)`` change them)
    ========= ========== ====================== ============= ==========================================
    contrast  modality   axes (i, j, k)         spacing (mm)  contrast and degradation
    ========= ========== ====================== ============= ==========================================
    ``t1``    ``"MR"``   R, A, S (reference);   1.5 iso       template T1 in the brain (WM ~880,
                         P, I, R as moving scan               GM ~670 a.u.); Rician noise, bias field
    ``t2``    ``"MR"``   L, I, P (coronal)      1.2 x 1.2 x 3 CSF 1000 > GM 560 > WM 400 a.u.; Rician
                                                              noise, bias field
    ``ct``    ``"CT"``   L, P, S (axial, DICOM) 1 x 1 x 2.5   HU: air -1000, CSF 8, WM 27, GM 38,
                                                              diploe 750, cortical bone 1600; slice
                                                              profile; Gaussian noise (6 HU)
    ``pet``   ``"PT"``   L, A, S (axial)        2.5 x 2.5 x 3 FDG-like Bq/mL: GM 42000, WM 11500 (3.65x);
                                                              5.4 mm FWHM; Poisson-like noise
    ``spect`` ``"NM"``   P, I, L (sagittal)     4 iso         perfusion-like counts: GM 60, WM 26
                                                              (2.3x); 9.4 mm FWHM; Poisson noise
    ========= ========== ====================== ============= ==========================================

Arrays are float32, indexed ``(i, j, k)`` like nibabel, with voxel-to-RAS affines.

Example:
    >>> from medfuse.phantom import make_case
    >>> case = make_case("pet", seed=3)
    >>> case.mri.modality, case.moving.modality
    ('MR', 'PT')
    >>> float(case.tre(case.reference_to_moving).max())
    0.0
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.errors import look_up
from medfuse.volume import Volume

__all__ = [
    "PhantomCase",
    "make_case",
    "make_volume",
    "rigid_matrix",
    "template_dir",
    "clear_cache",
    "LABELS",
    "MODALITIES",
    "MARKER_CENTER_MM",
    "MARKER_RADIUS_MM",
    "HEAD_CENTER_MM",
]

log = logging.getLogger(__name__)

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
_TISSUES = ("csf", "gm", "wm", "bone", "marrow", "scalp")

# Shells outside the brain mask: outer boundary (mm from the brain) of each layer.
_CSF_OUT, _INNER_TABLE, _DIPLOE, _OUTER_TABLE, _SCALP = 2.5, 4.0, 7.5, 9.0, 15.0
_NECK_MM = 24  # the brain stem is extended this far below the template (as a cord)
_T1_TEMPLATE_SCALE = 4.0  # template T1 (0..255) to phantom MR units (WM ~ 880)


@dataclass(frozen=True)
class _Grid:
    """A default scan grid: axis codes, shape and voxel size (mm); shape x spacing is its field of view."""

    axes: str
    shape: tuple
    spacing: tuple


#: The reference MRI's grid: RAS-aligned, 1.5 mm isotropic, 192 x 228 x 180 mm around the head.
_REFERENCE_GRID = _Grid("RAS", (128, 152, 120), (1.5, 1.5, 1.5))
#: A T1 used as the *moving* scan of :func:`make_case`: sagittal, like most 3D T1 acquisitions.
_MOVING_T1_GRID = _Grid("PIR", (152, 120, 128), (1.5, 1.5, 1.5))


@dataclass(frozen=True)
class _Contrast:
    """How one modality renders: tissue values, units, resolution and noise."""

    modality: str  # DICOM-style modality of the Volume
    values: dict  # tissue -> value; keys: air + _TISSUES + marker
    units: str
    grid: "_Grid"  # default grid of a scan in this contrast
    psf_fwhm_mm: float = 0.0  # isotropic resolution of the scanner (PET/SPECT)
    postfilter_fwhm_mm: float = 0.0  # reconstruction filter applied after the noise
    inplane_fwhm_mm: float = 0.0  # CT: in-plane resolution; slice axis blurred by its thickness
    noise: str = "none"  # "rician", "gaussian", "poisson"
    noise_level: float = 0.0  # rician/gaussian sigma, or poisson counts per unit value
    clip: tuple = (None, None)


_CONTRASTS = {
    "t1": _Contrast(
        "MR",
        dict(air=0.0, csf=160.0, gm=660.0, wm=880.0, bone=40.0, marrow=440.0, scalp=680.0, marker=330.0),
        "a.u.", _REFERENCE_GRID, noise="rician", noise_level=18.0,
    ),
    "t2": _Contrast(
        "MR",
        dict(air=0.0, csf=1000.0, gm=560.0, wm=400.0, bone=30.0, marrow=350.0, scalp=500.0, marker=900.0),
        "a.u.", _Grid("LIP", (176, 150, 80), (1.2, 1.2, 3.0)), noise="rician", noise_level=15.0,
    ),
    "ct": _Contrast(
        "CT",
        dict(air=-1000.0, csf=8.0, gm=38.0, wm=27.0, bone=1600.0, marrow=750.0, scalp=20.0, marker=70.0),
        "HU", _Grid("LPS", (240, 240, 86), (1.0, 1.0, 2.5)), inplane_fwhm_mm=0.7,
        noise="gaussian", noise_level=6.0, clip=(-1024.0, 3071.0),
    ),
    "pet": _Contrast(
        "PT",
        # FDG at 370 MBq in 70 kg: SUV 1 = 5286 Bq/mL; GM SUV ~8, WM SUV ~2.2, lesion SUV ~21
        dict(air=0.0, csf=1500.0, gm=42000.0, wm=11500.0, bone=2000.0, marrow=3500.0, scalp=4500.0,
             marker=110000.0),
        "BQML", _Grid("LAS", (96, 96, 72), (2.5, 2.5, 3.0)), psf_fwhm_mm=5.0, postfilter_fwhm_mm=2.0,
        noise="poisson", noise_level=60.0 / 11500.0, clip=(0.0, None),
    ),
    "spect": _Contrast(
        "NM",
        dict(air=0.0, csf=6.0, gm=60.0, wm=26.0, bone=8.0, marrow=10.0, scalp=12.0, marker=130.0),
        "counts", _Grid("PIL", (64, 56, 64), (4.0, 4.0, 4.0)), psf_fwhm_mm=8.5, postfilter_fwhm_mm=4.0,
        noise="poisson", noise_level=0.5, clip=(0.0, None),
    ),
}

#: Contrasts :func:`make_volume` renders; :func:`make_case` takes any but ``"t1"`` as the moving scan
#: (``"t1"`` too, for mono-modal tests).
MODALITIES = tuple(_CONTRASTS)

#: PET: multiply Bq/mL by this to get SUVbw (70 kg, 370 MBq, decay-corrected to injection).
_PET_SUV_FACTOR = 70.0 * 1000.0 / 370e6

_AXIS_VECTORS = {
    "R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1),
}


# --------------------------------------------------------------------------------------------------
# anatomy


@dataclass(frozen=True)
class _Anatomy:
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


def _finish_anatomy(kind, affine, brain, csf_in, gm, wm, t1) -> _Anatomy:
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
            255 - sum(fractions[k].astype(np.int16) for k in _TISSUES),  # air
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
    return _Anatomy(kind, affine, fractions, brain, labels, t1)


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


def _mni152_anatomy(folder: Path) -> _Anatomy:
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


def _analytic_anatomy() -> _Anatomy:
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
def _anatomy(kind: str) -> _Anatomy:
    if kind == "analytic":
        return _analytic_anatomy()
    return _mni152_anatomy(template_dir())


def clear_cache() -> None:
    """Free the cached tissue model and rendered model intensities (about 70 MB + 30 MB per contrast)."""
    _model_level.cache_clear()
    _anatomy.cache_clear()


def _load_anatomy(anatomy: str) -> _Anatomy:
    anatomy = look_up(anatomy, ("auto", "mni152", "analytic"), "anatomy", ignore_case=True)
    if anatomy == "analytic":
        return _anatomy("analytic")
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
        return _anatomy("analytic")
    return _anatomy("mni152")


# --------------------------------------------------------------------------------------------------
# geometry


def rigid_matrix(rotation_deg=(0.0, 0.0, 0.0), translation_mm=(0.0, 0.0, 0.0), center_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A 4x4 rigid transform ``q = R (p - c) + c + t`` in RAS millimetres.

    Args:
        rotation_deg: rotations ``(rx, ry, rz)`` in degrees about the RAS x, y and z axes
            (right-handed); ``R = Rz @ Ry @ Rx``, so x is applied first.
        translation_mm: ``t``, in mm, applied after the rotation.
        center_mm: ``c``, the fixed point of the rotation.

    Returns:
        (4, 4) float64 homogeneous matrix acting on column vectors ``(x, y, z, 1)``.
    """
    rx, ry, rz = np.deg2rad(np.asarray(rotation_deg, dtype=np.float64))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    r_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    r_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rot = r_z @ r_y @ r_x
    c = np.asarray(center_mm, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = c - rot @ c + np.asarray(translation_mm, dtype=np.float64)
    return out


def _axes_matrix(axes: str) -> np.ndarray:
    """Direction cosines (columns, RAS) of axis codes such as ``"LPS"``."""
    code = str(axes).upper()
    if len(code) != 3 or any(ch not in _AXIS_VECTORS for ch in code):
        raise ValueError(f"axes must be three letters from R/L, A/P, S/I (e.g. 'LPS'); got {axes!r}")
    mat = np.array([_AXIS_VECTORS[ch] for ch in code], dtype=np.float64).T
    if abs(np.linalg.det(mat)) != 1.0:
        raise ValueError(f"axes {axes!r} must name each of the R-L, A-P and S-I axes once")
    return mat


def _grid_affine(shape, spacing, axes: str, center_mm) -> np.ndarray:
    """Voxel-to-RAS affine of a grid whose centre voxel position is ``center_mm``."""
    affine = np.eye(4)
    affine[:3, :3] = _axes_matrix(axes) @ np.diag(spacing)
    middle = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    affine[:3, 3] = np.asarray(center_mm, dtype=np.float64) - affine[:3, :3] @ middle
    return affine


def _three(value, name: str, positive: bool = True) -> np.ndarray:
    """``value`` (a number or three) as a (3,) float64 array, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.ndim == 0:
        arr = np.full(3, float(arr))
    if arr.shape != (3,) or not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        kind = "three positive numbers" if positive else "three finite numbers"
        raise ValueError(f"{name} must be a number or {kind}; got {value!r}")
    return arr.astype(np.float64)


def _resolve_grid(default: _Grid, shape, spacing) -> tuple[tuple, np.ndarray]:
    """Shape and spacing of a scan: defaults, or the one given with the default field of view.

    Given only ``shape``, in-plane pixels (axes 0 and 1) are square and the slice axis (2) covers
    the default field of view; given only ``spacing``, the shape covers the default field of view.
    """
    fov = np.asarray(default.shape) * np.asarray(default.spacing)
    if shape is not None:
        shape_arr = _three(shape, "shape")
        if np.any(shape_arr != np.round(shape_arr)):
            raise ValueError(f"shape must be three positive integers; got {shape!r}")
        shape = tuple(int(n) for n in shape_arr)
    if spacing is not None:
        spacing = _three(spacing, "spacing")
    if shape is None and spacing is None:
        return tuple(default.shape), np.asarray(default.spacing, dtype=np.float64)
    if spacing is None:
        inplane = float(np.max(fov[:2] / np.asarray(shape[:2])))
        spacing = np.array([inplane, inplane, fov[2] / shape[2]])
    if shape is None:
        shape = tuple(int(max(1, round(f))) for f in fov / spacing)
    return shape, spacing


# --------------------------------------------------------------------------------------------------
# rendering


def _model_intensity(anat: _Anatomy, contrast_name: str) -> np.ndarray:
    """The contrast's noiseless intensity on the 1 mm model grid (float32)."""
    values = _CONTRASTS[contrast_name].values
    air = values["air"]
    out = np.zeros(anat.labels.shape, dtype=np.float32)
    for tissue in _TISSUES:
        weight = np.float32((values[tissue] - air) / 255.0)
        if weight:
            out += anat.fractions[tissue] * weight
    if contrast_name == "t1" and anat.t1 is not None:
        out[anat.brain] = anat.t1[anat.brain] * np.float32(_T1_TEMPLATE_SCALE) - np.float32(air)
    out += np.float32(air)
    return out


@functools.lru_cache(maxsize=6)
def _model_level(kind: str, contrast_name: str, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The contrast's model intensity block-averaged by ``factor`` (read-only) and its affine."""
    anat = _anatomy(kind)
    arr = _block_mean(_model_intensity(anat, contrast_name), factor)
    arr.flags.writeable = False
    return arr, _level_affine(anat.affine, factor)


def _block_mean(arr: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return arr
    x, y, z = (n // factor for n in arr.shape)
    return arr.reshape(x, factor, y, factor, z, factor).mean(axis=(1, 3, 5), dtype=np.float32)


def _level_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    scale = np.eye(4)
    scale[:3, :3] *= factor
    scale[:3, 3] = (factor - 1) / 2.0
    return affine @ scale


def _resample(model: np.ndarray, model_affine, target_affine, shape, reference_to_scan, order, cval) -> np.ndarray:
    """Sample ``model`` at the reference-world points that each target voxel shows.

    SimpleITK does the interpolation (multi-threaded): its transform maps an output (scan) LPS
    point to the input (model, reference-world) LPS point, ``F inv(reference_to_scan) F`` with
    ``F = diag(-1, -1, 1)``; the RAS/LPS and index-order conversions are :mod:`medfuse.io.sitk`'s.

    Args:
        model: ``(i, j, k)`` array (float32 or uint8) on the grid ``model_affine``.
        order: 1 for trilinear, 0 for nearest neighbour.
        cval: value outside the model.

    Returns:
        ``(i, j, k)`` array of ``shape`` and ``model``'s dtype.
    """
    import SimpleITK as sitk

    from medfuse.io.sitk import from_sitk, to_sitk
    from medfuse.volume import LPS_RAS_FLIP, lps_from_affine

    image = to_sitk(Volume(np.zeros((1, 1, 1)), model_affine), array=model)  # the volume gives geometry only
    origin, spacing, direction = lps_from_affine(target_affine)
    scan_to_ref_lps = LPS_RAS_FLIP @ np.linalg.inv(reference_to_scan) @ LPS_RAS_FLIP
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(scan_to_ref_lps[:3, :3].ravel().tolist())
    transform.SetTranslation(scan_to_ref_lps[:3, 3].tolist())
    interpolator = sitk.sitkLinear if order == 1 else sitk.sitkNearestNeighbor
    out = sitk.Resample(image, [int(n) for n in shape], transform, interpolator, origin, spacing, direction,
                        float(cval), image.GetPixelID())
    vol = from_sitk(out)
    if not np.allclose(vol.affine, target_affine, atol=1e-4):  # pragma: no cover - a conversion bug
        raise RuntimeError("phantom resampling produced a grid other than the one requested")
    return vol.array if model.dtype == np.float32 else vol.array.astype(model.dtype)


def _marker_fraction(target_affine, shape, reference_to_scan, radius_mm) -> tuple[tuple, np.ndarray] | None:
    """The marker sphere's partial-volume fraction on the part of the target grid around it."""
    centre = np.asarray(MARKER_CENTER_MM)
    spacing = np.linalg.norm(target_affine[:3, :3], axis=0)
    reach = radius_mm + 2.0 * spacing.max()
    corners = np.array(np.meshgrid(*[[-reach, reach]] * 3, indexing="ij")).reshape(3, -1).T + centre
    to_index = np.linalg.inv(target_affine) @ reference_to_scan
    idx = corners @ to_index[:3, :3].T + to_index[:3, 3]
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, np.asarray(shape))
    hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 0, np.asarray(shape))
    if np.any(hi <= lo):
        return None
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), axis=-1)
    to_ref = np.linalg.inv(reference_to_scan) @ target_affine
    world = grid @ to_ref[:3, :3].T + to_ref[:3, 3]
    dist = np.linalg.norm(world - centre, axis=-1)
    width = float(np.mean(spacing))
    frac = np.clip((radius_mm - dist) / width + 0.5, 0.0, 1.0).astype(np.float32)
    return tuple(slice(a, b) for a, b in zip(lo, hi)), frac


def _gaussian_blur(arr: np.ndarray, fwhm_mm, spacing, intrinsic_mm: float = 0.0) -> np.ndarray:
    """Blur to a resolution of ``fwhm_mm`` (per axis), given that the data already has ``intrinsic_mm``."""
    from scipy import ndimage as ndi

    fwhm = np.sqrt(np.clip(np.asarray(fwhm_mm, dtype=np.float64) ** 2 - intrinsic_mm**2, 0.0, None))
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / np.asarray(spacing)
    if not np.any(sigma > 0.05):
        return arr
    return ndi.gaussian_filter(arr, sigma=np.where(sigma > 0.05, sigma, 0.0), mode="nearest", output=np.float32)


def _bias_field(shape, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative MR bias field (about +-10 %), separable low-order polynomial."""
    coef = rng.normal(0.0, [[0.06, 0.03]] * 3)  # linear and quadratic term per axis
    log_field = np.zeros(shape, dtype=np.float32)
    for axis, n in enumerate(shape):
        u = np.linspace(-1.0, 1.0, n, dtype=np.float32)
        profile = coef[axis, 0] * u + coef[axis, 1] * (u * u - 1.0 / 3.0)
        log_field += profile.reshape([-1 if a == axis else 1 for a in range(3)]).astype(np.float32)
    return np.exp(log_field, out=log_field)


def make_volume(
    modality: str,
    shape=None,
    spacing=None,
    *,
    axes: str | None = None,
    affine: np.ndarray | None = None,
    reference_to_scan: np.ndarray | None = None,
    center_mm=None,
    seed: int | np.random.Generator = 0,
    marker: bool = True,
    noise: bool = True,
    blur: bool = True,
    anatomy: str = "auto",
) -> Volume:
    """Render the phantom head in one contrast on one grid.

    The tissue model is sampled (trilinear) at the reference-world point each voxel shows, the
    marker is added analytically, then the scan is blurred and made noisy in its own voxel space.

    Args:
        modality: ``"t1"``, ``"t2"``, ``"ct"``, ``"pet"`` or ``"spect"`` (see the module table).
        shape: grid shape ``(i, j, k)``; default per contrast (see :func:`make_case` for the rule
            used when only one of ``shape``/``spacing`` is given).
        spacing: voxel size in mm along ``(i, j, k)``.
        axes: axis codes of the grid (``"LPS"``: i toward Left, j Posterior, k Superior); default per
            contrast. Ignored when ``affine`` is given.
        affine: a full voxel-to-RAS affine for the grid (overrides ``spacing``/``axes``/``center_mm``;
            ``shape`` is then required).
        reference_to_scan: 4x4 map from reference (MNI, RAS mm) points to this scan's world points
            showing the same anatomy; identity by default.
        center_mm: RAS position (this scan's world) of the grid centre; default
            ``reference_to_scan @ HEAD_CENTER_MM``.
        seed: seed or generator of the noise (and MR bias field).
        marker: add the left-hemisphere lesion.
        noise: add the modality's noise (and MR bias field).
        blur: apply the scanner resolution (CT slice profile, PET/SPECT PSF).
        anatomy: ``"auto"`` (MNI152 when available, else analytic with a warning), ``"mni152"`` or
            ``"analytic"``.

    Returns:
        A :class:`~medfuse.volume.Volume`: float32 array ``(i, j, k)``, RAS affine, modality
        ``"MR"``/``"CT"``/``"PT"``/``"NM"``, ``meta["units"]`` (``"a.u."``, ``"HU"``, ``"BQML"``,
        ``"counts"``) and ``meta["phantom"]`` describing how it was made.
    """
    name = look_up(modality, MODALITIES, "modality", ignore_case=True)
    contrast = _CONTRASTS[name]
    anat = _load_anatomy(anatomy)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ref_to_scan = np.eye(4) if reference_to_scan is None else np.asarray(reference_to_scan, dtype=np.float64)
    if ref_to_scan.shape != (4, 4) or not np.all(np.isfinite(ref_to_scan)):
        raise ValueError(f"reference_to_scan must be a finite 4x4 matrix; got shape {ref_to_scan.shape}")

    if affine is not None:
        if shape is None:
            raise ValueError("make_volume(affine=...) needs shape as well")
        target_affine = np.asarray(affine, dtype=np.float64)
        shape = tuple(int(n) for n in _three(shape, "shape"))
        spacing = np.linalg.norm(target_affine[:3, :3], axis=0)
    else:
        default = contrast.grid
        shape, spacing = _resolve_grid(default, shape, spacing)
        if center_mm is None:
            center_mm = (ref_to_scan @ np.r_[HEAD_CENTER_MM, 1.0])[:3]
        target_affine = _grid_affine(shape, spacing, axes or default.axes, _three(center_mm, "center_mm", False))

    # sample from a block-averaged model when the grid is coarse (anti-aliasing): the model's
    # voxels are at most half the scan's smallest voxel size
    factor = 1
    while factor < 4 and 2 * factor * 2 <= spacing.min() + 1e-6:
        factor *= 2
    model, model_affine = _model_level(anat.kind, name, factor)
    model_mm = float(np.mean(np.linalg.norm(model_affine[:3, :3], axis=0)))
    arr = _resample(model, model_affine, target_affine, shape, ref_to_scan, order=1, cval=contrast.values["air"])

    if marker:
        found = _marker_fraction(target_affine, shape, ref_to_scan, MARKER_RADIUS_MM)
        if found is not None:
            where, frac = found
            arr[where] += frac * (np.float32(contrast.values["marker"]) - arr[where])

    # the sampled model already has about its voxel size (``model_mm``) as resolution; the blur
    # adds what the scanner's point spread function has beyond that, in the scan's own voxel space
    inplane = contrast.inplane_fwhm_mm
    if blur and inplane:  # CT: in-plane resolution and the slice profile (k is the slice axis)
        arr = _gaussian_blur(arr, [inplane, inplane, float(spacing[2])], spacing, intrinsic_mm=model_mm)
    psf, post = contrast.psf_fwhm_mm, contrast.postfilter_fwhm_mm
    if blur and psf and not noise:
        arr = _gaussian_blur(arr, [np.hypot(psf, post)] * 3, spacing, intrinsic_mm=model_mm)
    elif blur and psf:
        arr = _gaussian_blur(arr, [psf] * 3, spacing, intrinsic_mm=model_mm)

    if noise:
        if contrast.noise == "rician":
            arr *= _bias_field(shape, rng)
            sigma = np.float32(contrast.noise_level)
            real = arr + sigma * rng.standard_normal(shape, dtype=np.float32)
            imag = sigma * rng.standard_normal(shape, dtype=np.float32)
            arr = np.hypot(real, imag, out=real)
        elif contrast.noise == "gaussian":
            arr += np.float32(contrast.noise_level) * rng.standard_normal(shape, dtype=np.float32)
        elif contrast.noise == "poisson":
            scale = contrast.noise_level
            arr = (rng.poisson(np.clip(arr, 0, None) * scale) / scale).astype(np.float32)
            if blur and post:
                arr = _gaussian_blur(arr, [post] * 3, spacing)
    lo, hi = contrast.clip
    if lo is not None or hi is not None:
        np.clip(arr, lo, hi, out=arr)

    meta: dict[str, Any] = {
        "units": contrast.units,
        "phantom": {
            "contrast": name,
            "anatomy": anat.kind,
            "marker": bool(marker),
            "noise": bool(noise),
            "blur": bool(blur),
            "reference_to_scan": ref_to_scan.tolist(),
        },
    }
    if name == "pet":
        meta["suvbw_factor"] = _PET_SUV_FACTOR
    return Volume(arr, target_affine, modality=contrast.modality,
                  meta=meta, source=f"phantom:{name}")


def _label_volumes(anat: _Anatomy, reference: Volume, marker: bool) -> tuple[Volume, Volume]:
    """Tissue labels and brain mask on the reference grid (nearest neighbour)."""
    coded = _resample(anat.labels, anat.affine, reference.affine, reference.shape, np.eye(4), order=0, cval=0)
    labels = (coded & 0x7F).astype(np.float32)
    brain = (coded >> 7).astype(np.float32)
    if marker:
        found = _marker_fraction(reference.affine, reference.shape, np.eye(4), MARKER_RADIUS_MM)
        if found is not None:
            where, frac = found
            inside = frac >= 0.5
            labels[where][inside] = LABELS["marker"]
            brain[where][inside] = 1.0
    meta = {"phantom": {"anatomy": anat.kind}}
    return (
        Volume(labels, reference.affine, modality=None, meta={**meta, "labels": dict(LABELS)}, source="phantom:labels"),
        Volume(brain, reference.affine, modality=None, meta=meta, source="phantom:brain_mask"),
    )


# --------------------------------------------------------------------------------------------------
# cases


@dataclass
class PhantomCase:
    """One phantom registration/fusion case with its ground truth.

    Attributes:
        mri: T1 MRI on the reference grid (modality ``"MR"``, RAS axes); the reference scan.
        moving: the other scan on its own grid (``"CT"``, ``"PT"``, ``"NM"`` or ``"MR"``).
        modality: ``"ct"``, ``"pet"``, ``"spect"``, ``"t2"`` (or ``"t1"``).
        reference_to_moving: (4, 4) float64 map of reference-world RAS points to the moving scan's
            world RAS points showing the same anatomy (ground truth).
        brain_mask: float32 0/1 brain mask on the MRI grid.
        labels: float32 tissue labels on the MRI grid (see :data:`LABELS`).
        marker_center_mm: reference-world RAS position of the marker (``None`` without marker).
        seed: the seed the case was made from.
    """

    mri: Volume
    moving: Volume
    modality: str
    reference_to_moving: np.ndarray
    brain_mask: Volume
    labels: Volume
    marker_center_mm: np.ndarray | None = None
    seed: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def moving_to_reference(self) -> np.ndarray:
        """The inverse transform: moving-world RAS points to reference-world RAS points."""
        return np.linalg.inv(self.reference_to_moving)

    def target_points(self, n: int = 200, seed: int = 0) -> np.ndarray:
        """``(n, 3)`` RAS mm points (reference world) uniformly spread inside the brain mask.

        Each point is a random brain-mask voxel of the MRI grid plus a uniform offset within that
        voxel, so the set is deterministic given ``seed``.
        """
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of points; got {n!r}")
        rng = np.random.default_rng(seed)
        voxels = np.argwhere(self.brain_mask.array > 0.5)
        if len(voxels) == 0:
            raise ValueError("the phantom's brain mask is empty on this MRI grid; enlarge mri_shape")
        pick = voxels[rng.integers(0, len(voxels), size=int(n))]
        index = pick + rng.uniform(-0.5, 0.5, size=pick.shape)
        return self.mri.world_coordinates(index)

    def tre(self, estimated_reference_to_moving: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
        """Target registration error (mm) of an estimated transform, per point.

        Args:
            estimated_reference_to_moving: (4, 4) estimate of :attr:`reference_to_moving` (same
                direction: reference world to moving world, RAS mm).
            points: ``(N, 3)`` reference-world RAS points; default :meth:`target_points`.

        Returns:
            ``(N,)`` float64 distances ``|estimate @ p - truth @ p|`` in mm.
        """
        est = np.asarray(estimated_reference_to_moving, dtype=np.float64)
        if est.shape != (4, 4):
            raise ValueError(f"estimated_reference_to_moving must be 4x4; got shape {est.shape}")
        pts = self.target_points() if points is None else np.atleast_2d(np.asarray(points, dtype=np.float64))
        if pts.shape[1] != 3:
            raise ValueError(f"points must be (N, 3) RAS mm; got shape {pts.shape}")
        diff = (est[:3, :3] - self.reference_to_moving[:3, :3]) @ pts.T
        diff += (est[:3, 3] - self.reference_to_moving[:3, 3])[:, None]
        return np.linalg.norm(diff, axis=0)


def _draw(value, limit: float, rng: np.random.Generator, name: str) -> np.ndarray:
    """The given per-axis value, or a uniform draw in [-limit, limit] for each axis."""
    if value is None and not (np.isfinite(limit) and limit >= 0):
        raise ValueError(f"max_{name} must be a finite number >= 0; got {limit!r}")
    # always drawn, so a given rotation does not change the translation drawn from the same seed
    draw = rng.uniform(-1.0, 1.0, size=3) * (float(limit) if np.isfinite(limit) else 0.0)
    if value is None:
        return draw
    return _three(value, name, positive=False)


def make_case(
    modality: str = "pet",
    seed: int = 0,
    *,
    rotation_deg=None,
    translation_mm=None,
    max_rotation_deg: float = 15.0,
    max_translation_mm: float = 20.0,
    mri_shape=None,
    mri_spacing=None,
    moving_shape=None,
    moving_spacing=None,
    moving_axes: str | None = None,
    marker: bool = True,
    noise: bool = True,
    blur: bool = True,
    anatomy: str = "auto",
) -> PhantomCase:
    """Make a deterministic MRI + ``modality`` case with a known rigid misalignment.

    Grids: the MRI is RAS-aligned, 1.5 mm isotropic, ``(128, 152, 120)``; the moving scan's defaults
    are in the module table. Given only a shape, a scan keeps its default field of view (square
    in-plane pixels on axes i, j; the slice axis k spans the default extent), e.g.
    ``mri_shape=(256, 256, 180)`` gives 0.89 x 0.89 x 1 mm and ``moving_shape=(512, 512, 120)`` for
    CT gives 0.47 x 0.47 x 1.8 mm. Given only a spacing, the shape covers the default field of
    view. Both grids are centred on the head.

    Args:
        modality: the moving scan: ``"ct"``, ``"pet"``, ``"spect"``, ``"t2"`` (or ``"t1"``).
        seed: makes everything deterministic: the misalignment, the noise, the bias fields.
        rotation_deg: ``(rx, ry, rz)`` degrees about the RAS axes through ``HEAD_CENTER_MM`` (a
            number means all three); ``None`` draws each uniformly in ``[-max_rotation_deg, +]``.
            Give 0 (and ``translation_mm=0``) for an aligned case.
        translation_mm: ``(tx, ty, tz)`` mm; ``None`` draws each in ``[-max_translation_mm, +]``.
        max_rotation_deg: bound of the random rotations.
        max_translation_mm: bound of the random translations.
        mri_shape: shape of the MRI grid.
        mri_spacing: voxel size (mm) of the MRI grid.
        moving_shape: shape of the moving grid.
        moving_spacing: voxel size (mm) of the moving grid.
        moving_axes: axis codes of the moving grid (default per modality, e.g. ``"LPS"`` for CT).
        marker: add the left-hemisphere lesion (label 6) to every scan.
        noise: add noise (and MR bias fields).
        blur: apply the scanners' resolution.
        anatomy: ``"auto"``, ``"mni152"`` or ``"analytic"`` (see :func:`make_volume`).

    Returns:
        A :class:`PhantomCase`; ``reference_to_moving`` maps reference (MRI) world RAS points to
        the moving scan's world RAS points (``q = R (p - c) + c + t``, see :func:`rigid_matrix`).

    Raises:
        ValueError: an unknown modality or anatomy, or a malformed shape/spacing/rotation.
    """
    name = look_up(modality, MODALITIES, "modality", ignore_case=True)
    seq = np.random.SeedSequence(int(seed))
    geometry_rng, mri_rng, moving_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    rotation = _draw(rotation_deg, max_rotation_deg, geometry_rng, "rotation_deg")
    translation = _draw(translation_mm, max_translation_mm, geometry_rng, "translation_mm")
    ref_to_moving = rigid_matrix(rotation, translation, HEAD_CENTER_MM)

    anat = _load_anatomy(anatomy)
    anatomy = anat.kind
    mri = make_volume("t1", mri_shape, mri_spacing, seed=mri_rng, marker=marker, noise=noise,
                      blur=blur, anatomy=anatomy)
    if name == "t1":  # a second T1 gets a grid of its own (sagittal), not the reference's
        moving_shape, moving_spacing = _resolve_grid(_MOVING_T1_GRID, moving_shape, moving_spacing)
        moving_axes = moving_axes or _MOVING_T1_GRID.axes
    moving = make_volume(name, moving_shape, moving_spacing, axes=moving_axes, reference_to_scan=ref_to_moving,
                         seed=moving_rng, marker=marker, noise=noise, blur=blur, anatomy=anatomy)
    labels, brain_mask = _label_volumes(anat, mri, marker)
    meta = {"rotation_deg": rotation.tolist(), "translation_mm": translation.tolist(),
            "center_mm": list(HEAD_CENTER_MM), "anatomy": anatomy}
    return PhantomCase(
        mri=mri,
        moving=moving,
        modality=name,
        reference_to_moving=ref_to_moving,
        brain_mask=brain_mask,
        labels=labels,
        marker_center_mm=np.asarray(MARKER_CENTER_MM, dtype=np.float64) if marker else None,
        seed=int(seed),
        meta=meta,
    )
