"""Helpers shared by the tests/uniswap suite: the v3-core test utilities, re-done in Python.

``encode_price_sqrt``, ``expand_to_18_decimals``, ``get_min_tick`` and ``get_max_tick`` mirror
``test/shared/utilities.ts`` of Uniswap/v3-core; ``PoolHarness`` plays the part of the
``TestUniswapV3Callee`` / ``MockTimeUniswapV3Pool`` pair used by ``test/UniswapV3Pool.spec.ts``
(token balances of the pool, a clock starting at ``TEST_POOL_START_TIME``).
"""

from __future__ import annotations

import copy
import math
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal
from typing import Any

from lpbot.uniswap.pool import Pool, SwapResult
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK

Q96 = 1 << 96
Q128 = 1 << 128
MAX_UINT128 = (1 << 128) - 1
MAX_UINT256 = (1 << 256) - 1
MAX_INT256 = (1 << 255) - 1

# test/shared/fixtures.ts
TEST_POOL_START_TIME = 1601906400

WALLET = "0x" + "11" * 20
OTHER = "0x" + "22" * 20

_40_PLACES = Decimal(1).scaleb(-40)
_CTX = Context(prec=400, rounding=ROUND_HALF_UP)


def encode_price_sqrt(reserve1: int, reserve0: int) -> int:
    """utilities.ts ``encodePriceSqrt``: bignumber.js with DECIMAL_PLACES 40, ROUND_HALF_UP.

    ``reserve1 / reserve0`` and its square root are each rounded to 40 decimal places, then the
    root times 2**96 is floored (``integerValue(3)``).
    """
    ratio = _CTX.divide(Decimal(reserve1), Decimal(reserve0)).quantize(
        _40_PLACES, rounding=ROUND_HALF_UP, context=_CTX
    )
    root = _CTX.sqrt(ratio).quantize(_40_PLACES, rounding=ROUND_HALF_UP, context=_CTX)
    return int(_CTX.multiply(root, Decimal(Q96)).to_integral_value(rounding=ROUND_FLOOR))


def expand_to_18_decimals(n: int) -> int:
    return n * 10**18


def get_min_tick(tick_spacing: int) -> int:
    """utilities.ts ``getMinTick``: ``Math.ceil(-887272 / tickSpacing) * tickSpacing``."""
    return math.ceil(MIN_TICK / tick_spacing) * tick_spacing


def get_max_tick(tick_spacing: int) -> int:
    """utilities.ts ``getMaxTick``: ``Math.floor(887272 / tickSpacing) * tickSpacing``."""
    return math.floor(MAX_TICK / tick_spacing) * tick_spacing


def snapshot(pool: Pool) -> Pool:
    """A deep copy to compare a pool against later (``Pool`` is a dataclass: ``==`` is deep)."""
    return copy.deepcopy(pool)


def pool_state(pool: Pool) -> dict[str, Any]:
    """Every stored field of the pool as plain data, for readable before/after diffs."""
    return {
        "slot0": copy.copy(pool.slot0),
        "block_timestamp": pool.block_timestamp,
        "liquidity": pool.liquidity,
        "fee_growth_global0_x128": pool.fee_growth_global0_x128,
        "fee_growth_global1_x128": pool.fee_growth_global1_x128,
        "protocol_fees": copy.copy(pool.protocol_fees),
        "ticks": {t: info.copy() for t, info in pool.ticks.items()},
        "tick_bitmap": dict(pool.tick_bitmap),
        "positions": {k: p.copy() for k, p in pool.positions.items()},
        "observations": dict(pool.observations),
        "max_liquidity_per_tick": pool.max_liquidity_per_tick,
    }


class PoolHarness:
    """A pool plus the pool's token balances, driven like ``createPoolFunctions`` drives it."""

    def __init__(self, fee: int, tick_spacing: int, sqrt_price_x96: int) -> None:
        self.pool = Pool(fee, tick_spacing, sqrt_price_x96, block_timestamp=TEST_POOL_START_TIME)
        self.balance0 = 0
        self.balance1 = 0
        self.min_tick = get_min_tick(tick_spacing)
        self.max_tick = get_max_tick(tick_spacing)
        self.tick_spacing = tick_spacing

    def advance_time(self, seconds: int) -> None:
        self.pool.block_timestamp = (self.pool.block_timestamp + seconds) % (1 << 32)

    def mint(self, owner: str, lower: int, upper: int, amount: int) -> tuple[int, int]:
        amount0, amount1 = self.pool.mint(owner, lower, upper, amount)
        self.balance0 += amount0
        self.balance1 += amount1
        return amount0, amount1

    def burn(self, owner: str, lower: int, upper: int, amount: int) -> tuple[int, int]:
        return self.pool.burn(owner, lower, upper, amount)

    def collect(self, owner: str, lower: int, upper: int) -> tuple[int, int]:
        amount0, amount1 = self.pool.collect(owner, lower, upper, MAX_UINT128, MAX_UINT128)
        self.balance0 -= amount0
        self.balance1 -= amount1
        return amount0, amount1

    def _swap(self, zero_for_one: bool, amount: int, limit: int) -> SwapResult:
        result = self.pool.swap(zero_for_one, amount, limit)
        self.balance0 += result.amount0
        self.balance1 += result.amount1
        return result

    def swap_exact0_for1(self, amount: int) -> SwapResult:
        return self._swap(True, amount, MIN_SQRT_RATIO + 1)

    def swap0_for_exact1(self, amount: int) -> SwapResult:
        return self._swap(True, -amount, MIN_SQRT_RATIO + 1)

    def swap_exact1_for0(self, amount: int) -> SwapResult:
        return self._swap(False, amount, MAX_SQRT_RATIO - 1)

    def swap1_for_exact0(self, amount: int) -> SwapResult:
        return self._swap(False, -amount, MAX_SQRT_RATIO - 1)

    def swap_to_lower_price(self, sqrt_price_x96: int) -> SwapResult:
        return self._swap(True, MAX_INT256, sqrt_price_x96)

    def swap_to_higher_price(self, sqrt_price_x96: int) -> SwapResult:
        return self._swap(False, MAX_INT256, sqrt_price_x96)

    def flash(
        self, amount0: int, amount1: int, pay0: int | None = None, pay1: int | None = None
    ) -> tuple[int, int]:
        """TestUniswapV3Callee.flash: borrow ``amount0/1`` and pay back ``pay0/1`` (default:
        the amount plus the fee); the pool sees ``paid = pay - amount`` (negative when the
        balance is not returned, which fails the same ``F0``/``F1`` check)."""
        fee0 = -(-amount0 * self.pool.fee // 1_000_000)
        fee1 = -(-amount1 * self.pool.fee // 1_000_000)
        pay0 = amount0 + fee0 if pay0 is None else pay0
        pay1 = amount1 + fee1 if pay1 is None else pay1
        fees = self.pool.flash(amount0, amount1, pay0 - amount0, pay1 - amount1)
        self.balance0 += pay0 - amount0
        self.balance1 += pay1 - amount1
        return fees
