"""Range strategies on seeded price paths: valid ranges, widths that follow volatility."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.analytics.types import PriceHistory
from lpbot.strategy import (
    FixedWidth,
    FullRange,
    Range,
    SkewedBand,
    VolatilityBand,
    max_usable_tick,
    min_usable_tick,
)
from lpbot.strategy.base import LOG_TICK, RangeStrategy, range_around
from lpbot.uniswap.tick_math import MAX_TICK, MIN_TICK

from .pools import gbm_history, seeded_pool, snapshot

ETH_TICK = -196_250
CALM = gbm_history(3_000, sigma_annual=0.2, seed=3)
WILD = gbm_history(3_000, sigma_annual=1.2, seed=3)


def test_range_validation() -> None:
    assert Range(-600, 600, 60).width_ticks == 1200
    with pytest.raises(ValueError, match="below tick_upper"):
        Range(600, 600, 60)
    with pytest.raises(ValueError, match="multiple of the tick spacing"):
        Range(-600, 610, 60)
    with pytest.raises(ValueError, match="outside"):
        Range(MIN_TICK - 1, 0, 1)
    with pytest.raises(ValueError, match="tick spacing"):
        Range(0, 10, 0)
    r = Range(-60, 60, 60)
    assert r.contains(-60) and r.contains(59) and not r.contains(60)


@pytest.mark.parametrize("spacing", [1, 10, 60, 200])
def test_usable_ticks(spacing: int) -> None:
    low, high = min_usable_tick(spacing), max_usable_tick(spacing)
    assert low % spacing == 0 and high % spacing == 0
    assert MIN_TICK <= low < low + spacing and high <= MAX_TICK < high + spacing
    assert FullRange().range_for(snapshot(seeded_pool(0, spacing=spacing)), CALM) == Range(
        low, high, spacing
    )


def test_fixed_width_in_ticks_and_percent() -> None:
    snap = snapshot(seeded_pool(ETH_TICK))
    by_ticks = FixedWidth(half_width_ticks=500).range_for(snap, CALM)
    assert by_ticks.tick_lower <= ETH_TICK - 500 and by_ticks.tick_upper >= ETH_TICK + 500
    assert by_ticks.width_ticks <= 1000 + 2 * 10
    by_pct = FixedWidth(half_width_pct=10).range_for(snap, CALM)
    # 1.0001**ticks: -10% is ~1054 ticks down, +10% ~953 up
    assert by_pct.tick_lower == pytest.approx(ETH_TICK - math.log(1 / 0.9) / LOG_TICK, abs=10)
    assert by_pct.tick_upper == pytest.approx(ETH_TICK + math.log(1.1) / LOG_TICK, abs=10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"half_width_ticks": 10, "half_width_pct": 1.0}, "exactly one"),
        ({"half_width_ticks": 0}, "half_width_ticks must be > 0"),
        ({"half_width_pct": 100.0}, r"half_width_pct must be in \(0, 100\)"),
    ],
)
def test_fixed_width_validates(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FixedWidth(**kwargs)  # type: ignore[arg-type]


def test_volatility_band_widens_with_volatility() -> None:
    snap = snapshot(seeded_pool(ETH_TICK))
    band = VolatilityBand(k=2.0, horizon_seconds=86_400, halflife_seconds=86_400)
    calm, wild = band.range_for(snap, CALM), band.range_for(snap, WILD)
    assert wild.width_ticks > 4 * calm.width_ticks
    # half-width = k sigma sqrt(h): 0.2 annual over a day is ~2.1% -> ~210 ticks
    expected = 2.0 * 0.2 * math.sqrt(86_400 / (365 * 86_400)) / LOG_TICK
    assert calm.width_ticks / 2 == pytest.approx(expected, rel=0.2)
    assert calm.contains(ETH_TICK) and wild.contains(ETH_TICK)


def test_volatility_band_respects_its_bounds() -> None:
    snap = snapshot(seeded_pool(ETH_TICK))
    tight = VolatilityBand(min_half_width_ticks=3_000).range_for(snap, CALM)
    assert tight.width_ticks >= 6_000
    capped = VolatilityBand(k=50, max_half_width_ticks=1_000).range_for(snap, WILD)
    assert capped.width_ticks <= 2_000 + 2 * 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be"),
        ({"horizon_seconds": -1}, "horizon_seconds"),
        ({"halflife_seconds": math.nan}, "halflife_seconds"),
        ({"min_half_width_ticks": 0}, "min_half_width_ticks"),
        ({"min_half_width_ticks": 10, "max_half_width_ticks": 5}, "max_half_width_ticks"),
    ],
)
def test_volatility_band_validates(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VolatilityBand(**kwargs)  # type: ignore[arg-type]


def test_skewed_band_leans_with_the_trend() -> None:
    snap = snapshot(seeded_pool(ETH_TICK))
    band = VolatilityBand(halflife_seconds=86_400)
    rising = gbm_history(3_000, sigma_annual=0.5, mu_annual=80.0, seed=9)
    falling = gbm_history(3_000, sigma_annual=0.5, mu_annual=-80.0, seed=9)
    skewed = SkewedBand(band=band, max_shift=0.6)
    up, down = skewed.range_for(snap, rising), skewed.range_for(snap, falling)
    assert up.tick_upper - ETH_TICK > ETH_TICK - up.tick_lower  # more room above
    assert ETH_TICK - down.tick_lower > down.tick_upper - ETH_TICK  # more room below
    assert up.contains(ETH_TICK) and down.contains(ETH_TICK)
    static = SkewedBand(band, drift_weight=0.0, max_shift=0.3, static_skew=0.5)
    static_range = static.range_for(snap, CALM)
    assert static_range.tick_upper - ETH_TICK > 2 * (ETH_TICK - static_range.tick_lower)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_shift": 1.0}, "max_shift"),
        ({"static_skew": -1.0}, "static_skew"),
        ({"static_skew": 0.6, "max_shift": 0.5}, "keep the price inside"),
        ({"drift_weight": -1}, "drift_weight"),
        ({"drift_halflife_seconds": 0}, "drift_halflife_seconds"),
    ],
)
def test_skewed_band_validates(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SkewedBand(**kwargs)  # type: ignore[arg-type]


STRATEGIES: list[RangeStrategy] = [
    FixedWidth(half_width_ticks=1),
    FixedWidth(half_width_pct=25),
    VolatilityBand(),
    VolatilityBand(k=1, horizon_seconds=600, min_half_width_ticks=1),
    SkewedBand(),
    FullRange(),
]


@settings(max_examples=30, deadline=None)
@given(
    tick=st.integers(-800_000, 800_000),
    spacing=st.sampled_from([1, 10, 60, 200]),
    sigma=st.floats(0.01, 3.0),
    mu=st.floats(-50, 50),
    seed=st.integers(0, 1000),
)
def test_every_strategy_returns_a_valid_range_holding_the_price(
    tick: int, spacing: int, sigma: float, mu: float, seed: int
) -> None:
    snap = snapshot(seeded_pool(tick, spacing=spacing, bands=()))
    history = gbm_history(500, sigma_annual=sigma, mu_annual=mu, seed=seed)
    for strategy in STRATEGIES:
        rng = strategy.range_for(snap, history)
        assert rng.tick_spacing == spacing
        assert rng.tick_lower % spacing == 0 and rng.tick_upper % spacing == 0
        assert (
            min_usable_tick(spacing) <= rng.tick_lower < rng.tick_upper <= max_usable_tick(spacing)
        )
        assert rng.contains(snap.tick)


def test_range_around_snaps_outward() -> None:
    r = range_around(1_234, 100 * LOG_TICK, 100 * LOG_TICK, 60)
    assert (r.tick_lower, r.tick_upper) == (1_080, 1_380)
    r = range_around(1_234, 0.0, 0.0, 60)
    assert (r.tick_lower, r.tick_upper) == (1_200, 1_260)


def test_strategies_need_history_for_volatility() -> None:
    snap = snapshot(seeded_pool(0))
    with pytest.raises(ValueError, match="at least 2"):
        VolatilityBand().range_for(snap, PriceHistory([0.0], [1.0]))
