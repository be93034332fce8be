"""Impermanent loss against published closed forms; never positive against holding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.analytics.il import (
    hold_amounts,
    impermanent_loss,
    impermanent_loss_full_range,
    impermanent_loss_in_range,
    impermanent_loss_vs_fifty_fifty,
)
from lpbot.analytics.value import PositionCurve
from lpbot.strategy.base import max_usable_tick, min_usable_tick

RATIOS = np.array([0.01, 0.25, 0.5, 0.8, 1.0, 1.25, 2.0, 4.0, 100.0])


def test_full_range_is_the_constant_product_formula() -> None:
    curve = PositionCurve.from_ticks(10**18, min_usable_tick(1), max_usable_tick(1), 18, 18)
    il = impermanent_loss(curve, 1.0, RATIOS)
    assert il == pytest.approx(impermanent_loss_full_range(RATIOS), abs=1e-12)
    # the classic figures: -5.72% at 2x, -20% at 4x (and at 1/4x)
    assert impermanent_loss_full_range([2.0, 4.0, 0.25]) == pytest.approx(
        [2 * math.sqrt(2) / 3 - 1, -0.2, -0.2]
    )
    # a full-range deposit is 50/50, so both benchmarks agree
    assert impermanent_loss_vs_fifty_fifty(curve, 1.0, RATIOS) == pytest.approx(il, abs=1e-12)


@pytest.mark.parametrize(("lower", "upper", "entry"), [(2_500, 3_600, 3_000), (900, 1_100, 1_050)])
def test_concentrated_in_range_is_the_published_formula(
    lower: float, upper: float, entry: float
) -> None:
    curve = PositionCurve(123.0, lower, upper)
    prices = np.linspace(lower, upper, 101)
    il = impermanent_loss(curve, entry, prices)
    expected = impermanent_loss_in_range(prices / entry, entry, lower, upper)
    assert il == pytest.approx(expected, abs=1e-12)


def test_concentration_amplifies_the_loss() -> None:
    wide = PositionCurve(1.0, 1_000, 9_000)
    narrow = PositionCurve(1.0, 2_700, 3_300)
    at = [3_250.0]
    assert impermanent_loss(narrow, 3_000, at)[0] < impermanent_loss(wide, 3_000, at)[0] < 0


def test_no_loss_at_entry_and_hold_amounts() -> None:
    curve = PositionCurve(50.0, 2_000, 4_000)
    assert impermanent_loss(curve, 3_000, [3_000.0])[0] == pytest.approx(0, abs=1e-15)
    x0, y0 = hold_amounts(curve, 3_000)
    assert (x0, y0) == pytest.approx(curve.amounts_at(3_000))


@settings(max_examples=60, deadline=None)
@given(
    lower=st.floats(10, 10_000),
    width=st.floats(1.0001, 50),
    entry_pos=st.floats(-0.5, 1.5),
    log_moves=st.lists(st.floats(-3, 3), min_size=1, max_size=20),
)
def test_never_beats_holding(
    lower: float, width: float, entry_pos: float, log_moves: list[float]
) -> None:
    curve = PositionCurve(1_000.0, lower, lower * width)
    entry = lower * width**entry_pos
    prices = entry * np.exp(np.array(log_moves))
    assert np.all(impermanent_loss(curve, entry, prices) <= 1e-9)  # float rounding at entry


def test_can_beat_a_fifty_fifty_hold_on_one_side() -> None:
    curve = PositionCurve(1.0, 2_900, 4_000)  # mostly token0 at 3000
    il = impermanent_loss_vs_fifty_fifty(curve, 3_000, [3_500.0, 2_000.0])
    assert il[0] > 0 > il[1]


def test_large_batch_shape() -> None:
    curve = PositionCurve(1.0, 2_500, 3_600)
    prices = np.random.default_rng(0).uniform(1_000, 6_000, (3, 50_000))
    il = impermanent_loss(curve, 3_000, prices)
    assert il.shape == prices.shape
    assert il[1, 7] == pytest.approx(impermanent_loss(curve, 3_000, [prices[1, 7]])[0])
