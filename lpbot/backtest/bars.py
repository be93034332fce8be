"""Price bars for the vectorised engine: imported from CSV or aggregated from fetched events.

A ``Bars`` row covers ``[ts, ts + interval)``: open, high, low and close raw prices (raw token1
per raw token0: ``(sqrtPriceX96 / 2**96)**2``), the pool's in-range liquidity, and the fees the
bar's swaps paid to liquidity providers in raw token units (protocol share removed). Float
(analytics).

CSV layouts read:

- demeter-fetch minute bars (zelos-alpha/demeter-fetch, ``docs/specifation.md``, "1Min Resample
  Data"): ``timestamp`` (UTC, ``YYYY-mm-dd HH:MM:SS``), ``netAmount0``, ``netAmount1``,
  ``closeTick``, ``openTick``, ``lowestTick``, ``highestTick``, ``inAmount0``, ``inAmount1``,
  ``currentLiquidity``. ``inAmountN`` is the raw amount of token N swapped into the pool (fee
  included), so the bar's fee is ``inAmountN * fee / 1e6``; prices are those at the start of
  each tick, from ``get_sqrt_ratio_at_tick`` (exact), and the close's tick is kept, so that a bar
  closing at tick ``t`` is seen at tick ``t`` (``1.0001 ** t`` read back through a truncating
  square root gives ``t - 1`` for many ticks).
- Uniswap v3 subgraph ``PoolHourData`` (Uniswap/v3-subgraph, ``schema.graphql``):
  ``periodStartUnix``, ``liquidity``, ``sqrtPrice``, ``tick``, ``token0Price``, ``token1Price``,
  ``volumeToken0``, ``volumeToken1``, ``volumeUSD``, ``feesUSD``, ``open``, ``high``, ``low``,
  ``close`` (decimals applied). The close is ``sqrtPrice`` (else ``tick``); ``open/high/low/close``
  are ``token0Price`` values (token0 per token1), so they are inverted (high and low trade
  places). ``volumeTokenN`` sums ``|amountN|`` over swaps, in and out, so half of it is taken as
  input: fees ``volumeTokenN / 2 * 10**decimalsN * fee / 1e6``. Hours without swaps are absent
  and are filled with the last close and no volume.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lpbot.analytics.types import FloatArray
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.events import EventKind
from lpbot.backtest.store import BarRow, EventStore
from lpbot.errors import ConfigError, NeedsAttention
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio

DEMETER_COLUMNS = (
    "timestamp",
    "closeTick",
    "openTick",
    "lowestTick",
    "highestTick",
    "inAmount0",
    "inAmount1",
    "currentLiquidity",
)
SUBGRAPH_COLUMNS = ("periodStartUnix", "liquidity", "volumeToken0", "volumeToken1")


@dataclass(frozen=True, eq=False)
class Bars:
    """Regular bars of one pool (module docstring); arrays are float64 except ``ts``."""

    ts: NDArray[np.int64]
    interval: int
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    liquidity: FloatArray
    fee0: FloatArray
    fee1: FloatArray
    volume0: FloatArray
    volume1: FloatArray
    fee: int
    tick_spacing: int
    decimals0: int
    decimals1: int
    symbol0: str = ""
    symbol1: str = ""
    source: str = ""
    tick: NDArray[np.int64] | None = None  # each close's tick, when the source gives it

    def __len__(self) -> int:
        return int(self.ts.size)

    @property
    def end(self) -> NDArray[np.int64]:
        """Each bar's end time (when its close is known)."""
        return self.ts + self.interval

    def info(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "fee": self.fee,
            "tick_spacing": self.tick_spacing,
            "decimals0": self.decimals0,
            "decimals1": self.decimals1,
            "symbol0": self.symbol0,
            "symbol1": self.symbol1,
            "source": self.source,
        }

    def rows(self) -> Iterable[BarRow]:
        cols = (self.open, self.high, self.low, self.close, self.liquidity, self.fee0, self.fee1,
                self.volume0, self.volume1)  # fmt: skip
        ticks = self.tick
        for i in range(len(self)):
            tick = None if ticks is None else int(ticks[i])
            yield (int(self.ts[i]), *(float(c[i]) for c in cols), tick)  # type: ignore[misc]

    def between(self, start: int | None, end: int | None) -> Bars:
        lo = 0 if start is None else int(np.searchsorted(self.ts, start, side="left"))
        hi = (
            len(self)
            if end is None
            else int(np.searchsorted(self.ts + self.interval, end, "right"))
        )
        return _slice(self, lo, hi)


def _slice(b: Bars, lo: int, hi: int) -> Bars:
    return replace(
        b,
        ts=b.ts[lo:hi],
        open=b.open[lo:hi],
        high=b.high[lo:hi],
        low=b.low[lo:hi],
        close=b.close[lo:hi],
        liquidity=b.liquidity[lo:hi],
        fee0=b.fee0[lo:hi],
        fee1=b.fee1[lo:hi],
        volume0=b.volume0[lo:hi],
        volume1=b.volume1[lo:hi],
        tick=None if b.tick is None else b.tick[lo:hi],
    )


def regular(rows: Sequence[BarRow], interval: int, **info: Any) -> Bars:
    """Bars from rows keyed by start time: sorted, one per interval, gaps filled flat."""
    if not rows:
        raise NeedsAttention("no bars: the input holds no rows")
    by_ts: dict[int, BarRow] = {}
    for row in rows:
        by_ts[int(row[0]) // interval * interval] = row
    first, last = min(by_ts), max(by_ts)
    n = (last - first) // interval + 1
    ts = first + interval * np.arange(n, dtype=np.int64)
    data = np.zeros((9, n), dtype=np.float64)
    ticks = np.zeros(n, dtype=np.int64)
    has_ticks = all(len(row) > 10 and row[10] is not None for row in by_ts.values())
    filled = np.zeros(n, dtype=bool)
    for t, row in by_ts.items():
        i = (t - first) // interval
        data[:, i] = row[1:10]
        if has_ticks:
            ticks[i] = int(row[10] or 0)
        filled[i] = True
    for gap in np.flatnonzero(~filled):  # forward-fill prices and liquidity; no volume
        prev = data[:, gap - 1]
        data[0:4, gap] = prev[3]
        data[4, gap] = prev[4]
        ticks[gap] = ticks[gap - 1]
    info = {**info, "tick": ticks if has_ticks else None}
    return Bars(ts, interval, *data, **info)


@functools.lru_cache(maxsize=1 << 16)
def tick_price(tick: int) -> float:
    """The raw price at the start of ``tick``, from its exact sqrt ratio (float, analytics).

    ``1.0001 ** tick`` is not used: its square root, truncated to Q64.96, can fall just below
    ``get_sqrt_ratio_at_tick(tick)`` and read back as ``tick - 1``.
    """
    root = get_sqrt_ratio_at_tick(tick) / Q96
    return root * root


def _tick(text: str) -> int:
    """A tick column's value (written as an int, or a float such as ``200010.0``)."""
    value = float(text)
    if not value.is_integer():
        raise ConfigError(f"tick {text!r} is not an integer")
    return int(value)


def _utc(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        return int(text)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def detect_format(header: Sequence[str]) -> str:
    cols = set(header)
    if set(DEMETER_COLUMNS) <= cols:
        return "demeter"
    if set(SUBGRAPH_COLUMNS) <= cols:
        return "subgraph"
    raise ConfigError(
        "unknown CSV layout: expected demeter-fetch minute columns "
        f"({', '.join(DEMETER_COLUMNS)}) or subgraph poolHourData columns "
        f"({', '.join(SUBGRAPH_COLUMNS)}); got {', '.join(header)}"
    )


def import_csv(
    paths: Sequence[str | Path],
    *,
    fee: int,
    decimals0: int,
    decimals1: int,
    tick_spacing: int | None = None,
    fee_protocol: int = 0,
    fmt: str = "auto",
    symbol0: str = "",
    symbol1: str = "",
) -> Bars:
    """Read bar CSVs of one pool (one layout, any number of files, e.g. one per day).

    ``fee`` in pips; ``fee_protocol`` the pool's protocol fee denominator (0: off; 4..10: a 1/N
    share of fees goes to the protocol, not to LPs).
    """
    from lpbot.uniswap.pool import FEE_TICK_SPACING

    spacing = tick_spacing or FEE_TICK_SPACING.get(fee)
    if spacing is None:
        raise ConfigError(f"fee tier {fee} has no known tick spacing: give it")
    lp_cut = 1.0 - (1.0 / fee_protocol if fee_protocol else 0.0)
    rate = fee / 1e6 * lp_cut
    rows: list[BarRow] = []
    seen: dict[int, BarRow] = {}
    formats: set[str] = set()
    scale = 10.0 ** (decimals1 - decimals0)
    for path in paths:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            kind = detect_format(reader.fieldnames or []) if fmt == "auto" else fmt
            formats.add(kind)
            for r in reader:
                try:
                    row = _csv_row(kind, r, rate, scale, decimals0, decimals1)
                except (ValueError, TypeError, KeyError) as exc:
                    why = str(exc) if isinstance(exc, ValueError) else "a value is missing"
                    raise ConfigError(f"{path}, line {reader.line_num}: {why}") from None
                earlier = seen.setdefault(row[0], row)
                if earlier != row:
                    raise ConfigError(
                        f"{path}, line {reader.line_num}: a different bar for "
                        f"{datetime.fromtimestamp(row[0], tz=UTC):%Y-%m-%d %H:%M} was read "
                        "before (files of two pools, or overlapping exports?)"
                    )
                rows.append(row)
    if len(formats) > 1:
        raise ConfigError(f"mixed CSV layouts: {sorted(formats)}")
    kind = formats.pop() if formats else fmt
    interval = 60 if kind == "demeter" else 3600
    return regular(
        rows,
        interval,
        fee=fee,
        tick_spacing=spacing,
        decimals0=decimals0,
        decimals1=decimals1,
        symbol0=symbol0,
        symbol1=symbol1,
        source=f"csv:{kind}",
    )


def _csv_row(
    kind: str, r: dict[str, str], rate: float, scale: float, decimals0: int, decimals1: int
) -> BarRow:
    """One CSV row as a bar (``import_csv``); ValueError, TypeError or KeyError if malformed."""
    if kind == "demeter":
        in0, in1 = float(r["inAmount0"]), float(r["inAmount1"])
        demeter_tick = _tick(r["closeTick"])
        row: BarRow = (
            _utc(r["timestamp"]),
            tick_price(_tick(r["openTick"])),
            tick_price(_tick(r["highestTick"])),
            tick_price(_tick(r["lowestTick"])),
            tick_price(demeter_tick),
            float(r["currentLiquidity"]),
            in0 * rate,
            in1 * rate,
            in0,
            in1,
            demeter_tick,
        )
    elif kind == "subgraph":
        close_tick: int | None = None
        if r.get("sqrtPrice"):
            sqrt_price = int(r["sqrtPrice"])
            close = (sqrt_price / Q96) ** 2
            close_tick = get_tick_at_sqrt_ratio(sqrt_price)
        elif r.get("tick"):
            close_tick = _tick(r["tick"])
            close = tick_price(close_tick)
        else:
            close = scale / float(r["token0Price"])

        def inverted(name: str) -> float:
            value = float(r.get(name) or 0.0)
            return scale / value if value > 0 else close

        v0 = float(r["volumeToken0"]) * 10.0**decimals0 / 2
        v1 = float(r["volumeToken1"]) * 10.0**decimals1 / 2
        row = (
            _utc(r["periodStartUnix"]),
            inverted("open"),
            max(inverted("low"), close),
            min(inverted("high"), close),
            close,
            float(r["liquidity"]),
            v0 * rate,
            v1 * rate,
            v0,
            v1,
            close_tick,
        )
    else:
        raise ConfigError(f"unknown CSV format {kind!r}: demeter or subgraph")
    values = row[1:10]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("a value is not a finite number")
    if min(row[1:5]) <= 0 or min(row[5:10]) < 0:
        raise ValueError("a price is not positive, or a liquidity or an amount is negative")
    return row


def bars_from_events(dataset: Dataset, interval: int = 60) -> Bars:
    """Aggregate a fetched history into bars.

    Fees per swap are ``amountIn * fee / 1e6`` less the protocol's share (fee switch followed
    through SetFeeProtocol). The bar's liquidity is the fee-weighted harmonic mean of the
    in-range liquidity the swaps met (each swap's taken as the mean of before and after), so that
    the bar's ``fee / liquidity`` is close to the fee growth its swaps made; the in-range
    liquidity is followed from Swap logs and in-range Mints and Burns.
    """
    meta = dataset.meta
    start = dataset.start
    fee = meta.fee / 1e6
    fee_protocol = start.slot0.fee_protocol if start.slot0 is not None else 0
    liquidity = start.liquidity
    tick = start.slot0.tick if start.slot0 is not None else 0
    price = (start.slot0.sqrt_price_x96 / Q96) ** 2 if start.slot0 is not None else math.nan
    rows: list[BarRow] = []
    cur_ts: int | None = None
    o = h = lo = c = price
    f0 = f1 = v0 = v1 = fee_weight = fee_over_l = 0.0

    def flush() -> None:
        if cur_ts is None:
            return
        eff = fee_weight / fee_over_l if fee_over_l > 0 else float(liquidity)
        rows.append((cur_ts, o, h, lo, c, eff, f0, f1, v0, v1, tick))

    for event in dataset.events:
        a = event.args
        kind = event.kind
        if kind is EventKind.INITIALIZE:
            price = (a[0] / Q96) ** 2
            tick = a[1]
            continue
        if kind is EventKind.SET_FEE_PROTOCOL:
            fee_protocol = a[2] + (a[3] << 4)
            continue
        if kind in (EventKind.MINT, EventKind.BURN):
            if a[1] <= tick < a[2]:
                liquidity += a[3] if kind is EventKind.MINT else -a[3]
            continue
        if kind is not EventKind.SWAP:
            continue
        t = dataset.timestamps[event.block_number] // interval * interval
        if t != cur_ts:
            flush()
            cur_ts = t
            o = h = lo = c = price
            f0 = f1 = v0 = v1 = fee_weight = fee_over_l = 0.0
        amount0, amount1, sqrt_price, liq_after, tick = a
        before_l = liquidity
        price = (sqrt_price / Q96) ** 2
        liquidity = liq_after
        h, lo, c = max(h, price), min(lo, price), price
        if amount0 > 0:
            share = 1.0 - (1.0 / (fee_protocol % 16) if fee_protocol % 16 else 0.0)
            paid = amount0 * fee * share
            f0 += paid
            v0 += amount0
            weight = paid * price
        elif amount1 > 0:
            share = 1.0 - (1.0 / (fee_protocol >> 4) if fee_protocol >> 4 else 0.0)
            paid = amount1 * fee * share
            f1 += paid
            v1 += amount1
            weight = paid
        else:
            continue
        mean_l = max((before_l + liq_after) / 2, 1.0)
        fee_weight += weight
        fee_over_l += weight / mean_l
    flush()
    return regular(
        rows,
        interval,
        fee=meta.fee,
        tick_spacing=meta.tick_spacing,
        decimals0=meta.decimals0,
        decimals1=meta.decimals1,
        symbol0=meta.symbol0,
        symbol1=meta.symbol1,
        source="events",
    )


def save_bars(bars: Bars, path: str | Path) -> None:
    with EventStore(path) as store:
        store.set_bars(bars.rows(), bars.info())


def load_bars(path: str | Path, *, interval: int = 60) -> Bars:
    """Bars stored in ``path``; a file with fetched events only gets them aggregated."""
    if not Path(path).is_file():
        raise NeedsAttention(f"{path}: no such dataset (lpbot data fetch or import-csv writes one)")
    with EventStore(path) as store:
        rows, info = store.bars()
        has_events = store.event_count() > 0
    if rows and info is not None:
        return regular(rows, int(info.pop("interval")), **info)
    if has_events:
        from lpbot.backtest.dataset import load_dataset

        return bars_from_events(load_dataset(path), interval)
    raise NeedsAttention(f"{path} holds neither bars nor events")
