"""A run's performance numbers from its value series (float, analytics).

All returns are of the net value (after gas, slippage and the hedge) from the initial capital,
so the opening's costs count. Benchmarks start with the same capital at the same time:

- ``lp_vs_hold``, ``lp_vs_fifty``, ``lp_vs_full_range``: the run's return minus the benchmark's
  (holding the initial tokens, a 50/50 split, a passive full-range position that paid the gas of
  one opening), in fractions of the capital: positive when the bot did better;
- ``sharpe`` and ``sortino``: mean over standard deviation (Sortino: downside deviation, the
  root mean square of the negative returns) of log returns per ``period_seconds`` (the decision
  interval, the samples' spacing), annualised by ``sqrt(year / period)``, risk-free rate 0;
  None when fewer than ``MIN_PERIODS`` periods, when the deviation is nil (a flat series has no
  ratio, it does not have an infinite one) or when the value falls to zero or below (ruin);
- ``max_drawdown``: the largest fall from a running peak, as a fraction of the peak;
- ``turnover``: the notional of the bot's own swaps over the capital;
- ``costs_usd``: what acting cost, by kind.
"""

from __future__ import annotations

import math

import numpy as np

from lpbot.analytics.types import FloatArray

SECONDS_PER_YEAR = 365 * 86_400
MIN_PERIODS = 10


def period_log_returns(initial: float, values: FloatArray) -> FloatArray:
    """Log returns from ``initial`` through each value (one a period)."""
    path = np.concatenate(([initial], values))
    with np.errstate(divide="ignore", invalid="ignore"):
        r: FloatArray = np.diff(np.log(np.maximum(path, 1e-300)))
    return r


def sharpe_sortino(
    initial: float, values: FloatArray, period_seconds: float
) -> tuple[float | None, float | None]:
    """Annualised Sharpe and Sortino ratios of per-period log returns (module docstring)."""
    if not (initial > 0 and np.all(values > 0)):
        return None, None  # ruined (value at or below zero): log returns do not exist
    r = period_log_returns(initial, values)
    if r.size < MIN_PERIODS or period_seconds <= 0:
        return None, None
    scale = math.sqrt(SECONDS_PER_YEAR / period_seconds)
    mean = float(np.mean(r))
    sd = float(np.std(r, ddof=1))
    down = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    tiny = 1e-12 * max(abs(mean), 1e-12)
    sharpe = mean / sd * scale if sd > tiny else None
    sortino = mean / down * scale if down > tiny else None
    return sharpe, sortino


def max_drawdown(initial: float, values: FloatArray) -> float:
    """Largest fall from a running peak (the initial capital included), as a fraction."""
    path = np.concatenate(([initial], values))
    peaks = np.maximum.accumulate(path)
    return float(np.max(1.0 - path / np.where(peaks > 0, peaks, 1.0)))
