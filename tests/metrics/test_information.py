"""EN, MI, NMI, CE, QNCIE, FMI: analytic cases, bounds and agreement with scikit-image."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.metrics import (
    cross_entropy,
    entropy,
    feature_mutual_information,
    fusion_mutual_information,
    mutual_information,
    nonlinear_correlation_information_entropy,
    normalized_mutual_information,
)
from medfuse.metrics._core import to_uint8


def test_entropy_matches_skimage(images):
    skm = pytest.importorskip("skimage.measure")
    a, b = images
    f = (a + b) / 2
    assert entropy(f) == pytest.approx(skm.shannon_entropy(to_uint8(f), base=2), abs=1e-12)


def test_entropy_extremes():
    assert entropy(np.full((32, 32), 77.0)) == 0.0
    uniform = np.tile(np.arange(256.0), (16, 1))  # every grey level equally often
    assert entropy(uniform) == pytest.approx(8.0)


def test_to_uint8_rounds_half_to_even_and_clips():
    assert to_uint8(np.array([0.5, 1.5, 2.5, -3.0, 300.0])).tolist() == [0, 2, 2, 0, 255]


def test_mi_bounded_by_entropies_and_not_twice_en(images):
    a, b = images
    for f in ((a + b) / 2, np.maximum(a, b), a, 255 - b):
        h_f = entropy(f)
        for x in (a, b):
            mi = mutual_information(x, f)
            assert 0.0 <= mi <= min(entropy(x), h_f) + 1e-9
    f = (a + b) / 2
    # the published defect reports MI == 2 EN; a correct MI stays strictly below it here
    assert fusion_mutual_information(a, b, f) < 2 * entropy(f) - 0.1


def test_mi_identical_and_negative_equal_twice_the_entropy(images):
    a, _ = images
    assert fusion_mutual_information(a, a, a) == pytest.approx(2 * entropy(a))
    # MI is invariant to a bijection of grey levels: the negative carries all the information
    assert fusion_mutual_information(a, a, 255 - a) == pytest.approx(2 * entropy(a))
    assert normalized_mutual_information(a, a, a) == pytest.approx(2.0)


def test_mi_of_independent_noise_is_only_the_histogram_bias(noise):
    a, b, f = noise
    mi = mutual_information(a, f)
    # the plug-in estimate's bias, to first order (256 - 1)^2 / (2 N ln 2) = 0.72 bit for
    # N = 65536 (0.83 here), against H = 8 bits; it is all MI finds between independent images
    assert mi < 1.0
    assert mutual_information(a, a) == pytest.approx(entropy(a))
    assert normalized_mutual_information(a, b, f) < 0.25


def test_constant_images_carry_no_information(images):
    a, b = images
    c = np.full_like(a, 90.0)
    assert fusion_mutual_information(a, b, c) == 0.0
    assert normalized_mutual_information(a, b, c) == 0.0
    assert normalized_mutual_information(c, c, c) == 0.0  # 0/0 counts as 0, documented


def test_nmi_range(images, noise):
    a, b = images
    for f in ((a + b) / 2, np.maximum(a, b), noise[2][:192, :192]):
        assert 0.0 <= normalized_mutual_information(a, b, f) <= 2.0


def test_cross_entropy(images):
    a, b = images
    assert cross_entropy(a, a, a) == pytest.approx(0.0, abs=1e-12)
    # by hand from the 256-bin histograms, over the bins both use
    f = (a + b) / 2
    pf = np.bincount(to_uint8(f).ravel(), minlength=256) / f.size
    expected = []
    for x in (a, b):
        px = np.bincount(to_uint8(x).ravel(), minlength=256) / x.size
        both = (px > 0) & (pf > 0)
        expected.append(np.sum(px[both] * np.log2(px[both] / pf[both])))
    assert cross_entropy(a, b, f) == pytest.approx(np.mean(expected))
    assert cross_entropy(a, b, f) > 0


def test_qncie_analytic_cases(noise):
    # A = B = F with every grey level equally frequent: NCC = 1 everywhere, R = ones, QNCIE = 1
    x = np.random.default_rng(3).permutation(np.repeat(np.arange(256.0), 64)).reshape(128, 128)
    assert nonlinear_correlation_information_entropy(x, x, x) == pytest.approx(1.0)
    a, b, f = noise
    q = nonlinear_correlation_information_entropy(a, b, f)
    assert 0.0 <= q < nonlinear_correlation_information_entropy(a, b, (a + b) / 2) <= 1.0


def test_qncie_ignores_a_linear_stretch(images):
    a, b = images
    f = (a + b) / 2
    q = nonlinear_correlation_information_entropy(a, b, f)
    # Liu's normalize1 min-max stretches each image first
    assert nonlinear_correlation_information_entropy(a, b, f * 0.5 + 10) == pytest.approx(q, abs=0.01)


def test_fmi_identical_is_one_and_range(images, noise):
    a, b = images
    assert feature_mutual_information(a, a, a) == 1.0
    fused = feature_mutual_information(a[:96, :96], b[:96, :96], (a[:96, :96] + b[:96, :96]) / 2)
    indep = feature_mutual_information(*(x[:96, :96] for x in noise))
    assert 0.0 <= indep < fused <= 1.0


def test_fmi_window_matches_a_direct_loop(images):
    """The vectorized fast-FMI equals a plain per-window transcription of Haghighat's loop."""
    from medfuse.metrics.information import gradient_feature

    a, b = images
    a, b = a[60:80, 70:90], b[60:80, 70:90]
    f = np.maximum(a, b)
    n, w = 9, 1

    def pdf(p):
        p = p.T.ravel()  # MATLAB column-major
        span = p.max() - p.min()
        p = np.ones(n) if span == 0 else (p - p.min()) / span
        return p / p.sum()

    def window_fmi(xs, fs):
        if np.array_equal(xs, fs):
            return 1.0
        px, pf = pdf(xs), pdf(fs)
        cx, cf = np.cumsum(px), np.cumsum(pf)
        xt, ft = px - px.mean(), pf - pf.mean()
        c = 0.0 if np.sum(xt * ft) == 0 else np.sum(xt * ft) / np.sqrt(np.sum(xt * xt) * np.sum(ft * ft))
        i = np.arange(1, n + 1)
        sx = np.sqrt(np.sum(i * i * px) - np.sum(i * px) ** 2)
        sf = np.sqrt(np.sum(i * i * pf) - np.sum(i * pf) ** 2)
        bound = (lambda u, v: min(u, v)) if c >= 0 else (lambda u, v: max(u + v - 1, 0.0))
        cov = sum(bound(cf[p], cx[q]) - cf[p] * cx[q] for p in range(n) for q in range(n))
        ang = 0.0 if c == 0 or sx == 0 or sf == 0 else c * sx * sf / cov
        hj = 0.0
        for p in range(n):
            for q in range(n):
                def cdf(pp, qq):
                    return 0.0 if pp < 0 or qq < 0 else bound(cf[pp], cx[qq])
                up = cdf(p, q) - cdf(p - 1, q) - cdf(p, q - 1) + cdf(p - 1, q - 1)
                j = ang * up + (1 - ang) * pf[p] * px[q]
                if j != 0:
                    hj += -j * np.log2(abs(j))
        hx = -np.sum(px[px > 0] * np.log2(px[px > 0]))
        hf = -np.sum(pf[pf > 0] * np.log2(pf[pf > 0]))
        mi = hx + hf - hj
        return 0.0 if mi == 0 else 2 * mi / (hx + hf)

    fa, fb, ff = (gradient_feature(x) for x in (a, b, f))
    vals = []
    for r in range(w, a.shape[0] - w):
        for c_ in range(w, a.shape[1] - w):
            sl = (slice(r - w, r + w + 1), slice(c_ - w, c_ + w + 1))
            vals.append((window_fmi(fa[sl], ff[sl]) + window_fmi(fb[sl], ff[sl])) / 2)
    assert feature_mutual_information(a, b, f) == pytest.approx(np.mean(vals), rel=1e-9)


def test_masked_histograms_equal_the_cropped_image(images):
    a, b = images
    f = (a + b) / 2
    mask = np.zeros(a.shape, bool)
    mask[:, :100] = True
    crop = (slice(None), slice(0, 100))
    for fn in (fusion_mutual_information, normalized_mutual_information, cross_entropy,
               nonlinear_correlation_information_entropy):
        assert fn(a, b, f, mask) == pytest.approx(fn(a[crop], b[crop], f[crop]))
    assert entropy(f, mask) == pytest.approx(entropy(f[crop]))


def test_bad_inputs_name_the_problem():
    from medfuse.errors import NonFiniteError

    with pytest.raises(ValueError, match="2D"):
        entropy(np.zeros((4, 4, 4)))
    bad = np.zeros((8, 8))
    bad[1, 1] = np.nan
    with pytest.raises(NonFiniteError, match="1 NaN"):
        entropy(bad)
    with pytest.raises(ValueError, match="mask"):
        entropy(np.zeros((8, 8)), np.zeros((8, 8), bool))
