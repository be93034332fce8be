"""Mirror of v3-core ``Oracle.sol``: the ring buffer of price and liquidity observations.

Observations are kept in a dict indexed like the contract's ``Observation[65535]`` array, an
absent index reading as the all-zero struct. Timestamps are uint32 and compare with wrap-around
(``lte``); cumulative values wrap as int56 / uint160.
"""

from __future__ import annotations

from typing import NamedTuple

from lpbot.uniswap.constants import MOD_32, MOD_160, sdiv, wrap_int56
from lpbot.uniswap.errors import UniswapRevert


class Observation(NamedTuple):
    """Oracle.Observation."""

    block_timestamp: int = 0
    tick_cumulative: int = 0
    seconds_per_liquidity_cumulative_x128: int = 0
    initialized: bool = False


_EMPTY = Observation()
Observations = dict[int, Observation]


def transform(last: Observation, block_timestamp: int, tick: int, liquidity: int) -> Observation:
    """Oracle.transform (v3-core 1.0.0): advance an observation to ``block_timestamp``."""
    delta = (block_timestamp - last.block_timestamp) % MOD_32
    return Observation(
        block_timestamp,
        wrap_int56(last.tick_cumulative + tick * delta),
        (
            last.seconds_per_liquidity_cumulative_x128
            + (delta << 128) // (liquidity if liquidity > 0 else 1)
        )
        % MOD_160,
        True,
    )


def initialize(observations: Observations, time: int) -> tuple[int, int]:
    """Oracle.initialize (v3-core 1.0.0): write the first slot; return (cardinality, next)."""
    observations[0] = Observation(time, 0, 0, True)
    return 1, 1


def write(
    observations: Observations,
    index: int,
    block_timestamp: int,
    tick: int,
    liquidity: int,
    cardinality: int,
    cardinality_next: int,
) -> tuple[int, int]:
    """Oracle.write (v3-core 1.0.0): one observation a block; (index, cardinality)."""
    last = observations.get(index, _EMPTY)
    if last.block_timestamp == block_timestamp:
        return index, cardinality
    if cardinality_next > cardinality and index == cardinality - 1:
        cardinality_updated = cardinality_next
    else:
        cardinality_updated = cardinality
    index_updated = (index + 1) % cardinality_updated
    observations[index_updated] = transform(last, block_timestamp, tick, liquidity)
    return index_updated, cardinality_updated


def grow(observations: Observations, current: int, next_: int) -> int:
    """Oracle.grow (v3-core 1.0.0): pre-warm slots up to ``next_``; ``'I'`` if empty."""
    if current <= 0:
        raise UniswapRevert("I", "oracle not initialized")
    if next_ <= current:
        return current
    for i in range(current, next_):
        # the contract stores blockTimestamp = 1 to pay the SSTORE up front; nothing reads it
        observations[i] = observations.get(i, _EMPTY)._replace(block_timestamp=1)
    return next_


def lte(time: int, a: int, b: int) -> bool:
    """Oracle.lte (v3-core 1.0.0): ``a <= b`` for uint32 timestamps within 2**32 s of ``time``."""
    if a <= time and b <= time:
        return a <= b
    a_adjusted = a if a > time else a + MOD_32
    b_adjusted = b if b > time else b + MOD_32
    return a_adjusted <= b_adjusted


def binary_search(
    observations: Observations, time: int, target: int, index: int, cardinality: int
) -> tuple[Observation, Observation]:
    """Oracle.binarySearch (v3-core 1.0.0): the observations at or around ``target``."""
    left = (index + 1) % cardinality  # oldest observation
    right = left + cardinality - 1  # newest observation
    while True:
        i = (left + right) // 2
        before_or_at = observations.get(i % cardinality, _EMPTY)
        if not before_or_at.initialized:
            left = i + 1
            continue
        at_or_after = observations.get((i + 1) % cardinality, _EMPTY)
        target_at_or_after = lte(time, before_or_at.block_timestamp, target)
        if target_at_or_after and lte(time, target, at_or_after.block_timestamp):
            return before_or_at, at_or_after
        if not target_at_or_after:
            right = i - 1
        else:
            left = i + 1


def get_surrounding_observations(
    observations: Observations,
    time: int,
    target: int,
    tick: int,
    index: int,
    liquidity: int,
    cardinality: int,
) -> tuple[Observation, Observation]:
    """Oracle.getSurroundingObservations (v3-core 1.0.0); reverts ``'OLD'`` before the oldest."""
    before_or_at = observations.get(index, _EMPTY)
    if lte(time, before_or_at.block_timestamp, target):
        if before_or_at.block_timestamp == target:
            return before_or_at, _EMPTY
        return before_or_at, transform(before_or_at, target, tick, liquidity)

    before_or_at = observations.get((index + 1) % cardinality, _EMPTY)
    if not before_or_at.initialized:
        before_or_at = observations.get(0, _EMPTY)
    if not lte(time, before_or_at.block_timestamp, target):
        raise UniswapRevert("OLD", f"target {target} is older than the oldest observation")
    return binary_search(observations, time, target, index, cardinality)


def observe_single(
    observations: Observations,
    time: int,
    seconds_ago: int,
    tick: int,
    index: int,
    liquidity: int,
    cardinality: int,
) -> tuple[int, int]:
    """Oracle.observeSingle (v3-core 1.0.0): (tickCumulative, secondsPerLiquidityCumulativeX128)."""
    if seconds_ago == 0:
        last = observations.get(index, _EMPTY)
        if last.block_timestamp != time:
            last = transform(last, time, tick, liquidity)
        return last.tick_cumulative, last.seconds_per_liquidity_cumulative_x128

    target = (time - seconds_ago) % MOD_32
    before_or_at, at_or_after = get_surrounding_observations(
        observations, time, target, tick, index, liquidity, cardinality
    )
    if target == before_or_at.block_timestamp:
        return before_or_at.tick_cumulative, before_or_at.seconds_per_liquidity_cumulative_x128
    if target == at_or_after.block_timestamp:
        return at_or_after.tick_cumulative, at_or_after.seconds_per_liquidity_cumulative_x128
    observation_time_delta = (at_or_after.block_timestamp - before_or_at.block_timestamp) % MOD_32
    target_delta = (target - before_or_at.block_timestamp) % MOD_32
    tick_cumulative = wrap_int56(
        before_or_at.tick_cumulative
        + wrap_int56(
            sdiv(
                wrap_int56(at_or_after.tick_cumulative - before_or_at.tick_cumulative),
                observation_time_delta,
            )
            * target_delta
        )
    )
    spl_delta = (
        at_or_after.seconds_per_liquidity_cumulative_x128
        - before_or_at.seconds_per_liquidity_cumulative_x128
    ) % MOD_160
    seconds_per_liquidity = (
        before_or_at.seconds_per_liquidity_cumulative_x128
        + (spl_delta * target_delta) // observation_time_delta % MOD_160
    ) % MOD_160
    return tick_cumulative, seconds_per_liquidity


def observe(
    observations: Observations,
    time: int,
    seconds_agos: list[int],
    tick: int,
    index: int,
    liquidity: int,
    cardinality: int,
) -> tuple[list[int], list[int]]:
    """Oracle.observe (v3-core 1.0.0); reverts ``'I'`` when the oracle has no observations."""
    if cardinality <= 0:
        raise UniswapRevert("I", "oracle not initialized")
    tick_cumulatives: list[int] = []
    seconds_per_liquidity: list[int] = []
    for seconds_ago in seconds_agos:
        tc, spl = observe_single(
            observations, time, seconds_ago, tick, index, liquidity, cardinality
        )
        tick_cumulatives.append(tc)
        seconds_per_liquidity.append(spl)
    return tick_cumulatives, seconds_per_liquidity
