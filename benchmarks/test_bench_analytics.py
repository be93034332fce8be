"""Speed of the analytics and of one full decision.

Targets (2-core machine): value and IL at >= 50 M prices per second (1e6 prices per call);
one decision from a state snapshot (strategy, triggers, a plan solved with quote_swap, costs)
in < 50 ms. Run with ``make bench``; ``extra_info`` holds the prices per second.
"""

from __future__ import annotations

import numpy as np
from pytest_benchmark.fixture import BenchmarkFixture

from lpbot.analytics.fees import fee_rate
from lpbot.analytics.il import impermanent_loss
from lpbot.analytics.types import PoolSnapshot, PositionSnapshot, PriceHistory
from lpbot.analytics.value import PositionCurve
from lpbot.strategy import MarketInputs, Rebalance, RebalancePolicy, VolatilityBand
from lpbot.uniswap import MAX_SQRT_RATIO, MIN_SQRT_RATIO, Pool
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

N_PRICES = 1_000_000
CURVE = PositionCurve(liquidity=1_000.0, price_lower=2_500.0, price_upper=3_600.0)
PRICES = np.random.default_rng(7).lognormal(np.log(3_000.0), 0.3, N_PRICES)


def _record_rate(benchmark: BenchmarkFixture) -> None:
    assert benchmark.stats is not None
    stats = benchmark.stats.stats
    benchmark.extra_info["mprices_per_s_median"] = round(N_PRICES / stats.median / 1e6, 1)
    benchmark.extra_info["mprices_per_s_best"] = round(N_PRICES / stats.min / 1e6, 1)


def test_value_over_1e6_prices(benchmark: BenchmarkFixture) -> None:
    out = np.empty_like(PRICES)
    benchmark(CURVE.values, PRICES, out)
    _record_rate(benchmark)


def test_impermanent_loss_over_1e6_prices(benchmark: BenchmarkFixture) -> None:
    benchmark(impermanent_loss, CURVE, 3_000.0, PRICES)
    _record_rate(benchmark)


def _state() -> tuple[PoolSnapshot, PositionSnapshot, PriceHistory, MarketInputs]:
    """A WETH/USDC 0.05% pool with market makers' bands, an hour of trading, an LP out of range."""
    tick = -196_250
    pool = Pool(500, 10, get_sqrt_ratio_at_tick(tick))
    pool.mint("base", -887_270, 887_270, 10**18)
    for i, half in enumerate((200, 500, 1_000, 2_000, 5_000, 20_000)):
        pool.mint(f"mm{i}", (tick - half) // 10 * 10, (tick + half) // 10 * 10, 10**19)
    lower, upper = (tick - 600) // 10 * 10, (tick + 600) // 10 * 10
    pool.mint("lp", lower, upper, 5 * 10**15)
    before = PoolSnapshot.from_pool(pool, decimals0=18, decimals1=6)
    for _ in range(20):
        pool.block_timestamp += 180
        pool.swap(True, 15 * 10**18, MIN_SQRT_RATIO + 1)
        pool.swap(False, 45_000 * 10**6, MAX_SQRT_RATIO - 1)
    pool.swap(False, 10**40, get_sqrt_ratio_at_tick(tick + 900))  # leaves the LP's range
    after = PoolSnapshot.from_pool(pool, decimals0=18, decimals1=6)
    position = PositionSnapshot.from_pool(pool, "lp", lower, upper)
    rng = np.random.default_rng(3)
    steps = rng.normal(0.0, 0.5 * np.sqrt(60 / (365 * 86_400)), 10_079)
    times = after.timestamp - 60.0 * np.arange(10_080)[::-1]
    history = PriceHistory(times, 3_000.0 * np.exp(np.concatenate(([0.0], np.cumsum(steps)))))
    market = MarketInputs(
        token0_usd=3_270.0,
        token1_usd=1.0,
        rebalance_gas_usd=2.0,
        compound_gas_usd=1.0,
        fee_rate=fee_rate(before, after),
    )
    return after, position, history, market


def test_full_decision_from_a_snapshot(benchmark: BenchmarkFixture) -> None:
    pool, position, history, market = _state()
    policy = RebalancePolicy(strategy=VolatilityBand(), vol_ratio_trigger=2.0)
    decision = benchmark(policy.decide, pool, position, history, market)
    assert isinstance(decision, Rebalance)
    benchmark.extra_info["quotes"] = decision.plan.quotes
    benchmark.extra_info["ticks_in_snapshot"] = len(pool.ticks)
