"""``eth_getLogs`` through a stand-in of each major provider: its refusals are read for what
they are, the range learns the provider's cap and stays under it, rate limits are waited out
for as long as the provider asks, and an exhausted quota stops the fetch at once."""

from __future__ import annotations

from typing import Any

import pytest

from lpbot.backtest.fetch import RawLog, Web3Source, _LogFetcher, _Retry
from lpbot.chain.rpc import Fault, classify_rpc_error, connect
from lpbot.errors import NeedsAttention
from tests.chain.providers import (
    ADDRESS,
    PROVIDERS,
    QUOTAS,
    RATE_LIMITS,
    TOPIC,
    Provider,
    block_hash,
    chain_standin,
    log_blocks,
)
from tests.chain.rpc_standin import RpcError, serve

SPAN = (1, 60_000)


class Recorder:
    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        self.blocks: list[int] = []
        self.hashes: list[str] = []

    def __call__(self, a: int, b: int, logs: list[RawLog], end_hash: str) -> None:
        self.ranges.append((a, b))
        self.blocks += [entry.block_number for entry in logs]
        self.hashes.append(end_hash)


def _fetch(url: str, max_range: int, sleeps: list[float]) -> tuple[_LogFetcher, Recorder]:
    src = Web3Source(connect(url))
    fetcher = _LogFetcher(src, _Retry(4, 0.5, sleeps.append), max_range)
    out = Recorder()
    fetcher.fetch(ADDRESS, [TOPIC], *SPAN, out)
    return fetcher, out


def _requested(standin: Any) -> list[int]:
    return [int(p[0]["toBlock"], 16) - int(p[0]["fromBlock"], 16) + 1
            for p in standin.params_of("eth_getLogs")]  # fmt: skip


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_each_providers_refusal_is_read_and_its_cap_learned(provider: Provider) -> None:
    first: list[RpcError] = []

    def refuse(lo: int, hi: int, n: int) -> RpcError | None:
        error = provider.refuse(lo, hi, n)
        if error is not None and not first:
            first.append(error)
        return error

    sleeps: list[float] = []
    with serve(chain_standin(refuse)) as standin:
        fetcher, out = _fetch(standin.url, 100_000, sleeps)
        sizes = _requested(standin)

    # every block once, in order, every log
    assert out.ranges[0][0] == SPAN[0] and out.ranges[-1][1] == SPAN[1]
    assert all(b[0] == a[1] + 1 for a, b in zip(out.ranges, out.ranges[1:], strict=False))
    assert out.blocks == log_blocks(*SPAN)
    assert not sleeps  # a refused range is asked for smaller at once, never waited on

    # the first refusal, as the classifier reads it through web3
    assert first
    refusals = len(sizes) - len(out.ranges)
    assert refusals == fetcher.halvings > 0
    if provider.fault is Fault.RANGE_TOO_LARGE:
        if provider.limit is not None:  # the stated limit is taken at once and kept
            assert refusals == 1
            assert fetcher.ceiling == provider.limit
            assert max(sizes[1:]) <= provider.limit
        else:  # a hidden cap is found by bisection in a few refusals, then kept
            assert refusals <= 14
            assert provider.refuse(1, fetcher.ceiling, 0) is None
            late = sizes[-len(sizes) // 3 :]
            assert all(provider.refuse(1, s, 0) is None for s in late)
    else:  # too many results: smaller ranges where the logs are dense, the cap untouched
        assert fetcher.ceiling == 100_000
        assert refusals <= 16


@pytest.mark.parametrize(("name", "error", "wait"), RATE_LIMITS, ids=[r[0] for r in RATE_LIMITS])
def test_rate_limits_wait_as_long_as_the_provider_asks_and_keep_the_range(
    name: str, error: RpcError, wait: float
) -> None:
    calls = iter(range(10**6))

    def refuse(_lo: int, _hi: int, _n: int) -> RpcError | None:
        return error if next(calls) % 3 == 1 else None

    sleeps: list[float] = []
    with serve(chain_standin(refuse)) as standin:
        fetcher, out = _fetch(standin.url, 10_000, sleeps)
        sizes = _requested(standin)
    assert out.blocks == log_blocks(*SPAN)
    assert fetcher.halvings == 0 and set(sizes) == {10_000}  # never taken for a range problem
    assert sleeps and all(s == wait for s in sleeps)  # Retry-After / backoff_seconds honoured
    assert fetcher.retry.rate_limited == (len(sleeps) if name not in ("gateway", "geth") else 0)


@pytest.mark.parametrize(("name", "error"), QUOTAS, ids=[q[0] for q in QUOTAS])
def test_an_exhausted_quota_stops_at_once(name: str, error: RpcError) -> None:
    sleeps: list[float] = []
    with serve(chain_standin(lambda _lo, _hi, _n: error)) as standin:
        with pytest.raises(NeedsAttention, match="quota"):
            _fetch(standin.url, 10_000, sleeps)
        assert len(standin.params_of("eth_getLogs")) == 1
    assert not sleeps


def test_minus_32005_is_read_by_its_message() -> None:
    too_many = ValueError({"code": -32005, "message": "query returned more than 10000 results"})
    rate = ValueError({"code": -32005, "message": "project ID request rate exceeded"})
    daily = ValueError({"code": -32005, "message": "daily request count exceeded, request rate"})
    assert classify_rpc_error(too_many).fault is Fault.TOO_MANY_RESULTS
    assert classify_rpc_error(rate).fault is Fault.RATE_LIMITED
    assert classify_rpc_error(daily).fault is Fault.QUOTA_EXHAUSTED
    assert classify_rpc_error(
        ValueError({"code": -32000, "message": "execution reverted"})
    ).fault is (Fault.BAD_REQUEST)


def test_a_node_without_batches_is_asked_one_call_at_a_time() -> None:
    standin = chain_standin(lambda _lo, _hi, _n: None)
    standin.batches = False
    sleeps: list[float] = []
    with serve(standin):
        fetcher, out = _fetch(standin.url, 10_000, sleeps)
        headers = fetcher.src.block_headers(out.blocks[:5])
    assert out.blocks == log_blocks(*SPAN) and not sleeps
    assert [h for h, _ts in headers.values()] == [block_hash(b) for b in out.blocks[:5]]
    assert out.hashes[-1] == block_hash(SPAN[1])
