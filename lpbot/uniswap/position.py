"""Mirror of v3-core ``Position.sol``: a position's liquidity and the fees it is owed."""

from __future__ import annotations

from dataclasses import dataclass

from lpbot.uniswap.constants import MOD_128, MOD_256, Q128
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.full_math import mul_div
from lpbot.uniswap.liquidity_math import add_delta


@dataclass(slots=True)
class PositionInfo:
    """Position.Info: the state stored for one (owner, tick_lower, tick_upper)."""

    liquidity: int = 0
    fee_growth_inside0_last_x128: int = 0
    fee_growth_inside1_last_x128: int = 0
    tokens_owed0: int = 0
    tokens_owed1: int = 0

    def copy(self) -> PositionInfo:
        return PositionInfo(
            self.liquidity,
            self.fee_growth_inside0_last_x128,
            self.fee_growth_inside1_last_x128,
            self.tokens_owed0,
            self.tokens_owed1,
        )


def fees_owed(
    liquidity: int,
    fee_growth_inside0_x128: int,
    fee_growth_inside1_x128: int,
    fee_growth_inside0_last_x128: int,
    fee_growth_inside1_last_x128: int,
) -> tuple[int, int]:
    """The fees accrued since the last update, as Position.update computes them (v3-core 1.0.0).

    ``mulDiv(feeGrowthInside - last, liquidity, 2**128)`` with the subtraction wrapping modulo
    2**256 and the result truncated to uint128 (``uint128(...)``).
    """
    owed0 = mul_div(
        (fee_growth_inside0_x128 - fee_growth_inside0_last_x128) % MOD_256, liquidity, Q128
    )
    owed1 = mul_div(
        (fee_growth_inside1_x128 - fee_growth_inside1_last_x128) % MOD_256, liquidity, Q128
    )
    return owed0 % MOD_128, owed1 % MOD_128


def update(
    info: PositionInfo,
    liquidity_delta: int,
    fee_growth_inside0_x128: int,
    fee_growth_inside1_x128: int,
) -> None:
    """Position.update (v3-core 1.0.0): credit fees owed and apply ``liquidity_delta``.

    Reverts ``'NP'`` when poking (delta 0) a position with no liquidity. Tokens owed wrap modulo
    2**128, as in the contract ("have to withdraw before you hit type(uint128).max fees").
    """
    if liquidity_delta == 0:
        if info.liquidity <= 0:
            raise UniswapRevert("NP", "poke of a position with no liquidity")
        liquidity_next = info.liquidity
    else:
        liquidity_next = add_delta(info.liquidity, liquidity_delta)

    owed0, owed1 = fees_owed(
        info.liquidity,
        fee_growth_inside0_x128,
        fee_growth_inside1_x128,
        info.fee_growth_inside0_last_x128,
        info.fee_growth_inside1_last_x128,
    )

    if liquidity_delta != 0:
        info.liquidity = liquidity_next
    info.fee_growth_inside0_last_x128 = fee_growth_inside0_x128
    info.fee_growth_inside1_last_x128 = fee_growth_inside1_x128
    if owed0 > 0 or owed1 > 0:
        info.tokens_owed0 = (info.tokens_owed0 + owed0) % MOD_128
        info.tokens_owed1 = (info.tokens_owed1 + owed1) % MOD_128
