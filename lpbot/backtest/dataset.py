"""A fetched dataset in memory: the pool, its start state, its events in order, block times."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lpbot.backtest.events import PoolEvent, PoolMeta, StartState
from lpbot.backtest.store import EventStore
from lpbot.errors import NeedsAttention


@dataclass(frozen=True)
class Dataset:
    """Everything an exact replay needs; ``events`` are those after ``start.block``."""

    meta: PoolMeta
    start: StartState
    events: tuple[PoolEvent, ...]
    timestamps: dict[int, int]
    to_block: int

    @property
    def from_block(self) -> int:
        return self.start.block + 1

    def timestamp(self, event: PoolEvent) -> int:
        return self.timestamps[event.block_number]

    @property
    def first_timestamp(self) -> int:
        if self.events:
            return self.timestamps[self.events[0].block_number]
        return self.start.timestamp

    @property
    def last_timestamp(self) -> int:
        if self.events:
            return self.timestamps[self.events[-1].block_number]
        return self.start.timestamp


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset written by ``fetch_pool_events``; refused when incomplete."""
    if not Path(path).is_file():
        raise NeedsAttention(f"{path}: no such dataset (lpbot data fetch writes one)")
    with EventStore(path) as store:
        meta = store.meta()
        start = store.start_state()
        span = store.get_json("range")
        if meta is None or start is None or span is None:
            raise NeedsAttention(f"{path} holds no fetched pool history: run `lpbot data fetch`")
        events = tuple(store.events(start.block + 1, int(span["to_block"])))
        timestamps = store.timestamps()
    missing = {e.block_number for e in events} - timestamps.keys()
    if missing:
        raise NeedsAttention(
            f"{path}: {len(missing)} block timestamps missing (e.g. block {min(missing)}); "
            "run the fetch again to complete it"
        )
    return Dataset(meta, start, events, timestamps, int(span["to_block"]))
