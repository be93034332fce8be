"""A pool's health read from the chain, and the gate that keeps new liquidity out of an
unhealthy pool.

``health_at`` evaluates ``lpbot.risk.health`` on a pool snapshot (its initialized ticks, read by
``PoolReader``) at the price source's marks of the same block; ``fetch_pool_health`` reads the
pool (and, for volume and fee APR, its fee rate over the last day, as the expected-value model
does: ``execution.decide.measure_fee_rate``). ``refuse_unhealthy`` is the one gate opening and
rebalancing go through: ``UnhealthyPool`` names every failed check and how a person accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lpbot.analytics.fees import FeeRate
from lpbot.chain.reader import PoolReader, PoolSnapshot
from lpbot.errors import Refused
from lpbot.pricing.base import Marks
from lpbot.risk.health import HealthRule, PoolHealth, evaluate_health

__all__ = ["ACCEPT_FLAG", "PoolRead", "UnhealthyPool", "fetch_pool_health", "health_at"]

ACCEPT_FLAG = "--accept-unhealthy-pool"


class UnhealthyPool(Refused):
    """The pool is below the health rule and no one accepted opening or rebalancing there."""

    def __init__(self, message: str, health: PoolHealth) -> None:
        super().__init__(message)
        self.health = health


@dataclass(frozen=True)
class PoolRead:
    """A pool's health with the snapshot and marks it was computed from."""

    health: PoolHealth
    snapshot: PoolSnapshot
    marks: Marks


def health_at(
    snap: PoolSnapshot,
    marks: Marks,
    *,
    symbols: tuple[str, str],
    decimals: tuple[int, int],
    rule: HealthRule,
    fee_rate: FeeRate | None = None,
) -> PoolHealth:
    """``evaluate_health`` on ``snap`` (exact within the ticks it read) at ``marks``."""
    return evaluate_health(
        snap.to_pool(),
        rule=rule,
        decimals=decimals,
        usd=(marks.usd(symbols[0]), marks.usd(symbols[1])),
        known=snap.tick_range_known,
        fee_rate=fee_rate,
    )


def fetch_pool_health(
    reader: PoolReader,
    pool: str,
    *,
    pricer: Any,
    symbols: tuple[str, str],
    decimals: tuple[int, int],
    rule: HealthRule,
    block: int | None = None,
    with_fee_rate: bool = True,
) -> PoolRead:
    """Read ``pool`` at ``block`` (the latest when None) and its health there; with
    ``with_fee_rate`` also its last day's fee rate (more reads: volume and fee APR)."""
    from lpbot.execution.decide import measure_fee_rate

    at = reader.w3.eth.block_number if block is None else block
    marks: Marks = pricer.fetch_marks(list(symbols), at)
    snap = reader.fetch_pool_state(pool, twap_seconds=(0,), block=at)
    rate = measure_fee_rate(reader, pool, snap, decimals) if with_fee_rate else None
    health = health_at(snap, marks, symbols=symbols, decimals=decimals, rule=rule, fee_rate=rate)
    return PoolRead(health, snap, marks)


def refuse_unhealthy(
    health: PoolHealth, *, what: str, label: str, accepted: bool, hints: Sequence[str] = ()
) -> None:
    """Raise ``UnhealthyPool`` for ``what`` (an open, a rebalance) unless the pool is healthy
    or a person accepted it (``accepted``); the message lists every failed check and
    ``hints``, the ways to accept it."""
    if health.healthy or accepted:
        return
    how = " or ".join(hints) if hints else f"set health.accept_unhealthy = [{label!r}]"
    raise UnhealthyPool(
        f"{label}: {what} refused: the pool is unhealthy ({'; '.join(health.problems)}; rule "
        f"{health.rule.describe()}); {how} to go ahead anyway",
        health,
    )
