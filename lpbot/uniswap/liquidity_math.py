"""Mirror of v3-core ``LiquidityMath.sol``."""

from __future__ import annotations

from lpbot.uniswap.constants import MAX_UINT128
from lpbot.uniswap.errors import UniswapRevert


def add_delta(x: int, y: int) -> int:
    """LiquidityMath.addDelta (v3-core 1.0.0): uint128 ``x`` plus int128 ``y``.

    Reverts ``'LS'`` (liquidity sub) on underflow and ``'LA'`` (liquidity add) on overflow.
    """
    z = x + y
    if y < 0:
        if z < 0:
            raise UniswapRevert("LS", f"liquidity {x} minus {-y} underflows")
    elif z > MAX_UINT128:
        raise UniswapRevert("LA", f"liquidity {x} plus {y} overflows uint128")
    return z
