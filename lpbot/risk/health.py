"""Pool health: how much a pool's liquidity absorbs near its price, and what a trade there costs.

Pure (no I/O, no clock). Token amounts are exact raw ints from the exact core
(``lpbot.uniswap``): SqrtPriceMath's amount deltas summed over the initialized ticks crossed,
each segment rounded down (what the pool pays out). USD figures are ``Decimal``, each token at
its mark from the price source (``pricing``), the same marks every surface uses. Volume, fee
APR and concentration are float (analytics).

The measures (``evaluate_health``):

- depth within ±x: the tokens the liquidity holds between the price P and P(1+x) (token0, the
  amount a buyer of token0 takes out when pushing the price to P(1+x)) and between P(1-x) and P
  (token1, what a seller of token0 takes out pushing it to P(1-x)). Crossing initialized ticks
  changes the liquidity as ``swap`` does (``Tick.cross``). The rule reads both sides together
  (the sum of the two, as the usual "1% market depth" of an order book counts bids and asks
  within 1% of the mid price); each side is a trade that moves the price by exactly x (fees
  aside), and both are shown.
- effective spread for a trade of $N: the pool quotes (``Pool.quote_swap``, exact, fees
  included) a buy of token0 paying $N of token1 and a sell of $N of token0; the spread is
  ``(buy average - sell average) / mid``, in basis points. A pool's round trip pays its fee twice,
  so a 0.3% pool's spread is never under 60 bps.
- 24-hour volume and fee APR from the pool's fee rate over the last day (``FeeRate``, as the
  expected-value model reads it: ``execution.decide.measure_fee_rate``): fees per second to
  in-range liquidity are the rate times the pool's active liquidity (the EV model's fee flow),
  volume is those fees over the fee tier; the fee APR is the yield of full-range liquidity
  (fees per unit of liquidity per year over the value of a full-range unit, ``2 sqrt P`` in
  token1), a width-free measure of what the pool pays.
- concentration: the share of the depth within ±2% (both sides, USD) that sits within ±1%.
  About 0.5 for liquidity spread evenly in sqrt-price; near 1 when the liquidity ends within 1%
  of the price (one move away from a thin pool).

A depth target past the ticks read (``known``) counts only the ticks read: the depth is a lower
bound and says so; a spread quote that would leave them is not exact and is not given.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from lpbot.analytics.fees import FeeRate
from lpbot.analytics.types import SECONDS_PER_YEAR
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.sqrt_price_math import get_amount0_delta, get_amount1_delta
from lpbot.uniswap.tick import TickInfo
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
)

__all__ = [
    "DEPTH_BPS",
    "Depth",
    "HealthRule",
    "PoolHealth",
    "Spread",
    "depth_amounts",
    "evaluate_health",
    "target_sqrt_price",
]

DEPTH_BPS = (100, 200)  # the depths measured: within 1% and 2% of the price
OnUnhealthy = Literal["alert", "stressed"]


@dataclass(frozen=True, slots=True)
class HealthRule:
    """The configured health rule (``[health]``): at least ``min_depth_usd_1pct`` within 1% of
    the price (both sides together), and an effective spread of at most ``max_spread_bps`` for
    a trade of ``spread_trade_usd``."""

    min_depth_usd_1pct: Decimal = Decimal(500_000)
    max_spread_bps: Decimal = Decimal(30)
    spread_trade_usd: Decimal = Decimal(10_000)
    on_unhealthy: OnUnhealthy = "alert"

    def __post_init__(self) -> None:
        if self.min_depth_usd_1pct < 0 or self.max_spread_bps < 0:
            raise ValueError("health: min_depth_usd_1pct and max_spread_bps must be >= 0")
        if self.spread_trade_usd <= 0:
            raise ValueError("health: spread_trade_usd must be > 0")

    def describe(self) -> str:
        return (
            f">= ${self.min_depth_usd_1pct:,.0f} within 1% (both sides), spread <= "
            f"{self.max_spread_bps} bps for ${self.spread_trade_usd:,.0f}"
        )


@dataclass(frozen=True, slots=True)
class Depth:
    """What the liquidity holds within ``bps`` of the price: ``up0`` raw token0 between P and
    P(1+x), ``down1`` raw token1 between P(1-x) and P (rounded down), and their USD."""

    bps: int
    up0: int
    down1: int
    up_usd: Decimal
    down_usd: Decimal
    complete: bool  # both targets within the ticks read; else the amounts are lower bounds

    @property
    def usd(self) -> Decimal:
        """Both sides together: what the rule reads."""
        return self.up_usd + self.down_usd


@dataclass(frozen=True, slots=True)
class Spread:
    """The effective spread of a ``trade_usd`` round trip (exact quotes, fees included).

    ``buy_price``/``sell_price``: raw token1 per raw token0 paid and received on average;
    ``bps``: ``(buy - sell) / mid * 10_000``; None (with ``why``) when no exact quote exists."""

    trade_usd: Decimal
    bps: Decimal | None
    fee_bps: Decimal  # the fee tier's part of a round trip: 2 x fee
    buy_price: Fraction | None = None
    sell_price: Fraction | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class PoolHealth:
    """A pool's health at one block under ``rule``: the measures, the verdict and its reasons
    (every check, passed or failed, in the order the rule lists them)."""

    rule: HealthRule
    tick: int
    sqrt_price_x96: int
    liquidity: int
    depths: tuple[Depth, ...]
    spread: Spread
    volume_24h_usd: float | None
    fee_apr: float | None
    concentration: float | None
    healthy: bool
    reasons: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def verdict(self) -> str:
        return "healthy" if self.healthy else "unhealthy"

    @property
    def wants_stress(self) -> bool:
        """Below the rule, and the rule says the position should then move to the stressed
        regime (``on_unhealthy = "stressed"``): what the market regime reads."""
        return not self.healthy and self.rule.on_unhealthy == "stressed"

    def depth(self, bps: int) -> Depth:
        for d in self.depths:
            if d.bps == bps:
                return d
        raise KeyError(f"no depth within {bps} bps measured")

    def line(self) -> str:
        """One line for a screen: the verdict, the two measures the rule reads, and why."""
        d1 = self.depth(100)
        spread = "n/a" if self.spread.bps is None else f"{self.spread.bps:.1f} bps"
        text = (
            f"{self.verdict}: depth ±1% ${d1.down_usd:,.0f} / ${d1.up_usd:,.0f}"
            f"{'' if d1.complete else ' (at least)'}, spread {spread} for "
            f"${self.rule.spread_trade_usd:,.0f}"
        )
        if self.volume_24h_usd is not None:
            text += f", 24h volume ${self.volume_24h_usd:,.0f}"
        if self.fee_apr is not None:
            text += f", fee APR {self.fee_apr:.2%}"
        if self.problems:
            text += " — " + "; ".join(self.problems)
        return text

    def to_json(self) -> dict[str, Any]:
        """JSON: USD and bps as decimal strings, raw amounts as strings of digits, analytics as
        numbers."""
        return {
            "verdict": self.verdict,
            "healthy": self.healthy,
            "rule": {
                "min_depth_usd_1pct": str(self.rule.min_depth_usd_1pct),
                "max_spread_bps": str(self.rule.max_spread_bps),
                "spread_trade_usd": str(self.rule.spread_trade_usd),
                "on_unhealthy": self.rule.on_unhealthy,
            },
            "tick": self.tick,
            "sqrt_price_x96": str(self.sqrt_price_x96),
            "liquidity": str(self.liquidity),
            "depth": {
                f"{d.bps / 100:g}pct": {
                    "up_amount0": str(d.up0),
                    "down_amount1": str(d.down1),
                    "up_usd": str(d.up_usd.quantize(Decimal("0.01"))),
                    "down_usd": str(d.down_usd.quantize(Decimal("0.01"))),
                    "complete": d.complete,
                }
                for d in self.depths
            },
            "spread": {
                "trade_usd": str(self.spread.trade_usd),
                "bps": None if self.spread.bps is None else str(self.spread.bps),
                "fee_bps": str(self.spread.fee_bps),
                "why": self.spread.why or None,
            },
            "volume_24h_usd": self.volume_24h_usd,
            "fee_apr": self.fee_apr,
            "concentration": self.concentration,
            "reasons": list(self.reasons),
            "problems": list(self.problems),
        }


# ------------------------------------------------------------------------------------ depth


def target_sqrt_price(sqrt_price_x96: int, bps: int) -> int:
    """``sqrt(P * (1 + bps / 10_000))`` in Q64.96, rounded down (``bps`` may be negative),
    clamped to the pool's sqrt-price bounds."""
    if bps <= -10_000:
        raise ValueError(f"bps must be > -10000, got {bps}")
    target = math.isqrt(sqrt_price_x96 * sqrt_price_x96 * (10_000 + bps) // 10_000)
    return min(max(target, MIN_SQRT_RATIO), MAX_SQRT_RATIO)


def _net_ticks(ticks: Mapping[int, TickInfo]) -> tuple[list[int], list[int]]:
    """The initialized ticks in order, and their liquidity net."""
    keys = sorted(t for t, info in ticks.items() if info.initialized)
    return keys, [ticks[t].liquidity_net for t in keys]


def depth_amounts(
    sqrt_price_x96: int,
    tick: int,
    liquidity: int,
    ticks: Mapping[int, TickInfo],
    targets: Sequence[int],
) -> list[int]:
    """The raw amounts the liquidity holds between the price and each target sqrt price: token0
    for a target above the price, token1 for one below (SqrtPriceMath.getAmount0Delta /
    getAmount1Delta, rounded down per segment between initialized ticks).

    The liquidity changes at each initialized tick as the pool's ``swap`` crosses it: going up,
    ticks above ``tick`` add their net; going down, ticks at or below ``tick`` subtract it."""
    keys, nets = _net_ticks(ticks)
    out: list[int] = []
    up = sorted(t for t in targets if t >= sqrt_price_x96)
    down = sorted((t for t in targets if t < sqrt_price_x96), reverse=True)
    found: dict[int, int] = {}
    # upward: token0
    i, s, L, total = bisect_right(keys, tick), sqrt_price_x96, liquidity, 0
    for target in up:
        while i < len(keys):
            boundary = get_sqrt_ratio_at_tick(keys[i])
            if boundary >= target:
                break
            total += get_amount0_delta(s, boundary, L, False) if boundary > s else 0
            L += nets[i]
            if L < 0:
                raise ValueError(f"liquidity below 0 after tick {keys[i]}: ticks incomplete")
            s = max(s, boundary)
            i += 1
        found[target] = total + (get_amount0_delta(s, target, L, False) if target > s else 0)
    # downward: token1
    i, s, L, total = bisect_right(keys, tick) - 1, sqrt_price_x96, liquidity, 0
    for target in down:
        while i >= 0:
            boundary = get_sqrt_ratio_at_tick(keys[i])
            if boundary <= target:
                break
            total += get_amount1_delta(boundary, s, L, False) if boundary < s else 0
            L -= nets[i]
            if L < 0:
                raise ValueError(f"liquidity below 0 below tick {keys[i]}: ticks incomplete")
            s = min(s, boundary)
            i -= 1
        found[target] = total + (get_amount1_delta(target, s, L, False) if target < s else 0)
    for t in targets:
        out.append(found[t])
    return out


# ----------------------------------------------------------------------------------- spread


def _usd_to_raw(usd: Decimal, mark: Decimal, decimals: int) -> int:
    """Raw units of a token worth ``usd`` at ``mark`` USD per whole token, rounded down."""
    return int(usd / mark * Decimal(10) ** decimals)


def _spread(
    pool: Pool,
    known: tuple[int, int],
    trade_usd: Decimal,
    decimals: tuple[int, int],
    usd: tuple[Decimal, Decimal],
) -> Spread:
    fee_bps = Decimal(2 * pool.fee) / 100
    if usd[0] <= 0 or usd[1] <= 0:
        return Spread(trade_usd, None, fee_bps, why="a token has no USD mark")
    in1 = _usd_to_raw(trade_usd, usd[1], decimals[1])
    in0 = _usd_to_raw(trade_usd, usd[0], decimals[0])
    if in0 <= 0 or in1 <= 0:
        return Spread(trade_usd, None, fee_bps, why="the trade is below one raw unit")
    try:
        buy = pool.quote_swap(False, in1, MAX_SQRT_RATIO - 1)
        sell = pool.quote_swap(True, in0, MIN_SQRT_RATIO + 1)
    except UniswapRevert as exc:
        return Spread(trade_usd, None, fee_bps, why=f"the quote reverts: {exc}")
    if not (known[0] <= sell.tick and buy.tick <= known[1]):
        return Spread(
            trade_usd, None, fee_bps,
            why=f"a ${trade_usd:,.0f} trade moves the price past the ticks read",
        )  # fmt: skip
    got0, got1 = -buy.amount0, -sell.amount1
    if got0 <= 0 or got1 <= 0 or buy.amount1 < in1 or sell.amount0 < in0:
        return Spread(trade_usd, None, fee_bps, why=f"the pool cannot fill ${trade_usd:,.0f}")
    buy_price = Fraction(buy.amount1, got0)  # raw token1 paid per raw token0 received
    sell_price = Fraction(got1, sell.amount0)
    mid = Fraction(pool.slot0.sqrt_price_x96 * pool.slot0.sqrt_price_x96, Q96 * Q96)
    bps = (buy_price - sell_price) / mid * 10_000
    return Spread(
        trade_usd,
        (Decimal(bps.numerator) / Decimal(bps.denominator)).quantize(Decimal("0.01")),
        fee_bps,
        buy_price,
        sell_price,
    )


# ----------------------------------------------------------------------------------- health


def evaluate_health(
    pool: Pool,
    *,
    rule: HealthRule,
    decimals: tuple[int, int],
    usd: tuple[Decimal, Decimal],
    known: tuple[int, int] = (MIN_TICK, MAX_TICK),
    fee_rate: FeeRate | None = None,
) -> PoolHealth:
    """The pool's health (module docstring) under ``rule``.

    ``pool``: the exact core's pool as read (``PoolSnapshot.to_pool``), whose ticks are every
    initialized tick in ``known``; ``usd``: USD per whole token0 and token1 (the marks);
    ``fee_rate``: the pool's fee rate over the last day (None: volume and APR unknown)."""
    sp, tick, liquidity = pool.slot0.sqrt_price_x96, pool.slot0.tick, pool.liquidity
    targets = [target_sqrt_price(sp, sign * b) for b in DEPTH_BPS for sign in (1, -1)]
    amounts = depth_amounts(sp, tick, liquidity, pool.ticks, targets)
    low, high = (
        get_sqrt_ratio_at_tick(max(known[0], MIN_TICK)),
        get_sqrt_ratio_at_tick(min(known[1] + 1, MAX_TICK)),
    )
    unit0 = usd[0] / Decimal(10) ** decimals[0]
    unit1 = usd[1] / Decimal(10) ** decimals[1]
    depths: list[Depth] = []
    for k, bps in enumerate(DEPTH_BPS):
        up0, down1 = amounts[2 * k], amounts[2 * k + 1]
        complete = targets[2 * k] <= high and targets[2 * k + 1] >= low
        depths.append(Depth(bps, up0, down1, up0 * unit0, down1 * unit1, complete))
    spread = _spread(pool, known, rule.spread_trade_usd, decimals, usd)

    volume: float | None = None
    apr: float | None = None
    if fee_rate is not None and fee_rate.seconds > 0:
        per_l_usd = fee_rate.token0_per_second * float(unit0) + fee_rate.token1_per_second * float(
            unit1
        )
        fees_per_second = per_l_usd * liquidity
        volume = fees_per_second * 86_400 / (pool.fee / 1e6) if pool.fee else None
        sqrt_p = sp / Q96
        unit_value_usd = 2.0 * sqrt_p * float(unit1)  # a full-range unit of liquidity
        apr = per_l_usd * SECONDS_PER_YEAR / unit_value_usd if unit_value_usd > 0 else None
    d1, d2 = depths[0], depths[1]
    concentration = float(d1.usd / d2.usd) if d2.usd > 0 else None

    reasons: list[str] = []
    problems: list[str] = []
    at_least = "" if d1.complete else " (at least: the ticks read end before 1%)"
    depth_text = (
        f"depth within 1%: ${d1.down_usd:,.0f} below, ${d1.up_usd:,.0f} above "
        f"(${d1.usd:,.0f} in all){at_least}"
    )
    if d1.usd >= rule.min_depth_usd_1pct:
        reasons.append(f"{depth_text} >= ${rule.min_depth_usd_1pct:,.0f}")
    else:
        problems.append(f"{depth_text}: below ${rule.min_depth_usd_1pct:,.0f}")
    if spread.bps is None:
        problems.append(f"no spread for ${rule.spread_trade_usd:,.0f}: {spread.why}")
    else:
        spread_text = (
            f"spread {spread.bps:.1f} bps for ${rule.spread_trade_usd:,.0f} "
            f"(fees {spread.fee_bps:g} bps of it)"
        )
        if spread.bps <= rule.max_spread_bps:
            reasons.append(f"{spread_text} <= {rule.max_spread_bps} bps")
        else:
            problems.append(f"{spread_text}: above {rule.max_spread_bps} bps")
    return PoolHealth(
        rule=rule,
        tick=tick,
        sqrt_price_x96=sp,
        liquidity=liquidity,
        depths=tuple(depths),
        spread=spread,
        volume_24h_usd=volume,
        fee_apr=apr,
        concentration=concentration,
        healthy=not problems,
        reasons=tuple(reasons + problems),
        problems=tuple(problems),
    )
