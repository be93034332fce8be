"""What each level does: elevated widens the next range, stressed withdraws or goes widest."""

from __future__ import annotations

import pytest

from lpbot.risk.actions import RegimeActions, policy_for, widened
from lpbot.risk.regime import Level
from lpbot.strategy import FixedWidth, FullRange, RebalancePolicy, SkewedBand, VolatilityBand


def test_each_level_asks_for_its_configured_actions() -> None:
    actions = RegimeActions(widen_factor=3.0, hedge_band_factor=0.25, stressed_action="widest",
                            stressed_hedge="resize")  # fmt: skip
    normal, elevated, stressed = (actions.for_level(level) for level in Level)
    assert (normal.widen_factor, normal.hedge_band_factor, normal.liquidity, normal.hedge) == (
        1.0, 1.0, "keep", "keep",
    )  # fmt: skip
    assert (elevated.widen_factor, elevated.hedge_band_factor, elevated.liquidity) == (
        3.0, 0.25, "keep",
    )  # fmt: skip
    assert (stressed.liquidity, stressed.hedge) == ("widest", "resize")
    with pytest.raises(ValueError, match="widen_factor"):
        RegimeActions(widen_factor=0.5)
    with pytest.raises(ValueError, match="hedge_band_factor"):
        RegimeActions(hedge_band_factor=1.5)


def test_widening_scales_every_width_of_each_strategy() -> None:
    assert widened(FixedWidth(half_width_ticks=600), 2.0) == FixedWidth(half_width_ticks=1200)
    assert widened(FixedWidth(half_width_pct=5.0), 2.0) == FixedWidth(half_width_pct=10.0)
    assert widened(FixedWidth(half_width_pct=60.0), 2.0) == FixedWidth(half_width_pct=99.0)
    auto = FixedWidth(half_width_pct="auto")
    assert widened(auto, 2.0) == auto  # the expected value chooses among every width
    band = widened(VolatilityBand(k=2.0, min_half_width_ticks=10, max_half_width_ticks=5000), 1.5)
    assert isinstance(band, VolatilityBand)
    assert (band.k, band.min_half_width_ticks, band.max_half_width_ticks) == (3.0, 15, 7500)
    skewed = widened(SkewedBand(band=VolatilityBand(k=1.0), max_shift=0.3), 2.0)
    assert isinstance(skewed, SkewedBand) and skewed.band.k == 2.0 and skewed.max_shift == 0.3
    assert widened(FullRange(), 4.0) == FullRange()


def test_the_elevated_policy_decides_with_the_wider_strategy() -> None:
    policy = RebalancePolicy(strategy=FixedWidth(half_width_pct=5.0), edge_pct=1.0)
    actions = RegimeActions(widen_factor=2.0)
    assert policy_for(policy, actions.for_level(Level.NORMAL)) is policy
    elevated = policy_for(policy, actions.for_level(Level.ELEVATED))
    assert elevated.strategy == FixedWidth(half_width_pct=10.0)
    assert elevated.edge_pct == policy.edge_pct  # only the range's width changes
