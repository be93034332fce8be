"""Widths chosen by expected value ("auto"), and moves only when EV(move) beats EV(stay)."""

from __future__ import annotations

import dataclasses

import pytest

from lpbot.strategy import (
    Compound,
    FixedWidth,
    Hold,
    Rebalance,
    SkewedBand,
    Trigger,
    VolatilityBand,
)
from lpbot.strategy.base import Range, max_usable_tick, min_usable_tick

from .test_rebalance import UPPER, policy, scenario

AUTO_BAND = VolatilityBand(horizon_seconds=86_400, halflife_seconds=86_400)  # k = "auto"
CAPITAL = (10**18, 3_000 * 10**6)  # 1 WETH and 3,000 USDC


def test_auto_is_the_default_width_and_a_plain_range_for_falls_back_to_k_2() -> None:
    s = scenario()
    assert VolatilityBand().auto and not VolatilityBand(k=2.0).auto
    assert AUTO_BAND.range_for(s.after, s.history) == VolatilityBand(
        k=2.0, horizon_seconds=86_400, halflife_seconds=86_400
    ).range_for(s.after, s.history)
    for strategy in (AUTO_BAND, FixedWidth(half_width_pct="auto"), SkewedBand(band=AUTO_BAND)):
        ranges = strategy.candidates(s.after, s.history)
        assert len(ranges) > 10 and len(set(ranges)) == len(ranges)
        assert all(r.contains(s.after.tick) for r in ranges)
        assert ranges[0].width_ticks < ranges[-1].width_ticks
    with pytest.raises(ValueError, match='"auto"'):
        VolatilityBand(k="wide")  # type: ignore[arg-type]


def test_below_one_fee_to_lvr_the_widest_range_and_above_it_a_narrow_one() -> None:
    quiet, busy = scenario(volume_eth=300), scenario(volume_eth=20_000)
    p = policy(strategy=AUTO_BAND)
    wide, why_wide = p.choose_open_range(quiet.after, quiet.history, quiet.market(), *CAPITAL)
    narrow, why = p.choose_open_range(busy.after, busy.history, busy.market(), *CAPITAL)
    assert wide == Range(min_usable_tick(10), max_usable_tick(10), 10)  # full range
    assert "fee/LVR 0.08" in why_wide and "fee/LVR 5.04" in why
    assert 0 < narrow.width_ticks < 1_000 and narrow.contains(busy.after.tick)
    assert "re-centres" in why  # the narrow range's next re-centres are priced in
    fixed = policy(strategy=FixedWidth(half_width_pct="auto"))
    full, _ = fixed.choose_open_range(quiet.after, quiet.history, quiet.market(), *CAPITAL)
    assert full.tick_upper == max_usable_tick(10)


def test_out_of_range_stays_where_fees_are_below_lvr_and_moves_where_above() -> None:
    for volume, kind in ((300, Hold), (20_000, Rebalance)):
        s = scenario(move_to_tick=UPPER + 300, volume_eth=volume)
        # the pool's fee rate as its trading pays it (the move itself paid a burst of fees)
        rate = scenario(volume_eth=volume).market().fee_rate
        market = dataclasses.replace(s.market(gas=2.0), fee_rate=rate)
        d = policy(strategy=AUTO_BAND, compound_margin=1e9).decide(
            s.after, s.position, s.history, market
        )
        assert isinstance(d, kind), d.reasons
        assert Trigger.OUT_OF_RANGE in d.triggers
        assert d.ev_stay is not None and d.ev_move is not None
        stay, move = d.ev_stay, d.ev_move
        assert stay.time_in_range < 0.1  # out of range: the price seldom comes back in a day
        assert (move.net_usd > stay.net_usd) == (kind is Rebalance)
        assert any(r.startswith("stay: EV $") for r in d.reasons)
        assert any(r.startswith("move: EV $") for r in d.reasons)


def test_compounds_only_where_the_added_liquidity_earns_more_than_its_lvr_and_cost() -> None:
    for volume, compounds in ((3_000, False), (20_000, True)):  # fee/LVR 0.76 and 5.04
        s = scenario(volume_eth=volume)
        d = policy(compound_margin=2.0).decide(
            s.after, s.position, s.history, s.market(compound_gas=0.01)
        )
        assert isinstance(d, Compound) == compounds, d.reasons
        assert d.signals.fees_usd > 2 * 0.01  # the older rule would compound both
    assert isinstance(d, Compound) and "the added liquidity's EV $" in d.reasons[-1]
    # the gain must beat the cost: a gas price that eats it holds
    held = policy().decide(s.after, s.position, s.history, s.market(compound_gas=50.0))
    assert isinstance(held, Hold)
