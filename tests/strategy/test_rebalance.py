"""The rebalance policy: holds in range, rebalances out of range only when gain beats cost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from lpbot.analytics.fees import fee_rate
from lpbot.analytics.types import PoolSnapshot, PositionSnapshot, PriceHistory
from lpbot.analytics.value import price_from_sqrt_x96
from lpbot.strategy import (
    Compound,
    FixedWidth,
    Hold,
    MarketInputs,
    Range,
    Rebalance,
    RebalancePolicy,
    Trigger,
    VolatilityBand,
)
from lpbot.uniswap import Pool
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

from .pools import ONE_FOR_ZERO_LIMIT, ZERO_FOR_ONE_LIMIT, gbm_history, seeded_pool, snap

ETH_TICK = -196_250  # token0 WETH (18), token1 USDC (6), ~3000 USDC per WETH
LOWER, UPPER = snap(ETH_TICK - 600, 10), snap(ETH_TICK + 600, 10)
LP_LIQUIDITY = 5 * 10**15  # about 5 ETH and 15k USDC
HOUR = 3600


@dataclass
class Scenario:
    pool: Pool
    before: PoolSnapshot
    after: PoolSnapshot
    position: PositionSnapshot
    history: PriceHistory

    def market(self, gas: float = 2.0, compound_gas: float = 1.0) -> MarketInputs:
        eth = price_from_sqrt_x96(self.after.sqrt_price_x96, 18, 6)
        return MarketInputs(
            token0_usd=eth,
            token1_usd=1.0,
            rebalance_gas_usd=gas,
            compound_gas_usd=compound_gas,
            fee_rate=fee_rate(self.before, self.after),
        )


def scenario(
    *, move_to_tick: int | None = None, volume_eth: int = 300, history: PriceHistory | None = None
) -> Scenario:
    """Trade around the price for an hour (fees), then optionally move the price."""
    pool = seeded_pool(ETH_TICK)
    pool.mint("lp", LOWER, UPPER, LP_LIQUIDITY)
    before = PoolSnapshot.from_pool(pool, decimals0=18, decimals1=6)
    for _i in range(20):
        pool.block_timestamp += HOUR // 20
        pool.swap(True, volume_eth * 10**18 // 20, ZERO_FOR_ONE_LIMIT)
        pool.swap(False, volume_eth * 3000 * 10**6 // 20, ONE_FOR_ZERO_LIMIT)
    if move_to_tick is not None:
        target = get_sqrt_ratio_at_tick(move_to_tick)
        pool.swap(target < pool.sqrt_price_x96, 10**40, target)
    after = PoolSnapshot.from_pool(pool, decimals0=18, decimals1=6)
    position = PositionSnapshot.from_pool(pool, "lp", LOWER, UPPER, opened_at=0)
    hist = history or gbm_history(2_000, sigma_annual=0.5, seed=4, end=pool.block_timestamp)
    return Scenario(pool, before, after, position, hist)


BAND = VolatilityBand(k=2.0, horizon_seconds=86_400, halflife_seconds=86_400)


def policy(**kwargs: object) -> RebalancePolicy:
    defaults: dict[str, object] = {"strategy": BAND, "vol_ratio_trigger": None}
    defaults.update(kwargs)
    return RebalancePolicy(**defaults)  # type: ignore[arg-type]


def test_holds_in_range_without_a_trigger() -> None:
    s = scenario()
    decision = policy(compound_margin=1e9).decide(s.after, s.position, s.history, s.market())
    assert isinstance(decision, Hold)
    assert decision.reason == "in range, no trigger"
    assert decision.triggers == () and decision.expected_gain_usd is None
    assert decision.signals.in_range and decision.signals.edge_distance_pct > 1.0
    assert decision.reasons


def test_rebalances_out_of_range_when_the_gain_beats_the_cost() -> None:
    s = scenario(move_to_tick=ETH_TICK + 900)
    decision = policy().decide(s.after, s.position, s.history, s.market(gas=2.0))
    assert isinstance(decision, Rebalance)
    assert decision.trigger is Trigger.OUT_OF_RANGE
    assert decision.new_range.contains(s.after.tick)
    assert decision.expected_gain_usd > decision.expected_cost_usd > 2.0
    costs = decision.costs
    assert costs.gas_usd == 2.0 and costs.swap_fee_usd > 0 and costs.slippage_usd > 0
    assert costs.price_impact_usd >= 0
    # the cost is this move's and the next expected re-centres' (strategy.ev)
    ev_move, ev_stay = decision.ev_move, decision.ev_stay
    assert ev_move is not None and ev_stay is not None
    assert ev_move.recentres > 0 and ev_stay.recentres == 0
    assert costs.total + ev_move.future_costs_usd == pytest.approx(decision.expected_cost_usd)
    # moving pays: EV(move) - EV(stay) > 0, every term in the reasons
    assert ev_move.net_usd > ev_stay.net_usd
    assert decision.expected_gain_usd == pytest.approx(
        ev_move.fees_usd - ev_move.lvr_usd - (ev_stay.fees_usd - ev_stay.lvr_usd)
    )
    assert any(r.startswith("EV(move) - EV(stay) = $") for r in decision.reasons)
    # the position was all USDC above its range: the plan sells USDC for WETH
    plan = decision.plan
    assert plan.swap is not None and not plan.swap.zero_for_one
    assert plan.range == decision.new_range
    assert plan.dust0 <= plan.dust_bound0 and plan.dust1 <= plan.dust_bound1
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.expected_gain_usd = 0.0  # type: ignore[misc]


def test_holds_out_of_range_when_gas_eats_the_gain() -> None:
    s = scenario(move_to_tick=ETH_TICK + 900)
    decision = policy().decide(s.after, s.position, s.history, s.market(gas=50_000.0))
    assert isinstance(decision, Hold)
    assert Trigger.OUT_OF_RANGE in decision.triggers
    assert decision.expected_gain_usd is not None and decision.expected_cost_usd is not None
    assert decision.expected_gain_usd < decision.expected_cost_usd
    assert "does not beat" in decision.reason


def test_gain_grows_with_the_pools_fees() -> None:
    quiet = scenario(move_to_tick=ETH_TICK + 900, volume_eth=10)
    busy = scenario(move_to_tick=ETH_TICK + 900, volume_eth=600)
    p = policy(min_gain_over_cost=1e9)  # always hold, to read the numbers
    gain_quiet = p.decide(quiet.after, quiet.position, quiet.history, quiet.market())
    gain_busy = p.decide(busy.after, busy.position, busy.history, busy.market())
    assert isinstance(gain_quiet, Hold) and isinstance(gain_busy, Hold)
    assert gain_quiet.expected_gain_usd is not None and gain_busy.expected_gain_usd is not None
    assert 0 < gain_quiet.expected_gain_usd < gain_busy.expected_gain_usd


def test_near_edge_trigger() -> None:
    s = scenario(move_to_tick=UPPER - 40)  # ~0.4% below the upper edge
    decision = policy(edge_pct=1.0, min_gain_over_cost=1e9, compound_margin=1e9).decide(
        s.after, s.position, s.history, s.market()
    )
    assert isinstance(decision, Hold)
    assert decision.triggers == (Trigger.NEAR_EDGE,)
    assert 0 < decision.signals.edge_distance_pct < 1.0


def test_age_trigger() -> None:
    s = scenario()
    decision = policy(max_age_seconds=600, compound_margin=1e9).decide(
        s.after, s.position, s.history, s.market()
    )
    assert Trigger.AGE in (decision.triggers if not isinstance(decision, Compound) else ())
    assert decision.signals.age_seconds == HOUR


def test_volatility_regime_trigger() -> None:
    calm = gbm_history(3_000, sigma_annual=0.2, seed=1)
    wild = gbm_history(120, sigma_annual=3.0, seed=2, start_price=float(calm.prices[-1]))
    times = np.concatenate((calm.timestamps, calm.timestamps[-1] + 60 + wild.timestamps))
    s = scenario()
    history = PriceHistory(
        times - times[-1] + s.after.timestamp, np.concatenate((calm.prices, wild.prices))
    )
    p = policy(vol_ratio_trigger=2.0, compound_margin=1e9, min_gain_over_cost=1e9)
    decision = p.decide(s.after, s.position, history, s.market())
    assert isinstance(decision, Hold)
    assert Trigger.VOLATILITY_REGIME in decision.triggers
    assert decision.signals.vol_ratio > 2.0


def test_compounds_when_fees_beat_gas_by_the_margin_under_the_fees_rule() -> None:
    s = scenario(volume_eth=3_000)
    decision = policy(compound_margin=2.0, rebalance_rule="fees").decide(
        s.after, s.position, s.history, s.market(compound_gas=0.01)
    )
    assert isinstance(decision, Compound)
    assert decision.fees_usd > 2 * 0.01
    assert decision.fees0 > 0 and decision.fees1 > 0
    assert decision.plan is not None
    assert decision.plan.range == Range(LOWER, UPPER, 10)
    held = policy(compound_margin=2.0).decide(
        s.after, s.position, s.history, s.market(compound_gas=1e6)
    )
    assert isinstance(held, Hold)


def test_holds_when_the_strategy_keeps_the_range() -> None:
    s = scenario(move_to_tick=UPPER - 40)

    class Same:
        def range_for(self, snapshot: PoolSnapshot, history: PriceHistory) -> Range:
            return Range(LOWER, UPPER, 10)

    decision = policy(strategy=Same(), compound_margin=1e9).decide(
        s.after, s.position, s.history, s.market()
    )
    assert isinstance(decision, Hold)
    assert "keeps the current range" in decision.reason


def test_rebalance_prices_the_swap_without_our_own_liquidity() -> None:
    s = scenario(move_to_tick=ETH_TICK + 900)
    p = policy(strategy=FixedWidth(half_width_pct=5))
    decision = p.decide(s.after, s.position, s.history, s.market(gas=0.5))
    assert isinstance(decision, Rebalance)
    assert any("liquidity removed" in r for r in decision.reasons)
    # a snapshot without the position's ticks: quoted with the liquidity still in, and said so
    partial = dataclasses.replace(
        s.after, ticks=tuple(t for t in s.after.ticks if t.tick not in (LOWER, UPPER))
    )
    fallback = p.decide(partial, s.position, s.history, s.market(gas=0.5))
    assert isinstance(fallback, Rebalance)
    assert any("still in the pool" in r for r in fallback.reasons)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"edge_pct": -1.0}, "edge_pct"),
        ({"vol_ratio_trigger": 1.0}, "vol_ratio_trigger"),
        ({"vol_short_halflife_seconds": 10.0, "vol_long_halflife_seconds": 5.0}, "must exceed"),
        ({"horizon_seconds": 0.0}, "horizon_seconds"),
        ({"slippage_bps": -1.0}, "slippage_bps"),
        ({"strategy": object()}, "range_for"),
    ],
)
def test_policy_validates(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        policy(**kwargs)


def test_market_inputs_validate() -> None:
    s = scenario()
    with pytest.raises(ValueError, match="token0_usd"):
        dataclasses.replace(s.market(), token0_usd=0.0)
    with pytest.raises(ValueError, match="rebalance_gas_usd"):
        dataclasses.replace(s.market(), rebalance_gas_usd=-1.0)


def test_holds_with_the_reason_when_no_rebalance_can_be_planned() -> None:
    s = scenario(move_to_tick=ETH_TICK + 900)
    short = PriceHistory([float(s.after.timestamp)], [3000.0])  # one price: no volatility
    decision = policy().decide(s.after, s.position, short, s.market())
    assert isinstance(decision, Hold)
    assert decision.triggers == (Trigger.OUT_OF_RANGE,)
    assert "no rebalance can be planned" in decision.reason and "at least 2" in decision.reason
