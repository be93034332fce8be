"""plan_open: the swap is solved on the pool, the plan executes exactly, dust stays in bound."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lpbot.strategy.base import Range
from lpbot.strategy.open import OpenPlan, plan_open
from lpbot.uniswap import Pool

from .pools import ONE_FOR_ZERO_LIMIT, ZERO_FOR_ONE_LIMIT, seeded_pool, snap, snapshot

# -196250 is about 3000 USDC per WETH with token0 = WETH (18 decimals), token1 = USDC (6)
ETH_TICK = -196250


def execute(pool: Pool, plan: OpenPlan, amount0: int, amount1: int) -> tuple[int, int]:
    """Swap and mint on a fork as planned; return what is left of the capital."""
    fork = pool.copy()
    balance0, balance1 = amount0, amount1
    if plan.swap is not None:
        limit = ZERO_FOR_ONE_LIMIT if plan.swap.zero_for_one else ONE_FOR_ZERO_LIMIT
        result = fork.swap(plan.swap.zero_for_one, plan.swap.amount_in, limit)
        balance0 -= result.amount0
        balance1 -= result.amount1
        assert fork.sqrt_price_x96 == plan.sqrt_price_x96
        out = -result.amount1 if plan.swap.zero_for_one else -result.amount0
        assert out == plan.swap.expected_out
    paid0, paid1 = fork.mint("me", plan.range.tick_lower, plan.range.tick_upper, plan.liquidity)
    assert (paid0, paid1) == (plan.amount0, plan.amount1)
    return balance0 - paid0, balance1 - paid1


def test_plan_executes_exactly_and_uses_the_capital() -> None:
    pool = seeded_pool(ETH_TICK)
    rng = Range(snap(ETH_TICK - 1000, 10), snap(ETH_TICK + 300, 10), 10)
    plan = plan_open(pool, rng, 10**18, 0)  # 1 WETH, no USDC: sell some WETH
    assert plan.swap is not None and plan.swap.zero_for_one
    assert execute(pool, plan, 10**18, 0) == (plan.dust0, plan.dust1)
    assert 0 <= plan.dust0 <= plan.dust_bound0 and 0 <= plan.dust1 <= plan.dust_bound1
    assert plan.dust0 < 10**4  # wei of WETH
    assert plan.dust1 <= 3  # USDC units


def test_swap_fee_and_impact_come_from_the_pool_not_the_spot_price() -> None:
    thin = seeded_pool(ETH_TICK, base_liquidity=10**15, bands=((600, 10**16),))
    deep = seeded_pool(ETH_TICK)
    rng = Range(snap(ETH_TICK - 2000, 10), snap(ETH_TICK + 2000, 10), 10)
    capital = 100 * 10**18
    on_thin, on_deep = plan_open(thin, rng, capital, 0), plan_open(deep, rng, capital, 0)
    assert on_thin.swap is not None and on_deep.swap is not None
    # the thin pool's impact moves its price more and leaves less liquidity for the same capital
    assert on_thin.swap.tick_after < on_deep.swap.tick_after
    assert on_thin.liquidity < on_deep.liquidity
    assert execute(thin, on_thin, capital, 0) == (on_thin.dust0, on_thin.dust1)


def test_no_swap_when_the_capital_has_the_ratio() -> None:
    pool = seeded_pool(ETH_TICK)
    rng = Range(snap(ETH_TICK - 500, 10), snap(ETH_TICK + 500, 10), 10)
    fork = pool.copy()
    amount0, amount1 = fork.mint("probe", rng.tick_lower, rng.tick_upper, 10**15)
    plan = plan_open(pool, rng, amount0, amount1)
    # the capital already has the ratio at the pool's price: nothing, or a few wei, to swap
    assert plan.swap is None or plan.swap.amount_in < 10**3
    assert plan.liquidity >= 10**15 - 1


@pytest.mark.parametrize(
    ("lower", "upper", "token_needed"),
    [(100, 1000, 0), (-1000, -100, 1)],
)
def test_one_sided_ranges_swap_everything_into_the_needed_token(
    lower: int, upper: int, token_needed: int
) -> None:
    pool = seeded_pool(ETH_TICK)
    rng = Range(snap(ETH_TICK + lower, 10), snap(ETH_TICK + upper, 10), 10)
    plan = plan_open(pool, rng, 10**17, 300 * 10**6)
    assert plan.swap is not None
    assert plan.swap.zero_for_one == (token_needed == 1)
    assert plan.amount0 == 0 or plan.amount1 == 0
    assert plan.dust0 <= plan.dust_bound0 and plan.dust1 <= plan.dust_bound1
    assert execute(pool, plan, 10**17, 300 * 10**6) == (plan.dust0, plan.dust1)


def test_accepts_a_snapshot_and_matches_the_pool() -> None:
    pool = seeded_pool(ETH_TICK)
    rng = Range(snap(ETH_TICK - 1000, 10), snap(ETH_TICK + 1000, 10), 10)
    assert plan_open(snapshot(pool), rng, 10**18, 10**9) == plan_open(pool, rng, 10**18, 10**9)


def test_refuses_bad_inputs() -> None:
    pool = seeded_pool(ETH_TICK)
    rng = Range(snap(ETH_TICK - 1000, 10), snap(ETH_TICK + 1000, 10), 10)
    with pytest.raises(ValueError, match="no capital"):
        plan_open(pool, rng, 0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        plan_open(pool, rng, -1, 5)
    with pytest.raises(ValueError, match="spacing"):
        plan_open(pool, Range(-600, 600, 60), 10**18, 0)
    with pytest.raises(ValueError, match="cannot pay for any liquidity"):
        plan_open(pool, Range(-887270, 887270, 10), 1, 0)


FEES = st.sampled_from([(100, 1), (500, 10), (3000, 60), (10000, 200)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fee_spacing=FEES,
    tick=st.integers(-250_000, 250_000),
    base=st.integers(10**12, 10**24),
    band_liquidity=st.integers(0, 10**24),
    band_width=st.integers(1, 3000),
    offsets=st.tuples(st.integers(-4000, 4000), st.integers(1, 8000)),
    amount0=st.integers(0, 10**27),
    amount1=st.integers(0, 10**27),
)
def test_dust_within_bound_on_random_pools(
    fee_spacing: tuple[int, int],
    tick: int,
    base: int,
    band_liquidity: int,
    band_width: int,
    offsets: tuple[int, int],
    amount0: int,
    amount1: int,
) -> None:
    fee, spacing = fee_spacing
    bands = ((band_width * spacing, band_liquidity),) if band_liquidity else ()
    pool = seeded_pool(tick, fee=fee, spacing=spacing, base_liquidity=base, bands=bands)
    lower = snap(tick + offsets[0] * spacing // 10, spacing)
    rng = Range(
        lower, lower + max(offsets[1] * spacing // 10, 1) // spacing * spacing + spacing, spacing
    )
    try:
        plan = plan_open(pool, rng, amount0, amount1)
    except ValueError as exc:
        reasons = ("no capital", "cannot pay", "per-tick maximum", "too thin", "cannot absorb")
        assert any(m in str(exc) for m in reasons)
        return
    assert 0 <= plan.dust0 <= plan.dust_bound0
    assert 0 <= plan.dust1 <= plan.dust_bound1
    assert execute(pool, plan, amount0, amount1) == (plan.dust0, plan.dust1)
    assert plan.quotes <= 2 * 100 + 2


# (tick, decimals0, decimals1, usd0, usd1): WETH/USDC at ~3000 and WBTC/WETH at ~20 ETH per BTC
DEEP_POOLS = {
    "WETH/USDC": (-196_250, 18, 6, 3_000.0, 1.0),
    "WBTC/WETH": (260_220, 8, 18, 60_000.0, 3_000.0),
}


@pytest.mark.parametrize("pair", sorted(DEEP_POOLS))
@settings(max_examples=25, deadline=None)
@given(
    usd0=st.floats(0, 6_000_000),
    usd1=st.floats(0, 6_000_000),
    offsets=st.tuples(st.integers(-3_000, 300), st.integers(200, 6_000)),
)
def test_dust_is_worth_a_fraction_of_a_cent_on_deep_pools(
    pair: str, usd0: float, usd1: float, offsets: tuple[int, int]
) -> None:
    tick, d0, d1, price0, price1 = DEEP_POOLS[pair]
    liquidity = 10**19 if pair == "WETH/USDC" else 10**17
    pool = seeded_pool(tick, base_liquidity=liquidity // 10, bands=((3_000, liquidity),))
    lower = snap(tick + offsets[0], 10)
    rng = Range(lower, lower + snap(offsets[1], 10), 10)
    # at least a dollar: less than that may not pay for one unit of liquidity (plan_open refuses)
    assume(usd0 + usd1 >= 1.0)
    amount0, amount1 = int(usd0 / price0 * 10**d0), int(usd1 / price1 * 10**d1)
    plan = plan_open(pool, rng, amount0, amount1)
    dust_usd = plan.dust0 / 10**d0 * price0 + plan.dust1 / 10**d1 * price1
    assert dust_usd < 0.01
    assert plan.dust0 <= plan.dust_bound0 and plan.dust1 <= plan.dust_bound1
