"""The local dataset: one SQLite file per pool (standard library, no server).

Tables: ``meta`` (the pool's ``PoolMeta``, the ``StartState``, bar metadata), ``ranges`` (block
ranges already fetched, per stream, so that an interrupted fetch resumes where it stopped),
``events`` (decoded logs; big integers as exact JSON text), ``positions`` (position keys seen in
Mint events before the start block), ``blocks`` (block timestamps) and ``bars`` (price bars,
imported from CSV or aggregated from events). Each fetched range is written in one transaction
together with its logs, so a range is recorded only when its logs are.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from lpbot.backtest.events import EventKind, PoolEvent, PoolMeta, StartState
from lpbot.errors import Refused

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ranges (
    stream TEXT NOT NULL, from_block INTEGER NOT NULL, to_block INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, kind INTEGER NOT NULL,
    tx_hash TEXT NOT NULL, args TEXT NOT NULL, PRIMARY KEY (block, log_index)
);
CREATE TABLE IF NOT EXISTS positions (
    owner TEXT NOT NULL, tick_lower INTEGER NOT NULL, tick_upper INTEGER NOT NULL,
    PRIMARY KEY (owner, tick_lower, tick_upper)
);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    ts INTEGER PRIMARY KEY, open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL,
    close REAL NOT NULL, liquidity REAL NOT NULL, fee0 REAL NOT NULL, fee1 REAL NOT NULL,
    volume0 REAL NOT NULL, volume1 REAL NOT NULL, tick INTEGER
);
"""

# ts, open, high, low, close, liquidity, fee0, fee1, volume0, volume1, and the close's tick
# (None when the source gives none)
BarRow = tuple[int, float, float, float, float, float, float, float, float, float, int | None]


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint inclusive ranges covering the same blocks (adjacent ones joined)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def missing_ranges(lo: int, hi: int, done: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi]`` not covered by ``done``."""
    gaps: list[tuple[int, int]] = []
    cursor = lo
    for a, b in merge_ranges(done):
        if b < cursor:
            continue
        if a > hi:
            break
        if a > cursor:
            gaps.append((cursor, a - 1))
        cursor = max(cursor, b + 1)
    if cursor <= hi:
        gaps.append((cursor, hi))
    return gaps


class EventStore:
    """A pool's dataset in one SQLite file; use as a context manager or call ``close``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path))
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(bars)")}
        if "tick" not in columns:  # bars written before the close's tick was kept
            self._db.execute("ALTER TABLE bars ADD COLUMN tick INTEGER")
            self._db.commit()
        version = self._get("schema_version")
        if version is None:
            self._set("schema_version", SCHEMA_VERSION)
            self._db.commit()
        elif version != SCHEMA_VERSION:
            raise Refused(
                f"{self.path}: dataset schema {version}, this lpbot reads {SCHEMA_VERSION}"
            )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(ranges)")}
        if "end_hash" not in columns:  # a dataset from before reorg checks: its ranges unhashed
            with self._db:
                self._db.execute("ALTER TABLE ranges ADD COLUMN end_hash TEXT")

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------------------------- meta

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self) -> PoolMeta | None:
        text = self._get("pool")
        return None if text is None else PoolMeta.from_json(text)

    def set_meta(self, meta: PoolMeta) -> None:
        """Record the pool; refused when the file already holds another pool."""
        existing = self.meta()
        if existing is not None and (existing.address.lower(), existing.chain_id) != (
            meta.address.lower(),
            meta.chain_id,
        ):
            raise Refused(
                f"{self.path} holds pool {existing.address} on chain {existing.chain_id}, "
                f"not {meta.address} on chain {meta.chain_id}"
            )
        with self._db:
            self._set("pool", meta.to_json())

    def start_state(self) -> StartState | None:
        text = self._get("start_state")
        return None if text is None else StartState.from_json(text)

    def set_start_state(self, state: StartState) -> None:
        with self._db:
            self._set("start_state", state.to_json())

    def get_json(self, key: str) -> Any:
        text = self._get(key)
        return None if text is None else json.loads(text)

    def set_json(self, key: str, value: Any) -> None:
        with self._db:
            self._set(key, json.dumps(value))

    # --------------------------------------------------------------------------------- ranges

    def fetched_ranges(self, stream: str) -> list[tuple[int, int]]:
        rows = self._db.execute(
            "SELECT from_block, to_block FROM ranges WHERE stream = ?", (stream,)
        ).fetchall()
        return merge_ranges((int(a), int(b)) for a, b in rows)

    def range_rows(self, stream: str) -> list[tuple[int, int, str | None]]:
        """The ranges recorded for ``stream`` as written (not merged), newest end first, each
        with the hash of its end block (None for ranges recorded before hashes were kept)."""
        rows = self._db.execute(
            "SELECT from_block, to_block, end_hash FROM ranges WHERE stream = ? "
            "ORDER BY to_block DESC, from_block DESC",
            (stream,),
        ).fetchall()
        return [(int(a), int(b), None if h is None else str(h)) for a, b, h in rows]

    def drop_range(self, stream: str, from_block: int, to_block: int) -> None:
        """Forget a recorded range (the chain no longer holds it): its rows, and for the events
        stream its events and block timestamps, so that it is fetched again."""
        with self._db:
            self._db.execute(
                "DELETE FROM ranges WHERE stream = ? AND from_block >= ? AND to_block <= ?",
                (stream, from_block, to_block),
            )
            if stream == "events":
                self._db.execute(
                    "DELETE FROM events WHERE block BETWEEN ? AND ?", (from_block, to_block)
                )
                self._db.execute(
                    "DELETE FROM blocks WHERE number BETWEEN ? AND ?", (from_block, to_block)
                )

    def add_range(
        self,
        stream: str,
        from_block: int,
        to_block: int,
        events: Iterable[PoolEvent] = (),
        positions: Iterable[tuple[str, int, int]] = (),
        end_hash: str | None = None,
        removed: Iterable[tuple[int, int]] = (),
    ) -> None:
        """Record a fetched range with its events (or position keys) and its end block's hash,
        in one transaction; ``removed`` (block, log index) are logs the node marked
        ``removed: true``, deleted if an earlier fetch stored them."""
        with self._db:
            self._db.executemany(
                "DELETE FROM events WHERE block = ? AND log_index = ?", list(removed)
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO events (block, log_index, kind, tx_hash, args) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (e.block_number, e.log_index, int(e.kind), e.tx_hash, json.dumps(e.args))
                    for e in events
                ),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO positions (owner, tick_lower, tick_upper) VALUES (?, ?, ?)",
                positions,
            )
            self._db.execute(
                "INSERT INTO ranges (stream, from_block, to_block, end_hash) VALUES (?, ?, ?, ?)",
                (stream, from_block, to_block, end_hash),
            )

    # --------------------------------------------------------------------------------- events

    def events(
        self, from_block: int | None = None, to_block: int | None = None
    ) -> Iterator[PoolEvent]:
        """Events in chain order, optionally within ``[from_block, to_block]``."""
        lo = -1 if from_block is None else from_block
        hi = 2**62 if to_block is None else to_block
        cursor = self._db.execute(
            "SELECT block, log_index, kind, tx_hash, args FROM events "
            "WHERE block BETWEEN ? AND ? ORDER BY block, log_index",
            (lo, hi),
        )
        loads = json.loads
        kinds = list(EventKind)
        for block, log_index, kind, tx_hash, args in cursor:
            yield PoolEvent(block, log_index, kinds[kind], tuple(loads(args)), tx_hash)

    def event_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def event_blocks(self) -> list[int]:
        rows = self._db.execute("SELECT DISTINCT block FROM events ORDER BY block").fetchall()
        return [int(r[0]) for r in rows]

    def prior_positions(self) -> list[tuple[str, int, int]]:
        rows = self._db.execute(
            "SELECT owner, tick_lower, tick_upper FROM positions ORDER BY owner, tick_lower"
        ).fetchall()
        return [(str(o), int(a), int(b)) for o, a, b in rows]

    # --------------------------------------------------------------------------------- blocks

    def timestamps(self) -> dict[int, int]:
        return {int(n): int(t) for n, t in self._db.execute("SELECT number, timestamp FROM blocks")}

    def add_timestamps(self, timestamps: Mapping[int, int]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO blocks (number, timestamp) VALUES (?, ?)",
                timestamps.items(),
            )

    # ----------------------------------------------------------------------------------- bars

    def set_bars(self, rows: Iterable[BarRow], info: Mapping[str, Any]) -> None:
        """Replace the bars and their description (interval, source, decimals, fee)."""
        with self._db:
            self._db.execute("DELETE FROM bars")
            self._db.executemany("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._set("bars", json.dumps(dict(info)))

    def bars(self) -> tuple[list[BarRow], dict[str, Any] | None]:
        info = self._get("bars")
        rows = self._db.execute(
            "SELECT ts, open, high, low, close, liquidity, fee0, fee1, volume0, volume1, tick "
            "FROM bars ORDER BY ts"
        ).fetchall()
        return rows, (None if info is None else json.loads(info))


DATA_SERIES = ("gas_price_series", "native_usd_series")


def data_series(path: str | Path) -> dict[str, tuple[tuple[float, float], ...]]:
    """Gas price and native-token price series kept with a dataset (empty when none or no
    file)."""
    if not Path(path).exists():
        return {}
    with EventStore(path) as store:
        out = {}
        for key in DATA_SERIES:
            rows = store.get_json(key)
            if rows:
                out[key] = tuple((float(t), float(v)) for t, v in rows)
        return out


def save_data_series(path: str | Path, key: str, series: Iterable[tuple[float, float]]) -> None:
    if key not in DATA_SERIES:
        raise ValueError(f"unknown series {key!r}")
    with EventStore(path) as store:
        store.set_json(key, [list(p) for p in series])
