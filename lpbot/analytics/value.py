"""What a position holds and is worth at a price: exact ints at one price, float64 over many.

Exact functions take Q64.96 square-root prices and raw amounts and round down, as the contract
pays out on ``burn``. ``PositionCurve`` is the float (analytics) view in whole tokens: the price
``P`` is whole token1 per whole token0 and, inside ``[Pa, Pb]``, the position holds
``x = L (1/sqrt(P) - 1/sqrt(Pb))`` token0 and ``y = L (sqrt(P) - sqrt(Pa))`` token1, worth
``V(P) = L (2 sqrt(P) - sqrt(Pa) - P / sqrt(Pb))`` token1 (Uniswap V3 whitepaper, section 6.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lpbot.analytics.types import FloatArray, PositionSnapshot, RawAmount, TokenAmounts
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.liquidity_amounts import get_amounts_for_liquidity
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

_CHUNK = 1 << 15  # prices per block: keeps the temporaries in cache


# --------------------------------------------------------------------------------- exact ints


def position_amounts(
    sqrt_price_x96: int, tick_lower: int, tick_upper: int, liquidity: int
) -> TokenAmounts:
    """Token amounts of ``liquidity`` in ``[tick_lower, tick_upper)`` at a price, rounded down.

    What ``burn`` of the whole liquidity pays out (LiquidityAmounts.getAmountsForLiquidity,
    v3-periphery 1.0.0; PositionValue.principal).
    """
    amount0, amount1 = get_amounts_for_liquidity(
        sqrt_price_x96,
        get_sqrt_ratio_at_tick(tick_lower),
        get_sqrt_ratio_at_tick(tick_upper),
        liquidity,
    )
    return TokenAmounts(RawAmount(amount0), RawAmount(amount1))


def value_in_token1(sqrt_price_x96: int, amounts: TokenAmounts) -> RawAmount:
    """``amount1 + amount0 * P`` in raw token1 (``P = (sqrtP / 2**96)**2``), rounded down."""
    return RawAmount(amounts.amount1 + (amounts.amount0 * sqrt_price_x96 * sqrt_price_x96 >> 192))


def value_in_token0(sqrt_price_x96: int, amounts: TokenAmounts) -> RawAmount:
    """``amount0 + amount1 / P`` in raw token0, rounded down."""
    return RawAmount(
        amounts.amount0 + (amounts.amount1 << 192) // (sqrt_price_x96 * sqrt_price_x96)
    )


def position_value_in_token1(sqrt_price_x96: int, position: PositionSnapshot) -> RawAmount:
    """The principal of ``position`` at a price, in raw token1, rounded down (fees excluded)."""
    amounts = position_amounts(
        sqrt_price_x96, position.tick_lower, position.tick_upper, position.liquidity
    )
    return value_in_token1(sqrt_price_x96, amounts)


# ------------------------------------------------------------------------ float (analytics)


def price_from_sqrt_x96(sqrt_price_x96: int, decimals0: int, decimals1: int) -> float:
    """Whole token1 per whole token0 at a Q64.96 square-root price (float, analytics)."""
    root = sqrt_price_x96 / Q96
    return root * root * 10.0 ** (decimals0 - decimals1)


def price_at_tick(tick: int, decimals0: int, decimals1: int) -> float:
    """Whole token1 per whole token0 at a tick, from TickMath's exact square-root price."""
    return price_from_sqrt_x96(get_sqrt_ratio_at_tick(tick), decimals0, decimals1)


def liquidity_in_whole_tokens(liquidity: int, decimals0: int, decimals1: int) -> float:
    """Liquidity in whole-token units: ``L / 10**((decimals0 + decimals1) / 2)``.

    With it, the whitepaper's formulas take whole-token prices and give whole-token amounts.
    """
    return float(liquidity / 10.0 ** ((decimals0 + decimals1) / 2))


@dataclass(frozen=True, slots=True)
class PositionCurve:
    """A position's payoff as a function of price, in whole tokens (float64, analytics).

    ``liquidity`` in whole-token units (``liquidity_in_whole_tokens``), prices whole token1 per
    whole token0, values in whole token1.
    """

    liquidity: float
    price_lower: float
    price_upper: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.liquidity) and self.liquidity >= 0):
            raise ValueError(f"liquidity must be finite and >= 0, got {self.liquidity}")
        if not 0 < self.price_lower < self.price_upper < math.inf:
            raise ValueError(
                f"need 0 < price_lower < price_upper, got {self.price_lower}, {self.price_upper}"
            )

    @classmethod
    def from_ticks(
        cls, liquidity: int, tick_lower: int, tick_upper: int, decimals0: int, decimals1: int
    ) -> PositionCurve:
        """The curve of ``liquidity`` raw units in ``[tick_lower, tick_upper)``."""
        return cls(
            liquidity_in_whole_tokens(liquidity, decimals0, decimals1),
            price_at_tick(tick_lower, decimals0, decimals1),
            price_at_tick(tick_upper, decimals0, decimals1),
        )

    @classmethod
    def from_position(
        cls, position: PositionSnapshot, decimals0: int, decimals1: int
    ) -> PositionCurve:
        return cls.from_ticks(
            position.liquidity, position.tick_lower, position.tick_upper, decimals0, decimals1
        )

    @property
    def sqrt_lower(self) -> float:
        return math.sqrt(self.price_lower)

    @property
    def sqrt_upper(self) -> float:
        return math.sqrt(self.price_upper)

    def amounts(self, prices: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Whole token0 and token1 held at each price."""
        p = np.asarray(prices, dtype=np.float64)
        s = np.clip(np.sqrt(p), self.sqrt_lower, self.sqrt_upper)
        x = self.liquidity * (1.0 / s - 1.0 / self.sqrt_upper)
        y = self.liquidity * (s - self.sqrt_lower)
        return x, y

    def values(self, prices: ArrayLike, out: FloatArray | None = None) -> FloatArray:
        """Value in whole token1 at each price: ``x P + y``; vectorised in cache-sized blocks."""
        p = np.ascontiguousarray(prices, dtype=np.float64)
        flat = p.reshape(-1)
        result = np.empty_like(flat) if out is None else out.reshape(-1)
        if result.shape != flat.shape:
            raise ValueError(f"out has shape {result.shape}, prices {flat.shape}")
        scratch = np.empty(min(_CHUNK, flat.size), dtype=np.float64)
        _values_into(result, flat, scratch, self.liquidity, self.sqrt_lower, self.sqrt_upper)
        return result.reshape(p.shape)

    def value(self, price: float) -> float:
        """Value in whole token1 at one price."""
        s = min(max(math.sqrt(price), self.sqrt_lower), self.sqrt_upper)
        return self.liquidity * (price * (1.0 / s - 1.0 / self.sqrt_upper) + s - self.sqrt_lower)

    def amounts_at(self, price: float) -> tuple[float, float]:
        """Whole token0 and token1 held at one price."""
        s = min(max(math.sqrt(price), self.sqrt_lower), self.sqrt_upper)
        return (
            self.liquidity * (1.0 / s - 1.0 / self.sqrt_upper),
            self.liquidity * (s - self.sqrt_lower),
        )


def _values_into(
    out: FloatArray, prices: FloatArray, scratch: FloatArray, liq: float, sa: float, sb: float
) -> None:
    """``out = L (P (1/s - 1/sqrt(Pb)) + s - sqrt(Pa))`` with ``s = clip(sqrt(P))``, blockwise."""
    inv_sb = 1.0 / sb
    for start in range(0, prices.size, _CHUNK):
        p = prices[start : start + _CHUNK]
        o = out[start : start + _CHUNK]
        s = scratch[: p.size]
        np.sqrt(p, out=s)
        np.maximum(s, sa, out=s)
        np.minimum(s, sb, out=s)
        np.reciprocal(s, out=o)
        o -= inv_sb
        o *= p
        o += s
        o -= sa
        o *= liq
