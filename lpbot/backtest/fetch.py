"""Fetch a pool's history from an RPC node into a local dataset (``EventStore``).

``fetch_pool_events`` pulls every pool event in ``[from_block, to_block]`` with ``eth_getLogs``
and the pool's exact state at the end of block ``from_block - 1``:

- Head: the fetch stops ``confirmations`` blocks behind the chain's head (the registry's
  ``ChainInfo.confirmations``; 0 for the local devnet), so that it does not store blocks a reorg
  can still replace.
- Logs: Swap, Mint, Burn, Collect and Flash, and the events that also change the state a replay
  must reproduce (Initialize, SetFeeProtocol, CollectProtocol,
  IncreaseObservationCardinalityNext). Provider errors are read by
  ``lpbot.chain.rpc.classify_rpc_error``. A range the provider refuses as too large lowers the
  range cap to the limit its message gives (else to just under the refused size, then a binary
  search between the largest accepted and the smallest refused size), and later ranges stay
  under it; a range with too many results is split (at the suggested range when the message
  gives one) and the next grows again up to the cap. Rate limits wait for ``Retry-After`` (or
  the provider's ``backoff_seconds``, else exponential backoff) and repeat the same request;
  dropped connections and 5xx are retried with exponential backoff (a log range that times out
  is split like one with too many results; other timeouts are retried); after ``retries``
  the fetch stops with ``RetryLater``. An exhausted quota or a bad request stops it at once with
  ``NeedsAttention``.
- Reorgs: each range is written with its logs and its end block's hash in one transaction, so an
  interrupted fetch resumes where it stopped and never fetches a recorded range twice. On
  resume the recorded ranges are checked newest first against the chain's block hashes (a
  block's hash commits to every block before it, so the first match ends the check); a range
  whose end block changed is dropped with its events and fetched again. Logs the node marks
  ``removed: true`` are never stored, and deleted where an earlier fetch stored them.
- State: slot0, liquidity, fee growth globals, protocol fees, the latest oracle observation,
  every initialized tick (all ``tickBitmap`` words of the usable tick range, then ``ticks()`` for
  each set bit) and every position that exists: their keys come from the Mint events since the
  pool's creation, their state from ``positions(key)``. Calls go through Multicall3
  ``aggregate3`` in batches when a Multicall3 exists at that block (``multicall``, else the
  registry's address for the chain), otherwise one ``eth_call`` each. When ``from_block`` is at or
  before the pool's creation block the state is empty and replay starts from the ``Initialize``
  event.
- Block timestamps of every block with an event, and of the start block, fetched in JSON-RPC
  batches of ``header_batch`` headers per round trip.

Reading state at a past block needs an archive node (or, on Anvil, a block mined in this run).
The creation block is found by bisecting ``eth_getCode`` over block numbers (about 28 calls for
300M blocks) and confirmed by the factory's ``PoolCreated`` log in that block; where the node has
pruned older state, by that log searched backwards from the oldest state it keeps.
Progress (blocks done, requests, ETA) goes to ``progress`` and to the log every few seconds.
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
from web3.exceptions import BlockNotFound

from lpbot.backtest import abi
from lpbot.backtest.events import EventKind, PoolEvent, PoolMeta, StartState
from lpbot.backtest.store import EventStore, missing_ranges
from lpbot.chain import registry
from lpbot.chain.rpc import (
    BatchRefused,
    CountingHTTPProvider,
    Fault,
    classify_rpc_error,
    round_trips,
)
from lpbot.errors import NeedsAttention, Refused, RetryLater
from lpbot.uniswap.oracle import Observation
from lpbot.uniswap.pool import PositionKey, Slot0
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.tick import TickInfo
from lpbot.uniswap.tick_math import MAX_TICK, MIN_TICK

log = logging.getLogger(__name__)

EVENTS_STREAM = "events"
POSITIONS_STREAM = "positions"


# what a failed request can raise: web3's ValueError (JSON-RPC error objects, reverts), OSError
# (``RpcTransportError``, sockets) and requests' exceptions from other providers
FAILURES = (ValueError, OSError, requests.RequestException)


@dataclass(frozen=True, slots=True)
class RawLog:
    block_number: int
    log_index: int
    tx_hash: str
    topics: tuple[bytes, ...]
    data: bytes
    removed: bool = False  # the node says a reorg took it out of the chain


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

    def block_headers(self, blocks: Sequence[int]) -> dict[int, tuple[str, int]]:
        """(hash, timestamp) of each block, in as few round trips as the source can."""
        ...

    def get_logs_and_end_hash(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> tuple[list[RawLog], str]:
        """The logs of a range and the hash of its last block (one round trip where it can)."""
        ...


class Web3Source:
    """``ChainSource`` over a ``Web3`` client (errors pass through untranslated: the fetch
    classifies them)."""

    def __init__(self, w3: Web3, header_batch: int = 100) -> None:
        self.w3 = w3
        self.header_batch = max(1, header_batch)
        provider = w3.provider
        self._batch = provider if isinstance(provider, CountingHTTPProvider) else None

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
                bool(entry.get("removed", False)),
            )
            for entry in logs
        ]

    def get_logs_and_end_hash(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> tuple[list[RawLog], str]:
        if self._batch is None:
            logs = self.get_logs(address, topics, from_block, to_block)
            return logs, self.block_hash(to_block)
        query = {
            "address": to_checksum_address(address),
            "topics": [_hex_topic(t) for t in topics],
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
        }
        try:
            logs_answer, header_answer = self._batch.make_batch(
                [("eth_getLogs", [query]), ("eth_getBlockByNumber", [hex(to_block), False])]
            )
        except BatchRefused:
            log.info("the node does not take JSON-RPC batches: one request per call")
            self._batch = None
            return self.get_logs_and_end_hash(address, topics, from_block, to_block)
        if "error" in logs_answer:
            raise ValueError(logs_answer["error"])
        if "error" in header_answer or not header_answer.get("result"):
            raise ValueError(header_answer.get("error", f"no block {to_block}"))
        logs = [
            RawLog(
                int(entry["blockNumber"], 16),
                int(entry["logIndex"], 16),
                entry["transactionHash"],
                tuple(bytes.fromhex(t[2:]) for t in entry["topics"]),
                bytes.fromhex(entry["data"][2:]),
                bool(entry.get("removed", False)),
            )
            for entry in logs_answer["result"]
        ]
        return logs, str(header_answer["result"]["hash"])

    def _header(self, block: int) -> Any:
        try:
            return self.w3.eth.get_block(block)
        except BlockNotFound:
            raise ValueError(f"no block {block}") from None

    def block_hash(self, block: int) -> str:
        return "0x" + bytes(self._header(block)["hash"]).hex()

    def block_headers(self, blocks: Sequence[int]) -> dict[int, tuple[str, int]]:
        out: dict[int, tuple[str, int]] = {}
        if self._batch is None:
            for b in blocks:
                header = self._header(b)
                out[b] = ("0x" + bytes(header["hash"]).hex(), int(header["timestamp"]))
            return out
        for i in range(0, len(blocks), self.header_batch):
            part = list(blocks[i : i + self.header_batch])
            try:
                answers = self._batch.make_batch(
                    [("eth_getBlockByNumber", [hex(b), False]) for b in part]
                )
            except BatchRefused:
                log.info("the node does not take JSON-RPC batches: one request per header")
                self._batch = None
                return {**out, **self.block_headers(blocks[i:])}
            for b, answer in zip(part, answers, strict=True):
                if "error" in answer or not answer.get("result"):
                    raise ValueError(answer.get("error", f"no block {b}"))
                out[b] = (str(answer["result"]["hash"]), int(answer["result"]["timestamp"], 16))
        return out

    def call(self, to: str, data: bytes, block: int) -> bytes:
        return bytes(
            self.w3.eth.call({"to": to_checksum_address(to), "data": data}, block_identifier=block)
        )

    def get_code(self, address: str, block: int) -> bytes:
        return bytes(self.w3.eth.get_code(to_checksum_address(address), block_identifier=block))

    def block_timestamp(self, block: int) -> int:
        return int(self._header(block)["timestamp"])


def _hex_topic(topic: Any) -> Any:
    if isinstance(topic, list | tuple):
        return [_hex_topic(t) for t in topic]
    if isinstance(topic, bytes):
        return "0x" + topic.hex()
    return topic


# ------------------------------------------------------------------------- error handling


def classify(exc: BaseException) -> str:
    """``'too_many'`` (ask for fewer blocks), ``'transient'`` (retry later, rate limits too) or
    ``'fatal'`` (``classify_rpc_error`` has the finer ``Fault``)."""
    fault = classify_rpc_error(exc).fault
    if fault in (Fault.RANGE_TOO_LARGE, Fault.TOO_MANY_RESULTS):
        return "too_many"
    if fault in (Fault.RATE_LIMITED, Fault.TRANSIENT):
        return "transient"
    return "fatal"


def _timed_out(exc: BaseException) -> bool:
    """The node (or a gateway before it) gave up on the request for the time it took."""
    if isinstance(exc, requests.Timeout) or getattr(exc, "timeout", False):
        return True
    if getattr(exc, "status", None) in (408, 504):
        return True
    text = str(exc).lower()
    return any(k in text for k in ("timeout", "timed out", "deadline exceeded"))


@dataclass
class _Retry:
    retries: int
    backoff_seconds: float
    sleep: Callable[[float], None]
    count: int = 0
    rate_limited: int = 0
    max_wait: float = 300.0

    def run(self, what: str, fn: Callable[[], Any], *, timeouts_retried: bool = True) -> Any:
        """Call ``fn``; wait out rate limits (``Retry-After``) and retry transient failures with
        exponential backoff; re-raise the rest (and timeouts, unless ``timeouts_retried``)."""
        attempt = 0
        while True:
            try:
                return fn()
            except FAILURES as exc:
                failure = classify_rpc_error(exc)
                if failure.fault not in (Fault.RATE_LIMITED, Fault.TRANSIENT):
                    raise
                if not timeouts_retried and _timed_out(exc):
                    raise
                attempt += 1
                self.count += 1
                if attempt > self.retries:
                    log.error(
                        "%s: giving up after %d retries (%s): %s",
                        what, self.retries, failure.fault.value, failure.message,
                    )  # fmt: skip
                    raise RetryLater(
                        f"{what} failed {attempt} times ({failure.fault.value}): {failure.message}"
                    ) from None
                delay = min(self.backoff_seconds * 2 ** (attempt - 1), 30.0)
                if failure.fault is Fault.RATE_LIMITED:
                    self.rate_limited += 1
                    if failure.retry_after is not None:
                        delay = min(failure.retry_after, self.max_wait)
                log.warning(
                    "%s: %s (%s); retry %d in %.2f s",
                    what, failure.fault.value, failure.message, attempt, delay,
                )  # fmt: skip
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
    halvings: int  # ranges refused as too large or with too many results, then made smaller
    retries: int
    round_trips: int
    seconds: float
    rate_limited: int = 0  # waits for a provider's rate limit
    range_cap: int = 0  # the largest block range the provider allowed, as learned
    refetched_ranges: int = 0  # ranges dropped on resume because a reorg replaced them
    confirmations: int = 0
    header_requests: int = 0  # round trips for block headers (timestamps, hashes)


@dataclass(frozen=True, slots=True)
class FetchProgress:
    """Where a fetch is: blocks of log ranges done out of those to do, requests, an ETA."""

    blocks_done: int
    blocks_total: int
    requests: int
    seconds: float

    @property
    def eta_seconds(self) -> float | None:
        if self.blocks_done <= 0:
            return None
        return self.seconds * (self.blocks_total - self.blocks_done) / self.blocks_done


class _LogFetcher:
    """Adaptive ``eth_getLogs`` over a block range, recording each range in the store.

    ``ceiling`` is the largest range the provider is believed to allow: its stated limit, or just
    under the smallest size it refused; ``floor`` the largest size it accepted. Between the two
    the next size is their midpoint, so an unstated cap is found in a few refusals and kept.
    """

    def __init__(
        self,
        src: ChainSource,
        retry: _Retry,
        max_range: int,
        progress: Callable[[FetchProgress], None] | None = None,
        progress_every: float = 5.0,
    ) -> None:
        self.src = src
        self.retry = retry
        self.max_range = max(1, max_range)
        self.ceiling = self.max_range
        self.floor = 0
        self.chunk = self.max_range
        self.searching = False  # the cap is unstated: bisect between floor and ceiling
        self.results_refused = False  # the node has refused a range for its number of logs
        self.most_results = 0
        self.requests = 0
        self.halvings = 0
        self.progress = progress
        self.progress_every = progress_every
        self.blocks_total = 0
        self.blocks_done = 0
        self._t0 = time.monotonic()
        self._last_report = 0.0

    def plan(self, blocks: int) -> None:
        """Count ``blocks`` more blocks to fetch, for the progress and its ETA."""
        self.blocks_total += blocks

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < self.progress_every:
            return
        self._last_report = now
        p = FetchProgress(self.blocks_done, self.blocks_total, self.requests, now - self._t0)
        eta = p.eta_seconds
        log.info(
            "eth_getLogs: %d of %d blocks, %d requests, %.0f s, ETA %s",
            p.blocks_done, p.blocks_total, p.requests, p.seconds,
            "?" if eta is None else f"{eta:.0f} s",
        )  # fmt: skip
        if self.progress is not None:
            self.progress(p)

    def fetch(
        self,
        address: str,
        topics: Sequence[Any],
        lo: int,
        hi: int,
        on_range: Callable[[int, int, list[RawLog], str], None],
    ) -> None:
        start = lo
        while start <= hi:
            end = min(hi, start + min(self.chunk, self.ceiling) - 1)
            try:
                logs, end_hash = self.retry.run(
                    f"eth_getLogs {start}-{end}",
                    functools.partial(self.src.get_logs_and_end_hash, address, topics, start, end),
                    timeouts_retried=end == start,  # a range that takes too long is split
                )
            except FAILURES as exc:
                self._refused(start, end, exc)
                continue
            self.requests += 1
            on_range(start, end, logs, end_hash)
            size = end - start + 1
            self.blocks_done += size
            self._report()
            start = end + 1
            if end == hi and size < self.chunk:
                continue  # cut short by the end of the span: says nothing of the cap
            self._grow(size, len(logs))

    def _grow(self, size: int, results: int) -> None:
        """The next range after ``size`` blocks with ``results`` logs were accepted."""
        self.floor = max(self.floor, size)
        self.most_results = max(self.most_results, results)
        if self.searching and self.chunk * 2 > self.floor and self.floor < self.ceiling:
            # between the largest accepted and the smallest refused size
            nxt = max(self.chunk, (self.floor + self.ceiling + 1) // 2)
        else:
            nxt = self.chunk * 2
        if self.results_refused and results:
            # where a node caps results, expect this range's density and stay under the most
            # results it has returned
            nxt = min(nxt, max(self.chunk, size * self.most_results // results))
        self.chunk = max(1, min(self.ceiling, nxt))

    def _refused(self, start: int, end: int, exc: BaseException) -> None:
        """Adapt to a refused range, or raise what the failure means."""
        failure = classify_rpc_error(exc)
        size = end - start + 1
        if failure.fault is Fault.QUOTA_EXHAUSTED:
            raise NeedsAttention(
                f"the provider's quota is exhausted ({failure.message}); raise the plan or "
                "wait for it to renew, then run the fetch again: it resumes where it stopped"
            ) from None
        timed_out = failure.fault is Fault.TRANSIENT and _timed_out(exc)
        if failure.fault not in (Fault.RANGE_TOO_LARGE, Fault.TOO_MANY_RESULTS) and not timed_out:
            raise NeedsAttention(
                f"eth_getLogs {start}-{end} failed ({failure.fault.value}): {failure.message}"
            ) from None
        if size == 1:
            raise NeedsAttention(
                f"the node refuses the logs of the single block {start}: {failure.message}"
            ) from None
        suggested = None
        if failure.suggested is not None:
            a, b = failure.suggested
            if a == start and start <= b < end:
                suggested = b - a + 1
        if failure.fault is Fault.RANGE_TOO_LARGE:
            cap = failure.limit if failure.limit is not None else suggested
            if cap is not None and cap > size:
                cap = None  # it refused less than it says it allows: the stated limit is wrong
            if cap is not None:
                self.ceiling = max(1, min(self.ceiling, cap, size - 1))
                self.chunk = self.ceiling
            else:
                self.ceiling = min(self.ceiling, size - 1)
                self.chunk = max(1, min(self.ceiling, max(self.floor, size // 2)))
                self.searching = True
            self.floor = min(self.floor, self.ceiling)
        else:  # dense blocks: smaller ranges here, the cap unchanged
            self.chunk = suggested if suggested is not None else max(1, size // 2)
            self.results_refused = True
        self.halvings += 1
        log.info(
            "eth_getLogs %d-%d: %s (%s); next range %d blocks, cap %d",
            start, end, failure.fault.value, failure.message, self.chunk, self.ceiling,
        )  # fmt: skip


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
        if raw.removed:
            continue
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
    """The block the pool was created in: ``eth_getCode`` bisected over block numbers, confirmed
    by the factory's ``PoolCreated`` log in that block; where the node has pruned the state of
    older blocks, that log searched backwards from the oldest state it keeps (the newest ranges
    first, stopping at the first match)."""
    topics = [
        abi.POOL_CREATED_TOPIC,
        "0x" + bytes.fromhex(meta.token0[2:]).rjust(32, b"\0").hex(),
        "0x" + bytes.fromhex(meta.token1[2:]).rjust(32, b"\0").hex(),
        "0x" + meta.fee.to_bytes(32, "big").hex(),
    ]
    found: list[int] = []

    def on_range(_a: int, _b: int, raw: list[RawLog], _hash: str) -> None:
        for entry in raw:
            if entry.removed:
                continue
            (_spacing, pool_address) = decode(["int24", "address"], entry.data)
            if to_checksum_address(pool_address) == meta.address:
                found.append(entry.block_number)

    # bisect eth_getCode; a block whose state the node no longer has counts as "no code yet"
    lo, hi = 0, latest
    pruned = False
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            code = retry.run(
                f"eth_getCode at {mid}", functools.partial(src.get_code, meta.address, mid)
            )
        except FAILURES as exc:
            if classify_rpc_error(exc).fault is not Fault.BAD_REQUEST:
                raise
            code, pruned = b"", True
        if code:
            hi = mid
        else:
            lo = mid + 1
    logs.plan(1)
    logs.fetch(factory, topics, lo, lo, on_range)
    if found:
        return lo
    if not pruned:
        raise NeedsAttention(
            f"{meta.address} has code from block {lo}, but factory {factory} logged no "
            "PoolCreated for it there: not a pool of this factory"
        )
    # the pool is older than the oldest state the node keeps: its PoolCreated log, searched
    # backwards from there, newest ranges first
    log.info("state before block %d is pruned; looking for the factory's PoolCreated log", lo)
    end = lo - 1
    while end >= 0 and not found:
        start = max(0, end - logs.ceiling * 8 + 1)
        logs.plan(end - start + 1)
        logs.fetch(factory, topics, start, end, on_range)
        end = start - 1
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


def _multicall_at(
    src: ChainSource, retry: _Retry, multicall: str | None, block: int, chain_id: int
) -> str | None:
    """``multicall``, else the registry's Multicall3 for the chain, where it has code at
    ``block``; None (one ``eth_call`` per read) where the chain has none there."""
    candidate = multicall or registry.default_contract(chain_id, "Multicall3")
    if candidate is None:
        return None
    try:
        code = retry.run("eth_getCode(Multicall3)", lambda: src.get_code(candidate, block))
    except FAILURES:
        code = b""
    if code:
        return candidate
    if multicall:
        raise NeedsAttention(f"no Multicall3 at {multicall} at block {block}")
    log.info("no Multicall3 at %s at block %d: one eth_call per read", candidate, block)
    return None


def _verify_ranges(db: EventStore, src: ChainSource, retry: _Retry, stream: str) -> int:
    """Drop the recorded ranges of ``stream`` whose end block the chain no longer has, newest
    first, up to the first that still matches (its hash commits to every earlier block).
    The number of ranges dropped."""
    dropped = 0
    for a, b, recorded in db.range_rows(stream):
        if recorded is None:  # recorded before hashes were kept: nothing to compare
            continue
        try:
            headers = retry.run(
                f"eth_getBlockByNumber {b}", functools.partial(src.block_headers, [b])
            )
            current: str | None = headers[b][0]
        except FAILURES as exc:
            if classify_rpc_error(exc).fault is not Fault.BAD_REQUEST:
                raise
            current = None  # the chain is shorter now
        if current is not None and current.lower() == recorded.lower():
            break
        log.warning(
            "%s blocks %d-%d: block %d is no longer %s on the chain; fetching them again",
            stream, a, b, b, recorded,
        )  # fmt: skip
        db.drop_range(stream, a, b)
        dropped += 1
    return dropped


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
    confirmations: int | None = None,
    progress: Callable[[FetchProgress], None] | None = None,
) -> FetchReport:
    """Fetch ``pool``'s events in ``[from_block, to_block]`` and its state before them.

    See the module docstring. Resumable: ranges already in ``store`` (and still on the chain)
    are skipped. ``multicall`` overrides the registry's Multicall3 address; ``creation_block``
    skips its search; ``confirmations`` overrides the registry's for the chain; ``to_block`` is
    lowered to the head minus the confirmations.
    """
    if from_block > to_block:
        raise Refused(f"from block {from_block} is after to block {to_block}")
    src: ChainSource = Web3Source(w3) if isinstance(w3, Web3) else w3
    own_store = not isinstance(store, EventStore)
    new_file = own_store and not Path(str(store)).exists()
    db = EventStore(store) if not isinstance(store, EventStore) else store
    trips_before = round_trips(w3) if isinstance(w3, Web3) else 0
    t0 = time.monotonic()
    retry = _Retry(retries, backoff_seconds, sleep)
    logs = _LogFetcher(src, retry, max_range, progress)
    header_requests = 0
    try:
        pool = to_checksum_address(pool)
        chain_id = retry.run("eth_chainId", src.chain_id)
        depth = registry.confirmations(chain_id) if confirmations is None else confirmations
        head = retry.run("eth_blockNumber", src.block_number)
        safe_head = head - depth
        if from_block > safe_head:
            raise Refused(
                f"from block {from_block} is not {depth} blocks behind the head {head} yet"
            )
        if to_block > safe_head:
            log.warning(
                "to block %d is within %d confirmations of the head %d: fetching up to %d",
                to_block, depth, head, safe_head,
            )  # fmt: skip
            to_block = safe_head

        meta = db.meta()
        if meta is not None and (meta.address != pool or meta.chain_id != chain_id):
            raise Refused(
                f"{db.path} holds pool {meta.address} of chain {meta.chain_id}, not {pool} of "
                f"chain {chain_id}: give another --out"
            )
        if meta is None or (creation_block is not None and meta.creation_block != creation_block):
            mc = _multicall_at(src, retry, multicall, to_block, chain_id)
            meta, factory = fetch_meta(src, retry, pool, to_block, mc)
            created = (
                creation_block
                if creation_block is not None
                else find_creation_block(src, retry, logs, meta, factory, to_block)
            )
            meta = PoolMeta(**{**_fields(meta), "creation_block": created})
            db.set_meta(meta)
        created = meta.creation_block

        # ranges a reorg replaced since they were stored are fetched again
        refetched = _verify_ranges(db, src, retry, EVENTS_STREAM)
        refetched += _verify_ranges(db, src, retry, POSITIONS_STREAM)

        # the state before the first replayed block
        first = max(from_block, created)
        state_block = first - 1
        stored = db.start_state()
        stored_hash = db.get_json("start_state_hash")
        if stored is not None and stored.block == state_block and stored_hash and state_block >= 0:
            (current, _ts) = retry.run(
                "eth_getBlockByNumber", lambda: src.block_headers([state_block])
            )[state_block]
            header_requests += 1
            if current.lower() != str(stored_hash).lower():
                log.warning(
                    "block %d was replaced by a reorg: reading its state again", state_block
                )
                stored = None
        if stored is None or stored.block != state_block:
            state_hash: str | None = None
            if from_block <= created:
                state = StartState(state_block, 0, meta.fee, meta.tick_spacing, None)
            else:
                _fetch_position_keys(db, logs, meta, created, state_block)
                state_hash, ts = retry.run(
                    "eth_getBlockByNumber", lambda: src.block_headers([state_block])
                )[state_block]
                header_requests += 1
                mc = _multicall_at(src, retry, multicall, state_block, chain_id)
                caller = _Caller(src, retry, state_block, mc)
                state = fetch_start_state(caller, meta, state_block, ts, db.prior_positions())
            db.set_start_state(state)
            db.set_json("start_state_hash", state_hash)

        # the events
        before = db.event_count()
        topics = [sorted(abi.TOPICS.values())]

        def on_range(a: int, b: int, raw: list[RawLog], end_hash: str) -> None:
            removed = [(r.block_number, r.log_index) for r in raw if r.removed]
            db.add_range(
                EVENTS_STREAM, a, b, events=_decoded(raw), end_hash=end_hash, removed=removed
            )

        gaps = missing_ranges(first, to_block, db.fetched_ranges(EVENTS_STREAM))
        logs.plan(sum(hi - lo + 1 for lo, hi in gaps))
        for lo, hi in gaps:
            logs.fetch(pool, topics, lo, hi, on_range)
        if gaps:
            logs._report(force=True)
        db.set_json("range", {"from_block": first, "to_block": to_block})

        # block timestamps, in batches of headers
        known = db.timestamps()
        wanted = [b for b in db.event_blocks() if first <= b <= to_block and b not in known]
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            headers = retry.run(
                f"{len(part)} block headers", functools.partial(src.block_headers, part)
            )
            if isinstance(src, Web3Source) and src._batch is not None:
                header_requests += -(-len(part) // src.header_batch)
            else:
                header_requests += len(part)
            db.add_timestamps({b: ts for b, (_h, ts) in headers.items()})

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
            rate_limited=retry.rate_limited,
            range_cap=logs.ceiling,
            refetched_ranges=refetched,
            confirmations=depth,
            header_requests=header_requests,
        )
        log.info("fetched %s: %s", pool, report)
        return report
    except FAILURES as exc:  # what no retry or adaptation can answer, in one line
        failure = classify_rpc_error(exc)
        raise NeedsAttention(
            f"the node refused a request ({failure.fault.value}): {failure.message}"
        ) from None
    finally:
        if own_store:
            empty = db.meta() is None
            db.close()
            if new_file and empty:  # failed before learning anything: leave no empty dataset
                Path(str(store)).unlink(missing_ok=True)


def _fields(meta: PoolMeta) -> dict[str, Any]:
    return {k: getattr(meta, k) for k in meta.__slots__}


def _fetch_position_keys(
    db: EventStore, logs: _LogFetcher, meta: PoolMeta, created: int, state_block: int
) -> None:
    """Record the position keys of every Mint from the pool's creation to ``state_block``."""

    def on_range(a: int, b: int, raw: list[RawLog], end_hash: str) -> None:
        keys = [
            (e.args[0], e.args[1], e.args[2]) for e in _decoded(raw) if e.kind is EventKind.MINT
        ]
        db.add_range(POSITIONS_STREAM, a, b, positions=keys, end_hash=end_hash)

    topics = [abi.TOPICS[EventKind.MINT]]
    gaps = missing_ranges(created, state_block, db.fetched_ranges(POSITIONS_STREAM))
    logs.plan(sum(hi - lo + 1 for lo, hi in gaps))
    for lo, hi in gaps:
        logs.fetch(meta.address, topics, lo, hi, on_range)
