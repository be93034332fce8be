"""The pool's fee rate that prices every decision is measured over about a day, as the
backtests' ``fee_window_seconds``, not over the last 50 blocks (12 seconds on Arbitrum): a
quiet minute read as no fees (so "do not LP here"), a single swap as hundreds of percent a
year (so the narrowest width)."""

from __future__ import annotations

import pytest

from lpbot.chain.reader import PoolReader
from lpbot.devnet.market import run_market
from lpbot.execution.decide import measure_fee_rate
from lpbot.execution.snapshots import pool_snapshot
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def test_the_fee_rate_spans_the_day_not_the_last_blocks(chain: Devnet) -> None:
    w3, m = chain.w3, chain.manifest
    info = m.pool("USDC/WETH-500")
    c = m.contracts
    reader = PoolReader(
        w3,
        multicall=c["Multicall3"],
        tick_lens=c["TickLens"],
        position_manager=c["NonfungiblePositionManager"],
    )
    start = reader.fetch_pool_state(info.address, twap_seconds=(0,))
    run_market(w3, m, info, steps=4, vol=0.8, seed=5, step_seconds=600)
    for _ in range(60):  # a quiet minute: 60 blocks without a swap
        w3.provider.make_request("evm_increaseTime", [1])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    snap = reader.fetch_pool_state(info.address, twap_seconds=(0,))
    decimals = (m.token(info.token0).decimals, m.token(info.token1).decimals)

    recent = measure_fee_rate(reader, info.address, snap, decimals, lookback_blocks=50)
    assert recent.token0_per_second == recent.token1_per_second == 0.0  # the old reading

    rate = measure_fee_rate(reader, info.address, snap, decimals)
    # back over the market's trading (as far as the devnet, loaded from a saved state, keeps
    # state: to within an eighth of it), not just the quiet minute
    assert rate.seconds >= 1_800
    before, now = pool_snapshot(start, *decimals), pool_snapshot(snap, *decimals)
    grown = now.fee_growth_global1_x128 - before.fee_growth_global1_x128
    assert rate.token1_per_second > 0
    assert rate.token1_per_second * rate.seconds <= grown / 2**128 * (1 + 1e-9)
