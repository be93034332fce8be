"""A study: each strategy over many seeds and market regimes, as distributions, not one path.

Regimes cross annual volatility (40/80/120%), the pool's fee-to-LVR ratio (fees per unit of
in-range liquidity over LVR's ``sigma**2 / 4 * L sqrt P``, ``strategy.ev``: below 1 liquidity
loses to arbitrage whatever its width, above 1 it earns) and the path's shape (trending: a drift
of one volatility a year, up on even seeds and down on odd ones; mean-reverting: an
Ornstein-Uhlenbeck log-price with a one-day half-life). Each (regime, seed) is one synthetic
USDC/WETH 0.05% history (``synthetic.synthetic_minutes``, the pool's volume set for the ratio),
aggregated to 5-minute bars and run through the bars engine (``vector.run_bars``) for every
strategy at every chain's costs, $10,000 each, deciding hourly.

Reported per chain, regime and strategy: the median, quartiles and worst of the net result
against holding the deposit and against a passive full-range position (which pays its own way
in), as fractions of the capital. Float, analytics.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lpbot.backtest.bars import Bars
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.synthetic import MinuteHistory, synthetic_minutes
from lpbot.errors import LpbotError

FEE_PIPS = 500
TICK0 = 200_000  # USDC (6) / WETH (18): ~$2,060 an ETH
POOL_LIQUIDITY = 2 * 10**18
BAR_SECONDS = 300
SECONDS_PER_YEAR = 365 * 86_400

# name -> (strategy, policy): the app's default first; "before" is the default as it was (k = 2,
# rebalancing when the extra fees beat the costs, no LVR)
STRATEGIES: dict[str, tuple[StrategyConfig, dict[str, float | str | None]]] = {
    "default (vol_band auto)": (StrategyConfig(kind="vol_band"), {}),
    "before: vol_band k=2": (
        StrategyConfig(kind="vol_band", params={"k": 2.0}),
        {"rebalance_rule": "fees"},
    ),
    "fixed auto": (StrategyConfig(kind="fixed", params={"half_width_pct": "auto"}), {}),
    "fixed 5%": (StrategyConfig(kind="fixed", params={"half_width_pct": 5.0}), {}),
    "skewed auto": (StrategyConfig(kind="skewed"), {}),
    "full_range": (StrategyConfig(kind="full_range"), {}),
}
DEFAULT = "default (vol_band auto)"
BEFORE = "before: vol_band k=2"


@dataclass(frozen=True)
class Regime:
    """A market: annual volatility, fee-to-LVR ratio, path shape ("trend" or "mean_revert")."""

    vol: float
    fee_to_lvr: float
    path: str

    @property
    def name(self) -> str:
        return f"vol {self.vol:.0%}, fee/LVR {self.fee_to_lvr:g}, {self.path.replace('_', '-')}"


def regimes(
    vols: Sequence[float] = (0.4, 0.8, 1.2),
    ratios: Sequence[float] = (0.5, 2.0),
    paths: Sequence[str] = ("trend", "mean_revert"),
) -> list[Regime]:
    return [Regime(v, r, p) for v in vols for r in ratios for p in paths]


def median_volume_for(regime: Regime) -> float:
    """A minute's median raw WETH volume that gives the regime's fee-to-LVR ratio: fees per unit
    of liquidity a second ``mean volume / 60 * fee / L`` (lognormal volume: mean = median *
    e**0.5) over LVR ``sigma**2 / 4 * sqrt P``."""
    sigma2 = regime.vol**2 / SECONDS_PER_YEAR
    lvr = sigma2 / 4.0 * math.sqrt(1.0001**TICK0)
    return regime.fee_to_lvr * lvr * POOL_LIQUIDITY * 60.0 / (FEE_PIPS / 1e6 * math.exp(0.5))


def history_for(regime: Regime, seed: int, days: int) -> MinuteHistory:
    if regime.path == "trend":
        drift, halflife = (regime.vol if seed % 2 == 0 else -regime.vol), None
    elif regime.path == "mean_revert":
        drift, halflife = 0.0, 1.0
    elif regime.path == "driftless":
        drift, halflife = 0.0, None
    else:
        raise ValueError(f"unknown path {regime.path!r}: trend, mean_revert or driftless")
    return synthetic_minutes(
        days, seed=seed, tick0=TICK0, vol=regime.vol, liquidity=POOL_LIQUIDITY,
        median_volume1=median_volume_for(regime), drift=drift, reversion_halflife_days=halflife,
    )  # fmt: skip


def bars_of(h: MinuteHistory, interval: int = BAR_SECONDS) -> Bars:
    """``h`` aggregated to ``interval``-second bars (open, high, low, close, fees, volume)."""
    k = interval // 60
    n = len(h) // k * k

    def shaped(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return a[:n].reshape(-1, k)

    close_tick = shaped(h.close_tick)[:, -1]
    price = np.power(1.0001, np.stack([
        shaped(h.open_tick)[:, 0], shaped(h.high_tick).max(axis=1),
        shaped(h.low_tick).min(axis=1), close_tick,
    ]).astype(np.float64))  # fmt: skip
    in0, in1 = shaped(h.in0).sum(axis=1), shaped(h.in1).sum(axis=1)
    rate = FEE_PIPS / 1e6
    return Bars(
        ts=shaped(h.ts)[:, 0].copy(), interval=interval,
        open=price[0], high=price[1], low=price[2], close=price[3],
        liquidity=np.full(n // k, float(h.liquidity)), fee0=in0 * rate, fee1=in1 * rate,
        volume0=in0, volume1=in1, fee=FEE_PIPS, tick_spacing=10, decimals0=6, decimals1=18,
        symbol0="USDC", symbol1="WETH", source="synthetic", tick=close_tick.astype(np.int64),
    )  # fmt: skip


@dataclass(frozen=True)
class StudyRow:
    chain: str
    regime: str
    fee_to_lvr: float
    seed: int
    strategy: str
    net: float  # net return, a fraction of the capital
    vs_hold: float
    vs_full_range: float
    rebalances: int
    time_in_range: float
    ruined: bool
    error: str | None = None


def run_cell(
    regime: Regime, seed: int, days: int, chains: Sequence[str], strategies: Sequence[str]
) -> list[StudyRow]:
    """Every strategy at every chain's costs on one (regime, seed) history."""
    bars = bars_of(history_for(regime, seed, days))
    return _run_strategies(bars, regime.name, regime.fee_to_lvr, seed, chains, strategies)


def _run_strategies(
    bars: Bars,
    regime: str,
    fee_to_lvr: float,
    seed: int,
    chains: Sequence[str],
    strategies: Sequence[str],
) -> list[StudyRow]:
    from lpbot.backtest.vector import run_bars

    rows: list[StudyRow] = []
    for chain in chains:
        for name in strategies:
            strategy, policy = STRATEGIES[name]
            config = BacktestConfig(
                strategy=strategy, policy=policy, chain=chain, capital_usd=10_000.0,
                history_step_seconds=bars.interval, label=name,
            )  # fmt: skip
            try:
                m = run_bars(bars, config).metrics
            except LpbotError as exc:
                rows.append(StudyRow(chain, regime, fee_to_lvr, seed, name, math.nan,
                                     math.nan, math.nan, 0, 0.0, False, str(exc)))  # fmt: skip
                continue
            rows.append(StudyRow(
                chain, regime, fee_to_lvr, seed, name, m.net_return, m.lp_vs_hold,
                m.lp_vs_full_range, m.rebalances, m.time_in_range, m.ruined_at is not None,
            ))  # fmt: skip
    return rows


def _cell(args: tuple[Regime, int, int, tuple[str, ...], tuple[str, ...]]) -> list[StudyRow]:
    return run_cell(*args)


def study(
    *,
    seeds: int = 20,
    days: int = 30,
    chains: Sequence[str] = ("arbitrum", "ethereum"),
    strategies: Sequence[str] = tuple(STRATEGIES),
    market: Sequence[Regime] | None = None,
    workers: int | None = None,
) -> list[StudyRow]:
    """Run the study (module docstring); ``workers`` processes (1: in this process)."""
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; known: {list(STRATEGIES)}")
    cells = [
        (r, seed, days, tuple(chains), tuple(strategies))
        for r in (market if market is not None else regimes())
        for seed in range(seeds)
    ]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        return [row for c in cells for row in _cell(c)]
    with ProcessPoolExecutor(max_workers=min(workers, len(cells))) as pool:
        return [row for rows in pool.map(_cell, cells) for row in rows]


def measured_fee_to_lvr(bars: Bars) -> float:
    """A history's fee-to-LVR ratio (``strategy.ev.fee_to_lvr_ratio``): the fees its swaps paid
    per unit of in-range liquidity a second, over LVR at its realised volatility (the standard
    deviation of the bars' log closes, per second) and median price. Float, analytics."""
    from lpbot.strategy.ev import fee_to_lvr_ratio

    closes = np.asarray(bars.close, dtype=np.float64)
    liquidity = np.asarray(bars.liquidity, dtype=np.float64)
    if closes.size < 3 or not np.all(closes > 0) or not np.any(liquidity > 0):
        return math.nan
    sigma = float(np.std(np.diff(np.log(closes)))) / math.sqrt(bars.interval)
    seconds = float(bars.end[-1] - bars.ts[0])
    fees1 = float(np.sum(bars.fee0 * closes + bars.fee1))  # raw token1
    per_l = fees1 / float(np.mean(liquidity[liquidity > 0])) / seconds
    return fee_to_lvr_ratio(per_l, math.sqrt(float(np.median(closes))), sigma)


def history_windows(bars: Bars, days: int) -> list[Bars]:
    """``bars`` cut into consecutive windows of ``days`` (the last, shorter one dropped)."""
    from dataclasses import replace

    per = days * 86_400 // bars.interval
    if per < 2 or len(bars) < per:
        span = (len(bars) * bars.interval) / 86_400
        raise LpbotError(
            f"the history covers {span:.2f} days, less than one {days}-day window; "
            "give a smaller --days or fetch more"
        )
    arrays = ("ts", "open", "high", "low", "close", "liquidity", "fee0", "fee1", "volume0",
              "volume1")  # fmt: skip
    out = []
    for start in range(0, len(bars) - per + 1, per):
        cut = {k: getattr(bars, k)[start : start + per] for k in arrays}
        if bars.tick is not None:
            cut["tick"] = bars.tick[start : start + per]
        out.append(replace(bars, **cut))
    return out


def _history_cell(
    args: tuple[Bars, str, float, int, tuple[str, ...], tuple[str, ...]],
) -> list[StudyRow]:
    return _run_strategies(*args)


def study_history(
    bars: Bars,
    *,
    days: int,
    chains: Sequence[str] = ("arbitrum", "ethereum"),
    strategies: Sequence[str] = tuple(STRATEGIES),
    workers: int | None = None,
) -> list[StudyRow]:
    """The study on a pool's own history (``lpbot data fetch`` / ``import-csv``): every
    strategy over each consecutive ``days`` window, the windows in place of seeds. The regime
    is the history's, with its measured fee-to-LVR ratio (``measured_fee_to_lvr``)."""
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; known: {list(STRATEGIES)}")
    ratio = measured_fee_to_lvr(bars)
    pair = f"{bars.symbol0 or 'token0'}/{bars.symbol1 or 'token1'} {bars.fee / 1e4:g}%"
    name = f"history {pair} ({bars.source or 'dataset'}), measured fee/LVR {ratio:.2f}"
    cells = [
        (w, name, ratio, i, tuple(chains), tuple(strategies))
        for i, w in enumerate(history_windows(bars, days))
    ]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        return [row for c in cells for row in _history_cell(c)]
    with ProcessPoolExecutor(max_workers=min(workers, len(cells))) as pool:
        return [row for rows in pool.map(_history_cell, cells) for row in rows]


@dataclass(frozen=True)
class Summary:
    chain: str
    regime: str
    fee_to_lvr: float
    strategy: str
    runs: int
    vs_full_range: tuple[float, float, float, float]  # q1, median, q3, worst
    vs_hold: tuple[float, float, float, float]
    rebalances_median: float
    ruined: int
    errors: int


def _quartiles(values: Iterable[float]) -> tuple[float, float, float, float]:
    a = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    if a.size == 0:
        return (math.nan,) * 4
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return float(q1), float(med), float(q3), float(a.min())


def summarise(rows: Sequence[StudyRow]) -> list[Summary]:
    """Per chain, regime and strategy, in the rows' order."""
    groups: dict[tuple[str, str, float, str], list[StudyRow]] = {}
    for r in rows:
        groups.setdefault((r.chain, r.regime, r.fee_to_lvr, r.strategy), []).append(r)
    out = []
    for (chain, regime, ratio, strategy), rs in groups.items():
        out.append(Summary(
            chain, regime, ratio, strategy, len(rs),
            _quartiles(r.vs_full_range for r in rs), _quartiles(r.vs_hold for r in rs),
            float(np.median([r.rebalances for r in rs])), sum(r.ruined for r in rs),
            sum(r.error is not None for r in rs),
        ))  # fmt: skip
    return out


def render_markdown(summaries: Sequence[Summary]) -> str:
    """A Markdown table: points of the capital (median [q1, q3], worst) vs full range and hold."""

    def pts(q: tuple[float, float, float, float]) -> str:
        q1, med, q3, worst = (100 * v for v in q)
        return f"{med:+.2f} [{q1:+.2f}, {q3:+.2f}] {worst:+.2f}"

    lines = [
        "| chain | regime | strategy | vs full range: median [q1, q3] worst | vs hold: median "
        "[q1, q3] worst | rebalances (median) |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.chain} | {s.regime} | {s.strategy} | {pts(s.vs_full_range)} | "
            f"{pts(s.vs_hold)} | {s.rebalances_median:g} |"
        )
    return "\n".join(lines) + "\n"


def render_wide(summaries: Sequence[Summary]) -> str:
    """One row per chain and regime, one column per strategy: net vs passive full range in
    points of the capital, median [q1, q3] and worst, and the runs behind each."""
    names = list(dict.fromkeys(s.strategy for s in summaries))
    cells: dict[tuple[str, str], dict[str, Summary]] = {}
    for s in summaries:
        cells.setdefault((s.chain, s.regime), {})[s.strategy] = s
    head = "| chain | regime | runs | " + " | ".join(names) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(names)]
    for (chain, regime), row in cells.items():
        runs = max(s.runs for s in row.values())
        parts = []
        for n in names:
            if n not in row:
                parts.append("")
                continue
            q1, med, q3, worst = (100 * v for v in row[n].vs_full_range)
            parts.append(f"{med:+.2f} [{q1:+.2f}, {q3:+.2f}] {worst:+.2f}")
        lines.append(f"| {chain} | {regime} | {runs} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


TOLERANCE = 1e-4  # 0.01 points of the capital ($1 on $10,000): float rounding, not a result


def target_misses(summaries: Sequence[Summary], strategy: str = DEFAULT) -> list[str]:
    """Where ``strategy`` misses the target: its median net result at least passive full
    range's where fees are below LVR (within ``TOLERANCE``), above it where fees exceed LVR."""
    misses = []
    for s in summaries:
        if s.strategy != strategy:
            continue
        median = s.vs_full_range[1]
        if s.errors or not math.isfinite(median):
            misses.append(f"{s.chain}, {s.regime}: {s.errors} runs failed")
        elif s.fee_to_lvr < 1 and median < -TOLERANCE:
            misses.append(f"{s.chain}, {s.regime}: median {median:+.4%} below full range")
        elif s.fee_to_lvr > 1 and median <= 0:
            misses.append(f"{s.chain}, {s.regime}: median {median:+.4%} does not beat full range")
    return misses


def as_json(rows: Sequence[StudyRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
