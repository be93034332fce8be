"""The hedge's orders in the store (``hedge_orders``, ``hedge_fills``), fenced like transactions.

``StoreOrderJournal`` is the ``OrderJournal`` of ``lpbot run``'s hedge: each step that leads to
an order, or books one, is one database transaction that first checks the instance lock's
fencing token (``Lock.fence``), so a holder that lost its lease (paused past it, say) records
nothing and so sends nothing. An order is reserved (NEW, its client order id unique) before it
is sent; once final it is booked with its fill: filled amount, average price and fee, one fill
per order (trade id ``order:<venue's order id>``). Booking is idempotent: an order resumed and
booked again after a crash changes nothing. Adding margin asks the fence first (``check``).
The checker of the crash harness compares the
fills with the venue's position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lpbot.hedge.base import Order, OrderRequest
from lpbot.hedge.base import OrderSide as VenueSide
from lpbot.hedge.base import OrderStatus as VenueStatus
from lpbot.store import repo
from lpbot.store.models import HedgeOrder, OrderSide, OrderStatus

__all__ = ["StoreOrderJournal"]

_SIDE = {VenueSide.BUY: OrderSide.BUY, VenueSide.SELL: OrderSide.SELL}


def _status(order: Order) -> OrderStatus:
    if order.status is VenueStatus.OPEN:
        return OrderStatus.PARTIALLY_FILLED if order.filled > 0 else OrderStatus.OPEN
    if order.status is VenueStatus.CLOSED:
        return OrderStatus.FILLED
    if order.status is VenueStatus.CANCELED:
        return OrderStatus.CANCELED
    if order.status is VenueStatus.REJECTED:
        return OrderStatus.REJECTED
    return OrderStatus.EXPIRED  # a partial fill the book ran out on


class StoreOrderJournal:
    """``OrderJournal`` on the store (module docstring); ``fence`` is the instance lock's."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        exchange: str,
        fence: Callable[[Session], None] | None,
        checkpoint: Callable[[str], None] = lambda _name: None,
    ) -> None:
        self.sessions = sessions
        self.exchange = exchange
        self.fence = fence
        # the crash harness's kill points: "hedge-reserved" (recorded, not sent) and
        # "hedge-sent" (sent and final at the venue, not booked)
        self.checkpoint = checkpoint

    def check(self) -> None:
        """``LockLost`` when this process no longer holds the instance lock."""
        with self._fenced():
            pass

    @contextmanager
    def _fenced(self) -> Iterator[Session]:
        with self.sessions() as s, s.begin():
            if self.fence is not None:
                self.fence(s)
            yield s

    def reserve(self, request: OrderRequest, reason: str) -> None:
        with self._fenced() as s:
            repo.record_hedge_order(
                s,
                client_order_id=request.client_order_id,
                exchange=self.exchange,
                symbol=request.symbol,
                side=_SIDE[request.side],
                amount=request.amount,
                order_type=request.type.value,
                price=request.price,
                reduce_only=request.reduce_only,
                reason=reason,
            )
        self.checkpoint("hedge-reserved")

    def book(self, order: Order) -> None:
        self.checkpoint("hedge-sent")
        cid = order.client_order_id or f"venue-{order.id}"
        with self._fenced() as s:
            row = s.scalars(select(HedgeOrder).where(HedgeOrder.client_order_id == cid)).first()
            if row is None:  # sent before this journal existed: recorded now
                row, _ = repo.record_hedge_order(
                    s,
                    client_order_id=cid,
                    exchange=self.exchange,
                    symbol=order.symbol,
                    side=_SIDE[order.side],
                    amount=order.amount,
                    order_type=order.type.value,
                    reduce_only=order.reduce_only,
                )
            repo.update_hedge_order(
                s,
                row.id,
                status=_status(order),
                exchange_order_id=order.id,
                filled=order.filled,
                average_price=order.average_price,
            )
            if order.filled > 0:
                at = (
                    datetime.fromtimestamp(order.timestamp_ms / 1000, UTC)
                    if order.timestamp_ms is not None
                    else datetime.now(UTC)
                )
                repo.record_fill(
                    s,
                    order_id=row.id,
                    trade_id=f"order:{order.id}",
                    amount=order.filled,
                    price=order.average_price or Decimal(0),
                    fee=order.fee or Decimal(0),
                    fee_currency=order.symbol.rpartition(":")[2] or "USDT",  # the settle
                    filled_at=at,
                )
