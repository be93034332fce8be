"""Impermanent loss of a concentrated position, vectorised over prices (float64, analytics).

IL is the position's value over a benchmark's value, minus one, both in token1 at the new price:
- against holding the tokens deposited at ``entry_price`` (``impermanent_loss``); always <= 0,
  since the position's value is concave in price and the hold line is its tangent at entry;
- against a 50/50 portfolio of the same entry value held without rebalancing
  (``impermanent_loss_vs_fifty_fifty``); a concentrated position can beat it on one side.
Fees are excluded.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from lpbot.analytics.types import FloatArray
from lpbot.analytics.value import _CHUNK, PositionCurve, _values_into


def hold_amounts(curve: PositionCurve, entry_price: float) -> tuple[float, float]:
    """Whole token0 and token1 the position held at ``entry_price`` (what holding would keep)."""
    if not entry_price > 0:
        raise ValueError(f"entry_price must be > 0, got {entry_price}")
    return curve.amounts_at(entry_price)


def _ratio_minus_one(
    curve: PositionCurve, prices: ArrayLike, slope: float, intercept: float
) -> FloatArray:
    """``V(P) / (slope * P + intercept) - 1`` blockwise."""
    p = np.ascontiguousarray(prices, dtype=np.float64)
    flat = p.reshape(-1)
    out = np.empty_like(flat)
    scratch = np.empty(min(_CHUNK, flat.size), dtype=np.float64)
    bench = np.empty_like(scratch)
    sa, sb = curve.sqrt_lower, curve.sqrt_upper
    for start in range(0, flat.size, _CHUNK):
        pc = flat[start : start + _CHUNK]
        oc = out[start : start + _CHUNK]
        _values_into(oc, pc, scratch, curve.liquidity, sa, sb)
        bc = bench[: pc.size]
        np.multiply(pc, slope, out=bc)
        bc += intercept
        oc /= bc
        oc -= 1.0
    return out.reshape(p.shape)


def impermanent_loss(curve: PositionCurve, entry_price: float, prices: ArrayLike) -> FloatArray:
    """``V(P) / (x0 P + y0) - 1``: the position against holding its entry tokens ``(x0, y0)``."""
    x0, y0 = hold_amounts(curve, entry_price)
    return _ratio_minus_one(curve, prices, x0, y0)


def impermanent_loss_vs_fifty_fifty(
    curve: PositionCurve, entry_price: float, prices: ArrayLike
) -> FloatArray:
    """``V(P) / (V0 (1 + P / P0) / 2) - 1``: against half the entry value in each token, held."""
    if not entry_price > 0:
        raise ValueError(f"entry_price must be > 0, got {entry_price}")
    v0 = curve.value(entry_price)
    return _ratio_minus_one(curve, prices, 0.5 * v0 / entry_price, 0.5 * v0)


def impermanent_loss_full_range(price_ratio: ArrayLike) -> FloatArray:
    """The classic constant-product IL ``2 sqrt(k) / (1 + k) - 1`` for ``k = P / P0``."""
    k = np.asarray(price_ratio, dtype=np.float64)
    result: FloatArray = 2.0 * np.sqrt(k) / (1.0 + k) - 1.0
    return result


def impermanent_loss_in_range(
    price_ratio: ArrayLike, entry_price: float, price_lower: float, price_upper: float
) -> FloatArray:
    """Published closed form for a concentrated position while ``P`` stays in ``[Pa, Pb]``.

    ``(2 sqrt(k) - 1 - k) / (1 + k - sqrt(Pa / P0) - k sqrt(P0 / Pb))``, ``k = P / P0``; it tends
    to the full-range formula as ``Pa -> 0`` and ``Pb -> inf``.
    """
    k = np.asarray(price_ratio, dtype=np.float64)
    a = math.sqrt(price_lower / entry_price)
    b = math.sqrt(entry_price / price_upper)
    result: FloatArray = (2.0 * np.sqrt(k) - 1.0 - k) / (1.0 + k - a - k * b)
    return result
