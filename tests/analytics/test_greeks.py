"""Delta and gamma: closed forms equal numerical derivatives of the value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.analytics.greeks import delta_gamma, greeks_at, position_greeks, risky_curve
from lpbot.analytics.types import PoolSnapshot, PositionSnapshot
from lpbot.analytics.value import PositionCurve
from lpbot.uniswap import Pool
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

CURVE = PositionCurve(liquidity=1_000.0, price_lower=2_500.0, price_upper=3_600.0)


@settings(max_examples=60, deadline=None)
@given(price=st.floats(1_000, 8_000).filter(lambda p: abs(p - 2_500) > 1 and abs(p - 3_600) > 1))
def test_delta_and_gamma_are_the_derivatives_of_value(price: float) -> None:
    h = price * 1e-5
    numeric_delta = (CURVE.value(price + h) - CURVE.value(price - h)) / (2 * h)
    numeric_gamma = (CURVE.value(price + h) - 2 * CURVE.value(price) + CURVE.value(price - h)) / (
        h * h
    )
    delta, gamma = delta_gamma(CURVE, price)
    assert float(delta) == pytest.approx(numeric_delta, rel=1e-7, abs=1e-9)
    assert float(gamma) == pytest.approx(numeric_gamma, rel=1e-3, abs=1e-6)


def test_closed_form_inside_and_outside() -> None:
    delta, gamma = delta_gamma(CURVE, [2_000.0, 3_000.0, 5_000.0])
    assert delta[1] == pytest.approx(1_000 * (1 / math.sqrt(3_000) - 1 / 60))
    assert gamma[1] == pytest.approx(-1_000 / (2 * 3_000**1.5))
    assert delta[0] == pytest.approx(1_000 * (1 / 50 - 1 / 60)) and gamma[0] == 0
    assert delta[2] == 0 and gamma[2] == 0


def test_quote_token0_inverts_the_price() -> None:
    # token0 = USDC, token1 = WETH: P is WETH per USDC, the risky price S = 1/P is USDC per WETH
    curve = PositionCurve(1.0, 1 / 3_600, 1 / 2_500)
    s = 3_000.0
    g = greeks_at(curve, s, quote=0, quote_usd=1.0)
    assert g.delta == pytest.approx(curve.amounts_at(1 / s)[1])  # the WETH held

    def value_in_usdc(s_: float) -> float:
        x, y = curve.amounts_at(1 / s_)
        return x + y * s_

    h = 1e-3
    assert g.value == pytest.approx(value_in_usdc(s))
    assert g.delta == pytest.approx(
        (value_in_usdc(s + h) - value_in_usdc(s - h)) / (2 * h), rel=1e-6
    )
    numeric_gamma = (value_in_usdc(s + 1) - 2 * value_in_usdc(s) + value_in_usdc(s - 1)) / 1.0
    assert g.gamma == pytest.approx(numeric_gamma, rel=1e-4)
    assert risky_curve(curve, 0).price_lower == pytest.approx(2_500)


def test_usd_figures() -> None:
    g = greeks_at(CURVE, 3_000.0, quote=1, quote_usd=1.0)
    assert g.delta_usd == pytest.approx(g.delta * 3_000)
    # dollar gamma: the delta change for a +1% move, valued at today's price (the hedge to add)
    up = greeks_at(CURVE, 3_030.0)
    assert (up.delta - g.delta) * 3_000 == pytest.approx(g.dollar_gamma, rel=0.02)
    # not the whole change of the USD exposure, which also revalues the delta held
    assert up.delta_usd - g.delta_usd == pytest.approx(g.dollar_gamma + g.delta_usd / 100, rel=0.02)
    assert abs(up.delta_usd - g.delta_usd - g.dollar_gamma) > 0.15 * abs(g.dollar_gamma)


def test_position_greeks_from_snapshots() -> None:
    pool = Pool(3000, 60, get_sqrt_ratio_at_tick(-196_260))  # WETH(18)/USDC(6) near 3000
    pool.mint("lp", -198_000, -194_400, 10**17)
    snapshot = PoolSnapshot.from_pool(pool, decimals0=18, decimals1=6)
    position = PositionSnapshot.from_pool(pool, "lp", -198_000, -194_400)
    g = position_greeks(snapshot, position, quote=1, quote_usd=1.0)
    assert 2_900 < g.price < 3_100
    # the delta is the WETH the position holds
    assert g.delta == pytest.approx(
        pool.copy().burn("lp", -198_000, -194_400, 10**17)[0] / 1e18, rel=1e-9
    )
    assert g.gamma < 0
    with pytest.raises(ValueError, match="quote_usd"):
        position_greeks(snapshot, position, quote_usd=0.0)


def test_vectorised_over_prices() -> None:
    prices = np.linspace(2_000, 4_000, 1_001)
    delta, gamma = delta_gamma(CURVE, prices)
    assert delta.shape == gamma.shape == prices.shape
    assert np.all(np.diff(delta) <= 1e-15)  # delta falls as the price rises: short gamma
