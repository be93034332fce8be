"""Fees: what a position is owed, exactly as the contract computes it, and the pool's fee rate.

``uncollected_fees`` is exact (ints, fee growth wrapping modulo 2**256 as in Solidity).
``fee_rate`` and ``fee_apr`` are float (analytics): averages between two snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpbot.analytics.types import (
    SECONDS_PER_YEAR,
    PoolSnapshot,
    PositionSnapshot,
    RawAmount,
    TokenAmounts,
)
from lpbot.uniswap.constants import MOD_128, MOD_256, Q96, Q128
from lpbot.uniswap.position import fees_owed
from lpbot.uniswap.tick import TickInfo, get_fee_growth_inside
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick


def fee_growth_inside(pool: PoolSnapshot, position: PositionSnapshot) -> tuple[int, int]:
    """Fee growth per unit of liquidity inside the position's range now (Q128.128).

    Tick.getFeeGrowthInside (v3-core 1.0.0) over the position's two ticks' outside values and
    the pool's globals, wrapping modulo 2**256.
    """
    ticks: dict[int, TickInfo] = {
        position.tick_lower: TickInfo(
            fee_growth_outside0_x128=position.lower_fee_growth_outside0_x128,
            fee_growth_outside1_x128=position.lower_fee_growth_outside1_x128,
            initialized=True,
        ),
        position.tick_upper: TickInfo(
            fee_growth_outside0_x128=position.upper_fee_growth_outside0_x128,
            fee_growth_outside1_x128=position.upper_fee_growth_outside1_x128,
            initialized=True,
        ),
    }
    return get_fee_growth_inside(
        ticks,
        position.tick_lower,
        position.tick_upper,
        pool.tick,
        pool.fee_growth_global0_x128,
        pool.fee_growth_global1_x128,
    )


def uncollected_fees(pool: PoolSnapshot, position: PositionSnapshot) -> TokenAmounts:
    """Raw fees the position could collect now: tokens owed plus fees accrued since its update.

    The number ``burn(owner, lower, upper, 0)`` followed by ``positions(key).tokensOwed`` shows
    (Position.update, v3-core 1.0.0): ``mulDiv(inside - last mod 2**256, L, 2**128)`` truncated to
    uint128, added to the tokens owed modulo 2**128.
    """
    inside0, inside1 = fee_growth_inside(pool, position)
    owed0, owed1 = fees_owed(
        position.liquidity,
        inside0,
        inside1,
        position.fee_growth_inside0_last_x128,
        position.fee_growth_inside1_last_x128,
    )
    return TokenAmounts(
        RawAmount((position.tokens_owed0 + owed0) % MOD_128),
        RawAmount((position.tokens_owed1 + owed1) % MOD_128),
    )


@dataclass(frozen=True, slots=True)
class FeeRate:
    """Fees earned per unit of in-range liquidity per second, in raw tokens (float, analytics).

    Derived from the growth of the pool's fee growth globals over ``seconds``; a position of
    liquidity ``L`` that stayed in range earned ``L * per_second * seconds`` of each token.
    """

    token0_per_second: float
    token1_per_second: float
    seconds: float

    def __post_init__(self) -> None:
        if self.token0_per_second < 0 or self.token1_per_second < 0:
            raise ValueError("fee rates must be >= 0")
        if self.seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {self.seconds}")


def fee_rate(earlier: PoolSnapshot, later: PoolSnapshot) -> FeeRate:
    """The pool's fee rate per unit of in-range liquidity between two snapshots of one pool.

    Fee growth globals wrap modulo 2**256, so their difference is taken modulo 2**256.
    """
    seconds = later.timestamp - earlier.timestamp
    if seconds <= 0:
        raise ValueError(
            f"later snapshot must be after the earlier one, got {earlier.timestamp} -> "
            f"{later.timestamp}"
        )
    growth0 = (later.fee_growth_global0_x128 - earlier.fee_growth_global0_x128) % MOD_256
    growth1 = (later.fee_growth_global1_x128 - earlier.fee_growth_global1_x128) % MOD_256
    return FeeRate(growth0 / Q128 / seconds, growth1 / Q128 / seconds, float(seconds))


def fee_apr(rate: FeeRate, pool: PoolSnapshot, tick_lower: int, tick_upper: int) -> float:
    """Annual fee yield (fraction per year, simple) of liquidity in a range at the pool's price.

    Fees per unit of liquidity per year valued in token1 at the current price, divided by what a
    unit of liquidity in ``[tick_lower, tick_upper)`` is worth in token1 there. Assumes the price
    stays in range at ``rate``; both in raw units, so token decimals cancel. Float, analytics.
    """
    sqrt_p = pool.sqrt_price_x96 / Q96
    price = sqrt_p * sqrt_p  # raw token1 per raw token0
    sa = get_sqrt_ratio_at_tick(tick_lower) / Q96
    sb = get_sqrt_ratio_at_tick(tick_upper) / Q96
    s = min(max(sqrt_p, sa), sb)
    value_per_liquidity = price * (1.0 / s - 1.0 / sb) + (s - sa)
    if value_per_liquidity <= 0:
        raise ValueError("range has no value at this price")
    yearly = (rate.token0_per_second * price + rate.token1_per_second) * SECONDS_PER_YEAR
    return yearly / value_per_liquidity
