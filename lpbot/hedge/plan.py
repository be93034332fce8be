"""The hedge decision, pure: from the LP position's delta and the perp account to an order or not.

``plan_hedge(inputs, config)`` returns a ``HedgeAction`` (an order to send, with its reasons and
its deterministic client order id) or a ``NoAction`` with the reason. It does no I/O: the same
code decides live, in a dry run, on paper and in a backtest.

Units: deltas and sizes are ``Decimal`` base tokens (the pool's volatile token, e.g. ETH for
WETH), signed; prices settle currency per base token.

Rules, in order:

1. The target hedge is minus the LP delta. Net delta = LP delta + hedge size.
2. The band is ``max(band_abs, band_pct / 100 * |LP delta|)`` tokens; inside it, nothing is done.
3. The target's notional is capped at ``target_leverage * equity`` (``max_leverage`` less the
   ``leverage_headroom``; equity: the settle-currency margin balance of the account, unrealised
   PnL included, the same on every venue). What the order *opens* is capped so that margin for
   it at ``target_leverage`` plus a fee and slippage buffer (``fee_buffer_bps`` of its notional)
   fits in the free balance: a capped hedge is a smaller order the venue accepts, never one it
   must reject. The cap is a reason ("partial hedge"), not a failure.
4. Funding gate: if the trade opens or increases exposure and the funding of the last 24 h,
   annualised (``sum(rates) * 365``), would cost the target's side more than
   ``max_funding_cost_apr``, the increase is refused: a short *receives* positive funding and pays
   negative funding (cost ``-sum * 365``); a long the opposite (cost ``+sum * 365``). Reductions
   are always allowed.
5. The trade is rounded to the venue's step (nearest; an opening trade capped by the free
   balance rounds down); below the minimum size, or below the minimum notional unless
   reduce-only, nothing is sent.

``plan_margin(position, free, config, taker_fee)`` keeps the position's own leverage (notional at
the mark over isolated wallet plus unrealised PnL) at or under ``max_leverage``: above it, add
isolated margin from the free balance to bring it to ``max_leverage * (1 - leverage_headroom)``;
when the free balance cannot, first reduce the position (reduce-only) by the fraction that,
with the released margin and the free balance added back, reaches that leverage:
``f = (N - T * (MB + free)) / (N * (1 - T * fee))`` for notional N, margin balance MB and target
leverage T (a reduction releases its share of MB to the free balance, less the fee).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from lpbot.hedge.base import MarketInfo, OrderRequest, OrderSide, OrderType, PerpPosition

__all__ = [
    "AddMargin",
    "HedgeAction",
    "HedgeConfig",
    "HedgeInputs",
    "NoAction",
    "ReduceForMargin",
    "RetryPolicy",
    "band_width",
    "client_order_id",
    "funding_cost_apr",
    "min_band",
    "plan_hedge",
    "plan_margin",
]

_ZERO = Decimal(0)
_BPS = Decimal(10_000)
DAYS_PER_YEAR = 365


class RetryPolicy(BaseModel):
    """Bounded retries with exponential backoff: ``min(max_delay_s, base_delay_s * 2**(n-1))``
    seconds before attempt ``n + 1``. ``max_rejects`` bounds retries of refused orders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=5, ge=1)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=30.0, ge=0)
    max_rejects: int = Field(default=2, ge=1)
    # after a send whose outcome is unknown, how long (seconds of backoff) to keep looking the
    # client order id up before concluding the order never landed
    lookup_seconds: float = Field(default=20.0, ge=0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


class HedgeConfig(BaseModel):
    """One hedge: which perp, the band, the leverage cap and the funding gate (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str  # unified perp symbol, e.g. "ETH/USDT:USDT"
    # base tokens; 0: the venue's narrowest (``min_band``), set when its market is loaded
    band_abs: Decimal = Field(default=_ZERO, ge=0)
    band_pct: Decimal = Field(default=Decimal(5), ge=0)  # percent of |LP delta|
    max_leverage: Decimal = Field(default=Decimal(3), gt=0, le=125)
    max_funding_cost_apr: Decimal = Decimal("0.20")  # fraction per year; 0.20 = 20 % APR
    funding_lookback_hours: int = Field(default=24, gt=0)
    max_top_ups: int = Field(default=2, ge=0)  # extra orders after a partial fill
    min_liquidation_distance: Decimal = Decimal("0.15")  # alert below, fraction of mark
    fee_buffer_bps: Decimal = Field(default=Decimal(20), ge=0)  # fees + slippage, of notional
    leverage_headroom: Decimal = Field(default=Decimal("0.1"), ge=0, lt=1)
    retry: RetryPolicy = RetryPolicy()

    @property
    def target_leverage(self) -> Decimal:
        """What margin is sized for: ``max_leverage * (1 - leverage_headroom)``, so that a fill
        away from the mark or a small move does not cross the cap at once."""
        return self.max_leverage * (1 - self.leverage_headroom)

    @property
    def venue_leverage(self) -> int:
        """The leverage set at the venue: ``max_leverage`` rounded *down* to an integer (>= 1),
        so that margin posted for an order is never less than ``max_leverage`` requires."""
        return max(1, math.floor(self.max_leverage))


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
    free_balance: Decimal | None = None  # settle currency; None: not limited by it


@dataclass(frozen=True, slots=True)
class AddMargin:
    """Move ``amount`` settle currency into the position's isolated margin."""

    amount: Decimal
    leverage_before: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class ReduceForMargin:
    """Reduce the position by ``amount`` base tokens (reduce-only), then add margin: the free
    balance cannot hold the position at the leverage cap (the hedge becomes partial)."""

    amount: Decimal
    leverage_before: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class HedgeAction:
    """Send ``request``: it moves the hedge from ``hedge_before`` toward ``target``."""

    request: OrderRequest
    target: Decimal
    hedge_before: Decimal
    net_before: Decimal
    band: Decimal
    reasons: tuple[str, ...]
    partial: bool = False  # the target was capped (leverage or free balance)

    @property
    def signed_amount(self) -> Decimal:
        return self.request.side.sign * self.request.amount


@dataclass(frozen=True, slots=True)
class NoAction:
    reason: str
    net: Decimal = _ZERO
    band: Decimal = _ZERO


def min_band(market: MarketInfo, mark: Decimal) -> Decimal:
    """The narrowest band the venue can hold: its minimum order, in amount and in notional at
    ``mark`` (settle per base token), rounded up to its amount step (base tokens)."""
    least = market.min_amount
    if mark > 0:
        least = max(least, market.min_notional / mark)
    steps = (least / market.amount_step).to_integral_value(rounding=ROUND_CEILING)
    return steps * market.amount_step


def band_width(lp_delta: Decimal, config: HedgeConfig) -> Decimal:
    """The tolerated |net delta|: ``max(band_abs, band_pct / 100 * |lp_delta|)`` tokens."""
    return max(config.band_abs, config.band_pct / 100 * abs(lp_delta))


def funding_cost_apr(side: int, rates: Sequence[Decimal], interval_hours: int = 24) -> Decimal:
    """What holding ``side`` (+1 long, -1 short) costs per year at the rates of a window of
    ``interval_hours``: ``side * sum(rates) * 365 * 24 / interval_hours``. Negative is income."""
    return side * sum(rates, _ZERO) * DAYS_PER_YEAR * 24 / interval_hours


def plan_margin(
    position: PerpPosition,
    free: Decimal,
    config: HedgeConfig,
    taker_fee: Decimal,
    step: Decimal,
    *,
    allow_reduce: bool = True,
) -> AddMargin | ReduceForMargin | None:
    """Keep the position's own leverage at or under the cap (module docstring); ``step`` is the
    venue's amount step (a reduction rounds up to it). The reduction's cost is the larger of
    ``taker_fee`` and ``fee_buffer_bps`` (fees and slippage). Without ``allow_reduce`` (just
    after a reduction) the whole free balance is added instead."""
    lev = position.margin_leverage
    if lev is None or lev <= config.max_leverage:
        return None
    target_lev = config.target_leverage
    notional = position.notional
    balance = position.margin_balance
    need = notional / target_lev - balance
    usable = max(free, _ZERO)
    cents = Decimal("0.01")
    if usable >= need or (not allow_reduce and usable > 0):
        amount = min(need, usable).quantize(cents, rounding=ROUND_CEILING)
        amount = min(amount, usable.quantize(cents, rounding=ROUND_DOWN))
        return AddMargin(
            amount,
            lev,
            f"position leverage {lev:.2f}x above {config.max_leverage}x: adding {amount} margin",
        )
    if not allow_reduce:
        return None
    cost = max(taker_fee, config.fee_buffer_bps / _BPS)
    fraction = (notional - target_lev * (max(balance, _ZERO) + usable)) / (
        notional * (1 - target_lev * cost)
    )
    fraction = min(max(fraction, _ZERO), Decimal(1))
    size = abs(position.size)
    amount = min(size, (size * fraction / step).to_integral_value(rounding=ROUND_CEILING) * step)
    return ReduceForMargin(
        amount,
        lev,
        f"position leverage {lev:.2f}x above {config.max_leverage}x and the free balance "
        f"{usable:.2f} cannot hold it: reducing the hedge by {amount} (partial hedge)",
    )


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
    max_notional = config.target_leverage * max(inputs.equity, _ZERO)
    if abs(target) * inputs.mark_price > max_notional:
        capped = market.floor_amount(max_notional / inputs.mark_price)
        reasons.append(
            f"target {target:.6f} capped to {_sign(target) * capped} by "
            f"{config.target_leverage}x leverage on equity {inputs.equity:.2f}: partial hedge"
        )
        target = _sign(target) * capped
    free_capped = False
    if inputs.free_balance is not None and target != 0:
        # what the trade opens (beyond the part of the hedge already on the target's side)
        kept = abs(hedge) if _sign(hedge) == _sign(target) else _ZERO
        opening = abs(target) - kept
        per_token = inputs.mark_price * (1 / config.target_leverage + config.fee_buffer_bps / _BPS)
        room = market.floor_amount(max(inputs.free_balance, _ZERO) / per_token)
        if opening > room:
            capped = kept + room if _sign(hedge) == _sign(target) else room
            reasons.append(
                f"target {target:.6f} capped to {_sign(target) * capped} by the free balance "
                f"{inputs.free_balance:.2f} at {config.target_leverage}x plus "
                f"{config.fee_buffer_bps} bps for fees: partial hedge"
            )
            target = _sign(target) * capped
            free_capped = True

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
    if free_capped:
        amount = market.floor_amount(abs(trade))
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
        partial=target != -inputs.lp_delta,
    )
