"""Pool behaviour beyond the spec's numbers: reverts restore the state, quotes change nothing,
multi-tick swaps and their reversal, price limits, swaps through ranges with no liquidity."""

from __future__ import annotations

import pytest

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.pool import Pool, Slot0
from lpbot.uniswap.tick import TickInfo
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MIN_SQRT_RATIO,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from tests.uniswap.uniswap_testlib import (
    MAX_INT256,
    MAX_UINT128,
    OTHER,
    WALLET,
    PoolHarness,
    encode_price_sqrt,
    expand_to_18_decimals,
    pool_state,
    snapshot,
)

E18 = expand_to_18_decimals(1)

# positions (owner, lower, upper, liquidity) spread on both sides of tick 0, spacing 60
LADDER = [
    (WALLET, -887220, 887220, 2 * E18),
    (WALLET, -600, 600, 3 * E18),
    (OTHER, -1200, -60, E18),
    (OTHER, 60, 1800, E18),
    (WALLET, -3000, -1200, 5 * E18),
    (OTHER, 1200, 4200, 4 * E18),
    (WALLET, -240, 240, 7 * E18),
    (OTHER, -4200, 3000, E18 // 2),
]


def ladder_pool() -> PoolHarness:
    h = PoolHarness(3000, 60, encode_price_sqrt(1, 1))
    for owner, lower, upper, liquidity in LADDER:
        h.mint(owner, lower, upper, liquidity)
    h.pool.increase_observation_cardinality_next(10)
    return h


def in_range_liquidity(pool: Pool) -> int:
    """Sum of the position liquidity whose range holds the current tick (lower <= tick < upper)."""
    return sum(
        p.liquidity for (_, lower, upper), p in pool.positions.items() if lower <= pool.tick < upper
    )


def initialized_ticks_between(pool: Pool, a: int, b: int) -> list[int]:
    lo, hi = min(a, b), max(a, b)
    return sorted(t for t in pool.ticks if lo < t <= hi)


def assert_reverts_unchanged(pool: Pool, reason: str, fn, *args):
    before = snapshot(pool)
    before_state = pool_state(pool)
    with pytest.raises(UniswapRevert) as exc:
        fn(*args)
    assert exc.value.reason == reason
    assert pool_state(pool) == before_state
    assert pool == before


# ------------------------------------------------------------------------------ reverts restore


def test_snapshot_equality_sees_changes():
    h = ladder_pool()
    before = snapshot(h.pool)
    assert h.pool == before
    h.pool.ticks[-600].fee_growth_outside0_x128 += 1
    assert h.pool != before


def test_burn_more_than_owned_leaves_pool_unchanged():
    h = ladder_pool()
    h.swap_exact0_for1(E18 // 3)
    h.advance_time(15)
    assert_reverts_unchanged(h.pool, "LS", h.pool.burn, WALLET, -600, 600, 3 * E18 + 1)
    # a burn of a position that does not exist
    assert_reverts_unchanged(h.pool, "LS", h.pool.burn, OTHER, -600, 600, 1)
    assert_reverts_unchanged(h.pool, "NP", h.pool.burn, OTHER, -600, 600, 0)


def test_mint_over_max_liquidity_per_tick_leaves_pool_unchanged():
    h = ladder_pool()
    h.advance_time(7)
    max_l = h.pool.max_liquidity_per_tick
    # new lower tick fine, shared upper tick (600) over the cap: the lower write is undone
    assert_reverts_unchanged(h.pool, "LO", h.pool.mint, OTHER, -120, 600, max_l - 3 * E18 + 1)
    # both ticks new, fresh bitmap words
    assert_reverts_unchanged(h.pool, "LO", h.pool.mint, OTHER, 60000, 60060, max_l + 1)
    assert_reverts_unchanged(h.pool, "TLU", h.pool.mint, OTHER, 60, 60, 1)
    assert_reverts_unchanged(h.pool, "", h.pool.mint, OTHER, 30, 60, 1)  # not a multiple


def test_mint_reverting_after_the_oracle_write_leaves_pool_unchanged():
    # in-range mint: ticks updated and flipped, an observation written, then the pool's
    # liquidity overflows uint128 ('LA'): everything must be put back
    h = PoolHarness(3000, 60, encode_price_sqrt(1, 1))
    pool = Pool.from_state(
        fee=3000,
        tick_spacing=60,
        slot0=Slot0(h.pool.sqrt_price_x96, 0, 0, 1, 5),
        liquidity=MAX_UINT128 - 5,
        fee_growth_global0_x128=123,
        fee_growth_global1_x128=456,
        ticks={},
        block_timestamp=1000,
    )
    pool.block_timestamp = 1010
    assert_reverts_unchanged(pool, "LA", pool.mint, WALLET, -60, 60, 10)
    pool.mint(WALLET, -60, 60, 5)  # exactly up to the max works
    assert pool.liquidity == MAX_UINT128
    assert pool.slot0.observation_index == 1


def test_swap_reverting_mid_way_restores_crossed_ticks():
    # a pool read off a chain with an inconsistent tick: crossing -120 takes more liquidity
    # than is active ('LS') after tick -60 was already crossed
    sqrt_p = get_sqrt_ratio_at_tick(0)
    pool = Pool.from_state(
        fee=3000,
        tick_spacing=60,
        slot0=Slot0(sqrt_p, 0),
        liquidity=1000 * E18,
        fee_growth_global0_x128=10,
        fee_growth_global1_x128=20,
        ticks={
            -60: TickInfo(1000 * E18, 999 * E18, 1, 2, 0, 0, 0, True),
            -120: TickInfo(5 * E18, 5 * E18, 3, 4, 0, 0, 0, True),
        },
        block_timestamp=50,
    )
    pool.block_timestamp = 60
    assert_reverts_unchanged(pool, "LS", pool.swap, True, 10**30, MIN_SQRT_RATIO + 1)
    assert_reverts_unchanged(pool, "LS", pool.quote_swap, True, 10**30, MIN_SQRT_RATIO + 1)
    # a swap that stops before -120 goes through
    result = pool.swap(True, 10**30, get_sqrt_ratio_at_tick(-100))
    assert result.ticks_crossed == 1
    assert pool.liquidity == E18


def test_swap_with_bad_limit_leaves_pool_unchanged():
    h = ladder_pool()
    p = h.pool.sqrt_price_x96
    assert_reverts_unchanged(h.pool, "SPL", h.pool.swap, True, E18, p + 1)
    assert_reverts_unchanged(h.pool, "SPL", h.pool.swap, False, -E18, p - 1)
    assert_reverts_unchanged(h.pool, "SPL", h.pool.swap, True, E18, MIN_SQRT_RATIO)
    assert_reverts_unchanged(h.pool, "SPL", h.pool.swap, False, E18, MAX_SQRT_RATIO)
    assert_reverts_unchanged(h.pool, "AS", h.pool.swap, False, 0, MAX_SQRT_RATIO - 1)


# ------------------------------------------------------------------------------------ quote_swap


@pytest.mark.parametrize(
    ("zero_for_one", "amount"),
    [
        (True, 3 * E18),
        (True, -2 * E18),
        (False, 3 * E18),
        (False, -2 * E18),
        (True, 1),
        (False, -1),
    ],
)
def test_quote_swap_matches_swap_and_changes_nothing(zero_for_one, amount):
    h = ladder_pool()
    h.advance_time(12)
    limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    before = snapshot(h.pool)
    quote = h.pool.quote_swap(zero_for_one, amount, limit)
    assert h.pool == before
    assert h.pool.quote_swap(zero_for_one, amount, limit) == quote  # repeatable
    result = h.pool.swap(zero_for_one, amount, limit)
    assert result == quote
    assert h.pool != before
    assert (h.pool.sqrt_price_x96, h.pool.tick, h.pool.liquidity) == (
        quote.sqrt_price_x96,
        quote.tick,
        quote.liquidity,
    )


def test_quote_swap_crossing_ticks_matches_swap():
    h = ladder_pool()
    before = snapshot(h.pool)
    quote = h.pool.quote_swap(True, MAX_INT256, get_sqrt_ratio_at_tick(-3500))
    assert h.pool == before
    assert quote.ticks_crossed >= 5
    assert h.pool.swap(True, MAX_INT256, get_sqrt_ratio_at_tick(-3500)) == quote


# --------------------------------------------------------------- many ticks, both ways and back


def test_swap_crossing_many_ticks_both_directions_then_back():
    h = ladder_pool()
    pool = h.pool
    start_price, start_tick, start_liquidity = pool.sqrt_price_x96, pool.tick, pool.liquidity
    gross_net = {t: (i.liquidity_gross, i.liquidity_net) for t, i in pool.ticks.items()}

    # down through every initialized tick in (-4200, 0]
    down_limit = get_sqrt_ratio_at_tick(-4200) + 12345
    expected_crossed = initialized_ticks_between(pool, get_tick_at_sqrt_ratio(down_limit), 0)
    h.advance_time(3)
    down = h.swap_to_lower_price(down_limit)
    assert down.ticks_crossed == len(expected_crossed) == 5  # -60 -240 -600 -1200 -3000
    assert pool.sqrt_price_x96 == down_limit
    assert pool.tick == get_tick_at_sqrt_ratio(down_limit) == -4200
    assert pool.liquidity == in_range_liquidity(pool) == 2 * E18 + E18 // 2
    assert down.amount0 > 0 and down.amount1 < 0

    # up through every initialized tick in (-4200, 4200]
    up_limit = get_sqrt_ratio_at_tick(4200) + 1
    h.advance_time(3)
    up = h.swap_to_higher_price(up_limit)
    assert up.ticks_crossed == len(initialized_ticks_between(pool, -4200, 4200)) == 12
    assert pool.sqrt_price_x96 == up_limit
    assert pool.tick == 4200
    assert pool.liquidity == in_range_liquidity(pool) == 2 * E18

    # and back to the starting price exactly
    h.advance_time(3)
    back = h.swap_to_lower_price(start_price)
    assert back.ticks_crossed == len(initialized_ticks_between(pool, 0, 4200))
    assert (pool.sqrt_price_x96, pool.liquidity) == (start_price, start_liquidity)
    # the price sits exactly on tick 0's ratio, reached from above at the end of a step (tick 0
    # is the edge of a bitmap word): the pool records tick 0 - 1, as the contract does
    assert start_tick == get_tick_at_sqrt_ratio(start_price) == 0
    assert pool.tick == -1
    # crossing never changes what the ticks hold, only their outside accumulators
    assert {t: (i.liquidity_gross, i.liquidity_net) for t, i in pool.ticks.items()} == gross_net
    # the round trip cost the swappers fees in both tokens: the pool holds more of each
    assert down.amount0 + up.amount0 + back.amount0 > 0
    assert down.amount1 + up.amount1 + back.amount1 > 0
    # and every position can be burned and collected: the pool is solvent
    for owner, lower, upper, liquidity in LADDER:
        h.burn(owner, lower, upper, liquidity)
        h.collect(owner, lower, upper)
    assert h.balance0 >= 0 and h.balance1 >= 0
    assert pool.liquidity == 0


def test_exact_output_across_ticks_gives_exactly_the_output():
    h = ladder_pool()
    result = h.swap0_for_exact1(2 * E18)
    assert result.amount1 == -2 * E18
    assert result.ticks_crossed == 6
    result = h.swap1_for_exact0(5 * E18)
    assert result.amount0 == -5 * E18
    assert result.ticks_crossed == 11
    # asking for more than the pool holds: it pays out all it has, the price pinned at the limit
    result = h.swap1_for_exact0(10**9 * E18)
    assert 0 < -result.amount0 < 10**9 * E18
    assert h.pool.sqrt_price_x96 == MAX_SQRT_RATIO - 1
    assert h.pool.liquidity == 0


# ------------------------------------------------------------------------------------ price limit


@pytest.mark.parametrize("exact_in", [True, False])
def test_price_limit_stops_swap_exactly_at_the_limit(exact_in):
    h = ladder_pool()
    limit = get_sqrt_ratio_at_tick(-333) - 7  # inside a range, not on a tick
    amount = 10**30 if exact_in else -(10**30)
    result = h.pool.swap(True, amount, limit)
    assert h.pool.sqrt_price_x96 == result.sqrt_price_x96 == limit
    assert h.pool.tick == get_tick_at_sqrt_ratio(limit) == -334
    # only part of the amount was used
    if exact_in:
        assert 0 < result.amount0 < 10**30
    else:
        assert 0 < -result.amount1 < 10**30
    # the same limit again: the swap is now a SPL revert
    with pytest.raises(UniswapRevert) as exc:
        h.pool.swap(True, amount, limit)
    assert exc.value.reason == "SPL"


def test_price_limit_on_an_initialized_tick_going_up_crosses_it():
    h = ladder_pool()
    limit = get_sqrt_ratio_at_tick(600)
    result = h.pool.swap(False, 10**30, limit)
    assert h.pool.sqrt_price_x96 == limit
    # tick 600 is initialized and reached: it is crossed and the tick becomes 600
    assert h.pool.tick == 600
    assert h.pool.liquidity == in_range_liquidity(h.pool)
    assert result.ticks_crossed == len([t for t in h.pool.ticks if 0 < t <= 600])


def test_price_limit_on_an_initialized_tick_going_down():
    h = ladder_pool()
    limit = get_sqrt_ratio_at_tick(-600)
    h.pool.swap(True, 10**30, limit)
    assert h.pool.sqrt_price_x96 == limit
    # reaching tick -600 from above crosses it: the tick is -601 and [-600, 600) is out of range
    assert h.pool.tick == -601
    assert h.pool.liquidity == in_range_liquidity(h.pool)


# -------------------------------------------------------------------------------- zero liquidity


@pytest.mark.parametrize("amount", [E18, -E18, 1, -1])
def test_zero_liquidity_swap_moves_price_to_limit_with_zero_amounts(amount):
    pool = Pool(3000, 60, encode_price_sqrt(1, 1), block_timestamp=100)
    pool.block_timestamp = 110
    limit_down = encode_price_sqrt(1, 4) + 99
    result = pool.swap(True, amount, limit_down)
    assert (result.amount0, result.amount1, result.fee_amount) == (0, 0, 0)
    assert pool.sqrt_price_x96 == limit_down
    assert pool.tick == get_tick_at_sqrt_ratio(limit_down)
    assert pool.liquidity == 0
    assert pool.fee_growth_global0_x128 == pool.fee_growth_global1_x128 == 0
    # the tick changed: one observation was written at the old tick
    assert pool.slot0.observation_index == 0
    assert pool.observations[0].block_timestamp == 110

    limit_up = encode_price_sqrt(9, 1) - 99
    result = pool.swap(False, amount, limit_up)
    assert (result.amount0, result.amount1, result.fee_amount) == (0, 0, 0)
    assert pool.sqrt_price_x96 == limit_up
    assert pool.tick == get_tick_at_sqrt_ratio(limit_up)


def test_zero_liquidity_gap_is_crossed_for_free_up_to_the_next_range():
    h = PoolHarness(3000, 60, encode_price_sqrt(1, 1))
    h.mint(WALLET, -1200, -600, E18)
    assert h.pool.liquidity == 0
    # exact input of 1 wei: the empty gap [-600, 0) costs nothing; at -600 the range's
    # liquidity comes in and the wei, less than the fee can round to, is all fee
    result = h.swap_exact0_for1(1)
    assert result.ticks_crossed == 1
    assert (result.amount0, result.amount1, result.fee_amount) == (1, 0, 1)
    assert h.pool.sqrt_price_x96 == get_sqrt_ratio_at_tick(-600)
    assert h.pool.tick == -601
    assert h.pool.liquidity == E18
    assert h.pool.fee_growth_global0_x128 == (1 << 128) // E18
    # a real amount then moves the price into the range
    result = h.swap_exact0_for1(10**15)
    assert result.ticks_crossed == 0
    assert result.amount0 == 10**15 and result.amount1 < 0
    assert get_sqrt_ratio_at_tick(-1200) < h.pool.sqrt_price_x96 < get_sqrt_ratio_at_tick(-600)


def test_exact_output_with_no_liquidity_anywhere_returns_nothing():
    pool = Pool(500, 10, encode_price_sqrt(1, 1))
    result = pool.swap(False, -E18, MAX_SQRT_RATIO - 1)
    assert (result.amount0, result.amount1) == (0, 0)
    assert pool.sqrt_price_x96 == MAX_SQRT_RATIO - 1
    # price pinned at the top: the tick is MAX_TICK - 1
    assert pool.tick == 887271
