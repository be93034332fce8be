"""A paper USD-M perpetual venue: simulated book, fees, funding, isolated margin, liquidation.

``PaperExchange`` implements ``Exchange`` for one symbol and is lpbot's default venue. It reads
no wall clock and no network: time comes from the injected ``Clock``, the price from the injected
``reference_price`` callable (the pool price, or any feed), randomness from ``seed``. Given the
same calls, clock and prices it produces the same fills, fees and funding.

Book model (``BookModel``): around the reference price ``m`` each side has ``levels`` levels; level
``k`` (0-based) sits at ``m * (1 +/- (half_spread_bps + k * level_bps) / 10_000)``, rounded away
from the mid to the price tick, and holds ``depth_per_level`` base tokens times a factor drawn
uniformly from ``[1 - depth_jitter, 1 + depth_jitter]`` (seeded per fill). A market order walks
the levels: slippage grows linearly with size. What the book cannot fill expires (a partial fill,
status ``expired``). The book refills after every order (no impact carried between orders).

Limit orders take liquidity up to their price (taker fee); the rest rests and fills whole at its
price (maker fee) once the reference price reaches it. Margin is checked when an order fills,
not reserved while it rests.

Margin: isolated, one-way mode. Opening posts ``notional / leverage`` from the free balance to the
position's isolated wallet; reducing releases it pro rata and books the realised PnL to the free
balance; fees are paid from the free balance. An order whose fills would leave the free balance
negative is rejected whole ("Margin is insufficient", Binance -2019). ``add_margin`` moves free
balance into the isolated wallet. The liquidation price and maintenance margin follow
``lpbot.hedge.margin`` with the market's maintenance tiers (``PaperMarketSpec.margin_tiers``).
When the mark reaches the liquidation price the position is closed and its isolated wallet is
lost. The account is in one-way position mode unless ``PaperState.hedge_mode`` says otherwise;
``prepare_isolated`` switches it only while flat, and sets leverage only when it differs.

Client order ids: like Binance and OKX, a duplicate is refused only while the first order is
open; a closed order's id can be sent again (and then names two orders: the newest is found).

Funding: at every 8 h settlement (00:00, 08:00, 16:00 UTC) ``-size * mark * rate`` is added to
the isolated wallet (a short receives a positive rate), with the mark *at the settlement*: from
``price_at(t)`` when given (a price history), else the last mark the venue saw at or before the
settlement (the price stays where it was last seen until it is seen again).

Market activity (``MarketModel``, float, analytics), so that the market regime has open
interest and liquidations on the devnet: at every price the venue sees, a move of ``x`` % in
log-price since the last one liquidates ``liquidated_per_pct * x`` of the open interest (at most
half), on top of a background of ``background_base_per_hour``; the open interest loses what was
liquidated and recovers towards ``open_interest_base`` with ``recovery_halflife_hours``. Both
are kept for ``keep_hours`` (a row a minute at most) and read as USD at the mark, the open
interest also in base tokens (``fetch_open_interest``, ``fetch_open_interest_history``,
``fetch_liquidations``). Funding is the configured series.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lpbot.errors import ConfigError, NeedsAttention, Refused
from lpbot.hedge import margin
from lpbot.hedge.base import (
    Balance,
    Clock,
    FundingPayment,
    FundingRate,
    MarketInfo,
    Order,
    OrderExists,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    PerpPosition,
    settlement_times,
)
from lpbot.hedge.stress import Liquidation, OpenInterest

__all__ = [
    "PAPER_MARKETS",
    "BookModel",
    "FundingSeries",
    "PaperAccount",
    "PaperExchange",
    "PaperMarketSpec",
    "PaperRejection",
    "RejectCode",
]

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
_BPS = Decimal(10_000)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


TierRow = tuple[Decimal, Decimal, Decimal, Decimal]  # floor, cap, MMR, max leverage

# Tables in the shape of Binance's leverage brackets (notional floor and cap in USDT, maintenance
# margin rate, maximum leverage); the maintenance amounts follow (``margin.tiers_from_rates``).
BTC_TIERS: tuple[TierRow, ...] = tuple(
    (Decimal(a), Decimal(b), Decimal(m), Decimal(lev))
    for a, b, m, lev in (
        (0, 300_000, "0.004", 125),
        (300_000, 800_000, "0.005", 100),
        (800_000, 3_000_000, "0.0065", 75),
        (3_000_000, 12_000_000, "0.01", 50),
        (12_000_000, 70_000_000, "0.02", 25),
        (70_000_000, 1_000_000_000, "0.05", 10),
    )
)
ETH_TIERS: tuple[TierRow, ...] = tuple(
    (Decimal(a), Decimal(b), Decimal(m), Decimal(lev))
    for a, b, m, lev in (
        (0, 100_000, "0.005", 100),
        (100_000, 500_000, "0.0065", 75),
        (500_000, 1_000_000, "0.01", 50),
        (1_000_000, 10_000_000, "0.02", 25),
        (10_000_000, 1_000_000_000, "0.05", 10),
    )
)


class MarketModel(_Frozen):
    """The paper market's open interest and liquidations, driven by the price (float,
    analytics; module docstring, "Market activity")."""

    open_interest_base: float = Field(default=100_000.0, gt=0)  # base tokens, at rest
    liquidated_per_pct: float = Field(default=0.004, ge=0, le=0.1)  # of the OI, per 1 % move
    background_base_per_hour: float = Field(default=50.0, ge=0)  # liquidations with no move
    recovery_halflife_hours: float = Field(default=6.0, gt=0)
    keep_hours: float = Field(default=24.0, gt=0)  # history kept for reads


class PaperMarketSpec(_Frozen):
    """A perpetual's rules. Defaults: Binance USD-M BTCUSDT (step and minimum 0.001 BTC, minimum
    notional 100 USDT, tick 0.1, VIP 0 fees 0.05 % taker / 0.02 % maker, maintenance tiers from
    0.4 % under 300,000 USDT of notional)."""

    symbol: str = "BTC/USDT:USDT"
    base: str = "BTC"
    settle: str = "USDT"
    amount_step: Decimal = Decimal("0.001")
    min_amount: Decimal = Decimal("0.001")
    min_notional: Decimal = Decimal(100)
    price_tick: Decimal = Decimal("0.1")
    taker_fee: Decimal = Decimal("0.0005")
    maker_fee: Decimal = Decimal("0.0002")
    max_leverage: int = 125
    margin_tiers: tuple[TierRow, ...] = BTC_TIERS
    market_model: MarketModel = MarketModel()

    @model_validator(mode="before")
    @classmethod
    def _one_rate(cls, data: Any) -> Any:
        """Accounts saved with one maintenance rate and amount: that rate as a single tier."""
        if isinstance(data, dict) and "maintenance_margin_rate" in data:
            data = dict(data)
            rate = Decimal(str(data.pop("maintenance_margin_rate")))
            data.pop("maintenance_amount", None)
            lev = Decimal(str(data.get("max_leverage", 125)))
            data["margin_tiers"] = ((_ZERO, Decimal(10) ** 12, rate, lev),)
        return data

    def tiers(self) -> tuple[margin.MarginTier, ...]:
        return margin.tiers_from_rates(self.margin_tiers)

    def market_info(self) -> MarketInfo:
        return MarketInfo(
            symbol=self.symbol,
            base=self.base,
            settle=self.settle,
            contract_size=Decimal(1),
            amount_step=self.amount_step,
            min_amount=self.min_amount,
            min_notional=self.min_notional,
            price_tick=self.price_tick,
            taker_fee=self.taker_fee,
            maker_fee=self.maker_fee,
        )


class BookModel(_Frozen):
    """The simulated book (module docstring). Depth in base tokens per level per side."""

    half_spread_bps: Decimal = Decimal("0.5")
    level_bps: Decimal = Decimal(1)
    depth_per_level: Decimal = Decimal(2)
    levels: int = Field(default=50, ge=1)
    depth_jitter: Decimal = Field(default=Decimal("0.25"), ge=0, lt=1)


PAPER_MARKETS: dict[str, tuple[PaperMarketSpec, BookModel]] = {
    "BTC/USDT:USDT": (PaperMarketSpec(), BookModel()),
    "ETH/USDT:USDT": (
        PaperMarketSpec(
            symbol="ETH/USDT:USDT",
            base="ETH",
            min_notional=Decimal(20),
            price_tick=Decimal("0.01"),
            margin_tiers=ETH_TIERS,
        ),
        BookModel(depth_per_level=Decimal(40)),
    ),
}


class FundingSeries(_Frozen):
    """Funding rate per settlement as a step function of time: the rate at ``t`` is that of the
    last point at or before ``t`` (the first point's before it). Default: 0.01 % per 8 h, the
    rate Binance's formula gives when the premium is small."""

    points: tuple[tuple[int, Decimal], ...] = ((0, Decimal("0.0001")),)

    def model_post_init(self, _context: object) -> None:
        if not self.points:
            raise ValueError("a funding series needs at least one point")
        times = [t for t, _ in self.points]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("funding points must have strictly increasing times")

    @classmethod
    def constant(cls, rate: Decimal) -> FundingSeries:
        return cls(points=((0, rate),))

    def rate_at(self, timestamp_ms: int) -> Decimal:
        rate = self.points[0][1]
        for t, r in self.points:
            if t > timestamp_ms:
                break
            rate = r
        return rate


class RejectCode(StrEnum):
    """Why the paper venue refused a request (the stand-in maps these to Binance codes)."""

    BAD_SYMBOL = "bad_symbol"
    LOT_SIZE = "lot_size"
    MIN_NOTIONAL = "min_notional"
    MARGIN_INSUFFICIENT = "margin_insufficient"
    REDUCE_ONLY_REJECTED = "reduce_only_rejected"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    UNKNOWN_ORDER = "unknown_order"
    BAD_LEVERAGE = "bad_leverage"
    NO_LIQUIDITY = "no_liquidity"


class PaperRejection(Refused):
    """The paper venue refused the request; nothing changed."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(f"paper: {message}")
        self.code = code


class PaperOrderExists(PaperRejection, OrderExists):
    """An open order has this client order id (``OrderExists``)."""


class PaperOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    client_order_id: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    price: Decimal | None
    reduce_only: bool
    filled: Decimal = _ZERO
    cost: Decimal = _ZERO  # sum of price * quantity filled
    fee: Decimal = _ZERO
    status: OrderStatus = OrderStatus.OPEN
    created_ms: int
    updated_ms: int

    @property
    def average_price(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None


class PaperTrade(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    order_id: str
    side: OrderSide
    price: Decimal
    amount: Decimal
    fee: Decimal
    realized_pnl: Decimal
    maker: bool
    timestamp_ms: int


class PaperFunding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    timestamp_ms: int
    rate: Decimal
    mark: Decimal
    amount: Decimal  # received (+) or paid (-)


class PaperLiquidation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp_ms: int
    size: Decimal
    price: Decimal
    lost_margin: Decimal


class PaperMarketActivity(BaseModel):
    """The paper market's open interest now and its recent history, and the liquidations of
    the last ``MarketModel.keep_hours`` (USD, float): ``(timestamp_ms, usd)`` rows, the open
    interest's ``(timestamp_ms, usd, base)`` (an account saved before it kept the base: two)."""

    model_config = ConfigDict(extra="forbid")

    open_interest_base: float
    mark: float
    timestamp_ms: int
    open_interest: list[tuple[int, float, float] | tuple[int, float]] = Field(default_factory=list)
    liquidations: list[tuple[int, float]] = Field(default_factory=list)


class PaperState(BaseModel):
    """The account: free balance, the one position, orders, fills and funding (mutable)."""

    model_config = ConfigDict(extra="forbid")

    cash: Decimal
    size: Decimal = _ZERO
    entry_price: Decimal = _ZERO
    isolated_margin: Decimal = _ZERO
    leverage: int = 20  # Binance's default for a new symbol
    margin_mode: str = "isolated"  # the paper venue models isolated margin only
    hedge_mode: bool = False
    last_mark: Decimal | None = None  # the mark last seen, for settlements until the next touch
    realized_pnl: Decimal = _ZERO
    fees_paid: Decimal = _ZERO
    funding_received: Decimal = _ZERO
    next_order_no: int = 1
    book_draws: int = 0
    settled_until_ms: int
    orders: list[PaperOrder] = Field(default_factory=list)
    trades: list[PaperTrade] = Field(default_factory=list)
    funding: list[PaperFunding] = Field(default_factory=list)
    liquidations: list[PaperLiquidation] = Field(default_factory=list)
    market: PaperMarketActivity | None = None  # the market's open interest and liquidations


class PaperAccount(BaseModel):
    """Everything a paper venue needs to continue where it stopped (persisted as JSON)."""

    model_config = ConfigDict(extra="forbid")

    spec: PaperMarketSpec
    book: BookModel
    funding: FundingSeries
    seed: int
    state: PaperState


def book_levels(
    reference: Decimal,
    side: OrderSide,
    book: BookModel,
    tick: Decimal,
    factors: list[Decimal],
) -> list[tuple[Decimal, Decimal]]:
    """The levels a taker ``side`` order meets: (price, quantity), best first (module model)."""
    levels = []
    for k in range(book.levels):
        offset = (book.half_spread_bps + k * book.level_bps) / _BPS
        if side is OrderSide.BUY:
            raw = reference * (1 + offset)
            price = (raw / tick).to_integral_value(rounding=ROUND_CEILING) * tick
        else:
            raw = reference * (1 - offset)
            price = (raw / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
        levels.append((price, book.depth_per_level * factors[k]))
    return levels


def walk(
    levels: list[tuple[Decimal, Decimal]],
    side: OrderSide,
    amount: Decimal,
    step: Decimal,
    limit_price: Decimal | None = None,
) -> list[tuple[Decimal, Decimal]]:
    """Fills of ``amount`` against ``levels`` (best first), each a multiple of ``step``, not
    beyond ``limit_price``."""
    fills = []
    left = amount
    for price, depth in levels:
        if left <= 0:
            break
        if limit_price is not None and (
            (side is OrderSide.BUY and price > limit_price)
            or (side is OrderSide.SELL and price < limit_price)
        ):
            break
        qty = min(left, (depth / step).to_integral_value(rounding=ROUND_FLOOR) * step)
        if qty > 0:
            fills.append((price, qty))
            left -= qty
    return fills


@dataclass(slots=True)
class _Ledger:
    """The account's numbers while an order is tried, before they are committed."""

    cash: Decimal
    size: Decimal
    entry_price: Decimal
    isolated_margin: Decimal
    leverage: int
    realized_pnl: Decimal
    fees_paid: Decimal

    @classmethod
    def of(cls, s: PaperState) -> _Ledger:
        return cls(
            s.cash,
            s.size,
            s.entry_price,
            s.isolated_margin,
            s.leverage,
            s.realized_pnl,
            s.fees_paid,
        )


@dataclass(frozen=True, slots=True)
class _Fill:
    price: Decimal
    amount: Decimal
    fee: Decimal
    realized_pnl: Decimal
    maker: bool


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


class PaperExchange:
    """The paper venue for one symbol (module docstring)."""

    def __init__(
        self,
        *,
        reference_price: Callable[[], Decimal],
        clock: Clock,
        spec: PaperMarketSpec | None = None,
        book: BookModel | None = None,
        funding: FundingSeries | None = None,
        seed: int = 0,
        initial_balance: Decimal = Decimal(100_000),
        state: PaperState | None = None,
        price_at: Callable[[int], Decimal] | None = None,
    ) -> None:
        if spec is None:
            spec = PaperMarketSpec()
        if book is None:
            book = PAPER_MARKETS.get(spec.symbol, (spec, BookModel()))[1]
        self.spec = spec
        self.book = book
        self.funding = funding if funding is not None else FundingSeries()
        self.seed = seed
        self._reference = reference_price
        self._price_at = price_at
        self._clock = clock
        self._tiers = spec.tiers()
        self._state = state or PaperState(cash=initial_balance, settled_until_ms=clock.now_ms())
        self._market = spec.market_info()
        # called with the account after every order, cancel and margin change (persistence)
        self.on_change: Callable[[PaperAccount], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.account())

    # ----------------------------------------------------------------------------- persistence

    def account(self) -> PaperAccount:
        """A copy of everything needed to resume (``from_account``)."""
        return PaperAccount(
            spec=self.spec,
            book=self.book,
            funding=self.funding,
            seed=self.seed,
            state=self._state.model_copy(deep=True),
        )

    def restore(self, account: PaperAccount) -> None:
        """Continue from ``account`` in place (another process may have traded since)."""
        if account.spec.symbol != self.spec.symbol:
            raise ConfigError(
                f"the paper account is for {account.spec.symbol}, not {self.spec.symbol}"
            )
        self.spec, self.book, self.funding, self.seed = (
            account.spec,
            account.book,
            account.funding,
            account.seed,
        )
        self._tiers = self.spec.tiers()
        self._market = self.spec.market_info()
        self._state = account.state.model_copy(deep=True)

    @classmethod
    def from_account(
        cls,
        account: PaperAccount,
        *,
        reference_price: Callable[[], Decimal],
        clock: Clock,
        price_at: Callable[[int], Decimal] | None = None,
    ) -> PaperExchange:
        return cls(
            reference_price=reference_price,
            clock=clock,
            price_at=price_at,
            spec=account.spec,
            book=account.book,
            funding=account.funding,
            seed=account.seed,
            state=account.state.model_copy(deep=True),
        )

    def __repr__(self) -> str:
        return f"PaperExchange({self.spec.symbol}, seed={self.seed})"

    # ----------------------------------------------------------------------------- Exchange

    @property
    def name(self) -> str:
        return "paper"

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def state(self) -> PaperState:
        """A read-only view for reports and tests (a copy)."""
        return self._state.model_copy(deep=True)

    def load_market(self, symbol: str) -> MarketInfo:
        self._check_symbol(symbol)
        return self._market

    def fetch_position(self, symbol: str) -> PerpPosition:
        self._check_symbol(symbol)
        mark = self._touch()
        s = self._state
        if s.size == 0:
            return PerpPosition.flat(symbol, mark)
        return PerpPosition(
            symbol=symbol,
            size=s.size,
            entry_price=s.entry_price,
            mark_price=mark,
            unrealized_pnl=s.size * (mark - s.entry_price),
            isolated_margin=s.isolated_margin,
            liquidation_price=self._liquidation_price(),
            leverage=Decimal(s.leverage),
        )

    def fetch_balance(self, currency: str) -> Balance:
        mark = self._touch()
        s = self._state
        if currency != self.spec.settle:
            return Balance(currency, _ZERO, _ZERO, _ZERO)
        upnl = s.size * (mark - s.entry_price)
        return Balance(currency, s.cash + s.isolated_margin + upnl, s.cash, s.isolated_margin)

    def fetch_mark_price(self, symbol: str) -> Decimal:
        self._check_symbol(symbol)
        return self._touch()

    def fetch_funding_rate(self, symbol: str) -> FundingRate:
        self._check_symbol(symbol)
        mark = self._touch()
        now = self._clock.now_ms()
        nxt = settlement_times(now, now + 8 * 3_600_000)[0]
        return FundingRate(symbol, self.funding.rate_at(nxt), now, mark, nxt)

    def fetch_funding_rate_history(self, symbol: str, since_ms: int) -> list[FundingRate]:
        self._check_symbol(symbol)
        self._touch()
        now = self._clock.now_ms()
        return [
            FundingRate(symbol, self.funding.rate_at(t), t)
            for t in settlement_times(since_ms - 1, now)
        ]

    def fetch_funding_payments(self, symbol: str, since_ms: int) -> list[FundingPayment]:
        self._check_symbol(symbol)
        self._touch()
        return [
            FundingPayment(symbol, f.amount, f.timestamp_ms, f.id)
            for f in self._state.funding
            if f.timestamp_ms >= since_ms
        ]

    def fetch_margin_tiers(self, symbol: str) -> tuple[margin.MarginTier, ...]:
        self._check_symbol(symbol)
        return self._tiers

    def prepare_isolated(self, symbol: str, leverage: int) -> tuple[str, ...]:
        self._check_symbol(symbol)
        self._touch()
        s = self._state
        if not 1 <= leverage <= self.spec.max_leverage:
            raise PaperRejection(
                RejectCode.BAD_LEVERAGE, f"leverage {leverage} not in [1, {self.spec.max_leverage}]"
            )
        changed: list[str] = []
        busy = s.size != 0 or any(o.status is OrderStatus.OPEN for o in s.orders)
        if s.hedge_mode:
            if busy:
                raise NeedsAttention(
                    "paper: the account is in hedge position mode with a position or orders "
                    "open; close them or switch to one-way mode by hand"
                )
            s.hedge_mode = False
            changed.append("position mode: one-way")
        if s.margin_mode != "isolated":
            if busy:
                raise PaperRejection(
                    RejectCode.BAD_LEVERAGE, "margin type cannot be changed with a position open"
                )
            s.margin_mode = "isolated"
            changed.append("margin mode: isolated")
        if s.leverage != leverage:
            self.set_leverage(symbol, leverage)
            changed.append(f"leverage: {leverage}")
        if changed:
            self._changed()
        return tuple(changed)

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """The venue operation behind ``prepare_isolated``'s leverage (stand-ins call it)."""
        self._check_symbol(symbol)
        if not 1 <= leverage <= self.spec.max_leverage:
            raise PaperRejection(
                RejectCode.BAD_LEVERAGE, f"leverage {leverage} not in [1, {self.spec.max_leverage}]"
            )
        self._state.leverage = leverage

    def add_margin(self, symbol: str, amount: Decimal) -> None:
        self._check_symbol(symbol)
        self._touch()
        s = self._state
        if not amount > 0:
            raise PaperRejection(RejectCode.MARGIN_INSUFFICIENT, f"margin {amount} must be > 0")
        if s.size == 0:
            raise PaperRejection(RejectCode.REDUCE_ONLY_REJECTED, "no position to add margin to")
        if amount > s.cash:
            raise PaperRejection(RejectCode.MARGIN_INSUFFICIENT, "Margin is insufficient.")
        s.cash -= amount
        s.isolated_margin += amount
        self._changed()

    def create_order(self, request: OrderRequest) -> Order:
        self._check_symbol(request.symbol)
        mark = self._touch()
        s = self._state
        if any(
            o.client_order_id == request.client_order_id and o.status is OrderStatus.OPEN
            for o in s.orders
        ):
            raise PaperOrderExists(
                RejectCode.DUPLICATE_CLIENT_ID,
                f"client order id {request.client_order_id} is duplicated",
            )
        if not self._market.is_valid_amount(request.amount):
            raise PaperRejection(
                RejectCode.LOT_SIZE,
                f"amount {request.amount} is not a multiple of {self.spec.amount_step} "
                f"of at least {self.spec.min_amount}",
            )
        cap = request.amount
        if request.reduce_only:
            if s.size == 0 or request.side.sign == _sign(s.size):
                raise PaperRejection(
                    RejectCode.REDUCE_ONLY_REJECTED, "reduce-only order would not reduce"
                )
            cap = min(cap, abs(s.size))
        elif request.amount * mark < self.spec.min_notional:
            raise PaperRejection(
                RejectCode.MIN_NOTIONAL,
                f"order notional must be no smaller than {self.spec.min_notional}",
            )
        now = self._clock.now_ms()
        levels = book_levels(mark, request.side, self.book, self.spec.price_tick, self._factors())
        fills = walk(levels, request.side, cap, self.spec.amount_step, request.price)
        if not fills and request.type is OrderType.MARKET:
            raise PaperRejection(RejectCode.NO_LIQUIDITY, "no liquidity to fill a market order")
        order = PaperOrder(
            id=str(s.next_order_no),
            client_order_id=request.client_order_id,
            side=request.side,
            type=request.type,
            amount=request.amount,
            price=request.price,
            reduce_only=request.reduce_only,
            created_ms=now,
            updated_ms=now,
        )
        ledger = _Ledger.of(s)
        trades = [self._fill(ledger, request.side, p, q, maker=False) for p, q in fills]
        if ledger.cash < 0:
            raise PaperRejection(RejectCode.MARGIN_INSUFFICIENT, "Margin is insufficient.")
        s.next_order_no += 1
        s.orders.append(order)
        self._commit(ledger, order, trades, now)
        if order.filled == order.amount:
            order.status = OrderStatus.CLOSED
        elif request.type is OrderType.MARKET or order.filled == cap:
            order.status = OrderStatus.EXPIRED  # the book (or the reduce-only cap) ran out
        log.info(
            "paper %s %s %s: filled %s at %s (fee %s)",
            order.id,
            order.side.value,
            order.amount,
            order.filled,
            order.average_price,
            order.fee,
        )
        self._changed()
        return self._to_order(order)

    def cancel_order(self, symbol: str, order_id: str) -> Order:
        self._check_symbol(symbol)
        self._touch()
        order = next((o for o in self._state.orders if o.id == order_id), None)
        if order is None or order.status.is_final:
            raise PaperRejection(RejectCode.UNKNOWN_ORDER, f"unknown open order {order_id}")
        order.status = OrderStatus.CANCELED
        order.updated_ms = self._clock.now_ms()
        self._changed()
        return self._to_order(order)

    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None:
        self._check_symbol(symbol)
        if (order_id is None) == (client_order_id is None):
            raise ValueError("give exactly one of order_id and client_order_id")
        self._touch()
        for o in reversed(self._state.orders):
            if (order_id is not None and o.id == order_id) or (
                client_order_id is not None and o.client_order_id == client_order_id
            ):
                return self._to_order(o)
        return None

    # ----------------------------------------------------------------------------- internals

    def _check_symbol(self, symbol: str) -> None:
        if symbol != self.spec.symbol:
            raise PaperRejection(
                RejectCode.BAD_SYMBOL,
                f"this paper venue trades only {self.spec.symbol}, not {symbol}",
            )

    def fetch_open_interest(self, symbol: str) -> OpenInterest | None:
        """The market's open interest now (module docstring, "Market activity")."""
        self._check_symbol(symbol)
        self._touch()
        m = self._state.market
        assert m is not None
        base = m.open_interest_base
        return OpenInterest(symbol, base * m.mark, m.timestamp_ms, base)

    def fetch_open_interest_history(self, symbol: str, since_ms: int) -> list[OpenInterest] | None:
        """The open interest at each price the venue saw since ``since_ms`` (the last one before
        it first, when kept)."""
        self._check_symbol(symbol)
        self._touch()
        m = self._state.market
        assert m is not None
        rows = m.open_interest
        first = max((i for i, row in enumerate(rows) if row[0] <= since_ms), default=0)
        return [
            OpenInterest(symbol, row[1], row[0], row[2] if len(row) > 2 else None)
            for row in rows[first:]
        ]

    def fetch_liquidations(self, symbol: str, since_ms: int) -> list[Liquidation] | None:
        """The market's liquidations since ``since_ms`` (USD), one row per price seen."""
        self._check_symbol(symbol)
        self._touch()
        m = self._state.market
        assert m is not None
        return [Liquidation(symbol, usd, t) for t, usd in m.liquidations if t > since_ms]

    def _market_step(self, mark: Decimal, now: int) -> None:
        """Move the market's open interest and liquidations to ``now`` at ``mark`` (module
        docstring, "Market activity")."""
        model = self.spec.market_model
        s = self._state
        price = float(mark)
        m = s.market
        if m is None:
            oi = model.open_interest_base
            s.market = PaperMarketActivity(
                open_interest_base=oi, mark=price, timestamp_ms=now,
                open_interest=[(now, oi * price, oi)],
            )  # fmt: skip
            return
        if now <= m.timestamp_ms:
            return
        hours = (now - m.timestamp_ms) / 3_600_000
        move_pct = abs(math.log(price / m.mark)) * 100.0
        flushed = min(m.open_interest_base * model.liquidated_per_pct * move_pct,
                      0.5 * m.open_interest_base)  # fmt: skip
        oi = m.open_interest_base - flushed
        keep = 2.0 ** (-hours / model.recovery_halflife_hours)
        oi += (model.open_interest_base - oi) * (1.0 - keep)
        liquidated = (flushed + model.background_base_per_hour * hours) * price
        cutoff = now - int(model.keep_hours * 3_600_000)
        history = [row for row in m.open_interest if row[0] >= cutoff] or m.open_interest[-1:]
        liquidations = [row for row in m.liquidations if row[0] >= cutoff]
        # one row a minute at most (the account is persisted): a later price in the same
        # minute replaces the open interest and adds to the liquidations
        if len(history) > 1 and history[-1][0] // 60_000 == now // 60_000:
            history.pop()
        if liquidations and liquidations[-1][0] // 60_000 == now // 60_000:
            liquidated += liquidations.pop()[1]
        m.open_interest = [*history, (now, oi * price, oi)]
        m.liquidations = [*liquidations, (now, liquidated)]
        m.open_interest_base, m.mark, m.timestamp_ms = oi, price, now

    def _factors(self) -> list[Decimal]:
        """Depth factors of the book for the next order, drawn from the seed and a counter."""
        s = self._state
        rng = random.Random(f"{self.seed}:{s.book_draws}")
        s.book_draws += 1
        j = float(self.book.depth_jitter)
        return [
            Decimal(repr(round(1 + j * (2 * rng.random() - 1), 4))) for _ in range(self.book.levels)
        ]

    def _liquidation_price(self, state: PaperState | None = None) -> Decimal | None:
        s = state or self._state
        return margin.liquidation_price_tiered(
            s.size, s.entry_price, s.isolated_margin, self._tiers
        )

    def _touch(self) -> Decimal:
        """Bring the account to the clock's present at the reference price: settle funding, fill
        resting orders, liquidate. Returns the mark."""
        mark = Decimal(self._reference())
        if not mark > 0:
            raise ValueError(f"reference price must be > 0, got {mark}")
        now = self._clock.now_ms()
        s = self._state
        for t in settlement_times(s.settled_until_ms, now):
            rate = self.funding.rate_at(t)
            if s.size != 0:
                at = self._settlement_mark(t, now, mark)
                amount = margin.funding_payment(s.size, at, rate)
                s.isolated_margin += amount
                s.funding_received += amount
                s.funding.append(
                    PaperFunding(id=f"F{t}", timestamp_ms=t, rate=rate, mark=at, amount=amount)
                )
                # a settlement can liquidate: check at its own mark before going on
                self._check_liquidation(at, t)
        s.settled_until_ms = max(s.settled_until_ms, now)
        s.last_mark = mark
        self._market_step(mark, now)
        self._fill_resting(mark, now)
        self._check_liquidation(mark, now)
        return mark

    def _settlement_mark(self, t: int, now: int, mark: Decimal) -> Decimal:
        """The mark at settlement ``t`` (module docstring)."""
        if self._price_at is not None:
            return Decimal(self._price_at(t))
        if t == now or self._state.last_mark is None:
            return mark
        return self._state.last_mark

    def _fill_resting(self, mark: Decimal, now: int) -> None:
        s = self._state
        for order in s.orders:
            if order.status is not OrderStatus.OPEN or order.price is None:
                continue
            crossed = (order.side is OrderSide.BUY and mark <= order.price) or (
                order.side is OrderSide.SELL and mark >= order.price
            )
            if not crossed:
                continue
            qty = order.amount - order.filled
            if order.reduce_only:
                if s.size == 0 or order.side.sign == _sign(s.size):
                    order.status = OrderStatus.EXPIRED
                    order.updated_ms = now
                    continue
                qty = min(qty, abs(s.size))
            ledger = _Ledger.of(s)
            trade = self._fill(ledger, order.side, order.price, qty, maker=True)
            if ledger.cash < 0:
                order.status = OrderStatus.EXPIRED
                order.updated_ms = now
                continue
            self._commit(ledger, order, [trade], now)
            order.status = (
                OrderStatus.CLOSED if order.filled == order.amount else OrderStatus.EXPIRED
            )

    def _check_liquidation(self, mark: Decimal, now: int) -> None:
        s = self._state
        if s.size == 0:
            return
        balance = margin.margin_balance(s.size, s.entry_price, mark, s.isolated_margin)
        needed = margin.maintenance_margin_tiered(s.size, mark, self._tiers)
        if balance > needed:
            return
        log.warning("paper position of %s liquidated at mark %s", s.size, mark)
        s.liquidations.append(
            PaperLiquidation(
                timestamp_ms=now, size=s.size, price=mark, lost_margin=s.isolated_margin
            )
        )
        s.realized_pnl -= s.isolated_margin
        s.size = s.entry_price = s.isolated_margin = _ZERO
        for order in s.orders:
            if order.status is OrderStatus.OPEN and order.reduce_only:
                order.status = OrderStatus.EXPIRED
                order.updated_ms = now

    def _fill(
        self, ledger: _Ledger, side: OrderSide, price: Decimal, qty: Decimal, *, maker: bool
    ) -> _Fill:
        """Apply one fill to ``ledger`` (module margin rules); return what the trade was."""
        fee = qty * price * (self.spec.maker_fee if maker else self.spec.taker_fee)
        sign = side.sign
        realized = _ZERO
        opening = qty
        if ledger.size != 0 and sign != _sign(ledger.size):
            closing = min(qty, abs(ledger.size))
            realized = closing * (price - ledger.entry_price) * _sign(ledger.size)
            released = ledger.isolated_margin * closing / abs(ledger.size)
            ledger.isolated_margin -= released
            ledger.cash += released + realized
            ledger.size += sign * closing
            if ledger.size == 0:
                ledger.cash += ledger.isolated_margin  # funding left in the wallet goes back
                ledger.isolated_margin = ledger.entry_price = _ZERO
            opening = qty - closing
        if opening > 0:
            posted = margin.initial_margin(opening * price, Decimal(ledger.leverage))
            new_abs = abs(ledger.size) + opening
            ledger.entry_price = (abs(ledger.size) * ledger.entry_price + opening * price) / new_abs
            ledger.size += sign * opening
            ledger.isolated_margin += posted
            ledger.cash -= posted
        ledger.cash -= fee
        ledger.realized_pnl += realized
        ledger.fees_paid += fee
        return _Fill(price, qty, fee, realized, maker)

    def _commit(self, ledger: _Ledger, order: PaperOrder, fills: list[_Fill], now: int) -> None:
        s = self._state
        s.cash, s.size, s.entry_price = ledger.cash, ledger.size, ledger.entry_price
        s.isolated_margin, s.realized_pnl = ledger.isolated_margin, ledger.realized_pnl
        s.fees_paid = ledger.fees_paid
        for f in fills:
            order.filled += f.amount
            order.cost += f.amount * f.price
            order.fee += f.fee
            s.trades.append(
                PaperTrade(
                    id=len(s.trades) + 1,
                    order_id=order.id,
                    side=order.side,
                    price=f.price,
                    amount=f.amount,
                    fee=f.fee,
                    realized_pnl=f.realized_pnl,
                    maker=f.maker,
                    timestamp_ms=now,
                )
            )
        order.updated_ms = now

    def _to_order(self, o: PaperOrder) -> Order:
        return Order(
            id=o.id,
            client_order_id=o.client_order_id,
            symbol=self.spec.symbol,
            side=o.side,
            type=o.type,
            amount=o.amount,
            filled=o.filled,
            average_price=o.average_price,
            status=o.status,
            reduce_only=o.reduce_only,
            fee=o.fee,
            timestamp_ms=o.created_ms,
        )
