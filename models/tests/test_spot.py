"""SPOT on synthetic data with a known tail."""

import math

import numpy as np
import pytest

from netwarden_models.evaluate.spot import Spot, fit_gpd, gpd_log_likelihood, spot_quantile


def gpd_samples(rng, gamma, sigma, n):
    u = rng.random(n)
    if gamma == 0:
        return -sigma * np.log(u)
    return sigma * (u ** (-gamma) - 1) / gamma


@pytest.mark.parametrize("gamma", [0.25, 0.0, -0.2])
def test_grimshaw_fit_recovers_the_shape(gamma):
    y = gpd_samples(np.random.default_rng(1), gamma, 2.0, 20000)
    g, s, ll = fit_gpd(y)
    assert g == pytest.approx(gamma, abs=0.04)
    assert s == pytest.approx(2.0, rel=0.06)
    # it is the maximum: nudging either parameter lowers the likelihood
    assert ll >= gpd_log_likelihood(y, g + 0.02, s) and ll >= gpd_log_likelihood(y, g, s * 1.03)


def test_threshold_matches_the_true_quantile_of_an_exponential():
    # Exp(1): P(X > z) = exp(-z); the risk-1e-3 quantile is ln(1000) = 6.91
    x = np.random.default_rng(2).exponential(1.0, 100_000)
    s = Spot(q=1e-3, level=0.98).fit(x)
    assert s.t == pytest.approx(-math.log(0.02), rel=0.03)
    assert s.z == pytest.approx(math.log(1000), rel=0.04)
    assert len(s.peaks) == pytest.approx(2000, abs=2)


def test_heavy_tail_threshold_beyond_the_sample_quantile():
    # Pareto-like (GPD gamma 0.5, sigma 1) scores: true risk-1e-4 quantile = (1e-4^-0.5 - 1)/0.5
    x = gpd_samples(np.random.default_rng(3), 0.5, 1.0, 50_000)
    s = Spot(q=1e-4, level=0.98).fit(x)
    want = (1e-4 ** -0.5 - 1) / 0.5  # 198
    assert s.z == pytest.approx(want, rel=0.25)


def test_streaming_flags_injected_extremes_and_keeps_learning():
    rng = np.random.default_rng(4)
    s = Spot(q=1e-4).fit(rng.exponential(1.0, 20_000))
    stream = rng.exponential(1.0, 5000)
    stream[[100, 2000, 4000]] = 40.0
    alarms, zs = s.run(stream)
    assert set(np.nonzero(alarms)[0]) >= {100, 2000, 4000}
    assert alarms.sum() <= 6  # about q * 5000 = 0.5 false alarms expected
    assert s.n == 20_000 + 5000 - int(alarms.sum())
    assert np.all(np.isfinite(zs))


def test_formula_and_errors():
    assert spot_quantile(1.0, 0.0, 2.0, 0.01, 1000, 100) == pytest.approx(1.0 + 2.0 * math.log(10))
    assert spot_quantile(1.0, 0.5, 2.0, 0.01, 1000, 100) == pytest.approx(1.0 + 4.0 * (10 ** 0.5 - 1))
    with pytest.raises(ValueError, match="at least 10 peaks"):
        Spot().fit(np.arange(50.0))
