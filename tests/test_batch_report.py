"""``OUT/report.html`` of ``medfuse batch``: metrics per pair type (and per method), never pooled over CT-MRI,
PET-MRI and SPECT-MRI; checked on a small batch of real Harvard AANLIB pairs against the manifest."""

from __future__ import annotations

import dataclasses
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from medfuse.batch import MANIFEST, BatchSettings, read_manifest, run_batch
from medfuse.report.batch_report import write_batch_report

pytestmark = [pytest.mark.harvard, pytest.mark.filterwarnings("ignore")]

TASKS = {"ct_mri": "MRI + CT", "pet_mri": "MRI + PET", "spect_mri": "MRI + SPECT"}
METRICS = ("EN", "SD", "MI", "SSIM")


class _Tables(HTMLParser):
    """The metric tables of a report: ``{(pair, method): {metric: [n, mean, median, min, max]}}``."""

    def __init__(self):
        super().__init__()
        self.tables: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._key = self._row = None
        self._cell: list[str] | None = None
        self.plain_tables = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            if a.get("class") == "metrics":
                self._key = (a["data-pair"], a["data-method"])
                self.tables[self._key] = {}
            else:
                self.plain_tables += 1
        elif tag == "tr" and self._key:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[self._key][self._row[0]] = self._row[1:]
            self._row = None
        elif tag == "table":
            self._key = None


def _tables(path: Path) -> _Tables:
    parser = _Tables()
    parser.feed(path.read_text())
    return parser


@pytest.fixture(scope="module")
def small_batch(harvard_dir, tmp_path_factory):
    """Two real pairs of each task, fused with each pair's default method."""
    root = tmp_path_factory.mktemp("harvard_small")
    for task in TASKS:
        for pair in sorted(p for p in (harvard_dir / task).iterdir() if p.is_dir())[:2]:
            shutil.copytree(pair, root / task / pair.name)
    out = tmp_path_factory.mktemp("batch") / "out"
    summary = run_batch("harvard", root, out, workers=0, progress=False, metrics=",".join(METRICS))
    assert summary.counts["done"] == 6, [r["message"] for r in summary.rows]
    return summary, out


def test_report_has_one_table_per_pair_type(small_batch):
    summary, out = small_batch
    rows = read_manifest(out / MANIFEST)
    report = _tables(out / "report.html")
    # the pair type and method of each case, as the manifest has them (case ids start with the task folder)
    expected: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        expected.setdefault((TASKS[row["case_id"].split("/")[0]], row["method"]), []).append(row)
    assert set(report.tables) == set(expected), (sorted(report.tables), sorted(expected))
    assert {pair for pair, _ in report.tables} == set(TASKS.values())  # never one table over all three
    for key, group in expected.items():
        table = report.tables[key]
        assert set(table) == set(METRICS)
        for name in METRICS:
            values = np.array([float(r[name]) for r in group])
            n, mean, median, low, high = table[name]
            assert int(n) == len(group) == 2
            np.testing.assert_allclose([float(mean), float(median), float(low), float(high)],
                                       [values.mean(), np.median(values), values.min(), values.max()], rtol=1e-3)


def test_methods_that_differ_within_a_pair_type_get_their_own_tables(small_batch, tmp_path):
    summary, _ = small_batch
    rows = [dict(r) for r in summary.rows]
    pet = sorted((r for r in rows if r["case_id"].startswith("pet_mri/")), key=lambda r: r["case_id"])
    pet[0]["method"] = "mean"  # as if one PET-MRI case had been fused with another method
    report_path = write_batch_report(dataclasses.replace(summary, rows=rows), BatchSettings("harvard", metrics=METRICS),
                                     tmp_path / "report.html")
    tables = _tables(report_path).tables
    pet_tables = {method: t for (pair, method), t in tables.items() if pair == "MRI + PET"}
    assert set(pet_tables) == {"mean", pet[1]["method"]}
    for method, case in (("mean", pet[0]), (pet[1]["method"], pet[1])):
        assert pet_tables[method]["EN"][0] == "1"
        np.testing.assert_allclose(float(pet_tables[method]["EN"][1]), float(case["EN"]), rtol=1e-3)
