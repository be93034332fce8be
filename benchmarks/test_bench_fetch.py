"""Requests and wall time of ``lpbot data fetch`` per pool-day at Arbitrum's block density.

An Arbitrum pool-day is 345,600 blocks (0.25 s blocks) with sparse events: here one event block
in every 230 (1,502 blocks, a mid-sized pool), served over HTTP by the JSON-RPC stand-in of
``tests/chain/providers.py`` with QuickNode's 10,000-block range limit (HTTP 413 beyond it).
Measured: ``eth_getLogs`` requests (each with its end block's header, in one batch), header
round trips for the event blocks' timestamps, all HTTP round trips, and seconds; against one
``eth_getBlockByNumber`` per event block, as the fetch did before.

Run with ``make bench``; ``extra_info`` holds the counts.
"""

from __future__ import annotations

import time
from typing import Any

from pytest_benchmark.fixture import BenchmarkFixture

from lpbot.backtest.fetch import RawLog, Web3Source, _LogFetcher, _Retry
from lpbot.chain.rpc import connect, round_trips
from tests.chain.providers import ADDRESS, PROVIDERS, TOPIC, chain_standin
from tests.chain.rpc_standin import serve

DAY = 345_600
EVERY = 230
QUICKNODE = next(p for p in PROVIDERS if p.name == "quicknode")


def _pool_day() -> dict[str, Any]:
    with serve(chain_standin(QUICKNODE.refuse, head=DAY, every=EVERY, dense=range(0))) as s:
        w3 = connect(s.url)
        src = Web3Source(w3)
        fetcher = _LogFetcher(src, _Retry(3, 0.5, time.sleep), 20_000)
        blocks: list[int] = []

        def on_range(_a: int, _b: int, logs: list[RawLog], _h: str) -> None:
            blocks.extend(e.block_number for e in logs)

        t0 = time.perf_counter()
        fetcher.plan(DAY)
        fetcher.fetch(ADDRESS, [TOPIC], 1, DAY, on_range)
        logs_done = round_trips(w3)
        src.block_headers(sorted(set(blocks)))
        seconds = time.perf_counter() - t0
        trips = round_trips(w3)

        t1 = time.perf_counter()  # before: one header request per event block
        for b in sorted(set(blocks)):
            src.w3.eth.get_block(b)
        seconds_before = time.perf_counter() - t1
    return {
        "event_blocks": len(set(blocks)),
        "log_requests": fetcher.requests,
        "refused": fetcher.halvings,
        "range_cap": fetcher.ceiling,
        "header_round_trips": trips - logs_done,
        "round_trips": trips,
        "seconds": round(seconds, 3),
        "timestamp_round_trips_before": len(set(blocks)),
        "timestamp_seconds_before": round(seconds_before, 3),
    }


def test_fetch_pool_day_at_arbitrum_density(benchmark: BenchmarkFixture) -> None:
    out = benchmark.pedantic(_pool_day, rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    print(out)
    assert out["range_cap"] == 10_000 and out["refused"] == 1
    assert out["header_round_trips"] == -(-out["event_blocks"] // 100)
