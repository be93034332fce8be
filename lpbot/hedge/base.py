"""The ``Exchange`` protocol for a USD-margined perpetual, the values it trades in, and a clock.

Units: amounts are ``Decimal`` base tokens (BTC, ETH), never contracts: an adapter whose venue
counts contracts converts with ``MarketInfo.contract_size``, once, at its edge. Prices are settle
currency (USDT) per base token; money is settle currency. Position sizes are signed: a short is
negative. Funding amounts are signed from the account's side: positive is received.

Errors (``lpbot.errors``): a transient failure (network, timeout, rate limit, downtime) raises
``RetryLater``; an order or request the venue refuses (margin, size, reduce-only) ``Refused``;
bad keys or permissions ``NeedsAttention``. Adapters translate their library's errors into these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from lpbot.errors import RetryLater
from lpbot.hedge.margin import MarginTier, position_leverage

__all__ = [
    "Balance",
    "Clock",
    "Exchange",
    "FundingPayment",
    "FundingRate",
    "ManualClock",
    "MarginTier",
    "MarketInfo",
    "Order",
    "OrderExists",
    "OrderJournal",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PerpPosition",
    "SystemClock",
]

HOUR_MS = 3_600_000


class OrderExists(RetryLater):
    """The venue refused an order because one with its client order id exists (Binance
    -4116, OKX 51016, Bybit 110072): an earlier send landed. Look it up again; never a
    rejection."""


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy (adds to the signed size), -1 for a sell."""
        return 1 if self is OrderSide.BUY else -1

    @classmethod
    def of(cls, signed_amount: Decimal) -> OrderSide:
        """The side that moves a signed size by ``signed_amount`` (non-zero)."""
        if signed_amount == 0:
            raise ValueError("a zero amount has no side")
        return cls.BUY if signed_amount > 0 else cls.SELL


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """ccxt's unified order statuses. ``EXPIRED`` with ``filled < amount`` is a partial fill."""

    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self is not OrderStatus.OPEN


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """A perpetual's trading rules, in base tokens (``contract_size`` base tokens per contract).

    ``amount_step`` and ``min_amount`` are already multiplied by ``contract_size``. Fees are
    fractions of notional (0.0005 = 5 bps). ``min_notional`` does not apply to reduce-only orders
    (Binance USD-M rule, error -4164).
    """

    symbol: str
    base: str
    settle: str
    contract_size: Decimal
    amount_step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    price_tick: Decimal
    taker_fee: Decimal
    maker_fee: Decimal

    def __post_init__(self) -> None:
        for name in ("contract_size", "amount_step", "price_tick"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{self.symbol}: {name} must be > 0")
        if self.min_amount < 0 or self.min_notional < 0:
            raise ValueError(f"{self.symbol}: minimums must be >= 0")

    def round_amount(self, amount: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """``amount`` (>= 0) to a multiple of ``amount_step``; nearest by default, ties to even."""
        if amount < 0:
            raise ValueError(f"amount must be >= 0, got {amount}")
        steps = (amount / self.amount_step).to_integral_value(rounding=rounding)
        return steps * self.amount_step

    def floor_amount(self, amount: Decimal) -> Decimal:
        """``amount`` (>= 0) rounded down to a multiple of ``amount_step``."""
        return self.round_amount(amount, ROUND_DOWN)

    def is_valid_amount(self, amount: Decimal) -> bool:
        """A positive multiple of the step, at least the minimum."""
        return amount > 0 and amount >= self.min_amount and amount % self.amount_step == 0


@dataclass(frozen=True, slots=True)
class PerpPosition:
    """One-way-mode position. ``size`` signed base tokens (short < 0); 0 is flat.

    ``isolated_margin`` is the isolated wallet (margin posted plus funding, before unrealised
    PnL); ``liquidation_price`` is None when flat or when the venue reports none.
    """

    symbol: str
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    isolated_margin: Decimal
    liquidation_price: Decimal | None
    leverage: Decimal | None = None

    @classmethod
    def flat(cls, symbol: str, mark_price: Decimal) -> PerpPosition:
        return cls(symbol, Decimal(0), Decimal(0), mark_price, Decimal(0), Decimal(0), None)

    @property
    def notional(self) -> Decimal:
        """``|size| * mark``, settle currency."""
        return abs(self.size) * self.mark_price

    @property
    def margin_balance(self) -> Decimal:
        """Isolated wallet plus unrealised PnL at the mark, settle currency."""
        return self.isolated_margin + self.size * (self.mark_price - self.entry_price)

    @property
    def margin_leverage(self) -> Decimal | None:
        """The position's own leverage at the mark: notional over margin balance (None flat)."""
        return position_leverage(self.size, self.entry_price, self.mark_price, self.isolated_margin)


@dataclass(frozen=True, slots=True)
class Balance:
    """Settle-currency balance: ``total`` is the margin balance (wallet + unrealised PnL),
    ``free`` what new margin can come from, ``used`` the margin posted."""

    currency: str
    total: Decimal
    free: Decimal
    used: Decimal


@dataclass(frozen=True, slots=True)
class FundingRate:
    """A funding rate per interval (0.0001 = 0.01% per 8 h). ``timestamp_ms``: the settlement it
    applies to (history) or the time it was read (current); ``next_funding_ms`` when known;
    ``interval_hours``: the market's funding interval when the venue says (None: 8 h)."""

    symbol: str
    rate: Decimal
    timestamp_ms: int
    mark_price: Decimal | None = None
    next_funding_ms: int | None = None
    interval_hours: float | None = None


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """A funding settlement on the account: ``amount`` settle currency, positive = received."""

    symbol: str
    amount: Decimal
    timestamp_ms: int
    id: str


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to send. ``amount`` base tokens (> 0); ``client_order_id`` is the idempotency key
    (<= 32 characters, letters and digits, starting with a letter: valid on all three venues)."""

    symbol: str
    side: OrderSide
    amount: Decimal
    client_order_id: str
    type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    reduce_only: bool = False

    def __post_init__(self) -> None:
        if not self.amount > 0:
            raise ValueError(f"order amount must be > 0, got {self.amount}")
        if self.type is OrderType.LIMIT and (self.price is None or not self.price > 0):
            raise ValueError("a limit order needs a price > 0")
        cid = self.client_order_id
        if not (0 < len(cid) <= 32 and cid.isascii() and cid.isalnum() and cid[0].isalpha()):
            raise ValueError(f"client order id {cid!r} is not 1-32 letters/digits from a letter")


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the venue reports it. ``fee`` settle currency (None: not reported)."""

    id: str
    client_order_id: str | None
    symbol: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    status: OrderStatus
    reduce_only: bool
    fee: Decimal | None
    timestamp_ms: int | None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def signed_filled(self) -> Decimal:
        """The filled amount as a change of the signed position size."""
        return self.side.sign * self.filled


@runtime_checkable
class Clock(Protocol):
    """Time in integer milliseconds since the Unix epoch (UTC)."""

    def now_ms(self) -> int: ...


class ManualClock:
    """A clock that moves only when told to (tests, simulations, replay)."""

    def __init__(self, now_ms: int) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise ValueError(f"time goes forward: {now_ms} < {self._now}")
        self._now = now_ms

    def advance(self, ms: int) -> None:
        self.set(self._now + ms)


class SystemClock:
    """The machine's wall clock. Wired in by the CLI and jobs, never read inside adapters."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class OrderJournal(Protocol):
    """Where a hedge's orders are recorded, each step in one database transaction that first
    checks this process may still act (``lpbot run``'s instance lock: its fencing token).

    ``reserve`` records an order's client id before it is sent: when it raises (``LockLost``),
    nothing is sent; ``check`` only asks, before the venue's other writes (margin). ``book``
    records a final order and its fill; once per client id, so booking again (a resumed
    order) changes nothing."""

    def reserve(self, request: OrderRequest, reason: str) -> None: ...

    def book(self, order: Order) -> None: ...

    def check(self) -> None:
        """Raise (``LockLost``) unless this process may still act: before a venue write that
        is not an order (adding margin)."""
        ...


@runtime_checkable
class Exchange(Protocol):
    """A USD-margined perpetual venue, one-way position mode, isolated margin.

    Every method may raise ``RetryLater``, ``Refused`` or ``NeedsAttention`` (see module).
    """

    @property
    def name(self) -> str: ...

    def load_market(self, symbol: str) -> MarketInfo:
        """The trading rules of ``symbol`` (unified, e.g. ``BTC/USDT:USDT``)."""
        ...

    def fetch_position(self, symbol: str) -> PerpPosition:
        """The open position (``PerpPosition.flat`` when there is none)."""
        ...

    def fetch_balance(self, currency: str) -> Balance: ...

    def fetch_mark_price(self, symbol: str) -> Decimal: ...

    def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """The rate of the next settlement as currently predicted."""
        ...

    def fetch_funding_rate_history(self, symbol: str, since_ms: int) -> list[FundingRate]:
        """Settled rates at or after ``since_ms``, oldest first."""
        ...

    def fetch_funding_payments(self, symbol: str, since_ms: int) -> list[FundingPayment]:
        """This account's funding settlements at or after ``since_ms``, oldest first."""
        ...

    def fetch_margin_tiers(self, symbol: str) -> tuple[MarginTier, ...]:
        """The venue's maintenance-margin tiers of ``symbol``, ascending by notional."""
        ...

    def prepare_isolated(self, symbol: str, leverage: int) -> tuple[str, ...]:
        """Make ``symbol`` one-way position mode, isolated margin, at ``leverage``: read what the
        venue has and change only what differs ("already set" / "not modified" answers are no
        change). Returns what was changed (empty: nothing). Raises ``NeedsAttention`` when the
        account is in hedge (two-sided) mode with positions or orders open."""
        ...

    def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move ``amount`` settle currency from the free balance into the position's isolated
        margin (``Refused`` when there is no position or not enough free balance)."""
        ...

    def create_order(self, request: OrderRequest) -> Order: ...

    def cancel_order(self, symbol: str, order_id: str) -> Order: ...

    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None:
        """The order by venue id or client order id; None when the venue has no such order."""
        ...


def settlement_times(start_ms: int, end_ms: int, interval_hours: int = 8) -> list[int]:
    """Funding settlements in ``(start_ms, end_ms]``: multiples of ``interval_hours`` since the
    epoch, i.e. 00:00, 08:00 and 16:00 UTC for 8 h (Binance, OKX and Bybit defaults)."""
    step = interval_hours * HOUR_MS
    first = (start_ms // step + 1) * step
    return list(range(first, end_ms + 1, step))


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """A float from analytics or a library as the ``Decimal`` of its shortest repr (no binary
    expansion noise: 0.1 -> Decimal('0.1'))."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)
