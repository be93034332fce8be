"""Exact event replay: a pool's logged history applied to an ``lpbot.uniswap.Pool``.

Mint, Burn, Collect, Flash, Initialize, SetFeeProtocol, CollectProtocol and
IncreaseObservationCardinalityNext are applied as the contract applied them (the logged
arguments are the call's arguments). A Swap log does not say what the trader asked for
(exact input or output, amount, price limit), only its effect: the amounts, the price, the
liquidity and the tick after it. It is replayed by its effect, in one of three ways:

1. History mode (the pool is in its historical state and the bot has no liquidity on the
   swap's path), exact to the wei:
   a. exact input of the logged input amount with no price limit, if a quote of that swap ends
      at the logged price with the logged amounts: this reproduces exact-input swaps that were
      filled in full (the last step's fee is ``amountRemaining - amountIn``, as the contract
      computes it when the target is not reached);
   b. otherwise the logged input amount as exact input with the logged ``sqrtPriceX96`` as the
      price limit: this reproduces swaps that stopped at their limit and exact-output swaps
      (the last step reaches its target and its fee is ``ceil(amountIn * fee / (1e6 - fee))``,
      as it was). The amount paid out may then exceed the logged one by the rounding the
      contract caps for exact output; the pool's state is the same.
2. Price-target mode (the bot's liquidity is on the swap's path, or the bot's own trades have
   moved the price away from history): the swap moves the price from where it is to the logged
   ``sqrtPriceX96``, as exact input of whatever amount that takes (a limit at the logged price,
   an amount no pool can absorb). The price path is history's; the volume is what the pool
   with the bot's liquidity needs to follow it, so the bot earns exactly the fees the contract
   would pay for that path (more liquidity on the path means more input and more fees, shared
   by liquidity). A price the bot's own swap moved is brought back by the next logged swap, as
   arbitrage would; the bot paid the fee and price impact of its swap, others earn them back.

Mints, burns and collects of other LPs are applied in both modes; in history mode their logged
amounts are checked against the pool's, and each mismatch is counted (``strict`` raises).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from lpbot.backtest.dataset import Dataset
from lpbot.backtest.events import EventKind, PoolEvent
from lpbot.errors import Halt
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO

log = logging.getLogger(__name__)

_NO_LIMIT = {True: MIN_SQRT_RATIO + 1, False: MAX_SQRT_RATIO - 1}
UNBOUNDED_INPUT = (1 << 127) - 1  # more than any pool can take: the price limit stops the swap


class ReplayMismatch(Halt):
    """A logged event's amounts or resulting state differ from the replayed pool's."""


@dataclass
class ReplayStats:
    """How each swap was replayed and how many events disagreed with the pool (history mode)."""

    events: int = 0
    swaps_exact_input: int = 0
    swaps_price_limit: int = 0
    swaps_price_target: int = 0
    swaps_skipped: int = 0
    mismatches: int = 0
    first_mismatch: str | None = None
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class EventReplayer:
    """Applies events to ``pool`` (None until the Initialize event of an empty start).

    ``bot_range`` is ``(tick_lower, tick_upper)`` of liquidity the caller holds in the pool (None:
    none); ``in_history`` stays True while the pool is known to be in its historical state.
    """

    pool: Pool | None
    fee: int
    tick_spacing: int
    strict: bool = False
    bot_range: tuple[int, int] | None = None
    in_history: bool = True
    stats: ReplayStats = field(default_factory=ReplayStats)
    history_sqrt_price: int = 0

    def __post_init__(self) -> None:
        if self.pool is not None:
            self.history_sqrt_price = self.pool.slot0.sqrt_price_x96

    def _mismatch(self, event: PoolEvent, what: str) -> None:
        self.stats.mismatches += 1
        text = f"block {event.block_number} log {event.log_index} {event.kind.name}: {what}"
        if self.stats.first_mismatch is None:
            self.stats.first_mismatch = text
            log.warning("replay mismatch: %s", text)
        if self.strict:
            raise ReplayMismatch(text)

    def apply(self, event: PoolEvent, timestamp: int) -> None:
        """Apply one event at its block's ``timestamp``."""
        self.stats.events += 1
        pool = self.pool
        kind = event.kind
        a = event.args
        if pool is None:
            if kind is not EventKind.INITIALIZE:
                raise Halt(f"{kind.name} at block {event.block_number} before the pool exists")
            self.pool = Pool(self.fee, self.tick_spacing, a[0], block_timestamp=timestamp)
            self.history_sqrt_price = a[0]
            if self.pool.slot0.tick != a[1]:
                self._mismatch(event, f"tick {self.pool.slot0.tick} != logged {a[1]}")
            return
        pool.block_timestamp = timestamp
        if kind is EventKind.SWAP:
            self._swap(pool, event)
        elif kind is EventKind.MINT:
            got = pool.mint(a[0], a[1], a[2], a[3])
            if self.in_history and got != (a[4], a[5]):
                self._mismatch(event, f"mint paid {got}, logged {(a[4], a[5])}")
        elif kind is EventKind.BURN:
            got = pool.burn(a[0], a[1], a[2], a[3])
            if self.in_history and got != (a[4], a[5]):
                self._mismatch(event, f"burn released {got}, logged {(a[4], a[5])}")
        elif kind is EventKind.COLLECT:
            got = pool.collect(a[0], a[1], a[2], a[3], a[4])
            if self.in_history and got != (a[3], a[4]):
                self._mismatch(event, f"collect paid {got}, logged {(a[3], a[4])}")
        elif kind is EventKind.FLASH:
            pool.flash(a[0], a[1], a[2], a[3])
        elif kind is EventKind.SET_FEE_PROTOCOL:
            pool.set_fee_protocol(a[2], a[3])
        elif kind is EventKind.COLLECT_PROTOCOL:
            # collectProtocol: the logged amounts left the protocol's balance
            pool.protocol_fees.token0 -= a[0]
            pool.protocol_fees.token1 -= a[1]
        elif kind is EventKind.INCREASE_CARDINALITY:
            pool.increase_observation_cardinality_next(a[1])
        elif kind is EventKind.INITIALIZE:
            self._mismatch(event, "Initialize of a pool that is already initialized")

    def _bot_on_path(self, tick_a: int, tick_b: int) -> bool:
        rng = self.bot_range
        if rng is None:
            return False
        lo, hi = (tick_a, tick_b) if tick_a <= tick_b else (tick_b, tick_a)
        return rng[0] <= hi + 1 and rng[1] >= lo

    def _swap(self, pool: Pool, event: PoolEvent) -> None:
        amount0, amount1, sqrt_end, liquidity_end, tick_end = event.args
        sqrt_now = pool.slot0.sqrt_price_x96
        if sqrt_end < sqrt_now:
            zero_for_one = True
        elif sqrt_end > sqrt_now:
            zero_for_one = False
        elif amount0 > 0 or amount1 > 0:
            zero_for_one = amount0 > 0
        else:
            self.stats.swaps_skipped += 1
            return
        amount_in = amount0 if zero_for_one else amount1
        historical = (
            self.in_history
            and sqrt_now == self.history_sqrt_price
            and not self._bot_on_path(pool.slot0.tick, tick_end)
        )
        self.history_sqrt_price = sqrt_end
        if not historical:
            self.stats.swaps_price_target += 1
            if sqrt_end != sqrt_now:
                pool.swap(zero_for_one, UNBOUNDED_INPUT, sqrt_end)
            elif amount_in > 0:
                pool.swap(zero_for_one, amount_in, _NO_LIMIT[zero_for_one])
            return
        if amount_in > 0:
            try:
                q = pool.quote_swap(zero_for_one, amount_in, _NO_LIMIT[zero_for_one])
            except UniswapRevert:
                q = None
            if (
                q is not None
                and q.sqrt_price_x96 == sqrt_end
                and q.amount0 == amount0
                and q.amount1 == amount1
            ):
                pool.swap(zero_for_one, amount_in, _NO_LIMIT[zero_for_one])
                self.stats.swaps_exact_input += 1
                self._check_after(pool, event, liquidity_end, tick_end)
                return
        if sqrt_end == sqrt_now:
            self._mismatch(event, "a swap that left the price unchanged could not be reproduced")
            return
        r = pool.swap(zero_for_one, max(amount_in, 1), sqrt_end)
        self.stats.swaps_price_limit += 1
        paid = r.amount0 if zero_for_one else r.amount1
        if r.sqrt_price_x96 != sqrt_end or paid != amount_in:
            self._mismatch(
                event,
                f"replayed swap ended at {r.sqrt_price_x96} paying {paid}, "
                f"logged {sqrt_end} paying {amount_in}",
            )
        self._check_after(pool, event, liquidity_end, tick_end)

    def _check_after(self, pool: Pool, event: PoolEvent, liquidity: int, tick: int) -> None:
        if pool.liquidity != liquidity or pool.slot0.tick != tick:
            self._mismatch(
                event,
                f"liquidity/tick after swap {pool.liquidity}/{pool.slot0.tick}, "
                f"logged {liquidity}/{tick}",
            )


@dataclass(frozen=True)
class ReplayResult:
    pool: Pool | None
    stats: ReplayStats


def replay_events(
    replayer: EventReplayer, events: Iterable[PoolEvent], timestamps: dict[int, int]
) -> ReplayStats:
    """Apply ``events`` in order; the stats' ``seconds`` accumulate the time spent."""
    t0 = time.perf_counter()
    apply = replayer.apply
    for event in events:
        apply(event, timestamps[event.block_number])
    replayer.stats.seconds += time.perf_counter() - t0
    return replayer.stats


def replay_dataset(dataset: Dataset, *, strict: bool = False) -> ReplayResult:
    """Replay a whole dataset into a pool rebuilt from its start state (no bot)."""
    replayer = EventReplayer(
        dataset.start.to_pool(), dataset.meta.fee, dataset.meta.tick_spacing, strict=strict
    )
    stats = replay_events(replayer, dataset.events, dataset.timestamps)
    return ReplayResult(replayer.pool, stats)
