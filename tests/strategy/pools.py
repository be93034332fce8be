"""Pools for the strategy tests: a simulated pool seeded with liquidity, and its snapshots."""

from __future__ import annotations

import math

import numpy as np

from lpbot.analytics.types import PoolSnapshot, PriceHistory
from lpbot.uniswap import MAX_SQRT_RATIO, MIN_SQRT_RATIO, Pool
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

ONE_FOR_ZERO_LIMIT = MAX_SQRT_RATIO - 1
ZERO_FOR_ONE_LIMIT = MIN_SQRT_RATIO + 1
YEAR = 365 * 24 * 3600


def snap(tick: int, spacing: int) -> int:
    return tick // spacing * spacing


def seeded_pool(
    tick: int,
    *,
    fee: int = 500,
    spacing: int = 10,
    base_liquidity: int = 10**18,
    bands: tuple[tuple[int, int], ...] = ((200, 10**19), (1000, 10**19), (5000, 10**19)),
) -> Pool:
    """A pool at ``tick`` with full-range liquidity and symmetric bands of ``(half_width, L)``."""
    pool = Pool(fee, spacing, get_sqrt_ratio_at_tick(tick))
    low, high = -(887272 // spacing) * spacing, 887272 // spacing * spacing
    pool.mint("base", low, high, base_liquidity)
    for i, (half, liquidity) in enumerate(bands):
        lower = max(low, snap(tick - half, spacing))
        upper = min(high, snap(tick + half, spacing) + spacing)
        pool.mint(f"mm{i}", lower, upper, liquidity)
    return pool


def snapshot(pool: Pool, decimals0: int = 18, decimals1: int = 6) -> PoolSnapshot:
    return PoolSnapshot.from_pool(pool, decimals0=decimals0, decimals1=decimals1)


def gbm_history(
    n: int,
    *,
    step_seconds: float = 60.0,
    sigma_annual: float = 0.6,
    mu_annual: float = 0.0,
    start_price: float = 3000.0,
    seed: int = 1,
    end: float | None = None,
) -> PriceHistory:
    """A seeded geometric Brownian path of ``n`` prices, one every ``step_seconds``.

    ``end`` places the last observation at that timestamp.
    """
    rng = np.random.default_rng(seed)
    dt = step_seconds / YEAR
    drift = (mu_annual - 0.5 * sigma_annual**2) * dt
    steps = rng.normal(drift, sigma_annual * math.sqrt(dt), n - 1)
    log_prices = math.log(start_price) + np.concatenate(([0.0], np.cumsum(steps)))
    times = np.arange(n) * step_seconds
    if end is not None:
        times = times - times[-1] + end
    return PriceHistory(times, np.exp(log_prices))
