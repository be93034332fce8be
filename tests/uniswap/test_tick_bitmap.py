"""TickBitmap against Uniswap/v3-core test/TickBitmap.spec.ts (v1.0.0)."""

from __future__ import annotations

import pytest

from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.tick_bitmap import flip_tick, next_initialized_tick_within_one_word, position


def is_initialized(bitmap: dict[int, int], tick: int, spacing: int = 1) -> bool:
    next_tick, initialized = next_initialized_tick_within_one_word(bitmap, tick, spacing, True)
    return next_tick == tick and initialized


def init_ticks(ticks: list[int]) -> dict[int, int]:
    bitmap: dict[int, int] = {}
    for tick in ticks:
        flip_tick(bitmap, tick, 1)
    return bitmap


def test_is_initialized_and_flip():
    bitmap: dict[int, int] = {}
    assert not is_initialized(bitmap, 1)  # 'is false at first'
    flip_tick(bitmap, 1, 1)
    assert is_initialized(bitmap, 1)  # 'is flipped by #flipTick'
    flip_tick(bitmap, 1, 1)
    assert not is_initialized(bitmap, 1)  # 'is flipped back by #flipTick'
    assert bitmap == {}  # an emptied word is deleted
    flip_tick(bitmap, 2, 1)
    assert not is_initialized(bitmap, 1)  # 'is not changed by another flip to a different tick'
    bitmap = {}
    flip_tick(bitmap, 1 + 256, 1)
    assert is_initialized(bitmap, 257)  # '... on another word'
    assert not is_initialized(bitmap, 1)


def test_flip_tick_flips_only_the_specified_tick():
    bitmap = init_ticks([-230])
    assert is_initialized(bitmap, -230)
    for other in (-231, -229, -230 + 256, -230 - 256):
        assert not is_initialized(bitmap, other)
    flip_tick(bitmap, -230, 1)
    for tick in (-230, -231, -229, -230 + 256, -230 - 256):
        assert not is_initialized(bitmap, tick)


def test_flip_tick_reverts_only_itself():
    bitmap = init_ticks([-230, -259, -229, 500, -259, -229, -259])
    assert is_initialized(bitmap, -259)
    assert not is_initialized(bitmap, -229)


def test_flip_tick_requires_spacing():
    with pytest.raises(UniswapRevert):
        flip_tick({}, 61, 60)
    with pytest.raises(UniswapRevert):
        flip_tick({}, -6, 12)


def test_position_of_negative_ticks():
    assert position(-1) == (-1, 255)
    assert position(-256) == (-1, 0)
    assert position(-257) == (-2, 255)
    assert position(256) == (1, 0)


SETUP = [-200, -55, -4, 70, 78, 84, 139, 240, 535]

LTE_FALSE = [
    (78, 84, True),  # returns tick to right if at initialized tick
    (-55, -4, True),
    (77, 78, True),  # returns the tick directly to the right
    (-56, -55, True),
    (255, 511, False),  # returns the next words initialized tick if on the right boundary
    (-257, -200, True),
    (508, 511, False),  # does not exceed boundary
    (255, 511, False),  # skips entire word
    (383, 511, False),  # skips half word
]

LTE_TRUE = [
    (78, 78, True),  # returns same tick if initialized
    (79, 78, True),  # returns tick directly to the left of input tick if not initialized
    (258, 256, False),  # will not exceed the word boundary
    (256, 256, False),  # at the word boundary
    (72, 70, True),  # word boundary less 1 (next initialized tick in next word)
    (-257, -512, False),  # word boundary
    (1023, 768, False),  # entire empty word
    (900, 768, False),  # halfway through empty word
]


@pytest.mark.parametrize(("tick", "expected", "initialized"), LTE_FALSE)
def test_next_initialized_tick_within_one_word_lte_false(tick, expected, initialized):
    bitmap = init_ticks(SETUP)
    assert next_initialized_tick_within_one_word(bitmap, tick, 1, False) == (expected, initialized)


@pytest.mark.parametrize(("tick", "expected", "initialized"), LTE_TRUE)
def test_next_initialized_tick_within_one_word_lte_true(tick, expected, initialized):
    bitmap = init_ticks(SETUP)
    assert next_initialized_tick_within_one_word(bitmap, tick, 1, True) == (expected, initialized)


def test_next_initialized_tick_from_the_next_word():
    # 'returns the next initialized tick from the next word'
    bitmap = init_ticks([*SETUP, 340])
    assert next_initialized_tick_within_one_word(bitmap, 328, 1, False) == (340, True)


def test_boundary_is_initialized():
    # 'boundary is initialized'
    bitmap = init_ticks([*SETUP, 329])
    assert next_initialized_tick_within_one_word(bitmap, 456, 1, True) == (329, True)


def test_spacing_compresses_and_floors_negative_ticks():
    bitmap: dict[int, int] = {}
    flip_tick(bitmap, -120, 60)
    # -61 compresses to -2 (floor), so -120 is found at or below it
    assert next_initialized_tick_within_one_word(bitmap, -61, 60, True) == (-120, True)
    assert next_initialized_tick_within_one_word(bitmap, -121, 60, True) == (-256 * 60, False)
    assert next_initialized_tick_within_one_word(bitmap, -180, 60, False) == (-120, True)
    # -120 compresses to -2; the search starts at -1, the last bit of word -1
    assert next_initialized_tick_within_one_word(bitmap, -120, 60, False) == (-60, False)
