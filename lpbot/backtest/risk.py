"""The market regime in the backtester: the live regime code on the bars' market signals.

``regime_path`` runs ``lpbot.risk.regime.RegimeTracker`` (the code the daemon runs) over a run's
bars as the daemon would: on every decision bar (a multiple of ``decision_interval_seconds``),
on every tick of the daemon's monitor (``monitor_seconds``, its ``[schedule] monitor_seconds``)
and, while the regime is not normal, at every multiple of ``stress_monitor_seconds``; a tick
acts on the first bar ending at or after it (every bar when the period is shorter). At each
evaluation it measures, from the bars up to then (nothing later):

- realised volatility over the last 5 and 30 minutes against its baseline over the last
  ``BASELINE_SECONDS`` (``sqrt(sum r**2 / span)`` of the bars' close-to-close log-returns, as
  ``regime.realised_volatility`` computes it);
- the close's distance from the pool's TWAP over ``TWAP_SECONDS`` (the mean log-price of the
  closes: a geometric mean, as the pool's oracle averages ticks);
- the pool's swap volume over the last ``WINDOW_SECONDS`` against the same span's share of its
  volume over ``BASELINE_SECONDS`` (USD, at each bar's close; the span the window's bars cover,
  a whole bar when it is longer than the window);
- from a ``PerpSeries`` when the run has one: the funding rate, the open interest's change over
  ``WINDOW_SECONDS`` and liquidations over ``WINDOW_SECONDS`` against their baseline share.

The position's VaR and the hedge's liquidation distance depend on the position and are left out
here (None): the backtest's regime is the market's. A window that holds fewer than two bars
(5-minute volatility on 5-minute bars, anything under an hour on hour bars) gives no reading;
``RegimePath.unavailable`` lists the market's signals that never had one. The inputs depend on
market data only, so the path is computed once per run and is the same for every engine and
strategy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from lpbot.analytics.types import FloatArray
from lpbot.backtest.bars import Bars
from lpbot.backtest.costs import HedgeBook, HedgeModel
from lpbot.backtest.synthetic import PerpSeries
from lpbot.risk.actions import LevelActions
from lpbot.risk.regime import (
    MARKET_SIGNALS,
    SIGNALS,
    Level,
    RegimeConfig,
    RegimeInputs,
    RegimeTracker,
)

BASELINE_SECONDS = 86_400
WINDOW_SECONDS = 1_800
TWAP_SECONDS = 1_800
VOL_WINDOWS = (300, 1_800)


@dataclass(frozen=True)
class Transition:
    """The regime changed at bar ``bar`` (its end time ``t``) to ``level``, for ``reasons``."""

    bar: int
    t: int
    level: Level
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"t": self.t, "level": self.level.label, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class RegimePath:
    """The regime in force after each bar (``level``, int8 of ``Level``), its transitions,
    how many evaluations were made, and the market's signals never measured (``unavailable``:
    bars too coarse for their window, or no perp data)."""

    level: NDArray[np.int8]
    transitions: tuple[Transition, ...]
    evaluations: int
    seconds_in: dict[str, float] = field(default_factory=dict)
    unavailable: tuple[str, ...] = ()

    def at(self, j: int) -> Level:
        return Level(int(self.level[j]))


class MarketSignals:
    """The regime's market inputs at any bar (``inputs(j)``, module docstring), from prefix sums
    over the bars so that each evaluation's windows cost O(log n)."""

    def __init__(self, bars: Bars, perp: PerpSeries | None, quote_token: int) -> None:
        self.end = bars.end.astype(np.float64)
        ln = np.log(bars.close)
        self.ln = ln
        r = np.diff(ln, prepend=ln[0])
        self.r2 = np.concatenate(([0.0], np.cumsum(r * r)))
        self.ln_sum = np.concatenate(([0.0], np.cumsum(ln)))
        # volume in whole quote tokens at each bar's close: only its ratio counts
        price = bars.close  # raw token1 per raw token0
        if quote_token == 1:
            vol_quote = (bars.volume0 * price + bars.volume1) / 10.0**bars.decimals1
        else:
            vol_quote = (bars.volume0 + bars.volume1 / price) / 10.0**bars.decimals0
        self.volume = np.concatenate(([0.0], np.cumsum(vol_quote)))
        self.perp = perp
        if perp is not None:
            self.p_end = perp.ts.astype(np.float64)
            self.liq = np.concatenate(([0.0], np.cumsum(perp.liquidations_usd)))

    def _index(self, t: float) -> int:
        """Bars ending at or before ``t``: ``[0, index)``."""
        return int(np.searchsorted(self.end, t, side="right"))

    def _vol(self, hi: int, seconds: float) -> float | None:
        lo = self._index(self.end[hi - 1] - seconds)
        if hi - lo < 2:
            return None
        lo = max(lo, 1)  # the first bar has no return
        span = self.end[hi - 1] - self.end[lo - 1]
        return math.sqrt((self.r2[hi] - self.r2[lo]) / span) if span > 0 else None

    def _window_ratio(
        self, sums: FloatArray, ends: FloatArray, now: float
    ) -> tuple[float, float] | None:
        hi = int(np.searchsorted(ends, now, side="right"))
        lo_w = int(np.searchsorted(ends, now - WINDOW_SECONDS, side="right"))
        lo_b = int(np.searchsorted(ends, now - BASELINE_SECONDS, side="right"))
        if hi == 0 or hi - lo_b < 2:
            return None
        step = float(ends[1] - ends[0]) if ends.size > 1 else 0.0
        span_b = float(ends[hi - 1] - ends[lo_b]) + step
        # the time the window's rows cover: a row longer than the window counts whole
        span_w = float(ends[hi - 1] - ends[lo_w]) + step if hi > lo_w else 0.0
        if not (span_b > 0 and span_w > 0):
            return None
        window = float(sums[hi] - sums[lo_w])
        baseline = float(sums[hi] - sums[lo_b]) * span_w / span_b
        return window, baseline

    def inputs(self, j: int) -> RegimeInputs:
        hi = j + 1
        now = float(self.end[j])
        short, long = (self._vol(hi, w) for w in VOL_WINDOWS)
        baseline = self._vol(hi, BASELINE_SECONDS)
        lo_twap = self._index(now - TWAP_SECONDS)
        deviation = None  # a TWAP of the close alone is no reading
        if hi - lo_twap >= 2:
            twap_ln = (self.ln_sum[hi] - self.ln_sum[lo_twap]) / (hi - lo_twap)
            deviation = (math.exp(float(self.ln[j] - twap_ln)) - 1.0) * 1e4
        volume = self._window_ratio(self.volume, self.end, now)
        funding = oi_change = None
        liq: tuple[float, float] | None = None
        if self.perp is not None:
            p = self.perp
            k = int(np.searchsorted(self.p_end, now, side="right")) - 1
            if k >= 0:
                funding = float(p.funding_rate_8h[k])
                k0 = int(np.searchsorted(self.p_end, now - WINDOW_SECONDS, side="right")) - 1
                if k0 >= 0 and p.open_interest_usd[k0] > 0:
                    oi_change = float(p.open_interest_usd[k] / p.open_interest_usd[k0] - 1.0) * 100
                liq = self._window_ratio(self.liq, self.p_end, now)
        return RegimeInputs(
            vol_5m=short,
            vol_30m=long,
            vol_baseline=baseline,
            twap_deviation_bps=deviation,
            volume_usd=None if volume is None else volume[0],
            volume_baseline_usd=None if volume is None else volume[1],
            funding_rate_8h=funding,
            open_interest_change_pct=oi_change,
            liquidations_usd=None if liq is None else liq[0],
            liquidations_baseline_usd=None if liq is None else liq[1],
        )


def regime_path(
    bars: Bars,
    config: RegimeConfig,
    *,
    decision_interval_seconds: int,
    stress_monitor_seconds: int,
    monitor_seconds: int = 60,
    perp: PerpSeries | None = None,
    quote_token: int = 1,
) -> RegimePath:
    """The regime over ``bars`` (module docstring); the first ``BASELINE_SECONDS`` build the
    baselines and are evaluated like any other time."""
    signals = MarketSignals(bars, perp, quote_token)
    tracker = RegimeTracker(config)
    n = len(bars)
    levels = np.zeros(n, dtype=np.int8)
    end = bars.end
    decision = end % decision_interval_seconds == 0
    # the monitor's ticks at multiples of its period, each acted on at the first bar ending at
    # or after it (every bar when the period is shorter than a bar)
    monitor = end // stress_monitor_seconds != (end - bars.interval) // stress_monitor_seconds
    watch = end // monitor_seconds != (end - bars.interval) // monitor_seconds
    transitions: list[Transition] = []
    evaluations = 0
    level = Level.NORMAL
    seconds = dict.fromkeys((lv.label for lv in Level), 0.0)
    seen: set[str] = set()
    for j in range(n):
        if decision[j] or watch[j] or (level is not Level.NORMAL and monitor[j]):
            evaluations += 1
            measured = signals.inputs(j).signals()
            seen.update(measured)
            state = tracker.update(measured, float(end[j]))
            if state.level is not level:
                transitions.append(Transition(j, int(end[j]), state.level, state.reasons))
                level = state.level
        levels[j] = level
        seconds[level.label] += bars.interval
    unavailable = tuple(s.name for s in SIGNALS if s.name not in seen and s.name in MARKET_SIGNALS)
    return RegimePath(levels, tuple(transitions), evaluations, seconds, unavailable)


def apply_hedge_actions(
    book: HedgeBook, base: HedgeModel, actions: LevelActions, price_usd: float, exposure: float
) -> None:
    """Set the hedge a level asks for (``lpbot.risk.actions``) on ``book``: the configured
    hedge ``base`` with its band times the level's factor; stressed ``"flatten"`` closes the perp
    now and keeps it flat, ``"resize"`` trades it to ``-ratio x exposure`` (volatile tokens
    held) now. Nothing without a hedge (``base.ratio == 0``)."""
    if base.ratio <= 0:
        return
    book.model = dataclasses.replace(base, band=base.band * actions.hedge_band_factor)
    if actions.hedge == "flatten":
        book.model = dataclasses.replace(book.model, ratio=0.0)
        book.trade_to(0.0, price_usd)
    elif actions.hedge == "resize":
        book.trade_to(-base.ratio * exposure, price_usd)
