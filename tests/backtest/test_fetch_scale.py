"""Fetching at Arbitrum's scale: block timestamps in batches of headers, the creation block
without a scan from block 0 (also where past state is pruned), and progress with an ETA."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from lpbot.backtest.fetch import FetchProgress, RawLog, Web3Source, fetch_pool_events
from lpbot.backtest.store import EventStore
from lpbot.chain.rpc import connect
from lpbot.devnet.deploy import contract
from lpbot.devnet.market import run_market
from tests.backtest.chain_helpers import send
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def test_timestamps_come_in_batches_and_progress_reaches_the_end(
    chain: Devnet, tmp_path: Path
) -> None:
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    run_market(chain.w3, m, info, steps=6, vol=0.9, seed=61)
    head = chain.w3.eth.block_number
    w3 = connect(chain.url)
    seen: list[FetchProgress] = []
    path = tmp_path / "pool.sqlite"
    report = fetch_pool_events(
        w3, info.address, 0, head, path, multicall=m.contracts["Multicall3"], max_range=64,
        progress=seen.append,
    )  # fmt: skip
    with EventStore(path) as store:
        stamps = store.timestamps()
        event_blocks = store.event_blocks()
    assert len(event_blocks) > 30
    assert all(
        stamps[b] == chain.w3.eth.get_block(b)["timestamp"] for b in event_blocks
    )  # every event block's own timestamp
    # one round trip per 100 headers, where one per block was needed
    assert report.header_requests == math.ceil(len(event_blocks) / 100)
    assert report.round_trips < len(event_blocks)
    assert seen and seen[-1].blocks_done == seen[-1].blocks_total
    assert seen[-1].eta_seconds == 0.0


class Pruned(Web3Source):
    """A full (not archive) node: state older than ``keep`` blocks is gone, as geth answers."""

    def __init__(self, w3: Any, head: int, keep: int) -> None:
        super().__init__(w3)
        self.oldest = head - keep
        self.log_ranges: list[tuple[int, int]] = []
        self.code_reads = 0

    def _state(self, block: int) -> None:
        if block < self.oldest:
            raise ValueError(
                {"code": -32000, "message": f"missing trie node {block:064x} (path ) state "
                 f"0x{block:064x} is not available, not found"}
            )  # fmt: skip

    def get_code(self, address: str, block: int) -> bytes:
        self.code_reads += 1
        self._state(block)
        return super().get_code(address, block)

    def call(self, to: str, data: bytes, block: int) -> bytes:
        self._state(block)
        return super().call(to, data, block)

    def get_logs_and_end_hash(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> tuple[list[RawLog], str]:
        self.log_ranges.append((from_block, to_block))
        return super().get_logs_and_end_hash(address, topics, from_block, to_block)


def _new_pool(chain: Devnet) -> tuple[str, int]:
    """A pool created now (the devnet's own were created before its saved state, where Anvil
    has no history): (address, creation block)."""
    w3, m = chain.w3, chain.manifest
    factory = contract(w3, "UniswapV3Factory", m.contracts["UniswapV3Factory"])
    wbtc, usdc = m.token("WBTC").address, m.token("USDC").address
    created = send(w3, factory.functions.createPool(wbtc, usdc, 500), m.accounts.deployer)
    address = factory.functions.getPool(wbtc, usdc, 500).call()
    pool = contract(w3, "UniswapV3Pool", address)
    send(w3, pool.functions.initialize(2**96), m.accounts.deployer)
    for _ in range(40):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return address, created


def test_the_creation_block_is_found_without_a_scan_from_block_zero(
    chain: Devnet, tmp_path: Path
) -> None:
    m = chain.manifest
    address, created = _new_pool(chain)
    head = chain.w3.eth.block_number
    w3 = connect(chain.url)
    kwargs: dict[str, Any] = {"multicall": m.contracts["Multicall3"], "max_range": 4}

    # an archive node: eth_getCode bisected, then the PoolCreated log in that one block
    archive = Pruned(w3, head, keep=head + 1)
    report = fetch_pool_events(archive, address, 0, head, tmp_path / "a.sqlite", **kwargs)
    assert report.creation_block == created
    assert archive.code_reads <= math.ceil(math.log2(head)) + 2
    assert (created, created) in archive.log_ranges
    assert min(lo for lo, _hi in archive.log_ranges) == created

    # a full node that has pruned the state of old blocks: the PoolCreated log, searched
    # backwards from the head, stops at the creation: nothing before it beyond one window
    pruned = Pruned(w3, head, keep=8)
    assert created < pruned.oldest
    report = fetch_pool_events(pruned, address, 0, head, tmp_path / "p.sqlite", **kwargs)
    assert report.creation_block == created
    assert min(lo for lo, _hi in pruned.log_ranges) >= created - 4 * 8
