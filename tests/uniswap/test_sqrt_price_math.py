"""SqrtPriceMath against Uniswap/v3-core test/SqrtPriceMath.spec.ts (v1.0.0)."""

from __future__ import annotations

import pytest

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.sqrt_price_math import (
    get_amount0_delta,
    get_amount0_delta_signed,
    get_amount1_delta,
    get_amount1_delta_signed,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from tests.uniswap.uniswap_testlib import (
    MAX_UINT128,
    MAX_UINT256,
    encode_price_sqrt,
    expand_to_18_decimals,
)

E18 = expand_to_18_decimals(1)
PRICE_1_1 = encode_price_sqrt(1, 1)
# '20282409603651670423947251286016' = 2^96 * 256: virtual reserves of 4 token0, 262144 token1
# at liquidity 1024
P_256 = 20282409603651670423947251286016

# ------------------------------------------------------------------ #getNextSqrtPriceFromInput


@pytest.mark.parametrize(
    ("price", "liquidity", "amount_in", "zero_for_one"),
    [
        (0, 0, E18 // 10, False),  # 'fails if price is zero'
        (1, 0, E18 // 10, True),  # 'fails if liquidity is zero'
        (2**160 - 1, 1024, 1024, False),  # 'fails if input amount overflows the price'
    ],
)
def test_next_price_from_input_reverts(price, liquidity, amount_in, zero_for_one):
    with pytest.raises(UniswapRevert) as exc:
        get_next_sqrt_price_from_input(price, liquidity, amount_in, zero_for_one)
    assert exc.value.reason == ""


def test_next_price_from_input_values():
    # 'any input amount cannot underflow the price'
    assert get_next_sqrt_price_from_input(1, 1, 2**255, True) == 1
    # 'returns input price if amount in is zero and zeroForOne = true / false'
    assert get_next_sqrt_price_from_input(PRICE_1_1, E18 // 10, 0, True) == PRICE_1_1
    assert get_next_sqrt_price_from_input(PRICE_1_1, E18 // 10, 0, False) == PRICE_1_1
    # 'returns the minimum price for max inputs'
    sqrt_p = 2**160 - 1
    max_amount_no_overflow = MAX_UINT256 - (MAX_UINT128 << 96) // sqrt_p
    assert get_next_sqrt_price_from_input(sqrt_p, MAX_UINT128, max_amount_no_overflow, True) == 1
    # 'input amount of 0.1 token1' / 'input amount of 0.1 token0'
    assert (
        get_next_sqrt_price_from_input(PRICE_1_1, E18, E18 // 10, False)
        == 87150978765690771352898345369
    )
    assert (
        get_next_sqrt_price_from_input(PRICE_1_1, E18, E18 // 10, True)
        == 72025602285694852357767227579
    )
    # 'amountIn > type(uint96).max and zeroForOne = true'
    assert (
        get_next_sqrt_price_from_input(PRICE_1_1, expand_to_18_decimals(10), 2**100, True)
        == 624999999995069620
    )
    # 'can return 1 with enough amountIn and zeroForOne = true'
    assert get_next_sqrt_price_from_input(PRICE_1_1, 1, MAX_UINT256 // 2, True) == 1


# ----------------------------------------------------------------- #getNextSqrtPriceFromOutput


@pytest.mark.parametrize(
    ("price", "liquidity", "amount_out", "zero_for_one"),
    [
        (0, 0, E18 // 10, False),  # 'fails if price is zero'
        (1, 0, E18 // 10, True),  # 'fails if liquidity is zero'
        (P_256, 1024, 4, False),  # exactly the virtual reserves of token0 (also the echidna case)
        (P_256, 1024, 5, False),  # greater than the virtual reserves of token0
        (P_256, 1024, 262145, True),  # greater than the virtual reserves of token1
        (P_256, 1024, 262144, True),  # exactly the virtual reserves of token1
        (PRICE_1_1, 1, MAX_UINT256, True),  # 'reverts if amountOut is impossible' (0 for 1)
        (PRICE_1_1, 1, MAX_UINT256, False),  # ... (1 for 0)
    ],
)
def test_next_price_from_output_reverts(price, liquidity, amount_out, zero_for_one):
    with pytest.raises(UniswapRevert) as exc:
        get_next_sqrt_price_from_output(price, liquidity, amount_out, zero_for_one)
    assert exc.value.reason == ""


def test_next_price_from_output_values():
    # 'succeeds if output amount is just less than the virtual reserves of token1'
    assert get_next_sqrt_price_from_output(P_256, 1024, 262143, True) == 77371252455336267181195264
    # 'returns input price if amount in is zero'
    assert get_next_sqrt_price_from_output(PRICE_1_1, E18 // 10, 0, True) == PRICE_1_1
    assert get_next_sqrt_price_from_output(PRICE_1_1, E18 // 10, 0, False) == PRICE_1_1
    # 'output amount of 0.1 token1' (both directions)
    assert (
        get_next_sqrt_price_from_output(PRICE_1_1, E18, E18 // 10, False)
        == 88031291682515930659493278152
    )
    assert (
        get_next_sqrt_price_from_output(PRICE_1_1, E18, E18 // 10, True)
        == 71305346262837903834189555302
    )


# --------------------------------------------------------------- #getAmount0Delta / Amount1


def test_get_amount0_delta():
    # 'returns 0 if liquidity is 0' / 'returns 0 if prices are equal'
    assert get_amount0_delta(PRICE_1_1, encode_price_sqrt(2, 1), 0, True) == 0
    assert get_amount0_delta(PRICE_1_1, PRICE_1_1, 0, True) == 0
    # 'returns 0.1 amount1 for price of 1 to 1.21'
    amount0 = get_amount0_delta(PRICE_1_1, encode_price_sqrt(121, 100), E18, True)
    assert amount0 == 90909090909090910
    assert get_amount0_delta(PRICE_1_1, encode_price_sqrt(121, 100), E18, False) == amount0 - 1
    # 'works for prices that overflow'
    a = encode_price_sqrt(2**90, 1)
    b = encode_price_sqrt(2**96, 1)
    assert get_amount0_delta(a, b, E18, True) == get_amount0_delta(a, b, E18, False) + 1
    # argument order does not matter
    assert get_amount0_delta(encode_price_sqrt(121, 100), PRICE_1_1, E18, True) == amount0


def test_get_amount0_delta_zero_price_reverts():
    with pytest.raises(UniswapRevert):
        get_amount0_delta(0, PRICE_1_1, E18, True)


def test_get_amount1_delta():
    assert get_amount1_delta(PRICE_1_1, encode_price_sqrt(2, 1), 0, True) == 0
    assert get_amount1_delta(PRICE_1_1, PRICE_1_1, 0, True) == 0
    amount1 = get_amount1_delta(PRICE_1_1, encode_price_sqrt(121, 100), E18, True)
    assert amount1 == 100000000000000000
    assert get_amount1_delta(PRICE_1_1, encode_price_sqrt(121, 100), E18, False) == amount1 - 1


def test_signed_amount_deltas():
    p121 = encode_price_sqrt(121, 100)
    assert get_amount0_delta_signed(PRICE_1_1, p121, E18) == 90909090909090910
    assert get_amount0_delta_signed(PRICE_1_1, p121, -E18) == -90909090909090909
    assert get_amount1_delta_signed(PRICE_1_1, p121, E18) == 100000000000000000
    assert get_amount1_delta_signed(PRICE_1_1, p121, -E18) == -99999999999999999
    assert get_amount0_delta_signed(PRICE_1_1, p121, 0) == 0


def test_swap_computation_sqrt_p_times_sqrt_q_overflows():
    # 'swap computation' / 'sqrtP * sqrtQ overflows'
    sqrt_p = 1025574284609383690408304870162715216695788925244
    liquidity = 50015962439936049619261659728067971248
    sqrt_q = get_next_sqrt_price_from_input(sqrt_p, liquidity, 406, True)
    assert sqrt_q == 1025574284609383582644711336373707553698163132913
    assert get_amount0_delta(sqrt_q, sqrt_p, liquidity, True) == 406
