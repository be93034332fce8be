"""When to move the liquidity, and when to compound its fees: a pure policy.

Triggers make a rebalance worth considering: the price is out of range, within ``edge_pct`` of
an edge, the position is older than ``max_age_seconds``, or short-window volatility has moved
away from long-window volatility by more than ``vol_ratio_trigger`` either way.

A triggered move is priced by the expected-value model (``strategy.ev``, its sources there) over
``horizon_seconds`` at the larger of the short- and long-window volatilities:

- stay: the current liquidity left where it is, earning fees and losing LVR for the expected
  time the price spends in its range (an out-of-range position earns and loses nothing until the
  price returns);
- move: the target range (the strategy's; for an ``"auto"`` width, the one of its shape, or
  full range, whose expected value is highest), kept in range by re-centring, so it pays the
  costs now (gas given in USD for the chain, the swap's fee and price impact quoted on the pool
  with our own liquidity removed first, a slippage allowance) and the next expected re-centres
  (each: gas, and the fee and slippage of swapping half the capital), and loses LVR all the
  time, which is the divergence loss each re-centre realises.

It moves when ``gain > min_gain_over_cost x cost`` with ``gain`` the move's fees less LVR minus
the stay's, and ``cost`` the costs now and those of the next re-centres: with the default 1.0,
when EV(move) - EV(stay) > 0. A wider range is one more move (widening); both values and every
term are in the decision's reasons, and when both are below what withdrawing costs (its gas)
the reasons say that the model expects a loss either way.

Expected fees: the pool's recent fees per unit of in-range liquidity (``FeeRate``) times the
in-range liquidity now give the flow that in-range liquidity shares; a position of liquidity
``L`` gets ``L / (others + L)`` of it. Liquidity away from the current tick is taken as deep as
here.

Compound: when no rebalance is chosen and the price is in range, the fees owed are added to the
position when the added liquidity's expected fees less LVR over the horizon (staying in the
range, ``strategy.ev``) beat ``min_gain_over_cost`` times the cost of compounding: the gas of
collecting and adding them, and the cost (fee and price impact, at the marks) of the swap that
brings them to the range's ratio, and the fees owed are above ``compound_margin`` times that
cost. Where fees are below LVR it never compounds. With ``rebalance_rule = "fees"`` only the
older rule holds: fees owed above ``compound_margin`` times that cost.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

from lpbot.analytics.fees import FeeRate, uncollected_fees
from lpbot.analytics.types import (
    PoolSnapshot,
    PositionSnapshot,
    PriceHistory,
    RawAmount,
    TokenAmounts,
)
from lpbot.analytics.value import position_amounts
from lpbot.analytics.volatility import ewma_volatility
from lpbot.strategy.base import (
    AutoWidth,
    Range,
    RangeStrategy,
    distinct,
    max_usable_tick,
    min_usable_tick,
)
from lpbot.strategy.decision import Compound, Costs, Decision, Hold, Rebalance, Signals, Trigger
from lpbot.strategy.ev import ExpectedValue, expected_value, time_in_range, value_per_liquidity
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
    """Triggers, cost gate and compounding rule (module docstring). ``None`` disables a trigger.

    ``decision_interval_seconds``: how often the policy is asked; a range left is re-centred
    half of it later on average (the model's ``reaction_seconds``). ``rebalance_rule = "fees"``
    is the rule before the expected-value model, kept to compare with and to study the
    mechanics of rebalancing: move when the extra expected fees (passive, no LVR) beat the
    costs now.
    """

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
    decision_interval_seconds: float = 3600.0
    rebalance_rule: Literal["ev", "fees"] = "ev"

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
        _check("decision_interval_seconds", self.decision_interval_seconds, 0.0, strict=False)
        if self.rebalance_rule not in ("ev", "fees"):
            raise ValueError(f'rebalance_rule must be "ev" or "fees", got {self.rebalance_rule!r}')

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
        ev_stay = ev_move = None
        if triggers:
            reasons.append("triggers: " + ", ".join(t.value for t in triggers))
            try:
                priced = self._price_move(
                    pool, position, current, history, market, fees, idle, signals, reasons
                )
            except ValueError as exc:  # too little history, a pool too thin for the plan...
                refused = str(exc)
                reasons.append(f"no rebalance can be planned: {refused}")
                priced = None
            if priced is not None:
                plan, costs, ev_stay, ev_move = priced
                gain = (ev_move.fees_usd - ev_move.lvr_usd) - (ev_stay.fees_usd - ev_stay.lvr_usd)
                cost = ev_move.costs_now_usd + ev_move.future_costs_usd
                if self.rebalance_rule == "fees":  # the rule before the model: fees vs costs now
                    gain = self._fees_only_gain(pool, position, current, plan, market, signals)
                    cost = costs.total
                    reasons.append(f'rule "fees": extra fees ${gain:,.2f} vs costs now')
                reasons.append(f"stay: {ev_stay.describe()}")
                reasons.append(f"move: {ev_move.describe()}")
                reasons.append(
                    f"EV(move) - EV(stay) = ${gain - cost:,.2f}: gain ${gain:,.2f} over "
                    f"{self.horizon_seconds / 3600:g} h vs cost ${cost:,.2f} (gas "
                    f"{costs.gas_usd:.2f}, swap fee {costs.swap_fee_usd:.2f}, impact "
                    f"{costs.price_impact_usd:.2f}, slippage {costs.slippage_usd:.2f}, next "
                    f"re-centres {ev_move.future_costs_usd:.2f})"
                )
                withdraw = market.rebalance_gas_usd
                if ev_stay.net_usd < -withdraw and ev_move.net_usd < -withdraw:
                    reasons.append(
                        f"the model expects a loss whether it stays or moves; withdrawing "
                        f"(gas ${withdraw:,.2f}) loses less"
                    )
                if gain > self.min_gain_over_cost * cost:
                    return Rebalance(
                        new_range=plan.range,
                        expected_gain_usd=gain,
                        expected_cost_usd=cost,
                        reason=f"{triggers[0].value}: expected value of moving beats staying",
                        trigger=triggers[0],
                        triggers=triggers,
                        plan=plan,
                        costs=costs,
                        signals=signals,
                        reasons=tuple(reasons),
                        ev_stay=ev_stay,
                        ev_move=ev_move,
                    )
                reasons.append("the expected value of moving does not beat staying")

        compound = self._compound(pool, position, current, market, fees, signals, reasons)
        if compound is not None:
            return compound
        if not triggers:
            reason = "in range, no trigger"
        elif refused is not None:
            reason = f"triggered, but no rebalance can be planned: {refused}"
        elif gain is None:
            reason = "triggered, but the strategy keeps the current range"
        else:
            reason = "triggered, but the expected value of moving does not beat staying"
        return Hold(
            reason=reason,
            signals=signals,
            triggers=triggers,
            expected_gain_usd=gain,
            expected_cost_usd=cost,
            reasons=tuple(reasons),
            ev_stay=ev_stay,
            ev_move=ev_move,
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

    def _price_move(
        self,
        pool: PoolSnapshot,
        position: PositionSnapshot,
        current: Range,
        history: PriceHistory,
        market: MarketInputs,
        fees: TokenAmounts,
        idle: TokenAmounts | None,
        signals: Signals,
        reasons: list[str],
    ) -> tuple[OpenPlan, Costs, ExpectedValue, ExpectedValue] | None:
        """The plan, its costs and the expected values of staying and of moving (module
        docstring); None when the strategy keeps the current range."""
        sim, principal, note = _without_position(pool, position)
        capital0 = principal.amount0 + fees.amount0 + (idle.amount0 if idle else 0)
        capital1 = principal.amount1 + fees.amount1 + (idle.amount1 if idle else 0)
        ours = position.liquidity if signals.in_range else 0
        inputs = _EvInputs.of(pool, market, _sigma(signals), others=pool.liquidity - ours)
        target, why = self._choose(pool, history, market, inputs, capital0, capital1)
        if target == current:
            reasons.append("the strategy keeps the current range" + (f" ({why})" if why else ""))
            return None
        if why:
            reasons.append(why)
        plan = plan_open(sim, target, capital0, capital1)
        reasons.append(note)
        costs = self._costs(pool, plan, market)
        capital_usd = _usd(capital0, capital1, pool, market)
        stay = self._ev(inputs, current, position.liquidity, managed=False)
        move = self._ev(
            inputs,
            target,
            plan.liquidity,
            managed=True,
            costs=costs,
            recentre_cost=self._recentre_cost(pool, market, capital_usd),
        )
        return plan, costs, stay, move

    def _fees_only_gain(
        self,
        pool: PoolSnapshot,
        position: PositionSnapshot,
        current: Range,
        plan: OpenPlan,
        market: MarketInputs,
        signals: Signals,
    ) -> float:
        """The extra fees of ``plan`` over the current range, each left in place for the horizon
        at the short-window volatility (``rebalance_rule = "fees"``)."""
        rate = market.fee_rate
        per_l = _usd(rate.token0_per_second, rate.token1_per_second, pool, market)
        sigma = signals.vol_short if math.isfinite(signals.vol_short) else 0.0
        log_price = 2.0 * math.log(pool.sqrt_price_x96 / Q96)

        def fees(rng: Range, liquidity: int) -> float:
            down = log_price - 2.0 * math.log(_sqrt(rng.tick_lower))
            up = 2.0 * math.log(_sqrt(rng.tick_upper)) - log_price
            occupancy = time_in_range(down, up, sigma, self.horizon_seconds)
            return per_l * liquidity * occupancy * self.horizon_seconds

        return fees(plan.range, plan.liquidity) - fees(current, position.liquidity)

    def choose_open_range(
        self,
        pool: PoolSnapshot,
        history: PriceHistory,
        market: MarketInputs,
        amount0: int,
        amount1: int,
    ) -> tuple[Range, str]:
        """The range to open ``amount0``/``amount1`` (raw) in and why: the strategy's, or for an
        ``"auto"`` width the one whose expected value is highest (module docstring)."""
        sigma = _sigma_of(history, self)
        inputs = _EvInputs.of(pool, market, sigma, others=pool.liquidity)
        return self._choose(pool, history, market, inputs, amount0, amount1)

    def pool_fee_to_lvr(
        self, pool: PoolSnapshot, history: PriceHistory, market: MarketInputs
    ) -> float:
        """The pool's fee rate over its LVR per unit of in-range liquidity at the policy's
        volatility (``strategy.ev``): below 1 every range is expected to lose. nan without a
        history to measure the volatility on."""
        if len(history) < 2:
            return math.nan
        return _EvInputs.of(pool, market, _sigma_of(history, self), others=0).fee_to_lvr

    def _choose(
        self,
        pool: PoolSnapshot,
        history: PriceHistory,
        market: MarketInputs,
        inputs: _EvInputs,
        capital0: int,
        capital1: int,
    ) -> tuple[Range, str]:
        strategy = self.strategy
        if not (isinstance(strategy, AutoWidth) and strategy.auto):
            return strategy.range_for(pool, history), ""
        capital_usd = _usd(capital0, capital1, pool, market)
        recentre = self._recentre_cost(pool, market, capital_usd)
        best: tuple[float, Range, ExpectedValue] | None = None
        spacing = pool.tick_spacing  # every shape widens to full range, which needs no swap
        full = Range(min_usable_tick(spacing), max_usable_tick(spacing), spacing)
        candidates = distinct([*strategy.candidates(pool, history), full])
        for rng in candidates:
            liquidity = inputs.liquidity_for(rng, capital_usd)
            swap = inputs.swap_cost(rng, capital0, capital1, pool.fee, self.slippage_bps)
            ev = self._ev(
                inputs,
                rng,
                liquidity,
                managed=True,
                costs=Costs(market.rebalance_gas_usd, swap, 0.0, 0.0),
                recentre_cost=recentre,
            )
            if best is None or ev.net_usd > best[0]:
                best = (ev.net_usd, rng, ev)
        if best is None:
            raise ValueError("the strategy offers no range")
        _net, rng, ev = best
        low = _sqrt(rng.tick_lower) ** 2 / inputs.sqrt_price**2 - 1.0
        high = _sqrt(rng.tick_upper) ** 2 / inputs.sqrt_price**2 - 1.0
        return rng, (
            f"auto width: [{rng.tick_lower}, {rng.tick_upper}) (price {low:+.1%} to "
            f"{high:+.1%}) has the "
            f"highest expected value of {len(candidates)} widths, "
            f"estimated {ev.describe()}; fee/LVR {inputs.fee_to_lvr:.2f}"
        )

    def _ev(
        self,
        inputs: _EvInputs,
        rng: Range,
        liquidity: float,
        *,
        managed: bool,
        costs: Costs | None = None,
        recentre_cost: float = 0.0,
    ) -> ExpectedValue:
        lower, upper = _sqrt(rng.tick_lower), _sqrt(rng.tick_upper)
        return expected_value(
            sqrt_price=inputs.sqrt_price,
            sqrt_lower=lower,
            sqrt_upper=upper,
            liquidity=float(liquidity),
            sigma=inputs.sigma,
            horizon_seconds=self.horizon_seconds,
            fee_flow_usd=inputs.fee_flow_usd,
            others_liquidity=inputs.others,
            token1_usd=inputs.token1_usd,
            gas_usd=costs.gas_usd if costs else 0.0,
            swap_fee_usd=costs.swap_fee_usd if costs else 0.0,
            price_impact_usd=(costs.price_impact_usd + costs.slippage_usd) if costs else 0.0,
            recentre_cost_usd=recentre_cost,
            managed=managed,
            reaction_seconds=self.decision_interval_seconds / 2,
        )

    def _recentre_cost(self, pool: PoolSnapshot, market: MarketInputs, capital_usd: float) -> float:
        """One future re-centre: gas, and the fee and slippage of swapping half the capital
        (from an edge, where the position is all one token, back to the middle)."""
        rate = pool.fee / 1e6 + self.slippage_bps / 10_000
        return market.rebalance_gas_usd + capital_usd / 2 * rate

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

    # ------------------------------------------------------------------------------- compound

    def _compound(
        self,
        pool: PoolSnapshot,
        position: PositionSnapshot,
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
        if self.rebalance_rule == "ev":  # no plan is needed to see the added liquidity lose
            inputs = _EvInputs.of(
                pool, market, _sigma(signals), others=pool.liquidity - position.liquidity
            )
            if inputs.fee_to_lvr <= 1.0:
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
        if self.rebalance_rule == "ev":
            if plan is None:
                return None
            added = self._ev(inputs, current, plan.liquidity, managed=False)
            gain = added.fees_usd - added.lvr_usd
            if gain <= self.min_gain_over_cost * cost:
                return None
            reasons.append(
                f"compounding ${signals.fees_usd:,.2f} of fees: the added liquidity's "
                f"{added.describe()}; gain ${gain:,.2f} > {self.min_gain_over_cost:g} x cost "
                f"(gas ${market.compound_gas_usd:,.2f} + swap ${swap_cost:,.2f})"
            )
        else:
            reasons.append(
                f"fees ${signals.fees_usd:,.2f} > {self.compound_margin:g} x (gas "
                f"${market.compound_gas_usd:,.2f} + swap ${swap_cost:,.2f})"
            )
        return Compound(
            fees0=fees.amount0,
            fees1=fees.amount1,
            fees_usd=signals.fees_usd,
            gas_usd=market.compound_gas_usd,
            reason=(
                "the added liquidity's expected fees less LVR beat the cost of compounding"
                if self.rebalance_rule == "ev"
                else "fees owed exceed the cost of compounding (gas and swap) by the margin"
            ),
            plan=plan,
            signals=signals,
            reasons=tuple(reasons),
            swap_cost_usd=swap_cost,
        )


@functools.lru_cache(maxsize=1 << 14)
def _sqrt(tick: int) -> float:
    return get_sqrt_ratio_at_tick(tick) / Q96


def _sigma(signals: Signals) -> float:
    """The volatility the model prices at: the larger of the two windows' (0 when unknown)."""
    known = [v for v in (signals.vol_short, signals.vol_long) if math.isfinite(v)]
    return max(known) if known else 0.0


def _sigma_of(history: PriceHistory, policy: RebalancePolicy) -> float:
    if len(history) < 2:
        return 0.0
    return max(
        ewma_volatility(history, policy.vol_short_halflife_seconds),
        ewma_volatility(history, policy.vol_long_halflife_seconds),
    )


@dataclass(frozen=True, slots=True)
class _EvInputs:
    """What the expected-value model reads at decision time (float, USD per raw unit)."""

    sqrt_price: float
    sigma: float
    fee_flow_usd: float  # USD a second to all in-range liquidity
    others: float  # in-range liquidity besides ours
    token0_usd: float  # per raw unit
    token1_usd: float
    fee_to_lvr: float

    @classmethod
    def of(
        cls, pool: PoolSnapshot, market: MarketInputs, sigma: float, *, others: int
    ) -> _EvInputs:
        from lpbot.strategy.ev import fee_to_lvr_ratio

        sqrt_price = pool.sqrt_price_x96 / Q96
        rate = market.fee_rate
        per_l_usd = _usd(rate.token0_per_second, rate.token1_per_second, pool, market)
        t0 = market.token0_usd / 10.0**pool.decimals0
        t1 = market.token1_usd / 10.0**pool.decimals1
        per_l_token1 = per_l_usd / t1
        return cls(
            sqrt_price=sqrt_price,
            sigma=sigma,
            fee_flow_usd=per_l_usd * pool.liquidity,
            others=float(max(others, 0)),
            token0_usd=t0,
            token1_usd=t1,
            fee_to_lvr=fee_to_lvr_ratio(per_l_token1, sqrt_price, sigma),
        )

    def liquidity_for(self, rng: Range, capital_usd: float) -> float:
        """The liquidity ``capital_usd`` buys in ``rng`` (no swap cost)."""
        per_l = value_per_liquidity(self.sqrt_price, _sqrt(rng.tick_lower), _sqrt(rng.tick_upper))
        return capital_usd / (per_l * self.token1_usd) if per_l > 0 else 0.0

    def swap_cost(
        self, rng: Range, amount0: int, amount1: int, fee_pips: int, slippage_bps: float
    ) -> float:
        """Estimated fee and slippage of the swap that brings the capital to ``rng``'s ratio."""
        s, sa, sb = self.sqrt_price, _sqrt(rng.tick_lower), _sqrt(rng.tick_upper)
        c = min(max(s, sa), sb)
        unit0 = (1.0 / c - 1.0 / sb) * s * s  # token0 of one unit of L, valued in token1
        unit1 = c - sa
        share0 = unit0 / (unit0 + unit1) if unit0 + unit1 > 0 else 0.5
        have0 = amount0 * self.token0_usd
        total = have0 + amount1 * self.token1_usd
        return abs(have0 - share0 * total) * (fee_pips / 1e6 + slippage_bps / 10_000)


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
