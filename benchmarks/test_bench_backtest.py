"""Speed of the backtester's two engines.

- Exact event replay: events per second applied to an ``lpbot.uniswap.Pool`` (a synthetic
  history of 20,000 events, 90% swaps of every kind the logs can hide: exact input, exact output,
  stopped by a limit), without a bot and with a bot deciding hourly. The TypeScript anchor
  replays about 7,800 events per second.
- Vectorised engine: a pool-year of minute bars (525,600) with a fixed-width strategy under the
  default rebalance policy and hourly decisions (the normal case; target <= 2 s of engine CPU
  time), and the worst case: a year mostly out of range, the price having left a +-2% range
  of a position whose rebalance never pays for its gas, hourly decisions (target <= 5 s; a
  decision is priced again only when something it depends on changes, ``backtest.gate``).

Run with ``make bench``; ``extra_info`` holds the rates and counts.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np
from pytest_benchmark.fixture import BenchmarkFixture

from lpbot.backtest.bars import Bars
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.events import EventKind, PoolEvent, PoolMeta, StartState
from lpbot.backtest.exact import run_exact
from lpbot.backtest.ledger import BacktestResult
from lpbot.backtest.replay import EventReplayer, replay_events
from lpbot.backtest.vector import run_bars
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick

N_EVENTS = 20_000
N_BARS = 525_600


def _history() -> Dataset:
    """WETH/USDC 0.05%-like: market makers' bands, then swaps (12 s blocks) and LP churn."""
    rng = random.Random(11)
    tick0 = 200_000
    pool = Pool(500, 10, get_sqrt_ratio_at_tick(tick0), block_timestamp=1_700_000_000)
    pool.increase_observation_cardinality_next(100)
    for i, half in enumerate((100, 300, 1_000, 3_000, 10_000, 40_000)):
        pool.mint(f"mm{i}", (tick0 - half) // 10 * 10, (tick0 + half) // 10 * 10, 10**19)
    start = StartState(
        block=0, timestamp=pool.block_timestamp, fee=500, tick_spacing=10, slot0=pool.slot0,
        liquidity=pool.liquidity, observations=dict(pool.observations), ticks=dict(pool.ticks),
        positions=dict(pool.positions),
    )  # fmt: skip
    start = StartState.from_json(start.to_json())  # a deep copy
    events: list[PoolEvent] = []
    timestamps: dict[int, int] = {}
    for n in range(N_EVENTS):
        block = n + 1
        pool.block_timestamp += 12
        timestamps[block] = pool.block_timestamp
        zero_for_one = rng.random() < 0.5
        if rng.random() < 0.9:
            kind = rng.random()
            if kind < 0.6:
                amount = (
                    rng.randint(10**6, 5 * 10**10) if zero_for_one else rng.randint(10**15, 10**19)
                )
                limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
            else:
                amount = (
                    -rng.randint(10**14, 10**18) if zero_for_one else -rng.randint(10**5, 10**10)
                )
                if kind > 0.8:
                    amount = -amount * 10
                p = pool.sqrt_price_x96
                step = rng.randint(1, 20) * 1e-4
                limit = int(p * (1 - step)) if zero_for_one else int(p * (1 + step))
            r = pool.swap(zero_for_one, amount, limit)
            args: tuple[object, ...] = (r.amount0, r.amount1, r.sqrt_price_x96, r.liquidity, r.tick)
            events.append(PoolEvent(block, 0, EventKind.SWAP, args))
        else:
            lo = (pool.tick - rng.randint(1, 500) * 10) // 10 * 10
            hi = (pool.tick + rng.randint(1, 500) * 10) // 10 * 10
            a0, a1 = pool.mint("lp", lo, hi, 10**15)
            events.append(PoolEvent(block, 0, EventKind.MINT, ("lp", lo, hi, 10**15, a0, a1)))
    meta = PoolMeta(1, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, 6, 18, 500, 10, 0,
                    "USDC", "WETH")  # fmt: skip
    return Dataset(meta, start, tuple(events), timestamps, N_EVENTS)


DATASET = _history()


def test_exact_event_replay(benchmark: BenchmarkFixture) -> None:
    def setup() -> tuple[
        tuple[EventReplayer, tuple[PoolEvent, ...], dict[int, int]], dict[str, object]
    ]:
        replayer = EventReplayer(DATASET.start.to_pool(), 500, 10, strict=True)
        return (replayer, DATASET.events, DATASET.timestamps), {}

    stats = benchmark.pedantic(replay_events, setup=setup, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
    assert stats.mismatches == 0
    assert benchmark.stats is not None
    benchmark.extra_info["events"] = N_EVENTS
    benchmark.extra_info["events_per_s_median"] = round(N_EVENTS / benchmark.stats.stats.median)
    benchmark.extra_info["swaps_exact_input"] = stats.swaps_exact_input
    benchmark.extra_info["swaps_price_limit"] = stats.swaps_price_limit


def test_exact_engine_with_a_bot(benchmark: BenchmarkFixture) -> None:
    config = BacktestConfig(
        strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 1.0}),
        quote_token=0, chain="arbitrum",
    )  # fmt: skip
    result = benchmark.pedantic(run_exact, args=(DATASET, config), rounds=3, iterations=1)  # type: ignore[no-untyped-call]
    assert benchmark.stats is not None
    benchmark.extra_info["events_per_s_median"] = round(N_EVENTS / benchmark.stats.stats.median)
    benchmark.extra_info["decisions"] = result.metrics.decisions
    benchmark.extra_info["rebalances"] = result.metrics.rebalances


def _year_of_minute_bars() -> Bars:
    rng = np.random.default_rng(1)
    sigma = 0.7 * math.sqrt(60 / (365 * 86_400))
    close = 3000e-12 * np.exp(np.cumsum(rng.normal(-0.5 * sigma**2, sigma, N_BARS)))
    opened = np.concatenate(([close[0]], close[:-1]))
    wiggle = np.exp(np.abs(rng.normal(0.0, sigma / 2, N_BARS)))
    volume_usd = rng.lognormal(math.log(20_000), 1.0, N_BARS)
    v0, v1 = volume_usd / 2 / 3000 * 1e18, volume_usd / 2 * 1e6
    ts = 1_700_000_040 + 60 * np.arange(N_BARS, dtype=np.int64)
    return Bars(
        ts, 60, opened, np.maximum(opened, close) * wiggle, np.minimum(opened, close) / wiggle,
        close, np.full(N_BARS, 2e18), v0 * 5e-4, v1 * 5e-4, v0, v1, 500, 10, 18, 6, "WETH",
        "USDC", "synthetic",
    )  # fmt: skip


def _year_out_of_range() -> Bars:
    """The year's bars with the price lifted 30% over the first two days and kept there."""
    b = _year_of_minute_bars()
    lift = np.exp(np.minimum(np.arange(N_BARS), 2880) * (math.log(1.3) / 2880))
    return Bars(
        b.ts, 60, b.open * lift, b.high * lift, b.low * lift, b.close * lift, b.liquidity,
        b.fee0 / 20, b.fee1 / 20, b.volume0 / 20, b.volume1 / 20, 500, 10, 18, 6, "WETH", "USDC",
        "synthetic",
    )  # fmt: skip


NORMAL = BacktestConfig(strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 5.0}))
WORST = BacktestConfig(
    strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 2.0}),
    policy={"vol_ratio_trigger": None},
    capital_usd=1_000.0,
    gas_price_gwei=30.0,
)


def test_vectorised_engine_on_a_pool_year_of_minute_bars(benchmark: BenchmarkFixture) -> None:
    _bench_year(benchmark, _year_of_minute_bars(), NORMAL, target_s=2.0)


def test_vectorised_engine_on_a_pool_year_mostly_out_of_range(benchmark: BenchmarkFixture) -> None:
    result = _bench_year(benchmark, _year_out_of_range(), WORST, target_s=5.0)
    assert result.metrics.time_in_range < 0.05


def _bench_year(
    benchmark: BenchmarkFixture, bars: Bars, config: BacktestConfig, target_s: float
) -> BacktestResult:
    cpu: list[float] = []

    def timed() -> BacktestResult:
        c = time.process_time()
        result = run_bars(bars, config)
        cpu.append(time.process_time() - c)
        return result

    result = benchmark.pedantic(timed, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
    assert benchmark.stats is not None
    benchmark.extra_info["cpu_seconds_min"] = round(min(cpu), 2)  # wall time counts other load
    benchmark.extra_info["bars"] = N_BARS
    benchmark.extra_info["decide_calls"] = result.metrics.decisions
    benchmark.extra_info["rebalances"] = result.metrics.rebalances
    benchmark.extra_info["compounds"] = result.metrics.compounds
    benchmark.extra_info["time_in_range"] = round(result.metrics.time_in_range, 4)
    benchmark.extra_info["decisions_skipped"] = result.notes["decisions_skipped_unchanged"]
    assert min(cpu) <= target_s, f"engine CPU time {min(cpu):.2f} s over the {target_s} s target"
    return result
