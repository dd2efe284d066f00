"""Cross-validation by subject: folds hold whole cases, and a fold's network never sees its test cases."""

from __future__ import annotations

import pytest
import torch

from medfuse.training.cv import case_folds, fold_cases, fold_weights_path, inner_split, train_fold

from harvard_fixture import TINY


def test_case_folds_partition_the_cases_deterministically():
    cases = [f"c{i}" for i in range(13)] * 3  # repeated names: one case, many slices
    folds = case_folds(cases, 3)
    assert len(folds) == 3 and sorted(c for f in folds for c in f) == sorted(set(cases))
    assert all(not set(a) & set(b) for i, a in enumerate(folds) for b in folds[i + 1:])
    assert [len(f) for f in folds] == [5, 4, 4]
    assert case_folds(cases, 3) == folds
    assert len(case_folds(["a", "b", "c"], 5)) == 3  # k capped at the number of cases
    with pytest.raises(ValueError):
        case_folds(["a"], 3)


def test_inner_split_stays_inside_the_training_cases():
    train, val = inner_split(["a", "b", "c", "d", "e"])
    assert set(train) | set(val) == {"a", "b", "c", "d", "e"} and not set(train) & set(val)
    assert len(val) == 2


def test_fold_network_never_trains_on_its_test_fold(harvard_tiny, tmp_path):
    folds = fold_cases(harvard_tiny, "ct_mri", 3)
    s = train_fold("ct_mri", "light", 1, data_dir=harvard_tiny, out_dir=tmp_path, config=dict(TINY), iterations=2)
    assert s["test_cases"] == folds[1]
    assert not set(s["split"]["train_cases"]) & set(folds[1])
    assert set(s["split"]["train_cases"]) == {c for i, f in enumerate(folds) if i != 1 for c in f}
    ckpt = torch.load(fold_weights_path(tmp_path, "ct_mri", "light", 1), weights_only=True)
    assert ckpt["split"]["excluded_cases"] == folds[1] and ckpt["iteration"] == 2

    inner = train_fold("ct_mri", "light", 1, data_dir=harvard_tiny, out_dir=tmp_path, config=dict(TINY),
                       iterations=1, inner=True)
    assert not set(inner["split"]["train_cases"]) & (set(folds[1]) | set(inner["test_cases"]))


def test_a_killed_fold_run_resumes_from_its_checkpoint(harvard_tiny, tmp_path):
    from medfuse.errors import OutputExistsError

    train_fold("ct_mri", "light", 0, data_dir=harvard_tiny, out_dir=tmp_path, config=dict(TINY), iterations=1)
    with pytest.raises(OutputExistsError, match="--resume"):
        train_fold("ct_mri", "light", 0, data_dir=harvard_tiny, out_dir=tmp_path, config=dict(TINY), iterations=2)
    s = train_fold("ct_mri", "light", 0, data_dir=harvard_tiny, out_dir=tmp_path, config=dict(TINY), iterations=2,
                   resume=True)
    ckpt = torch.load(fold_weights_path(tmp_path, "ct_mri", "light", 0), weights_only=True)
    assert ckpt["iteration"] == 2 and s["iteration"] == 2 and s["test_cases"]
