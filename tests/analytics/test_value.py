"""Position value and amounts: exact ints against the pool, floats against the whitepaper."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.analytics.types import PositionSnapshot, RawAmount, TokenAmounts
from lpbot.analytics.value import (
    PositionCurve,
    position_amounts,
    position_value_in_token1,
    price_at_tick,
    price_from_sqrt_x96,
    value_in_token0,
    value_in_token1,
)
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

from .helpers import ONE_FOR_ZERO_LIMIT, ZERO_FOR_ONE_LIMIT, seeded_pool

CURVE = PositionCurve(liquidity=1_000.0, price_lower=2_500.0, price_upper=3_600.0)


def whitepaper_value(p: float, curve: PositionCurve) -> float:
    """Uniswap V3 whitepaper 6.2: real reserves x = L(1/sqrtP - 1/sqrtPb), y = L(sqrtP - sqrtPa)."""
    liq, pa, pb = curve.liquidity, curve.price_lower, curve.price_upper
    if p <= pa:
        return p * liq * (1 / math.sqrt(pa) - 1 / math.sqrt(pb))
    if p >= pb:
        return liq * (math.sqrt(pb) - math.sqrt(pa))
    return liq * (2 * math.sqrt(p) - math.sqrt(pa) - p / math.sqrt(pb))


@pytest.mark.parametrize("price", [100.0, 2_500.0, 2_600.0, 3_000.0, 3_599.0, 3_600.0, 10_000.0])
def test_value_matches_the_whitepaper(price: float) -> None:
    expected = whitepaper_value(price, CURVE)
    assert CURVE.value(price) == pytest.approx(expected, rel=1e-12)
    assert CURVE.values([price])[0] == pytest.approx(expected, rel=1e-12)
    x, y = CURVE.amounts_at(price)
    assert x * price + y == pytest.approx(expected, rel=1e-12)


def test_out_of_range_holds_one_token() -> None:
    x, y = CURVE.amounts_at(1_000.0)
    assert y == 0 and x == pytest.approx(1_000 * (1 / 50 - 1 / 60))
    x, y = CURVE.amounts_at(5_000.0)
    assert x == 0 and y == pytest.approx(1_000 * (60 - 50))


def test_vectorised_values_equal_scalar_across_blocks() -> None:
    prices = np.random.default_rng(3).uniform(1_000, 6_000, 70_001)  # more than two blocks
    values = CURVE.values(prices)
    picks = [0, 1, 32_767, 32_768, 65_536, 70_000]
    for i in picks:
        assert values[i] == pytest.approx(CURVE.value(float(prices[i])), rel=1e-12)
    square = CURVE.values(prices[:70_000].reshape(7, 10_000))
    assert square.shape == (7, 10_000)
    assert np.array_equal(square.reshape(-1), values[:70_000])


@settings(max_examples=50, deadline=None)
@given(
    log_p=st.floats(math.log(100), math.log(100_000)),
    eps=st.floats(1e-9, 1e-5),
)
def test_value_is_continuous_in_price(log_p: float, eps: float) -> None:
    p = math.exp(log_p)
    v, up, down = CURVE.value(p), CURVE.value(p * (1 + eps)), CURVE.value(p * (1 - eps))
    # |dV/dP| <= x_max, so a relative move eps changes V by at most eps * P * x_max
    x_max = CURVE.amounts_at(CURVE.price_lower)[0]
    assert abs(up - v) <= 1.01 * eps * p * x_max + 1e-9
    assert abs(v - down) <= 1.01 * eps * p * x_max + 1e-9


@pytest.mark.parametrize("edge", [2_500.0, 3_600.0])
def test_value_is_continuous_at_the_edges(edge: float) -> None:
    assert CURVE.value(edge * (1 - 1e-12)) == pytest.approx(CURVE.value(edge), rel=1e-9)
    assert CURVE.value(edge * (1 + 1e-12)) == pytest.approx(CURVE.value(edge), rel=1e-9)


def test_exact_amounts_equal_what_burn_pays_after_swaps() -> None:
    pool = seeded_pool(0)
    lower, upper, liquidity = -600, 1200, 7 * 10**17
    pool.mint("lp", lower, upper, liquidity)
    for zero_for_one, amount in [(False, 3 * 10**16), (True, 10**17), (False, 2 * 10**17)]:
        pool.swap(zero_for_one, amount, ZERO_FOR_ONE_LIMIT if zero_for_one else ONE_FOR_ZERO_LIMIT)
        expected = position_amounts(pool.sqrt_price_x96, lower, upper, liquidity)
        fork = pool.copy()
        paid = fork.burn("lp", lower, upper, liquidity)
        assert paid == (expected.amount0, expected.amount1)


def test_exact_value_in_each_token() -> None:
    sqrt_price = get_sqrt_ratio_at_tick(6_932)  # price ~ 2 (1.0001**6932)
    amounts = TokenAmounts(RawAmount(10**18), RawAmount(5 * 10**17))
    price = (sqrt_price / 2**96) ** 2
    assert value_in_token1(sqrt_price, amounts) == pytest.approx(
        10**18 * price + 5 * 10**17, rel=1e-15
    )
    assert value_in_token0(sqrt_price, amounts) == pytest.approx(
        10**18 + 5 * 10**17 / price, rel=1e-15
    )
    position = PositionSnapshot(tick_lower=0, tick_upper=13_860, liquidity=10**18)
    value = position_value_in_token1(sqrt_price, position)
    curve = PositionCurve.from_position(position, 18, 18)
    assert value / 1e18 == pytest.approx(
        curve.value(price_from_sqrt_x96(sqrt_price, 18, 18)), rel=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(
    tick=st.integers(-200_000, 200_000),
    lower=st.integers(-3_000, 3_000),
    width=st.integers(1, 6_000),
    liquidity=st.integers(10**6, 10**28),
    decimals=st.tuples(st.integers(0, 18), st.integers(0, 18)),
)
def test_float_curve_matches_exact_amounts(
    tick: int, lower: int, width: int, liquidity: int, decimals: tuple[int, int]
) -> None:
    d0, d1 = decimals
    tick_lower = tick + lower
    tick_upper = tick_lower + width
    sqrt_price = get_sqrt_ratio_at_tick(tick) + 12_345
    exact = position_amounts(sqrt_price, tick_lower, tick_upper, liquidity)
    curve = PositionCurve.from_ticks(liquidity, tick_lower, tick_upper, d0, d1)
    x, y = curve.amounts_at(price_from_sqrt_x96(sqrt_price, d0, d1))
    # floats carry ~1e-12 relative error, the exact side rounds down by at most one unit
    assert x * 10**d0 == pytest.approx(exact.amount0, rel=1e-8, abs=2)
    assert y * 10**d1 == pytest.approx(exact.amount1, rel=1e-8, abs=2)
    assert price_at_tick(tick_lower, d0, d1) == pytest.approx(curve.price_lower)


def test_curve_validates() -> None:
    with pytest.raises(ValueError, match="price_lower < price_upper"):
        PositionCurve(1.0, 5.0, 4.0)
    with pytest.raises(ValueError, match="liquidity"):
        PositionCurve(-1.0, 1.0, 2.0)
