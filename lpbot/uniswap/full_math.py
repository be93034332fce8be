"""Mirror of v3-core ``FullMath.sol`` (512-bit intermediate multiply-divide).

Python integers are unbounded, so the 512-bit product is exact; the checks are Solidity's:
a zero denominator and a result wider than 256 bits revert.
"""

from __future__ import annotations

from lpbot.uniswap.constants import MAX_UINT256
from lpbot.uniswap.errors import UniswapRevert


def mul_div(a: int, b: int, denominator: int) -> int:
    """FullMath.mulDiv (v3-core 1.0.0): floor(a * b / denominator) for uint256 inputs.

    Reverts (no reason string) when ``denominator`` is 0 or the result overflows uint256.
    """
    if denominator <= 0:
        raise UniswapRevert("", "mulDiv: denominator is 0")
    result = a * b // denominator
    if result > MAX_UINT256:
        raise UniswapRevert("", "mulDiv: result overflows uint256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """FullMath.mulDivRoundingUp (v3-core 1.0.0): ceil(a * b / denominator) for uint256 inputs."""
    if denominator <= 0:
        raise UniswapRevert("", "mulDivRoundingUp: denominator is 0")
    q, r = divmod(a * b, denominator)
    if r:
        q += 1
    if q > MAX_UINT256:
        raise UniswapRevert("", "mulDivRoundingUp: result overflows uint256")
    return q


def div_rounding_up(x: int, y: int) -> int:
    """UnsafeMath.divRoundingUp (v3-core 1.0.0): ceil(x / y); ``y == 0`` yields 0 as in the EVM."""
    if y == 0:
        return 0
    q, r = divmod(x, y)
    return q + 1 if r else q
