"""Property tests (Hypothesis) of the exact core.

The invariants are those of the v3-core echidna harnesses (contracts/test/TickMathEchidnaTest,
SqrtPriceMathEchidnaTest, SwapMathEchidnaTest, the E2E swap and mint/burn tests) and of the
periphery's LiquidityAmounts, checked here on the Python mirror.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.liquidity_amounts import get_amounts_for_liquidity, get_liquidity_for_amounts
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.sqrt_price_math import (
    get_amount0_delta,
    get_amount0_delta_signed,
    get_amount1_delta,
    get_amount1_delta_signed,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from lpbot.uniswap.swap_math import compute_swap_step
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from tests.uniswap.uniswap_testlib import MAX_UINT128, WALLET, get_max_tick, get_min_tick

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POOL_PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ticks = st.integers(MIN_TICK, MAX_TICK)
uint128 = st.integers(0, MAX_UINT128)
positive_uint128 = st.integers(1, MAX_UINT128)
# every valid price, drawn both uniformly and near tick ratios (where rounding bites)
sqrt_prices = st.one_of(
    st.integers(MIN_SQRT_RATIO, MAX_SQRT_RATIO - 1),
    st.builds(
        lambda t, d: min(max(get_sqrt_ratio_at_tick(t) + d, MIN_SQRT_RATIO), MAX_SQRT_RATIO - 1),
        ticks,
        st.integers(-3, 3),
    ),
)


# --------------------------------------------------------------------------------------- TickMath


@PROPS
@given(st.integers(MIN_TICK, MAX_TICK - 1))
def test_tick_round_trip_and_monotonic(tick):
    ratio = get_sqrt_ratio_at_tick(tick)
    assert get_tick_at_sqrt_ratio(ratio) == tick
    assert ratio < get_sqrt_ratio_at_tick(tick + 1)
    assert MIN_SQRT_RATIO <= ratio < MAX_SQRT_RATIO


@PROPS
@given(sqrt_prices)
def test_tick_is_greatest_tick_with_ratio_at_or_below_price(price):
    tick = get_tick_at_sqrt_ratio(price)
    assert MIN_TICK <= tick < MAX_TICK
    assert get_sqrt_ratio_at_tick(tick) <= price < get_sqrt_ratio_at_tick(tick + 1)


# ---------------------------------------------------------------------------------- SqrtPriceMath


@PROPS
@given(sqrt_prices, sqrt_prices, uint128)
def test_amount_deltas_round_up_by_at_most_one(a, b, liquidity):
    down0 = get_amount0_delta(a, b, liquidity, False)
    up0 = get_amount0_delta(a, b, liquidity, True)
    assert 0 <= up0 - down0 <= 1
    down1 = get_amount1_delta(a, b, liquidity, False)
    up1 = get_amount1_delta(a, b, liquidity, True)
    assert 0 <= up1 - down1 <= 1
    # symmetric in the two prices
    assert get_amount0_delta(b, a, liquidity, True) == up0
    assert get_amount1_delta(b, a, liquidity, False) == down1
    # exact bounds: floor/ceil of L * 2^96 * (B - A) / (A * B) and L * (B - A) / 2^96
    lo, hi = min(a, b), max(a, b)
    n0, d0 = (liquidity << 96) * (hi - lo), hi * lo
    assert down0 <= n0 // d0 and up0 >= -(-n0 // d0)
    assert down1 == liquidity * (hi - lo) >> 96
    assert up1 == -(-liquidity * (hi - lo) >> 96)


@PROPS
@given(sqrt_prices, sqrt_prices, st.integers(-(2**127) + 1, 2**127 - 1))
def test_signed_amount_deltas(a, b, liquidity):
    amount0 = get_amount0_delta_signed(a, b, liquidity)
    amount1 = get_amount1_delta_signed(a, b, liquidity)
    if liquidity < 0:
        assert amount0 == -get_amount0_delta(a, b, -liquidity, False) <= 0
        assert amount1 == -get_amount1_delta(a, b, -liquidity, False) <= 0
    else:
        assert amount0 == get_amount0_delta(a, b, liquidity, True) >= 0
        assert amount1 == get_amount1_delta(a, b, liquidity, True) >= 0
    # what is paid in for +L is at least what is paid out for -L
    assert get_amount0_delta_signed(a, b, abs(liquidity)) >= -get_amount0_delta_signed(
        a, b, -abs(liquidity)
    )


@PROPS
@given(sqrt_prices, positive_uint128, st.integers(0, 2**200), st.booleans())
def test_next_price_from_input_never_gives_away(price, liquidity, amount_in, zero_for_one):
    try:
        sqrt_q = get_next_sqrt_price_from_input(price, liquidity, amount_in, zero_for_one)
    except UniswapRevert:
        assume(False)
    if zero_for_one:
        assert sqrt_q <= price
        assert amount_in >= get_amount0_delta(sqrt_q, price, liquidity, True)
    else:
        assert sqrt_q >= price
        assert amount_in >= get_amount1_delta(price, sqrt_q, liquidity, True)


@PROPS
@given(sqrt_prices, positive_uint128, st.integers(0, 2**200), st.booleans())
def test_next_price_from_output_pays_at_least_the_output(price, liquidity, amount_out, zfo):
    try:
        sqrt_q = get_next_sqrt_price_from_output(price, liquidity, amount_out, zfo)
    except UniswapRevert:
        assume(False)
    if zfo:
        assert sqrt_q <= price
        assert amount_out <= get_amount1_delta(sqrt_q, price, liquidity, False)
    else:
        assert sqrt_q > 0 and sqrt_q >= price
        assert amount_out <= get_amount0_delta(price, sqrt_q, liquidity, False)


# ---------------------------------------------------------------------------------------- SwapMath


@PROPS
@given(
    sqrt_prices,
    sqrt_prices,
    uint128,
    st.one_of(st.integers(-(2**255), 2**255 - 1), st.integers(-(10**30), 10**30)),
    st.integers(1, 999_999),
)
def test_compute_swap_step_invariants(price, target, liquidity, amount_remaining, fee_pips):
    try:
        sqrt_q, amount_in, amount_out, fee_amount = compute_swap_step(
            price, target, liquidity, amount_remaining, fee_pips
        )
    except UniswapRevert:
        assume(False)
    assert min(amount_in, amount_out, fee_amount) >= 0
    assert amount_in + fee_amount < 2**256
    if amount_remaining < 0:
        assert amount_out <= -amount_remaining
    else:
        assert amount_in + fee_amount <= amount_remaining
    if price == target:
        assert (sqrt_q, amount_in, amount_out, fee_amount) == (target, 0, 0, 0)
    # the target was not reached: the entire amount was consumed
    if sqrt_q != target:
        if amount_remaining < 0:
            assert amount_out == -amount_remaining
        else:
            assert amount_in + fee_amount == amount_remaining
    # the price moves toward the target and never past it
    if target <= price:
        assert target <= sqrt_q <= price
    else:
        assert price <= sqrt_q <= target


# ------------------------------------------------------------------------------------ liquidity


@PROPS
@given(
    sqrt_prices,
    sqrt_prices,
    sqrt_prices,
    st.integers(0, 2**100),
    st.integers(0, 2**100),
)
def test_amounts_for_liquidity_for_amounts_never_exceed_the_amounts(p, a, b, amount0, amount1):
    assume(a != b)
    try:
        liquidity = get_liquidity_for_amounts(p, a, b, amount0, amount1)
    except UniswapRevert:
        assume(False)
    got0, got1 = get_amounts_for_liquidity(p, a, b, liquidity)
    assert got0 <= amount0
    assert got1 <= amount1


# ------------------------------------------------------------------------------------------- Pool


FEES = st.sampled_from([(500, 10), (3000, 60), (10000, 200)])


ZERO_TO_FOUR = st.integers(0, 4)
ONE_TO_FOUR = st.integers(1, 4)


@st.composite
def pools(draw, n_positions=ZERO_TO_FOUR):
    """A pool around a random price with a full-range position and a few random ranges.

    Returns the pool, the positions and the pool's token balances after the mints."""
    fee, spacing = draw(FEES)
    tick = draw(st.integers(-50_000, 50_000))
    price = get_sqrt_ratio_at_tick(tick) + draw(st.integers(0, 10**6))
    pool = Pool(fee, spacing, price, block_timestamp=1_000_000)
    positions = [
        (WALLET, get_min_tick(spacing), get_max_tick(spacing), draw(st.integers(10**6, 10**24)))
    ]
    for i in range(draw(n_positions)):
        lower = draw(st.integers(-300, 299)) * spacing + (tick // spacing) * spacing
        upper = lower + draw(st.integers(1, 200)) * spacing
        positions.append((f"lp{i}", lower, upper, draw(st.integers(1, 10**24))))
    balances = [0, 0]
    for owner, lower, upper, liquidity in positions:
        paid0, paid1 = pool.mint(owner, lower, upper, liquidity)
        balances[0] += paid0
        balances[1] += paid1
    return pool, positions, balances


@POOL_PROPS
@given(pools(), st.booleans(), st.integers(1, 10**24))
def test_exact_out_of_an_exact_in_output_costs_no_more(pool_and_positions, zero_for_one, amount):
    pool, _, _ = pool_and_positions
    start_tick = pool.slot0.tick
    limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    exact_in = pool.quote_swap(zero_for_one, amount, limit)
    paid_in, received = (
        (exact_in.amount0, -exact_in.amount1)
        if zero_for_one
        else (exact_in.amount1, -exact_in.amount0)
    )
    assert 0 <= paid_in <= amount and received >= 0
    # a swap stopped by the price limit is not an exact input of ``amount``; and a swap that
    # nearly drains the pool crosses many bitmap words, each step rounding its output down a
    # wei, where a wei of output costs a lot: buying it back can cost more, on-chain as here.
    # The property is for swaps that move the price less than 20,000 ticks (7x).
    assume(received > 0 and exact_in.sqrt_price_x96 != limit)
    assume(abs(exact_in.tick - start_tick) <= 20_000)
    exact_out = pool.quote_swap(zero_for_one, -received, limit)
    paid_out, got = (
        (exact_out.amount0, -exact_out.amount1)
        if zero_for_one
        else (exact_out.amount1, -exact_out.amount0)
    )
    assert got == received
    assert paid_out <= paid_in
    # and the exact output moved the price no further than the exact input did
    if zero_for_one:
        assert exact_out.sqrt_price_x96 >= exact_in.sqrt_price_x96
    else:
        assert exact_out.sqrt_price_x96 <= exact_in.sqrt_price_x96


@POOL_PROPS
@given(pools(), st.integers(-1000, 999), st.integers(1, 500), st.integers(1, 10**26))
def test_mint_then_burn_returns_no_more_than_paid(pool_and_positions, lower_i, width, liquidity):
    pool, _, _ = pool_and_positions
    spacing = pool.tick_spacing
    lower = max(lower_i * spacing + (pool.tick // spacing) * spacing, get_min_tick(spacing))
    upper = min(lower + width * spacing, get_max_tick(spacing))
    assume(lower < upper)
    paid0, paid1 = pool.mint("me", lower, upper, liquidity)
    out0, out1 = pool.burn("me", lower, upper, liquidity)
    assert 0 <= out0 <= paid0 and 0 <= out1 <= paid1
    assert paid0 - out0 <= 1 and paid1 - out1 <= 1
    assert pool.collect("me", lower, upper, MAX_UINT128, MAX_UINT128) == (out0, out1)


@POOL_PROPS
@given(
    pools(n_positions=ONE_TO_FOUR),
    st.lists(st.tuples(st.booleans(), st.integers(10**3, 10**22)), min_size=1, max_size=6),
)
def test_fee_growth_is_never_lost(pool_and_positions, swaps):
    pool, positions, _ = pool_and_positions
    spacing = pool.tick_spacing
    word = 256 * spacing
    paid = [0, 0]
    slack = len(positions)  # one rounding-down per position when its fees are credited
    lo_limit, hi_limit = get_sqrt_ratio_at_tick(-120_000), get_sqrt_ratio_at_tick(120_000)
    for zero_for_one, amount in swaps:
        start_tick = pool.tick
        limit = lo_limit if zero_for_one else hi_limit
        if (zero_for_one and pool.sqrt_price_x96 <= limit) or (
            not zero_for_one and pool.sqrt_price_x96 >= limit
        ):
            continue
        result = pool.swap(zero_for_one, amount, limit)
        paid[0 if zero_for_one else 1] += result.fee_amount
        # one rounding-down of the fee growth per step: a step per initialized tick crossed and
        # per bitmap word boundary passed, plus the last one
        words = abs(pool.tick // word - start_tick // word) + 1
        slack += result.ticks_crossed + words + 1
    owed = [0, 0]
    for owner, lower, upper, _ in positions:
        pool.burn(owner, lower, upper, 0)  # poke: credit the fees
        got0, got1 = pool.collect(owner, lower, upper, MAX_UINT128, MAX_UINT128)
        owed[0] += got0
        owed[1] += got1
    for token in (0, 1):
        assert owed[token] <= paid[token]
        assert paid[token] - owed[token] <= slack


def in_range_liquidity(pool: Pool) -> int:
    return sum(p.liquidity for (_, lo, hi), p in pool.positions.items() if lo <= pool.tick < hi)


@POOL_PROPS
@given(
    pools(),
    st.lists(
        st.tuples(st.booleans(), st.integers(-(10**22), 10**22).filter(bool)),
        min_size=1,
        max_size=6,
    ),
)
def test_pool_stays_solvent_and_liquidity_tracks_the_ranges(pool_and_positions, swaps):
    pool, positions, balances = pool_and_positions
    for zero_for_one, amount in swaps:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
        if (zero_for_one and pool.sqrt_price_x96 <= limit) or (
            not zero_for_one and pool.sqrt_price_x96 >= limit
        ):
            continue
        result = pool.swap(zero_for_one, amount, limit)
        # the input token comes in, the output token goes out
        assert (
            (result.amount0 >= 0 >= result.amount1)
            if zero_for_one
            else (result.amount1 >= 0 >= result.amount0)
        )
        balances[0] += result.amount0
        balances[1] += result.amount1
        assert pool.liquidity == in_range_liquidity(pool)
        assert pool.tick == get_tick_at_sqrt_ratio(pool.sqrt_price_x96) or (
            # a swap ending exactly on a tick ratio from above records the tick below
            zero_for_one and pool.sqrt_price_x96 == get_sqrt_ratio_at_tick(pool.tick + 1)
        )
    for owner, lower, upper, liquidity in positions:
        pool.burn(owner, lower, upper, liquidity)
        got0, got1 = pool.collect(owner, lower, upper, MAX_UINT128, MAX_UINT128)
        balances[0] -= got0
        balances[1] -= got1
        assert balances[0] >= 0 and balances[1] >= 0
    assert pool.liquidity == 0
    assert pool.ticks == {} and pool.tick_bitmap == {}
