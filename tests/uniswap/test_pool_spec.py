"""Pool scenarios of Uniswap/v3-core test/UniswapV3Pool.spec.ts (v1.0.0) with their numbers.

The spec drives a MockTimeUniswapV3Pool through TestUniswapV3Callee; ``PoolHarness`` does the
same: swaps use the price limit MIN_SQRT_RATIO + 1 / MAX_SQRT_RATIO - 1, the clock starts at
TEST_POOL_START_TIME, the pool's token balances are tracked from the amounts paid and received.
Reverts the spec can only check as ``.to.be.reverted`` ("hardhat is bugged") are checked here
with the contract's reason string.
"""

from __future__ import annotations

import pytest

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.oracle import Observation
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
)
from tests.uniswap.uniswap_testlib import (
    MAX_UINT128,
    MAX_UINT256,
    OTHER,
    Q128,
    TEST_POOL_START_TIME,
    WALLET,
    PoolHarness,
    encode_price_sqrt,
    expand_to_18_decimals,
    snapshot,
)

E18 = expand_to_18_decimals(1)


def reverts(reason: str, fn, *args):
    with pytest.raises(UniswapRevert) as exc:
        fn(*args)
    assert exc.value.reason == reason, exc.value
    return exc.value


# ----------------------------------------------------------------------------------- #initialize


@pytest.mark.parametrize("price", [1, MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO, 2**160 - 1])
def test_initialize_fails_for_price_out_of_range(price):
    reverts("R", Pool, 3000, 60, price)


def test_initialize_at_extremes_and_initial_variables():
    assert Pool(3000, 60, MIN_SQRT_RATIO).tick == MIN_TICK
    assert Pool(3000, 60, MAX_SQRT_RATIO - 1).tick == MAX_TICK - 1
    price = encode_price_sqrt(1, 2)
    pool = Pool(3000, 60, price, block_timestamp=TEST_POOL_START_TIME)
    assert pool.sqrt_price_x96 == price
    assert pool.slot0.observation_index == 0
    assert pool.tick == -6932
    # 'initializes the first observations slot'
    assert pool.observations[0] == Observation(TEST_POOL_START_TIME, 0, 0, True)
    # 'constructor initializes immutables'
    assert pool.max_liquidity_per_tick == 11505743598341114571880798222544994


# ------------------------------------------------------ #increaseObservationCardinalityNext


def test_increase_observation_cardinality_next():
    pool = Pool(3000, 60, encode_price_sqrt(1, 1), block_timestamp=TEST_POOL_START_TIME)
    s = pool.slot0
    assert (s.observation_cardinality, s.observation_index, s.observation_cardinality_next) == (
        1,
        0,
        1,
    )
    pool.increase_observation_cardinality_next(2)
    assert (s.observation_cardinality, s.observation_index, s.observation_cardinality_next) == (
        1,
        0,
        2,
    )
    pool.increase_observation_cardinality_next(5)
    pool.increase_observation_cardinality_next(3)  # no op if the target is already exceeded
    assert (s.observation_cardinality, s.observation_cardinality_next) == (1, 5)


# ------------------------------------------------------------------------------------------- #mint


@pytest.fixture
def pool_1_10() -> PoolHarness:
    """'initialize the pool at price of 10:1' then mint(minTick, maxTick, 3161)."""
    h = PoolHarness(3000, 60, encode_price_sqrt(1, 10))
    h.mint(WALLET, h.min_tick, h.max_tick, 3161)
    return h


def test_mint_initial_balances_and_tick(pool_1_10):
    assert (pool_1_10.balance0, pool_1_10.balance1) == (9996, 1000)
    assert pool_1_10.pool.tick == -23028


def test_mint_failure_cases(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing
    before = snapshot(h.pool)
    reverts("TLU", h.pool.mint, WALLET, 1, 0, 1)
    reverts("TLM", h.pool.mint, WALLET, -887273, 0, 1)
    reverts("TUM", h.pool.mint, WALLET, 0, 887273, 1)
    reverts("", h.pool.mint, WALLET, h.min_tick + ts, h.max_tick - ts, 0)  # amount is 0
    max_gross = h.pool.max_liquidity_per_tick
    reverts("LO", h.pool.mint, WALLET, h.min_tick + ts, h.max_tick - ts, max_gross + 1)
    assert h.pool == before  # every revert left the pool as it was
    h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, max_gross)


def test_mint_fails_if_total_amount_at_tick_exceeds_the_max(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing
    h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, 1000)
    max_gross = h.pool.max_liquidity_per_tick
    before = snapshot(h.pool)
    over = max_gross - 1000 + 1
    reverts("LO", h.pool.mint, WALLET, h.min_tick + ts, h.max_tick - ts, over)
    reverts("LO", h.pool.mint, WALLET, h.min_tick + ts * 2, h.max_tick - ts, over)
    reverts("LO", h.pool.mint, WALLET, h.min_tick + ts, h.max_tick - ts * 2, over)
    assert h.pool == before
    h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, max_gross - 1000)


def test_mint_above_current_price(pool_1_10):
    h = pool_1_10
    assert h.mint(WALLET, -22980, 0, 10000) == (21549, 0)  # 'transfers token0 only'
    assert (h.balance0, h.balance1) == (9996 + 21549, 1000)


def test_mint_above_max_tick_with_max_leverage(pool_1_10):
    h = pool_1_10
    h.mint(WALLET, h.max_tick - h.tick_spacing, h.max_tick, 2**102)
    assert (h.balance0, h.balance1) == (9996 + 828011525, 1000)


def test_mint_works_for_max_tick(pool_1_10):
    h = pool_1_10
    assert h.mint(WALLET, -22980, h.max_tick, 10000) == (31549, 0)


def test_mint_above_removing_works(pool_1_10):
    h = pool_1_10
    h.mint(WALLET, -240, 0, 10000)
    h.burn(WALLET, -240, 0, 10000)
    assert h.collect(WALLET, -240, 0) == (120, 0)


def test_mint_above_liquidity_gross(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing

    def gross(t):
        return h.pool.tick_info(t).liquidity_gross

    h.mint(WALLET, -240, 0, 100)
    assert [gross(-240), gross(0), gross(ts), gross(ts * 2)] == [100, 100, 0, 0]
    h.mint(WALLET, -240, ts, 150)
    assert [gross(-240), gross(0), gross(ts), gross(ts * 2)] == [250, 100, 150, 0]
    h.mint(WALLET, 0, ts * 2, 60)
    assert [gross(-240), gross(0), gross(ts), gross(ts * 2)] == [250, 160, 150, 60]


def test_mint_above_removes_liquidity_gross_and_clears_ticks(pool_1_10):
    h = pool_1_10
    h.mint(WALLET, -240, 0, 100)
    h.mint(WALLET, -240, 0, 40)
    h.burn(WALLET, -240, 0, 90)
    assert h.pool.tick_info(-240).liquidity_gross == 50
    assert h.pool.tick_info(0).liquidity_gross == 50
    h.burn(WALLET, -240, 0, 50)
    # 'clears tick lower/upper if last position is removed'
    assert -240 not in h.pool.ticks and 0 not in h.pool.ticks
    assert h.pool.tick_info(-240).fee_growth_outside0_x128 == 0


def test_mint_only_clears_the_tick_that_is_not_used_at_all(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing
    h.mint(WALLET, -240, 0, 100)
    h.mint(WALLET, -ts, 0, 250)
    h.burn(WALLET, -240, 0, 100)
    assert h.pool.tick_info(-240).liquidity_gross == 0
    info = h.pool.tick_info(-ts)
    assert (info.liquidity_gross, info.fee_growth_outside0_x128, info.fee_growth_outside1_x128) == (
        250,
        0,
        0,
    )


def test_mint_above_and_below_do_not_write_an_observation(pool_1_10):
    h = pool_1_10
    first = Observation(TEST_POOL_START_TIME, 0, 0, True)
    assert h.pool.observations[0] == first
    h.advance_time(1)
    h.mint(WALLET, -240, 0, 100)
    h.mint(WALLET, -46080, -23040, 100)
    assert h.pool.observations[0] == first


def test_mint_including_current_price(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing
    # 'price within range: transfers current price of both tokens'
    assert h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, 100) == (317, 32)
    assert (h.balance0, h.balance1) == (9996 + 317, 1000 + 32)
    assert h.pool.tick_info(h.min_tick + ts).liquidity_gross == 100  # initializes lower tick
    assert h.pool.tick_info(h.max_tick - ts).liquidity_gross == 100  # initializes upper tick


def test_mint_including_works_for_min_max_tick(pool_1_10):
    h = pool_1_10
    assert h.mint(WALLET, h.min_tick, h.max_tick, 10000) == (31623, 3163)


def test_mint_including_removing_works(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing
    h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, 100)
    h.burn(WALLET, h.min_tick + ts, h.max_tick - ts, 100)
    assert h.collect(WALLET, h.min_tick + ts, h.max_tick - ts) == (316, 31)


def test_mint_including_writes_an_observation(pool_1_10):
    h = pool_1_10
    h.advance_time(1)
    h.mint(WALLET, h.min_tick, h.max_tick, 100)
    assert h.pool.observations[0] == Observation(
        TEST_POOL_START_TIME + 1, -23028, 107650226801941937191829992860413859, True
    )


def test_mint_below_current_price(pool_1_10):
    h = pool_1_10
    assert h.mint(WALLET, -46080, -23040, 10000) == (0, 2162)  # 'transfers token1 only'


def test_mint_below_min_tick_with_max_leverage(pool_1_10):
    h = pool_1_10
    h.mint(WALLET, h.min_tick, h.min_tick + h.tick_spacing, 2**102)
    assert (h.balance0, h.balance1) == (9996, 1000 + 828011520)


def test_mint_below_works_for_min_tick(pool_1_10):
    assert pool_1_10.mint(WALLET, pool_1_10.min_tick, -23040, 10000) == (0, 3161)


def test_mint_below_removing_works(pool_1_10):
    h = pool_1_10
    h.mint(WALLET, -46080, -46020, 10000)
    h.burn(WALLET, -46080, -46020, 10000)
    assert h.collect(WALLET, -46080, -46020) == (0, 3)


def test_protocol_fees_accumulate_as_expected_during_swap(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing
    h.pool.set_fee_protocol(6, 6)
    h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, E18)
    h.swap_exact0_for1(E18 // 10)
    h.swap_exact1_for0(E18 // 100)
    assert (h.pool.protocol_fees.token0, h.pool.protocol_fees.token1) == (
        50000000000000,
        5000000000000,
    )


def test_positions_are_protected_before_protocol_fee_is_turned_on(pool_1_10):
    h = pool_1_10
    ts = h.tick_spacing
    h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, E18)
    h.swap_exact0_for1(E18 // 10)
    h.swap_exact1_for0(E18 // 100)
    assert (h.pool.protocol_fees.token0, h.pool.protocol_fees.token1) == (0, 0)
    h.pool.set_fee_protocol(6, 6)
    assert (h.pool.protocol_fees.token0, h.pool.protocol_fees.token1) == (0, 0)


def test_poke_is_not_allowed_on_uninitialized_position(pool_1_10):
    h = pool_1_10
    lower, upper = h.min_tick + h.tick_spacing, h.max_tick - h.tick_spacing
    h.mint(OTHER, lower, upper, E18)
    h.swap_exact0_for1(E18 // 10)
    h.swap_exact1_for0(E18 // 100)
    before = snapshot(h.pool)
    reverts("NP", h.pool.burn, WALLET, lower, upper, 0)
    assert h.pool == before
    assert (WALLET, lower, upper) not in h.pool.positions

    h.mint(WALLET, lower, upper, 1)
    pos = h.pool.position(WALLET, lower, upper)
    assert pos.liquidity == 1
    assert pos.fee_growth_inside0_last_x128 == 102084710076281216349243831104605583
    assert pos.fee_growth_inside1_last_x128 == 10208471007628121634924383110460558
    assert (pos.tokens_owed0, pos.tokens_owed1) == (0, 0)

    h.burn(WALLET, lower, upper, 1)
    pos = h.pool.position(WALLET, lower, upper)
    assert pos.liquidity == 0
    assert pos.fee_growth_inside0_last_x128 == 102084710076281216349243831104605583
    assert pos.fee_growth_inside1_last_x128 == 10208471007628121634924383110460558
    assert (pos.tokens_owed0, pos.tokens_owed1) == (3, 0)


# ------------------------------------------------------------------------------------------- #burn


def at_zero_tick(fee: int = 3000, tick_spacing: int = 60) -> PoolHarness:
    """initializeAtZeroTick: price 1:1, mint(min, max, 2e18)."""
    h = PoolHarness(fee, tick_spacing, encode_price_sqrt(1, 1))
    h.mint(WALLET, h.min_tick, h.max_tick, expand_to_18_decimals(2))
    return h


def test_burn_does_not_clear_the_position_fee_growth_snapshot():
    h = at_zero_tick()
    h.advance_time(10)
    h.mint(OTHER, h.min_tick, h.max_tick, E18)
    h.swap_exact0_for1(E18)
    h.swap_exact1_for0(E18)
    h.burn(OTHER, h.min_tick, h.max_tick, E18)
    pos = h.pool.position(OTHER, h.min_tick, h.max_tick)
    assert pos.liquidity == 0
    assert pos.tokens_owed0 != 0 and pos.tokens_owed1 != 0
    assert pos.fee_growth_inside0_last_x128 == 340282366920938463463374607431768211
    assert pos.fee_growth_inside1_last_x128 == 340282366920938576890830247744589365


def _tick_is_clear(pool: Pool, t: int) -> bool:
    info = pool.tick_info(t)
    return (
        info.liquidity_gross,
        info.fee_growth_outside0_x128,
        info.fee_growth_outside1_x128,
        info.liquidity_net,
    ) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("second", "lower_clear", "upper_clear"),
    [(None, True, True), ("upper_shared", True, False), ("lower_shared", False, True)],
)
def test_burn_clears_ticks_no_longer_used(second, lower_clear, upper_clear):
    h = at_zero_tick()
    ts = h.tick_spacing
    lower, upper = h.min_tick + ts, h.max_tick - ts
    h.advance_time(10)
    h.mint(WALLET, lower, upper, 1)
    if second == "upper_shared":
        h.mint(WALLET, lower + ts, upper, 1)
    elif second == "lower_shared":
        h.mint(WALLET, lower, upper - ts, 1)
    h.swap_exact0_for1(E18)
    h.burn(WALLET, lower, upper, 1)
    assert _tick_is_clear(h.pool, lower) is lower_clear
    assert _tick_is_clear(h.pool, upper) is upper_clear


# ---------------------------------------------------------------------------------------- #observe


def test_observe_current_tick_accumulator():
    h = at_zero_tick()
    assert h.pool.observe([0])[0] == [0]
    h.advance_time(10)
    assert h.pool.observe([0])[0] == [0]


def test_observe_after_single_swap():
    h = at_zero_tick()
    h.swap_exact0_for1(1000)  # moves to tick -1
    h.advance_time(4)
    assert h.pool.observe([0])[0] == [-4]


def test_observe_after_two_swaps():
    h = at_zero_tick()
    h.swap_exact0_for1(E18 // 2)
    assert h.pool.tick == -4452
    h.advance_time(4)
    h.swap_exact1_for0(E18 // 4)
    assert h.pool.tick == -1558
    h.advance_time(6)
    assert h.pool.observe([0])[0] == [-27156]  # -4452*4 + -1558*6


# ------------------------------------------------------------------------ miscellaneous mint tests


@pytest.mark.parametrize(
    ("lower_mult", "upper_mult", "expected"),
    [(1, 2, (1, 0)), (-2, -1, (0, 1)), (-1, 1, (1, 1))],
)
def test_misc_mint_around_current_price(lower_mult, upper_mult, expected):
    h = at_zero_tick(500, 10)
    liquidity_before = h.pool.liquidity
    assert h.mint(WALLET, 10 * lower_mult, 10 * upper_mult, 1000) == expected
    assert h.pool.liquidity >= liquidity_before


def test_cannot_remove_more_than_the_entire_position():
    h = at_zero_tick(500, 10)
    h.mint(WALLET, -10, 10, expand_to_18_decimals(1000))
    before = snapshot(h.pool)
    reverts("LS", h.pool.burn, WALLET, -10, 10, expand_to_18_decimals(1001))
    assert h.pool == before


def test_collect_fees_within_the_current_price_after_swap():
    h = at_zero_tick(500, 10)
    lower, upper = -10 * 100, 10 * 100
    h.mint(WALLET, lower, upper, expand_to_18_decimals(100))
    liquidity_before = h.pool.liquidity
    h.swap_exact0_for1(E18)
    assert h.pool.liquidity >= liquidity_before
    b0, b1 = h.balance0, h.balance1
    h.burn(WALLET, lower, upper, 0)
    fees0, fees1 = h.collect(WALLET, lower, upper)
    assert fees0 > 0 and fees1 == 0
    h.burn(WALLET, lower, upper, 0)
    assert h.collect(WALLET, lower, upper) == (0, 0)
    assert h.balance0 < b0 and h.balance1 == b1


# ------------------------------------------------------------------------------------- k (implicit)


def test_k_in_range_supply():
    h = at_zero_tick()
    ts = h.tick_spacing
    assert h.pool.liquidity == expand_to_18_decimals(2)
    h.mint(WALLET, -ts, ts, expand_to_18_decimals(3))
    assert h.pool.liquidity == expand_to_18_decimals(5)
    h.mint(WALLET, ts, ts * 2, expand_to_18_decimals(3))  # excludes supply above
    h.mint(WALLET, -ts * 2, -ts, expand_to_18_decimals(3))  # excludes supply below
    assert h.pool.liquidity == expand_to_18_decimals(5)


def test_k_updates_correctly_when_exiting_range():
    h = at_zero_tick()
    h.mint(WALLET, 0, h.tick_spacing, E18)
    assert h.pool.liquidity == expand_to_18_decimals(3)
    h.swap_exact0_for1(1)
    assert h.pool.tick == -1
    assert h.pool.liquidity == expand_to_18_decimals(2)


def test_k_updates_correctly_when_entering_range():
    h = at_zero_tick()
    h.mint(WALLET, -h.tick_spacing, 0, E18)
    assert h.pool.liquidity == expand_to_18_decimals(2)
    h.swap_exact0_for1(1)
    assert h.pool.tick == -1
    assert h.pool.liquidity == expand_to_18_decimals(3)


# ------------------------------------------------------------------------------------ limit orders


@pytest.mark.parametrize(("fee_on", "fees"), [(False, 18107525382602), (True, 15089604485501)])
def test_limit_selling_0_for_1_at_tick_0_thru_1(fee_on, fees):
    h = at_zero_tick()
    if fee_on:
        h.pool.set_fee_protocol(6, 6)
    assert h.mint(WALLET, 0, 120, E18) == (5981737760509663, 0)
    h.swap_exact1_for0(expand_to_18_decimals(2))  # somebody takes the limit order
    assert h.burn(WALLET, 0, 120, E18) == (0, 6017734268818165)
    assert h.collect(WALLET, 0, 120) == (0, 6017734268818165 + fees)
    assert h.pool.tick >= 120


@pytest.mark.parametrize(("fee_on", "fees"), [(False, 18107525382602), (True, 15089604485501)])
def test_limit_selling_1_for_0_at_tick_0_thru_minus_1(fee_on, fees):
    h = at_zero_tick()
    if fee_on:
        h.pool.set_fee_protocol(6, 6)
    assert h.mint(WALLET, -120, 0, E18) == (0, 5981737760509663)
    h.swap_exact0_for1(expand_to_18_decimals(2))
    assert h.burn(WALLET, -120, 0, E18) == (6017734268818165, 0)
    assert h.collect(WALLET, -120, 0) == (6017734268818165 + fees, 0)
    assert h.pool.tick < -120


# ---------------------------------------------------------------------------------------- #collect


def low_fee_pool() -> PoolHarness:
    return PoolHarness(500, 10, encode_price_sqrt(1, 1))


def test_collect_works_with_multiple_lps():
    h = low_fee_pool()
    ts = h.tick_spacing
    h.mint(WALLET, h.min_tick, h.max_tick, E18)
    h.mint(WALLET, h.min_tick + ts, h.max_tick - ts, expand_to_18_decimals(2))
    h.swap_exact0_for1(E18)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    h.burn(WALLET, h.min_tick + ts, h.max_tick - ts, 0)
    assert h.pool.position(WALLET, h.min_tick, h.max_tick).tokens_owed0 == 166666666666667
    assert h.pool.position(WALLET, h.min_tick + ts, h.max_tick - ts).tokens_owed0 == 333333333333334


# type(uint128).max * 2**128 / 1e18
MAGIC = 115792089237316195423570985008687907852929702298719625575994


@pytest.mark.parametrize(
    ("growth", "owed0"),
    [(MAGIC, MAX_UINT128 - 1), (MAGIC + 1, MAX_UINT128), (MAX_UINT256, MAX_UINT128)],
)
def test_collect_works_across_large_increases(growth, owed0):
    h = low_fee_pool()
    h.mint(WALLET, h.min_tick, h.max_tick, E18)
    h.pool.fee_growth_global0_x128 = growth  # MockTimeUniswapV3Pool.setFeeGrowthGlobal0X128
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    pos = h.pool.position(WALLET, h.min_tick, h.max_tick)
    assert (pos.tokens_owed0, pos.tokens_owed1) == (owed0, 0)


@pytest.mark.parametrize(
    ("swaps", "expected"),
    [
        ("0", (499999999999999, 0)),
        ("1", (0, 499999999999999)),
        ("01", (499999999999999, 500000000000000)),
    ],
)
def test_collect_works_across_overflow_boundaries(swaps, expected):
    h = low_fee_pool()
    h.pool.fee_growth_global0_x128 = MAX_UINT256
    h.pool.fee_growth_global1_x128 = MAX_UINT256
    h.mint(WALLET, h.min_tick, h.max_tick, expand_to_18_decimals(10))
    for s in swaps:
        (h.swap_exact0_for1 if s == "0" else h.swap_exact1_for0)(E18)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    assert h.collect(WALLET, h.min_tick, h.max_tick) == expected


# ------------------------------------------------------------------------------------ #feeProtocol


def fee_protocol_pool() -> PoolHarness:
    h = low_fee_pool()
    h.mint(WALLET, h.min_tick, h.max_tick, expand_to_18_decimals(1000))
    return h


def swap_and_get_fees_owed(h: PoolHarness, zero_for_one: bool, poke: bool) -> tuple[int, int]:
    (h.swap_exact0_for1 if zero_for_one else h.swap_exact1_for0)(E18)
    if poke:
        h.burn(WALLET, h.min_tick, h.max_tick, 0)
    pos = h.pool.position(WALLET, h.min_tick, h.max_tick)
    return pos.tokens_owed0, pos.tokens_owed1  # what callStatic.collect(max, max) returns


def test_fee_protocol_setting():
    h = fee_protocol_pool()
    assert h.pool.slot0.fee_protocol == 0
    h.pool.set_fee_protocol(6, 6)
    assert h.pool.slot0.fee_protocol == 102
    for fp in [(3, 3), (6, 3), (3, 6), (11, 11), (6, 11), (11, 6)]:
        before = snapshot(h.pool)
        reverts("", h.pool.set_fee_protocol, *fp)
        assert h.pool == before
    h.pool.set_fee_protocol(4, 4)
    h.pool.set_fee_protocol(10, 10)
    h.pool.set_fee_protocol(7, 7)
    assert h.pool.slot0.fee_protocol == 119
    h.pool.set_fee_protocol(5, 8)
    assert h.pool.slot0.fee_protocol == 133
    h.pool.set_fee_protocol(0, 0)
    assert h.pool.slot0.fee_protocol == 0


@pytest.mark.parametrize("zero_for_one", [True, False])
def test_swap_fees_accumulate_as_expected(zero_for_one):
    h = fee_protocol_pool()
    for expected in (499999999999999, 999999999999998, 1499999999999997):
        fees = swap_and_get_fees_owed(h, zero_for_one, poke=True)
        assert fees == ((expected, 0) if zero_for_one else (0, expected))


def test_position_owner_gets_partial_fees_when_protocol_fee_is_on():
    h = fee_protocol_pool()
    h.pool.set_fee_protocol(6, 6)
    assert swap_and_get_fees_owed(h, True, poke=True) == (416666666666666, 0)
    # #collectProtocol 'can collect fees': the transfer is protocolFees - 1 (slot kept warm)
    assert h.pool.protocol_fees.token0 - 1 == 83333333333332


def test_protocol_fees_collected_can_differ_between_token0_and_token1():
    h = fee_protocol_pool()
    h.pool.set_fee_protocol(8, 5)
    swap_and_get_fees_owed(h, True, poke=False)
    swap_and_get_fees_owed(h, False, poke=False)
    # collectProtocol transfers protocolFees - 1 of each token
    assert h.pool.protocol_fees.token0 - 1 == 62499999999999  # 1/8th of the swap fees
    assert h.pool.protocol_fees.token1 - 1 == 99999999999998  # 1/5th of the swap fees


def test_fees_collected_after_two_swaps_with_fee_turned_on_in_middle():
    h = fee_protocol_pool()
    swap_and_get_fees_owed(h, True, poke=False)
    h.pool.set_fee_protocol(6, 6)
    assert swap_and_get_fees_owed(h, True, poke=True) == (916666666666666, 0)


def test_fees_collected_by_lp_after_two_swaps_with_intermediate_withdrawal():
    h = fee_protocol_pool()
    h.pool.set_fee_protocol(6, 6)
    assert swap_and_get_fees_owed(h, True, poke=True) == (416666666666666, 0)
    h.collect(WALLET, h.min_tick, h.max_tick)
    assert swap_and_get_fees_owed(h, True, poke=False) == (0, 0)
    assert (h.pool.protocol_fees.token0, h.pool.protocol_fees.token1) == (166666666666666, 0)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    assert h.collect(WALLET, h.min_tick, h.max_tick) == (416666666666666, 0)
    assert (h.pool.protocol_fees.token0, h.pool.protocol_fees.token1) == (166666666666666, 0)


# ------------------------------------------------------------------------------ #tickSpacing = 12


def test_tick_spacing_12_mint_only_multiples():
    h = PoolHarness(3000, 12, encode_price_sqrt(1, 1))
    before = snapshot(h.pool)
    reverts("", h.pool.mint, WALLET, -6, 0, 1)
    reverts("", h.pool.mint, WALLET, 0, 6, 1)
    assert h.pool == before
    h.mint(WALLET, 12, 24, 1)
    h.mint(WALLET, -144, -120, 1)


def test_tick_spacing_12_swapping_across_gaps_1_for_0():
    h = PoolHarness(3000, 12, encode_price_sqrt(1, 1))
    liquidity = E18 // 4
    h.mint(WALLET, 120000, 121200, liquidity)
    h.swap_exact1_for0(E18)
    assert h.burn(WALLET, 120000, 121200, liquidity) == (30027458295511, 996999999999999999)
    assert h.pool.tick == 120196


def test_tick_spacing_12_swapping_across_gaps_0_for_1():
    h = PoolHarness(3000, 12, encode_price_sqrt(1, 1))
    liquidity = E18 // 4
    h.mint(WALLET, -121200, -120000, liquidity)
    h.swap_exact0_for1(E18)
    assert h.burn(WALLET, -121200, -120000, liquidity) == (996999999999999999, 30027458295511)
    assert h.pool.tick == -120197


def test_tick_transition_cannot_run_twice_issue_214():
    # zero for one swap ending at a fractional price just below a tick
    p0 = get_sqrt_ratio_at_tick(-24081) + 1
    h = PoolHarness(3000, 1, p0)
    assert h.pool.liquidity == 0
    assert h.pool.tick == -24081
    liquidity = expand_to_18_decimals(1000)
    h.mint(WALLET, -24082, -24080, liquidity)
    assert h.pool.liquidity == liquidity
    h.mint(WALLET, -24082, -24081, liquidity)
    assert h.pool.liquidity == liquidity
    result = h.swap_exact0_for1(3)
    assert (result.amount0, result.amount1) == (3, 0)
    assert h.pool.tick == -24082
    assert h.pool.sqrt_price_x96 == p0 - 1
    assert h.pool.liquidity == liquidity * 2


# ------------------------------------------------------------------------------------------ #flash


def test_flash_fails_if_no_liquidity():
    h = PoolHarness(3000, 60, encode_price_sqrt(1, 1))
    for a0, a1 in [(100, 200), (100, 0), (0, 200)]:
        with pytest.raises(UniswapRevert) as exc:
            h.flash(a0, a1)
        assert exc.value.reason == "L"


def test_flash_fee_off():
    h = at_zero_tick()
    assert h.flash(1001, 2001) == (4, 7)  # 'emits an event' with fees 4, 7
    h = at_zero_tick()
    assert h.flash(1001, 2002) == (4, 7)
    two = expand_to_18_decimals(2)
    assert h.pool.fee_growth_global0_x128 == 4 * Q128 // two
    assert h.pool.fee_growth_global1_x128 == 7 * Q128 // two


def test_flash_fails_if_not_returned_or_underpaid():
    h = at_zero_tick()
    before = snapshot(h.pool)
    reverts("F0", h.flash, 1000, 0, 999, 0)  # 'fails if original balance not returned'
    reverts("F1", h.flash, 0, 1000, 0, 999)
    reverts("F0", h.flash, 1000, 0, 1002, 0)  # 'fails if underpays either token' (fee is 3)
    reverts("F1", h.flash, 0, 1000, 0, 1002)
    assert h.pool == before


@pytest.mark.parametrize(
    ("fee_on", "pay", "growth", "protocol"),
    [
        (False, (567, 0), (567, 0), (0, 0)),
        (False, (0, 678), (0, 678), (0, 0)),
        (False, (789, 1234), (789, 1234), (0, 0)),
        (True, (567, 0), (473, 0), (94, 0)),
        (True, (0, 678), (0, 565), (0, 113)),
        (True, (789, 1234), (658, 1029), (131, 205)),
    ],
)
def test_flash_donations(fee_on, pay, growth, protocol):
    h = at_zero_tick()
    if fee_on:
        h.pool.set_fee_protocol(6, 6)
    h.flash(0, 0, *pay)
    two = expand_to_18_decimals(2)
    assert h.pool.fee_growth_global0_x128 == growth[0] * Q128 // two
    assert h.pool.fee_growth_global1_x128 == growth[1] * Q128 // two
    assert (h.pool.protocol_fees.token0, h.pool.protocol_fees.token1) == protocol


def test_flash_fee_on_increases_fee_growth_by_expected_amount():
    h = at_zero_tick()
    h.pool.set_fee_protocol(6, 6)
    assert h.flash(2002, 4004) == (7, 13)
    assert (h.pool.protocol_fees.token0, h.pool.protocol_fees.token1) == (1, 2)
    two = expand_to_18_decimals(2)
    assert h.pool.fee_growth_global0_x128 == 6 * Q128 // two
    assert h.pool.fee_growth_global1_x128 == 11 * Q128 // two


# ------------------------------------------------------------------------ fees overflow scenarios


def one_wei_pool() -> PoolHarness:
    h = PoolHarness(3000, 60, encode_price_sqrt(1, 1))
    h.mint(WALLET, h.min_tick, h.max_tick, 1)
    return h


def test_fees_up_to_max_uint128():
    h = one_wei_pool()
    h.flash(0, 0, MAX_UINT128, MAX_UINT128)
    assert h.pool.fee_growth_global0_x128 == MAX_UINT128 << 128
    assert h.pool.fee_growth_global1_x128 == MAX_UINT128 << 128
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    assert h.collect(WALLET, h.min_tick, h.max_tick) == (MAX_UINT128, MAX_UINT128)


def test_fees_overflow_max_uint128():
    h = one_wei_pool()
    h.flash(0, 0, MAX_UINT128, MAX_UINT128)
    h.flash(0, 0, 1, 1)
    assert (h.pool.fee_growth_global0_x128, h.pool.fee_growth_global1_x128) == (0, 0)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    assert h.collect(WALLET, h.min_tick, h.max_tick) == (0, 0)  # fees burned


def test_fees_overflow_max_uint128_after_poke_burns_fees_owed_to_0():
    h = one_wei_pool()
    h.flash(0, 0, MAX_UINT128, MAX_UINT128)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    h.flash(0, 0, 1, 1)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    assert h.collect(WALLET, h.min_tick, h.max_tick) == (0, 0)


def test_fees_two_positions_at_the_same_snapshot():
    h = one_wei_pool()
    h.mint(OTHER, h.min_tick, h.max_tick, 1)
    h.flash(0, 0, MAX_UINT128, 0)
    h.flash(0, 0, MAX_UINT128, 0)
    assert h.pool.fee_growth_global0_x128 == MAX_UINT128 << 128
    h.flash(0, 0, 2, 0)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    h.burn(OTHER, h.min_tick, h.max_tick, 0)
    assert h.collect(WALLET, h.min_tick, h.max_tick)[0] == 0
    assert h.collect(OTHER, h.min_tick, h.max_tick)[0] == 0


def test_fees_two_positions_1_wei_apart_overflows_exactly_once():
    h = one_wei_pool()
    h.flash(0, 0, 1, 0)
    h.mint(OTHER, h.min_tick, h.max_tick, 1)
    h.flash(0, 0, MAX_UINT128, 0)
    h.flash(0, 0, MAX_UINT128, 0)
    assert h.pool.fee_growth_global0_x128 == 0
    h.flash(0, 0, 2, 0)
    h.burn(WALLET, h.min_tick, h.max_tick, 0)
    h.burn(OTHER, h.min_tick, h.max_tick, 0)
    assert h.collect(WALLET, h.min_tick, h.max_tick)[0] == 1
    assert h.collect(OTHER, h.min_tick, h.max_tick)[0] == 0


# ------------------------------------------------------------------------- swap argument checks


def test_swap_reverts_as_and_spl():
    # UniswapV3Pool.swap: require(amountSpecified != 0, 'AS'); the price limit check is 'SPL'
    h = at_zero_tick()
    p = h.pool.sqrt_price_x96
    before = snapshot(h.pool)
    reverts("AS", h.pool.swap, True, 0, MIN_SQRT_RATIO + 1)
    reverts("AS", h.pool.quote_swap, False, 0, MAX_SQRT_RATIO - 1)
    for zero_for_one, limit in [
        (True, p),  # not below the current price
        (True, p + 1),
        (True, MIN_SQRT_RATIO),  # must be strictly above MIN_SQRT_RATIO
        (False, p),  # not above the current price
        (False, p - 1),
        (False, MAX_SQRT_RATIO),  # must be strictly below MAX_SQRT_RATIO
    ]:
        reverts("SPL", h.pool.swap, zero_for_one, E18, limit)
        reverts("SPL", h.pool.swap, zero_for_one, -E18, limit)
        reverts("SPL", h.pool.quote_swap, zero_for_one, E18, limit)
    assert h.pool == before
