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

import functools

import numpy as np

__all__ = [
    "GRAY_COLORMAPS",
    "colormap_for",
    "colour_record",
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
    "colormap_rgb8",
    "fuse_colormapped",
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
    return look_up(key, list(COLORMAPS), "colour map", ignore_case=True, option="colormap")


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


def colormap_rgb8(values: np.ndarray, name: str) -> np.ndarray:
    """``(..., 3)`` uint8 RGB of values in [0, 1] through a colour map: the same numbers as rounding
    :func:`apply_colormap` to uint8, without its float32 ``(..., 3)`` volume."""
    lut = colormap_lut(name).astype(np.float32).astype(np.float64)
    values = np.asarray(values, dtype=np.float32)
    flat = values.reshape(-1)
    out = np.empty((flat.size, 3), dtype=np.uint8)
    for start in range(0, flat.size, _CHUNK):
        out[start : start + _CHUNK] = _colours_at(_x_of(flat[start : start + _CHUNK]), lut)
    return out.reshape(*values.shape, 3)


def _pil_convert(rgb8: np.ndarray, mode: str) -> np.ndarray:
    """Pillow's per-pixel conversion of an ``(n, 3)`` uint8 chunk from RGB to YCbCr (``mode="YCbCr"``) or from YCbCr
    to RGB (``mode="RGB"``); ``(n, 3)`` uint8 out."""
    from PIL import Image

    src = "RGB" if mode == "YCbCr" else "YCbCr"
    img = Image.frombuffer(src, (rgb8.shape[0], 1), np.ascontiguousarray(rgb8), "raw", src, 0, 1)
    return np.asarray(img.convert(mode)).reshape(-1, 3)


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


def fuse_colormapped(values: np.ndarray, name: str, fuse_luminance, *, voxelwise=None,
                     chunk: int = _CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fuse_in_colour` of ``apply_colormap(values, name)`` (a PET/SPECT volume in its colour map), in as
    few passes over the volume as the fusion allows and without float ``(..., 3)`` volumes.

    The colour lookup, the luminance split (Pillow's BT.601 YCbCr, as :func:`split_luminance`) and, after
    fusion, the merge with the chroma and the rounding to uint8 go through small tables (:func:`_colour_tables`):
    per voxel, the cell of its value gives the id of its colour (a colour map's uint8 colours are a few
    hundred), the id its luminance, and the id with the fused luminance the output colour. A cell whose
    colour is not one colour throughout (a rounding step of a channel falls inside it, ~1 % of cells) is
    computed voxel by voxel as before. The numbers are those of
    ``fuse_in_colour(apply_colormap(values, name), fuse_luminance)`` (tested).

    Args:
        values: the normalized moving scan, float in [0, 1], any shape (a volume ``(X, Y, Z)``).
        name: a colour map (:data:`COLORMAPS`).
        fuse_luminance: ``f(y01) -> fused01`` on the whole luminance volume (as for :func:`fuse_in_colour`).
        voxelwise: for a voxelwise fusion (``mean``, ``max``), ``g(y01_chunk, start, stop) -> fused01_chunk``
            giving the fused luminance of the flat voxels ``start:stop`` (C order); then everything runs in one
            pass and ``fuse_luminance`` is not called. It must equal ``fuse_luminance`` voxel by voxel.
        chunk: voxels per chunk.

    Returns:
        ``(fused01, rgb)``: the fused luminance in [0, 1] (float32, ``values``' shape) and the fused colour
        image ``(..., 3)`` as uint8 (the values of :func:`fuse_in_colour`'s float32 0..255 result).
    """
    tables = _colour_tables(colormap_name(name))
    values = np.asarray(values, dtype=np.float32)
    flat = values.reshape(-1)
    n = flat.size
    fused = np.empty(n, dtype=np.float32)
    if voxelwise is not None:
        rgb = np.empty((n, 3), dtype=np.uint8)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            ids, y01, odd, ycc_odd = _split_chunk(flat[start:stop], tables)
            fused[start:stop] = voxelwise(y01, start, stop)
            _merge_chunk(fused[start:stop], ids, odd, ycc_odd, tables, rgb[start:stop])
        return fused.reshape(values.shape), rgb.reshape(*values.shape, 3)
    ids = np.empty(n, dtype=np.uint16)  # a colour map has at most a few thousand uint8 colours
    odd_parts = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        ids[start:stop], fused[start:stop], odd, ycc_odd = _split_chunk(flat[start:stop], tables)
        if odd.size:
            odd_parts.append((odd + start, ycc_odd))
    fused = np.asarray(fuse_luminance(fused.reshape(values.shape)), dtype=np.float32).reshape(-1)
    rgb = np.empty((n, 3), dtype=np.uint8)  # after the fusion: not held while a network runs
    odd_all = np.concatenate([o for o, _ in odd_parts]) if odd_parts else np.zeros(0, dtype=np.intp)
    ycc_all = np.concatenate([y for _, y in odd_parts]) if odd_parts else np.zeros((0, 3), dtype=np.uint8)
    bounds = np.searchsorted(odd_all, np.arange(0, n + chunk, chunk))
    for i, start in enumerate(range(0, n, chunk)):
        stop = min(start + chunk, n)
        sel = slice(bounds[i], bounds[i + 1])
        _merge_chunk(fused[start:stop], ids[start:stop], odd_all[sel] - start, ycc_all[sel], tables, rgb[start:stop])
    return fused.reshape(values.shape), rgb.reshape(*values.shape, 3)


#: cells per unit of the colour map's 0..255 axis (x = 255 * value): 2**10, so that a cell is a power-of-two
#: fraction of a table step and its ends are exact float32 numbers (~0.3 % of the cells hold two colours)
_CELL_BITS = 10


def _x_of(values: np.ndarray) -> np.ndarray:
    """The colour map's axis as :func:`apply_colormap` computes it, ``clip(nan_to_num(v), 0, 1) * 255`` in float32
    (``fmax``/``fmin`` send NaN to 0 and infinities to the ends, as ``nan_to_num`` and ``clip`` do)."""
    x = np.fmax(np.asarray(values, dtype=np.float32), np.float32(0))
    np.fmin(x, np.float32(1), out=x)
    x *= np.float32(255)
    return x


def _colours_at(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 colours at float32 ``x`` on 0..255: :func:`apply_colormap`'s arithmetic, rounded as ``_to_uint8``."""
    lo = np.floor(x).astype(np.intp)
    hi = np.minimum(lo + 1, len(lut) - 1)
    frac = x - lo
    rest = 1.0 - frac
    out = np.empty((len(x), 3), dtype=np.uint8)
    for c in range(3):
        column = np.ascontiguousarray(lut[:, c])
        v = (column.take(lo) * rest + column.take(hi) * frac).astype(np.float32)
        out[:, c] = np.clip(np.rint(v), 0, 255)
    return out


@functools.lru_cache(maxsize=8)
def _colour_tables(name: str) -> dict:
    """The tables of :func:`fuse_colormapped` for one colour map.

    ``cell``: per cell ``floor(x * 2**_CELL_BITS)`` the id of its colour, ``mixed`` (a placeholder id) where the
    colour changes inside the cell; ``y01``: per colour id its luminance / 255 (float32); ``merge``: per ``id * 256 + Y`` the RGB of
    luminance ``Y`` with that colour's chroma (Pillow); ``lut``: the float64 table of :func:`apply_colormap`.
    """
    lut = colormap_lut(name).astype(np.float32).astype(np.float64)
    scale = 1 << _CELL_BITS
    cells = np.arange(255 * scale + 1)
    first = (cells / scale).astype(np.float32)  # exact: q / 2**10 < 2**8 has at most 18 significant bits
    last = np.nextafter(((cells + 1) / scale).astype(np.float32), np.float32(0))
    last[-1] = 255.0  # the last cell is x = 255 alone
    c_first, c_last = _colours_at(first, lut), _colours_at(last, lut)
    packed = (c_first[:, 0].astype(np.int32) << 16) | (c_first[:, 1].astype(np.int32) << 8) | c_first[:, 2]
    keys, ids = np.unique(packed, return_inverse=True)
    colours = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=-1).astype(np.uint8)
    cell = ids.reshape(-1).astype(np.int32)
    # channels are monotone in x inside a cell: equal ends, one colour; else the id len(colours), a placeholder
    cell[(c_first != c_last).any(axis=1)] = len(colours)
    colours = np.concatenate([colours, colours[:1]])
    ycc = _pil_convert(colours, "YCbCr")
    if len(colours) > 65535:  # cannot happen for a curve through 256 table entries; the ids are uint16
        raise ValueError(f"colour map {name!r} has {len(colours)} distinct colours")
    merged = np.empty((len(colours), 256, 3), dtype=np.uint8)
    merged[:, :, 0] = np.arange(256, dtype=np.uint8)[None, :]
    merged[:, :, 1:] = ycc[:, None, 1:]
    merge = _pil_convert(merged.reshape(-1, 3), "RGB")
    y01 = ycc[:, 0].astype(np.float32) / 255.0
    return {"cell": cell, "y01": y01, "merge": merge, "lut": lut, "mixed": len(colours) - 1}


def _split_chunk(values: np.ndarray, tables: dict):
    """Colour ids, luminance / 255 (float32) of a flat chunk; the positions (and YCbCr) of its voxels in mixed cells."""
    x = _x_of(values)
    ids = tables["cell"].take((x * np.float32(1 << _CELL_BITS)).astype(np.int32))  # exact product; floor (x >= 0)
    y01 = tables["y01"].take(ids)
    odd = np.flatnonzero(ids == tables["mixed"])
    ycc_odd = np.zeros((0, 3), dtype=np.uint8)
    if odd.size:
        ycc_odd = _pil_convert(_colours_at(x[odd], tables["lut"]), "YCbCr")
        y01[odd] = ycc_odd[:, 0].astype(np.float32) / 255.0
    return ids, y01, odd, ycc_odd


def _merge_chunk(fused01: np.ndarray, ids: np.ndarray, odd: np.ndarray, ycc_odd: np.ndarray, tables: dict,
                 out: np.ndarray) -> None:
    """:func:`merge_luminance` of ``255 * fused01`` with the chunk's chroma, into ``out`` (``(n, 3)`` uint8)."""
    y = 255.0 * fused01
    np.rint(y, out=y)
    np.clip(y, 0, 255, out=y)
    index = ids.astype(np.int32)
    index *= 256
    index += y.astype(np.int32)
    np.take(tables["merge"], index, axis=0, out=out)
    if odd.size:
        merged = ycc_odd.copy()
        merged[:, 0] = y[odd]
        out[odd] = _pil_convert(merged, "RGB")


# ----------------------------------------------------------------------------------------------
# colour policy: which volumes are fused in colour, through which map, and what the sidecar says of it

#: ``colormap`` names that ask for a grey fusion of a PET/SPECT volume
GRAY_COLORMAPS = ("gray", "grey", "none", "off")


def colormap_for(modality: str | None, colormap: str | None) -> str | None:
    """The colour map a 3D moving scan of ``modality`` is fused through: None for CT/MR (always grey) or when
    grey is asked for (:data:`GRAY_COLORMAPS`); the given map (checked even when unused, so a typo is never
    silent) or the modality's default (:func:`default_colormap`) for PET/SPECT."""
    default = default_colormap(modality)
    if colormap is not None and str(colormap).strip().lower() in GRAY_COLORMAPS:
        return None
    if colormap is not None:
        name = colormap_name(colormap)
        return name if default is not None else None
    return default


def colour_record(normalized, colour_map: str) -> dict:
    """Which colour map and which values of the moving scan map to its two ends (the sidecar's ``colour``).

    Args:
        normalized: the normalized moving scan (:class:`~medfuse.volume.Volume`; its ``meta["normalization"]``).
        colour_map: the map it went through.
    """
    from medfuse.intensity.units import quantity_units

    record = normalized.meta.get("normalization") or {}
    if record.get("method") == "suv":
        lo, hi = record["suv_window"]
        units, rule = "SUVbw", "SUV 0 to the 99.5th percentile of SUV inside the head mask (or the window given)"
    else:
        lo, hi = record.get("lo"), record.get("hi")
        units = quantity_units(normalized, normalized)
        pct = record.get("percentiles")
        rule = (f"percentiles {pct[0]:g} to {pct[1]:g} of the voxels inside the head mask" if pct else
                f"normalization '{record.get('method')}'")
        if "suv_unavailable" in record:
            rule += f" (no SUV: {record['suv_unavailable']})"
    return {"colormap": colour_map, "range": [float(lo), float(hi)], "units": units, "rule": rule}
