"""When a decision can be skipped: a refused rebalance that nothing could have changed.

``RebalancePolicy.decide`` rebalances when the expected gain over ``horizon_seconds`` (fees less
LVR, against staying) beats ``min_gain_over_cost`` times the cost. Neither engine calls it at
every decision time: when a triggered rebalance has just been refused, the engine works out a
bound on what any rebalance could gain, and skips the following decisions while that bound
still cannot pay for the gas:

- the gain of a new range is at most the fees of its liquidity in range for the whole horizon,
  ``rate x L_new x horizon`` (``rate``: the pool's recent fees per unit of in-range liquidity, in
  USD a second; the current range's own fees only lower the gain), and ``L_new`` is at most what
  the whole position's value buys in the narrowest range the strategy can choose
  (``narrowest_range``) with no swap cost;
- plus the LVR the current range is expected to lose over the horizon (``stay_lvr_usd``, the
  decision's own figure), taken twice, which moving could save;
- the cost is at least the gas.

The refusal (``Refusal``) holds, and decisions are skipped, while the triggers that fire are the
same (``trigger_key``; compounding is checked by each engine), the fee rate has not risen by more
than ``MARGIN``, gas has not fallen by more than ``MARGIN``, the price has not moved by more than
``MARGIN`` and the bound, with those margins applied, stays below ``min_gain_over_cost`` times
the gas. So a position left out of range of a pool whose fees cannot pay for moving it costs a
few decisions, not one an hour. A strategy whose narrowest range is unknown is never skipped.
Float, analytics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpbot.analytics.types import PoolSnapshot, TokenAmounts
from lpbot.analytics.value import position_amounts
from lpbot.strategy import (
    FixedWidth,
    FullRange,
    MarketInputs,
    RebalancePolicy,
    SkewedBand,
    VolatilityBand,
)
from lpbot.strategy.base import LOG_TICK, Range, range_around

MARGIN = 0.10
_UNIT_L = 10**18


def trigger_key(
    policy: RebalancePolicy, *, in_range: bool, edge_pct: float, age: float, vol_ratio: float
) -> tuple[bool, bool, bool, bool]:
    """Which triggers fire (out of range, near an edge, volatility regime, age): the policy's
    own rule (``RebalancePolicy.triggers``) on the given signals."""
    near = in_range and policy.edge_pct is not None and edge_pct < policy.edge_pct
    vol = False
    if policy.vol_ratio_trigger is not None and math.isfinite(vol_ratio):
        r = policy.vol_ratio_trigger
        vol = vol_ratio > r or vol_ratio < 1.0 / r
    aged = policy.max_age_seconds is not None and age > policy.max_age_seconds
    return (not in_range, near, vol, aged)


def narrowest_range(policy: RebalancePolicy, pool: PoolSnapshot) -> Range | None:
    """A range inside every range the strategy can choose at this tick (None: unknown)."""
    s = policy.strategy
    if isinstance(s, FixedWidth | FullRange):
        from lpbot.analytics.types import PriceHistory

        if isinstance(s, FixedWidth) and s.auto:
            return min(s.candidates(pool, PriceHistory([], [])), key=lambda r: r.width_ticks)
        return s.range_for(pool, PriceHistory([], []))
    band: VolatilityBand | None = None
    shrink = 1.0
    if isinstance(s, VolatilityBand):
        band = s
    elif isinstance(s, SkewedBand):
        band = s.band
        shrink = 1.0 - s.max_shift - abs(s.static_skew)
    if band is None or shrink <= 0:
        return None
    w = band.min_half_width_ticks * LOG_TICK * shrink
    return range_around(pool.tick, w, w, pool.tick_spacing)


def fee_rate_usd(market: MarketInputs, pool: PoolSnapshot) -> float:
    """The pool's recent fees per unit of in-range liquidity, USD a second."""
    r = market.fee_rate
    return (
        r.token0_per_second / 10.0**pool.decimals0 * market.token0_usd
        + r.token1_per_second / 10.0**pool.decimals1 * market.token1_usd
    )


@dataclass(frozen=True)
class Refusal:
    """A refused rebalance that cannot pay while the conditions it was priced at hold."""

    key: tuple[bool, ...]
    rate_usd: float  # fees per unit of in-range liquidity, USD a second
    gas_usd: float  # the rebalance's gas
    log_price: float

    def holds(
        self, key: tuple[bool, ...], rate_usd: float, gas_usd: float, log_price: float
    ) -> bool:
        """True when a decision now would be refused again (module docstring)."""
        return (
            key == self.key
            and rate_usd <= self.rate_usd * (1.0 + MARGIN)
            and gas_usd >= self.gas_usd * (1.0 - MARGIN)
            and abs(log_price - self.log_price) <= math.log1p(MARGIN)
        )


def refusal(
    policy: RebalancePolicy,
    key: tuple[bool, ...],
    pool: PoolSnapshot,
    market: MarketInputs,
    holdings: TokenAmounts,
    *,
    log_price: float,
    stay_lvr_usd: float = 0.0,
) -> Refusal | None:
    """The refusal to remember after ``decide`` held with triggers firing, or None when a
    rebalance might pay before the conditions change (module docstring). ``holdings``: the
    position's principal, fees owed and the idle wallet, raw."""
    narrow = narrowest_range(policy, pool)
    rate = fee_rate_usd(market, pool)
    gas = market.rebalance_gas_usd
    if narrow is None or not (rate >= 0 and gas > 0):
        return None
    unit = position_amounts(pool.sqrt_price_x96, narrow.tick_lower, narrow.tick_upper, _UNIT_L)
    usd0 = market.token0_usd / 10.0**pool.decimals0
    usd1 = market.token1_usd / 10.0**pool.decimals1
    per_l = (unit.amount0 * usd0 + unit.amount1 * usd1) / _UNIT_L
    value = holdings.amount0 * usd0 + holdings.amount1 * usd1
    if per_l <= 0:
        return None
    # the price may move by MARGIN (value and value per unit of liquidity), the rate may rise
    # by MARGIN and the gas fall by MARGIN before the refusal lapses
    bound = rate * value / per_l * policy.horizon_seconds * (1.0 + MARGIN) ** 3
    # a move also saves the LVR the current range would lose (twice it: volatility may rise)
    bound += 2.0 * stay_lvr_usd * (1.0 + MARGIN) ** 3
    if bound > policy.min_gain_over_cost * gas * (1.0 - MARGIN):
        return None
    return Refusal(key, rate, gas, log_price)
