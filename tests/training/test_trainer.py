"""The trainer: configs, a short run, checkpoints, resuming, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from medfuse.cli import main
from medfuse.errors import OutputExistsError, UnsupportedInputError
from medfuse.training import load_config, read_checkpoint, train
from medfuse.training.checkpoint import strip_training_state

from harvard_fixture import TINY


def test_load_config_layers(tmp_path):
    cfg = load_config("light")
    assert cfg["network"]["name"] == "light" and cfg["loss"]["weights"]["ssim"] == 1.0
    assert cfg["loss"]["gradient_gain"] == 1.4 and cfg["network"]["kwargs"]["output"] == "blend"
    user = tmp_path / "c.json"
    user.write_text(json.dumps({"lr": 0.01, "loss": {"weights": {"gradient": 1.0}}}))
    cfg = load_config("light", user)
    assert cfg["lr"] == 0.01 and cfg["loss"]["weights"] == {"gradient": 1.0}  # weights replaced, not merged
    assert cfg["loss"]["win_size"] == 11  # other loss keys kept
    for method in ("fmmf", "mdgan", "msra", "light"):
        assert load_config(method)["network"]["name"] == method


def test_per_pair_section_of_a_method_config(tmp_path, monkeypatch):
    """``"pairs": {pair: {...}}`` in a method file applies to that pair only, before the user's file."""
    from medfuse.training import config as training_config

    base = json.loads((training_config.CONFIG_DIR / "fmmf.json").read_text())
    assert load_config("fmmf", pair="ct_mri")["loss"]["weights"] == {"var_ssim": 1.0}
    spect = base.get("pairs", {}).get("spect_mri")
    if spect is not None:  # the shipped choice (benchmarks/results/quality.md, nested on inner splits)
        assert load_config("fmmf", pair="spect_mri")["loss"]["weights"] == spect["loss"]["weights"]
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    (cfg_dir / "light.json").write_text(json.dumps({"lr": 0.002, "pairs": {"pet_mri": {"lr": 0.005}}}))
    monkeypatch.setattr(training_config, "CONFIG_DIR", cfg_dir)
    assert load_config("light")["lr"] == 0.002 and load_config("light", pair="ct_mri")["lr"] == 0.002
    assert load_config("light", pair="pet_mri")["lr"] == 0.005
    assert load_config("light", {"lr": 0.1}, pair="pet_mri")["lr"] == 0.1  # the user's file still wins
    (cfg_dir / "light.json").write_text(json.dumps({"pairs": {"pet_mri": {"batchsize": 4}}}))
    with pytest.raises(UnsupportedInputError, match="pairs.pet_mri"):
        load_config("light", pair="pet_mri")


def test_config_errors(tmp_path):
    with pytest.raises(UnsupportedInputError, match="did you mean 'batch_size'"):
        load_config("light", {"batchsize": 4})
    with pytest.raises(UnsupportedInputError, match="iterations"):
        load_config("light", {"iterations": 0})
    with pytest.raises(UnsupportedInputError, match="mdgan only"):
        load_config("light", {"adversarial": {"weight": 1.0}})
    with pytest.raises(UnsupportedInputError, match="augment.appearance must be a probability"):
        load_config("light", {"augment": {"appearance": 1.5}})
    with pytest.raises(UnsupportedInputError, match="unknown loss"):
        load_config("light", {"loss": {"weights": {"perceptual": 1.0}}})
    with pytest.raises(UnsupportedInputError, match="unknown network"):
        load_config("lite")
    with pytest.raises(FileNotFoundError):
        load_config("light", tmp_path / "missing.json")


def test_short_run_writes_a_safe_checkpoint(harvard_tiny, tmp_path):
    out = tmp_path / "light.pt"
    summary = train("ct_mri", "light", out, config=TINY, data_dir=harvard_tiny, iterations=3, progress=False)
    assert summary["iteration"] == 3 and set(summary["final"]) >= {"loss", "ssim", "gradient", "intensity"}
    raw = torch.load(out, weights_only=True)  # plain tensors and containers only
    assert raw["iteration"] == 3 and raw["network"]["name"] == "light" and raw["pair"] == "ct_mri"
    split = raw["split"]
    assert not set(split["train_cases"]) & set(split["val_cases"]) and len(split["val_cases"]) == 1
    val_ids = {f"xg-{c.split('-')[1]}" for c in split["val_cases"]}
    assert not any(k.split("/")[1][:-3] in val_ids for k in split["train_pairs"])  # no slice of a val case
    assert set(split["val_loss_pairs"]) <= set(split["val_pairs"]) and len(split["val_loss_pairs"]) == 2
    assert len(split["val_pairs"]) == 2 * len(split["val_cases"])  # every pair of the validation cases
    assert len(split["train_sha256"]) == 64
    assert [h["iteration"] for h in raw["history"]] == [1, 2, 3]
    assert raw["validation"] and raw["provenance"]["seconds_per_iteration"] > 0
    assert not list(tmp_path.glob(".*part*"))  # no temporary file left behind
    slim = strip_training_state(raw)
    assert "optimizer" not in slim and "rng" not in slim and "model" in slim


def test_resume_equals_an_uninterrupted_run(harvard_tiny, tmp_path):
    straight = tmp_path / "straight.pt"
    train("ct_mri", "light", straight, config=TINY, data_dir=harvard_tiny, iterations=4, progress=False)
    parts = tmp_path / "parts.pt"
    train("ct_mri", "light", parts, config=TINY, data_dir=harvard_tiny, iterations=2, progress=False)
    with pytest.raises(OutputExistsError, match="--resume"):
        train("ct_mri", "light", parts, config=TINY, data_dir=harvard_tiny, iterations=4, progress=False)
    summary = train("ct_mri", "light", parts, data_dir=harvard_tiny, iterations=4, resume=True, progress=False)
    assert summary["iteration"] == 4
    a, b = read_checkpoint(straight), read_checkpoint(parts)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["split"] == b["split"]


def test_resume_refuses_another_method(harvard_tiny, tmp_path):
    out = tmp_path / "m.pt"
    train("ct_mri", "light", out, config=TINY, data_dir=harvard_tiny, iterations=1, progress=False)
    with pytest.raises(UnsupportedInputError, match="holds a 'light'"):
        train("ct_mri", "msra", out, data_dir=harvard_tiny, iterations=2, resume=True, progress=False)


def test_mdgan_trains_its_discriminators(harvard_tiny, tmp_path):
    out = tmp_path / "mdgan.pt"
    cfg = {**TINY, "adversarial": {"weight": 0.1, "channels": 4, "num_layers": 2},
           "network": {"kwargs": {"features": [4, 8], "growth": 4, "dense_layers": 2}}}
    summary = train("pet_mri", "mdgan", out, config=cfg, data_dir=harvard_tiny, iterations=2, progress=False)
    assert {"adv_g", "adv_d"} <= set(summary["final"])
    ckpt = read_checkpoint(out)
    assert any(k.startswith("anatomical_net") for k in ckpt["discriminators"])
    assert any(k.startswith("functional_net") for k in ckpt["discriminators"])


def test_no_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDFUSE_HARVARD", raising=False)
    with pytest.raises(UnsupportedInputError, match="--data"):
        train("ct_mri", "light", tmp_path / "x.pt", iterations=1, progress=False)
    with pytest.raises(UnsupportedInputError, match="pair"):
        train("mr_mri", "light", tmp_path / "x.pt", iterations=1, progress=False)


def test_cli_train(harvard_tiny, tmp_path, capsys):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "cli.pt"
    args = ["train", "--pair", "ct_mri", "--method", "light", "--data", str(harvard_tiny), "--config", str(cfg),
            "--iterations", "2", "--seed", "3", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    assert "iteration 2" in capsys.readouterr().out
    assert read_checkpoint(out)["config"]["seed"] == 3
    assert main(args) == 2  # exists: one-line error, no traceback
    assert "--resume" in capsys.readouterr().err


@pytest.mark.harvard
def test_real_harvard_split_never_shares_a_case(harvard_dir):
    from medfuse.training.data import load_harvard_slices, split_by_case

    for pair in ("ct_mri", "pet_mri"):
        slices = load_harvard_slices(harvard_dir, pair)
        train_cases, val_cases = split_by_case([s.case for s in slices], 0.2, 0)
        assert train_cases and val_cases and not set(train_cases) & set(val_cases)
        assert {s.case for s in slices} == set(train_cases) | set(val_cases)


def test_provenance_record_reproduces_its_config():
    """`medfuse train --config medfuse/weights/<pair>_<method>.json` trains with the shipped weights' config."""
    from medfuse.weights import WEIGHTS_DIR, provenance

    record = provenance("pet_mri", "light")
    cfg = load_config("light", WEIGHTS_DIR / "pet_mri_light.json")
    assert cfg["loss"] == record["config"]["loss"] and cfg["network"] == record["config"]["network"]
    assert cfg["iterations"] == record["iterations"] and cfg["seed"] == record["seed"]
