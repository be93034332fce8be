"""SwapMath.computeSwapStep against every case of Uniswap/v3-core test/SwapMath.spec.ts."""

from __future__ import annotations

from lpbot.uniswap.sqrt_price_math import (
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from lpbot.uniswap.swap_math import compute_swap_step
from tests.uniswap.uniswap_testlib import encode_price_sqrt, expand_to_18_decimals

E18 = expand_to_18_decimals(1)


def test_exact_amount_in_capped_at_price_target_one_for_zero():
    price = encode_price_sqrt(1, 1)
    target = encode_price_sqrt(101, 100)
    liquidity = expand_to_18_decimals(2)
    amount = E18
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, liquidity, amount, 600)
    assert amount_in == 9975124224178055
    assert fee == 5988667735148
    assert amount_out == 9925619580021728
    assert amount_in + fee < amount  # entire amount is not used
    assert sqrt_q == target  # price is capped at price target
    assert sqrt_q < get_next_sqrt_price_from_input(price, liquidity, amount, False)


def test_exact_amount_out_capped_at_price_target_one_for_zero():
    price = encode_price_sqrt(1, 1)
    target = encode_price_sqrt(101, 100)
    liquidity = expand_to_18_decimals(2)
    amount = -E18
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, liquidity, amount, 600)
    assert amount_in == 9975124224178055
    assert fee == 5988667735148
    assert amount_out == 9925619580021728
    assert amount_out < -amount  # entire amount out is not returned
    assert sqrt_q == target
    assert sqrt_q < get_next_sqrt_price_from_output(price, liquidity, -amount, False)


def test_exact_amount_in_fully_spent_one_for_zero():
    price = encode_price_sqrt(1, 1)
    target = encode_price_sqrt(1000, 100)
    liquidity = expand_to_18_decimals(2)
    amount = E18
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, liquidity, amount, 600)
    assert amount_in == 999400000000000000
    assert fee == 600000000000000
    assert amount_out == 666399946655997866
    assert amount_in + fee == amount  # entire amount is used
    assert sqrt_q < target  # price does not reach price target
    assert sqrt_q == get_next_sqrt_price_from_input(price, liquidity, amount - fee, False)


def test_exact_amount_out_fully_received_one_for_zero():
    price = encode_price_sqrt(1, 1)
    target = encode_price_sqrt(10000, 100)
    liquidity = expand_to_18_decimals(2)
    amount = -E18
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, liquidity, amount, 600)
    assert amount_in == 2000000000000000000
    assert fee == 1200720432259356
    assert amount_out == -amount
    assert sqrt_q < target
    assert sqrt_q == get_next_sqrt_price_from_output(price, liquidity, -amount, False)


def test_amount_out_is_capped_at_the_desired_amount_out():
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(
        417332158212080721273783715441582,
        1452870262520218020823638996,
        159344665391607089467575320103,
        -1,
        1,
    )
    assert amount_in == 1
    assert fee == 1
    assert amount_out == 1  # would be 2 if not capped
    assert sqrt_q == 417332158212080721273783715441581


def test_target_price_of_1_uses_partial_input_amount():
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(
        2, 1, 1, 3915081100057732413702495386755767, 1
    )
    assert amount_in == 39614081257132168796771975168
    assert fee == 39614120871253040049813
    assert amount_in + fee <= 3915081100057732413702495386755767
    assert amount_out == 0
    assert sqrt_q == 1


def test_entire_input_amount_taken_as_fee():
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(
        2413, 79887613182836312, 1985041575832132834610021537970, 10, 1872
    )
    assert amount_in == 0
    assert fee == 10
    assert amount_out == 0
    assert sqrt_q == 2413


def test_intermediate_insufficient_liquidity_zero_for_one_exact_output():
    sqrt_p = 20282409603651670423947251286016
    target = sqrt_p * 11 // 10
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(sqrt_p, target, 1024, -4, 3000)
    assert amount_out == 0
    assert sqrt_q == target
    assert amount_in == 26215
    assert fee == 79


def test_intermediate_insufficient_liquidity_one_for_zero_exact_output():
    sqrt_p = 20282409603651670423947251286016
    target = sqrt_p * 9 // 10
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(sqrt_p, target, 1024, -263000, 3000)
    assert amount_out == 26214
    assert sqrt_q == target
    assert amount_in == 1
    assert fee == 1


def test_issue_214_step_moves_price_by_one_with_zero_output():
    # UniswapV3Pool.spec.ts 'tick transition cannot run twice ...' checks this step directly
    from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

    p0 = get_sqrt_ratio_at_tick(-24081) + 1
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(p0, p0 - 1, 1000 * E18, 3, 3000)
    assert (sqrt_q, amount_in, amount_out, fee) == (p0 - 1, 1, 0, 1)


def test_same_price_is_a_no_op():
    price = encode_price_sqrt(1, 1)
    assert compute_swap_step(price, price, E18, E18, 3000) == (price, 0, 0, 0)
    assert compute_swap_step(price, price, E18, -E18, 3000) == (price, 0, 0, 0)
