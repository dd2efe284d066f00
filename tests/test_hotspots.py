"""A PET/SPECT's hottest regions, taken from the uptake, stay visible in the fused image (medfuse.hotspots)."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.color import apply_colormap, split_luminance
from medfuse.hotspots import HOT_QUANTILES, hot_regions, keep_hot_regions, uptake_from_colours


def _hot_keep(u: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Fused / source luminance over the hottest 1% by uptake (benchmarks/hotspots.py's measure)."""
    hot = u >= np.quantile(u[u > 0.05 * u.max()], 0.99)
    return float(f[hot].mean() / b[hot].mean())


def test_floor_by_hand():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.1, 0.5, (64, 64)).astype(np.float32)
    b[30:34, 30:34] = 0.9  # a hot focus, 0.4% of the image
    f = np.full_like(b, 0.3)
    hot = hot_regions(b)
    out = keep_hot_regions(f.copy(), b, hot)
    lo, hi = np.quantile(b[b > 0.05 * b.max()], HOT_QUANTILES)
    cold = b <= lo
    assert np.array_equal(out[cold], f[cold])  # below the ramp nothing changes
    assert np.allclose(out[30:34, 30:34], 0.9)  # above it the fused value reaches the source's
    assert np.all(out >= f) and np.all(out <= np.maximum(f, b) + 1e-7)  # never lower, never past the sources
    bright = np.full_like(b, 0.95)  # a fused value already brighter than the source is left alone
    assert np.array_equal(keep_hot_regions(bright.copy(), b, hot), bright)
    out2 = keep_hot_regions(f.copy(), b + 1e-4, hot_regions(b + 1e-4))  # continuous: no edge at the ramp's ends
    assert float(np.abs(out2 - out).max()) < 0.01


def test_empty_or_flat_functional_scan_changes_nothing():
    f = np.full((8, 8), 0.4, np.float32)
    for b in (np.zeros_like(f), np.full_like(f, 0.2)):
        hot = hot_regions(b)
        assert not hot.active
        assert np.array_equal(keep_hot_regions(f.copy(), b, hot), f)


@pytest.mark.parametrize("name", ["aanlib_pet", "aanlib_spect", "hot_iron", "viridis"])
def test_uptake_read_back_from_its_colour_map(name):
    """A slice drawn with a known map gives back its uptake (to the 8-bit colours' resolution) and the map."""
    yy, xx = np.mgrid[0:96, 0:96]
    u = np.clip(1.0 - np.hypot(yy - 48, xx - 48) / 40.0, 0, 1).astype(np.float32)  # a cone: every uptake level
    hot = uptake_from_colours(apply_colormap(u, name))
    assert hot.active and hot.source == f"colour map {name}"
    content = u > 0.1
    assert float(np.abs(hot.uptake - u)[content].max()) < 0.02


def test_colours_of_no_known_map_give_no_floor():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (64, 64, 3)).astype(np.float32)
    hot = uptake_from_colours(rgb)
    assert not hot.active and "no known colour map" in hot.source
    f = np.full((64, 64), 0.2, np.float32)
    assert np.array_equal(keep_hot_regions(f.copy(), split_luminance(rgb)[0] / 255, hot), f)


def test_pet_map_lifts_the_hottest_uptake_not_the_brightest_colour():
    """The defect of the luminance floor (session 10, reverted): under the PET map mid uptake (yellow, Y 0.89) is
    brighter than the hottest (magenta, Y 0.41); a floor keyed on luminance lifted the yellow band (a ring around
    every focus). Keyed on uptake, only the focus's centre is lifted."""
    yy, xx = np.mgrid[0:96, 0:96]
    u = np.clip(1.0 - np.hypot(yy - 48, xx - 48) / 40.0, 0, 1).astype(np.float32)
    rgb = apply_colormap(u, "aanlib_pet")
    b = split_luminance(rgb)[0] / 255
    f = np.zeros_like(b)
    out = keep_hot_regions(f.copy(), b, uptake_from_colours(rgb))
    changed = out > 0
    assert changed.any()
    assert float(u[changed].min()) >= np.quantile(u[u > 0.05], HOT_QUANTILES[0]) - 0.01
    yellow = (u > 0.45) & (u < 0.55)
    assert not changed[yellow].any()


def test_aanlib_slices_lie_on_their_maps(harvard_dir):
    """Every AANLIB PET and SPECT slice (data we did not make) is read back through the map it was drawn with:
    the PET slices and the second collection's SPECT through the AANLIB PET map, the other SPECT slices through
    the AANLIB SPECT map; none is refused."""
    from medfuse.datasets.harvard import find_harvard_pairs
    from medfuse.io import load_volume

    seen = {}
    for task in ("pet_mri", "spect_mri"):
        for p in list(find_harvard_pairs(harvard_dir, tasks=[task]))[::7]:
            hot = uptake_from_colours(load_volume(p.other, modality="NM").rgb)
            group = "pet" if task == "pet_mri" or p.case.startswith("cdd-") else "spect"
            seen.setdefault(group, set()).add(hot.source)
    assert seen == {"pet": {"colour map aanlib_pet"}, "spect": {"colour map aanlib_spect"}}


def test_a_spect_focus_on_grey_matter_stays_visible(harvard_dir):
    """A real SPECT-MRI pair we did not make (second collection, PET map): its hottest focus lies on grey matter.
    `medfuse fuse` with the shipped SPECT-MRI network dims it without the floor (0.52 of the SPECT's luminance over
    its hottest 1%); with the floor (the default) it keeps 0.95, and nothing changes outside the ramp."""
    pytest.importorskip("torch")
    from medfuse.io import load_volume
    from medfuse.pipeline import FusionOptions, fuse_volumes

    case = harvard_dir / "spect_mri" / "cdd-spect-77"
    mri, spect = load_volume(case / "mri.png", modality="MR"), load_volume(case / "spect.png", modality="NM")
    u = uptake_from_colours(spect.rgb).uptake
    b = split_luminance(spect.rgb)[0]
    plain = fuse_volumes(mri, spect, FusionOptions(method="light", register=False, keep_hot=False))
    kept = fuse_volumes(mri, spect, FusionOptions(method="light", register=False))
    y_plain, y_kept = split_luminance(plain.fused.rgb)[0], split_luminance(kept.fused.rgb)[0]
    assert _hot_keep(u, b, y_plain) < 0.8  # the defect this guards against
    assert _hot_keep(u, b, y_kept) > 0.9
    cold = u < np.quantile(u[u > 0.05 * u.max()], HOT_QUANTILES[0])
    assert np.array_equal(y_kept[cold], y_plain[cold])
    step = kept.provenance.find("hot_regions")
    assert step["kept"] and step["uptake_from"] == "colour map aanlib_pet"
    assert plain.provenance.find("hot_regions") is None
    # max already keeps them: no floor, the same image
    m0 = fuse_volumes(mri, spect, FusionOptions(method="max", register=False, keep_hot=False))
    m1 = fuse_volumes(mri, spect, FusionOptions(method="max", register=False))
    assert np.array_equal(m0.fused.rgb, m1.fused.rgb)


def test_remembered_colour_lookups_give_the_same_uptake(harvard_dir, monkeypatch):
    """Each colour is looked up once per process (medfuse.hotspots._SEEN): the uptake of real slices, read twice
    with the memory and once without, is the same array, bit for bit; the memory stays within its bound."""
    from medfuse import hotspots
    from medfuse.datasets.harvard import find_harvard_pairs
    from medfuse.io import load_volume

    slices = [load_volume(p.other, modality="NM").rgb
              for task in ("pet_mri", "spect_mri") for p in list(find_harvard_pairs(harvard_dir, tasks=[task]))[::23]]
    monkeypatch.setattr(hotspots, "_SEEN", {})
    first = [uptake_from_colours(x) for x in slices]
    again = [uptake_from_colours(x) for x in slices]
    assert hotspots._SEEN and all(len(v[0]) <= hotspots._SEEN_MAX for v in hotspots._SEEN.values())
    monkeypatch.setattr(hotspots, "_lookup", lambda name, codes, colours, lut, lut2:
                        hotspots._nearest(colours, lut, lut2))
    fresh = [uptake_from_colours(x) for x in slices]
    for a, b, c in zip(first, again, fresh):
        assert a.source == b.source == c.source and a.uptake is not None
        assert np.array_equal(a.uptake, c.uptake) and np.array_equal(b.uptake, c.uptake)


def test_colour_memory_is_bounded(monkeypatch):
    """More new colours than the bound: looked up all the same, not remembered past the bound."""
    from medfuse import hotspots

    monkeypatch.setattr(hotspots, "_SEEN", {})
    monkeypatch.setattr(hotspots, "_SEEN_MAX", 64)
    rgb = apply_colormap(np.linspace(0.1, 1.0, 200 * 10, dtype=np.float32).reshape(200, 10), "hot_iron")
    hot = uptake_from_colours(rgb)
    assert hot.source == "colour map hot_iron"
    assert all(len(v[0]) <= 64 for v in hotspots._SEEN.values())
    monkeypatch.setattr(hotspots, "_lookup", lambda name, codes, colours, lut, lut2:
                        hotspots._nearest(colours, lut, lut2))
    assert np.array_equal(uptake_from_colours(rgb).uptake, hot.uptake)
