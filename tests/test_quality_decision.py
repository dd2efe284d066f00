"""benchmarks/quality.py's per-task default decision (issue 14)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_bench", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(q, v):
    return {k: float(v) for k in q.METRIC_KEYS}


def test_network_meeting_the_goal_is_the_default(quality):
    q = quality
    table = {m: _row(q, 1.0) for m in q.CLASSICAL}
    table["max"] = _row(q, 2.0)
    table["light"] = _row(q, 2.01)  # first everywhere, fidelity above best classical - 2%
    d = q.default_decision(table)
    assert d["default"] == "light" and d["kind"] == "network" and d["meets_goal"] == ["light"]


def test_else_the_best_classical_ranked_among_classical_methods(quality):
    q = quality
    table = {m: _row(q, 1.0 + i * 0.01) for i, m in enumerate(q.CLASSICAL)}  # guided first everywhere
    table["max"] = dict(_row(q, 1.5), EN=0.5)  # max first on 9 of 10 among the classical methods
    table["light-x"] = dict(_row(q, 3.0), EN=0.1)  # a network that takes every first but EN, and is last there
    d = q.default_decision(table)
    assert d["meets_goal"] == [] and d["kind"] == "classical"
    assert d["default"] == "max" and d["firsts"]["max"] == 9 and "light-x" not in d["firsts"]


def test_inner_choice_counts_metrics_above_the_median_classical_and_ties_keep_the_base(quality):
    q = quality
    table = {m: _row(q, 1.0 + i) for i, m in enumerate(q.CLASSICAL)}  # median classical = 3.0 everywhere
    table["fmmf-anchor"] = dict(_row(q, 3.5), SF=2.0, AG=2.0)  # above the median on 8
    table["fmmf-grad"] = dict(_row(q, 3.5), MI=2.0, SSIM=2.0)  # also 8: a tie keeps the first (base)
    chosen, counts = q.inner_choice(table, ["fmmf-anchor", "fmmf-grad"])
    assert counts == {"fmmf-anchor": 8, "fmmf-grad": 8} and chosen == "fmmf-anchor"
    table["fmmf-grad"]["MI"] = 3.5  # now 9
    assert q.inner_choice(table, ["fmmf-anchor", "fmmf-grad"])[0] == "fmmf-grad"


def test_inner_choice_breaks_a_count_tie_by_mean_rank_among_the_classical_rows(quality):
    """Both candidates above the median classical method on all 10 metrics: the one ranked better among the
    classical rows wins, even when listed second; equal ranks keep the base."""
    q = quality
    table = {m: _row(q, 1.0 + i) for i, m in enumerate(q.CLASSICAL)}  # classical 1.0 .. 5.0 everywhere
    table["light-pyr"] = _row(q, 4.5)  # 10/10 above the median (3.0), second (behind 5.0) everywhere
    table["light-pyrssim"] = dict(_row(q, 4.5), SSIM=6.0, MI=6.0)  # 10/10 too, first on two metrics
    chosen, counts = q.inner_choice(table, ["light-pyr", "light-pyrssim"])
    assert counts == {"light-pyr": 10, "light-pyrssim": 10} and chosen == "light-pyrssim"
    table["light-pyrssim"] = dict(_row(q, 4.5))  # identical ranks: the base stays
    assert q.inner_choice(table, ["light-pyr", "light-pyrssim"])[0] == "light-pyr"


def test_inner_choice_over_views_sums_the_counts_and_averages_the_ranks(quality):
    """Session 12's rule (``--inner-views asis,pet_colours``): a candidate that ties on the slices as given but
    is ahead in the other colours wins; with one view the rule is :func:`inner_choice` itself."""
    q = quality
    asis = {m: _row(q, 1.0 + i) for i, m in enumerate(q.CLASSICAL)}
    asis["light-base"] = _row(q, 4.5)
    asis["light-cmap"] = _row(q, 4.5)
    recoloured = {m: dict(v) for m, v in asis.items()}
    recoloured["light-base"] = dict(_row(q, 4.5), VIF=2.0, Qabf=2.0)  # below the median on 2 in the PET colours
    views = {"asis": asis, "pet_colours": recoloured}
    chosen, counts = q.inner_choice_views(views, ["light-base", "light-cmap"])
    assert counts == {"light-base": 18, "light-cmap": 20} and chosen == "light-cmap"
    assert q.inner_choice(asis, ["light-base", "light-cmap"]) == q.inner_choice_views({"asis": asis},
                                                                                   ["light-base", "light-cmap"])
    assert q.inner_choice(asis, ["light-base", "light-cmap"])[0] == "light-base"  # the tie keeps the base
    recoloured["light-base"] = dict(_row(q, 4.5))  # equal everywhere again: the base stays
    assert q.inner_choice_views(views, ["light-base", "light-cmap"])[0] == "light-base"


def test_inner_validation_cases_never_touch_the_outer_test_fold(quality, tmp_path):
    """Each outer fold's inner validation cases come from the other folds only, as
    ``medfuse.training.cv.train_fold(..., inner=True)`` trains without them."""
    from PIL import Image

    for case in range(7):  # AANLIB pair ids xg-<case><3-digit slice>: 7 subjects, 2 slices each
        for sl in range(2):
            d = tmp_path / "spect_mri" / f"xg-{case + 1}{sl:03d}"
            d.mkdir(parents=True)
            for kind in ("mri", "spect"):
                Image.new("L", (8, 8)).save(d / f"{kind}.png")
    folds = quality.fold_pairs(tmp_path, "spect_mri", 3)
    assert sum(len(c) for c, _ in folds) == 7
    inner = quality.inner_fold_pairs(tmp_path, "spect_mri", 3)
    for i, (val_cases, pairs) in enumerate(inner):
        assert val_cases and not set(val_cases) & set(folds[i][0])
        assert {p.case for p in pairs} == set(val_cases)
