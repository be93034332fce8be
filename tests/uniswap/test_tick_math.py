"""TickMath against Uniswap/v3-core test/TickMath.spec.ts (v1.0.0) and its snapshot values."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from tests.uniswap.uniswap_testlib import encode_price_sqrt

# ------------------------------------------------------------------------ #getSqrtRatioAtTick


@pytest.mark.parametrize("tick", [MIN_TICK - 1, MAX_TICK + 1, -(2**23), 2**23 - 1])
def test_get_sqrt_ratio_at_tick_reverts_t(tick):
    # 'throws for too low' / 'throws for too high': revertedWith('T')
    with pytest.raises(UniswapRevert) as exc:
        get_sqrt_ratio_at_tick(tick)
    assert exc.value.reason == "T"


def test_get_sqrt_ratio_at_tick_boundaries():
    # 'min tick', 'min tick +1', 'max tick - 1', 'max tick'
    assert get_sqrt_ratio_at_tick(MIN_TICK) == 4295128739
    assert get_sqrt_ratio_at_tick(MIN_TICK + 1) == 4295343490
    assert get_sqrt_ratio_at_tick(MAX_TICK - 1) == 1461373636630004318706518188784493106690254656249
    assert get_sqrt_ratio_at_tick(MAX_TICK) == 1461446703485210103287273052203988822378723970342
    # '#MIN_SQRT_RATIO' / '#MAX_SQRT_RATIO' equal getSqrtRatioAtTick(MIN_TICK / MAX_TICK)
    assert get_sqrt_ratio_at_tick(MIN_TICK) == MIN_SQRT_RATIO
    assert get_sqrt_ratio_at_tick(MAX_TICK) == MAX_SQRT_RATIO
    # 'min tick ratio is less than js implementation' / 'max tick ratio is greater than js ...'
    assert get_sqrt_ratio_at_tick(MIN_TICK) < encode_price_sqrt(1, 2**127)
    assert get_sqrt_ratio_at_tick(MAX_TICK) > encode_price_sqrt(2**127, 1)
    assert get_sqrt_ratio_at_tick(0) == 1 << 96


# TickMath.spec.ts "tick {±absTick} result" cases; the values are the snapshot results
# (test/__snapshots__/TickMath.spec.ts.snap), as reproduced in several ports of the test suite,
# and each is also checked below against the spec's own 1/100-bip accuracy bound.
SNAPSHOT_SQRT_RATIOS = {
    50: (79426470787362580746886972461, 79030349367926598376800521322),
    100: (79625275426524748796330556128, 78833030112140176575862854579),
    250: (80224679980005306637834519095, 78244023372248365697264290337),
    500: (81233731461783161732293370115, 77272108795590369356373805297),
    1_000: (83290069058676223003182343270, 75364347830767020784054125655),
    2_500: (89776708723587163891445672585, 69919044979842180277688105136),
    3_000: (92049301871182272007977902845, 68192822843687888778582228483),
    4_000: (96768528593268422080558758223, 64867181785621769311890333195),
    5_000: (101729702841318637793976746270, 61703726247759831737814779831),
    50_000: (965075977353221155028623082916, 6504256538020985011912221507),
    150_000: (143194173941309278083010301478497, 43836292794701720435367485),
    250_000: (21246587762933397357449903968194344, 295440463448801648376846),
    500_000: (5697689776495288729098254600827762987878, 1101692437043807371),
    738_203: (847134979253254120489401328389043031315994541, 7409801140451),
}


@pytest.mark.parametrize("abs_tick", sorted(SNAPSHOT_SQRT_RATIOS))
def test_get_sqrt_ratio_at_tick_listed_ticks(abs_tick):
    positive, negative = SNAPSHOT_SQRT_RATIOS[abs_tick]
    assert get_sqrt_ratio_at_tick(abs_tick) == positive
    assert get_sqrt_ratio_at_tick(-abs_tick) == negative
    # 'is at most off by 1/100th of a bips' (decimal.js: 1.0001^tick, sqrt, * 2^96)
    with localcontext() as ctx:
        ctx.prec = 80
        for tick, result in ((abs_tick, positive), (-abs_tick, negative)):
            exact = (Decimal("1.0001") ** tick).sqrt() * (Decimal(2) ** 96)
            assert abs(Decimal(result) - exact) / exact < Decimal("0.000001")


# ------------------------------------------------------------------------ #getTickAtSqrtRatio


@pytest.mark.parametrize("ratio", [MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO, 0, 2**160 - 1])
def test_get_tick_at_sqrt_ratio_reverts_r(ratio):
    # 'throws for too low' / 'throws for too high': revertedWith('R')
    with pytest.raises(UniswapRevert) as exc:
        get_tick_at_sqrt_ratio(ratio)
    assert exc.value.reason == "R"


def test_get_tick_at_sqrt_ratio_edges():
    assert get_tick_at_sqrt_ratio(MIN_SQRT_RATIO) == MIN_TICK  # 'ratio of min tick'
    assert get_tick_at_sqrt_ratio(4295343490) == MIN_TICK + 1  # 'ratio of min tick + 1'
    assert (
        get_tick_at_sqrt_ratio(1461373636630004318706518188784493106690254656249) == MAX_TICK - 1
    )  # 'ratio of max tick - 1'
    assert get_tick_at_sqrt_ratio(MAX_SQRT_RATIO - 1) == MAX_TICK - 1  # 'closest to max tick'
    # one below a tick's ratio belongs to the tick below
    assert get_tick_at_sqrt_ratio(4295343490 - 1) == MIN_TICK
    assert get_tick_at_sqrt_ratio((1 << 96) - 1) == -1
    assert get_tick_at_sqrt_ratio(1 << 96) == 0


# the spec's ratio list with the snapshot results ("ratio ... result")
LISTED_RATIOS = [
    (MIN_SQRT_RATIO, -887272),
    (encode_price_sqrt(10**12, 1), 276324),
    (encode_price_sqrt(10**6, 1), 138162),
    (encode_price_sqrt(1, 64), -41591),
    (encode_price_sqrt(1, 8), -20796),
    (encode_price_sqrt(1, 2), -6932),
    (encode_price_sqrt(1, 1), 0),
    (encode_price_sqrt(2, 1), 6931),
    (encode_price_sqrt(8, 1), 20795),
    (encode_price_sqrt(64, 1), 41590),
    (encode_price_sqrt(1, 10**6), -138163),
    (encode_price_sqrt(1, 10**12), -276325),
    (MAX_SQRT_RATIO - 1, 887271),
]


@pytest.mark.parametrize(("ratio", "expected_tick"), LISTED_RATIOS)
def test_get_tick_at_sqrt_ratio_listed_ratios(ratio, expected_tick):
    tick = get_tick_at_sqrt_ratio(ratio)
    assert tick == expected_tick
    # 'ratio is between the tick and tick+1'
    assert get_sqrt_ratio_at_tick(tick) <= ratio < get_sqrt_ratio_at_tick(tick + 1)
    # 'is at most off by 1' from floor(log_1.0001((ratio / 2^96)^2))
    with localcontext() as ctx:
        ctx.prec = 100
        price = (Decimal(ratio) / Decimal(2) ** 96) ** 2
        js_tick = (price.ln() / Decimal("1.0001").ln()).to_integral_value(rounding="ROUND_FLOOR")
    assert abs(tick - int(js_tick)) <= 1
