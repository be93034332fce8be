"""Fetch a devnet pool's history through the RPC and replay it: the chain's exact end state."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.backtest.dataset import load_dataset
from lpbot.backtest.fetch import fetch_pool_events
from lpbot.backtest.replay import replay_dataset
from lpbot.devnet.deploy import contract
from lpbot.devnet.market import run_market
from lpbot.uniswap.pool import Pool
from tests.backtest.chain_helpers import chain_state, lp_and_trader_actions
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def assert_same_state(chain: Devnet, pool: Pool, path: Path, block: int) -> None:
    """Every field a replay must reproduce, against the contract at ``block``."""
    ds = load_dataset(path)
    onchain = contract(chain.w3, "UniswapV3Pool", ds.meta.address)
    slot0 = onchain.functions.slot0().call(block_identifier=block)
    s = pool.slot0
    assert [
        s.sqrt_price_x96, s.tick, s.observation_index, s.observation_cardinality,
        s.observation_cardinality_next, s.fee_protocol, s.unlocked,
    ] == list(slot0)  # fmt: skip
    assert pool.liquidity == onchain.functions.liquidity().call(block_identifier=block)
    assert pool.fee_growth_global0_x128 == onchain.functions.feeGrowthGlobal0X128().call(
        block_identifier=block
    )
    assert pool.fee_growth_global1_x128 == onchain.functions.feeGrowthGlobal1X128().call(
        block_identifier=block
    )
    state = chain_state(chain.w3, chain.manifest, ds.meta, block, pool)
    assert state.protocol_fees == (pool.protocol_fees.token0, pool.protocol_fees.token1)
    assert sorted(state.ticks) == sorted(pool.ticks)  # the same initialized ticks (bitmap)
    for t, info in state.ticks.items():
        assert pool.ticks[t] == info, f"tick {t}"
    index = s.observation_index
    assert pool.observations[index] == state.observations[index]
    live = {
        k: p for k, p in pool.positions.items() if p.liquidity or p.tokens_owed0 or p.tokens_owed1
    }
    assert live == state.positions


def test_history_from_the_pools_creation_replays_to_the_chains_exact_state(
    chain: Devnet, tmp_path: Path
) -> None:
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    run_market(chain.w3, m, info, steps=4, vol=0.9, seed=21)
    lp_and_trader_actions(chain.w3, m, info)
    to_block = chain.w3.eth.block_number
    path = tmp_path / "pool.sqlite"
    report = fetch_pool_events(
        chain.w3, info.address, 0, to_block, path, multicall=m.contracts["Multicall3"]
    )
    assert report.start_state_empty  # the history starts at the pool's creation
    assert report.events_total > 20
    result = replay_dataset(load_dataset(path), strict=True)
    assert result.pool is not None
    assert result.stats.mismatches == 0
    assert result.stats.swaps_exact_input > 0 and result.stats.swaps_price_limit > 0
    assert_same_state(chain, result.pool, path, to_block)


def test_history_from_a_later_block_starts_from_the_read_state(
    chain: Devnet, tmp_path: Path
) -> None:
    m = chain.manifest
    info = m.pool("USDC/WETH-3000")
    run_market(chain.w3, m, info, steps=3, vol=0.9, seed=5)
    start = chain.w3.eth.block_number + 1
    run_market(chain.w3, m, info, steps=3, vol=1.2, seed=6)
    lp_and_trader_actions(chain.w3, m, info)
    to_block = chain.w3.eth.block_number
    path = tmp_path / "pool.sqlite"
    report = fetch_pool_events(
        chain.w3, info.address, start, to_block, path, multicall=m.contracts["Multicall3"]
    )
    assert not report.start_state_empty and report.start_state_block == start - 1
    ds = load_dataset(path)
    assert len(ds.start.positions) >= 5  # the seed LPs' positions, found from their Mints
    result = replay_dataset(ds, strict=True)
    assert result.pool is not None and result.stats.mismatches == 0
    assert_same_state(chain, result.pool, path, to_block)
    # fetching again fetches nothing new
    again = fetch_pool_events(
        chain.w3, info.address, start, to_block, path, multicall=m.contracts["Multicall3"]
    )
    assert again.events_new == 0 and again.log_requests == 0
