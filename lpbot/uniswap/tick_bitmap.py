"""Mirror of v3-core ``TickBitmap.sol``: one bit per initialized (compressed) tick, 256 per word."""

from __future__ import annotations

from lpbot.uniswap.constants import MAX_UINT256
from lpbot.uniswap.errors import UniswapRevert


def position(tick: int) -> tuple[int, int]:
    """TickBitmap.position (v3-core 1.0.0): (word index, bit index) of a compressed tick.

    ``tick >> 8`` is an arithmetic shift and ``uint8(tick % 256)`` wraps, which is exactly what
    Python's ``>>`` and ``%`` give for negative ticks.
    """
    return tick >> 8, tick & 0xFF


def flip_tick(bitmap: dict[int, int], tick: int, tick_spacing: int) -> None:
    """TickBitmap.flipTick (v3-core 1.0.0); reverts (no reason) if ``tick`` is not spaced."""
    if tick % tick_spacing != 0:
        raise UniswapRevert("", f"tick {tick} is not a multiple of the spacing {tick_spacing}")
    word_pos, bit_pos = position(tick // tick_spacing)
    word = bitmap.get(word_pos, 0) ^ (1 << bit_pos)
    if word:
        bitmap[word_pos] = word
    else:
        bitmap.pop(word_pos, None)


def next_initialized_tick_within_one_word(
    bitmap: dict[int, int], tick: int, tick_spacing: int, lte: bool
) -> tuple[int, bool]:
    """TickBitmap.nextInitializedTickWithinOneWord (v3-core 1.0.0).

    The next initialized tick at or left of ``tick`` (``lte``) or right of it, searching no further
    than the current 256-bit word; returns that word's edge and False when none is set there.
    """
    compressed = tick // tick_spacing  # Solidity: truncate, then decrement for negative remainders

    if lte:
        word_pos, bit_pos = position(compressed)
        # all the 1s at or to the right of the current bit_pos
        masked = bitmap.get(word_pos, 0) & ((1 << (bit_pos + 1)) - 1)
        if masked:
            return (compressed - (bit_pos - (masked.bit_length() - 1))) * tick_spacing, True
        return (compressed - bit_pos) * tick_spacing, False

    word_pos, bit_pos = position(compressed + 1)
    # all the 1s at or to the left of bit_pos
    masked = bitmap.get(word_pos, 0) & (MAX_UINT256 ^ ((1 << bit_pos) - 1))
    if masked:
        lsb = (masked & -masked).bit_length() - 1
        return (compressed + 1 + (lsb - bit_pos)) * tick_spacing, True
    return (compressed + 1 + (255 - bit_pos)) * tick_spacing, False
