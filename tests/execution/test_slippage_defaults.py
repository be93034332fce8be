"""A policy without slippage_bps gets one per plan, derived from the range's width, so that a
sandwich takes at most ``max_sandwich_bps`` of the position; a set value wins; above 300 bps
only with --force."""

from __future__ import annotations

from fractions import Fraction

import pytest

from lpbot.devnet.deploy import GAS, contract
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
from tests.execution.test_preflight import move_price

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


def _sqrt(tick: int) -> float:
    return float(1.0001 ** (tick / 2))


def _sell0(sqrt: float, liquidity: float, amount0: float) -> tuple[float, float]:
    """Token1 out and the sqrt price after selling ``amount0`` into constant liquidity."""
    after = 1 / (1 / sqrt + amount0 / liquidity)
    return liquidity * (sqrt - after), after


def _sandwich_take(low: int, high: int, pool_liquidity: float, slippage_bps: int) -> float:
    """From first principles: capital of 1 (token1 units) held in token0 is swapped to the
    range's ratio through a pool of constant liquidity and minted with minimums at
    ``slippage_bps``; an attacker sells token0 first and buys it back after. The most the
    batch loses (valued at the price it would have left) in bps, over the attacker's pushes
    that the swap's and the mint's minimums let through (the Safe holds 0.05 token1 spare)."""
    a, b, s, spare = _sqrt(low), _sqrt(high), slippage_bps / 10_000, 0.05
    lo, hi = 0.0, 1.0
    for _ in range(200):  # the swap that leaves the range's ratio at the price after it
        swap = (lo + hi) / 2
        out, after = _sell0(1.0, pool_liquidity, swap)
        if out / (1 - swap) < (after - a) / (1 / after - 1 / b):
            lo = swap
        else:
            hi = swap
    m0, m1 = 1 - swap, out

    def value(liquidity: float, left0: float, left1: float) -> float:
        held0 = liquidity * (1 / after - 1 / b) + left0
        return held0 * after * after + liquidity * (after - a) + left1

    minted = min(m0 / (1 / after - 1 / b), m1 / (after - a))
    base = value(minted, m0 - minted * (1 / after - 1 / b), m1 - minted * (after - a) + spare)
    worst, push = 0.0, 1e-6
    while push < 0.2:
        out2, at = _sell0(1.0 - push / 2, pool_liquidity, swap)
        push *= 1.002
        if out2 < m1 * (1 - s) or not a < at < b:
            continue
        liq = min(m0 / (1 / at - 1 / b), m1 / (at - a))
        used0, used1 = liq * (1 / at - 1 / b), liq * (at - a)
        if used0 < m0 * (1 - s) or used1 < m1 * (1 - s) or used1 > out2 + spare:
            continue
        worst = max(worst, (base - value(liq, m0 - used0, out2 - used1 + spare)) / base * 1e4)
    return worst


@pytest.mark.parametrize(
    ("low", "high", "pool_liquidity"),
    [(-600, 600, 1e4), (-20_000, 20_000, 1e4), (-FULL, FULL, 1e4), (-7_950, 50, 80.0)],
)
def test_the_derived_slippage_holds_the_bound_where_the_mint_happens(
    low: int, high: int, pool_liquidity: float
) -> None:
    """A swap large against the pool (2.3% price impact) into a range whose spot is near its
    edge: the mint happens at the price after the swap, nearer the range's middle, where its
    minimums bind later. Derived at the spot alone, 300 bps let a sandwich take 7.7 bps (more
    than 5); derived where the mint happens, it stays under the bound."""
    spot = get_sqrt_ratio_at_tick(0)
    lo, hi = 0.0, 1.0
    for _ in range(200):
        swap = (lo + hi) / 2
        out, after = _sell0(1.0, pool_liquidity, swap)
        if out / (1 - swap) < (after - _sqrt(low)) / (1 / after - 1 / _sqrt(high)):
            lo = swap
        else:
            hi = swap
    after_x96 = int(after * 2**96)
    derived = range_slippage_bps(spot, low, high, 5, after_x96)
    assert _sandwich_take(low, high, pool_liquidity, derived) <= 5
    if pool_liquidity < 100:
        assert range_slippage_bps(spot, low, high, 5) == MAX_SLIPPAGE_BPS
        assert _sandwich_take(low, high, pool_liquidity, MAX_SLIPPAGE_BPS) > 7.5
        assert derived < 200


@pytest.mark.devnet
def test_an_open_is_not_planned_at_a_spot_off_the_second_source(setup: Setup) -> None:
    """An open swaps the capital at the pool's spot, like a rebalance: a pool pushed 150 bps
    off (within a narrow range's 300 bps TWAP bound, past the second source's 100 bps) is
    refused before anything is recorded."""
    ctx = setup.ctx
    ctx.max_sandwich_bps = 5
    ctx.max_twap_deviation_bps = MAX_SLIPPAGE_BPS
    w3, trader = setup.chain.w3, setup.chain.manifest.accounts.traders[0]
    t0, _t1 = setup.tokens
    token = contract(w3, "TestERC20", t0)
    amount = token.functions.balanceOf(trader).call() // 10
    tx = token.functions.transfer(ctx.safe, amount).transact({"from": trader, "gas": GAS})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    move_price(setup, 150)
    with pytest.raises(Refused, match="from the reference price"):
        service.plan_open(ctx, "fresh", setup.pool, (amount, 0), lambda _s: setup.new_range, "test")
    assert ctx.repo.unfinished() == []
