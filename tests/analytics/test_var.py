"""VaR by full revaluation over historical and simulated returns."""

from __future__ import annotations

import math

import pytest

from lpbot.analytics.greeks import greeks_at
from lpbot.analytics.types import PoolSnapshot, PositionSnapshot
from lpbot.analytics.value import PositionCurve
from lpbot.analytics.var import historical_returns, position_var, value_at_risk
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


def test_historical_returns_are_overlapping_horizon_returns() -> None:
    returns = historical_returns(HISTORY, 300)
    assert returns.size == HISTORY.prices.size - 5
    assert returns[0] == pytest.approx(math.log(HISTORY.prices[5] / HISTORY.prices[0]))


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
