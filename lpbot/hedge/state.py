"""The hedge controller's persisted state: step counter, the order in flight, the PnL ledger,
alerts and the kill switch; stored as validated JSON.

The order in flight (``PendingOrder``) is written *before* it is sent. Until it is resolved by
looking it up by its client order id, the controller does nothing else: a timeout is never taken
as success or as failure.
"""

from __future__ import annotations

import json
import os
import tempfile
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from lpbot.hedge.base import Order, OrderRequest, OrderSide

__all__ = [
    "Alert",
    "AlertKind",
    "HedgeLedger",
    "HedgePnl",
    "HedgeState",
    "JsonStateStore",
    "MemoryStateStore",
    "PendingOrder",
    "StateStore",
]

_ZERO = Decimal(0)
MAX_ALERTS = 100


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertKind(StrEnum):
    RETRIES_EXHAUSTED = "retries_exhausted"  # the venue stayed unavailable; nothing assumed
    REJECTED = "rejected"  # the venue refused the order, repeatedly
    RECONCILE_MISMATCH = "reconcile_mismatch"  # the venue's position differs from the ledger
    OUTSIDE_BAND = "outside_band"  # orders were sent but net delta is still outside the band
    LIQUIDATION_NEAR = "liquidation_near"
    KILL_SWITCH = "kill_switch"
    ORDER_STATE_UNKNOWN = "order_state_unknown"  # an order may exist; not re-sent until known
    HEDGE_PARTIAL = "hedge_partial"  # reduced to keep the position's leverage under the cap
    MARGIN_NOT_ADDED = "margin_not_added"  # adding isolated margin failed; re-read next sync


class Alert(_Frozen):
    """Something a person should see; returned by the call that raised it and kept in state."""

    kind: AlertKind
    message: str
    at_ms: int
    client_order_id: str | None = None


class PendingOrder(_Frozen):
    """An order written down before sending: it may exist at the venue until looked up."""

    symbol: str
    side: OrderSide
    amount: Decimal
    client_order_id: str
    reduce_only: bool
    step: int
    top_up: int
    sent_ms: int

    @classmethod
    def of(cls, request: OrderRequest, step: int, top_up: int, now_ms: int) -> PendingOrder:
        return cls(
            symbol=request.symbol,
            side=request.side,
            amount=request.amount,
            client_order_id=request.client_order_id,
            reduce_only=request.reduce_only,
            step=step,
            top_up=top_up,
            sent_ms=now_ms,
        )


class HedgePnl(_Frozen):
    """The hedge's PnL breakdown, settle currency: ``total = realised + unrealised - fees +
    funding`` (funding positive = received)."""

    realised: Decimal
    unrealised: Decimal
    fees: Decimal
    funding: Decimal

    @property
    def total(self) -> Decimal:
        return self.realised + self.unrealised - self.fees + self.funding


class HedgeLedger(_Frozen):
    """The hedge as lpbot accounts for it: size and average entry from its own fills (average
    cost), realised PnL, fees paid and funding received, each kept apart."""

    size: Decimal = _ZERO
    entry_price: Decimal = _ZERO
    realised: Decimal = _ZERO
    fees: Decimal = _ZERO
    funding: Decimal = _ZERO

    def apply_fill(self, order: Order) -> HedgeLedger:
        """The ledger after ``order``'s fills (at its average price) and fee."""
        if order.filled == 0 or order.average_price is None:
            return self.model_copy(update={"fees": self.fees + (order.fee or _ZERO)})
        qty, price = order.filled, order.average_price
        sign = order.side.sign
        size, entry, realised = self.size, self.entry_price, self.realised
        opening = qty
        if size != 0 and (size > 0) != (sign > 0):
            closing = min(qty, abs(size))
            realised += closing * (price - entry) * (1 if size > 0 else -1)
            size += sign * closing
            if size == 0:
                entry = _ZERO
            opening = qty - closing
        if opening > 0:
            entry = (abs(size) * entry + opening * price) / (abs(size) + opening)
            size += sign * opening
        return self.model_copy(
            update={
                "size": size,
                "entry_price": entry,
                "realised": realised,
                "fees": self.fees + (order.fee or _ZERO),
            }
        )

    def adopt(self, size: Decimal, entry_price: Decimal) -> HedgeLedger:
        """Take the venue's position as the truth (after a mismatch); PnL so far is kept."""
        return self.model_copy(update={"size": size, "entry_price": entry_price})

    def pnl(self, mark: Decimal) -> HedgePnl:
        return HedgePnl(
            realised=self.realised,
            unrealised=self.size * (mark - self.entry_price),
            fees=self.fees,
            funding=self.funding,
        )


class HedgeState(_Frozen):
    """Everything the controller must remember between runs."""

    position_id: str
    symbol: str
    created_ms: int
    step: int = 0
    pending: PendingOrder | None = None
    ledger: HedgeLedger = HedgeLedger()
    funding_cursor_ms: int | None = None
    seen_funding_ids: tuple[str, ...] = ()
    alerts: tuple[Alert, ...] = ()
    killed: bool = False

    def with_alerts(self, *alerts: Alert) -> HedgeState:
        return self.model_copy(update={"alerts": (*self.alerts, *alerts)[-MAX_ALERTS:]})


class StateStore(Protocol):
    def load(self) -> HedgeState | None: ...

    def save(self, state: HedgeState) -> None: ...


class MemoryStateStore:
    def __init__(self, state: HedgeState | None = None) -> None:
        self._state = state

    def load(self) -> HedgeState | None:
        return self._state

    def save(self, state: HedgeState) -> None:
        self._state = state


class JsonStateStore:
    """One JSON file, replaced atomically on every save."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> HedgeState | None:
        if not self.path.exists():
            return None
        return HedgeState.model_validate_json(self.path.read_text())

    def save(self, state: HedgeState) -> None:
        write_json_atomic(self.path, state.model_dump(mode="json"))


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
