"""Exact Uniswap V3 math: a pure-integer mirror of the v3-core and v3-periphery libraries.

One module per Solidity library, functions named as in Solidity in snake_case. Nothing here does
I/O or imports the rest of lpbot.
"""

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.pool import FEE_TICK_SPACING, Pool, Slot0, SwapResult
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK

__all__ = [
    "FEE_TICK_SPACING",
    "MAX_SQRT_RATIO",
    "MAX_TICK",
    "MIN_SQRT_RATIO",
    "MIN_TICK",
    "Pool",
    "Slot0",
    "SwapResult",
    "UniswapRevert",
]
