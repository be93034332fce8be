"""A provider whose refusals misstate its own limit, or a malformed RPC URL, does not make the
fetch crawl."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_utils.address import to_checksum_address

from lpbot.backtest.events import PoolMeta
from lpbot.backtest.fetch import RawLog, _LogFetcher, _Retry, fetch_pool_events
from lpbot.backtest.store import EventStore
from lpbot.chain.rpc import RpcTransportError
from lpbot.cli import main
from lpbot.errors import Refused, RetryLater


class UnderstatedCapSource:
    """Refuses ranges over ``cap`` blocks while its message claims ``stated`` (QuickNode's)."""

    def __init__(self, cap: int, stated: int) -> None:
        self.cap, self.stated = cap, stated
        self.requests = 0

    def get_logs_and_end_hash(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> tuple[list[RawLog], str]:
        self.requests += 1
        if to_block - from_block + 1 > self.cap:
            raise ValueError(
                {"code": -32614, "message": f"eth_getLogs is limited to a {self.stated:,} range"}
            )
        return [], "0x" + "00" * 32


def test_a_stated_limit_the_provider_does_not_honour_is_searched_not_stepped_down_by_one() -> None:
    src = UnderstatedCapSource(cap=5_000, stated=10_000)
    fetcher = _LogFetcher(src, _Retry(3, 0.0, lambda _s: None), max_range=10_000)  # type: ignore[arg-type]
    fetcher.fetch("0x" + "11" * 20, [], 0, 999_999, lambda *_a: None)
    assert fetcher.ceiling == 5_000
    assert fetcher.halvings <= 20  # was 5,000 refusals: the cap lowered one block at a time
    assert src.requests <= 1_000_000 // 5_000 + 20


def test_a_stated_limit_counted_one_high_costs_one_refusal() -> None:
    src = UnderstatedCapSource(cap=9_999, stated=10_000)
    fetcher = _LogFetcher(src, _Retry(3, 0.0, lambda _s: None), max_range=10_000)  # type: ignore[arg-type]
    fetcher.fetch("0x" + "11" * 20, [], 0, 999_999, lambda *_a: None)
    assert (fetcher.ceiling, fetcher.halvings) == (9_999, 1)


@pytest.mark.parametrize(
    "url", ["eth-mainnet.g.alchemy.com/v2/abcSECRETxyz", "ftp://host/v2/abcSECRETxyz", "https:///x"]
)
def test_an_rpc_url_without_scheme_or_host_is_one_line_at_once_without_the_key(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.sqlite"
    argv = ["data", "fetch", "--rpc", url, "--pool", "0x" + "11" * 20, "--from-block", "1"]
    started = time.monotonic()
    assert main([*argv, "--to-block", "10", "--out", str(out)]) == 2
    assert time.monotonic() - started < 5  # was 6 retries over 30 s of backoff
    err = capsys.readouterr().err
    assert "http:// or https://" in err and "SECRET" not in err
    assert not out.exists()


class SlowRangeSource(UnderstatedCapSource):
    """Times out (the client's read timeout, or a gateway's 504) on ranges over ``cap`` blocks."""

    def __init__(self, cap: int, error: Exception) -> None:
        super().__init__(cap, cap)
        self.error = error

    def get_logs_and_end_hash(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> tuple[list[RawLog], str]:
        self.requests += 1
        if to_block - from_block + 1 > self.cap:
            raise self.error
        return [], "0x" + "00" * 32


@pytest.mark.parametrize(
    "error",
    [
        requests.ReadTimeout("HTTPSConnectionPool(host='x', port=443): Read timed out."),
        RpcTransportError("eth_getLogs to https://x: HTTP 504 Gateway Timeout", status=504),
    ],
)
def test_a_log_range_that_times_out_is_split_not_retried_until_the_fetch_gives_up(
    error: Exception,
) -> None:
    src = SlowRangeSource(cap=1_500, error=error)
    waits: list[float] = []
    fetcher = _LogFetcher(src, _Retry(6, 0.5, waits.append), max_range=10_000)  # type: ignore[arg-type]
    fetcher.fetch("0x" + "11" * 20, [], 0, 99_999, lambda *_a: None)  # was RetryLater
    assert fetcher.blocks_done == 100_000
    assert sum(waits) == 0.0


class HeadOnly:
    """Answers the chain id and the head; the fetch must stop before asking anything else."""

    def __init__(self, chain_id: int) -> None:
        self.id = chain_id

    def chain_id(self) -> int:
        return self.id

    def block_number(self) -> int:
        return 1_000


@pytest.mark.parametrize(("pool", "chain_id"), [("0x" + "22" * 20, 1), ("0x" + "11" * 20, 42161)])
def test_a_dataset_of_another_pool_or_chain_is_refused_and_left_as_it_was(
    tmp_path: Path, pool: str, chain_id: int
) -> None:
    path = tmp_path / "d.sqlite"
    a = "0x" + "11" * 20
    with EventStore(path) as store:
        store.set_meta(PoolMeta(1, to_checksum_address(a), a, a, 6, 18, 500, 10, 5))
        store.add_range("events", 5, 900, end_hash="0x" + "33" * 32)
    with pytest.raises(Refused, match="give another --out"):
        fetch_pool_events(HeadOnly(chain_id), pool, 5, 900, path)  # type: ignore[arg-type]
    with EventStore(path) as store:  # was: pool A's ranges taken as pool B's, nothing fetched
        assert store.meta().address == to_checksum_address(a)  # type: ignore[union-attr]


def test_a_node_error_that_quotes_the_request_path_never_shows_the_key() -> None:
    from lpbot.chain.rpc import classify_rpc_error, connect

    connect("http://127.0.0.1:9/v2/MYKEYabcdef123")  # the URL the fetch was given
    error = {"code": -32000, "message": "upstream failed for POST /v2/MYKEYabcdef123"}
    failure = classify_rpc_error(ValueError(error))
    assert "MYKEY" not in failure.message  # was quoted as it came
    assert failure.message.startswith("upstream failed for POST")


class DeadNode(HeadOnly):
    def chain_id(self) -> int:
        raise requests.ConnectionError("connection refused")


def test_a_fetch_that_fails_before_reading_anything_leaves_no_empty_dataset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.sqlite"
    with pytest.raises(RetryLater):
        fetch_pool_events(DeadNode(1), "0x" + "11" * 20, 1, 10, path, retries=0)  # type: ignore[arg-type]
    assert not path.exists()  # was an empty 40 kB file that `backtest run` then refused
