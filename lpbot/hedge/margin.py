"""Isolated margin, liquidation price and funding of a USD-M perpetual, as Binance computes them.

Decimal throughout; sizes are signed base tokens (short < 0), prices and money settle currency.

Liquidation price, Binance USD-M (FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
Contracts"), for one symbol in one-way mode ("BOTH" position)::

    LP = (WB - TMM1 + UPNL1 + cumB - Side * Q * EP) / (Q * MMR - Side * Q)

WB is the wallet balance, TMM1 and UPNL1 the maintenance margin and unrealised PnL of *other*
positions (both 0 in isolated mode, where WB is the position's isolated wallet), cumB the
maintenance amount of the position's bracket, Side +1 long / -1 short, Q the absolute size, EP the
entry price and MMR the maintenance margin rate of the bracket. Binance takes MMR and cum from a
notional-tiered table per symbol; lpbot uses one rate and its amount (BTCUSDT's first bracket:
MMR 0.4 %, cum 0). At LP the margin balance ``WB + Side * Q * (LP - EP)`` equals the maintenance
margin ``Q * LP * MMR - cum``.

Funding (Binance "Introduction to USDⓈ-M Futures Funding Rates"): at each settlement
``amount = position notional * funding rate``; with a positive rate longs pay shorts, with a
negative rate shorts pay longs. Here the amount is signed as the account sees it:
``-size * mark * rate`` (a short receives a positive rate).
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "funding_payment",
    "initial_margin",
    "liquidation_price",
    "maintenance_margin",
    "margin_balance",
]

_ZERO = Decimal(0)


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
