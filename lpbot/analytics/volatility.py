"""Realised volatility and drift of a price series by exponentially weighted moments (float).

Units: log-returns; ``sigma`` is per square root of a second and ``drift`` per second, so a
horizon of ``h`` seconds has standard deviation ``sigma * sqrt(h)`` and mean ``drift * h``.
Irregular sampling is handled by weighting in time: with ``w_i = 2**(-(t_n - t_i) / halflife)``
for the return ``r_i`` over ``dt_i`` seconds ending at ``t_i``,
``variance rate = sum(w_i r_i**2) / sum(w_i tau_i)`` and ``drift = sum(w_i r_i) / sum(w_i dt_i)``.
``tau_i`` is the time the return's variance is worth (``variance_time``): ``dt_i`` between point
prices; between means over ``A`` seconds (``PriceHistory.averaging_seconds``) less, ``dt - A/3``
for ``dt >= A``, so ``k``-step returns of adjacent means are corrected by ``1 / (1 - 1/(3k))``
(a return between adjacent means carries two thirds of the variance). Point prices need no model.
Sums are elementwise numpy (not BLAS ``dot``, whose threads stall on a busy machine).
"""

from __future__ import annotations

import math

import numpy as np

from lpbot.analytics.types import SECONDS_PER_YEAR, FloatArray, PriceHistory


def log_returns(history: PriceHistory) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(end_times, dt, r)``: each step's end time, length in seconds and log-return."""
    if len(history) < 2:
        raise ValueError(f"need at least 2 prices for a return, got {len(history)}")
    ts = history.timestamps
    return ts[1:], np.diff(ts), np.diff(np.log(history.prices))


def variance_time(dt: FloatArray | float, averaging_seconds: float) -> FloatArray:
    """The variance of a return over ``dt`` seconds, in units of the variance rate (seconds).

    Between point prices, ``dt``. Between means over the ``A`` seconds ending at each price
    (Brownian log-price): ``dt - A/3`` when the windows do not overlap (``dt >= A``), else
    ``dt**2 / A - dt**3 / (3 A**2)``.
    """
    d = np.asarray(dt, dtype=np.float64)
    a = float(averaging_seconds)
    if a == 0:
        return d
    with np.errstate(divide="ignore", invalid="ignore"):
        tau: FloatArray = np.where(d >= a, d - a / 3.0, d * d / a - d**3 / (3.0 * a * a))
    return tau


def ewma_weights(end_times: FloatArray, halflife_seconds: float) -> FloatArray:
    if not (math.isfinite(halflife_seconds) and halflife_seconds > 0):
        raise ValueError(f"halflife_seconds must be > 0, got {halflife_seconds}")
    age = end_times[-1] - end_times
    weights: FloatArray = np.exp2(-age / halflife_seconds)
    return weights


def ewma_variance_rate(history: PriceHistory, halflife_seconds: float) -> float:
    """Exponentially weighted variance of log-returns per second (of the price itself, also when
    the history holds means: see ``variance_time``)."""
    end_times, dt, r = log_returns(history)
    w = ewma_weights(end_times, halflife_seconds)
    tau = variance_time(dt, history.averaging_seconds)
    return float(np.sum(w * r * r) / np.sum(w * tau))


def ewma_volatility(history: PriceHistory, halflife_seconds: float) -> float:
    """Exponentially weighted realised volatility of log-returns, per sqrt(second)."""
    return math.sqrt(ewma_variance_rate(history, halflife_seconds))


def ewma_drift(history: PriceHistory, halflife_seconds: float) -> float:
    """Exponentially weighted mean log-return per second (the trend)."""
    end_times, dt, r = log_returns(history)
    w = ewma_weights(end_times, halflife_seconds)
    return float(np.sum(w * r) / np.sum(w * dt))


def annualised(sigma_per_sqrt_second: float) -> float:
    """Volatility per sqrt(year) (365 days) from volatility per sqrt(second)."""
    return sigma_per_sqrt_second * math.sqrt(SECONDS_PER_YEAR)


def per_sqrt_second(sigma_annual: float) -> float:
    """Volatility per sqrt(second) from volatility per sqrt(year) (365 days)."""
    return sigma_annual / math.sqrt(SECONDS_PER_YEAR)


def expected_time_in_range(
    down_log: float, up_log: float, sigma: float, horizon_seconds: float, steps: int = 16
) -> float:
    """Expected fraction of the next ``horizon_seconds`` a driftless log-price spends in a range.

    The range is ``[x0 - down_log, x0 + up_log]`` around today's log-price ``x0`` (either width
    may be negative for a range that does not hold the price); ``sigma`` per sqrt(second). The
    average over time of ``P(range holds X_t)``, ``X_t ~ N(x0, sigma**2 t)``, by the midpoint rule
    on ``steps`` points. Counts returns into the range, as fees do.
    """
    if not (math.isfinite(horizon_seconds) and horizon_seconds > 0):
        raise ValueError(f"horizon_seconds must be > 0, got {horizon_seconds}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if -down_log >= up_log:
        return 0.0
    if sigma == 0:
        return 1.0 if down_log >= 0 and up_log > 0 else 0.0
    total = 0.0
    for k in range(steps):
        sd = sigma * math.sqrt(horizon_seconds * (k + 0.5) / steps) * math.sqrt(2.0)
        total += 0.5 * (math.erf(up_log / sd) - math.erf(-down_log / sd))
    return total / steps
