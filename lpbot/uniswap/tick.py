"""Mirror of v3-core ``Tick.sol``: per-tick liquidity and the "outside" accumulators.

Fee growth and the oracle accumulators are unsigned in Solidity and wrap on subtraction; the
wrap is reproduced with ``% 2**256`` (fee growth), ``% 2**160`` (seconds per liquidity),
``% 2**32`` (seconds) and int56 two's complement (tick cumulative).
"""

from __future__ import annotations

from dataclasses import dataclass

from lpbot.uniswap.constants import (
    MAX_INT128,
    MAX_UINT128,
    MIN_INT128,
    MOD_32,
    MOD_160,
    MOD_256,
    sdiv,
    wrap_int56,
)
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.liquidity_math import add_delta
from lpbot.uniswap.tick_math import MAX_TICK, MIN_TICK


@dataclass(slots=True)
class TickInfo:
    """Tick.Info: the state stored for one initialized tick."""

    liquidity_gross: int = 0
    liquidity_net: int = 0
    fee_growth_outside0_x128: int = 0
    fee_growth_outside1_x128: int = 0
    tick_cumulative_outside: int = 0
    seconds_per_liquidity_outside_x128: int = 0
    seconds_outside: int = 0
    initialized: bool = False

    def copy(self) -> TickInfo:
        return TickInfo(
            self.liquidity_gross,
            self.liquidity_net,
            self.fee_growth_outside0_x128,
            self.fee_growth_outside1_x128,
            self.tick_cumulative_outside,
            self.seconds_per_liquidity_outside_x128,
            self.seconds_outside,
            self.initialized,
        )


_EMPTY = TickInfo()


def tick_spacing_to_max_liquidity_per_tick(tick_spacing: int) -> int:
    """Tick.tickSpacingToMaxLiquidityPerTick (v3-core 1.0.0); Solidity's ``/`` truncates to zero."""
    min_tick = sdiv(MIN_TICK, tick_spacing) * tick_spacing
    max_tick = sdiv(MAX_TICK, tick_spacing) * tick_spacing
    num_ticks = (max_tick - min_tick) // tick_spacing + 1
    return MAX_UINT128 // num_ticks


def get_fee_growth_inside(
    ticks: dict[int, TickInfo],
    tick_lower: int,
    tick_upper: int,
    tick_current: int,
    fee_growth_global0_x128: int,
    fee_growth_global1_x128: int,
) -> tuple[int, int]:
    """Tick.getFeeGrowthInside (v3-core 1.0.0): fee growth per unit of liquidity inside a range.

    All subtractions wrap modulo 2**256, as in the contract.
    """
    lower = ticks.get(tick_lower, _EMPTY)
    upper = ticks.get(tick_upper, _EMPTY)

    if tick_current >= tick_lower:
        below0 = lower.fee_growth_outside0_x128
        below1 = lower.fee_growth_outside1_x128
    else:
        below0 = (fee_growth_global0_x128 - lower.fee_growth_outside0_x128) % MOD_256
        below1 = (fee_growth_global1_x128 - lower.fee_growth_outside1_x128) % MOD_256

    if tick_current < tick_upper:
        above0 = upper.fee_growth_outside0_x128
        above1 = upper.fee_growth_outside1_x128
    else:
        above0 = (fee_growth_global0_x128 - upper.fee_growth_outside0_x128) % MOD_256
        above1 = (fee_growth_global1_x128 - upper.fee_growth_outside1_x128) % MOD_256

    return (
        (fee_growth_global0_x128 - below0 - above0) % MOD_256,
        (fee_growth_global1_x128 - below1 - above1) % MOD_256,
    )


def update(
    ticks: dict[int, TickInfo],
    tick: int,
    tick_current: int,
    liquidity_delta: int,
    fee_growth_global0_x128: int,
    fee_growth_global1_x128: int,
    seconds_per_liquidity_cumulative_x128: int,
    tick_cumulative: int,
    time: int,
    upper: bool,
    max_liquidity: int,
) -> bool:
    """Tick.update (v3-core 1.0.0): apply a liquidity change; return True if the tick flipped.

    Reverts ``'LO'`` when the tick's gross liquidity would exceed ``max_liquidity``.
    """
    info = ticks.get(tick)
    if info is None:
        info = TickInfo()
    gross_before = info.liquidity_gross
    gross_after = add_delta(gross_before, liquidity_delta)
    if gross_after > max_liquidity:
        raise UniswapRevert("LO", f"tick {tick} liquidity {gross_after} > max {max_liquidity}")

    # the new net must fit int128 (LowGasSafeMath on int256, then SafeCast.toInt128);
    # checked before any write so that a revert leaves the tick untouched
    net = info.liquidity_net - liquidity_delta if upper else info.liquidity_net + liquidity_delta
    if not MIN_INT128 <= net <= MAX_INT128:
        raise UniswapRevert("", f"tick {tick} liquidityNet overflows int128")

    flipped = (gross_after == 0) != (gross_before == 0)

    if gross_before == 0:
        # by convention, all growth before a tick was initialized happened below it
        if tick <= tick_current:
            info.fee_growth_outside0_x128 = fee_growth_global0_x128
            info.fee_growth_outside1_x128 = fee_growth_global1_x128
            info.seconds_per_liquidity_outside_x128 = seconds_per_liquidity_cumulative_x128
            info.tick_cumulative_outside = tick_cumulative
            info.seconds_outside = time
        info.initialized = True

    info.liquidity_gross = gross_after
    info.liquidity_net = net
    ticks[tick] = info
    return flipped


def clear(ticks: dict[int, TickInfo], tick: int) -> None:
    """Tick.clear (v3-core 1.0.0): delete the tick's state."""
    ticks.pop(tick, None)


def cross(
    ticks: dict[int, TickInfo],
    tick: int,
    fee_growth_global0_x128: int,
    fee_growth_global1_x128: int,
    seconds_per_liquidity_cumulative_x128: int,
    tick_cumulative: int,
    time: int,
) -> int:
    """Tick.cross (v3-core 1.0.0): flip the outside accumulators; return liquidityNet."""
    info = ticks.get(tick)
    if info is None:  # Solidity reads a zero struct and writes it back
        info = TickInfo()
        ticks[tick] = info
    info.fee_growth_outside0_x128 = (
        fee_growth_global0_x128 - info.fee_growth_outside0_x128
    ) % MOD_256
    info.fee_growth_outside1_x128 = (
        fee_growth_global1_x128 - info.fee_growth_outside1_x128
    ) % MOD_256
    info.seconds_per_liquidity_outside_x128 = (
        seconds_per_liquidity_cumulative_x128 - info.seconds_per_liquidity_outside_x128
    ) % MOD_160
    info.tick_cumulative_outside = wrap_int56(tick_cumulative - info.tick_cumulative_outside)
    info.seconds_outside = (time - info.seconds_outside) % MOD_32
    return info.liquidity_net
