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
    required = ["training_data", "config", "seed", "iterations", "provenance", "final_training_losses", "reproduce",
                "validation_metrics"]
    if record["training_data"]["val_cases"]:  # weights trained on every case have no validation loss
        required.append("final_validation_losses")
    for field in required:
        assert record.get(field) is not None, field
    assert len(record["training_data"]["train_sha256"]) == 64
    assert not set(record["training_data"]["train_cases"]) & set(record["training_data"]["val_cases"])
    assert "medfuse train" in record["reproduce"]
    assert record["provenance"]["git_commit"] and record["provenance"]["device"]


def _validation_slice(harvard_dir, pair: str, network: str) -> tuple[np.ndarray, np.ndarray]:
    """The middle pair of the weights' validation cases (not trained on; weights trained on every case: of all
    the task's pairs): the MRI and the other scan's luminance, read here with PIL (the AANLIB RGB -> Y rule),
    in [0, 1]."""
    import csv

    from PIL import Image

    val_cases = provenance(pair, network)["training_data"]["val_cases"]
    with open(harvard_dir / "index.csv", newline="") as f:
        ids = sorted({r["pair_id"] for r in csv.DictReader(f)
                      if r["modality"] == pair and (not val_cases or r["case"] in val_cases)})
    folder = harvard_dir / pair / ids[len(ids) // 2]

    def luminance(path):
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
        return (rgb @ [0.299, 0.587, 0.114]).astype(np.float32)

    other = next(p for p in sorted(folder.glob("*.png")) if p.name != "mri.png")
    return luminance(folder / "mri.png"), luminance(other)


@pytest.mark.parametrize("pair", ["ct_mri", "pet_mri", "spect_mri"])
def test_default_network_fuses_a_slice(pair, harvard_dir):
    """The default network fuses a real slice pair with the weights shipped for its pair (not another pair's), and
    gives an image fused with itself back. (fuse_arrays clips to [0, 1]: a range check could not fail.)"""
    from scipy import ndimage

    from medfuse.fusion import fuse_arrays

    network = default_network(pair)
    mri, other = _validation_slice(harvard_dir, pair, network)
    out = fuse_arrays(mri, other, network, pair=pair)
    assert out.shape == mri.shape and out.dtype == np.float32
    # the pair picks its own weights: the same numbers as that file given explicitly ...
    np.testing.assert_array_equal(out, fuse_arrays(mri, other, network, weights=str(shipped_weights()[(pair, network)])))
    # ... and the weights matter: another pair's weights fuse this slice differently (session 12: mean |diff|
    # 0.004-0.086, max 0.10-0.81, 12-44% of the pixels off by more than 0.01; the least: the SPECT slice with the PET
    # weights, since the SPECT weights were trained on SPECT drawn in the PET map's colours too)
    for wrong in sorted({"ct_mri", "pet_mri", "spect_mri"} - {pair}):  # (logs that the weights are another pair's)
        other_weights = fuse_arrays(mri, other, network, weights=str(shipped_weights()[(wrong, network)]), pair=pair)
        diff = np.abs(other_weights - out)
        assert diff.max() > 0.05 and (diff > 0.01).mean() > 0.05, f"{pair}: the {wrong} weights give the same image"
    # fused with itself, the MRI comes back: a blend network's base w a + (1 - w) a is a, and its detail residual is
    # bounded by a quarter of the local contrast (a 3 x 3 range after a sigma-1 Gaussian: within an 11-pixel range);
    # a pyramid network's every level is a convex blend of a's own coefficients with themselves
    itself = fuse_arrays(mri, mri, network, pair=pair)
    window = ndimage.maximum_filter(mri, size=11) - ndimage.minimum_filter(mri, size=11)
    assert (np.abs(itself - mri) <= 0.25 * window + 1e-5).all()
    assert np.abs(itself - mri).mean() < 0.02  # measured 0.004-0.009 on these slices


def test_a_network_default_falls_back_to_the_classical_choice_without_torch():
    """defaults.json's "without_torch": a pair whose default is a network gets the decision's classical method
    where torch is missing (pip install without the networks extra); classical defaults are the same either way."""
    import json

    from medfuse.classical import CLASSICAL_METHODS
    from medfuse.weights import WEIGHTS_DIR, default_method_for_pair

    data = json.loads((WEIGHTS_DIR / "defaults.json").read_text())
    for pair, method in data["method"].items():
        without = default_method_for_pair(pair, with_torch=False)
        assert without in CLASSICAL_METHODS, (pair, without)
        if method in CLASSICAL_METHODS:
            assert without == method == default_method_for_pair(pair, with_torch=True)
        else:
            assert without == data["without_torch"][pair]
            assert default_method_for_pair(pair, with_torch=True) == method
