"""Shared builders for the analytics tests: seeded price paths and seeded pools."""

from __future__ import annotations

import math

import numpy as np

from lpbot.analytics.types import PriceHistory
from lpbot.uniswap import MAX_SQRT_RATIO, MIN_SQRT_RATIO, Pool
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

ZERO_FOR_ONE_LIMIT = MIN_SQRT_RATIO + 1
ONE_FOR_ZERO_LIMIT = MAX_SQRT_RATIO - 1
YEAR = 365 * 24 * 3600


def gbm_history(
    n: int,
    *,
    step_seconds: float = 60.0,
    sigma_annual: float = 0.6,
    mu_annual: float = 0.0,
    start_price: float = 3000.0,
    seed: int = 1,
) -> PriceHistory:
    """A seeded geometric Brownian path of ``n`` prices, one every ``step_seconds``."""
    rng = np.random.default_rng(seed)
    dt = step_seconds / YEAR
    steps = rng.normal(
        (mu_annual - 0.5 * sigma_annual**2) * dt, sigma_annual * math.sqrt(dt), n - 1
    )
    log_prices = math.log(start_price) + np.concatenate(([0.0], np.cumsum(steps)))
    return PriceHistory(np.arange(n) * step_seconds, np.exp(log_prices))


def seeded_pool(tick: int, *, fee: int = 3000, spacing: int = 60) -> Pool:
    """A pool at ``tick`` with full-range liquidity and two bands around the price."""
    pool = Pool(fee, spacing, get_sqrt_ratio_at_tick(tick))
    high = 887272 // spacing * spacing
    pool.mint("base", -high, high, 10**18)
    cell = tick // spacing * spacing
    pool.mint("near", cell - 20 * spacing, cell + 20 * spacing, 5 * 10**18)
    pool.mint("far", cell - 100 * spacing, cell + 60 * spacing, 3 * 10**18)
    return pool
