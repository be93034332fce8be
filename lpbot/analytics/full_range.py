"""The passive full-range benchmark: the deposit put into one full-range position at the
deposit's price and never touched again (pure, exact integers).

Opening (``open_full_range``), at the deposit's block and price ``sqrtP``: the capital (the
tokens the hold benchmark holds) is swapped to the full range's ratio, paying the pool's fee on
what it sells as an exact-input swap does (SwapMath.computeSwapStep: ``amountIn = mulDiv(x,
1e6 - fee, 1e6)``) and no price impact (the backtest's benchmarks are charged none either); the
rest is exchanged at ``sqrtP``, rounded down. Its liquidity is what the NonfungiblePositionManager
would mint from what the swap left (LiquidityAmounts.getLiquidityForAmounts over the pool's
lowest and highest usable ticks), the mint takes SqrtPriceMath.getAmount{0,1}Delta rounded up,
and what it does not take stays idle. The swap is the largest that leaves the most liquidity
(a search over the integer amount sold). The gas of the opening is the ledger's to charge (the
real position's opening gas, ``analytics.ledger``).

At a later block (``value_at``): its principal is LiquidityAmounts.getAmountsForLiquidity at
that block's price (PositionValue.principal) and its fees are Position.update's
``mulDiv(feeGrowthInside - feeGrowthInsideAtOpen mod 2**256, L, 2**128)``, where fee growth
inside the full range is Tick.getFeeGrowthInside from the pool's fee growth globals and the
outside growths of its two extreme ticks: what a real position of that liquidity, minted at the
opening, would collect, to the wei.

The extreme ticks are the benchmark's own: where one was initialized both at the opening and at
the later block, the pool's values are the position's (a crossing included); where it was not
(no one else's liquidity starts there), the benchmark's mint would have initialized it
(Tick.update: outside = the globals when the current tick is at or above it, else 0) and the
price has not crossed it since (it would have had to leave the full range).
"""

from __future__ import annotations

from dataclasses import dataclass

from lpbot.uniswap.full_math import mul_div
from lpbot.uniswap.liquidity_amounts import (
    get_amounts_for_liquidity,
    get_liquidity_for_amount0,
    get_liquidity_for_amount1,
    get_liquidity_for_amounts,
)
from lpbot.uniswap.position import fees_owed
from lpbot.uniswap.sqrt_price_math import get_amount0_delta, get_amount1_delta
from lpbot.uniswap.tick import TickInfo, get_fee_growth_inside
from lpbot.uniswap.tick_math import MAX_TICK, get_sqrt_ratio_at_tick

__all__ = [
    "FullRangeOpen",
    "FullRangeValue",
    "PoolFeeState",
    "full_range_ticks",
    "open_full_range",
    "value_at",
]

FEE_DENOMINATOR = 1_000_000  # pips: SwapMath's 1e6
Q192 = 1 << 192


def full_range_ticks(tick_spacing: int) -> tuple[int, int]:
    """The lowest and highest usable ticks at ``tick_spacing`` (multiples of it within
    TickMath's MIN_TICK..MAX_TICK; ``strategy.min_usable_tick``, ``max_usable_tick``)."""
    if not 0 < tick_spacing < 16384:
        raise ValueError(f"tick spacing must be in (0, 16384), got {tick_spacing}")
    return -(MAX_TICK // tick_spacing) * tick_spacing, MAX_TICK // tick_spacing * tick_spacing


@dataclass(frozen=True, slots=True)
class PoolFeeState:
    """What the benchmark reads of a pool at one block: its price, fee tier, tick spacing, fee
    growth globals (Q128.128) and the fee growth outside (``feeGrowthOutside{0,1}X128``) of
    its full range's two ticks, None where the tick is not initialized."""

    block: int
    sqrt_price_x96: int
    tick: int
    fee: int  # pips (3000 = 0.3%)
    tick_spacing: int
    fee_growth_global0_x128: int
    fee_growth_global1_x128: int
    lower_outside: tuple[int, int] | None
    upper_outside: tuple[int, int] | None

    @property
    def ticks(self) -> tuple[int, int]:
        return full_range_ticks(self.tick_spacing)


@dataclass(frozen=True, slots=True)
class FullRangeOpen:
    """The benchmark's position, opened at ``at`` with ``capital``: the swap to the full
    range's ratio (``swap_in`` sold, ``swap_out`` bought, one side 0), the liquidity minted,
    what the mint took and what stayed idle (raw token amounts), and the state of its two
    ticks as its mint left them."""

    at: PoolFeeState
    capital: tuple[int, int]
    swap_in: tuple[int, int]
    swap_out: tuple[int, int]
    liquidity: int
    minted: tuple[int, int]
    idle: tuple[int, int]
    lower_outside: tuple[int, int]
    upper_outside: tuple[int, int]

    @property
    def fee_growth_inside(self) -> tuple[int, int]:
        """Fee growth inside the full range at the opening (the position's ``last``)."""
        return _inside(self, self.at)

    @property
    def after_swap(self) -> tuple[int, int]:
        """What the swap left: the amounts offered to the mint."""
        return (
            self.capital[0] - self.swap_in[0] + self.swap_out[0],
            self.capital[1] - self.swap_in[1] + self.swap_out[1],
        )


@dataclass(frozen=True, slots=True)
class FullRangeValue:
    """The benchmark at one block, in raw token amounts: its principal, the fees it would
    collect, and what its opening left idle."""

    open: FullRangeOpen
    block: int
    principal: tuple[int, int]
    fees: tuple[int, int]

    @property
    def tokens(self) -> tuple[int, int]:
        """Everything it holds: principal + fees + idle."""
        i = self.open.idle
        return (
            self.principal[0] + self.fees[0] + i[0],
            self.principal[1] + self.fees[1] + i[1],
        )


def _quote(amount_in: int, zero_for_one: bool, fee: int, sqrt_price_x96: int) -> int:
    """What selling ``amount_in`` buys at ``sqrt_price_x96`` after the pool's fee, no impact,
    rounded down."""
    net = mul_div(amount_in, FEE_DENOMINATOR - fee, FEE_DENOMINATOR)
    p2 = sqrt_price_x96 * sqrt_price_x96
    return net * p2 // Q192 if zero_for_one else net * Q192 // p2


def _initialized_by_mint(
    outside: tuple[int, int] | None, tick: int, state: PoolFeeState
) -> tuple[int, int]:
    """A tick's fee growth outside once the benchmark's mint has touched it (Tick.update:
    an uninitialized tick at or below the current tick starts at the globals, else at 0)."""
    if outside is not None:
        return outside
    if state.tick >= tick:
        return state.fee_growth_global0_x128, state.fee_growth_global1_x128
    return 0, 0


def _inside(fr: FullRangeOpen, now: PoolFeeState) -> tuple[int, int]:
    """Fee growth inside the benchmark's range at ``now`` (Tick.getFeeGrowthInside), its
    ticks the pool's where initialized at both the opening and ``now``, else its own."""
    lo, hi = fr.at.ticks
    lower, upper = fr.lower_outside, fr.upper_outside
    if fr.at.lower_outside is not None and now.lower_outside is not None:
        lower = now.lower_outside
    if fr.at.upper_outside is not None and now.upper_outside is not None:
        upper = now.upper_outside
    ticks = {
        lo: TickInfo(fee_growth_outside0_x128=lower[0], fee_growth_outside1_x128=lower[1]),
        hi: TickInfo(fee_growth_outside0_x128=upper[0], fee_growth_outside1_x128=upper[1]),
    }
    return get_fee_growth_inside(
        ticks, lo, hi, now.tick, now.fee_growth_global0_x128, now.fee_growth_global1_x128
    )


def open_full_range(capital: tuple[int, int], at: PoolFeeState) -> FullRangeOpen:
    """The benchmark opened at ``at`` with ``capital`` (raw token0, token1): swapped to the full
    range's ratio at the pool's fee and no impact, then minted (see the module's docstring)."""
    if min(capital) < 0 or max(capital) == 0:
        raise ValueError(f"full-range benchmark: no capital to open with ({capital})")
    lo, hi = at.ticks
    sqrt_p = at.sqrt_price_x96
    sqrt_a, sqrt_b = get_sqrt_ratio_at_tick(lo), get_sqrt_ratio_at_tick(hi)
    c0, c1 = capital

    def liquidity(sold: int, zero_for_one: bool) -> tuple[int, int]:
        """(liquidity from token0, from token1) after selling ``sold``."""
        got = _quote(sold, zero_for_one, at.fee, sqrt_p)
        a0, a1 = (c0 - sold, c1 + got) if zero_for_one else (c0 + got, c1 - sold)
        return (
            get_liquidity_for_amount0(sqrt_p, sqrt_b, a0),
            get_liquidity_for_amount1(sqrt_a, sqrt_p, a1),
        )

    l0, l1 = liquidity(0, True)
    zero_for_one = l0 > l1  # token0 is in excess: sell some of it
    sold = 0
    if l0 != l1:
        # liquidity from the side sold falls and from the side bought rises with the amount
        # sold: the last amount at which the sold side still pays for at least as much
        lo_x, hi_x = 0, c0 if zero_for_one else c1
        while lo_x < hi_x:
            mid = (lo_x + hi_x + 1) // 2
            s_liq, b_liq = liquidity(mid, zero_for_one)
            if not zero_for_one:
                s_liq, b_liq = b_liq, s_liq
            if s_liq >= b_liq:
                lo_x = mid
            else:
                hi_x = mid - 1
        # the crossing: one more unit sold may leave more liquidity
        sold = max(
            (x for x in (lo_x, lo_x + 1) if x <= (c0 if zero_for_one else c1)),
            key=lambda x: (min(liquidity(x, zero_for_one)), -x),
        )
    got = _quote(sold, zero_for_one, at.fee, sqrt_p)
    swap_in = (sold, 0) if zero_for_one else (0, sold)
    swap_out = (0, got) if zero_for_one else (got, 0)
    b0, b1 = c0 - swap_in[0] + swap_out[0], c1 - swap_in[1] + swap_out[1]
    liq = get_liquidity_for_amounts(sqrt_p, sqrt_a, sqrt_b, b0, b1)
    # UniswapV3Pool.mint -> Position._modifyPosition: the amounts owed, rounded up
    minted = (
        get_amount0_delta(sqrt_p, sqrt_b, liq, True),
        get_amount1_delta(sqrt_a, sqrt_p, liq, True),
    )
    return FullRangeOpen(
        at=at,
        capital=capital,
        swap_in=swap_in,
        swap_out=swap_out,
        liquidity=liq,
        minted=minted,
        idle=(b0 - minted[0], b1 - minted[1]),
        lower_outside=_initialized_by_mint(at.lower_outside, lo, at),
        upper_outside=_initialized_by_mint(at.upper_outside, hi, at),
    )


def value_at(fr: FullRangeOpen, now: PoolFeeState) -> FullRangeValue:
    """The benchmark at ``now``: principal at its price, fees to the wei (module docstring)."""
    if (now.fee, now.tick_spacing) != (fr.at.fee, fr.at.tick_spacing):
        raise ValueError(
            f"full-range benchmark: pool fee/spacing {now.fee}/{now.tick_spacing} at block "
            f"{now.block}, {fr.at.fee}/{fr.at.tick_spacing} at its opening"
        )
    lo, hi = fr.at.ticks
    principal = get_amounts_for_liquidity(
        now.sqrt_price_x96, get_sqrt_ratio_at_tick(lo), get_sqrt_ratio_at_tick(hi), fr.liquidity
    )
    last0, last1 = fr.fee_growth_inside
    inside0, inside1 = _inside(fr, now)
    fees = fees_owed(fr.liquidity, inside0, inside1, last0, last1)
    return FullRangeValue(fr, now.block, principal, fees)
