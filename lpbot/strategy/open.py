"""Plan a new position for a given capital: the swap to the right ratio, the liquidity, the dust.

Everything is exact (ints) and solved against the pool itself: the swap is quoted with
``Pool.quote_swap`` (fee, price impact and the ticks it crosses included) and the mint is priced
at the price the swap leaves, as the chain would see it in a swap-then-mint bundle.

The swap amount ``s`` (exact input of the token in excess) is found over the integers. With
``L0(s)`` and ``L1(s)`` the liquidity the balances left after the swap could each pay for at the
new price (LiquidityAmounts.getLiquidityForAmount0/1), ``L0 - L1`` falls as ``s`` grows; the
search narrows its sign change to ``[s, s + 1]`` by secant steps in exact integers, bisecting
whenever a step would leave the bracket or fails to shrink it fast enough (typically 5-40
quotes), then keeps the side with more liquidity.

Dust bound. With ``J`` the change of ``L0 - L1`` over that last unit of ``s`` (the problem's
resolution; 0 at an exact balance), each token's dust is at most what ``J + 1`` units of
liquidity hold of it at the mint price, rounded up, plus 2 units of rounding, plus for token0
``b0 // I + 1`` (the rounding of getLiquidityForAmount0's intermediate
``I = sqrtP * sqrtB / 2**96``). When even the whole balance of the token in excess does not reach
the ratio (or the range needs only the other token), all of it is swapped and ``J = 0``.

Refused (``ValueError``) when the pool is too thin for the plan: the swap cannot be absorbed
before the price limit, or one unit of swap moves the price across the whole range.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpbot.analytics.types import Liquidity, PoolSnapshot, RawAmount, SqrtPriceX96, Tick
from lpbot.strategy.base import Range
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.full_math import mul_div
from lpbot.uniswap.liquidity_amounts import (
    get_liquidity_for_amount0,
    get_liquidity_for_amount1,
    get_liquidity_for_amounts,
)
from lpbot.uniswap.pool import Pool, SwapResult
from lpbot.uniswap.sqrt_price_math import get_amount0_delta, get_amount1_delta
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick


@dataclass(frozen=True, slots=True)
class SwapPlan:
    """An exact-input swap in the pool, as quoted: ``amount_in`` includes the fee."""

    zero_for_one: bool
    amount_in: RawAmount
    expected_out: RawAmount
    fee_amount: RawAmount
    sqrt_price_after_x96: SqrtPriceX96
    tick_after: Tick


@dataclass(frozen=True, slots=True)
class OpenPlan:
    """Swap (or not), then mint ``liquidity`` in ``range`` paying ``amount0``/``amount1``.

    ``amount0``/``amount1`` are what ``mint`` demands at ``sqrt_price_x96`` (rounded up, as the
    pool does); ``dust0``/``dust1`` are the capital left over, never above ``dust_bound0/1``
    (module docstring). ``quotes`` counts the ``quote_swap`` calls made.
    """

    range: Range
    liquidity: Liquidity
    amount0: RawAmount
    amount1: RawAmount
    swap: SwapPlan | None
    dust0: RawAmount
    dust1: RawAmount
    dust_bound0: RawAmount
    dust_bound1: RawAmount
    sqrt_price_x96: SqrtPriceX96
    quotes: int


@dataclass(frozen=True, slots=True)
class _Point:
    """The state after swapping ``s`` of the token in excess."""

    s: int
    result: SwapResult | None
    sqrt_price: int
    tick: int
    balance0: int
    balance1: int
    liquidity0: int | None  # None: the range needs no token0 at this price
    liquidity1: int | None

    @property
    def excess(self) -> float | int:
        """``L0 - L1``: > 0 when token0 is in excess; +-inf when one token is not needed."""
        if self.liquidity0 is None:
            return float("inf")
        if self.liquidity1 is None:
            return float("-inf")
        return self.liquidity0 - self.liquidity1


class _Solver:
    def __init__(self, pool: Pool, rng: Range, amount0: int, amount1: int) -> None:
        self.pool = pool
        self.rng = rng
        self.amount0 = amount0
        self.amount1 = amount1
        self.sqrt_a = get_sqrt_ratio_at_tick(rng.tick_lower)
        self.sqrt_b = get_sqrt_ratio_at_tick(rng.tick_upper)
        self.quotes = 0
        self.zero_for_one = True

    def point(self, s: int) -> _Point:
        pool = self.pool
        result: SwapResult | None = None
        sqrt_price, tick = pool.sqrt_price_x96, pool.tick
        b0, b1 = self.amount0, self.amount1
        if s > 0:
            limit = MIN_SQRT_RATIO + 1 if self.zero_for_one else MAX_SQRT_RATIO - 1
            self.quotes += 1
            try:
                result = pool.quote_swap(self.zero_for_one, s, limit)
            except UniswapRevert:  # price already at the limit: nothing can be swapped
                result = None
            if result is not None:
                sqrt_price, tick = result.sqrt_price_x96, result.tick
                b0, b1 = b0 - result.amount0, b1 - result.amount1
        sa, sb = self.sqrt_a, self.sqrt_b
        liquidity0 = (
            get_liquidity_for_amount0(max(sqrt_price, sa), sb, b0) if sqrt_price < sb else None
        )
        liquidity1 = (
            get_liquidity_for_amount1(sa, min(sqrt_price, sb), b1) if sqrt_price > sa else None
        )
        return _Point(s, result, sqrt_price, tick, b0, b1, liquidity0, liquidity1)

    def need_more(self, p: _Point) -> bool:
        """True while the token being sold is still in excess."""
        return p.excess > 0 if self.zero_for_one else p.excess < 0

    def liquidity(self, p: _Point) -> int:
        return get_liquidity_for_amounts(
            p.sqrt_price, self.sqrt_a, self.sqrt_b, p.balance0, p.balance1
        )

    def mint_amounts(self, p: _Point, liquidity: int) -> tuple[int, int]:
        """What UniswapV3Pool._modifyPosition demands for ``liquidity`` at the point's price."""
        lower, upper = self.rng.tick_lower, self.rng.tick_upper
        sa, sb = self.sqrt_a, self.sqrt_b
        if p.tick < lower:
            return get_amount0_delta(sa, sb, liquidity, True), 0
        if p.tick < upper:
            return (
                get_amount0_delta(p.sqrt_price, sb, liquidity, True),
                get_amount1_delta(sa, p.sqrt_price, liquidity, True),
            )
        return 0, get_amount1_delta(sa, sb, liquidity, True)

    def bounds(self, p: _Point, jump: int) -> tuple[int, int]:
        sa, sb = self.sqrt_a, self.sqrt_b
        units = jump + 1
        bound0 = bound1 = 2
        if p.sqrt_price < sb:
            lo = max(p.sqrt_price, sa)
            intermediate = mul_div(lo, sb, Q96)
            bound0 += (
                get_amount0_delta(lo, sb, units, True) + p.balance0 // max(intermediate, 1) + 1
            )
        if p.sqrt_price > sa:
            bound1 += get_amount1_delta(sa, min(p.sqrt_price, sb), units, True)
        return bound0, bound1


def plan_open(pool: Pool | PoolSnapshot, rng: Range, amount0: int, amount1: int) -> OpenPlan:
    """Plan the swap and mint that put ``amount0`` and ``amount1`` (raw) into ``rng``.

    The pool is not changed (``quote_swap``). Raises ``ValueError`` when the range's spacing is
    not the pool's, the capital cannot pay for any liquidity in the range, or the liquidity would
    pass the pool's per-tick maximum (``'LO'`` on mint).
    """
    if isinstance(pool, PoolSnapshot):
        pool = pool.to_pool()
    if rng.tick_spacing != pool.tick_spacing:
        raise ValueError(
            f"range spacing {rng.tick_spacing} is not the pool's spacing {pool.tick_spacing}"
        )
    if amount0 < 0 or amount1 < 0:
        raise ValueError(f"amounts must be >= 0, got {amount0}, {amount1}")
    if amount0 == 0 and amount1 == 0:
        raise ValueError("no capital: both amounts are 0")

    solver = _Solver(pool, rng, amount0, amount1)
    start = solver.point(0)
    jump = 0
    if start.excess == 0:
        chosen = start
    else:
        solver.zero_for_one = start.excess > 0
        total = amount0 if solver.zero_for_one else amount1
        hi_p = solver.point(total) if total > 0 else start
        if total == 0 or solver.need_more(hi_p):
            chosen = hi_p  # even all of it is not too much: swap everything
            if hi_p.result is not None:
                paid = hi_p.result.amount0 if solver.zero_for_one else hi_p.result.amount1
                if paid < total:
                    raise ValueError(
                        f"the pool cannot absorb the swap: {total - paid} of {total} left "
                        "unswapped at the price limit"
                    )
        else:
            lo_p, hi_p = _bracket(solver, start, hi_p)
            if hi_p.excess == 0:  # exact balance: both tokens limit the liquidity
                chosen = hi_p
            elif isinstance(lo_p.excess, int) and isinstance(hi_p.excess, int):
                chosen = hi_p if solver.liquidity(hi_p) > solver.liquidity(lo_p) else lo_p
                jump = abs(lo_p.excess - hi_p.excess)
            else:
                raise ValueError(
                    f"the pool is too thin for this capital in this range: one more unit of swap "
                    f"moves the price from tick {lo_p.tick} to {hi_p.tick}, across the range "
                    f"[{rng.tick_lower}, {rng.tick_upper}]"
                )

    liquidity = solver.liquidity(chosen)
    if liquidity <= 0:
        raise ValueError(
            f"capital ({amount0}, {amount1}) cannot pay for any liquidity in "
            f"[{rng.tick_lower}, {rng.tick_upper}]"
        )
    for tick in (rng.tick_lower, rng.tick_upper):
        if pool.tick_info(tick).liquidity_gross + liquidity > pool.max_liquidity_per_tick:
            raise ValueError(
                f"liquidity {liquidity} would exceed the pool's per-tick maximum at tick {tick}"
            )
    need0, need1 = solver.mint_amounts(chosen, liquidity)
    bound0, bound1 = solver.bounds(chosen, jump)
    swap = None
    if chosen.result is not None:
        r = chosen.result
        swap = SwapPlan(
            zero_for_one=solver.zero_for_one,
            amount_in=RawAmount(r.amount0 if solver.zero_for_one else r.amount1),
            expected_out=RawAmount(-r.amount1 if solver.zero_for_one else -r.amount0),
            fee_amount=RawAmount(r.fee_amount),
            sqrt_price_after_x96=SqrtPriceX96(r.sqrt_price_x96),
            tick_after=Tick(r.tick),
        )
    return OpenPlan(
        range=rng,
        liquidity=Liquidity(liquidity),
        amount0=RawAmount(need0),
        amount1=RawAmount(need1),
        swap=swap,
        dust0=RawAmount(chosen.balance0 - need0),
        dust1=RawAmount(chosen.balance1 - need1),
        dust_bound0=RawAmount(bound0),
        dust_bound1=RawAmount(bound1),
        sqrt_price_x96=SqrtPriceX96(chosen.sqrt_price),
        quotes=solver.quotes,
    )


def _bracket(solver: _Solver, lo_p: _Point, hi_p: _Point) -> tuple[_Point, _Point]:
    """Shrink ``[lo, hi]`` (need more at lo, not at hi) to neighbouring swap amounts.

    Each step tries the secant through the last two points evaluated (in exact integers) and
    bisects when that leaves the bracket or the bracket has not halved per step lately. Stops
    early at an exact balance (``L0 == L1``), returned as ``hi``.
    """
    sign = 1 if solver.zero_for_one else -1
    last = [lo_p, hi_p]
    widths = [hi_p.s - lo_p.s]
    while hi_p.s - lo_p.s > 1 and hi_p.excess != 0:
        lo, hi = lo_p.s, hi_p.s
        m = lo + (hi - lo) // 2
        slow = len(widths) >= 3 and 4 * widths[-1] > widths[-3]
        a, b = last[-2], last[-1]
        if not slow and isinstance(a.excess, int) and isinstance(b.excess, int):
            ga, gb = sign * a.excess, sign * b.excess
            if ga != gb:
                guess = b.s - gb * (b.s - a.s) // (gb - ga)
                if lo < guess < hi:
                    m = guess
        m = min(max(m, lo + 1), hi - 1)
        p = solver.point(m)
        last.append(p)
        if solver.need_more(p):
            lo_p = p
        else:
            hi_p = p
        widths.append(hi_p.s - lo_p.s)
    return lo_p, hi_p
