"""Speed of the exact core: tick math, amount deltas, swaps crossing initialized ticks.

Targets (2-core machine): <= 3 us per get_sqrt_ratio_at_tick, <= 10 us per initialized tick
crossed. Run with ``make bench``.
"""

from __future__ import annotations

import pytest

from lpbot.uniswap import Pool
from lpbot.uniswap.sqrt_price_math import get_amount0_delta, get_amount1_delta
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio

TICKS = [-887272, -200000, -50001, -1, 0, 1, 777, 50001, 199999, 887272]


def test_get_sqrt_ratio_at_tick(benchmark: pytest.FixtureRequest) -> None:
    def run() -> None:
        for t in TICKS:
            get_sqrt_ratio_at_tick(t)

    benchmark.extra_info["calls_per_round"] = len(TICKS)
    benchmark(run)


def test_get_tick_at_sqrt_ratio(benchmark: pytest.FixtureRequest) -> None:
    prices = [get_sqrt_ratio_at_tick(t) + 12345 for t in TICKS[:-1]]

    def run() -> None:
        for p in prices:
            get_tick_at_sqrt_ratio(p)

    benchmark.extra_info["calls_per_round"] = len(prices)
    benchmark(run)


def test_amount_deltas(benchmark: pytest.FixtureRequest) -> None:
    a, b = get_sqrt_ratio_at_tick(-1000), get_sqrt_ratio_at_tick(2000)
    liquidity = 10**24

    def run() -> None:
        get_amount0_delta(a, b, liquidity, True)
        get_amount0_delta(a, b, liquidity, False)
        get_amount1_delta(a, b, liquidity, True)
        get_amount1_delta(a, b, liquidity, False)

    benchmark.extra_info["calls_per_round"] = 4
    benchmark(run)


def _pool_with_ticks(n: int) -> Pool:
    """A 0.3% pool whose price sits above ``n`` initialized ticks spaced 60 apart."""
    pool = Pool(3000, 60, get_sqrt_ratio_at_tick(n * 60 + 30))
    pool.mint("base", -887220, 887220, 10**20)
    for i in range(n):
        pool.mint(f"lp{i}", i * 60, 887220, 10**18)  # one new initialized tick at i * 60
    return pool


@pytest.mark.parametrize("crossings", [1, 10, 100])
def test_swap_crossing_initialized_ticks(benchmark: pytest.FixtureRequest, crossings: int) -> None:
    base = _pool_with_ticks(crossings)
    limit = get_sqrt_ratio_at_tick(-30)  # below tick 0: every tick is crossed

    def setup() -> tuple[tuple[Pool], dict[str, object]]:
        return (base.copy(),), {}

    def run(pool: Pool) -> None:
        result = pool.swap(True, 10**30, limit)
        assert result.ticks_crossed == crossings

    benchmark.extra_info["ticks_crossed"] = crossings
    benchmark.pedantic(run, setup=setup, rounds=200 if crossings < 100 else 60, iterations=1)
