"""EWMA volatility and drift recover a seeded path's parameters; time in range behaves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpbot.analytics.types import FloatArray, PriceHistory
from lpbot.analytics.volatility import (
    annualised,
    ewma_drift,
    ewma_volatility,
    expected_time_in_range,
    log_returns,
    per_sqrt_second,
    variance_time,
)

from .helpers import YEAR, gbm_history


def test_recovers_the_volatility_of_a_seeded_path() -> None:
    history = gbm_history(50_000, sigma_annual=0.8, seed=5)
    sigma = ewma_volatility(history, halflife_seconds=10 * 86_400)
    assert annualised(sigma) == pytest.approx(0.8, rel=0.03)
    assert per_sqrt_second(annualised(sigma)) == pytest.approx(sigma)


def test_irregular_sampling_gives_the_same_rate() -> None:
    history = gbm_history(50_000, sigma_annual=0.5, seed=6)
    keep = np.sort(np.random.default_rng(1).choice(50_000, 20_000, replace=False))
    sparse = PriceHistory(history.timestamps[keep], history.prices[keep])
    assert annualised(ewma_volatility(sparse, 10 * 86_400)) == pytest.approx(0.5, rel=0.05)


def test_drift_has_the_sign_of_the_trend() -> None:
    up = gbm_history(5_000, sigma_annual=0.3, mu_annual=40.0, seed=2)
    down = gbm_history(5_000, sigma_annual=0.3, mu_annual=-40.0, seed=2)
    assert ewma_drift(up, 86_400) > 0 > ewma_drift(down, 86_400)
    assert ewma_drift(up, 86_400) * YEAR == pytest.approx(40.0 - 0.5 * 0.09, rel=0.3)


def test_time_in_range() -> None:
    assert expected_time_in_range(0.1, 0.1, 0.0, 3600) == 1.0
    assert expected_time_in_range(-0.1, 0.2, 0.0, 3600) == 0.0  # range above the price
    sigma = per_sqrt_second(0.6)
    narrow = expected_time_in_range(0.005, 0.005, sigma, 86_400)
    wide = expected_time_in_range(0.05, 0.05, sigma, 86_400)
    huge = expected_time_in_range(5.0, 5.0, sigma, 86_400)
    assert 0 < narrow < wide < huge <= 1.0
    assert huge == pytest.approx(1.0)
    # one-sided by symmetry: half the time above the price, none below
    assert expected_time_in_range(0.0, 50.0, sigma, 86_400) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="horizon"):
        expected_time_in_range(0.1, 0.1, sigma, 0)


def test_needs_two_prices() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        log_returns(PriceHistory([0.0], [1.0]))
    with pytest.raises(ValueError, match="halflife"):
        ewma_volatility(gbm_history(10), 0)
    assert math.isfinite(ewma_volatility(gbm_history(3), 60))


@pytest.mark.parametrize("k", [1, 2, 5, 30])
def test_k_step_returns_of_means_carry_1_minus_1_over_3k_of_the_variance(k: int) -> None:
    assert float(variance_time(60.0 * k, 60.0)) / (60.0 * k) == pytest.approx(1 - 1 / (3 * k))
    assert float(variance_time(60.0 * k, 0.0)) == 60.0 * k  # point prices: no correction


def test_variance_time_of_means_matches_simulation() -> None:
    # Brownian paths on a 1/60 s grid; means over the last A = 1 s before each end time
    rng = np.random.default_rng(21)
    fine = 60
    paths = np.cumsum(rng.standard_normal((20_000, 4 * fine)), axis=1) / math.sqrt(fine)

    def mean_ending(t: float) -> FloatArray:
        end = round(t * fine)
        window: FloatArray = paths[:, end - fine : end].mean(axis=1)
        return window

    for dt in (0.25, 0.5, 1.0, 2.0):
        r = mean_ending(1.0 + dt) - mean_ending(1.0)
        assert float(np.var(r)) == pytest.approx(float(variance_time(dt, 1.0)), rel=0.04)


def test_volatility_of_interval_means_is_corrected() -> None:
    history = gbm_history(5_000, step_seconds=60, sigma_annual=0.5, seed=9)
    as_means = PriceHistory(history.timestamps, history.prices, averaging_seconds=60.0)
    assert ewma_volatility(as_means, 86_400) == pytest.approx(
        ewma_volatility(history, 86_400) / math.sqrt(2 / 3)
    )
    assert as_means.since(history.timestamps[10]).averaging_seconds == 60.0
    with pytest.raises(ValueError, match="averaging_seconds"):
        PriceHistory([0, 1], [1, 1], averaging_seconds=-1)
