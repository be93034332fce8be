"""The full-range benchmark's exact core against the pool simulator (``uniswap.pool``, itself
checked against the contracts): a position of the benchmark's liquidity minted in the pool at
its opening collects, after swaps both ways, exactly the fees the benchmark computes from the
pool's fee growth and its two ticks."""

from __future__ import annotations

import pytest

from lpbot.analytics.full_range import (
    PoolFeeState,
    full_range_ticks,
    open_full_range,
    value_at,
)
from lpbot.uniswap.liquidity_amounts import get_liquidity_for_amounts
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick
from tests.uniswap.uniswap_testlib import encode_price_sqrt


def _state(pool: Pool, block: int) -> PoolFeeState:
    """What the monitor reads of ``pool`` (``PoolSnapshot.fee_state``)."""
    lo, hi = full_range_ticks(pool.tick_spacing)

    def outside(t: int) -> tuple[int, int] | None:
        info = pool.ticks.get(t)
        if info is None or not info.initialized:
            return None
        return info.fee_growth_outside0_x128, info.fee_growth_outside1_x128

    return PoolFeeState(
        block=block,
        sqrt_price_x96=pool.sqrt_price_x96,
        tick=pool.tick,
        fee=pool.fee,
        tick_spacing=pool.tick_spacing,
        fee_growth_global0_x128=pool.fee_growth_global0_x128,
        fee_growth_global1_x128=pool.fee_growth_global1_x128,
        lower_outside=outside(lo),
        upper_outside=outside(hi),
    )


def _trade(pool: Pool, rounds: int) -> None:
    for k in range(rounds):
        pool.swap(True, 3 * 10**18 + k, MIN_SQRT_RATIO + 1)
        pool.swap(False, 2 * 10**18 + 7 * k, MAX_SQRT_RATIO - 1)


@pytest.mark.parametrize("others_full_range", [False, True])
def test_fees_equal_a_real_full_range_positions_to_the_wei(others_full_range: bool) -> None:
    # without another full-range position, its two ticks are initialized by the benchmark's
    # own mint (outside = the globals below the price); with one, they are the pool's
    pool = Pool(3000, 60, encode_price_sqrt(1, 2))
    pool.mint("lp", -1200, 1200, 10**22)
    lo, hi = full_range_ticks(60)
    if others_full_range:
        pool.mint("wide", lo, hi, 10**19)
    _trade(pool, 3)  # fee growth before the deposit
    at = _state(pool, 10)
    assert (at.lower_outside is not None) is others_full_range
    fr = open_full_range((5 * 10**18, 10**18), at)
    taken = pool.mint("benchmark", lo, hi, fr.liquidity)
    assert taken == fr.minted and min(fr.idle) >= 0
    assert pool.fee_growth_inside(lo, hi) == fr.fee_growth_inside
    _trade(pool, 5)
    now = _state(pool, 20)
    v = value_at(fr, now)
    pool.burn("benchmark", lo, hi, 0)
    info = pool.position("benchmark", lo, hi)
    assert v.fees == (info.tokens_owed0, info.tokens_owed1)
    assert min(v.fees) > 0
    assert v.principal == pool.burn("benchmark", lo, hi, fr.liquidity)


def test_an_extreme_tick_initialized_later_by_someone_else_leaves_its_fees_alone() -> None:
    # the pool's ticks were not initialized at the deposit; someone mints the full range later
    # (outside = the globals then): the benchmark keeps the ticks its own mint would have set
    pool = Pool(500, 10, encode_price_sqrt(1, 1))
    pool.mint("lp", -600, 600, 10**22)
    twin = Pool(500, 10, encode_price_sqrt(1, 1))
    twin.mint("lp", -600, 600, 10**22)
    _trade(pool, 2)
    _trade(twin, 2)
    lo, hi = full_range_ticks(10)
    fr = open_full_range((10**18, 10**18), _state(pool, 1))
    # the twin holds the benchmark's position (its fee growth is not the pool's): tiny, so
    # that what it earns is its share of the twin's swaps, fee growth per liquidity apart
    twin.mint("benchmark", lo, hi, fr.liquidity)
    _trade(pool, 1)
    _trade(twin, 1)
    pool.mint("late", lo, hi, 10**6)  # initializes the ticks at today's globals
    twin.mint("late", lo, hi, 10**6)
    _trade(pool, 2)
    _trade(twin, 2)
    later = _state(twin, 2)
    assert later.lower_outside is not None
    twin.burn("benchmark", lo, hi, 0)
    info = twin.position("benchmark", lo, hi)
    # on the twin, whose ticks the benchmark's mint initialized, the read is exact
    assert value_at(fr, later).fees == (info.tokens_owed0, info.tokens_owed1)
    # on the pool, read after someone else initialized them: Δ inside = Δ globals, never the
    # wrapped difference of the late tick's outside values
    now = _state(pool, 2)
    fees = value_at(fr, now).fees
    g0 = now.fee_growth_global0_x128 - fr.at.fee_growth_global0_x128
    g1 = now.fee_growth_global1_x128 - fr.at.fee_growth_global1_x128
    assert fees == (g0 * fr.liquidity >> 128, g1 * fr.liquidity >> 128)


@pytest.mark.parametrize("capital", [(10**18, 0), (0, 3 * 10**18), (7 * 10**18, 10**15)])
def test_the_swap_to_ratio_leaves_the_most_liquidity(capital: tuple[int, int]) -> None:
    pool = Pool(3000, 60, encode_price_sqrt(3, 1))
    pool.mint("lp", -6000, 6000, 10**22)
    at = _state(pool, 1)
    fr = open_full_range(capital, at)
    lo, hi = at.ticks
    sqrt_a, sqrt_b = get_sqrt_ratio_at_tick(lo), get_sqrt_ratio_at_tick(hi)
    zero_for_one = fr.swap_in[0] > 0
    sold = fr.swap_in[0] if zero_for_one else fr.swap_in[1]
    assert sold > 0 and fr.after_swap[0] >= 0 and fr.after_swap[1] >= 0
    # the pool's fee on what it sold, at the price: no impact
    assert (fr.swap_out[1] if zero_for_one else fr.swap_out[0]) > 0

    def liquidity(x: int) -> int:
        p2 = at.sqrt_price_x96**2
        net = x * (10**6 - at.fee) // 10**6
        got = net * p2 >> 192 if zero_for_one else (net << 192) // p2
        a0, a1 = (capital[0] - x, capital[1] + got) if zero_for_one else (
            capital[0] + got, capital[1] - x)  # fmt: skip
        return get_liquidity_for_amounts(at.sqrt_price_x96, sqrt_a, sqrt_b, a0, a1)

    assert liquidity(sold) == fr.liquidity
    for x in (sold - 1, sold + 1, sold * 99 // 100, sold * 101 // 100):
        if 0 <= x <= max(capital):
            assert liquidity(x) <= fr.liquidity, x


def test_no_capital_is_refused() -> None:
    at = _state(Pool(500, 10, encode_price_sqrt(1, 1)), 1)
    with pytest.raises(ValueError, match="no capital"):
        open_full_range((0, 0), at)
