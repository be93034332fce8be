"""Value at risk of a position (and its hedge) by full revaluation (float64, analytics).

Each scenario moves the risky token's price ``S`` to ``S * exp(r)`` and revalues the position
on its curve, so the loss includes gamma (a hedged LP loses on both sides; delta-only VaR misses
that). VaR is the loss not exceeded with probability ``confidence``, in USD, >= 0.
- historical: ``r`` are the overlapping ``horizon``-second log-returns of the price history;
- parametric: ``r ~ N(-sigma**2 h / 2, sigma**2 h)`` with ``sigma`` the history's EWMA volatility
  (``volatility.ewma_volatility``), drawn as ``n_scenarios`` equiprobable normal quantiles
  (deterministic, no random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from lpbot.analytics.greeks import QuoteToken, risky_curve
from lpbot.analytics.types import FloatArray, PoolSnapshot, PositionSnapshot, PriceHistory
from lpbot.analytics.value import PositionCurve, price_from_sqrt_x96
from lpbot.analytics.volatility import ewma_volatility

DEFAULT_HORIZONS = (60.0, 300.0, 1800.0)  # 1, 5 and 30 minutes


@dataclass(frozen=True, slots=True)
class VarEstimate:
    """VaR over one horizon, in USD (>= 0); ``historical_usd`` is None when the history holds
    fewer than ``min_scenarios`` returns of that horizon."""

    horizon_seconds: float
    confidence: float
    historical_usd: float | None
    parametric_usd: float
    delta_normal_usd: float  # linear approximation, for comparison only
    historical_scenarios: int
    sigma_per_sqrt_second: float


@lru_cache(maxsize=8)
def _normal_grid(n: int) -> FloatArray:
    dist = NormalDist()
    grid = np.array([dist.inv_cdf((i + 0.5) / n) for i in range(n)], dtype=np.float64)
    grid.setflags(write=False)
    return grid


def historical_returns(history: PriceHistory, horizon_seconds: float) -> FloatArray:
    """Overlapping log-returns of token0's price over ``horizon_seconds``.

    From each observation, to the last observation at or before ``horizon_seconds`` later; starts
    whose horizon runs past the end of the history are dropped.
    """
    if not horizon_seconds > 0:
        raise ValueError(f"horizon_seconds must be > 0, got {horizon_seconds}")
    ts, ps = history.timestamps, history.prices
    if ts.size < 2:
        return np.empty(0, dtype=np.float64)
    starts = np.nonzero(ts + horizon_seconds <= ts[-1])[0]
    ends = np.searchsorted(ts, ts[starts] + horizon_seconds, side="right") - 1
    returns: FloatArray = np.log(ps[ends] / ps[starts])
    return returns


def _loss_quantile(pnl: FloatArray, confidence: float) -> float:
    return max(0.0, -float(np.quantile(pnl, 1.0 - confidence)))


def value_at_risk(
    curve: PositionCurve,
    price: float,
    history: PriceHistory,
    *,
    horizons: Sequence[float] = DEFAULT_HORIZONS,
    confidence: float = 0.99,
    quote: QuoteToken = 1,
    quote_usd: float = 1.0,
    hedge: float = 0.0,
    halflife_seconds: float = 3600.0,
    sigma_per_sqrt_second: float | None = None,
    n_scenarios: int = 20_000,
    min_scenarios: int = 30,
) -> tuple[VarEstimate, ...]:
    """VaR of ``curve`` (token0-in-token1 coordinates) plus a linear ``hedge`` at ``price``.

    ``price`` is whole quote per whole risky token (``S``); ``hedge`` is a position in the risky
    token (negative: short), its P&L ``hedge * dS``; ``quote_usd`` the quote's USD price. The
    history is token0's price in token1; for ``quote=0`` its returns are negated.
    """
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    if not price > 0:
        raise ValueError(f"price must be > 0, got {price}")
    if n_scenarios < 100:
        raise ValueError(f"n_scenarios must be >= 100, got {n_scenarios}")
    risky = risky_curve(curve, quote)
    sigma = (
        ewma_volatility(history, halflife_seconds)
        if sigma_per_sqrt_second is None
        else sigma_per_sqrt_second
    )
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    v0 = risky.value(price)
    delta0 = risky.amounts_at(price)[0]  # risky tokens held: dV/dS
    sign = 1.0 if quote == 1 else -1.0
    z_conf = NormalDist().inv_cdf(confidence)

    def pnl_usd(returns: FloatArray) -> FloatArray:
        moved = price * np.exp(returns)
        pnl: FloatArray = (risky.values(moved) - v0 + hedge * (moved - price)) * quote_usd
        return pnl

    estimates = []
    for horizon in horizons:
        if not horizon > 0:
            raise ValueError(f"horizons must be > 0, got {horizon}")
        hist = sign * historical_returns(history, horizon)
        historical = (
            _loss_quantile(pnl_usd(hist), confidence) if hist.size >= min_scenarios else None
        )
        sd = sigma * math.sqrt(horizon)
        parametric = _loss_quantile(
            pnl_usd(-0.5 * sd * sd + sd * _normal_grid(n_scenarios)), confidence
        )
        delta_normal = abs(delta0 + hedge) * price * quote_usd * sd * z_conf
        estimates.append(
            VarEstimate(
                horizon_seconds=float(horizon),
                confidence=confidence,
                historical_usd=historical,
                parametric_usd=parametric,
                delta_normal_usd=delta_normal,
                historical_scenarios=int(hist.size),
                sigma_per_sqrt_second=sigma,
            )
        )
    return tuple(estimates)


def position_var(
    pool: PoolSnapshot,
    position: PositionSnapshot,
    history: PriceHistory,
    *,
    quote: QuoteToken = 1,
    quote_usd: float = 1.0,
    hedge: float = 0.0,
    horizons: Sequence[float] = DEFAULT_HORIZONS,
    confidence: float = 0.99,
    halflife_seconds: float = 3600.0,
) -> tuple[VarEstimate, ...]:
    """``value_at_risk`` of a position at the pool's current price."""
    curve = PositionCurve.from_position(position, pool.decimals0, pool.decimals1)
    p = price_from_sqrt_x96(pool.sqrt_price_x96, pool.decimals0, pool.decimals1)
    return value_at_risk(
        curve,
        p if quote == 1 else 1.0 / p,
        history,
        horizons=horizons,
        confidence=confidence,
        quote=quote,
        quote_usd=quote_usd,
        hedge=hedge,
        halflife_seconds=halflife_seconds,
    )
