"""A policy without slippage_bps gets one per plan, derived from the range's width, so that a
sandwich takes at most ``max_sandwich_bps`` of the position; a set value wins; above 300 bps
only with --force."""

from __future__ import annotations

from fractions import Fraction

import pytest

from lpbot.errors import Refused
from lpbot.execution import service
from lpbot.execution.plan import (
    MAX_SLIPPAGE_BPS,
    default_slippage_bps,
    range_slippage_bps,
    sandwich_bound_bps,
    sandwich_exposure,
)
from lpbot.strategy.base import Range
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick
from tests.execution.conftest import Setup

FULL = 887_272


@pytest.mark.parametrize(
    ("half_width", "take_at_50_bps"),
    # issue 27's figures: a sandwich's take, in bps of the swap, at 50 bps slippage
    [(600, 1.5), (2_000, 5.0), (20_000, 32.0), (FULL, 50.0)],
)
def test_the_take_per_bps_of_slippage_follows_the_mint_minimums(
    half_width: int, take_at_50_bps: float
) -> None:
    # a centred range's swap is half the position: twice the exposure is the take on the swap
    take = float(2 * 50 * sandwich_exposure(get_sqrt_ratio_at_tick(0), -half_width, half_width))
    assert take == pytest.approx(take_at_50_bps, rel=0.06)


def test_narrow_and_wide_ranges_get_different_defaults_each_within_the_bound() -> None:
    got = {h: default_slippage_bps(h, 5) for h in (600, 2_000, 20_000, FULL)}
    # a wide range's swap minimum binds: the tightest; a narrow one's mint minimums bind first
    assert got == {600: MAX_SLIPPAGE_BPS, 2_000: 105, 20_000: 15, FULL: 10}
    for h, bps in got.items():
        assert sandwich_bound_bps(bps, h) <= 5
        if bps < MAX_SLIPPAGE_BPS:  # the widest such: one more bps would pass the bound
            assert sandwich_bound_bps(bps + 1, h) > 5
    assert Fraction(49_999, 10_000) < sandwich_bound_bps(10, FULL) < 5  # all of it, nearly
    assert default_slippage_bps(20_000, 1) == 3  # a tighter bound, a tighter slippage


@pytest.mark.parametrize("spot", [-1_900, -1_000, 0, 700, 1_999, 2_000, 2_500])
def test_an_off_centre_spot_stays_within_the_bound(spot: int) -> None:
    """A skewed range: the swap can be most of the position, the minimums bind sooner on the
    near side; outside the range the swap is all of it and only the swap's minimum binds."""
    sqrt = get_sqrt_ratio_at_tick(spot)
    bps = range_slippage_bps(sqrt, -2_000, 2_000, 5)
    assert 5 <= bps <= MAX_SLIPPAGE_BPS
    assert bps * sandwich_exposure(sqrt, -2_000, 2_000) <= 5
    if abs(spot) >= 2_000:
        assert bps == 5  # all of it swapped, at the swap's minimum: the bound itself


@pytest.mark.devnet
def test_a_plan_derives_its_slippage_from_its_range_and_a_set_value_wins(setup: Setup) -> None:
    ctx = setup.ctx
    ctx.max_sandwich_bps = 5
    ctx.max_twap_deviation_bps = MAX_SLIPPAGE_BPS
    r = setup.new_range
    wide = Range(r.tick_lower - 19_600, r.tick_upper + 19_600, r.tick_spacing)  # +-20,000
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, wide, "test")
    spot = int(report["price"]["sqrt_price_x96"])
    derived = range_slippage_bps(spot, wide.tick_lower, wide.tick_upper, 5)
    assert report["slippage_bps"] == derived and 14 <= derived <= 16  # 15 for a centred range
    bound = derived * sandwich_exposure(spot, wide.tick_lower, wide.tick_upper)
    assert bound <= 5
    assert report["slippage_source"] == (
        "derived from the range's half-width of 20000 ticks: a sandwich takes at most "
        f"{float(bound):.2f} bps of the position (execution.max_sandwich_bps 5)"
    )
    # every minimum is the simulated amount less the derived slippage
    p = report["plan"]
    assert int(p["mint_min0"]) == int(p["mint0"]) * (10_000 - derived) // 10_000
    md = (ctx.reports_dir / f"{report['report_id']}.md").read_text()
    assert f"slippage tolerance {derived} bps (derived from the range's half-width of 20000" in md
    # a narrow range (+-400 ticks) gets a looser one, capped at 300 bps
    service.replan(ctx, ctx.repo.by_report(report["report_id"]).id)  # type: ignore[union-attr]
    _, narrow, _ = service.plan_rebalance(ctx, setup.token_id, r, "test")
    assert narrow["slippage_bps"] == MAX_SLIPPAGE_BPS
    assert narrow["slippage_source"].endswith(f"capped at {MAX_SLIPPAGE_BPS} bps")
    # a slippage the policy sets wins over the derived one
    ctx.max_sandwich_bps = None
    ctx.slippage_bps, ctx.slippage_source = 40, "positions.p.policy.slippage_bps"
    ctx.max_twap_deviation_bps = 40
    service.replan(ctx, ctx.repo.by_report(narrow["report_id"]).id)  # type: ignore[union-attr]
    _, set_, _ = service.plan_rebalance(ctx, setup.token_id, r, "test")
    assert set_["slippage_bps"] == 40
    assert set_["slippage_source"] == "positions.p.policy.slippage_bps"
    # above 300 bps only with --force (the command line raises ctx.max_slippage_bps)
    ctx.slippage_bps = 400
    with pytest.raises(Refused, match="above 300 bps"):
        service.plan_rebalance(ctx, setup.token_id, wide, "test")
    # through the module, a derived value never passes the module's own slippageBps (200 on
    # the devnet), which would refuse looser minimums
    ctx.via, ctx.max_sandwich_bps, ctx.max_twap_deviation_bps = "module", 5, MAX_SLIPPAGE_BPS
    _, by_module, _ = service.plan_rebalance(ctx, setup.token_id, r, "test")
    assert by_module["slippage_bps"] == 200 and "module_tx" in by_module
    assert by_module["slippage_source"].endswith("capped at the module's slippageBps 200")
