"""The perp market's stress signals for the market regime: funding, open interest, liquidations.

A venue gives what it has: ``CcxtExchange`` reads each through ccxt where the venue's ``has``
says it serves it (Binance USD-M, OKX and Bybit: open interest and its history, no public
liquidations over REST; the methods return None for what it does not serve), ``PaperExchange``
simulates them from its prices (its module docstring, "Market activity"). ``fetch_perp_stress``
reads them all and returns ``PerpStress``: the funding rate, the open interest's change over a
window and the liquidations over that window against their baseline, each None when the venue
does not give it.
Its ``regime_inputs`` fill the perp's fields of ``lpbot.risk.regime.RegimeInputs``.

USD figures are float (analytics): the regime compares ratios.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lpbot.errors import RetryLater

log = logging.getLogger(__name__)

WINDOW_MS = 30 * 60_000
BASELINE_MS = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class OpenInterest:
    """A perp's open interest at ``timestamp_ms``, in settle currency (USD), and ``amount``: in
    the venue's own unit (base tokens or contracts) when it gives it, which a price move alone
    does not change."""

    symbol: str
    usd: float
    timestamp_ms: int
    amount: float | None = None


@dataclass(frozen=True, slots=True)
class Liquidation:
    """Liquidations (USD) on the market at ``timestamp_ms`` (one order, or an interval's sum)."""

    symbol: str
    usd: float
    timestamp_ms: int


@runtime_checkable
class StressSource(Protocol):
    """What a venue reads for ``fetch_perp_stress``; None where the venue does not serve it."""

    def fetch_open_interest(self, symbol: str) -> OpenInterest | None: ...

    def fetch_open_interest_history(
        self, symbol: str, since_ms: int
    ) -> list[OpenInterest] | None: ...

    def fetch_liquidations(self, symbol: str, since_ms: int) -> list[Liquidation] | None: ...


@dataclass(frozen=True, slots=True)
class PerpStress:
    """The perp's stress signals at ``timestamp_ms`` (module docstring)."""

    timestamp_ms: int
    funding_rate_8h: float | None = None
    open_interest_usd: float | None = None
    open_interest_change_pct: float | None = None
    liquidations_usd: float | None = None
    liquidations_baseline_usd: float | None = None

    def regime_inputs(self) -> dict[str, float | None]:
        """The perp's fields of ``RegimeInputs`` (``RegimeInputs(**stress.regime_inputs(),
        ...)``)."""
        return {
            "funding_rate_8h": self.funding_rate_8h,
            "open_interest_change_pct": self.open_interest_change_pct,
            "liquidations_usd": self.liquidations_usd,
            "liquidations_baseline_usd": self.liquidations_baseline_usd,
        }


def fetch_perp_stress(
    venue: StressSource,
    symbol: str,
    now_ms: int,
    *,
    window_ms: int = WINDOW_MS,
    baseline_ms: int = BASELINE_MS,
) -> PerpStress:
    """Read the perp's stress signals (module docstring). The funding rate is the venue's
    current one, per 8 hours (a rate per 1 h interval counts 8 times; 8 h when the venue does
    not say its interval); the open interest's change is now against the last reading at or
    before ``window_ms`` ago, in contracts when both readings have them (a price move alone
    changes the USD value, not the positions open), else in USD; liquidations over ``window_ms``
    against ``window_ms / span`` of those over ``baseline_ms``, where ``span`` is the part of
    ``baseline_ms`` the venue's rows cover (at least ``window_ms``). A read that fails for a
    while (``RetryLater``) leaves its signal None and is logged: the regime goes on with the
    others."""
    funding: float | None = None
    fetch_funding = getattr(venue, "fetch_funding_rate", None)
    if fetch_funding is not None:
        try:
            rate = fetch_funding(symbol)
            hours = getattr(rate, "interval_hours", None)
            funding = float(rate.rate) * (8.0 / hours if hours else 1.0)
        except RetryLater as exc:
            log.warning("funding rate of %s unavailable: %s", symbol, exc)
    oi_now: float | None = None
    change: float | None = None
    try:
        now_oi = venue.fetch_open_interest(symbol)
        if now_oi is not None:
            oi_now = now_oi.usd
            # from two windows back: the reading at or before one window back is in it
            history = venue.fetch_open_interest_history(symbol, now_ms - 2 * window_ms)
            before = [h for h in history or () if h.timestamp_ms <= now_ms - window_ms]
            then = before[-1] if before else None
            if then is not None and now_oi.amount is not None and then.amount is not None:
                if then.amount > 0:
                    change = (now_oi.amount / then.amount - 1.0) * 100.0
            elif then is not None and then.usd > 0:
                change = (oi_now / then.usd - 1.0) * 100.0
    except RetryLater as exc:
        log.warning("open interest of %s unavailable: %s", symbol, exc)
    liquidations = baseline = None
    try:
        rows = venue.fetch_liquidations(symbol, now_ms - baseline_ms)
        if rows is not None:
            liquidations = sum(r.usd for r in rows if r.timestamp_ms > now_ms - window_ms)
            total = sum(r.usd for r in rows)
            # over the span the venue's rows cover (a venue, or a paper account, younger than
            # the baseline has fewer rows: not a calmer market), at least one window
            first = min((r.timestamp_ms for r in rows), default=now_ms)
            span = min(baseline_ms, max(window_ms, now_ms - first))
            baseline = total * window_ms / span
    except RetryLater as exc:
        log.warning("liquidations of %s unavailable: %s", symbol, exc)
    return PerpStress(
        timestamp_ms=now_ms,
        funding_rate_8h=funding,
        open_interest_usd=oi_now,
        open_interest_change_pct=change,
        liquidations_usd=liquidations,
        liquidations_baseline_usd=baseline,
    )
