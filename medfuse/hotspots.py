"""The functional scan's hottest regions stay visible in the fused image (PET-MRI, SPECT-MRI).

Fusion methods that carry the MRI's structure (the guided filter, the networks, the Laplacian pyramid) can
choose the MRI's band-pass detail over a small hot focus: on the AANLIB SPECT pairs the default ``guided``
kept a median 0.75 of the SPECT's luminance over its hottest 1 % (64 % of the pairs below 0.8), down to 0.43;
a focus on dark grey matter turned grey in colour (``benchmarks/hotspots.py``). The image then hides the
finding it was fused to show, while its metrics rise.

*Hot* is taken from the **uptake**, never from a colour map's luminance: the AANLIB PET table and medfuse's
default ``aanlib_pet`` run blue, yellow, red, magenta, so the hottest uptake (magenta, luminance 0.41) is darker
than mid uptake (yellow, 0.89); a floor keyed on luminance lifted the yellow band and drew a ring on the 3D
SPECT template (session 10, reverted). The uptake is

* a grey functional scan's own values (a PET/SPECT volume before its colour map, a grey slice);
* for a colour slice (AANLIB PNGs), the position of each colour along the colour map it was drawn with:
  :func:`uptake_from_colours` finds the map among :data:`medfuse.color.COLORMAPS` that the slice's colours
  lie on (>= 90 % of its content within 12 RGB units) and reads each pixel's position on it. A slice in a
  colour map medfuse does not know gets no floor (said in the record), rather than a wrong one.

:func:`keep_hot_regions` puts a floor under the fused luminance ``F`` where the uptake ``u`` is hot: with
``w`` a ramp of ``u`` from its 95 % to its 99.5 % quantile over the content (``u > 0.05 max u``),
``F' = F + w * max(B - F, 0)``, where ``B`` is the functional scan's luminance (what it looks like alone, in
its colour). Below the 95 % quantile nothing changes; above 99.5 % the fused focus is at least as bright as
in the functional scan; in between it rises continuously. The floor never lowers a value and stays within
``max(F, B)`` (no halo: nothing brighter than both sources). ``max`` is never changed (``F >= B`` already).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["HOT_QUANTILES", "HOT_PAIRS", "HotRegions", "hot_regions", "keep_hot_regions", "uptake_from_colours",
           "floor_applies", "floor_hot_regions", "redraw_in_colormap"]

#: the uptake's quantiles (over its content) where the floor starts and where it is complete
HOT_QUANTILES = (0.95, 0.995)
#: the pairs whose second scan is functional (hot = high uptake)
HOT_PAIRS = ("pet_mri", "spect_mri")
#: content of the functional scan: uptake above this fraction of its maximum (AANLIB PET is 0 over half the head)
_CONTENT = 0.05
#: a colour lies on a colour map when within this many RGB units (Euclidean) of its curve
COLOUR_TOLERANCE = 12.0
#: ... and a slice was drawn with a map when at least this fraction of its content's pixels lie on it
COLOUR_FIT = 0.9
#: entries of the tables the colours are looked up in (positions resolved to 1/1023)
_TABLE = 1024
#: the coarse step of the lookup (:func:`_nearest`), and how many of a slice's most frequent colours choose the map
_COARSE = 8
_SAMPLE = 512
#: entries either side of the coarse winner searched exactly: on the AANLIB slices 15 of 20.6k on-curve colours
#: then differ from a search of every entry by more than 2 entries (colours between two nearly equidistant
#: stretches of the map), against 90 with one coarse step
_WINDOW = 16


@dataclass(frozen=True)
class HotRegions:
    """Where the functional scan is hot: the uptake and the ramp of :func:`keep_hot_regions`.

    Attributes:
        uptake: float32 uptake on the fused image's grid (any scale), or None when unknown (no floor).
        lo, hi: the uptake's :data:`HOT_QUANTILES` over its content; the ramp runs from ``lo`` to ``hi``.
        source: where the uptake came from: ``"values"``, ``"gray"`` or ``"colour map <name>"``; or why there is
            none.
    """

    uptake: np.ndarray | None
    lo: float
    hi: float
    source: str

    @property
    def active(self) -> bool:
        return self.uptake is not None and self.hi > self.lo

    def weight(self) -> np.ndarray:
        """The ramp ``w`` in [0, 1] (float32, the uptake's shape)."""
        return np.clip((self.uptake - self.lo) * np.float32(1.0 / (self.hi - self.lo)), 0.0, 1.0, dtype=np.float32)

    def record(self) -> dict:
        """What the sidecar says about the floor."""
        rec = {"kept": self.active, "uptake_from": self.source, "quantiles": list(HOT_QUANTILES)}
        if self.active:
            rec["uptake_range"] = [round(self.lo, 6), round(self.hi, 6)]
        return rec


def hot_regions(uptake: np.ndarray | None, source: str = "values") -> HotRegions:
    """The :class:`HotRegions` of an uptake image or volume (quantiles over the whole array's content)."""
    if uptake is None:
        return HotRegions(None, 0.0, 0.0, source)
    u = np.asarray(uptake, dtype=np.float32)
    peak = float(np.nanmax(u)) if u.size else 0.0
    if not np.isfinite(peak) or peak <= 0.0:
        return HotRegions(None, 0.0, 0.0, f"{source}: no uptake above 0")
    content = u[u > _CONTENT * peak]
    lo, hi = (float(q) for q in np.quantile(content, HOT_QUANTILES))
    return HotRegions(u, lo, hi, source)


def keep_hot_regions(fused: np.ndarray, b: np.ndarray, hot: HotRegions) -> np.ndarray:
    """``fused`` with a floor at the functional luminance ``b`` where ``hot`` is hot (module docstring), in place.

    Args:
        fused: float32 fused luminance in [0, 1] (modified and returned).
        b: the functional scan's luminance on the same grid, [0, 1] (its colour's Y / 255 for a colour scan).
        hot: from :func:`hot_regions` on the same grid; inactive: ``fused`` is returned unchanged.
    """
    if not hot.active:
        return fused
    if hot.uptake.shape != fused.shape or np.shape(b) != fused.shape:
        raise ValueError(f"hot regions {hot.uptake.shape}, functional {np.shape(b)} and fused {fused.shape} differ")
    lift = np.subtract(b, fused, dtype=np.float32)
    np.maximum(lift, 0.0, out=lift)
    lift *= hot.weight()
    fused += lift
    return fused


def floor_applies(pair: str | None, method: str | None) -> bool:
    """Whether the floor acts on ``method``'s fusion of ``pair``: a PET/SPECT pair, and not ``max`` (``F >= B``)."""
    return pair in HOT_PAIRS and method != "max"


def floor_hot_regions(fused: np.ndarray, b: np.ndarray, uptake, pair: str | None, method: str | None) -> np.ndarray:
    """:func:`keep_hot_regions` on a float32 copy of ``fused`` where :func:`floor_applies`, else ``fused`` itself:
    hot where ``uptake`` is (any array on the grid, e.g. a colour transform's record), else where ``b`` is (a grey
    functional image, whose values are its uptake). The doors without a :class:`HotRegions` of their own (the MONAI
    transforms); ``fused`` is never modified."""
    if not floor_applies(pair, method):
        return fused
    if uptake is not None and hasattr(uptake, "detach"):  # a tensor, after MONAI's collate
        uptake = uptake.detach().cpu().numpy()
    u = np.asarray(uptake if uptake is not None else b, dtype=np.float32).reshape(fused.shape)
    return keep_hot_regions(np.array(fused, dtype=np.float32), np.asarray(b, dtype=np.float32), hot_regions(u))


def redraw_in_colormap(rgb: np.ndarray, name: str) -> np.ndarray | None:
    """A colour slice's uptake (:func:`uptake_from_colours`) drawn in colour map ``name``: ``(..., 3)`` float32 RGB
    rounded to 0..255 integers, as a PNG in that map would hold it; None for a slice on no known map."""
    from medfuse.color import apply_colormap

    uptake = uptake_from_colours(rgb).uptake
    if uptake is None:
        return None
    return np.clip(np.rint(apply_colormap(uptake, name)), 0, 255)


def uptake_from_colours(rgb: np.ndarray) -> HotRegions:
    """The uptake of a colour functional slice, read back through the colour map it was drawn with.

    Args:
        rgb: ``(..., 3)`` RGB on 0..255 (an AANLIB PET/SPECT PNG).

    Returns:
        :func:`hot_regions` of the uptake in [0, 1] (the position along the map), or an inactive record saying
        why: a grey RGB file gives its grey values; colours that lie on no known map give none.
    """
    from medfuse.color import is_gray_rgb

    rgb = np.asarray(rgb)
    if is_gray_rgb(rgb):
        return hot_regions(np.asarray(rgb[..., 0], np.float32) / 255.0, "gray")
    rgb8 = np.clip(np.rint(rgb), 0, 255).astype(np.uint32).reshape(-1, 3)
    codes = (rgb8[:, 0] << 16) | (rgb8[:, 1] << 8) | rgb8[:, 2]
    content = (codes & 0xF0F0F0) != 0  # a channel at 16 or more: black and near-black background carries no uptake
    if not content.any():
        return HotRegions(None, 0.0, 0.0, "colour: no content")
    # the distinct colours (an AANLIB slice has a few dozen; an interpolated one ~13 thousand), each looked up once
    distinct, counts = np.unique(codes[content], return_counts=True)
    colours = np.stack([(distinct >> 16) & 255, (distinct >> 8) & 255, distinct & 255], axis=-1).astype(np.float32)
    # which map: judged on the most frequent colours, which cover most of the content
    top = np.argsort(counts)[::-1][:_SAMPLE]
    fits, found = {}, {}
    for name, lut, lut2 in _tables():
        found[name] = _lookup(name, distinct[top], colours[top], lut, lut2)
        fits[name] = float(counts[top][found[name][1] <= COLOUR_TOLERANCE].sum() / counts[top].sum())
    name = max(fits, key=fits.get)
    lut, lut2 = next((t[1], t[2]) for t in _tables() if t[0] == name)
    if len(top) == len(colours):  # the sample was every colour: its lookup is the whole lookup
        nearest, dist = np.empty_like(found[name][0]), np.empty_like(found[name][1])
        nearest[top], dist[top] = found[name]
    else:
        nearest, dist = _lookup(name, distinct, colours, lut, lut2)
    fit = float(counts[dist <= COLOUR_TOLERANCE].sum() / counts.sum())  # over every pixel of the content
    if fit < COLOUR_FIT:
        return HotRegions(None, 0.0, 0.0, f"colour: on no known colour map (best {name}, {100 * fit:.0f}% of pixels)")
    uptake = np.zeros(codes.shape, np.float32)
    uptake[content] = nearest[np.searchsorted(distinct, codes[content])].astype(np.float32) / (_TABLE - 1)
    return hot_regions(uptake.reshape(rgb.shape[:-1]), f"colour map {name}")


#: colours already looked up, per map: ``name -> (sorted codes, nearest entry, distance)``. The slices of a batch
#: share most of their colours (an AANLIB slice has a few dozen, and the same few hundred recur across slices), so
#: a batch looks each colour up once per map. Replaced whole (never modified in place): safe across threads.
_SEEN: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
#: the most colours remembered per map (an interpolated slice brings ~13 thousand new ones)
_SEEN_MAX = 1 << 16


def _lookup(name: str, codes: np.ndarray, colours: np.ndarray, lut: np.ndarray, lut2: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_nearest` of ``colours`` (whose packed ``0xRRGGBB`` codes are ``codes``) on map ``name``, each colour
    computed once per process (:data:`_SEEN`): the same numbers as :func:`_nearest`, which depends on the colour
    alone."""
    seen = _SEEN.get(name)
    if seen is None:
        nearest, dist = _nearest(colours, lut, lut2)
        hit = np.zeros(len(codes), bool)
    else:
        known, known_nearest, known_dist = seen
        at = np.minimum(np.searchsorted(known, codes), len(known) - 1)
        hit = known[at] == codes
        nearest, dist = known_nearest[at], known_dist[at]  # copies (fancy indexing); the misses overwritten below
        if hit.all():
            return nearest, dist
        miss = ~hit
        nearest[miss], dist[miss] = _nearest(colours[miss], lut, lut2)
    new = ~hit
    if (0 if seen is None else len(seen[0])) + int(new.sum()) <= _SEEN_MAX:  # full: looked up, not remembered
        parts = [(codes[new], nearest[new], dist[new])] + ([seen] if seen is not None else [])
        order = np.argsort(np.concatenate([q[0] for q in parts]), kind="stable")
        _SEEN[name] = tuple(np.concatenate([q[k] for q in parts])[order] for k in range(3))
    return nearest, dist


def _nearest(colours: np.ndarray, lut: np.ndarray, lut2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each colour ``(n, 3)``, the index of the nearest table entry and its distance (RGB units): the nearest of
    every ``_COARSE``-th entry first, then the ``_WINDOW`` entries either side of it (a search of all 1024 entries of
    all six maps took 0.5 s on an interpolated slice of 13 thousand colours; this takes ~25 ms)."""
    n = len(lut)
    coarse = np.arange(0, n, _COARSE)
    d2 = lut2[None, coarse] + (colours * colours).sum(-1)[:, None]
    for ch in range(3):
        d2 -= (2.0 * colours[:, ch:ch + 1]) * lut[None, coarse, ch]
    centre = coarse[d2.argmin(axis=1)]
    window = np.clip(centre[:, None] + np.arange(-_WINDOW, _WINDOW + 1)[None, :], 0, n - 1)
    diff = lut[window] - colours[:, None, :]
    d2 = (diff * diff).sum(-1)
    pick = d2.argmin(axis=1)
    rows = np.arange(len(colours))
    return window[rows, pick], np.sqrt(d2[rows, pick])


@functools.lru_cache(maxsize=1)
def _tables() -> tuple:
    """``(name, (n, 3) float32 table, its squared norms)`` of every colour map, built once."""
    from medfuse.color import COLORMAPS, colormap_lut

    out = []
    for name in COLORMAPS:
        lut = colormap_lut(name, _TABLE).astype(np.float32)
        out.append((name, lut, (lut * lut).sum(-1)))
    return tuple(out)
