"""A fetch stays behind the head by the chain's confirmations, keeps each range's end block hash,
and on resume fetches again the ranges a reorg replaced; logs marked ``removed`` are not kept.

The reorg is made on Anvil: a snapshot, a market, a fetch; back to the snapshot, another market
over the same block numbers; the resumed fetch must hold the new chain's events, replaying to its
exact state."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from lpbot.backtest.dataset import load_dataset
from lpbot.backtest.fetch import RawLog, Web3Source, fetch_pool_events
from lpbot.backtest.replay import replay_dataset
from lpbot.backtest.store import EventStore
from lpbot.devnet.market import run_market
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def _events(path: Path) -> list[tuple[int, int, str, str]]:
    with EventStore(path) as store:
        return [(e.block_number, e.log_index, e.tx_hash, repr(e.args)) for e in store.events()]


def test_a_resumed_fetch_refetches_the_ranges_a_reorg_replaced(
    chain: Devnet, tmp_path: Path
) -> None:
    w3, m = chain.w3, chain.manifest
    info = m.pool("USDC/WETH-3000")
    run_market(w3, m, info, steps=2, vol=0.9, seed=31)
    fork_point = chain.snapshot()
    common = w3.eth.block_number
    run_market(w3, m, info, steps=3, vol=0.9, seed=32)
    old_head = w3.eth.block_number
    path = tmp_path / "pool.sqlite"
    kwargs: dict[str, Any] = {"multicall": m.contracts["Multicall3"], "max_range": 8}
    first = fetch_pool_events(w3, info.address, 0, old_head, path, **kwargs)
    assert first.refetched_ranges == 0
    stale = _events(path)

    # the chain reorganises from the fork point: other trades in the same block numbers
    chain.revert(fork_point)
    run_market(w3, m, info, steps=4, vol=1.4, seed=33)
    new_head = w3.eth.block_number
    assert new_head >= old_head

    resumed = fetch_pool_events(w3, info.address, 0, new_head, path, **kwargs)
    assert resumed.refetched_ranges > 0
    fresh = tmp_path / "fresh.sqlite"
    fetch_pool_events(w3, info.address, 0, new_head, fresh, **kwargs)
    assert _events(path) == _events(fresh) != stale
    # nothing before the fork point was fetched again: only ranges ending after it were dropped
    assert resumed.log_requests < first.log_requests + (new_head - common) // 8 + 3
    result = replay_dataset(load_dataset(path), strict=True)
    assert result.pool is not None and result.stats.mismatches == 0
    onchain = w3.eth.contract(address=info.address, abi=_SLOT0_ABI).functions.slot0().call()
    assert result.pool.slot0.sqrt_price_x96 == onchain[0]


_SLOT0_ABI = [
    {
        "name": "slot0", "type": "function", "stateMutability": "view", "inputs": [],
        "outputs": [
            {"name": n, "type": t} for n, t in (
                ("sqrtPriceX96", "uint160"), ("tick", "int24"), ("observationIndex", "uint16"),
                ("observationCardinality", "uint16"), ("observationCardinalityNext", "uint16"),
                ("feeProtocol", "uint8"), ("unlocked", "bool"),
            )
        ],
    }
]  # fmt: skip


def test_the_fetch_stops_the_chains_confirmations_behind_the_head(
    chain: Devnet, tmp_path: Path
) -> None:
    w3, m = chain.w3, chain.manifest
    info = m.pool("USDC/WETH-500")
    run_market(w3, m, info, steps=3, vol=0.9, seed=41)
    head = w3.eth.block_number
    path = tmp_path / "pool.sqlite"
    report = fetch_pool_events(
        w3, info.address, 0, head, path, multicall=m.contracts["Multicall3"], confirmations=4
    )
    assert report.to_block == head - 4 and report.confirmations == 4
    with EventStore(path) as store:
        assert max(b for _a, b in store.fetched_ranges("events")) == head - 4
        assert all(e.block_number <= head - 4 for e in store.events())
        assert all(hash_ for _a, _b, hash_ in store.range_rows("events"))


class MarksRemoved(Web3Source):
    """Anvil's answers, with one log marked ``removed: true`` as a node does mid-reorg."""

    def __init__(self, src: Web3Source, block: int) -> None:
        super().__init__(src.w3)
        self._batch = None  # the single-request path, whose logs this wraps
        self.block = block

    def get_logs(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> list[RawLog]:
        logs = super().get_logs(address, topics, from_block, to_block)
        return [
            RawLog(e.block_number, e.log_index, e.tx_hash, e.topics, e.data, True)
            if e.block_number == self.block
            else e
            for e in logs
        ]


def test_logs_marked_removed_are_not_kept(chain: Devnet, tmp_path: Path) -> None:
    w3, m = chain.w3, chain.manifest
    info = m.pool("USDC/WETH-500")
    run_market(w3, m, info, steps=1, vol=0.9, seed=50)
    start = w3.eth.block_number + 1
    run_market(w3, m, info, steps=2, vol=0.9, seed=51)
    head = w3.eth.block_number
    kwargs: dict[str, Any] = {"multicall": m.contracts["Multicall3"]}
    full = tmp_path / "full.sqlite"
    fetch_pool_events(w3, info.address, start, head, full, **kwargs)
    blocks = sorted({b for b, *_ in _events(full)})
    assert blocks
    path = tmp_path / "pool.sqlite"
    src = MarksRemoved(Web3Source(w3), blocks[-1])
    fetch_pool_events(src, info.address, start, head, path, **kwargs)
    assert _events(path) == [e for e in _events(full) if e[0] != blocks[-1]]


@pytest.mark.parametrize("batches", [True, False])
def test_a_reorg_to_a_shorter_chain_drops_the_ranges_past_its_head(
    chain: Devnet, tmp_path: Path, batches: bool
) -> None:
    w3, m = chain.w3, chain.manifest
    info = m.pool("USDC/WETH-500")
    run_market(w3, m, info, steps=1, vol=0.9, seed=71)
    fork_point = chain.snapshot()
    run_market(w3, m, info, steps=3, vol=0.9, seed=72)
    path = tmp_path / "pool.sqlite"
    src = Web3Source(w3)
    if not batches:
        src._batch = None
    kwargs: dict[str, Any] = {"multicall": m.contracts["Multicall3"], "max_range": 8}
    fetch_pool_events(src, info.address, 0, w3.eth.block_number, path, **kwargs)
    old_head = w3.eth.block_number

    chain.revert(fork_point)
    run_market(w3, m, info, steps=1, vol=1.1, seed=73)
    new_head = w3.eth.block_number
    assert new_head < old_head
    resumed = fetch_pool_events(src, info.address, 0, new_head, path, **kwargs)
    assert resumed.refetched_ranges > 0
    fresh = tmp_path / "fresh.sqlite"
    fetch_pool_events(src, info.address, 0, new_head, fresh, **kwargs)
    assert _events(path) == _events(fresh)
    with EventStore(path) as store:
        assert max(b for _a, b in store.fetched_ranges("events")) <= new_head
