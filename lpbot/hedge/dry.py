"""A dry-run venue: reads go to a real (or paper) venue, orders are simulated and never sent.

``DryRunExchange(inner)`` answers reads from ``inner``. An order fills whole, at once, at
``inner``'s mark price with the taker fee, and is kept here; ``fetch_position`` shows ``inner``'s
position with these simulated fills on top (average cost), so a controller run against it
decides as it would live. Nothing reaches ``inner`` but reads.
"""

from __future__ import annotations

from decimal import Decimal

from lpbot.errors import Refused
from lpbot.hedge.base import (
    Balance,
    Clock,
    Exchange,
    FundingPayment,
    FundingRate,
    MarginTier,
    MarketInfo,
    Order,
    OrderRequest,
    OrderStatus,
    PerpPosition,
)
from lpbot.hedge.state import HedgeLedger

__all__ = ["DryRunExchange"]


class DryRunExchange:
    """Reads from ``inner``, simulates writes (module docstring)."""

    def __init__(self, inner: Exchange, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock
        self.orders: list[Order] = []
        self.leverage: dict[str, int] = {}
        self.margin_added: dict[str, Decimal] = {}

    def __repr__(self) -> str:
        return f"DryRunExchange({self.inner!r})"

    @property
    def name(self) -> str:
        return f"dry-run:{self.inner.name}"

    def load_market(self, symbol: str) -> MarketInfo:
        return self.inner.load_market(symbol)

    def fetch_position(self, symbol: str) -> PerpPosition:
        real = self.inner.fetch_position(symbol)
        mine = [o for o in self.orders if o.symbol == symbol]
        if not mine:
            return real
        ledger = HedgeLedger(size=real.size, entry_price=real.entry_price)
        for order in mine:
            ledger = ledger.apply_fill(order)
        same = ledger.size == real.size
        return PerpPosition(
            symbol=symbol,
            size=ledger.size,
            entry_price=ledger.entry_price,
            mark_price=real.mark_price,
            unrealized_pnl=ledger.size * (real.mark_price - ledger.entry_price),
            isolated_margin=real.isolated_margin,
            liquidation_price=real.liquidation_price if same else None,
            leverage=real.leverage,
        )

    def fetch_balance(self, currency: str) -> Balance:
        return self.inner.fetch_balance(currency)

    def fetch_mark_price(self, symbol: str) -> Decimal:
        return self.inner.fetch_mark_price(symbol)

    def fetch_funding_rate(self, symbol: str) -> FundingRate:
        return self.inner.fetch_funding_rate(symbol)

    def fetch_funding_rate_history(self, symbol: str, since_ms: int) -> list[FundingRate]:
        return self.inner.fetch_funding_rate_history(symbol, since_ms)

    def fetch_funding_payments(self, symbol: str, since_ms: int) -> list[FundingPayment]:
        return self.inner.fetch_funding_payments(symbol, since_ms)

    def fetch_margin_tiers(self, symbol: str) -> tuple[MarginTier, ...]:
        return self.inner.fetch_margin_tiers(symbol)

    def prepare_isolated(self, symbol: str, leverage: int) -> tuple[str, ...]:
        self.leverage[symbol] = leverage
        return ()

    def add_margin(self, symbol: str, amount: Decimal) -> None:
        self.margin_added[symbol] = self.margin_added.get(symbol, Decimal(0)) + amount

    def create_order(self, request: OrderRequest) -> Order:
        market = self.inner.load_market(request.symbol)
        mark = self.inner.fetch_mark_price(request.symbol)
        order = Order(
            id=f"dry{len(self.orders) + 1}",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            amount=request.amount,
            filled=request.amount,
            average_price=mark,
            status=OrderStatus.CLOSED,
            reduce_only=request.reduce_only,
            fee=request.amount * mark * market.taker_fee,
            timestamp_ms=self.clock.now_ms(),
        )
        self.orders.append(order)
        return order

    def cancel_order(self, symbol: str, order_id: str) -> Order:
        raise Refused(f"dry run: no open order {order_id}")

    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None:
        for o in self.orders:
            if (order_id is not None and o.id == order_id) or (
                client_order_id is not None and o.client_order_id == client_order_id
            ):
                return o
        return self.inner.fetch_order(symbol, order_id=order_id, client_order_id=client_order_id)
