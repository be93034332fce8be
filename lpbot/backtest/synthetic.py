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


# ------------------------------------------------------------------- a crash and its cascade


@dataclass(frozen=True)
class PerpSeries:
    """A perp market's data at regular times (each row at ``ts``, the end of its interval):
    the funding rate (a fraction per 8 hours), the open interest (USD) and the USD liquidated
    during the interval. Float, analytics."""

    ts: NDArray[np.int64]
    funding_rate_8h: NDArray[np.float64]
    open_interest_usd: NDArray[np.float64]
    liquidations_usd: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.ts.size)


@dataclass(frozen=True)
class CrashPath:
    """A pool history with a crash (``crash_minutes``), the perp's data over it, and when the
    crash started and ended (unix seconds)."""

    minutes: MinuteHistory
    perp: PerpSeries
    crash_start: int
    crash_end: int
    fall: float


def crash_minutes(
    days: int = 6,
    *,
    seed: int = 7,
    start: int = 1_704_067_200,
    tick0: int = 200_000,
    vol: float = 0.6,
    crash_at_hours: float = 60.0,
    crash_hours: float = 4.0,
    fall: float = 0.35,
    vol_spike: float = 4.0,
    calm_halflife_hours: float = 3.0,
    liquidity: int = 2 * 10**18,
    median_volume1: float = 1e19,
    open_interest_usd: float = 2e9,
    oi_flushed: float = 0.25,
    funding_rate_8h: float = 0.0001,
    crash_funding_8h: float = -0.003,
    median_liquidations_usd: float = 20_000.0,
) -> CrashPath:
    """Minute bars of a USDC/WETH-like pool whose volatile token (token1, WETH) falls by
    ``fall`` over ``crash_hours`` starting ``crash_at_hours`` in, with a liquidation cascade.

    Outside the crash the log-price is driftless with annualised volatility ``vol``. In the crash
    the fall is spread by a ``sin**2`` profile (slow, then fastest mid-way as liquidations feed
    it, then slowing), on top of noise at ``vol_spike`` times the volatility; after it the
    volatility decays back with ``calm_halflife_hours``. The tick rises as WETH falls (token1 per
    token0). Swap volume scales with the volatility. The perp: funding at ``funding_rate_8h``
    (with noise) driven to ``crash_funding_8h`` at the cascade's fastest, open interest that
    loses ``oi_flushed`` of itself to liquidations during the crash (each minute's share of the
    fall liquidates the same share of the flush) and recovers over the calm-down, and a small
    lognormal background of liquidations (median ``median_liquidations_usd`` a minute).
    """
    if not 0 < fall < 1:
        raise ValueError(f"fall must be in (0, 1), got {fall}")
    if days <= 0 or crash_hours <= 0 or crash_at_hours < 0:
        raise ValueError("days and crash_hours must be > 0, crash_at_hours >= 0")
    n = days * 1440
    c0 = int(crash_at_hours * 60)
    c1 = c0 + int(crash_hours * 60)
    if c1 >= n:
        raise ValueError(f"the crash ends after the {days} days")
    rng = np.random.default_rng(seed)
    minute = np.arange(n)
    sigma_ticks = vol * math.sqrt(60 / (365 * DAY)) / math.log(1.0001)
    # the volatility multiplier: vol_spike in the crash, decaying back after it
    after = np.clip(minute - c1, 0, None) / (calm_halflife_hours * 60)
    level = np.where(minute < c0, 1.0, 1.0 + (vol_spike - 1.0) * np.exp2(-after))
    # the fall's profile: sin**2 over the crash, summing to 1
    phase = np.where((minute >= c0) & (minute < c1), (minute - c0 + 0.5) / (c1 - c0), 0.0)
    weight = np.where(phase > 0, np.sin(math.pi * phase) ** 2, 0.0)
    weight /= weight.sum()
    fall_ticks = -math.log(1.0 - fall) / math.log(1.0001)
    steps = rng.normal(0.0, 1.0, n) * sigma_ticks * level + fall_ticks * weight
    close = tick0 + np.rint(np.cumsum(steps)).astype(np.int64)
    opened = np.concatenate(([tick0], close[:-1])).astype(np.int64)
    wiggle = np.rint(np.abs(rng.normal(0.0, 1.0, (2, n))) * sigma_ticks * level / 2)
    high = np.maximum(opened, close) + wiggle[0].astype(np.int64)
    low = np.minimum(opened, close) - wiggle[1].astype(np.int64)
    volume1 = rng.lognormal(math.log(median_volume1), 1.0, n) * level
    price = 1.0001 ** close.astype(np.float64)
    zero_in = rng.random(n) < np.where(weight > 0, 0.8, 0.5)  # the crash sells WETH: token1 in
    in1 = np.where(zero_in, 0.0, volume1)
    in0 = np.where(zero_in, volume1 / price, 0.0)
    history = MinuteHistory(
        ts=start + 60 * minute.astype(np.int64),
        open_tick=opened,
        high_tick=high,
        low_tick=low,
        close_tick=close,
        in0=np.floor(in0),
        in1=np.floor(in1),
        liquidity=liquidity,
    )
    flushed = open_interest_usd * oi_flushed * weight  # USD liquidated by the cascade, a minute
    recovery = np.where(minute >= c1, 1.0 - np.exp2(-after), 0.0)
    oi = open_interest_usd * (1.0 - oi_flushed * (np.cumsum(weight) * (1.0 - recovery)))
    oi *= 1.0 + 0.002 * np.cumsum(rng.normal(0.0, 1.0, n)) / math.sqrt(1440)
    background = rng.lognormal(math.log(median_liquidations_usd), 1.0, n) * level
    speed = weight / weight.max()
    funding = funding_rate_8h * (1.0 + 0.2 * rng.normal(0.0, 1.0, n)) + (
        crash_funding_8h - funding_rate_8h
    ) * np.maximum(speed, (level - 1.0) / vol_spike * 0.3)
    perp = PerpSeries(
        ts=history.ts + 60,
        funding_rate_8h=funding,
        open_interest_usd=oi,
        liquidations_usd=background + flushed,
    )
    return CrashPath(history, perp, start + 60 * c0, start + 60 * c1, fall)
