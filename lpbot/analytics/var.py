"""Value at risk of a position (and its hedge) by full revaluation (float64, analytics).

Each scenario moves the risky token's price ``S`` (in the quote token) to ``S * exp(r)`` and, when
the quote token's own USD price ``Q`` is given as a history, ``Q`` to ``Q * exp(q)``; the position
is revalued on its curve, so the loss includes gamma (a hedged LP loses on both sides; delta-only
VaR misses that). The USD P&L is ``Q' (V(S') + hedge S') - Q (V(S) + hedge S)``: the hedge is a
linear position in the risky token, marked in USD (a USD-margined perp). VaR is the loss not
exceeded with probability ``confidence``, in USD, >= 0.

- historical: ``r`` (and ``q``) over independent, non-overlapping ``horizon``-second windows of
  the price history, counted back from its last price. Fewer than ``min_windows`` windows is not
  enough history: ``historical_usd`` is None, never a figure from a handful of windows.
- parametric: ``r ~ N(-sigma**2 h / 2, sigma**2 h)`` with ``sigma`` the history's EWMA
  volatility (``volatility.ewma_volatility``), drawn as equiprobable normal quantiles
  (deterministic, no random numbers); with a quote history, ``(r, q)`` jointly normal with the
  EWMA correlation of their returns, on a product grid of quantiles.

A history of interval means (``PriceHistory.averaging_seconds > 0``) has its volatility corrected
for averaging (``volatility.variance_time``) and its historical returns scaled by the same factor;
each estimate names the basis it used (``price_basis``).
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
from lpbot.analytics.volatility import ewma_volatility, ewma_weights, variance_time

DEFAULT_HORIZONS = (60.0, 300.0, 1800.0)  # 1, 5 and 30 minutes
DEFAULT_MIN_WINDOWS = 30
QUOTE_FIXED = "quote token's USD price held fixed"


@dataclass(frozen=True, slots=True)
class VarEstimate:
    """VaR over one horizon, in USD (>= 0).

    ``historical_usd`` is None (not enough history) when the history holds fewer than the
    configured minimum of independent windows of that horizon; ``historical_scenarios`` is the
    number of independent windows it had. ``price_basis`` says what the history's prices were
    (point prices, or interval means corrected for averaging) and whether the quote token's USD
    price moved in the scenarios; ``quote_sigma_per_sqrt_second`` and ``correlation`` are None
    when it was held fixed.
    """

    horizon_seconds: float
    confidence: float
    historical_usd: float | None
    parametric_usd: float
    delta_normal_usd: float  # linear approximation, for comparison only
    historical_scenarios: int
    sigma_per_sqrt_second: float
    price_basis: str = "point prices; " + QUOTE_FIXED
    quote_sigma_per_sqrt_second: float | None = None
    correlation: float | None = None


@lru_cache(maxsize=8)
def _normal_grid(n: int) -> FloatArray:
    dist = NormalDist()
    grid = np.array([dist.inv_cdf((i + 0.5) / n) for i in range(n)], dtype=np.float64)
    grid.setflags(write=False)
    return grid


def window_ends(history: PriceHistory, horizon_seconds: float) -> tuple[FloatArray, FloatArray]:
    """Boundaries of the independent ``horizon_seconds`` windows, newest last: ``(starts, ends)``.

    Counted back from the last price: ``[t_last - (j + 1) h, t_last - j h]`` for every whole
    window inside the history.
    """
    if not horizon_seconds > 0:
        raise ValueError(f"horizon_seconds must be > 0, got {horizon_seconds}")
    ts = history.timestamps
    if ts.size < 2:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    n = math.floor((ts[-1] - ts[0]) / horizon_seconds + 1e-9)
    ends = ts[-1] - horizon_seconds * np.arange(n - 1, -1, -1, dtype=np.float64)
    return ends - horizon_seconds, ends


def _price_index(history: PriceHistory, times: FloatArray) -> np.ndarray:
    """Index of the last price at or before each time (-1 before the first)."""
    idx: np.ndarray = np.searchsorted(history.timestamps, times + 1e-9, side="right") - 1
    return idx


def _averaging_scale(history: PriceHistory, horizon_seconds: float) -> float:
    """Factor that gives returns between means the variance of returns between points."""
    tau = float(variance_time(horizon_seconds, history.averaging_seconds))
    return math.sqrt(horizon_seconds / tau) if tau > 0 else math.nan


def _spans_the_horizon(
    history: PriceHistory, i0: np.ndarray, i1: np.ndarray, horizon_seconds: float
) -> np.ndarray:
    """Windows whose two prices are distinct and between 0.5 and 1.5 horizons apart: a history
    sampled more coarsely than the horizon has no return of that horizon."""
    ok = (i0 >= 0) & (i1 > i0)
    ts = history.timestamps
    span = ts[np.where(ok, i1, 0)] - ts[np.where(ok, i0, 0)]
    keep: np.ndarray = ok & (np.abs(span - horizon_seconds) <= 0.5 * horizon_seconds)
    return keep


def historical_returns(history: PriceHistory, horizon_seconds: float) -> FloatArray:
    """Log-returns of token0's price over independent (non-overlapping) ``horizon``-second windows.

    Each window's return is between the last prices at or before its two ends (``window_ends``);
    a window without two prices about a horizon apart (a gap, or sampling coarser than the
    horizon) is dropped. Returns between
    interval means are scaled up to the variance of point returns (``_averaging_scale``).
    """
    starts, ends = window_ends(history, horizon_seconds)
    i0, i1 = _price_index(history, starts), _price_index(history, ends)
    keep = _spans_the_horizon(history, i0, i1, horizon_seconds)
    ps = history.prices
    returns: FloatArray = np.log(ps[i1[keep]] / ps[i0[keep]])
    if history.averaging_seconds > 0:
        returns = returns * _averaging_scale(history, horizon_seconds)
    return returns


def _joint_historical_returns(
    history: PriceHistory, quote_history: PriceHistory, horizon_seconds: float
) -> tuple[FloatArray, FloatArray]:
    """``historical_returns`` of both series over the same windows (those both cover)."""
    starts, ends = window_ends(history, horizon_seconds)
    i0, i1 = _price_index(history, starts), _price_index(history, ends)
    j0, j1 = _price_index(quote_history, starts), _price_index(quote_history, ends)
    keep = _spans_the_horizon(history, i0, i1, horizon_seconds) & _spans_the_horizon(
        quote_history, j0, j1, horizon_seconds
    )
    r: FloatArray = np.log(history.prices[i1[keep]] / history.prices[i0[keep]])
    q: FloatArray = np.log(quote_history.prices[j1[keep]] / quote_history.prices[j0[keep]])
    if history.averaging_seconds > 0:
        r = r * _averaging_scale(history, horizon_seconds)
    if quote_history.averaging_seconds > 0:
        q = q * _averaging_scale(quote_history, horizon_seconds)
    return r, q


def ewma_correlation(a: PriceHistory, b: PriceHistory, halflife_seconds: float) -> float:
    """EWMA correlation of the log-returns of two series; 0 when they share fewer than two returns.

    Both are sampled (last price at or before) on the coarser one's times within the span both
    cover, so a sparse series does not read as many zero returns and one jump (which would pull
    the correlation towards 0).
    """
    lo = max(a.timestamps[0], b.timestamps[0]) if len(a) and len(b) else 0.0
    hi = min(a.timestamps[-1], b.timestamps[-1]) if len(a) and len(b) else -1.0
    grids = [h.timestamps[(h.timestamps >= lo) & (h.timestamps <= hi)] for h in (a, b)]
    ts = min(grids, key=lambda g: g.size)
    if ts.size < 3:
        return 0.0
    pa, pb = a.prices[_price_index(a, ts)], b.prices[_price_index(b, ts)]
    ra, rb = np.diff(np.log(pa)), np.diff(np.log(pb))
    w = ewma_weights(ts[1:], halflife_seconds)
    saa, sbb, sab = np.sum(w * ra * ra), np.sum(w * rb * rb), np.sum(w * ra * rb)
    if not (saa > 0 and sbb > 0):
        return 0.0
    return float(np.clip(sab / math.sqrt(saa * sbb), -1.0, 1.0))


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
    quote_usd_history: PriceHistory | None = None,
    hedge: float = 0.0,
    halflife_seconds: float = 3600.0,
    sigma_per_sqrt_second: float | None = None,
    n_scenarios: int = 20_000,
    min_windows: int = DEFAULT_MIN_WINDOWS,
) -> tuple[VarEstimate, ...]:
    """VaR of ``curve`` (token0-in-token1 coordinates) plus a linear ``hedge`` at ``price``.

    ``price`` is whole quote per whole risky token (``S``); ``hedge`` is a position in the risky
    token (negative: short); ``quote_usd`` the quote's USD price now. The history is token0's price
    in token1; for ``quote=0`` its returns are negated. ``quote_usd_history`` is the quote token's
    USD price over time: give it when the quote is not a stablecoin, so that its price risk is in
    the scenarios (None holds it fixed, and the estimates say so). ``min_windows``: the fewest
    independent windows a historical VaR is computed from.
    """
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    if not price > 0:
        raise ValueError(f"price must be > 0, got {price}")
    if not (math.isfinite(quote_usd) and quote_usd > 0):
        raise ValueError(f"quote_usd must be > 0, got {quote_usd}")
    if n_scenarios < 100:
        raise ValueError(f"n_scenarios must be >= 100, got {n_scenarios}")
    if min_windows < 1:
        raise ValueError(f"min_windows must be >= 1, got {min_windows}")
    risky = risky_curve(curve, quote)
    sigma = (
        ewma_volatility(history, halflife_seconds)
        if sigma_per_sqrt_second is None
        else sigma_per_sqrt_second
    )
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    sign = 1.0 if quote == 1 else -1.0
    sigma_q: float | None = None
    rho: float | None = None
    basis = history.basis
    if quote_usd_history is not None:
        sigma_q = ewma_volatility(quote_usd_history, halflife_seconds)
        rho = sign * ewma_correlation(history, quote_usd_history, halflife_seconds)
        basis += f"; joint with the quote token's USD price ({quote_usd_history.basis})"
    else:
        basis += "; " + QUOTE_FIXED
    v0 = risky.value(price)
    delta0 = risky.amounts_at(price)[0]  # risky tokens held: dV/dS
    book0 = (v0 + hedge * price) * quote_usd  # USD value of position and hedge notional
    z_conf = NormalDist().inv_cdf(confidence)

    def pnl_usd(r: FloatArray, q: FloatArray | None = None) -> FloatArray:
        moved = price * np.exp(r)
        book = risky.values(moved) + hedge * moved
        if q is None:
            out: FloatArray = book * quote_usd - book0
        else:
            out = book * (quote_usd * np.exp(q)) - book0
        return out

    m = max(math.ceil(math.sqrt(n_scenarios)), 10)
    estimates = []
    for horizon in horizons:
        if not horizon > 0:
            raise ValueError(f"horizons must be > 0, got {horizon}")
        sd = sigma * math.sqrt(horizon)
        if quote_usd_history is None or sigma_q is None or rho is None:
            hist = sign * historical_returns(history, horizon)
            hist_pnl = pnl_usd(hist)
            parametric = _loss_quantile(
                pnl_usd(-0.5 * sd * sd + sd * _normal_grid(n_scenarios)), confidence
            )
            linear_sd = abs(delta0 + hedge) * price * quote_usd * sd
        else:
            r_hist, q_hist = _joint_historical_returns(history, quote_usd_history, horizon)
            hist = sign * r_hist
            hist_pnl = pnl_usd(hist, q_hist)
            sdq = sigma_q * math.sqrt(horizon)
            z = _normal_grid(m)
            r = (-0.5 * sd * sd + sd * z)[:, None]
            q = -0.5 * sdq * sdq + sdq * (rho * z[:, None] + math.sqrt(1.0 - rho * rho) * z)
            parametric = _loss_quantile(pnl_usd(r, q).ravel(), confidence)
            a = (delta0 + hedge) * price * quote_usd  # USD per unit r
            b = book0  # USD per unit q
            linear_sd = math.sqrt(
                max((a * sd) ** 2 + (b * sdq) ** 2 + 2 * rho * a * b * sd * sdq, 0.0)
            )
        historical = _loss_quantile(hist_pnl, confidence) if hist.size >= min_windows else None
        estimates.append(
            VarEstimate(
                horizon_seconds=float(horizon),
                confidence=confidence,
                historical_usd=historical,
                parametric_usd=parametric,
                delta_normal_usd=linear_sd * z_conf,
                historical_scenarios=int(hist.size),
                sigma_per_sqrt_second=sigma,
                price_basis=basis,
                quote_sigma_per_sqrt_second=sigma_q,
                correlation=rho,
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
    quote_usd_history: PriceHistory | None = None,
    hedge: float = 0.0,
    horizons: Sequence[float] = DEFAULT_HORIZONS,
    confidence: float = 0.99,
    halflife_seconds: float = 3600.0,
    min_windows: int = DEFAULT_MIN_WINDOWS,
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
        quote_usd_history=quote_usd_history,
        hedge=hedge,
        halflife_seconds=halflife_seconds,
        min_windows=min_windows,
    )
