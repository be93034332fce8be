"""When to move the liquidity, and when to compound its fees: a pure policy.

Triggers make a rebalance worth considering: the price is out of range, within ``edge_pct`` of
an edge, the position is older than ``max_age_seconds``, or short-window volatility has moved
away from long-window volatility by more than ``vol_ratio_trigger`` either way. A triggered
rebalance happens only when its expected fee gain over ``horizon_seconds`` beats
``min_gain_over_cost`` times its cost: gas (given in USD for the chain), the swap's fee and price
impact (quoted on the pool, our own liquidity removed first) and a slippage allowance.

Expected fees (float, analytics): the pool's recent fees per unit of in-range liquidity
(``FeeRate``) times the in-range liquidity give the fee flow; a position of liquidity ``L`` gets
the share ``L / (others + L)`` of it while in range, for the expected fraction of the horizon the
price spends in its range (``volatility.expected_time_in_range`` with the short-window
volatility). The gain is that for the new range minus that for the current one. Liquidity away
from the current tick is taken as deep as here.

Compound: when no rebalance is chosen, the price is in range and the fees owed are worth more than
``compound_margin`` times the cost of compounding them: the gas of collecting and adding them,
and the cost (fee and price impact, at the marks) of the swap that brings them to the range's
ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpbot.analytics.fees import FeeRate, uncollected_fees
from lpbot.analytics.types import (
    PoolSnapshot,
    PositionSnapshot,
    PriceHistory,
    RawAmount,
    TokenAmounts,
)
from lpbot.analytics.value import position_amounts
from lpbot.analytics.volatility import ewma_volatility, expected_time_in_range
from lpbot.strategy.base import LOG_TICK, Range, RangeStrategy
from lpbot.strategy.decision import Compound, Costs, Decision, Hold, Rebalance, Signals, Trigger
from lpbot.strategy.open import OpenPlan, plan_open
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

_OWNER = "lpbot"


@dataclass(frozen=True, slots=True)
class MarketInputs:
    """Prices and costs at decision time (float, USD).

    ``rebalance_gas_usd``: gas of burn, collect, swap and mint on this chain; ``compound_gas_usd``:
    gas of collect and increaseLiquidity. ``fee_rate``: the pool's recent fees
    (``analytics.fees.fee_rate`` of two snapshots).
    """

    token0_usd: float
    token1_usd: float
    rebalance_gas_usd: float
    compound_gas_usd: float
    fee_rate: FeeRate

    def __post_init__(self) -> None:
        for name in ("token0_usd", "token1_usd"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        for name in ("rebalance_gas_usd", "compound_gas_usd"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")


def _check(name: str, value: float, low: float, *, strict: bool = True) -> None:
    ok = value > low if strict else value >= low
    if not (math.isfinite(value) and ok):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")


@dataclass(frozen=True, slots=True)
class RebalancePolicy:
    """Triggers, cost gate and compounding rule (module docstring). ``None`` disables a trigger."""

    strategy: RangeStrategy
    edge_pct: float | None = 1.0
    max_age_seconds: float | None = None
    vol_ratio_trigger: float | None = 2.0
    vol_short_halflife_seconds: float = 3600.0
    vol_long_halflife_seconds: float = 7 * 86_400.0
    horizon_seconds: float = 86_400.0
    slippage_bps: float = 10.0
    min_gain_over_cost: float = 1.0
    compound_margin: float = 2.0

    def __post_init__(self) -> None:
        if not callable(getattr(self.strategy, "range_for", None)):
            raise ValueError("strategy must have a range_for(snapshot, history) method")
        if self.edge_pct is not None:
            _check("edge_pct", self.edge_pct, 0.0)
        if self.max_age_seconds is not None:
            _check("max_age_seconds", self.max_age_seconds, 0.0)
        if self.vol_ratio_trigger is not None:
            _check("vol_ratio_trigger", self.vol_ratio_trigger, 1.0)
        _check("vol_short_halflife_seconds", self.vol_short_halflife_seconds, 0.0)
        if not self.vol_long_halflife_seconds > self.vol_short_halflife_seconds:
            raise ValueError(
                f"vol_long_halflife_seconds {self.vol_long_halflife_seconds} must exceed "
                f"vol_short_halflife_seconds {self.vol_short_halflife_seconds}"
            )
        _check("horizon_seconds", self.horizon_seconds, 0.0)
        _check("slippage_bps", self.slippage_bps, 0.0, strict=False)
        _check("min_gain_over_cost", self.min_gain_over_cost, 0.0, strict=False)
        _check("compound_margin", self.compound_margin, 0.0, strict=False)

    # --------------------------------------------------------------------------------- decide

    def decide(
        self,
        pool: PoolSnapshot,
        position: PositionSnapshot,
        history: PriceHistory,
        market: MarketInputs,
        *,
        idle: TokenAmounts | None = None,
    ) -> Decision:
        """Hold, rebalance or compound ``position``; ``idle`` is capital in the wallet to add."""
        fees = uncollected_fees(pool, position)
        signals = self.signals(pool, position, history, market, fees)
        triggers = self.triggers(signals)
        current = Range(position.tick_lower, position.tick_upper, pool.tick_spacing)
        reasons: list[str] = [_describe(signals)]
        gain = cost = None
        refused: str | None = None
        if triggers:
            reasons.append("triggers: " + ", ".join(t.value for t in triggers))
            try:
                target = self.strategy.range_for(pool, history)
                if target == current:
                    reasons.append("the strategy keeps the current range")
                    priced = None
                else:
                    priced = self._cost_rebalance(
                        pool, position, current, target, market, fees, idle, signals
                    )
            except ValueError as exc:  # too little history, a pool too thin for the plan...
                refused = str(exc)
                reasons.append(f"no rebalance can be planned: {refused}")
                priced = None
            if priced is not None:
                plan, costs, gain, note = priced
                reasons.append(note)
                cost = costs.total
                reasons.append(
                    f"expected gain ${gain:,.2f} over {self.horizon_seconds / 3600:g} h vs cost "
                    f"${cost:,.2f} (gas {costs.gas_usd:.2f}, swap fee {costs.swap_fee_usd:.2f}, "
                    f"impact {costs.price_impact_usd:.2f}, slippage {costs.slippage_usd:.2f})"
                )
                if gain > self.min_gain_over_cost * cost:
                    return Rebalance(
                        new_range=plan.range,
                        expected_gain_usd=gain,
                        expected_cost_usd=cost,
                        reason=f"{triggers[0].value}: expected gain beats cost",
                        trigger=triggers[0],
                        triggers=triggers,
                        plan=plan,
                        costs=costs,
                        signals=signals,
                        reasons=tuple(reasons),
                    )
                reasons.append("expected gain does not beat cost")

        compound = self._compound(pool, current, market, fees, signals, reasons)
        if compound is not None:
            return compound
        if not triggers:
            reason = "in range, no trigger"
        elif refused is not None:
            reason = f"triggered, but no rebalance can be planned: {refused}"
        elif gain is None:
            reason = "triggered, but the strategy keeps the current range"
        else:
            reason = "triggered, but the expected gain does not beat the cost"
        return Hold(
            reason=reason,
            signals=signals,
            triggers=triggers,
            expected_gain_usd=gain,
            expected_cost_usd=cost,
            reasons=tuple(reasons),
        )

    # -------------------------------------------------------------------------------- signals

    def signals(
        self,
        pool: PoolSnapshot,
        position: PositionSnapshot,
        history: PriceHistory,
        market: MarketInputs,
        fees: TokenAmounts,
    ) -> Signals:
        """What the triggers read: range, edge distance, age, volatility regime, fees."""
        in_range = position.tick_lower <= pool.tick < position.tick_upper
        edge = 0.0
        if in_range:
            sqrt_p = pool.sqrt_price_x96 / Q96
            pa = (get_sqrt_ratio_at_tick(position.tick_lower) / Q96 / sqrt_p) ** 2
            pb = (get_sqrt_ratio_at_tick(position.tick_upper) / Q96 / sqrt_p) ** 2
            edge = 100.0 * max(min(1.0 - pa, pb - 1.0), 0.0)
        vol_short = vol_long = ratio = math.nan
        if len(history) >= 2:
            vol_short = ewma_volatility(history, self.vol_short_halflife_seconds)
            vol_long = ewma_volatility(history, self.vol_long_halflife_seconds)
            ratio = vol_short / vol_long if vol_long > 0 else math.nan
        return Signals(
            in_range=in_range,
            edge_distance_pct=edge,
            age_seconds=pool.timestamp - position.opened_at,
            vol_short=vol_short,
            vol_long=vol_long,
            vol_ratio=ratio,
            fees_usd=_usd(fees.amount0, fees.amount1, pool, market),
        )

    def triggers(self, signals: Signals) -> tuple[Trigger, ...]:
        """The triggers that fire, most urgent first."""
        fired: list[Trigger] = []
        if not signals.in_range:
            fired.append(Trigger.OUT_OF_RANGE)
        elif self.edge_pct is not None and signals.edge_distance_pct < self.edge_pct:
            fired.append(Trigger.NEAR_EDGE)
        if self.vol_ratio_trigger is not None and math.isfinite(signals.vol_ratio):
            r = self.vol_ratio_trigger
            if signals.vol_ratio > r or signals.vol_ratio < 1.0 / r:
                fired.append(Trigger.VOLATILITY_REGIME)
        if self.max_age_seconds is not None and signals.age_seconds > self.max_age_seconds:
            fired.append(Trigger.AGE)
        return tuple(fired)

    # ---------------------------------------------------------------------------------- costs

    def _cost_rebalance(
        self,
        pool: PoolSnapshot,
        position: PositionSnapshot,
        current: Range,
        target: Range,
        market: MarketInputs,
        fees: TokenAmounts,
        idle: TokenAmounts | None,
        signals: Signals,
    ) -> tuple[OpenPlan, Costs, float, str]:
        sim, principal, note = _without_position(pool, position)
        capital0 = principal.amount0 + fees.amount0 + (idle.amount0 if idle else 0)
        capital1 = principal.amount1 + fees.amount1 + (idle.amount1 if idle else 0)
        plan = plan_open(sim, target, capital0, capital1)
        costs = self._costs(pool, plan, market)
        sigma = signals.vol_short if math.isfinite(signals.vol_short) else 0.0
        others = max(pool.liquidity - (position.liquidity if signals.in_range else 0), 0)
        gain = self._expected_fees_usd(
            pool, target, plan.liquidity, others, sigma, market
        ) - self._expected_fees_usd(pool, current, position.liquidity, others, sigma, market)
        return plan, costs, gain, note

    def _costs(self, pool: PoolSnapshot, plan: OpenPlan, market: MarketInputs) -> Costs:
        swap = plan.swap
        if swap is None:
            return Costs(market.rebalance_gas_usd, 0.0, 0.0, 0.0)
        price = (pool.sqrt_price_x96 / Q96) ** 2  # raw token1 per raw token0, before the swap
        net_in = swap.amount_in - swap.fee_amount
        if swap.zero_for_one:
            in_usd = _usd(swap.amount_in, 0, pool, market)
            fee_usd = _usd(swap.fee_amount, 0, pool, market)
            impact_usd = _usd(0, net_in * price - swap.expected_out, pool, market)
        else:
            in_usd = _usd(0, swap.amount_in, pool, market)
            fee_usd = _usd(0, swap.fee_amount, pool, market)
            impact_usd = _usd(net_in / price - swap.expected_out, 0, pool, market)
        return Costs(
            gas_usd=market.rebalance_gas_usd,
            swap_fee_usd=fee_usd,
            price_impact_usd=max(impact_usd, 0.0),
            slippage_usd=in_usd * self.slippage_bps / 10_000,
        )

    def _expected_fees_usd(
        self,
        pool: PoolSnapshot,
        rng: Range,
        liquidity: int,
        others: int,
        sigma: float,
        market: MarketInputs,
    ) -> float:
        """Expected fees over the horizon of ``liquidity`` in ``rng`` (module docstring)."""
        if liquidity <= 0 or others + liquidity <= 0:
            return 0.0
        rate = market.fee_rate
        per_liquidity_usd = _usd(rate.token0_per_second, rate.token1_per_second, pool, market)
        flow_usd = per_liquidity_usd * (others + liquidity)  # what in-range LPs share per second
        log_price = math.log(pool.sqrt_price_x96 / Q96) * 2
        down = log_price - rng.tick_lower * LOG_TICK
        up = rng.tick_upper * LOG_TICK - log_price
        occupancy = expected_time_in_range(down, up, sigma, self.horizon_seconds)
        share = liquidity / (others + liquidity)
        return flow_usd * share * occupancy * self.horizon_seconds

    # ------------------------------------------------------------------------------- compound

    def _compound(
        self,
        pool: PoolSnapshot,
        current: Range,
        market: MarketInputs,
        fees: TokenAmounts,
        signals: Signals,
        reasons: list[str],
    ) -> Compound | None:
        if not signals.in_range or signals.fees_usd <= self.compound_margin * (
            market.compound_gas_usd
        ):
            return None
        plan: OpenPlan | None
        try:
            plan = plan_open(pool, current, fees.amount0, fees.amount1)
        except ValueError as exc:  # fees too small to pay for one unit of liquidity
            plan = None
            reasons.append(f"no compounding plan: {exc}")
        # the swap that brings the fees to the range's ratio costs its fee and price impact:
        # what it pays in, less what it gets out, at the marks
        swap_cost = 0.0
        if plan is not None and plan.swap is not None:
            sw = plan.swap
            paid = (
                _usd(sw.amount_in, 0, pool, market)
                if sw.zero_for_one
                else _usd(0, sw.amount_in, pool, market)
            )
            got = (
                _usd(0, sw.expected_out, pool, market)
                if sw.zero_for_one
                else _usd(sw.expected_out, 0, pool, market)
            )
            swap_cost = max(paid - got, 0.0)
        cost = market.compound_gas_usd + swap_cost
        if signals.fees_usd <= self.compound_margin * cost:
            return None
        reasons.append(
            f"fees ${signals.fees_usd:,.2f} > {self.compound_margin:g} x (gas "
            f"${market.compound_gas_usd:,.2f} + swap ${swap_cost:,.2f})"
        )
        return Compound(
            fees0=fees.amount0,
            fees1=fees.amount1,
            fees_usd=signals.fees_usd,
            gas_usd=market.compound_gas_usd,
            reason="fees owed exceed the cost of compounding (gas and swap) by the margin",
            plan=plan,
            signals=signals,
            reasons=tuple(reasons),
            swap_cost_usd=swap_cost,
        )


def _usd(amount0: float, amount1: float, pool: PoolSnapshot, market: MarketInputs) -> float:
    """USD value of raw amounts (float)."""
    return (
        amount0 / 10.0**pool.decimals0 * market.token0_usd
        + amount1 / 10.0**pool.decimals1 * market.token1_usd
    )


def _describe(s: Signals) -> str:
    where = f"in range, {s.edge_distance_pct:.2f}% from an edge" if s.in_range else "out of range"
    return (
        f"{where}; age {s.age_seconds} s; vol ratio {s.vol_ratio:.2f}; fees owed ${s.fees_usd:,.2f}"
    )


def _without_position(
    pool: PoolSnapshot, position: PositionSnapshot
) -> tuple[Pool, TokenAmounts, str]:
    """The pool with the position burnt (what the rebalance's swap will meet) and its principal."""
    info = PositionInfo(
        liquidity=position.liquidity,
        fee_growth_inside0_last_x128=position.fee_growth_inside0_last_x128,
        fee_growth_inside1_last_x128=position.fee_growth_inside1_last_x128,
    )
    key = (_OWNER, position.tick_lower, position.tick_upper)
    sim = pool.to_pool(positions={key: info})
    if position.liquidity == 0:
        return sim, TokenAmounts(RawAmount(0), RawAmount(0)), "the position holds no liquidity"
    try:
        amount0, amount1 = sim.burn(
            _OWNER, position.tick_lower, position.tick_upper, position.liquidity
        )
    except UniswapRevert:
        principal = position_amounts(
            pool.sqrt_price_x96, position.tick_lower, position.tick_upper, position.liquidity
        )
        return (
            pool.to_pool(),
            principal,
            "swap quoted with the position's liquidity still in the pool "
            "(the snapshot lacks its ticks)",
        )
    return (
        sim,
        TokenAmounts(RawAmount(amount0), RawAmount(amount1)),
        "swap quoted with the position's liquidity removed",
    )
