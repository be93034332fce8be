"""Delta and gamma of a concentrated position, closed form (float64, analytics).

The risky token is priced in the quote token: ``S`` is whole quote per whole risky token. With
``quote=1`` (token1 quotes token0) ``S = P`` and, inside ``[Sa, Sb]``,
``delta = dV/dS = L (1/sqrt(S) - 1/sqrt(Sb))`` risky tokens (the token0 held) and
``gamma = -L / (2 S**1.5)``; below the range delta is ``L (1/sqrt(Sa) - 1/sqrt(Sb))``, above it 0,
and gamma is 0 outside. With ``quote=0`` the same holds for ``S = 1/P`` (liquidity is symmetric
under inverting the price): delta is the token1 held.

USD: ``delta_usd = delta * S * quote_usd`` is the USD exposure to the risky token (what a perp
short of that notional hedges). ``dollar_gamma = gamma * S**2 / 100 * quote_usd`` is the dollar
gamma (per 1%): the change of delta for a +1% move of ``S``, in risky tokens, valued at today's
price. It is what a hedge must trade, in USD, to stay delta-neutral after the move; it is not the
whole change of ``delta_usd``, which also revalues the delta already held: to first order,
``delta_usd(1.01 S) - delta_usd(S) = dollar_gamma + delta_usd / 100``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from lpbot.analytics.types import FloatArray, PoolSnapshot, PositionSnapshot
from lpbot.analytics.value import PositionCurve, price_from_sqrt_x96

QuoteToken = Literal[0, 1]


def delta_gamma(curve: PositionCurve, prices: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Delta (whole token0) and gamma (token0 per unit of price) at prices of token0 in token1."""
    p = np.asarray(prices, dtype=np.float64)
    sa, sb = curve.sqrt_lower, curve.sqrt_upper
    root = np.sqrt(p)
    s = np.clip(root, sa, sb)
    delta = curve.liquidity * (1.0 / s - 1.0 / sb)
    inside = (root > sa) & (root < sb)
    gamma = np.where(inside, -0.5 * curve.liquidity / (p * root), 0.0)
    return delta, gamma


def risky_curve(curve: PositionCurve, quote: QuoteToken) -> PositionCurve:
    """The curve in the risky token's price ``S``: itself for ``quote=1``, inverted for ``0``."""
    if quote == 1:
        return curve
    return PositionCurve(curve.liquidity, 1.0 / curve.price_upper, 1.0 / curve.price_lower)


@dataclass(frozen=True, slots=True)
class Greeks:
    """A position's price sensitivities at one price (float, analytics).

    ``price``: whole quote per whole risky token. ``value``: the position in whole quote tokens.
    ``delta``: risky tokens. ``gamma``: risky tokens per unit of ``price``. ``delta_usd``: USD
    exposure to the risky token. ``dollar_gamma``: USD per +1% move of ``price``, the change of
    delta valued at ``price`` (see module).
    """

    quote: QuoteToken
    price: float
    value: float
    delta: float
    gamma: float
    delta_usd: float
    dollar_gamma: float


def greeks_at(
    curve: PositionCurve, price: float, *, quote: QuoteToken = 1, quote_usd: float = 1.0
) -> Greeks:
    """Greeks of ``curve`` (token0-in-token1 coordinates) at the risky token's ``price``."""
    if not price > 0:
        raise ValueError(f"price must be > 0, got {price}")
    risky = risky_curve(curve, quote)
    delta_arr, gamma_arr = delta_gamma(risky, price)
    delta, gamma = float(delta_arr), float(gamma_arr)
    return Greeks(
        quote=quote,
        price=price,
        value=risky.value(price),
        delta=delta,
        gamma=gamma,
        delta_usd=delta * price * quote_usd,
        dollar_gamma=gamma * price * price / 100.0 * quote_usd,
    )


def position_greeks(
    pool: PoolSnapshot,
    position: PositionSnapshot,
    *,
    quote: QuoteToken = 1,
    quote_usd: float = 1.0,
) -> Greeks:
    """Greeks of a position at the pool's price; ``quote_usd`` is the USD price of the quote."""
    if quote not in (0, 1):
        raise ValueError(f"quote must be 0 or 1, got {quote}")
    if not (math.isfinite(quote_usd) and quote_usd > 0):
        raise ValueError(f"quote_usd must be > 0, got {quote_usd}")
    curve = PositionCurve.from_position(position, pool.decimals0, pool.decimals1)
    p = price_from_sqrt_x96(pool.sqrt_price_x96, pool.decimals0, pool.decimals1)
    return greeks_at(curve, p if quote == 1 else 1.0 / p, quote=quote, quote_usd=quote_usd)
