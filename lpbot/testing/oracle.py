"""A pool oracle driven along a given tick path, on the exact core's ``Oracle`` (v3-core 1.0.0).

``PathOracle`` implements ``chain.history.OracleReader`` the way a deployed pool answers it, so the
code that reads the devnet's oracle can be fed a path whose volatility is known: each second's
tick is written as the first swap of a block at that second would write it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lpbot.chain.history import OracleState
from lpbot.uniswap import oracle
from lpbot.uniswap.tick_math import MAX_TICK, MIN_TICK

LOG_TICK = math.log(1.0001)


def ticks_of_prices(prices: Sequence[float]) -> list[int]:
    """The pool's ``slot0.tick`` at each raw price: the tick at or below it."""
    return [max(MIN_TICK, min(MAX_TICK - 1, math.floor(math.log(p) / LOG_TICK))) for p in prices]


class PathOracle:
    """A pool whose tick is ``ticks[i]`` from ``start + i`` seconds, with one block a second.

    ``cardinality`` observations are kept (at most 65535, as in the contract): the oracle then
    covers the last ``cardinality - 1`` seconds of the path.
    """

    def __init__(
        self, ticks: Sequence[int], *, start: int = 1_700_000_000, cardinality: int = 65_535
    ) -> None:
        if not ticks:
            raise ValueError("need at least one tick")
        if not 1 <= cardinality <= 65_535:
            raise ValueError(f"cardinality must be in [1, 65535], got {cardinality}")
        self.observations: oracle.Observations = {}
        self.liquidity = 10**18
        card, card_next = oracle.initialize(self.observations, start)
        card_next = oracle.grow(self.observations, card, cardinality)
        self.index = 0
        self.tick = ticks[0]
        for i, tick in enumerate(ticks[1:], start=1):
            self.index, card = oracle.write(
                self.observations, self.index, start + i, self.tick, self.liquidity, card, card_next
            )
            self.tick = tick
        self.cardinality = card
        self.now = start + len(ticks) - 1

    def fetch_state(self) -> OracleState:
        return OracleState(self.now, self.tick, self.index, self.cardinality)

    def fetch_observation_time(self, index: int) -> int | None:
        obs = self.observations.get(index)
        return obs.block_timestamp if obs is not None and obs.initialized else None

    def fetch_tick_cumulatives(self, seconds_agos: Sequence[int]) -> list[int]:
        cumulatives, _ = oracle.observe(
            self.observations,
            self.now,
            list(seconds_agos),
            self.tick,
            self.index,
            self.liquidity,
            self.cardinality,
        )
        return cumulatives
