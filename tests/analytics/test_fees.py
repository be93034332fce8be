"""Uncollected fees equal what the pool credits on a poke; fee rate and APR from snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.analytics.fees import fee_apr, fee_growth_inside, fee_rate, uncollected_fees
from lpbot.analytics.types import PoolSnapshot, PositionSnapshot
from lpbot.analytics.value import position_amounts, value_in_token1
from lpbot.uniswap import Pool
from lpbot.uniswap.pool import Slot0
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

from .helpers import ONE_FOR_ZERO_LIMIT, YEAR, ZERO_FOR_ONE_LIMIT, seeded_pool

LP = "lp"


def snapshots(pool: Pool, lower: int, upper: int) -> tuple[PoolSnapshot, PositionSnapshot]:
    return (
        PoolSnapshot.from_pool(pool, decimals0=18, decimals1=18),
        PositionSnapshot.from_pool(pool, LP, lower, upper),
    )


def poked(pool: Pool, lower: int, upper: int) -> tuple[int, int]:
    """What the contract shows: burn(0) on a fork, then the position's tokens owed."""
    fork = pool.copy()
    fork.burn(LP, lower, upper, 0)
    info = fork.position(LP, lower, upper)
    return info.tokens_owed0, info.tokens_owed1


SWAPS = st.lists(st.tuples(st.booleans(), st.integers(10**12, 5 * 10**17)), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(
    swaps=SWAPS,
    lower=st.integers(-40, 10),
    width=st.integers(1, 40),
    poke_after=st.integers(0, 12),
)
def test_uncollected_fees_equal_the_pools_poke(
    swaps: list[tuple[bool, int]], lower: int, width: int, poke_after: int
) -> None:
    pool = seeded_pool(0)
    tick_lower, tick_upper = lower * 60, (lower + width) * 60
    pool.mint(LP, tick_lower, tick_upper, 2 * 10**18)
    for i, (zero_for_one, amount) in enumerate(swaps):
        pool.swap(zero_for_one, amount, ZERO_FOR_ONE_LIMIT if zero_for_one else ONE_FOR_ZERO_LIMIT)
        if i == poke_after:  # some fees already credited to tokens owed
            pool.burn(LP, tick_lower, tick_upper, 0)
        pool_snap, position = snapshots(pool, tick_lower, tick_upper)
        fees = uncollected_fees(pool_snap, position)
        assert (fees.amount0, fees.amount1) == poked(pool, tick_lower, tick_upper)
        assert fee_growth_inside(pool_snap, position) == pool.fee_growth_inside(
            tick_lower, tick_upper
        )


def test_fees_survive_fee_growth_wrapping_past_2_256() -> None:
    near_max = 2**256 - 10**30  # the globals wrap within the first swaps
    start = seeded_pool(0)
    pool = Pool.from_state(
        fee=start.fee,
        tick_spacing=start.tick_spacing,
        slot0=Slot0(start.sqrt_price_x96, start.tick),
        liquidity=0,
        fee_growth_global0_x128=near_max,
        fee_growth_global1_x128=near_max,
        ticks={},
        block_timestamp=0,
    )
    pool.mint("base", -887220, 887220, 10**18)
    pool.mint(LP, -600, 600, 10**18)
    for zero_for_one, amount in [(True, 10**17), (False, 3 * 10**17), (True, 4 * 10**17)]:
        pool.swap(zero_for_one, amount, ZERO_FOR_ONE_LIMIT if zero_for_one else ONE_FOR_ZERO_LIMIT)
    assert pool.fee_growth_global0_x128 < near_max  # wrapped
    pool_snap, position = snapshots(pool, -600, 600)
    fees = uncollected_fees(pool_snap, position)
    assert fees.amount0 > 0 and fees.amount1 > 0
    assert (fees.amount0, fees.amount1) == poked(pool, -600, 600)
    later = PoolSnapshot.from_pool(pool, decimals0=18, decimals1=18, timestamp=3600)
    earlier = PoolSnapshot(
        sqrt_price_x96=pool.sqrt_price_x96,
        tick=pool.tick,
        liquidity=pool.liquidity,
        fee=pool.fee,
        tick_spacing=pool.tick_spacing,
        fee_growth_global0_x128=near_max,
        fee_growth_global1_x128=near_max,
        decimals0=18,
        decimals1=18,
        timestamp=0,
    )
    rate = fee_rate(earlier, later)
    assert 0 < rate.token0_per_second < 1 and 0 < rate.token1_per_second < 1


def test_fee_rate_gives_an_in_range_positions_fees() -> None:
    pool = seeded_pool(0)
    pool.mint(LP, -6000, 6000, 10**18)
    before, _ = snapshots(pool, -6000, 6000)
    for i in range(20):
        pool.swap(i % 2 == 0, 10**17, ZERO_FOR_ONE_LIMIT if i % 2 == 0 else ONE_FOR_ZERO_LIMIT)
    pool.block_timestamp = 7200
    after, position = snapshots(pool, -6000, 6000)
    rate = fee_rate(before, after)
    assert rate.seconds == 7200
    fees = uncollected_fees(after, position)
    # the range held every swap, so its fees are L times the global growth, to the wei
    assert fees.amount0 == pytest.approx(10**18 * rate.token0_per_second * 7200, rel=1e-9, abs=1)
    assert fees.amount1 == pytest.approx(10**18 * rate.token1_per_second * 7200, rel=1e-9, abs=1)

    apr = fee_apr(rate, after, -6000, 6000)
    value = value_in_token1(
        after.sqrt_price_x96, position_amounts(after.sqrt_price_x96, -6000, 6000, 10**18)
    )
    fee_value = value_in_token1(after.sqrt_price_x96, fees)
    assert apr == pytest.approx(fee_value / value * YEAR / 7200, rel=1e-6)


def test_fee_rate_needs_time_to_pass() -> None:
    pool_snap = PoolSnapshot.from_pool(seeded_pool(0), decimals0=18, decimals1=6)
    with pytest.raises(ValueError, match="after the earlier"):
        fee_rate(pool_snap, pool_snap)


def test_out_of_range_position_earns_nothing_while_out() -> None:
    pool = seeded_pool(0)
    pool.mint(LP, 600, 1200, 10**18)  # above the price: only token0
    for _ in range(5):
        pool.swap(True, 10**16, ZERO_FOR_ONE_LIMIT)
        pool.swap(False, 10**16, get_sqrt_ratio_at_tick(300))
    pool_snap, position = snapshots(pool, 600, 1200)
    assert uncollected_fees(pool_snap, position).amount0 == 0
    assert uncollected_fees(pool_snap, position).amount1 == 0
