"""FullMath / UnsafeMath against Uniswap/v3-core test/FullMath.spec.ts (v1.0.0)."""

from __future__ import annotations

import pytest

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.full_math import div_rounding_up, mul_div, mul_div_rounding_up
from tests.uniswap.uniswap_testlib import MAX_UINT256, Q128

# -------------------------------------------------------------------- #mulDiv (FullMath.spec.ts)


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        (Q128, 5, 0),  # reverts if denominator is 0
        (Q128, Q128, 0),  # reverts if denominator is 0 and numerator overflows
        (Q128, Q128, 1),  # reverts if output overflows uint256
        (MAX_UINT256, MAX_UINT256, MAX_UINT256 - 1),  # reverts on overflow with all max inputs
    ],
)
@pytest.mark.parametrize("fn", [mul_div, mul_div_rounding_up])
def test_mul_div_reverts(fn, a, b, d):
    with pytest.raises(UniswapRevert) as exc:
        fn(a, b, d)
    assert exc.value.reason == ""


def test_mul_div_all_max_inputs():
    assert mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256
    assert mul_div_rounding_up(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256


def test_mul_div_accurate_without_phantom_overflow():
    # 0.5 / 1.5 = 1/3
    assert mul_div(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3
    assert mul_div_rounding_up(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3 + 1


def test_mul_div_accurate_with_phantom_overflow():
    assert mul_div(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000
    assert mul_div_rounding_up(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000


def test_mul_div_accurate_with_phantom_overflow_and_repeating_decimal():
    assert mul_div(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3
    assert mul_div_rounding_up(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3 + 1


def test_mul_div_rounding_up_overflows_after_rounding_up():
    # 'reverts if mulDiv overflows 256 bits after rounding up'
    with pytest.raises(UniswapRevert):
        mul_div_rounding_up(
            535006138814359,
            432862656469423142931042426214547535783388063929571229938474969,
            2,
        )
    # '... case 2'
    with pytest.raises(UniswapRevert):
        mul_div_rounding_up(
            115792089237316195423570985008687907853269984659341747863450311749907997002549,
            115792089237316195423570985008687907853269984659341747863450311749907997002550,
            115792089237316195423570985008687907853269984653042931687443039491902864365164,
        )
    # the floor of the first case is exactly uint256 max: mulDiv itself still succeeds
    assert (
        mul_div(535006138814359, 432862656469423142931042426214547535783388063929571229938474969, 2)
        == MAX_UINT256
    )


def test_mul_div_result_just_fits():
    assert mul_div(MAX_UINT256, 2, 2) == MAX_UINT256
    assert mul_div_rounding_up(MAX_UINT256, 3, 3) == MAX_UINT256


def test_mul_div_boundary_of_uint256():
    with pytest.raises(UniswapRevert):
        mul_div(1 << 255, 2, 1)  # exactly 2**256
    assert mul_div((1 << 255) - 1, 2, 1) == MAX_UINT256 - 1
    assert mul_div_rounding_up(7, 3, 2) == 11
    assert mul_div(7, 3, 2) == 10
    assert mul_div_rounding_up(0, 5, 3) == 0


def test_div_rounding_up():
    # UnsafeMath.divRoundingUp: ceil, and 0 for a zero divisor as in the EVM
    assert div_rounding_up(5, 2) == 3
    assert div_rounding_up(6, 2) == 3
    assert div_rounding_up(0, 7) == 0
    assert div_rounding_up(1, 0) == 0
