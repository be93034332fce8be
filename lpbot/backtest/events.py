"""A pool's history as data: its identity, its state at the start block and its decoded events.

Everything is exact: token amounts and liquidity in raw units, prices as ``sqrt_price_x96``, fee
growth as Q128.128, as the contract stores and logs them. JSON forms keep integers exact (Python's
``json`` writes and reads arbitrary-size ints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from lpbot.uniswap.oracle import Observation
from lpbot.uniswap.pool import Pool, PositionKey, ProtocolFees, Slot0
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.tick import TickInfo


class EventKind(IntEnum):
    """A UniswapV3Pool event, with the order of its fields in ``PoolEvent.args``.

    - INITIALIZE: (sqrt_price_x96, tick)
    - MINT: (owner, tick_lower, tick_upper, amount, amount0, amount1)
    - BURN: (owner, tick_lower, tick_upper, amount, amount0, amount1)
    - COLLECT: (owner, tick_lower, tick_upper, amount0, amount1)
    - SWAP: (amount0, amount1, sqrt_price_x96, liquidity, tick); amounts are the pool's deltas
    - FLASH: (amount0, amount1, paid0, paid1)
    - SET_FEE_PROTOCOL: (old0, old1, new0, new1)
    - COLLECT_PROTOCOL: (amount0, amount1)
    - INCREASE_CARDINALITY: (old, new)
    """

    INITIALIZE = 0
    MINT = 1
    BURN = 2
    COLLECT = 3
    SWAP = 4
    FLASH = 5
    SET_FEE_PROTOCOL = 6
    COLLECT_PROTOCOL = 7
    INCREASE_CARDINALITY = 8


@dataclass(frozen=True, slots=True)
class PoolEvent:
    """One decoded pool log, ordered by ``(block_number, log_index)``."""

    block_number: int
    log_index: int
    kind: EventKind
    args: tuple[Any, ...]
    tx_hash: str = ""

    @property
    def order(self) -> tuple[int, int]:
        return self.block_number, self.log_index


@dataclass(frozen=True, slots=True)
class PoolMeta:
    """What does not change: the pool, its tokens, fee tier and where its history starts."""

    chain_id: int
    address: str
    token0: str
    token1: str
    decimals0: int
    decimals1: int
    fee: int
    tick_spacing: int
    creation_block: int
    symbol0: str = ""
    symbol1: str = ""

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__slots__})

    @classmethod
    def from_json(cls, text: str) -> PoolMeta:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class StartState:
    """The pool at the end of ``block`` (the block before the first replayed one).

    ``slot0`` is None when the pool did not exist or was not initialized then: replay starts from
    its ``Initialize`` event. ``observations`` holds the latest observation (what swaps and
    liquidity changes read); ``positions`` every position that existed, keyed like
    ``Pool.positions``.
    """

    block: int
    timestamp: int
    fee: int
    tick_spacing: int
    slot0: Slot0 | None
    liquidity: int = 0
    fee_growth_global0_x128: int = 0
    fee_growth_global1_x128: int = 0
    protocol_fees: tuple[int, int] = (0, 0)
    observations: dict[int, Observation] = field(default_factory=dict)
    ticks: dict[int, TickInfo] = field(default_factory=dict)
    positions: dict[PositionKey, PositionInfo] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.slot0 is None

    def to_pool(self) -> Pool | None:
        """A ``Pool`` in this state (None when empty)."""
        if self.slot0 is None:
            return None
        return Pool.from_state(
            fee=self.fee,
            tick_spacing=self.tick_spacing,
            slot0=self.slot0,
            liquidity=self.liquidity,
            fee_growth_global0_x128=self.fee_growth_global0_x128,
            fee_growth_global1_x128=self.fee_growth_global1_x128,
            ticks=self.ticks,
            block_timestamp=self.timestamp,
            observations=self.observations,
            positions=self.positions,
            protocol_fees=ProtocolFees(*self.protocol_fees),
        )

    def to_json(self) -> str:
        s = self.slot0
        return json.dumps(
            {
                "block": self.block,
                "timestamp": self.timestamp,
                "fee": self.fee,
                "tick_spacing": self.tick_spacing,
                "slot0": None
                if s is None
                else [
                    s.sqrt_price_x96,
                    s.tick,
                    s.observation_index,
                    s.observation_cardinality,
                    s.observation_cardinality_next,
                    s.fee_protocol,
                    s.unlocked,
                ],
                "liquidity": self.liquidity,
                "fee_growth_global0_x128": self.fee_growth_global0_x128,
                "fee_growth_global1_x128": self.fee_growth_global1_x128,
                "protocol_fees": list(self.protocol_fees),
                "observations": [[i, *o] for i, o in sorted(self.observations.items())],
                "ticks": [
                    [
                        t,
                        i.liquidity_gross,
                        i.liquidity_net,
                        i.fee_growth_outside0_x128,
                        i.fee_growth_outside1_x128,
                        i.tick_cumulative_outside,
                        i.seconds_per_liquidity_outside_x128,
                        i.seconds_outside,
                        i.initialized,
                    ]
                    for t, i in sorted(self.ticks.items())
                ],
                "positions": [
                    [
                        owner,
                        lower,
                        upper,
                        p.liquidity,
                        p.fee_growth_inside0_last_x128,
                        p.fee_growth_inside1_last_x128,
                        p.tokens_owed0,
                        p.tokens_owed1,
                    ]
                    for (owner, lower, upper), p in sorted(self.positions.items())
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> StartState:
        d = json.loads(text)
        s = d["slot0"]
        return cls(
            block=d["block"],
            timestamp=d["timestamp"],
            fee=d["fee"],
            tick_spacing=d["tick_spacing"],
            slot0=None if s is None else Slot0(*s),
            liquidity=d["liquidity"],
            fee_growth_global0_x128=d["fee_growth_global0_x128"],
            fee_growth_global1_x128=d["fee_growth_global1_x128"],
            protocol_fees=(d["protocol_fees"][0], d["protocol_fees"][1]),
            observations={row[0]: Observation(*row[1:]) for row in d["observations"]},
            ticks={row[0]: TickInfo(*row[1:]) for row in d["ticks"]},
            positions={(r[0], r[1], r[2]): PositionInfo(*r[3:]) for r in d["positions"]},
        )
