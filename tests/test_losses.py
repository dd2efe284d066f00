"""Fusion losses against hand-computed values on tiny tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics.regression import compute_ssim_and_cs

from medfuse.losses import (
    FusionLoss,
    adversarial_loss,
    gradient_loss,
    gradient_magnitude,
    intensity_loss,
    scd_loss,
    local_variance,
    ssim_loss,
    ssim_map,
    var_ssim_loss,
    vif_loss,
)

C1, C2 = 0.01**2, 0.03**2


def t(a) -> torch.Tensor:
    """(H, W[, D]) array -> (1, 1, H, W[, D]) float32 tensor."""
    return torch.as_tensor(np.asarray(a, dtype=np.float32))[None, None]


def ssim_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al.'s SSIM of one window with uniform weights and population (co)variances."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    mx, my = x.mean(), y.mean()
    vx, vy = ((x - mx) ** 2).mean(), ((y - my) ** 2).mean()
    cov = ((x - mx) * (y - my)).mean()
    return (2 * mx * my + C1) * (2 * cov + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2))


@pytest.mark.parametrize("kernel_type", ["gaussian", "uniform"])
@pytest.mark.parametrize("dims", [2, 3])
def test_ssim_map_equals_monai(kernel_type, dims):
    g = torch.Generator().manual_seed(0)
    shape = (2, 1) + (13, 15, 12)[:dims]
    x = torch.rand(shape, generator=g)
    y = 0.6 * x + 0.4 * torch.rand(shape, generator=g)
    ours = ssim_map(x, y, kernel_type=kernel_type)
    ref, _ = compute_ssim_and_cs(x, y, dims, [11] * dims, [1.5] * dims, kernel_type=kernel_type)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5)


def test_ssim_one_window_by_hand():
    rng = np.random.default_rng(1)
    x, y = rng.random((11, 11)), rng.random((11, 11))
    got = ssim_map(t(x), t(y), kernel_type="uniform")
    assert got.shape == (1, 1, 1, 1)
    assert float(got) == pytest.approx(ssim_by_hand(x, y), abs=1e-5)


def test_ssim_loss_weights_both_sources():
    rng = np.random.default_rng(2)
    a, b = rng.random((11, 11)), rng.random((11, 11))
    assert float(ssim_loss(t(a), t(a), t(a))) == pytest.approx(0.0, abs=1e-6)
    expected = 1 - (0.25 * 1.0 + 0.75 * ssim_by_hand(a, b))
    assert float(ssim_loss(t(a), t(a), t(b), weight_a=0.25, kernel_type="uniform")) == pytest.approx(expected, abs=1e-5)


def test_var_ssim_single_window_picks_higher_variance():
    rng = np.random.default_rng(3)
    a = rng.random((11, 11))  # high variance
    b = 0.5 + 0.01 * rng.random((11, 11))  # low variance
    f = 0.5 * (a + b)
    loss = var_ssim_loss(t(f), t(a), t(b))
    assert float(loss) == pytest.approx(1 - ssim_by_hand(f, a), abs=1e-5)
    swapped = var_ssim_loss(t(f), t(b), t(a))  # the high-variance source is now B
    assert float(swapped) == pytest.approx(1 - ssim_by_hand(f, a), abs=1e-5)


def test_var_ssim_selects_per_window():
    """Two windows (11x12 image): window 0 sees A's varying column 0, window 1 does not."""
    a = np.full((11, 12), 0.3)
    a[::2, 0] = 0.9  # varies only in column 0: var(A) > 0 in window 0, = 0 in window 1
    b = np.full((11, 12), 0.4)
    b[::3, 5] = 0.45  # small variance in both windows
    f = np.linspace(0, 1, 132).reshape(11, 12)
    w0, w1 = (slice(None), slice(0, 11)), (slice(None), slice(1, 12))
    assert a[w0].var() > b[w0].var() and a[w1].var() < b[w1].var()
    expected = 1 - 0.5 * (ssim_by_hand(f[w0], a[w0]) + ssim_by_hand(f[w1], b[w1]))
    assert float(var_ssim_loss(t(f), t(a), t(b))) == pytest.approx(expected, abs=1e-5)


def test_var_ssim_ties_go_to_b():
    a = np.full((11, 11), 0.2)
    b = np.full((11, 11), 0.7)  # both constant: equal (zero) variance -> SSIM(F, B)
    f = np.full((11, 11), 0.7)
    assert float(var_ssim_loss(t(f), t(a), t(b))) == pytest.approx(0.0, abs=1e-6)


def test_local_variance_by_hand():
    rng = np.random.default_rng(4)
    x = rng.random((11, 13))
    v = local_variance(t(x)).numpy()[0, 0]
    assert v.shape == (1, 3)
    assert v[0, 2] == pytest.approx(x[:, 2:13].var(), abs=1e-5)


def test_gradient_magnitude_of_ramps():
    ramp = np.tile(0.1 * np.arange(6), (5, 1))  # rises 0.1 per pixel along the columns
    g = gradient_magnitude(t(ramp)).numpy()[0, 0]
    assert np.allclose(g[:, 1:-1], 0.1, atol=1e-6)
    assert np.allclose(g[:, [0, -1]], 0.05, atol=1e-6)  # replicate padding: half a step at the border
    vol = np.broadcast_to(0.2 * np.arange(4), (4, 4, 4)).copy()  # along the third axis
    g3 = gradient_magnitude(t(vol)).numpy()[0, 0]
    assert np.allclose(g3[:, :, 1:-1], 0.2, atol=1e-6) and np.allclose(g3[:, :, 0], 0.1, atol=1e-6)
    diag = np.add.outer(0.1 * np.arange(5), 0.3 * np.arange(5))  # L1 norm: |gx| + |gy|
    assert gradient_magnitude(t(diag)).numpy()[0, 0, 2, 2] == pytest.approx(0.4, abs=1e-6)


def test_gradient_loss_by_hand():
    a = np.tile(0.1 * np.arange(6), (5, 1))  # |grad| 0.1 inside, 0.05 on the first/last column
    b = np.tile(0.2 * np.arange(5)[:, None], (1, 6))  # |grad| 0.2 inside, 0.1 on the first/last row
    f = np.zeros((5, 6))
    # target max(|gA|, |gB|): 0.2 on the 3 inner rows, 0.1 on the 2 border rows
    expected = (3 * 6 * 0.2 + 2 * 6 * 0.1) / 30
    assert float(gradient_loss(t(f), t(a), t(b))) == pytest.approx(expected, abs=1e-6)
    # F = B: |gB| >= |gA| everywhere (0.2 vs <= 0.1 inside, 0.1 vs <= 0.1 on the border rows)
    assert float(gradient_loss(t(b), t(a), t(b))) == pytest.approx(0.0, abs=1e-6)


def test_intensity_loss_by_hand():
    f = t([[0.0, 0.0]])
    a, b = t([[0.2, 0.8]]), t([[0.5, 0.1]])
    assert float(intensity_loss(f, a, b)) == pytest.approx((0.5 + 0.8) / 2)
    # saliency = the intensity itself (window 1): target (a^2 + b^2) / (a + b)
    expected = ((0.04 + 0.25) / 0.7 + (0.64 + 0.01) / 0.9) / 2
    assert float(intensity_loss(f, a, b, mode="saliency", window=1)) == pytest.approx(expected, abs=1e-6)
    zero = t([[0.0, 0.0]])
    assert float(intensity_loss(zero, zero, zero, mode="saliency", window=1)) == 0.0
    with pytest.raises(ValueError, match="mode"):
        intensity_loss(f, a, b, mode="mean")


def test_adversarial_least_squares_by_hand():
    pred = torch.tensor([[[[1.0, 0.0]]]])
    assert float(adversarial_loss(pred, True, True)) == pytest.approx(0.5)  # ((1-1)^2 + (0-1)^2) / 2
    assert float(adversarial_loss(pred, False, True)) == pytest.approx(0.5)  # (1^2 + 0^2) / 2
    assert float(adversarial_loss(torch.full((1, 1, 2, 2), 0.5), True, False)) == pytest.approx(0.25)


def test_fusion_loss_combines_terms():
    g = torch.Generator().manual_seed(5)
    f, a, b = (torch.rand(2, 1, 16, 16, generator=g) for _ in range(3))
    f.requires_grad_(True)
    loss = FusionLoss({"var_ssim": 1.0, "gradient": 2.0, "intensity": 0.5, "ssim": 0.0})
    total, terms = loss(f, a, b)
    assert set(terms) == {"var_ssim", "gradient", "intensity"}
    with torch.no_grad():
        expected = float(var_ssim_loss(f, a, b)) + 2 * float(gradient_loss(f, a, b)) + 0.5 * float(intensity_loss(f, a, b))
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert torch.isfinite(f.grad).all() and float(f.grad.abs().sum()) > 0


def test_scd_loss_matches_the_scd_metric():
    from medfuse.metrics import compute_metrics

    g = torch.Generator().manual_seed(7)
    a, b = torch.rand(2, 1, 32, 32, generator=g), torch.rand(2, 1, 32, 32, generator=g)
    f = torch.maximum(a, b) + 0.1 * torch.rand(2, 1, 32, 32, generator=g)
    scd = [compute_metrics((a[i, 0].numpy(), b[i, 0].numpy()), f[i, 0].numpy(), metrics=["SCD"])["SCD"]
           for i in range(2)]
    assert float(scd_loss(f, a, b)) == pytest.approx(2.0 - np.mean(scd), rel=1e-5)
    # F = A + B explains each source exactly by the other's difference: SCD = 2, loss 0
    assert float(scd_loss(a + b, a, b)) == pytest.approx(0.0, abs=1e-5)


def test_vif_loss_is_the_benchmarks_vif(harvard_dir):
    """The VIF term is the metric the benchmark reports (pixel-domain VIF, 'valid' borders), on real pairs
    we did not make: AANLIB CT-MRI and PET-MRI slices, three fusions each (max, mean, a noisy max)."""
    from PIL import Image

    from medfuse.metrics.structural import visual_information_fidelity

    rng = np.random.default_rng(0)
    t = lambda v: torch.from_numpy(np.ascontiguousarray(v / 255.0, dtype=np.float32))[None, None]  # noqa: E731
    for pair, other in (("ct_mri", "ct"), ("pet_mri", "pet")):
        case = sorted(p for p in (harvard_dir / pair).iterdir() if p.is_dir())[5]
        a = np.asarray(Image.open(case / "mri.png").convert("L"), np.float64)
        b = np.asarray(Image.open(case / f"{other}.png").convert("L"), np.float64)
        fusions = {"max": np.maximum(a, b), "mean": 0.5 * (a + b),
                   "noisy": np.clip(np.maximum(a, b) + rng.normal(0, 8, a.shape), 0, 255)}
        values = {}
        for name, f in fusions.items():
            ours = 2.0 * (1.0 - float(vif_loss(t(f), t(a), t(b))))
            assert ours == pytest.approx(visual_information_fidelity(a, b, f), abs=1e-4)
            values[name] = ours
        assert values["max"] > values["noisy"] and values["max"] > values["mean"]
    f = t(fusions["mean"]).requires_grad_(True)
    vif_loss(f, t(a), t(b)).backward()
    assert torch.isfinite(f.grad).all() and float(f.grad.abs().sum()) > 0
    # the loss falls when the fused image moves towards the sources' own contrast
    assert float(vif_loss(t(fusions["max"]), t(a), t(b))) < float(vif_loss(t(fusions["mean"]), t(a), t(b)))
    loss, terms = FusionLoss({"vif": 1.0})(t(fusions["max"]), t(a), t(b))
    assert set(terms) == {"vif"} and float(loss) == pytest.approx(float(vif_loss(t(fusions["max"]), t(a), t(b))))
    with pytest.raises(ValueError, match="41 pixels"):
        vif_loss(t(a)[..., :40, :40], t(a)[..., :40, :40], t(b)[..., :40, :40])


def test_errors():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="unknown loss"):
        FusionLoss({"perceptual": 1.0})
    with pytest.raises(ValueError, match="non-zero"):
        FusionLoss({"var_ssim": 0.0})
    with pytest.raises(ValueError, match="share one shape"):
        var_ssim_loss(x, x, torch.rand(1, 1, 16, 15))
    with pytest.raises(ValueError, match="window"):
        var_ssim_loss(x[..., :8, :8], x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        gradient_magnitude(torch.rand(16, 16))
