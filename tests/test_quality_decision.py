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
