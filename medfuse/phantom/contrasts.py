"""How each phantom scan renders: its default grid, tissue values, units, resolution and noise."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Grid", "Contrast", "CONTRASTS", "MODALITIES", "REFERENCE_GRID", "MOVING_T1_GRID", "PET_SUV_FACTOR"]


@dataclass(frozen=True)
class Grid:
    """A default scan grid: axis codes, shape and voxel size (mm); shape x spacing is its field of view."""

    axes: str
    shape: tuple
    spacing: tuple


#: The reference MRI's grid: RAS-aligned, 1.5 mm isotropic, 192 x 228 x 180 mm around the head.
REFERENCE_GRID = Grid("RAS", (128, 152, 120), (1.5, 1.5, 1.5))
#: A T1 used as the *moving* scan of :func:`make_case`: sagittal, like most 3D T1 acquisitions.
MOVING_T1_GRID = Grid("PIR", (152, 120, 128), (1.5, 1.5, 1.5))


@dataclass(frozen=True)
class Contrast:
    """How one modality renders: tissue values, units, resolution and noise."""

    modality: str  # DICOM-style modality of the Volume
    values: dict  # tissue -> value; keys: air + TISSUES + marker
    units: str
    grid: "Grid"  # default grid of a scan in this contrast
    psf_fwhm_mm: float = 0.0  # isotropic resolution of the scanner (PET/SPECT)
    postfilter_fwhm_mm: float = 0.0  # reconstruction filter applied after the noise
    inplane_fwhm_mm: float = 0.0  # CT: in-plane resolution; slice axis blurred by its thickness
    noise: str = "none"  # "rician", "gaussian", "poisson"
    noise_level: float = 0.0  # rician/gaussian sigma, or poisson counts per unit value
    clip: tuple = (None, None)


CONTRASTS = {
    "t1": Contrast(
        "MR",
        dict(air=0.0, csf=160.0, gm=660.0, wm=880.0, bone=40.0, marrow=440.0, scalp=680.0, marker=330.0),
        "a.u.", REFERENCE_GRID, noise="rician", noise_level=18.0,
    ),
    "t2": Contrast(
        "MR",
        dict(air=0.0, csf=1000.0, gm=560.0, wm=400.0, bone=30.0, marrow=350.0, scalp=500.0, marker=900.0),
        "a.u.", Grid("LIP", (176, 150, 80), (1.2, 1.2, 3.0)), noise="rician", noise_level=15.0,
    ),
    "ct": Contrast(
        "CT",
        dict(air=-1000.0, csf=8.0, gm=38.0, wm=27.0, bone=1600.0, marrow=750.0, scalp=20.0, marker=70.0),
        "HU", Grid("LPS", (240, 240, 86), (1.0, 1.0, 2.5)), inplane_fwhm_mm=0.7,
        noise="gaussian", noise_level=6.0, clip=(-1024.0, 3071.0),
    ),
    "pet": Contrast(
        "PT",
        # FDG at 370 MBq in 70 kg: SUV 1 = 5286 Bq/mL; GM SUV ~8, WM SUV ~2.2, lesion SUV ~21
        dict(air=0.0, csf=1500.0, gm=42000.0, wm=11500.0, bone=2000.0, marrow=3500.0, scalp=4500.0,
             marker=110000.0),
        "BQML", Grid("LAS", (96, 96, 72), (2.5, 2.5, 3.0)), psf_fwhm_mm=5.0, postfilter_fwhm_mm=2.0,
        noise="poisson", noise_level=60.0 / 11500.0, clip=(0.0, None),
    ),
    "spect": Contrast(
        "NM",
        dict(air=0.0, csf=6.0, gm=60.0, wm=26.0, bone=8.0, marrow=10.0, scalp=12.0, marker=130.0),
        "counts", Grid("PIL", (64, 56, 64), (4.0, 4.0, 4.0)), psf_fwhm_mm=8.5, postfilter_fwhm_mm=4.0,
        noise="poisson", noise_level=0.5, clip=(0.0, None),
    ),
}

#: Contrasts :func:`make_volume` renders; :func:`make_case` takes any but ``"t1"`` as the moving scan
#: (``"t1"`` too, for mono-modal tests).
MODALITIES = tuple(CONTRASTS)

#: PET: multiply Bq/mL by this to get SUVbw (70 kg, 370 MBq, decay-corrected to injection).
PET_SUV_FACTOR = 70.0 * 1000.0 / 370e6
