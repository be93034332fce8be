"""Hand-written fakes for the hedge tests: a paper venue factory, a venue with scripted faults."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lpbot.errors import LpbotError
from lpbot.hedge.base import (
    Balance,
    FundingPayment,
    FundingRate,
    ManualClock,
    MarginTier,
    MarketInfo,
    Order,
    OrderRequest,
    PerpPosition,
)
from lpbot.hedge.paper import BookModel, FundingSeries, PaperExchange, PaperMarketSpec

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC; the next settlement is 00:00 (T0 + 6400 s)
BTC = "BTC/USDT:USDT"


@dataclass
class Price:
    """A settable reference price."""

    value: Decimal = Decimal(60_000)

    def __call__(self) -> Decimal:
        return self.value


def paper(
    *,
    price: Price | None = None,
    clock: ManualClock | None = None,
    book: BookModel | None = None,
    funding: FundingSeries | None = None,
    balance: Decimal = Decimal(1_000_000),
    seed: int = 0,
    spec: PaperMarketSpec | None = None,
) -> tuple[PaperExchange, Price, ManualClock]:
    """A BTC paper venue with an exact (jitter-free) book unless told otherwise."""
    price = price or Price()
    clock = clock or ManualClock(T0)
    ex = PaperExchange(
        reference_price=price,
        clock=clock,
        spec=spec or PaperMarketSpec(),
        book=book or BookModel(depth_jitter=Decimal(0)),
        funding=funding or FundingSeries.constant(Decimal("0.0001")),
        seed=seed,
        initial_balance=balance,
    )
    return ex, price, clock


@dataclass
class _Fault:
    error: LpbotError
    after: bool  # the call happened at the venue, then the answer was lost
    times: int


@dataclass
class FlakyExchange:
    """Wraps a venue; ``fail(method, error, after=...)`` scripts the next calls of ``method``."""

    inner: Any
    calls: Counter[str] = field(default_factory=Counter)
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    lookup_misses: int = 0  # look-ups by client id that answer "no such order" (index lag)

    def fail(self, method: str, error: LpbotError, *, times: int = 1, after: bool = False) -> None:
        self._faults.setdefault(method, []).append(_Fault(error, after, times))

    def _run(self, method: str, fn: Callable[[], Any]) -> Any:
        self.calls[method] += 1
        faults = self._faults.get(method) or []
        fault = faults[0] if faults else None
        if fault is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.pop(0)
            if fault.after:
                fn()
            raise fault.error
        return fn()

    @property
    def name(self) -> str:
        return "flaky"

    def load_market(self, symbol: str) -> MarketInfo:
        return self._run("load_market", lambda: self.inner.load_market(symbol))

    def fetch_position(self, symbol: str) -> PerpPosition:
        return self._run("fetch_position", lambda: self.inner.fetch_position(symbol))

    def fetch_balance(self, currency: str) -> Balance:
        return self._run("fetch_balance", lambda: self.inner.fetch_balance(currency))

    def fetch_mark_price(self, symbol: str) -> Decimal:
        return self._run("fetch_mark_price", lambda: self.inner.fetch_mark_price(symbol))

    def fetch_funding_rate(self, symbol: str) -> FundingRate:
        return self._run("fetch_funding_rate", lambda: self.inner.fetch_funding_rate(symbol))

    def fetch_funding_rate_history(self, symbol: str, since_ms: int) -> list[FundingRate]:
        return self._run(
            "fetch_funding_rate_history",
            lambda: self.inner.fetch_funding_rate_history(symbol, since_ms),
        )

    def fetch_funding_payments(self, symbol: str, since_ms: int) -> list[FundingPayment]:
        return self._run(
            "fetch_funding_payments", lambda: self.inner.fetch_funding_payments(symbol, since_ms)
        )

    def fetch_margin_tiers(self, symbol: str) -> tuple[MarginTier, ...]:
        return self._run("fetch_margin_tiers", lambda: self.inner.fetch_margin_tiers(symbol))

    def prepare_isolated(self, symbol: str, leverage: int) -> tuple[str, ...]:
        return self._run("prepare_isolated", lambda: self.inner.prepare_isolated(symbol, leverage))

    def add_margin(self, symbol: str, amount: Decimal) -> None:
        self._run("add_margin", lambda: self.inner.add_margin(symbol, amount))

    def create_order(self, request: OrderRequest) -> Order:
        return self._run("create_order", lambda: self.inner.create_order(request))

    def cancel_order(self, symbol: str, order_id: str) -> Order:
        return self._run("cancel_order", lambda: self.inner.cancel_order(symbol, order_id))

    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None:
        if client_order_id is not None and self.lookup_misses > 0:
            self.calls["fetch_order"] += 1
            self.lookup_misses -= 1
            return None
        return self._run(
            "fetch_order",
            lambda: self.inner.fetch_order(
                symbol, order_id=order_id, client_order_id=client_order_id
            ),
        )


@dataclass
class Sleeps:
    """An injectable sleep that records instead of sleeping."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
