"""Fixed-point and integer-width constants of the Uniswap V3 libraries."""

from __future__ import annotations

from typing import Final

Q96: Final = 1 << 96  # FixedPoint96.Q96
Q128: Final = 1 << 128  # FixedPoint128.Q128
RESOLUTION_96: Final = 96  # FixedPoint96.RESOLUTION

MAX_UINT8: Final = (1 << 8) - 1
MAX_UINT16: Final = (1 << 16) - 1
MAX_UINT32: Final = (1 << 32) - 1
MAX_UINT128: Final = (1 << 128) - 1
MAX_UINT160: Final = (1 << 160) - 1
MAX_UINT256: Final = (1 << 256) - 1
MAX_INT128: Final = (1 << 127) - 1
MIN_INT128: Final = -(1 << 127)
MAX_INT256: Final = (1 << 255) - 1
MIN_INT256: Final = -(1 << 255)

MOD_32: Final = 1 << 32
MOD_128: Final = 1 << 128
MOD_160: Final = 1 << 160
MOD_256: Final = 1 << 256


def wrap_int56(x: int) -> int:
    """Reduce ``x`` to int56 two's complement, as Solidity 0.7's unchecked int56 arithmetic does."""
    return ((x + (1 << 55)) % (1 << 56)) - (1 << 55)


def sdiv(a: int, b: int) -> int:
    """Divide and truncate toward zero, as Solidity's signed ``/`` does (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q
