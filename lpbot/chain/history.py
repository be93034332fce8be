"""Price history from the pool's own oracle: the price in force at each sample time.

``observe(secondsAgos)`` returns tick cumulatives. A pool writes one observation a block, at its
first swap, with the tick in force since the previous one, and ``observe`` interpolates between
observations, so the cumulative is exactly piecewise linear with slope the tick in force each
second. The tick at a sample time ``T`` is therefore the difference of the cumulatives one second
apart, ``cum(T + 1) - cum(T)``: the shortest span the oracle allows, the tick after every block up
to ``T`` (a point price). The newest sample, at the block's own time, is ``slot0``'s tick. No
external data source is needed, and the history cannot be faked by one block's swap.

Point prices are the default because returns between them carry the price's full variance. The
mean tick over each step (``OracleLibrary.consult``, ``sampling="mean"``) is the interval's
geometric-mean price; returns between adjacent means carry two thirds of it. Either way the
``PriceHistory`` says which it holds (``averaging_seconds``), and ``analytics.volatility`` and
``analytics.var`` correct means for their averaging.

The window is what the oracle covers: from its oldest observation (``slot0``'s index and
cardinality) to the block, whole steps only. Prices are raw token1 per token0 (float analytics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract.contract import Contract, ContractFunction
from web3.exceptions import Web3Exception
from web3.types import BlockIdentifier

from lpbot.analytics.types import PriceHistory
from lpbot.chain import artifacts
from lpbot.errors import RetryLater

Sampling = Literal["point", "mean"]
OBSERVE_BATCH = 256  # secondsAgos per observe call: each one is a binary search on-chain
TICK_BASE = 1.0001


class OracleState(NamedTuple):
    """What ``slot0`` says about the oracle, at one block."""

    timestamp: int  # the block's time
    tick: int
    observation_index: int
    observation_cardinality: int


class OracleReader(Protocol):
    """A pool's oracle at one block: ``slot0``, ``observations(i)``, ``observe``."""

    def fetch_state(self) -> OracleState: ...

    def fetch_observation_time(self, index: int) -> int | None:
        """``observations(index).blockTimestamp``, or None when the slot is not initialized."""
        ...

    def fetch_tick_cumulatives(self, seconds_agos: Sequence[int]) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Web3OracleReader:
    """``OracleReader`` over a deployed UniswapV3Pool, every call at the same block number."""

    pool: Contract
    block: int

    @classmethod
    def at(cls, w3: Web3, pool: str, block: BlockIdentifier = "latest") -> Web3OracleReader:
        contract = w3.eth.contract(
            address=to_checksum_address(pool), abi=artifacts.abi("UniswapV3Pool")
        )
        try:
            number = int(w3.eth.get_block(block)["number"])
        except (Web3Exception, ValueError, OSError) as exc:
            raise RetryLater(f"cannot read block {block!r}: {exc}") from exc
        return cls(contract, number)

    def _call(self, what: str, fn: ContractFunction) -> Any:
        try:
            return fn.call(block_identifier=self.block)
        except (Web3Exception, ValueError, OSError) as exc:
            raise RetryLater(f"pool {self.pool.address} {what} failed: {exc}") from exc

    def fetch_state(self) -> OracleState:
        slot0 = self._call("slot0", self.pool.functions.slot0())
        try:
            timestamp = int(self.pool.w3.eth.get_block(self.block)["timestamp"])
        except (Web3Exception, ValueError, OSError) as exc:
            raise RetryLater(f"cannot read block {self.block}: {exc}") from exc
        return OracleState(timestamp, int(slot0[1]), int(slot0[2]), int(slot0[3]))

    def fetch_observation_time(self, index: int) -> int | None:
        obs = self._call("observations", self.pool.functions.observations(index))
        return int(obs[0]) if obs[3] else None

    def fetch_tick_cumulatives(self, seconds_agos: Sequence[int]) -> list[int]:
        out: list[int] = []
        for i in range(0, len(seconds_agos), OBSERVE_BATCH):
            batch = list(seconds_agos[i : i + OBSERVE_BATCH])
            result = self._call("observe", self.pool.functions.observe(batch))
            out.extend(int(c) for c in result[0])
        return out


def oracle_coverage_seconds(oracle: OracleReader, state: OracleState) -> int:
    """Seconds from the oracle's oldest observation to the block (as
    ``Oracle.getSurroundingObservations`` finds it: at ``index + 1``, or at 0 before the ring
    has wrapped)."""
    if state.observation_cardinality <= 0:
        return 0
    oldest = oracle.fetch_observation_time(
        (state.observation_index + 1) % state.observation_cardinality
    )
    if oldest is None:
        oldest = oracle.fetch_observation_time(0)
    if oldest is None:
        return 0
    return max(state.timestamp - oldest, 0)


def read_oracle_history(
    oracle: OracleReader,
    *,
    window_seconds: int,
    step_seconds: int,
    sampling: Sampling = "point",
) -> PriceHistory:
    """Prices every ``step_seconds`` over the last ``window_seconds`` the oracle covers.

    ``sampling="point"``: the price in force at each sample time (``averaging_seconds = 0``);
    ``"mean"``: the geometric-mean price over the step ending at it (``averaging_seconds =
    step_seconds``). Raises ``RetryLater`` while the oracle covers fewer than two steps.
    """
    if step_seconds <= 0 or window_seconds < step_seconds:
        raise ValueError("need window >= step > 0")
    if sampling not in ("point", "mean"):
        raise ValueError(f"sampling must be 'point' or 'mean', got {sampling!r}")
    state = oracle.fetch_state()
    covered = oracle_coverage_seconds(oracle, state)
    window = min(window_seconds, covered) // step_seconds * step_seconds
    if window < 2 * step_seconds:
        raise RetryLater(
            f"the pool's oracle covers {covered} s, fewer than two {step_seconds} s steps yet"
        )
    now = state.timestamp
    agos = list(range(window, -1, -step_seconds))  # oldest first, ends with 0
    if sampling == "mean":
        cumulatives = oracle.fetch_tick_cumulatives(agos)
        ticks = [(cumulatives[i] - cumulatives[i - 1]) / step_seconds for i in range(1, len(agos))]
        times = [float(now - a) for a in agos[1:]]
        return PriceHistory(
            times, [TICK_BASE**t for t in ticks], averaging_seconds=float(step_seconds)
        )
    # the tick in force over [T, T + 1): cum at secondsAgo a - 1 minus cum at a
    pairs = [s for a in agos[:-1] for s in (a, a - 1)]
    cumulatives = oracle.fetch_tick_cumulatives(pairs)
    point_ticks = [cumulatives[2 * i + 1] - cumulatives[2 * i] for i in range(len(agos) - 1)]
    point_ticks.append(state.tick)
    times = [float(now - a) for a in agos]
    return PriceHistory(times, [TICK_BASE**t for t in point_ticks])


def fetch_oracle_history(
    w3: Web3,
    pool: str,
    *,
    window_seconds: int,
    step_seconds: int,
    block: BlockIdentifier = "latest",
    sampling: Sampling = "point",
) -> PriceHistory:
    """``read_oracle_history`` of a deployed pool at ``block`` (every read at that block)."""
    return read_oracle_history(
        Web3OracleReader.at(w3, pool, block),
        window_seconds=window_seconds,
        step_seconds=step_seconds,
        sampling=sampling,
    )
