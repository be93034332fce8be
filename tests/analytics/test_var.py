"""VaR by full revaluation over historical and simulated returns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpbot.analytics.greeks import greeks_at
from lpbot.analytics.types import PoolSnapshot, PositionSnapshot, PriceHistory
from lpbot.analytics.value import PositionCurve
from lpbot.analytics.var import (
    ewma_correlation,
    historical_returns,
    position_var,
    value_at_risk,
)
from lpbot.analytics.volatility import per_sqrt_second
from lpbot.uniswap import Pool
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

from .helpers import gbm_history

HISTORY = gbm_history(20_000, sigma_annual=0.7, seed=11)  # two weeks of minutes
CURVE = PositionCurve(liquidity=2_000.0, price_lower=2_500.0, price_upper=3_600.0)


def test_var_grows_with_the_horizon_and_methods_agree() -> None:
    price = float(HISTORY.prices[-1])
    curve = PositionCurve(2_000.0, price * 0.85, price * 1.15)
    estimates = value_at_risk(curve, price, HISTORY, halflife_seconds=5 * 86_400)
    assert [e.horizon_seconds for e in estimates] == [60.0, 300.0, 1800.0]
    for e in estimates:
        assert e.historical_usd is not None and e.historical_usd > 0
        assert e.parametric_usd == pytest.approx(e.historical_usd, rel=0.25)
        # an unhedged in-range LP is long the risky token: delta-normal is close for small moves
        assert e.parametric_usd == pytest.approx(e.delta_normal_usd, rel=0.1)
    assert estimates[0].parametric_usd < estimates[1].parametric_usd < estimates[2].parametric_usd
    # sqrt-time scaling of a diffusion
    assert estimates[2].parametric_usd / estimates[0].parametric_usd == pytest.approx(
        math.sqrt(30), rel=0.1
    )


def test_hedged_position_keeps_its_gamma_risk() -> None:
    price = 3_000.0
    delta = greeks_at(CURVE, price).delta
    sigma = per_sqrt_second(0.8)
    (hedged,) = value_at_risk(
        CURVE, price, HISTORY, horizons=[1800], hedge=-delta, sigma_per_sqrt_second=sigma
    )
    assert hedged.delta_normal_usd == pytest.approx(0, abs=1e-9)  # delta-only sees no risk
    assert hedged.parametric_usd > 0  # full revaluation sees the gamma loss
    # short gamma loses about 0.5 |gamma| dS^2 on either side: the 99% loss is the move that
    # either tail reaches 1% of the time, |z| = 2.576
    move = price * sigma * math.sqrt(1800) * 2.576
    gamma = greeks_at(CURVE, price).gamma
    assert hedged.parametric_usd == pytest.approx(0.5 * abs(gamma) * move**2, rel=0.05)


def test_out_of_range_above_has_no_price_risk() -> None:
    (e,) = value_at_risk(CURVE, 10_000.0, HISTORY, horizons=[300])
    assert e.parametric_usd == pytest.approx(0, abs=1e-9)
    assert e.historical_usd == pytest.approx(0, abs=1e-9)


def test_short_history_has_no_historical_var() -> None:
    (e,) = value_at_risk(
        CURVE, 3_000.0, gbm_history(20), horizons=[1800], sigma_per_sqrt_second=1e-4
    )
    assert e.historical_usd is None and e.historical_scenarios == 0
    assert e.parametric_usd > 0


def test_historical_returns_are_independent_windows() -> None:
    returns = historical_returns(HISTORY, 300)
    assert returns.size == (HISTORY.prices.size - 1) // 5  # whole 5-minute windows, no overlap
    p = HISTORY.prices
    assert returns[-1] == pytest.approx(math.log(p[-1] / p[-6]))
    assert returns[-2] == pytest.approx(math.log(p[-6] / p[-11]))
    assert float(np.sum(returns)) == pytest.approx(math.log(p[-1] / p[-1 - 5 * returns.size]))


def test_a_history_coarser_than_the_horizon_has_no_returns_of_it() -> None:
    hourly = gbm_history(200, step_seconds=3600, seed=3)
    assert historical_returns(hourly, 60).size == 0
    assert historical_returns(hourly, 7200).size == 99
    (e,) = value_at_risk(CURVE, 3_000.0, hourly, horizons=[60])
    assert e.historical_usd is None and e.historical_scenarios == 0


def test_overlapping_windows_are_not_enough_history() -> None:
    # 90 minutes of minutes: 60 overlapping 30-minute windows, but 3 independent ones
    rising = gbm_history(91, sigma_annual=0.8, mu_annual=40.0, seed=2)
    assert rising.prices[-1] > rising.prices[0]
    one, five, thirty = value_at_risk(CURVE, 3_000.0, rising)
    assert (one.historical_scenarios, five.historical_scenarios) == (90, 18)
    assert one.historical_usd is not None and one.historical_usd > 0
    assert five.historical_usd is None and thirty.historical_usd is None
    assert thirty.historical_scenarios == 3 and thirty.parametric_usd > 0
    (few,) = value_at_risk(CURVE, 3_000.0, rising, horizons=[1800], min_windows=3)
    assert few.historical_usd is not None


def _monte_carlo_var(
    curve: PositionCurve, price: float, sigma: float, horizon: float, hedge: float = 0.0
) -> float:
    sd = sigma * math.sqrt(horizon)
    moved = price * np.exp(np.random.default_rng(5).normal(-0.5 * sd * sd, sd, 1_000_000))
    pnl = curve.values(moved) - curve.value(price) + hedge * (moved - price)
    return -float(np.quantile(pnl, 0.01))


@pytest.mark.parametrize("hedged", [False, True])
def test_var_at_a_known_volatility_matches_monte_carlo(hedged: bool) -> None:
    sigma = per_sqrt_second(0.8)
    hedge = -greeks_at(CURVE, 3_000.0).delta if hedged else 0.0
    estimates = value_at_risk(CURVE, 3_000.0, HISTORY, hedge=hedge, sigma_per_sqrt_second=sigma)
    for e in estimates:
        mc = _monte_carlo_var(CURVE, 3_000.0, sigma, e.horizon_seconds, hedge)
        assert e.parametric_usd == pytest.approx(mc, rel=0.01)
    # the historical VaR of a long path at 0.8 agrees with the Monte Carlo at 0.8
    long = gbm_history(150_001, sigma_annual=0.8, seed=4)
    price = float(long.prices[-1])
    curve = PositionCurve(2_000.0, price * 0.85, price * 1.15)
    (e,) = value_at_risk(curve, price, long, horizons=[300])
    assert e.historical_scenarios == 30_000
    assert e.historical_usd == pytest.approx(
        _monte_carlo_var(curve, price, per_sqrt_second(0.8), 300), rel=0.05
    )


def test_var_from_interval_means_is_corrected_and_says_so() -> None:
    # one price a second for four days; the bot sees either the price or the mean every minute
    rng = np.random.default_rng(1)
    s = per_sqrt_second(0.8)
    log_p = math.log(3_000.0) + np.cumsum(rng.normal(-0.5 * s * s, s, 345_600))
    t = np.arange(60, 345_601, 60, dtype=np.float64)
    points = PriceHistory(t, np.exp(log_p[59::60]))
    means = PriceHistory(t, np.exp(log_p.reshape(-1, 60).mean(axis=1)), averaging_seconds=60.0)
    old = PriceHistory(t, means.prices)  # means read as prices: what was done before
    kw = {"halflife_seconds": 1e12, "horizons": [60.0, 300.0]}
    by_points = value_at_risk(CURVE, 3_000.0, points, **kw)  # type: ignore[arg-type]
    by_means = value_at_risk(CURVE, 3_000.0, means, **kw)  # type: ignore[arg-type]
    by_old = value_at_risk(CURVE, 3_000.0, old, **kw)  # type: ignore[arg-type]
    for p, m in zip(by_points, by_means, strict=True):
        mc = _monte_carlo_var(CURVE, 3_000.0, s, p.horizon_seconds)
        assert p.parametric_usd == pytest.approx(mc, rel=0.03)
        assert m.parametric_usd == pytest.approx(mc, rel=0.03)
        assert p.historical_usd == pytest.approx(mc, rel=0.15)
        assert m.historical_usd == pytest.approx(mc, rel=0.15)
        assert p.price_basis.startswith("point prices")
        assert m.price_basis.startswith("60 s mean prices (variance corrected")
    assert by_old[0].parametric_usd < 0.85 * by_points[0].parametric_usd


def _joint_paths(
    n: int, sigma_s: float, sigma_q: float, rho: float, seed: int
) -> tuple[PriceHistory, PriceHistory]:
    """Minute prices of WBTC in WETH (``S``) and of WETH in USD (``Q``), correlated."""
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal((2, n - 1))
    a, b = per_sqrt_second(sigma_s) * math.sqrt(60), per_sqrt_second(sigma_q) * math.sqrt(60)
    rs = -0.5 * a * a + a * z1
    rq = -0.5 * b * b + b * (rho * z1 + math.sqrt(1 - rho * rho) * z2)
    t = np.arange(n) * 60.0
    s = PriceHistory(t, 30.0 * np.exp(np.concatenate(([0.0], np.cumsum(rs)))))
    q = PriceHistory(t, 3_000.0 * np.exp(np.concatenate(([0.0], np.cumsum(rq)))))
    return s, q


def test_usd_var_of_a_pool_quoted_in_a_volatile_token_includes_its_price_risk() -> None:
    s_hist, q_hist = _joint_paths(100_001, 0.5, 0.7, 0.4, seed=12)
    price, quote_usd = float(s_hist.prices[-1]), float(q_hist.prices[-1])
    curve = PositionCurve(100.0, price * 0.8, price * 1.25)  # WBTC in WETH
    hedge = -0.5 * greeks_at(curve, price).delta
    kw = {"halflife_seconds": 1e12, "hedge": hedge, "quote_usd": quote_usd}
    fixed = value_at_risk(curve, price, s_hist, **kw)  # type: ignore[arg-type]
    joint = value_at_risk(curve, price, s_hist, quote_usd_history=q_hist, **kw)  # type: ignore[arg-type]
    e = joint[-1]
    assert "joint with the quote token's USD price" in e.price_basis
    assert "held fixed" in fixed[-1].price_basis and fixed[-1].correlation is None
    assert e.quote_sigma_per_sqrt_second is not None and e.correlation is not None
    assert e.quote_sigma_per_sqrt_second == pytest.approx(per_sqrt_second(0.7), rel=0.03)
    assert e.correlation == pytest.approx(0.4, abs=0.03)
    assert joint[-1].parametric_usd > 1.5 * fixed[-1].parametric_usd  # WETH's own risk counts
    # Monte Carlo of both marks at the estimated parameters
    rng = np.random.default_rng(3)
    for j in joint:
        h = j.horizon_seconds
        a = j.sigma_per_sqrt_second * math.sqrt(h)
        b = (j.quote_sigma_per_sqrt_second or 0.0) * math.sqrt(h)
        rho = j.correlation or 0.0
        z1, z2 = rng.standard_normal((2, 1_000_000))
        s1 = price * np.exp(-0.5 * a * a + a * z1)
        q1 = quote_usd * np.exp(-0.5 * b * b + b * (rho * z1 + math.sqrt(1 - rho * rho) * z2))
        pnl = (curve.values(s1) + hedge * s1) * q1 - (
            curve.value(price) + hedge * price
        ) * quote_usd
        mc = -float(np.quantile(pnl, 0.01))
        assert j.parametric_usd == pytest.approx(mc, rel=0.02)
        assert j.historical_usd == pytest.approx(mc, rel=0.15)
    # a quote mark ten times sparser gives the same correlation, not one diluted by zero returns
    sparse = PriceHistory(q_hist.timestamps[::10], q_hist.prices[::10])
    assert ewma_correlation(s_hist, sparse, 1e12) == pytest.approx(0.4, abs=0.04)
    assert ewma_correlation(sparse, s_hist, 1e12) == ewma_correlation(s_hist, sparse, 1e12)
    # the same position seen from the other token's side (quote = token0) has the same VaR
    inverted = PriceHistory(s_hist.timestamps, 1 / s_hist.prices)
    flipped = PositionCurve(curve.liquidity, 1 / curve.price_upper, 1 / curve.price_lower)
    other = value_at_risk(
        flipped,
        price,
        inverted,
        quote=0,
        quote_usd_history=q_hist,
        **kw,  # type: ignore[arg-type]
    )
    for x, y in zip(joint, other, strict=True):
        assert y.parametric_usd == pytest.approx(x.parametric_usd, rel=1e-9)
        assert y.historical_usd == pytest.approx(x.historical_usd, rel=1e-9)


def test_position_var_in_usd_with_token0_as_quote() -> None:
    # token0 = USDC (6), token1 = WETH (18): quote is token0; history is WETH per USDC
    pool = Pool(500, 10, get_sqrt_ratio_at_tick(196_250))
    pool.mint("lp", 194_000, 198_000, 10**16)
    snapshot = PoolSnapshot.from_pool(pool, decimals0=6, decimals1=18)
    position = PositionSnapshot.from_pool(pool, "lp", 194_000, 198_000)
    inverted = type(HISTORY)(HISTORY.timestamps, 1 / HISTORY.prices)
    estimates = position_var(snapshot, position, inverted, quote=0, quote_usd=1.0)
    assert all(e.parametric_usd > 0 for e in estimates)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="confidence"):
        value_at_risk(CURVE, 3_000.0, HISTORY, confidence=1.5)
    with pytest.raises(ValueError, match="horizons"):
        value_at_risk(CURVE, 3_000.0, HISTORY, horizons=[0])
    with pytest.raises(ValueError, match="min_windows"):
        value_at_risk(CURVE, 3_000.0, HISTORY, min_windows=0)
    with pytest.raises(ValueError, match="quote_usd"):
        value_at_risk(CURVE, 3_000.0, HISTORY, quote_usd=0.0)
