"""Fetch a pool's history from an RPC node into a local dataset (``EventStore``).

``fetch_pool_events`` pulls every pool event in ``[from_block, to_block]`` with ``eth_getLogs``
and the pool's exact state at the end of block ``from_block - 1``:

- Logs: Swap, Mint, Burn, Collect and Flash, and the events that also change the state a replay
  must reproduce (Initialize, SetFeeProtocol, CollectProtocol,
  IncreaseObservationCardinalityNext). Ranges adapt: a range the node refuses as too large (too
  many results, response size, block range) is halved; after a success the next range doubles
  again, up to ``max_range``. Transient failures (timeouts, connection errors, HTTP 429/5xx, rate
  limits) are retried with exponential backoff; after ``retries`` the fetch stops with
  ``RetryLater``. Each range is written with its logs in one transaction, so an interrupted fetch
  resumes where it stopped and never fetches a recorded range twice.
- State: slot0, liquidity, fee growth globals, protocol fees, the latest oracle observation,
  every initialized tick (all ``tickBitmap`` words of the usable tick range, then ``ticks()`` for
  each set bit) and every position that exists: their keys come from the Mint events since the
  pool's creation, their state from ``positions(key)``. Calls go through Multicall3
  ``aggregate3`` in batches when a Multicall3 exists at that block (the canonical address, or
  ``multicall``), otherwise one ``eth_call`` each. When ``from_block`` is at or before the pool's
  creation block the state is empty and replay starts from the ``Initialize`` event.
- Block timestamps of every block with an event, and of the start block.

Reading state at a past block needs an archive node (or, on Anvil, a block mined in this run).
The creation block is found by bisecting ``eth_getCode`` over block numbers; where past state
cannot be read, from the factory's ``PoolCreated`` log instead.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.backtest import abi
from lpbot.backtest.events import EventKind, PoolEvent, PoolMeta, StartState
from lpbot.backtest.store import EventStore, missing_ranges
from lpbot.chain.rpc import round_trips
from lpbot.errors import NeedsAttention, Refused, RetryLater
from lpbot.uniswap.oracle import Observation
from lpbot.uniswap.pool import PositionKey, Slot0
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.tick import TickInfo
from lpbot.uniswap.tick_math import MAX_TICK, MIN_TICK

log = logging.getLogger(__name__)

CANONICAL_MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
EVENTS_STREAM = "events"
POSITIONS_STREAM = "positions"


@dataclass(frozen=True, slots=True)
class RawLog:
    block_number: int
    log_index: int
    tx_hash: str
    topics: tuple[bytes, ...]
    data: bytes


class ChainSource(Protocol):
    """The few JSON-RPC reads a fetch needs; ``Web3Source`` is the adapter over web3.py."""

    def chain_id(self) -> int: ...

    def block_number(self) -> int: ...

    def get_logs(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> list[RawLog]: ...

    def call(self, to: str, data: bytes, block: int) -> bytes: ...

    def get_code(self, address: str, block: int) -> bytes: ...

    def block_timestamp(self, block: int) -> int: ...


class Web3Source:
    """``ChainSource`` over a ``Web3`` client (errors pass through untranslated: the fetch
    classifies them)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def get_logs(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> list[RawLog]:
        logs = self.w3.eth.get_logs(
            {
                "address": to_checksum_address(address),
                "topics": list(topics),
                "fromBlock": from_block,
                "toBlock": to_block,
            }
        )
        return [
            RawLog(
                int(entry["blockNumber"]),
                int(entry["logIndex"]),
                "0x" + bytes(entry["transactionHash"]).hex(),
                tuple(bytes(t) for t in entry["topics"]),
                bytes(entry["data"]),
            )
            for entry in logs
        ]

    def call(self, to: str, data: bytes, block: int) -> bytes:
        return bytes(
            self.w3.eth.call({"to": to_checksum_address(to), "data": data}, block_identifier=block)
        )

    def get_code(self, address: str, block: int) -> bytes:
        return bytes(self.w3.eth.get_code(to_checksum_address(address), block_identifier=block))

    def block_timestamp(self, block: int) -> int:
        return int(self.w3.eth.get_block(block)["timestamp"])


# ------------------------------------------------------------------------- error handling

_TOO_MANY = (
    "query returned more than",
    "too many",
    "response size",
    "block range",
    "range is too",
    "range too",
    "exceed maximum",
    "max results",
    "result set",
    "limited to",
    "size exceeded",
)
_TRANSIENT = (
    "rate limit",
    "timeout",
    "timed out",
    "temporarily",
    "try again",
    "busy",
    "header not found",
    "429",
    "502",
    "503",
    "504",
)


def classify(exc: BaseException) -> str:
    """``'too_many'`` (halve the range), ``'transient'`` (retry later) or ``'fatal'``."""
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return "transient"
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return "transient" if status == 429 or status >= 500 else "fatal"
    text = str(exc).lower()
    if "rate" in text and "limit" in text:
        return "transient"
    if any(p in text for p in _TOO_MANY) or "-32005" in text:
        return "too_many"
    if any(p in text for p in _TRANSIENT):
        return "transient"
    return "fatal"


@dataclass
class _Retry:
    retries: int
    backoff_seconds: float
    sleep: Callable[[float], None]
    count: int = 0

    def run(self, what: str, fn: Callable[[], Any]) -> Any:
        """Call ``fn``; retry transient failures with exponential backoff; re-raise the rest."""
        attempt = 0
        while True:
            try:
                return fn()
            except (ValueError, OSError, requests.RequestException) as exc:
                kind = classify(exc)
                if kind != "transient":
                    raise
                attempt += 1
                self.count += 1
                if attempt > self.retries:
                    log.error("%s: giving up after %d retries", what, self.retries, exc_info=True)
                    raise RetryLater(f"{what} failed {attempt} times: {exc}") from exc
                delay = min(self.backoff_seconds * 2 ** (attempt - 1), 30.0)
                log.warning("%s failed (%s); retry %d in %.2f s", what, exc, attempt, delay)
                self.sleep(delay)


@dataclass(frozen=True)
class FetchReport:
    """What a fetch did: new events and ranges, the adaptations, RPC round trips and time."""

    path: str
    pool: str
    from_block: int
    to_block: int
    creation_block: int
    start_state_block: int
    start_state_empty: bool
    events_new: int
    events_total: int
    log_requests: int
    halvings: int
    retries: int
    round_trips: int
    seconds: float


class _LogFetcher:
    """Adaptive ``eth_getLogs`` over a block range, recording each range in the store."""

    def __init__(self, src: ChainSource, retry: _Retry, max_range: int) -> None:
        self.src = src
        self.retry = retry
        self.max_range = max(1, max_range)
        self.chunk = self.max_range
        self.requests = 0
        self.halvings = 0

    def fetch(
        self,
        address: str,
        topics: Sequence[Any],
        lo: int,
        hi: int,
        on_range: Callable[[int, int, list[RawLog]], None],
    ) -> None:
        start = lo
        while start <= hi:
            end = min(hi, start + self.chunk - 1)
            try:
                logs = self.retry.run(
                    f"eth_getLogs {start}-{end}",
                    functools.partial(self.src.get_logs, address, topics, start, end),
                )
            except (ValueError, OSError, requests.RequestException) as exc:
                if classify(exc) != "too_many":
                    raise NeedsAttention(f"eth_getLogs {start}-{end} failed: {exc}") from exc
                if end == start:
                    raise NeedsAttention(
                        f"the node refuses the logs of the single block {start}: {exc}"
                    ) from exc
                self.chunk = max(1, (end - start + 1) // 2)
                self.halvings += 1
                log.info(
                    "eth_getLogs %d-%d too large; halving to %d blocks", start, end, self.chunk
                )
                continue
            self.requests += 1
            on_range(start, end, logs)
            start = end + 1
            self.chunk = min(self.max_range, self.chunk * 2)


class _Caller:
    """``eth_call``s at one block, through Multicall3 ``aggregate3`` in batches when it exists."""

    def __init__(
        self, src: ChainSource, retry: _Retry, block: int, multicall: str | None, batch: int = 150
    ) -> None:
        self.src = src
        self.retry = retry
        self.block = block
        self.multicall = multicall
        self.batch = batch

    def many(self, calls: Sequence[tuple[str, bytes]]) -> list[tuple[bool, bytes]]:
        out: list[tuple[bool, bytes]] = []
        if self.multicall is None:
            for target, data in calls:
                try:
                    out.append((True, self.one(target, data)))
                except ValueError as exc:  # a revert (web3's ContractLogicError is a ValueError)
                    if classify(exc) != "fatal":
                        raise
                    out.append((False, b""))
            return out
        for i in range(0, len(calls), self.batch):
            part = calls[i : i + self.batch]
            raw = self.retry.run(
                f"multicall of {len(part)} at block {self.block}",
                functools.partial(
                    self.src.call, self.multicall or "", abi.encode_aggregate3(part), self.block
                ),
            )
            out.extend(abi.decode_aggregate3(raw))
        return out

    def one(self, target: str, data: bytes) -> bytes:
        raw: bytes = self.retry.run(
            f"eth_call at block {self.block}", lambda: self.src.call(target, data, self.block)
        )
        return raw


def _ok(result: tuple[bool, bytes], what: str) -> bytes:
    ok, data = result
    if not ok:
        raise RetryLater(f"{what} reverted")
    return data


def _decoded(events: Sequence[RawLog]) -> list[PoolEvent]:
    out: list[PoolEvent] = []
    for raw in events:
        kind = abi.KIND_OF_TOPIC.get("0x" + raw.topics[0].hex()) if raw.topics else None
        if kind is None:
            continue
        args = abi.decode_event(kind, raw.topics, raw.data)
        out.append(PoolEvent(raw.block_number, raw.log_index, kind, args, raw.tx_hash))
    return out


# ------------------------------------------------------------------------------- the fetch


def _token_info(caller: _Caller, token: str) -> tuple[int, str]:
    decimals_raw, symbol_raw = caller.many(
        [(token, abi.call_data("decimals()")), (token, abi.call_data("symbol()"))]
    )
    (decimals,) = decode(["uint8"], _ok(decimals_raw, f"{token}.decimals()"))
    symbol = ""
    ok, data = symbol_raw
    if ok and data:
        try:
            (symbol,) = decode(["string"], data)
        except Exception:
            symbol = data[:32].rstrip(b"\0").decode(errors="replace")
    return int(decimals), str(symbol)


def fetch_meta(
    src: ChainSource, retry: _Retry, pool: str, block: int, multicall: str | None
) -> tuple[PoolMeta, str]:
    """The pool's tokens, decimals, fee and spacing (creation block left at -1) and factory."""
    caller = _Caller(src, retry, block, multicall)
    calls = [
        (pool, abi.call_data(sig))
        for sig in ("token0()", "token1()", "fee()", "tickSpacing()", "factory()")
    ]
    r = caller.many(calls)
    token0 = to_checksum_address(decode(["address"], _ok(r[0], "token0()"))[0])
    token1 = to_checksum_address(decode(["address"], _ok(r[1], "token1()"))[0])
    (fee,) = decode(["uint24"], _ok(r[2], "fee()"))
    (spacing,) = decode(["int24"], _ok(r[3], "tickSpacing()"))
    factory = to_checksum_address(decode(["address"], _ok(r[4], "factory()"))[0])
    d0, s0 = _token_info(caller, token0)
    d1, s1 = _token_info(caller, token1)
    meta = PoolMeta(
        chain_id=src.chain_id(),
        address=to_checksum_address(pool),
        token0=token0,
        token1=token1,
        decimals0=d0,
        decimals1=d1,
        fee=int(fee),
        tick_spacing=int(spacing),
        creation_block=-1,
        symbol0=s0,
        symbol1=s1,
    )
    return meta, factory


def find_creation_block(
    src: ChainSource,
    retry: _Retry,
    logs: _LogFetcher,
    meta: PoolMeta,
    factory: str,
    latest: int,
) -> int:
    """The block the pool's code appeared in: bisect ``eth_getCode``, else the factory's log."""
    try:
        lo, hi = 0, latest
        while lo < hi:
            mid = (lo + hi) // 2
            code = retry.run(
                f"eth_getCode at {mid}", functools.partial(src.get_code, meta.address, mid)
            )
            if code:
                hi = mid
            else:
                lo = mid + 1
        return lo
    except (ValueError, OSError, requests.RequestException) as exc:
        log.info("past state unreadable (%s); looking for the factory's PoolCreated log", exc)
    found: list[int] = []

    def on_range(_a: int, _b: int, raw: list[RawLog]) -> None:
        for entry in raw:
            (_spacing, pool_address) = decode(["int24", "address"], entry.data)
            if to_checksum_address(pool_address) == meta.address:
                found.append(entry.block_number)

    topics = [
        abi.POOL_CREATED_TOPIC,
        "0x" + bytes.fromhex(meta.token0[2:]).rjust(32, b"\0").hex(),
        "0x" + bytes.fromhex(meta.token1[2:]).rjust(32, b"\0").hex(),
        "0x" + meta.fee.to_bytes(32, "big").hex(),
    ]
    logs.fetch(factory, topics, 0, latest, on_range)
    if not found:
        raise NeedsAttention(f"no PoolCreated log for {meta.address} from factory {factory}")
    return min(found)


def fetch_start_state(
    caller: _Caller,
    meta: PoolMeta,
    block: int,
    timestamp: int,
    position_keys: Sequence[tuple[str, int, int]],
) -> StartState:
    """The pool's exact state at the end of ``block`` (module docstring)."""
    pool = meta.address
    names = ("slot0()", "liquidity()", "feeGrowthGlobal0X128()", "feeGrowthGlobal1X128()")
    r = caller.many([(pool, abi.call_data(n)) for n in (*names, "protocolFees()")])
    slot0_raw = decode(
        ["uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"], _ok(r[0], "slot0()")
    )
    if slot0_raw[0] == 0:  # created but not initialized: Initialize comes later
        return StartState(block, timestamp, meta.fee, meta.tick_spacing, None)
    slot0 = Slot0(*slot0_raw)
    (liquidity,) = decode(["uint128"], _ok(r[1], "liquidity()"))
    (g0,) = decode(["uint256"], _ok(r[2], "feeGrowthGlobal0X128()"))
    (g1,) = decode(["uint256"], _ok(r[3], "feeGrowthGlobal1X128()"))
    p0, p1 = decode(["uint128", "uint128"], _ok(r[4], "protocolFees()"))
    obs_raw = caller.one(
        pool, abi.call_data("observations(uint256)", ["uint256"], [slot0.observation_index])
    )
    observation = Observation(*decode(["uint32", "int56", "uint160", "bool"], obs_raw))

    spacing = meta.tick_spacing
    words = list(range((MIN_TICK // spacing) >> 8, ((MAX_TICK // spacing) >> 8) + 1))
    bitmap = caller.many(
        [(pool, abi.call_data("tickBitmap(int16)", ["int16"], [w])) for w in words]
    )
    initialized: list[int] = []
    for w, result in zip(words, bitmap, strict=True):
        (word,) = decode(["uint256"], _ok(result, f"tickBitmap({w})"))
        while word:
            bit = (word & -word).bit_length() - 1
            initialized.append(((w << 8) + bit) * spacing)
            word &= word - 1
    tick_types = ["uint128", "int128", "uint256", "uint256", "int56", "uint160", "uint32", "bool"]
    tick_results = caller.many(
        [(pool, abi.call_data("ticks(int24)", ["int24"], [t])) for t in initialized]
    )
    ticks = {
        t: TickInfo(*decode(tick_types, _ok(res, f"ticks({t})")))
        for t, res in zip(initialized, tick_results, strict=True)
    }
    pos_results = caller.many(
        [
            (pool, abi.call_data("positions(bytes32)", ["bytes32"], [abi.position_key(*key)]))
            for key in position_keys
        ]
    )
    positions: dict[PositionKey, PositionInfo] = {}
    for key, res in zip(position_keys, pos_results, strict=True):
        info = PositionInfo(
            *decode(["uint128", "uint256", "uint256", "uint128", "uint128"], _ok(res, "positions"))
        )
        if info.liquidity or info.tokens_owed0 or info.tokens_owed1:
            positions[key] = info
    log.info(
        "state of %s at block %d: %d ticks, %d positions", pool, block, len(ticks), len(positions)
    )
    return StartState(
        block=block,
        timestamp=timestamp,
        fee=meta.fee,
        tick_spacing=spacing,
        slot0=slot0,
        liquidity=liquidity,
        fee_growth_global0_x128=g0,
        fee_growth_global1_x128=g1,
        protocol_fees=(p0, p1),
        observations={slot0.observation_index: observation},
        ticks=ticks,
        positions=positions,
    )


def _multicall_at(src: ChainSource, retry: _Retry, multicall: str | None, block: int) -> str | None:
    candidate = multicall or CANONICAL_MULTICALL3
    try:
        code = retry.run("eth_getCode(Multicall3)", lambda: src.get_code(candidate, block))
    except (ValueError, OSError, requests.RequestException):
        code = b""
    if code:
        return candidate
    if multicall:
        raise NeedsAttention(f"no Multicall3 at {multicall} at block {block}")
    return None


def fetch_pool_events(
    w3: Web3 | ChainSource,
    pool: str,
    from_block: int,
    to_block: int,
    store: EventStore | str | Path,
    *,
    multicall: str | None = None,
    creation_block: int | None = None,
    max_range: int = 10_000,
    retries: int = 6,
    backoff_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchReport:
    """Fetch ``pool``'s events in ``[from_block, to_block]`` and its state before them.

    See the module docstring. Resumable: ranges already in ``store`` are skipped. ``multicall``
    overrides the canonical Multicall3 address; ``creation_block`` skips its search.
    """
    if from_block > to_block:
        raise Refused(f"from block {from_block} is after to block {to_block}")
    src: ChainSource = Web3Source(w3) if isinstance(w3, Web3) else w3
    own_store = not isinstance(store, EventStore)
    db = EventStore(store) if not isinstance(store, EventStore) else store
    trips_before = round_trips(w3) if isinstance(w3, Web3) else 0
    t0 = time.monotonic()
    retry = _Retry(retries, backoff_seconds, sleep)
    logs = _LogFetcher(src, retry, max_range)
    try:
        pool = to_checksum_address(pool)
        meta = db.meta()
        if (
            meta is None
            or meta.address != pool
            or (creation_block is not None and meta.creation_block != creation_block)
        ):
            mc = _multicall_at(src, retry, multicall, to_block)
            meta, factory = fetch_meta(src, retry, pool, to_block, mc)
            created = (
                creation_block
                if creation_block is not None
                else find_creation_block(src, retry, logs, meta, factory, to_block)
            )
            meta = PoolMeta(**{**_fields(meta), "creation_block": created})
            db.set_meta(meta)
        created = meta.creation_block

        # the state before the first replayed block
        first = max(from_block, created)
        state_block = first - 1
        stored = db.start_state()
        if stored is None or stored.block != state_block:
            if from_block <= created:
                state = StartState(state_block, 0, meta.fee, meta.tick_spacing, None)
            else:
                _fetch_position_keys(db, logs, meta, created, state_block)
                ts = retry.run("eth_getBlockByNumber", lambda: src.block_timestamp(state_block))
                mc = _multicall_at(src, retry, multicall, state_block)
                caller = _Caller(src, retry, state_block, mc)
                state = fetch_start_state(caller, meta, state_block, ts, db.prior_positions())
            db.set_start_state(state)

        # the events
        before = db.event_count()
        topics = [sorted(abi.TOPICS.values())]

        def on_range(a: int, b: int, raw: list[RawLog]) -> None:
            db.add_range(EVENTS_STREAM, a, b, events=_decoded(raw))

        for lo, hi in missing_ranges(first, to_block, db.fetched_ranges(EVENTS_STREAM)):
            logs.fetch(pool, topics, lo, hi, on_range)
        db.set_json("range", {"from_block": first, "to_block": to_block})

        # block timestamps
        known = db.timestamps()
        wanted = [b for b in db.event_blocks() if first <= b <= to_block and b not in known]
        batch: dict[int, int] = {}
        for b in wanted:
            batch[b] = retry.run("eth_getBlockByNumber", functools.partial(src.block_timestamp, b))
            if len(batch) >= 500:
                db.add_timestamps(batch)
                batch = {}
        db.add_timestamps(batch)

        trips = (round_trips(w3) - trips_before) if isinstance(w3, Web3) else -1
        report = FetchReport(
            path=str(db.path),
            pool=pool,
            from_block=first,
            to_block=to_block,
            creation_block=created,
            start_state_block=state_block,
            start_state_empty=(db.start_state() or StartState(0, 0, 0, 1, None)).empty,
            events_new=db.event_count() - before,
            events_total=sum(1 for _ in db.events(first, to_block)),
            log_requests=logs.requests,
            halvings=logs.halvings,
            retries=retry.count,
            round_trips=trips,
            seconds=time.monotonic() - t0,
        )
        log.info("fetched %s: %s", pool, report)
        return report
    finally:
        if own_store:
            db.close()


def _fields(meta: PoolMeta) -> dict[str, Any]:
    return {k: getattr(meta, k) for k in meta.__slots__}


def _fetch_position_keys(
    db: EventStore, logs: _LogFetcher, meta: PoolMeta, created: int, state_block: int
) -> None:
    """Record the position keys of every Mint from the pool's creation to ``state_block``."""

    def on_range(a: int, b: int, raw: list[RawLog]) -> None:
        keys = [
            (e.args[0], e.args[1], e.args[2]) for e in _decoded(raw) if e.kind is EventKind.MINT
        ]
        db.add_range(POSITIONS_STREAM, a, b, positions=keys)

    topics = [abi.TOPICS[EventKind.MINT]]
    for lo, hi in missing_ranges(created, state_block, db.fetched_ranges(POSITIONS_STREAM)):
        logs.fetch(meta.address, topics, lo, hi, on_range)
