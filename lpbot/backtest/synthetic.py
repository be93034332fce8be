"""Synthetic pool histories in demeter-fetch's minute CSV layout, for comparisons and tests.

``synthetic_minutes`` draws a geometric Brownian motion in ticks (one close tick a minute, the
minute's open, lowest and highest tick around it; optionally with a drift, or mean-reverting
as an Ornstein-Uhlenbeck log-price), lognormal swap volume split between the two
tokens and a constant in-range liquidity. ``write_demeter_csv`` writes it as demeter-fetch does:
one ``{chain}-{pool}-{YYYY-MM-DD}.minute.csv`` a UTC day, columns ``timestamp, netAmount0,
netAmount1, closeTick, openTick, lowestTick, highestTick, inAmount0, inAmount1,
currentLiquidity`` (zelos-alpha/demeter-fetch ``docs/specifation.md``, "1Min Resample Data").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DEMETER_HEADER = (
    "timestamp,netAmount0,netAmount1,closeTick,openTick,lowestTick,highestTick,"
    "inAmount0,inAmount1,currentLiquidity"
)
DAY = 86_400


@dataclass(frozen=True)
class MinuteHistory:
    """Minute rows of one pool; ticks are ints, amounts raw token units (ints)."""

    ts: NDArray[np.int64]  # each minute's start, unix seconds
    open_tick: NDArray[np.int64]
    high_tick: NDArray[np.int64]
    low_tick: NDArray[np.int64]
    close_tick: NDArray[np.int64]
    in0: NDArray[np.float64]  # whole raw units, as floats (token1's exceed int64)
    in1: NDArray[np.float64]
    liquidity: int

    def __len__(self) -> int:
        return int(self.ts.size)


def synthetic_minutes(
    days: int,
    *,
    seed: int = 7,
    start: int = 1_704_067_200,  # 2024-01-01 00:00 UTC
    tick0: int = 200_000,
    vol: float = 0.7,
    liquidity: int = 2 * 10**18,
    median_volume1: float = 1e19,
    decimals_ratio: float = 1e-12,
    drift: float = 0.0,
    reversion_halflife_days: float | None = None,
) -> MinuteHistory:
    """``days`` of minute bars (module docstring). ``vol`` is annualised; ``drift`` is the
    annual drift of the log-price (0: driftless); ``reversion_halflife_days`` pulls the
    log-price back to the start with that half-life (an Ornstein-Uhlenbeck process with the
    same instantaneous volatility).

    ``median_volume1`` is a minute's median raw token1 volume (10 WETH); token0's is converted
    at the minute's price times ``decimals_ratio`` (the defaults suit USDC (6) / WETH (18)
    as token0 / token1 around tick 200,000).
    """
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    rng = np.random.default_rng(seed)
    n = days * 1440
    sigma_ticks = vol * math.sqrt(60 / (365 * DAY)) / math.log(1.0001)
    mu_ticks = drift * 60 / (365 * DAY) / math.log(1.0001)
    steps = rng.normal(mu_ticks, sigma_ticks, n)
    if reversion_halflife_days is None:
        path = np.cumsum(steps)
    else:
        keep = 0.5 ** (1.0 / (reversion_halflife_days * 1440))  # per minute
        path = np.empty(n)
        x = 0.0
        for i in range(n):  # x_{i+1} = keep * x_i + step_i
            x = keep * x + steps[i]
            path[i] = x
    close = tick0 + np.rint(path).astype(np.int64)
    opened = np.concatenate(([tick0], close[:-1])).astype(np.int64)
    wiggle = np.rint(np.abs(rng.normal(0.0, sigma_ticks / 2, (2, n)))).astype(np.int64)
    high = np.maximum(opened, close) + wiggle[0]
    low = np.minimum(opened, close) - wiggle[1]
    volume1 = rng.lognormal(math.log(median_volume1), 1.0, n)
    price = 1.0001 ** close.astype(np.float64)  # raw token1 per raw token0
    zero_in = rng.random(n) < 0.5
    in1 = np.where(zero_in, 0.0, volume1)
    in0 = np.where(zero_in, volume1 / price, 0.0)
    return MinuteHistory(
        ts=start + 60 * np.arange(n, dtype=np.int64),
        open_tick=opened,
        high_tick=high,
        low_tick=low,
        close_tick=close,
        in0=np.floor(in0),
        in1=np.floor(in1),
        liquidity=liquidity,
    )


def write_demeter_csv(
    history: MinuteHistory, directory: str | Path, *, chain: str, pool: str
) -> list[Path]:
    """Write ``history`` as demeter-fetch's daily minute files; return their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    days = history.ts // DAY
    for day in np.unique(days):
        idx = np.flatnonzero(days == day)
        date = datetime.fromtimestamp(int(day) * DAY, tz=UTC).strftime("%Y-%m-%d")
        path = out / f"{chain}-{pool.lower()}-{date}.minute.csv"
        lines = [DEMETER_HEADER]
        for i in idx:
            stamp = datetime.fromtimestamp(int(history.ts[i]), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
            in0, in1 = int(history.in0[i]), int(history.in1[i])  # exact: floats of whole units
            price = 1.0001 ** int(history.close_tick[i])
            net0 = in0 if in0 else -round(in1 / price)
            net1 = in1 if in1 else -round(in0 * price)
            lines.append(
                f"{stamp},{net0},{net1},{history.close_tick[i]},"
                f"{history.open_tick[i]},{history.low_tick[i]},{history.high_tick[i]},"
                f"{in0},{in1},{history.liquidity}"
            )
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths
