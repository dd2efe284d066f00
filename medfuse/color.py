"""Colour handling: pseudo-colour PET/SPECT (Harvard AANLIB style) and the colour maps of 3D fusion.

Fusion runs on one intensity channel: the luminance Y of YCbCr (ITU-R BT.601, full range, as in
JPEG and Pillow's ``convert("YCbCr")``). The chroma (Cb, Cr) of the functional image is put back
after fusion, so the output keeps the PET/SPECT colour coding while its brightness carries the
fused detail. Pillow does the conversions, which makes Y identical to what the metric calibration
and most published evaluations use. :func:`fuse_in_colour` is that path, used for 2D AANLIB colour
slices and for 3D PET/SPECT volumes alike.

Arrays are ``(..., 3)`` RGB on 0..255 (a 2D slice ``(H, W, 3)``, a volume ``(X, Y, Z, 3)``; any
numeric dtype, rounded to uint8 for conversion) and ``(...)`` channels on 0..255.

Colour maps (:data:`COLORMAPS`, :func:`apply_colormap`), each a small knot table interpolated
linearly into a 256-entry lookup table (no plotting library needed):

``aanlib_pet``
    The colour table of the AANLIB PET slices the networks were trained on, fitted to the 128
    distinct colours of the 247 ``pet_mri`` PNGs of ``shared/data/harvard`` (all reproduced within
    1.3 RGB units): black -> dark blue (0,0,123) -> blue (0,85,255) -> yellow (255,255,0) -> red
    -> magenta (255,0,255). Default for PET (``PT``).
``aanlib_spect``
    The colour table of the AANLIB SPECT slices (Tc-99m HMPAO/ECD, ``spect_mri``), fitted to the
    colours of the 310 PNGs (which are interpolated, 11.6k distinct colours): the chain of the
    most frequent colours, knots placed by the number of table steps between them; 90 % of the
    non-black pixels lie within 5 RGB units of the curve, 95 % within 10 (the rest is one case
    shown with the PET table). black -> dark teal (41,71,73) -> purple (82,0,143) -> magenta
    (161,66,127) -> (201,94,99) -> orange (252,113,3) -> pale pink (255,215,240). Default for
    SPECT (``NM``).
``hot_iron``
    The common PET "hot iron" / "heat" scale (OsiriX, ITK-SNAP): R ramps over [0, 0.5], G over
    [0.5, 1], B over [0.75, 1]: black -> red -> orange -> yellow -> white.
``hot_yellow``
    Hot iron stopped at yellow (no white end), so the hottest values stay distinct on a bright
    background; the QC overlay uses it.
``rainbow``
    black -> blue -> cyan -> green -> yellow -> red (the "rainbow" of PET workstations).
``viridis``
    matplotlib's perceptually uniform map, from its 11 published samples (0, 0.1, ..., 1).

The luminance of the AANLIB tables is not monotonic (yellow is brighter than the red/magenta
top of the PET table): it is their *colour* that carries the uptake, which is why the chroma is
kept after fusion.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "is_gray_rgb",
    "split_luminance",
    "merge_luminance",
    "COLORMAPS",
    "DEFAULT_COLORMAPS",
    "colormap_lut",
    "apply_colormap",
    "colormap_name",
    "default_colormap",
    "fuse_in_colour",
]

#: knot tables ``[(position in [0, 1], (R, G, B) on 0..255), ...]`` of each colour map
COLORMAPS: dict[str, tuple[tuple[float, tuple[int, int, int]], ...]] = {
    "aanlib_pet": (
        (0 / 127, (0, 0, 0)), (15 / 127, (0, 0, 123)), (31 / 127, (0, 85, 255)), (63 / 127, (255, 255, 0)),
        (95 / 127, (255, 0, 0)), (127 / 127, (255, 0, 255)),
    ),
    "aanlib_spect": (
        (0 / 49, (0, 0, 0)), (8 / 49, (41, 71, 73)), (18 / 49, (82, 0, 143)), (26 / 49, (161, 66, 127)),
        (31 / 49, (201, 94, 99)), (39 / 49, (252, 113, 3)), (49 / 49, (255, 215, 240)),
    ),
    "hot_iron": (
        (0.0, (0, 0, 0)), (0.5, (255, 0, 0)), (0.75, (255, 128, 0)), (1.0, (255, 255, 255)),
    ),
    "hot_yellow": (
        (0.0, (0, 0, 0)), (0.5, (255, 0, 0)), (1.0, (255, 255, 0)),
    ),
    "rainbow": (
        (0.0, (0, 0, 0)), (0.2, (0, 0, 255)), (0.4, (0, 255, 255)), (0.6, (0, 255, 0)), (0.8, (255, 255, 0)),
        (1.0, (255, 0, 0)),
    ),
    "viridis": tuple(
        (i / 10, tuple(int(h[k:k + 2], 16) for k in (0, 2, 4)))
        for i, h in enumerate(("440154", "482475", "414487", "355f8d", "2a788e", "21918c", "22a884", "44bf70",
                               "7ad151", "bddf26", "fde725"))
    ),
}

#: the colour map used for each functional modality when none is given. SPECT too is shown in the AANLIB PET
#: map: the top of the AANLIB SPECT map is nearly white (little chroma), so a SPECT hot spot over a dark MRI
#: region vanished from the fused image (seen on the phantom lesion); the PET map keeps it magenta. The networks
#: are unaffected: they see the luminance after it is mapped to their training intensities (medfuse.inference).
DEFAULT_COLORMAPS = {"PT": "aanlib_pet", "NM": "aanlib_pet"}


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Round and clip to uint8 (a new array). Floating input is rounded in its own precision
    (exact: every float32 is a float64, and its nearest integer is a float32), without a float64 copy."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a.copy()
    if a.dtype.kind == "f":
        r = np.rint(a)
        np.clip(r, 0, 255, out=r)
        return r.astype(np.uint8)
    return np.clip(np.rint(np.asarray(a, dtype=np.float64)), 0, 255).astype(np.uint8)


def colormap_name(name: str) -> str:
    """The canonical name of a colour map (case, ``-`` and spaces forgiven; typos get "did you mean")."""
    from medfuse.errors import look_up

    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    aliases = {"hot": "hot_iron", "heat": "hot_iron", "pet": "aanlib_pet", "spect": "aanlib_spect"}
    key = aliases.get(key, key)
    return look_up(key, list(COLORMAPS), "colour map (--colormap)", ignore_case=True)


def default_colormap(modality: str | None) -> str | None:
    """The colour map of a functional modality (``PT``/``NM``), None for the grey ones (MR, CT)."""
    return DEFAULT_COLORMAPS.get(str(modality).upper()) if modality else None


def colormap_lut(name: str, n: int = 256) -> np.ndarray:
    """The ``(n, 3)`` uint8 lookup table of a colour map (entry ``i`` is the colour of ``i / (n - 1)``)."""
    knots = COLORMAPS[colormap_name(name)]
    pos = np.array([p for p, _ in knots], dtype=np.float64)
    rgb = np.array([c for _, c in knots], dtype=np.float64)
    x = np.linspace(0.0, 1.0, n)
    return _to_uint8(np.stack([np.interp(x, pos, rgb[:, c]) for c in range(3)], axis=-1))


def apply_colormap(values: np.ndarray, name: str) -> np.ndarray:
    """Map values in [0, 1] (clipped) to ``(..., 3)`` float32 RGB on 0..255 through a colour map.

    The 256-entry table of :func:`colormap_lut` is interpolated linearly between its entries.
    """
    lut = colormap_lut(name).astype(np.float32).astype(np.float64)  # float32 entries, float64 arithmetic
    values = np.asarray(values, dtype=np.float32)
    flat = values.reshape(-1)
    out = np.empty((flat.size, 3), dtype=np.float32)
    # in chunks, one channel at a time: the same float64 arithmetic as the whole-array expression
    # (lut[lo] * (1 - frac) + lut[hi] * frac), without (N, 3) float64 temporaries (a 3D volume's
    # colour map took ~0.5 s and over 1 GB of temporaries)
    for start in range(0, flat.size, _CHUNK):
        x = np.clip(np.nan_to_num(flat[start : start + _CHUNK]), 0.0, 1.0) * (len(lut) - 1)
        lo = np.floor(x).astype(np.intp)
        hi = np.minimum(lo + 1, len(lut) - 1)
        frac = x - lo  # float64
        rest = 1.0 - frac
        for c in range(3):
            out[start : start + _CHUNK, c] = lut[lo, c] * rest + lut[hi, c] * frac
    return out.reshape(*values.shape, 3)


_CHUNK = 1 << 18


def is_gray_rgb(rgb: np.ndarray) -> bool:
    """True when all three channels are identical (an RGB file holding a gray image)."""
    rgb = np.asarray(rgb)
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


def _as_2d(a: np.ndarray) -> np.ndarray:
    """``(..., W, C)`` -> ``(prod(...), W, C)``: Pillow converts 2D images; the conversion is per pixel."""
    return a.reshape((-1, *a.shape[-2:])) if a.ndim >= 3 else a


def split_luminance(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``(..., 3)`` RGB (0..255) into float32 Y, Cb, Cr on 0..255 (Pillow's BT.601), shape ``(...)``."""
    from PIL import Image

    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3 or rgb.ndim < 3:
        raise ValueError(f"expected (..., 3) RGB with at least two spatial axes, got shape {rgb.shape}")
    flat = _as_2d(_to_uint8(rgb))
    ycc = np.asarray(Image.fromarray(np.ascontiguousarray(flat), mode="RGB").convert("YCbCr"), dtype=np.float32)
    ycc = ycc.reshape(rgb.shape)
    return ycc[..., 0], ycc[..., 1], ycc[..., 2]


def merge_luminance(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Combine a (fused) luminance with chroma planes into ``(..., 3)`` uint8 RGB.

    Args:
        y: luminance on 0..255 (float is rounded), e.g. ``255 * fused``; a slice or a volume.
        cb, cr: chroma planes from :func:`split_luminance` of the functional image (same shape).
    """
    from PIL import Image

    shape = np.shape(y)
    if np.shape(cb) != shape or np.shape(cr) != shape:
        raise ValueError(f"luminance {shape} and chroma {np.shape(cb)}, {np.shape(cr)} differ in shape")
    planes = []
    for p in (y, cb, cr):
        p8 = _to_uint8(p)
        p8 = p8.reshape(-1, shape[-1]) if p8.ndim >= 2 else p8.reshape(1, -1)
        planes.append(Image.fromarray(np.ascontiguousarray(p8), mode="L"))
    return np.asarray(Image.merge("YCbCr", planes).convert("RGB")).reshape(*shape, 3)


def fuse_in_colour(rgb: np.ndarray, fuse_luminance) -> tuple[np.ndarray, np.ndarray]:
    """The colour path of fusion, one implementation for 2D slices and 3D volumes.

    Args:
        rgb: the functional image in colour, ``(..., 3)`` on 0..255 (an AANLIB slice, or a PET/SPECT
            volume through :func:`apply_colormap`).
        fuse_luminance: ``f(y01) -> fused01``: fuses the functional luminance (Y / 255, in [0, 1]) with
            the anatomy and returns the fused luminance in [0, 1], same shape.

    Returns:
        ``(fused01, fused_rgb)``: the fused luminance in [0, 1] (float32) and the fused colour image
        ``(..., 3)`` float32 on 0..255 (fused Y with the functional image's Cb, Cr).
    """
    y, cb, cr = split_luminance(rgb)
    fused = np.asarray(fuse_luminance(y / 255.0), dtype=np.float32)
    return fused, merge_luminance(255.0 * fused, cb, cr).astype(np.float32)
