"""Isolated margin, liquidation price and funding of a USD-M perpetual, as Binance computes them.

Decimal throughout; sizes are signed base tokens (short < 0), prices and money settle currency.

Liquidation price, Binance USD-M (FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
Contracts"), for one symbol in one-way mode ("BOTH" position)::

    LP = (WB - TMM1 + UPNL1 + cumB - Side * Q * EP) / (Q * MMR - Side * Q)

WB is the wallet balance, TMM1 and UPNL1 the maintenance margin and unrealised PnL of *other*
positions (both 0 in isolated mode, where WB is the position's isolated wallet), cumB the
maintenance amount of the position's bracket, Side +1 long / -1 short, Q the absolute size, EP the
entry price and MMR the maintenance margin rate of the bracket. MMR and cum come from the venue's
notional-tiered table (``MarginTier``: Binance ``GET /fapi/v1/leverageBracket``, OKX
``GET /api/v5/public/position-tiers``, Bybit ``GET /v5/market/risk-limit``, all through ccxt's
leverage tiers); the bracket is the one holding the position's notional *at the liquidation
price*, so ``liquidation_price_tiered`` solves the formula per tier and keeps the consistent one.
A tier's maintenance amount is ``cum_i = cum_{i-1} + floor_i * (MMR_i - MMR_{i-1})`` (Binance's
``cum``; OKX and Bybit use the same deduction), which keeps the maintenance margin continuous in
notional. At LP the margin balance ``WB + Side * Q * (LP - EP)`` equals the maintenance margin
``Q * LP * MMR - cum``.

A position's own leverage (``position_leverage``) is its notional at the mark over its margin
balance (isolated wallet plus unrealised PnL): what the venue liquidates on, not the leverage
setting used when it was opened.

Funding (Binance "Introduction to USDⓈ-M Futures Funding Rates"): at each settlement
``amount = position notional * funding rate``; with a positive rate longs pay shorts, with a
negative rate shorts pay longs. Here the amount is signed as the account sees it:
``-size * mark * rate`` (a short receives a positive rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "MarginTier",
    "funding_payment",
    "initial_margin",
    "liquidation_price",
    "liquidation_price_tiered",
    "maintenance_margin",
    "maintenance_margin_tiered",
    "margin_balance",
    "position_leverage",
    "tier_for",
    "tiers_from_rates",
]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class MarginTier:
    """One bracket of a venue's maintenance-margin table: positions of notional in
    ``[floor, cap)`` settle currency keep ``notional * mmr - cum``; ``max_leverage`` is the
    highest leverage the venue allows in it."""

    floor: Decimal
    cap: Decimal
    mmr: Decimal
    cum: Decimal
    max_leverage: Decimal

    def __post_init__(self) -> None:
        if not (self.floor >= 0 and self.cap > self.floor and 0 <= self.mmr < 1):
            raise ValueError(f"bad margin tier {self}")


def tiers_from_rates(
    rows: Sequence[tuple[Decimal, Decimal, Decimal, Decimal]],
) -> tuple[MarginTier, ...]:
    """Tiers from ``(floor, cap, mmr, max_leverage)`` rows, ascending, with each tier's ``cum``
    derived as in the module docstring (the first tier's is 0)."""
    tiers: list[MarginTier] = []
    cum = _ZERO
    previous_mmr = _ZERO
    for floor, cap, mmr, max_lev in sorted(rows, key=lambda r: r[0]):
        cum += floor * (mmr - previous_mmr)
        tiers.append(MarginTier(floor, cap, mmr, cum, max_lev))
        previous_mmr = mmr
    if not tiers:
        raise ValueError("a margin table needs at least one tier")
    return tuple(tiers)


def tier_for(notional: Decimal, tiers: Sequence[MarginTier]) -> MarginTier:
    """The tier holding ``|notional|`` (the last tier beyond the table)."""
    n = abs(notional)
    for tier in tiers:
        if n < tier.cap:
            return tier
    return tiers[-1]


def maintenance_margin_tiered(size: Decimal, mark: Decimal, tiers: Sequence[MarginTier]) -> Decimal:
    """``maintenance_margin`` with the tier of the notional at ``mark``."""
    tier = tier_for(size * mark, tiers)
    return maintenance_margin(size, mark, tier.mmr, tier.cum)


def liquidation_price_tiered(
    size: Decimal, entry: Decimal, wallet: Decimal, tiers: Sequence[MarginTier]
) -> Decimal | None:
    """The liquidation price with the tier of the notional at that price (module docstring);
    None as ``liquidation_price``."""
    if size == 0:
        return None
    for tier in tiers:
        price = liquidation_price(size, entry, wallet, tier.mmr, tier.cum)
        if price is None:
            continue
        if tier_for(size * price, tiers) is tier:
            return price
    return liquidation_price(size, entry, wallet, tiers[-1].mmr, tiers[-1].cum)


def position_leverage(
    size: Decimal, entry: Decimal, mark: Decimal, wallet: Decimal
) -> Decimal | None:
    """``|size| * mark / (wallet + size * (mark - entry))``; None when flat, infinite-like
    (``Decimal('Infinity')``) when the margin balance is gone."""
    if size == 0:
        return None
    balance = margin_balance(size, entry, mark, wallet)
    if balance <= 0:
        return Decimal("Infinity")
    return abs(size) * mark / balance


def _sign(size: Decimal) -> int:
    return (size > 0) - (size < 0)


def initial_margin(notional: Decimal, leverage: Decimal) -> Decimal:
    """Margin posted to open ``notional`` at ``leverage``: ``notional / leverage``."""
    if not leverage > 0:
        raise ValueError(f"leverage must be > 0, got {leverage}")
    return abs(notional) / leverage


def maintenance_margin(size: Decimal, mark: Decimal, mmr: Decimal, cum: Decimal) -> Decimal:
    """``|size| * mark * MMR - cum``, floored at 0."""
    return max(_ZERO, abs(size) * mark * mmr - cum)


def margin_balance(size: Decimal, entry: Decimal, mark: Decimal, wallet: Decimal) -> Decimal:
    """Isolated wallet plus unrealised PnL: ``WB + size * (mark - entry)``."""
    return wallet + size * (mark - entry)


def liquidation_price(
    size: Decimal, entry: Decimal, wallet: Decimal, mmr: Decimal, cum: Decimal
) -> Decimal | None:
    """Binance's isolated liquidation price (module formula); None when flat or when no positive
    price liquidates (a long with more margin than its notional)."""
    if size == 0:
        return None
    side = _sign(size)
    q = abs(size)
    price = (wallet + cum - side * q * entry) / (q * mmr - side * q)
    return price if price > 0 else None


def funding_payment(size: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """What the account receives at a settlement (negative: pays): ``-size * mark * rate``."""
    return -size * mark * rate
