"""The position manager's decision for one position, with its inputs read from the chain.

The pure policy (``lpbot.strategy.rebalance``) gets: the pool and position snapshot now, the
pool's fee rate over the last day (``measure_fee_rate``: two snapshots), a price history from
the pool's own oracle, token prices in USD and the chain's gas cost of a rebalance and of a
compounding in USD. The same code decides in the CLI, the scheduler and the demo.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_abi.exceptions import DecodingError
from web3 import Web3
from web3.exceptions import BlockNotFound

from lpbot.analytics.fees import FeeRate, fee_rate
from lpbot.analytics.types import PriceHistory
from lpbot.chain.history import fetch_oracle_history
from lpbot.chain.reader import PoolReader, PoolSnapshot
from lpbot.chain.submit import fetch_fees
from lpbot.errors import RetryLater
from lpbot.execution.snapshots import pool_snapshot, position_snapshot
from lpbot.pricing.base import Marks, NoPriceRoute
from lpbot.strategy.base import Range, RangeStrategy
from lpbot.strategy.decision import Decision
from lpbot.strategy.rebalance import MarketInputs, RebalancePolicy

# gas units of a whole rebalance through a Safe (measured on the devnet: about 730k) and of a
# compounding through a Safe (collect, swap, approvals, increaseLiquidity: 350k-460k measured
# on the devnet), with headroom
REBALANCE_GAS = 800_000
COMPOUND_GAS = 500_000

# the pool's fee rate is measured over this long (as the backtests' ``fee_window_seconds``): a
# few blocks' worth swings from nothing to a burst's hundreds of percent a year
FEE_WINDOW_SECONDS = 86_400


def measure_fee_rate(
    reader: PoolReader,
    pool: str,
    snap: PoolSnapshot,
    decimals: tuple[int, int],
    *,
    window_seconds: int = FEE_WINDOW_SECONDS,
    lookback_blocks: int | None = None,
) -> FeeRate:
    """The pool's fee rate per unit of in-range liquidity from ``snap`` back over about
    ``window_seconds`` (its blocks estimated from the last 50 blocks' time), or over
    ``lookback_blocks`` when given; over fewer blocks when the node does not serve the older
    state (a pruned node, a devnet loaded from a saved state). Zero when no time passed."""
    now_s = pool_snapshot(snap, *decimals)
    lookback = lookback_blocks
    if lookback is None:
        probe = min(50, snap.block_number)
        lookback = probe
        if probe >= 1:
            try:
                then = int(reader.w3.eth.get_block(snap.block_number - probe)["timestamp"])
            except BlockNotFound:  # a block the node lacks: measure over the probe
                then = snap.block_timestamp
            if snap.block_timestamp > then:
                per_block = (snap.block_timestamp - then) / probe
                lookback = max(probe, math.ceil(window_seconds / per_block))
    lookback = min(lookback, snap.block_number)

    def read(back: int) -> PoolSnapshot | None:
        try:
            return reader.fetch_pool_state(pool, twap_seconds=(0,), block=snap.block_number - back)
        except (RetryLater, DecodingError):  # Anvil answers a call on a state it lacks empty
            return None

    earlier, missing = None, 0  # the oldest state read, the nearest lookback the node lacks
    while lookback >= 1 and earlier is None:
        earlier = read(lookback)
        if earlier is None:
            missing, lookback = lookback, lookback // 2
    while earlier is not None and missing - lookback > max(1, lookback // 8):
        mid = (lookback + missing) // 2  # the oldest state the node keeps, to within an eighth
        found = read(mid)
        if found is None:
            missing = mid
        else:
            earlier, lookback = found, mid
    if earlier is not None:
        before_s = pool_snapshot(earlier, *decimals)
        if now_s.timestamp > before_s.timestamp:
            return fee_rate(before_s, now_s)
    return FeeRate(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PositionView:
    snapshot: PoolSnapshot
    history: PriceHistory
    market: MarketInputs
    decision: Decision


def decide_position(
    w3: Web3,
    reader: PoolReader,
    pool: str,
    token_id: int,
    policy: RebalancePolicy,
    *,
    decimals: tuple[int, int],
    usd: tuple[Decimal, Decimal],
    native_usd: Decimal,
    lookback_blocks: int | None = None,
    history_window_seconds: int = 24 * 3600,
    history_step_seconds: int = 300,
    twap_seconds: int = 600,
    opened_at: int = 0,
    gas_price_wei: Callable[[Web3], int] | None = None,
    block: int | None = None,
) -> PositionView:
    """The policy's decision on ``token_id`` with the pool read at ``block`` (the latest when
    None); ``usd`` and ``native_usd`` are the marks of the two tokens and of the gas token at
    that block (``decide_at_marks`` takes them from the price source)."""
    snap = reader.fetch_pool_state(
        pool,
        token_ids=[token_id],
        twap_seconds=(0, twap_seconds),
        block=block if block is not None else "latest",
    )
    now_s = pool_snapshot(snap, *decimals)
    rate = measure_fee_rate(reader, pool, snap, decimals, lookback_blocks=lookback_blocks)
    history = fetch_oracle_history(
        w3, pool, window_seconds=history_window_seconds, step_seconds=history_step_seconds
    )
    price = gas_price_wei(w3) if gas_price_wei else fetch_fees(w3).max_fee_per_gas
    wei_usd = float(native_usd) / 1e18  # analytics float
    market = MarketInputs(
        token0_usd=float(usd[0]),
        token1_usd=float(usd[1]),
        rebalance_gas_usd=REBALANCE_GAS * price * wei_usd,
        compound_gas_usd=COMPOUND_GAS * price * wei_usd,
        fee_rate=rate,
    )
    if not opened_at:
        opened_at = reader.fetch_opened_at(token_id) or snap.block_timestamp
    position = position_snapshot(snap.positions[token_id], opened_at=opened_at)
    decision = policy.decide(now_s, position, history, market)
    return PositionView(snap, history, market, decision)


def decide_at_marks(
    w3: Web3,
    reader: PoolReader,
    pool: str,
    token_id: int,
    policy: RebalancePolicy,
    *,
    pricer: Any,
    symbols: tuple[str, str],
    decimals: tuple[int, int],
    block: int | None = None,
    opened_at: int = 0,
) -> tuple[PositionView, Marks]:
    """``decide_position`` with every USD figure from the price source (``pricing``): the two
    tokens' and WETH's marks at the block the pool is read at; the marks come back with it."""
    at = w3.eth.block_number if block is None else block
    marks: Marks = pricer.fetch_marks(list(symbols), at)
    if "WETH" not in marks.marks:  # the gas cost's mark
        raise NoPriceRoute("WETH", marks.chain, "the gas cost's mark")
    view = decide_position(
        w3,
        reader,
        pool,
        token_id,
        policy,
        decimals=decimals,
        usd=(marks.usd(symbols[0]), marks.usd(symbols[1])),
        native_usd=marks.usd("WETH"),
        opened_at=opened_at,
        block=at,
    )
    return view, marks


def open_range(
    w3: Web3,
    snapshot: PoolSnapshot,
    strategy: RangeStrategy,
    *,
    decimals: tuple[int, int],
    history_window_seconds: int = 24 * 3600,
    history_step_seconds: int = 300,
) -> Range:
    """The range a new position opens in: the position's strategy on the pool's snapshot and
    its oracle's price history, as a rebalance would choose it."""
    history = fetch_oracle_history(
        w3,
        snapshot.address,
        window_seconds=history_window_seconds,
        step_seconds=history_step_seconds,
    )
    return strategy.range_for(pool_snapshot(snapshot, *decimals), history)
