"""The fetch adapts to a node's limits, retries transient failures and resumes where it stopped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from lpbot.backtest.fetch import ChainSource, RawLog, Web3Source, classify, fetch_pool_events
from lpbot.backtest.store import EventStore, merge_ranges, missing_ranges
from lpbot.devnet.market import run_market
from lpbot.errors import RetryLater
from tests.conftest import Devnet


class FlakySource:
    """A ``ChainSource`` that answers like a strict public node: at most ``max_logs`` logs per
    ``eth_getLogs`` (error -32005 otherwise), a dropped connection on every ``fail_every``-th
    request, and (``stop_after``) a crash after that many successful log requests."""

    def __init__(
        self, inner: ChainSource, max_logs: int, fail_every: int = 0, stop_after: int = 0
    ) -> None:
        self.inner = inner
        self.max_logs = max_logs
        self.fail_every = fail_every
        self.stop_after = stop_after
        self.calls = 0
        self.served = 0

    def _maybe_drop(self) -> None:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise requests.ConnectionError("connection reset by peer")

    def chain_id(self) -> int:
        return self.inner.chain_id()

    def block_number(self) -> int:
        return self.inner.block_number()

    def get_logs(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> list[RawLog]:
        self._maybe_drop()
        logs = self.inner.get_logs(address, topics, from_block, to_block)
        if len(logs) > self.max_logs:
            raise ValueError(
                {"code": -32005, "message": f"query returned more than {self.max_logs} results"}
            )
        if self.stop_after and self.served >= self.stop_after:
            raise RuntimeError("the process was killed")
        self.served += 1
        return logs

    def get_logs_and_end_hash(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> tuple[list[RawLog], str]:
        logs = self.get_logs(address, topics, from_block, to_block)
        return logs, self.inner.block_headers([to_block])[to_block][0]

    def block_headers(self, blocks: Sequence[int]) -> dict[int, tuple[str, int]]:
        self._maybe_drop()
        return self.inner.block_headers(blocks)

    def call(self, to: str, data: bytes, block: int) -> bytes:
        self._maybe_drop()
        return self.inner.call(to, data, block)

    def get_code(self, address: str, block: int) -> bytes:
        return self.inner.get_code(address, block)

    def block_timestamp(self, block: int) -> int:
        self._maybe_drop()
        return self.inner.block_timestamp(block)


def test_errors_are_classified_by_what_to_do_next() -> None:
    assert classify(ValueError({"code": -32005, "message": "query returned more than 10000"}))
    assert classify(ValueError("Log response size exceeded")) == "too_many"
    assert classify(ValueError("eth_getLogs is limited to a 10,000 range")) == "too_many"
    assert classify(ValueError({"code": -32005, "message": "rate limit exceeded"})) == "transient"
    assert classify(requests.Timeout()) == "transient"
    resp = requests.Response()
    resp.status_code = 429
    assert classify(requests.HTTPError(response=resp)) == "transient"
    resp.status_code = 401
    assert classify(requests.HTTPError(response=resp)) == "fatal"
    assert classify(ValueError("execution reverted")) == "fatal"


def test_ranges_merge_and_gaps() -> None:
    assert merge_ranges([(5, 9), (1, 3), (4, 4), (20, 30)]) == [(1, 9), (20, 30)]
    assert missing_ranges(0, 40, [(5, 9), (20, 30)]) == [(0, 4), (10, 19), (31, 40)]
    assert missing_ranges(5, 9, [(0, 100)]) == []


def _events(path: Path) -> list[tuple[int, int, str]]:
    with EventStore(path) as store:
        return [(e.block_number, e.log_index, repr(e.args)) for e in store.events()]


@pytest.mark.devnet
def test_fetch_halves_retries_and_resumes(chain: Devnet, tmp_path: Path) -> None:
    m = chain.manifest
    info = m.pool("USDC/WBTC-3000")
    run_market(chain.w3, m, info, steps=4, vol=0.8, seed=9)
    to_block = chain.w3.eth.block_number
    kwargs: dict[str, Any] = {"multicall": m.contracts["Multicall3"], "max_range": 64}
    reference = tmp_path / "reference.sqlite"
    created = fetch_pool_events(chain.w3, info.address, 0, to_block, reference, **kwargs)

    sleeps: list[float] = []
    flaky = FlakySource(Web3Source(chain.w3), max_logs=4, fail_every=5)
    path = tmp_path / "flaky.sqlite"
    report = fetch_pool_events(
        flaky, info.address, 0, to_block, path, sleep=sleeps.append, **kwargs
    )
    assert report.halvings > 0 and report.retries > 0
    assert sleeps and all(s > 0 for s in sleeps)
    assert _events(path) == _events(reference)

    # killed part-way, then run again: the recorded ranges are not fetched twice
    resumed = tmp_path / "resumed.sqlite"
    crashing = FlakySource(Web3Source(chain.w3), max_logs=4, stop_after=3)
    with pytest.raises(RuntimeError):
        fetch_pool_events(
            crashing, info.address, 0, to_block, resumed,
            creation_block=created.creation_block, **kwargs,
        )  # fmt: skip
    with EventStore(resumed) as store:
        done = store.fetched_ranges("events")
    assert done  # three ranges were recorded before the crash
    counting = FlakySource(Web3Source(chain.w3), max_logs=4)
    fetch_pool_events(counting, info.address, 0, to_block, resumed, **kwargs)
    assert _events(resumed) == _events(reference)
    assert counting.served < flaky.served

    # a node that keeps failing: stop with RetryLater after the retries
    always = FlakySource(Web3Source(chain.w3), max_logs=1000, fail_every=1)
    with pytest.raises(RetryLater):
        fetch_pool_events(
            always, info.address, 0, to_block, tmp_path / "x.sqlite", retries=2,
            sleep=lambda _s: None, **kwargs,
        )  # fmt: skip
