"""Conversions between on-chain prices (``sqrt_price_x96``, ticks) and human prices.

On-chain prices are raw: token1 smallest units per token0 smallest unit. Human prices here are
``Decimal`` (for display and reports) and say which token is quoted in which.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from lpbot.uniswap.constants import Q96

_PRECISION = 60


def raw_price(sqrt_price_x96: int) -> Decimal:
    """token1 units per token0 unit, from a Q64.96 square-root price (exact to 60 digits)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return (Decimal(sqrt_price_x96) / Decimal(Q96)) ** 2


def price1_per_0(sqrt_price_x96: int, decimals0: int, decimals1: int) -> Decimal:
    """Whole token1 per whole token0 (e.g. WETH per USDC when token0 is USDC)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return raw_price(sqrt_price_x96) * Decimal(10) ** (decimals0 - decimals1)


def price0_per_1(sqrt_price_x96: int, decimals0: int, decimals1: int) -> Decimal:
    """Whole token0 per whole token1 (e.g. USDC per WETH when token0 is USDC)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return Decimal(1) / price1_per_0(sqrt_price_x96, decimals0, decimals1)


def sqrt_price_x96_from_price(price1_per_0_human: Decimal, decimals0: int, decimals1: int) -> int:
    """The Q64.96 square-root price for a human price of token0 in token1, rounded down."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        raw = Decimal(price1_per_0_human) * Decimal(10) ** (decimals1 - decimals0)
        if raw <= 0:
            raise ValueError(f"price must be positive, got {price1_per_0_human}")
        return int((raw.sqrt() * Decimal(Q96)).to_integral_value(rounding="ROUND_FLOOR"))


def to_units(amount: int, decimals: int) -> Decimal:
    """A raw token amount in whole tokens."""
    return Decimal(amount).scaleb(-decimals)
