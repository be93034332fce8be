"""Mirror of v3-core ``BitMath.sol``."""

from __future__ import annotations

from lpbot.uniswap.errors import require


def most_significant_bit(x: int) -> int:
    """BitMath.mostSignificantBit (v3-core 1.0.0): highest set bit of x > 0."""
    require(x > 0, "", "mostSignificantBit of 0")
    return x.bit_length() - 1


def least_significant_bit(x: int) -> int:
    """BitMath.leastSignificantBit (v3-core 1.0.0): lowest set bit of x > 0."""
    require(x > 0, "", "leastSignificantBit of 0")
    return (x & -x).bit_length() - 1
