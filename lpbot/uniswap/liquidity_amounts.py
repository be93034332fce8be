"""Mirror of v3-periphery ``LiquidityAmounts.sol``: liquidity <-> token amounts for a range."""

from __future__ import annotations

from lpbot.uniswap.constants import MAX_UINT128, Q96
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.full_math import mul_div


def _to_uint128(x: int) -> int:
    if x > MAX_UINT128:
        raise UniswapRevert("", "toUint128 overflow")
    return x


def get_liquidity_for_amount0(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, amount0: int) -> int:
    """LiquidityAmounts.getLiquidityForAmount0 (v3-periphery 1.0.0), rounded down."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    intermediate = mul_div(sqrt_ratio_a_x96, sqrt_ratio_b_x96, Q96)
    return _to_uint128(mul_div(amount0, intermediate, sqrt_ratio_b_x96 - sqrt_ratio_a_x96))


def get_liquidity_for_amount1(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, amount1: int) -> int:
    """LiquidityAmounts.getLiquidityForAmount1 (v3-periphery 1.0.0), rounded down."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    return _to_uint128(mul_div(amount1, Q96, sqrt_ratio_b_x96 - sqrt_ratio_a_x96))


def get_liquidity_for_amounts(
    sqrt_ratio_x96: int, sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, amount0: int, amount1: int
) -> int:
    """LiquidityAmounts.getLiquidityForAmounts (v3-periphery 1.0.0).

    The most liquidity that ``amount0`` and ``amount1`` can pay for in [a, b] at the current price.
    """
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_ratio_x96 <= sqrt_ratio_a_x96:
        return get_liquidity_for_amount0(sqrt_ratio_a_x96, sqrt_ratio_b_x96, amount0)
    if sqrt_ratio_x96 < sqrt_ratio_b_x96:
        liquidity0 = get_liquidity_for_amount0(sqrt_ratio_x96, sqrt_ratio_b_x96, amount0)
        liquidity1 = get_liquidity_for_amount1(sqrt_ratio_a_x96, sqrt_ratio_x96, amount1)
        return min(liquidity0, liquidity1)
    return get_liquidity_for_amount1(sqrt_ratio_a_x96, sqrt_ratio_b_x96, amount1)


def get_amount0_for_liquidity(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """LiquidityAmounts.getAmount0ForLiquidity (v3-periphery 1.0.0), rounded down."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    return (
        mul_div(liquidity << 96, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, sqrt_ratio_b_x96)
        // sqrt_ratio_a_x96
    )


def get_amount1_for_liquidity(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """LiquidityAmounts.getAmount1ForLiquidity (v3-periphery 1.0.0), rounded down."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    return mul_div(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)


def get_amounts_for_liquidity(
    sqrt_ratio_x96: int, sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int
) -> tuple[int, int]:
    """LiquidityAmounts.getAmountsForLiquidity (v3-periphery 1.0.0), both rounded down."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_ratio_x96 <= sqrt_ratio_a_x96:
        return get_amount0_for_liquidity(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity), 0
    if sqrt_ratio_x96 < sqrt_ratio_b_x96:
        return (
            get_amount0_for_liquidity(sqrt_ratio_x96, sqrt_ratio_b_x96, liquidity),
            get_amount1_for_liquidity(sqrt_ratio_a_x96, sqrt_ratio_x96, liquidity),
        )
    return 0, get_amount1_for_liquidity(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity)
