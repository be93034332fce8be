"""Mirror of v3-core ``SqrtPriceMath.sol``: price moves and token amounts between two prices.

Rounding always favours the pool: amounts owed to the pool round up, amounts paid out round down,
and the next price after an input rounds so that the input buys no more than it paid for.
"""

from __future__ import annotations

from lpbot.uniswap.constants import MAX_INT256, MAX_UINT160, MAX_UINT256, Q96
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.full_math import div_rounding_up, mul_div, mul_div_rounding_up


def _to_uint160(x: int) -> int:
    """SafeCast.toUint160: revert unless ``x`` fits in 160 bits."""
    if x > MAX_UINT160:
        raise UniswapRevert("", "toUint160 overflow")
    return x


def _to_int256(x: int) -> int:
    """SafeCast.toInt256: revert unless ``x`` < 2**255."""
    if x > MAX_INT256:
        raise UniswapRevert("", "toInt256 overflow")
    return x


def get_next_sqrt_price_from_amount0_rounding_up(
    sqrt_px96: int, liquidity: int, amount: int, add: bool
) -> int:
    """SqrtPriceMath.getNextSqrtPriceFromAmount0RoundingUp (v3-core 1.0.0).

    The price after adding (``add``) or removing ``amount`` of token0, rounded up:
    L * sqrtP / (L +- amount * sqrtP).
    """
    if amount == 0:
        return sqrt_px96
    numerator1 = liquidity << 96
    product = amount * sqrt_px96
    if add:
        if product <= MAX_UINT256:
            denominator = numerator1 + product
            if denominator <= MAX_UINT256:
                return mul_div_rounding_up(numerator1, sqrt_px96, denominator)
        # LowGasSafeMath.add on the fallback path
        fallback = numerator1 // sqrt_px96 + amount
        if fallback > MAX_UINT256:
            raise UniswapRevert("", "getNextSqrtPriceFromAmount0RoundingUp: add overflow")
        return div_rounding_up(numerator1, fallback)
    if not (product <= MAX_UINT256 and numerator1 > product):
        raise UniswapRevert(
            "", "getNextSqrtPriceFromAmount0RoundingUp: not enough token0 liquidity"
        )
    return _to_uint160(mul_div_rounding_up(numerator1, sqrt_px96, numerator1 - product))


def get_next_sqrt_price_from_amount1_rounding_down(
    sqrt_px96: int, liquidity: int, amount: int, add: bool
) -> int:
    """SqrtPriceMath.getNextSqrtPriceFromAmount1RoundingDown (v3-core 1.0.0).

    The price after adding (``add``) or removing ``amount`` of token1, rounded down:
    sqrtP +- amount / L.
    """
    if liquidity == 0:
        raise UniswapRevert(
            "", "getNextSqrtPriceFromAmount1RoundingDown: division by zero liquidity"
        )
    if add:
        quotient = (
            (amount << 96) // liquidity
            if amount <= MAX_UINT160
            else mul_div(amount, Q96, liquidity)
        )
        result = sqrt_px96 + quotient
        if result > MAX_UINT256:
            raise UniswapRevert("", "getNextSqrtPriceFromAmount1RoundingDown: add overflow")
        return _to_uint160(result)
    quotient = (
        div_rounding_up(amount << 96, liquidity)
        if amount <= MAX_UINT160
        else mul_div_rounding_up(amount, Q96, liquidity)
    )
    if not sqrt_px96 > quotient:
        raise UniswapRevert(
            "", "getNextSqrtPriceFromAmount1RoundingDown: not enough token1 liquidity"
        )
    return sqrt_px96 - quotient


def get_next_sqrt_price_from_input(
    sqrt_px96: int, liquidity: int, amount_in: int, zero_for_one: bool
) -> int:
    """SqrtPriceMath.getNextSqrtPriceFromInput (v3-core 1.0.0): price after ``amount_in`` in."""
    if sqrt_px96 <= 0:
        raise UniswapRevert("", "getNextSqrtPriceFromInput: price is 0")
    if liquidity <= 0:
        raise UniswapRevert("", "getNextSqrtPriceFromInput: liquidity is 0")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_in, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_px96, liquidity, amount_in, True)


def get_next_sqrt_price_from_output(
    sqrt_px96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    """SqrtPriceMath.getNextSqrtPriceFromOutput (v3-core 1.0.0): price after ``amount_out`` goes."""
    if sqrt_px96 <= 0:
        raise UniswapRevert("", "getNextSqrtPriceFromOutput: price is 0")
    if liquidity <= 0:
        raise UniswapRevert("", "getNextSqrtPriceFromOutput: liquidity is 0")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(
            sqrt_px96, liquidity, amount_out, False
        )
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_out, False)


def get_amount0_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """SqrtPriceMath.getAmount0Delta (unsigned, v3-core 1.0.0).

    Token0 between two prices for ``liquidity``: L * (sqrtB - sqrtA) / (sqrtA * sqrtB), rounded up
    when ``round_up``.
    """
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_ratio_a_x96 <= 0:
        raise UniswapRevert("", "getAmount0Delta: price is 0")
    numerator1 = liquidity << 96
    numerator2 = sqrt_ratio_b_x96 - sqrt_ratio_a_x96
    if round_up:
        return div_rounding_up(
            mul_div_rounding_up(numerator1, numerator2, sqrt_ratio_b_x96), sqrt_ratio_a_x96
        )
    return mul_div(numerator1, numerator2, sqrt_ratio_b_x96) // sqrt_ratio_a_x96


def get_amount1_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """SqrtPriceMath.getAmount1Delta (unsigned, v3-core 1.0.0).

    Token1 between two prices for ``liquidity``: L * (sqrtB - sqrtA), rounded up when ``round_up``.
    """
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if round_up:
        return mul_div_rounding_up(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)
    return mul_div(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)


def get_amount0_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """SqrtPriceMath.getAmount0Delta (signed, int128 liquidity, v3-core 1.0.0).

    Positive liquidity (added) rounds up and is owed to the pool; negative rounds down and is
    paid out, returned negative.
    """
    if liquidity < 0:
        return -_to_int256(get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False))
    return _to_int256(get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True))


def get_amount1_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """SqrtPriceMath.getAmount1Delta (signed, int128 liquidity, v3-core 1.0.0)."""
    if liquidity < 0:
        return -_to_int256(get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False))
    return _to_int256(get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True))
