"""Mirror of v3-periphery ``PositionValue.sol``: what an NFT position is worth, principal and fees.

The contract reads the NonfungiblePositionManager and the pool; here the same numbers are passed
in, so the functions stay pure. ``NpmPosition`` holds the fields of
``NonfungiblePositionManager.positions(tokenId)`` that the library uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpbot.uniswap.constants import MOD_256, Q128
from lpbot.uniswap.full_math import mul_div
from lpbot.uniswap.liquidity_amounts import get_amounts_for_liquidity
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick


@dataclass(frozen=True, slots=True)
class NpmPosition:
    """The NonfungiblePositionManager's record of one position."""

    tick_lower: int
    tick_upper: int
    liquidity: int
    fee_growth_inside0_last_x128: int
    fee_growth_inside1_last_x128: int
    tokens_owed0: int
    tokens_owed1: int


def principal(position: NpmPosition, sqrt_ratio_x96: int) -> tuple[int, int]:
    """PositionValue.principal (v3-periphery 1.0.0): the liquidity's token amounts, rounded down."""
    return get_amounts_for_liquidity(
        sqrt_ratio_x96,
        get_sqrt_ratio_at_tick(position.tick_lower),
        get_sqrt_ratio_at_tick(position.tick_upper),
        position.liquidity,
    )


def get_fee_growth_inside(
    tick_current: int,
    fee_growth_global0_x128: int,
    fee_growth_global1_x128: int,
    lower_fee_growth_outside0_x128: int,
    lower_fee_growth_outside1_x128: int,
    upper_fee_growth_outside0_x128: int,
    upper_fee_growth_outside1_x128: int,
    tick_lower: int,
    tick_upper: int,
) -> tuple[int, int]:
    """PositionValue._getFeeGrowthInside (v3-periphery 1.0.0), wrapping modulo 2**256."""
    if tick_current < tick_lower:
        return (
            (lower_fee_growth_outside0_x128 - upper_fee_growth_outside0_x128) % MOD_256,
            (lower_fee_growth_outside1_x128 - upper_fee_growth_outside1_x128) % MOD_256,
        )
    if tick_current < tick_upper:
        return (
            (
                fee_growth_global0_x128
                - lower_fee_growth_outside0_x128
                - upper_fee_growth_outside0_x128
            )
            % MOD_256,
            (
                fee_growth_global1_x128
                - lower_fee_growth_outside1_x128
                - upper_fee_growth_outside1_x128
            )
            % MOD_256,
        )
    return (
        (upper_fee_growth_outside0_x128 - lower_fee_growth_outside0_x128) % MOD_256,
        (upper_fee_growth_outside1_x128 - lower_fee_growth_outside1_x128) % MOD_256,
    )


def fees(
    position: NpmPosition, fee_growth_inside0_x128: int, fee_growth_inside1_x128: int
) -> tuple[int, int]:
    """PositionValue._fees (v3-periphery 1.0.0): uncollected fees, tokens owed included."""
    amount0 = (
        mul_div(
            (fee_growth_inside0_x128 - position.fee_growth_inside0_last_x128) % MOD_256,
            position.liquidity,
            Q128,
        )
        + position.tokens_owed0
    )
    amount1 = (
        mul_div(
            (fee_growth_inside1_x128 - position.fee_growth_inside1_last_x128) % MOD_256,
            position.liquidity,
            Q128,
        )
        + position.tokens_owed1
    )
    return amount0, amount1


def total(
    position: NpmPosition,
    sqrt_ratio_x96: int,
    fee_growth_inside0_x128: int,
    fee_growth_inside1_x128: int,
) -> tuple[int, int]:
    """PositionValue.total (v3-periphery 1.0.0): principal plus fees."""
    p0, p1 = principal(position, sqrt_ratio_x96)
    f0, f1 = fees(position, fee_growth_inside0_x128, fee_growth_inside1_x128)
    return p0 + f0, p1 + f1
