"""Tick against Uniswap/v3-core test/Tick.spec.ts (v1.0.0)."""

from __future__ import annotations

import pytest

from lpbot.uniswap import tick as tick_lib
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.tick import (
    TickInfo,
    get_fee_growth_inside,
    tick_spacing_to_max_liquidity_per_tick,
)
from tests.uniswap.uniswap_testlib import MAX_UINT128, MAX_UINT256

# -------------------------------------------------------------- #tickSpacingToMaxLiquidityPerTick


@pytest.mark.parametrize(
    ("spacing", "expected"),
    [
        (10, 1917569901783203986719870431555990),  # low fee, 110.8 bits
        (60, 11505743598341114571880798222544994),  # medium fee, 113.1 bits
        (200, 38350317471085141830651933667504588),  # high fee, 114.7 bits
        (887272, MAX_UINT128 // 3),  # entire range, 126 bits
        (2302, 441351967472034323558203122479595605),  # 118 bits
    ],
)
def test_tick_spacing_to_max_liquidity_per_tick(spacing, expected):
    assert tick_spacing_to_max_liquidity_per_tick(spacing) == expected


def test_max_liquidity_per_tick_spacing_1():
    # utilities.ts getMaxLiquidityPerTick: MaxUint128 / ((max - min) / spacing + 1)
    assert tick_spacing_to_max_liquidity_per_tick(1) == MAX_UINT128 // (2 * 887272 + 1)


# ---------------------------------------------------------------------------- #getFeeGrowthInside


def _outside(fg0: int, fg1: int) -> TickInfo:
    return TickInfo(fee_growth_outside0_x128=fg0, fee_growth_outside1_x128=fg1, initialized=True)


@pytest.mark.parametrize(
    ("ticks", "current", "expected"),
    [
        ({}, 0, (15, 15)),  # returns all for two uninitialized ticks if tick is inside
        ({}, 4, (0, 0)),  # returns 0 ... if tick is above
        ({}, -4, (0, 0)),  # returns 0 ... if tick is below
        ({2: _outside(2, 3)}, 0, (13, 12)),  # subtracts upper tick if below
        ({-2: _outside(2, 3)}, 0, (13, 12)),  # subtracts lower tick if above
        ({-2: _outside(2, 3), 2: _outside(4, 1)}, 0, (9, 11)),  # subtracts upper and lower
        # works correctly with overflow on inside tick
        ({-2: _outside(MAX_UINT256 - 3, MAX_UINT256 - 2), 2: _outside(3, 5)}, 0, (16, 13)),
    ],
)
def test_get_fee_growth_inside(ticks, current, expected):
    assert get_fee_growth_inside(ticks, -2, 2, current, 15, 15) == expected


def test_get_fee_growth_inside_wraps_when_outside_exceeds_global():
    # price above the range: inside = global - below - above, each wrapping modulo 2**256
    ticks = {-2: _outside(10, 0), 2: _outside(4, 0)}
    # current above upper: above = global - outside(upper) = 15 - 4 = 11, below = 10
    assert get_fee_growth_inside(ticks, -2, 2, 5, 15, 0) == ((15 - 10 - 11) % 2**256, 0)
    assert get_fee_growth_inside(ticks, -2, 2, 5, 15, 0)[0] == MAX_UINT256 - 5


# ------------------------------------------------------------------------------------ #update


def _update(ticks, tick, current, delta, g0=0, g1=0, spl=0, tc=0, time=0, upper=False, max_liq=3):
    return tick_lib.update(ticks, tick, current, delta, g0, g1, spl, tc, time, upper, max_liq)


def test_update_flips():
    ticks: dict[int, TickInfo] = {}
    assert _update(ticks, 0, 0, 1) is True  # flips from zero to nonzero
    assert _update(ticks, 0, 0, 1) is False  # does not flip from nonzero to greater nonzero
    ticks = {}
    _update(ticks, 0, 0, 1)
    assert _update(ticks, 0, 0, -1) is True  # flips from nonzero to zero
    ticks = {}
    _update(ticks, 0, 0, 2)
    assert _update(ticks, 0, 0, -1) is False  # does not flip from nonzero to lesser nonzero


def test_update_reverts_lo_if_gross_exceeds_max():
    ticks: dict[int, TickInfo] = {}
    _update(ticks, 0, 0, 2)
    _update(ticks, 0, 0, 1, upper=True)
    before = ticks[0].copy()
    with pytest.raises(UniswapRevert) as exc:
        _update(ticks, 0, 0, 1)
    assert exc.value.reason == "LO"
    assert ticks[0] == before


def test_update_nets_the_liquidity_based_on_upper_flag():
    ticks: dict[int, TickInfo] = {}
    _update(ticks, 0, 0, 2, max_liq=10)
    _update(ticks, 0, 0, 1, upper=True, max_liq=10)
    _update(ticks, 0, 0, 3, upper=True, max_liq=10)
    _update(ticks, 0, 0, 1, max_liq=10)
    assert ticks[0].liquidity_gross == 2 + 1 + 3 + 1
    assert ticks[0].liquidity_net == 2 - 1 - 3 + 1


def test_update_reverts_on_overflow_liquidity_gross():
    # the net (int128) overflows first: 2 * (2**127 - 2) > type(int128).max
    ticks: dict[int, TickInfo] = {}
    _update(ticks, 0, 0, MAX_UINT128 // 2 - 1, max_liq=MAX_UINT128)
    before = ticks[0].copy()
    with pytest.raises(UniswapRevert):
        _update(ticks, 0, 0, MAX_UINT128 // 2 - 1, max_liq=MAX_UINT128)
    assert ticks[0] == before


def test_update_assumes_all_growth_happens_below_ticks_lte_current_tick():
    ticks: dict[int, TickInfo] = {}
    _update(ticks, 1, 1, 1, 1, 2, 3, 4, 5, max_liq=MAX_UINT128)
    assert ticks[1] == TickInfo(1, 1, 1, 2, 4, 3, 5, True)


def test_update_does_not_set_growth_fields_if_already_initialized():
    ticks: dict[int, TickInfo] = {}
    _update(ticks, 1, 1, 1, 1, 2, 3, 4, 5, max_liq=MAX_UINT128)
    _update(ticks, 1, 1, 1, 6, 7, 8, 9, 10, max_liq=MAX_UINT128)
    info = ticks[1]
    assert (info.fee_growth_outside0_x128, info.fee_growth_outside1_x128) == (1, 2)
    assert info.seconds_per_liquidity_outside_x128 == 3
    assert info.tick_cumulative_outside == 4
    assert info.seconds_outside == 5
    assert info.initialized


def test_update_does_not_set_growth_fields_for_ticks_gt_current_tick():
    ticks: dict[int, TickInfo] = {}
    _update(ticks, 2, 1, 1, 1, 2, 3, 4, 5, max_liq=MAX_UINT128)
    assert ticks[2] == TickInfo(1, 1, 0, 0, 0, 0, 0, True)


# ------------------------------------------------------------------------- #clear and #cross


def test_clear_deletes_all_the_data_in_the_tick():
    ticks = {2: TickInfo(3, 4, 1, 2, 6, 5, 7, True)}
    tick_lib.clear(ticks, 2)
    assert ticks.get(2, TickInfo()) == TickInfo()


def test_cross_flips_the_growth_variables():
    ticks = {2: TickInfo(3, 4, 1, 2, 6, 5, 7, True)}
    assert tick_lib.cross(ticks, 2, 7, 9, 8, 15, 10) == 4
    info = ticks[2]
    assert (info.fee_growth_outside0_x128, info.fee_growth_outside1_x128) == (6, 7)
    assert info.seconds_per_liquidity_outside_x128 == 3
    assert info.tick_cumulative_outside == 9
    assert info.seconds_outside == 3


def test_cross_two_flips_are_no_op():
    ticks = {2: TickInfo(3, 4, 1, 2, 6, 5, 7, True)}
    tick_lib.cross(ticks, 2, 7, 9, 8, 15, 10)
    tick_lib.cross(ticks, 2, 7, 9, 8, 15, 10)
    assert ticks[2] == TickInfo(3, 4, 1, 2, 6, 5, 7, True)


def test_cross_wraps_unsigned_accumulators():
    ticks = {0: TickInfo(1, 1, 5, 5, 100, 9, 20, True)}
    tick_lib.cross(ticks, 0, 3, 3, 2, -100, 10)
    info = ticks[0]
    assert info.fee_growth_outside0_x128 == 2**256 - 2
    assert info.seconds_per_liquidity_outside_x128 == 2**160 - 7
    assert info.seconds_outside == 2**32 - 10
    assert info.tick_cumulative_outside == -200


def test_get_fee_growth_inside_current_tick_on_the_lower_tick():
    # tickCurrent >= tickLower: the lower tick's outside values are below the range
    ticks = {-2: _outside(2, 3)}
    assert get_fee_growth_inside(ticks, -2, 2, -2, 15, 15) == (13, 12)
    # tickCurrent == tickUpper is above the range: above = global - outside(upper)
    ticks = {2: _outside(4, 1)}
    assert get_fee_growth_inside(ticks, -2, 2, 2, 15, 15) == (4, 1)
