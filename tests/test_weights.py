"""Shipped weights: small, safe to load, with a provenance record; the defaults point at shipped files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medfuse.weights import WEIGHTS_DIR, default_network, provenance, shipped_weights

SHIPPED = sorted(shipped_weights().items())


def test_every_pair_has_a_default_network():
    for pair in ("ct_mri", "pet_mri", "spect_mri"):
        method = default_network(pair)
        assert method is not None, f"no default network shipped for {pair}"
        assert (pair, method) in shipped_weights()


@pytest.mark.parametrize("key,path", SHIPPED, ids=[f"{p}_{m}" for (p, m), _ in SHIPPED])
def test_weights_are_small_safe_and_documented(key, path):
    pair, method = key
    assert path.stat().st_size < 5 * 1024**2
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code
    assert ckpt["pair"] == pair and ckpt["network"]["name"] == method
    assert "optimizer" not in ckpt and "rng" not in ckpt  # training state stripped
    record = provenance(pair, method)
    for field in ("training_data", "config", "seed", "iterations", "provenance", "final_training_losses",
                  "final_validation_losses", "reproduce", "validation_metrics"):
        assert record.get(field) is not None, field
    assert len(record["training_data"]["train_sha256"]) == 64
    assert not set(record["training_data"]["train_cases"]) & set(record["training_data"]["val_cases"])
    assert "medfuse train" in record["reproduce"]
    assert record["provenance"]["git_commit"] and record["provenance"]["device"]


@pytest.mark.parametrize("pair", ["ct_mri", "pet_mri", "spect_mri"])
def test_default_network_fuses_a_slice(pair):
    from medfuse.fusion import fuse_arrays

    rng = np.random.default_rng(0)
    a, b = rng.random((60, 70), dtype=np.float32), rng.random((60, 70), dtype=np.float32)
    out = fuse_arrays(a, b, default_network(pair), pair=pair)
    assert out.shape == (60, 70) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
