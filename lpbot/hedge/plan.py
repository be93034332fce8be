"""The hedge decision, pure: from the LP position's delta and the perp account to an order or not.

``plan_hedge(inputs, config)`` returns a ``HedgeAction`` (an order to send, with its reasons and
its deterministic client order id) or a ``NoAction`` with the reason. It does no I/O: the same
code decides live, in a dry run, on paper and in a backtest.

Units: deltas and sizes are ``Decimal`` base tokens (the pool's volatile token, e.g. ETH for
WETH), signed; prices settle currency per base token.

Rules, in order:

1. The target hedge is minus the LP delta. Net delta = LP delta + hedge size.
2. The band is ``max(band_abs, band_pct / 100 * |LP delta|)`` tokens; inside it, nothing is done.
3. The target's notional is capped at ``max_leverage * equity`` (equity: the settle-currency
   margin balance of the account); the cap is a reason, not a failure.
4. Funding gate: if the trade opens or increases exposure and the funding of the last 24 h,
   annualised (``sum(rates) * 365``), would cost the target's side more than
   ``max_funding_cost_apr``, the increase is refused: a short *receives* positive funding and pays
   negative funding (cost ``-sum * 365``); a long the opposite (cost ``+sum * 365``). Reductions
   are always allowed.
5. The trade is rounded to the venue's step (nearest); below the minimum size, or below the
   minimum notional unless reduce-only, nothing is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from lpbot.hedge.base import MarketInfo, OrderRequest, OrderSide, OrderType, PerpPosition

__all__ = [
    "HedgeAction",
    "HedgeConfig",
    "HedgeInputs",
    "NoAction",
    "RetryPolicy",
    "band_width",
    "client_order_id",
    "funding_cost_apr",
    "plan_hedge",
]

_ZERO = Decimal(0)
DAYS_PER_YEAR = 365


class RetryPolicy(BaseModel):
    """Bounded retries with exponential backoff: ``min(max_delay_s, base_delay_s * 2**(n-1))``
    seconds before attempt ``n + 1``. ``max_rejects`` bounds retries of refused orders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=5, ge=1)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=30.0, ge=0)
    max_rejects: int = Field(default=2, ge=1)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


class HedgeConfig(BaseModel):
    """One hedge: which perp, the band, the leverage cap and the funding gate (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str  # unified perp symbol, e.g. "ETH/USDT:USDT"
    band_abs: Decimal = Field(gt=0)  # base tokens
    band_pct: Decimal = Field(default=Decimal(5), ge=0)  # percent of |LP delta|
    max_leverage: Decimal = Field(default=Decimal(3), gt=0, le=125)
    max_funding_cost_apr: Decimal = Decimal("0.20")  # fraction per year; 0.20 = 20 % APR
    funding_lookback_hours: int = Field(default=24, gt=0)
    max_top_ups: int = Field(default=2, ge=0)  # extra orders after a partial fill
    min_liquidation_distance: Decimal = Decimal("0.15")  # alert below, fraction of mark
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True, slots=True)
class HedgeInputs:
    """What the decision reads. ``lp_delta`` base tokens; ``equity`` settle currency;
    ``funding_rates`` the settled rates of the lookback window; ``position_id`` and ``step`` name
    the hedge step (with ``top_up``, the order's idempotency key)."""

    lp_delta: Decimal
    position: PerpPosition
    market: MarketInfo
    mark_price: Decimal
    equity: Decimal
    funding_rates: Sequence[Decimal]
    position_id: str
    step: int
    top_up: int = 0


@dataclass(frozen=True, slots=True)
class HedgeAction:
    """Send ``request``: it moves the hedge from ``hedge_before`` toward ``target``."""

    request: OrderRequest
    target: Decimal
    hedge_before: Decimal
    net_before: Decimal
    band: Decimal
    reasons: tuple[str, ...]

    @property
    def signed_amount(self) -> Decimal:
        return self.request.side.sign * self.request.amount


@dataclass(frozen=True, slots=True)
class NoAction:
    reason: str
    net: Decimal = _ZERO
    band: Decimal = _ZERO


def band_width(lp_delta: Decimal, config: HedgeConfig) -> Decimal:
    """The tolerated |net delta|: ``max(band_abs, band_pct / 100 * |lp_delta|)`` tokens."""
    return max(config.band_abs, config.band_pct / 100 * abs(lp_delta))


def funding_cost_apr(side: int, rates: Sequence[Decimal], interval_hours: int = 24) -> Decimal:
    """What holding ``side`` (+1 long, -1 short) costs per year at the rates of a window of
    ``interval_hours``: ``side * sum(rates) * 365 * 24 / interval_hours``. Negative is income."""
    return side * sum(rates, _ZERO) * DAYS_PER_YEAR * 24 / interval_hours


def client_order_id(position_id: str, step: int, target: Decimal, top_up: int = 0) -> str:
    """``lpb`` + 29 hex digits of SHA-256 over the step: 32 letters and digits, valid as a
    Binance ``newClientOrderId``, an OKX ``clOrdId`` and a Bybit ``orderLinkId``."""
    key = f"{position_id}|{step}|{target.normalize()}|{top_up}"
    return "lpb" + hashlib.sha256(key.encode()).hexdigest()[:29]


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def plan_hedge(inputs: HedgeInputs, config: HedgeConfig) -> HedgeAction | NoAction:
    """Decide the next hedge order (module rules)."""
    market = inputs.market
    hedge = inputs.position.size
    net = inputs.lp_delta + hedge
    band = band_width(inputs.lp_delta, config)
    if abs(net) <= band:
        return NoAction(f"net delta {net:.6f} inside the band of {band:.6f}", net, band)
    reasons = [f"net delta {net:.6f} outside the band of {band:.6f}"]

    target = -inputs.lp_delta
    max_notional = config.max_leverage * max(inputs.equity, _ZERO)
    if abs(target) * inputs.mark_price > max_notional:
        capped = market.floor_amount(max_notional / inputs.mark_price)
        reasons.append(
            f"target {target:.6f} capped to {_sign(target) * capped} by {config.max_leverage}x "
            f"leverage on equity {inputs.equity:.2f}"
        )
        target = _sign(target) * capped

    increases = abs(target) > abs(hedge) or _sign(target) * _sign(hedge) < 0
    if increases and target != 0:
        cost = funding_cost_apr(_sign(target), inputs.funding_rates, config.funding_lookback_hours)
        if cost > config.max_funding_cost_apr:
            if _sign(target) * _sign(hedge) >= 0:
                return NoAction(
                    f"funding over the last {config.funding_lookback_hours} h costs "
                    f"{cost:.2%} a year on this side, above {config.max_funding_cost_apr:.2%}",
                    net,
                    band,
                )
            reasons.append(f"funding costs {cost:.2%} a year: only closing the opposite hedge")
            target = _ZERO

    trade = target - hedge
    amount = market.round_amount(abs(trade))
    if amount == 0:
        return NoAction(f"trade {trade:.6f} rounds to zero at step {market.amount_step}", net, band)
    side = OrderSide.of(trade)
    reduce_only = _sign(hedge) != 0 and side.sign != _sign(hedge) and amount <= abs(hedge)
    if amount < market.min_amount:
        return NoAction(f"trade {amount} below the minimum size {market.min_amount}", net, band)
    if not reduce_only and amount * inputs.mark_price < market.min_notional:
        return NoAction(
            f"trade notional {amount * inputs.mark_price:.2f} below the minimum notional "
            f"{market.min_notional}",
            net,
            band,
        )
    request = OrderRequest(
        symbol=market.symbol,
        side=side,
        amount=amount,
        client_order_id=client_order_id(inputs.position_id, inputs.step, target, inputs.top_up),
        type=OrderType.MARKET,
        reduce_only=reduce_only,
    )
    return HedgeAction(
        request=request,
        target=target,
        hedge_before=hedge,
        net_before=net,
        band=band,
        reasons=tuple(reasons),
    )
