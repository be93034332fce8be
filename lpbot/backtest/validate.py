"""Engine (b) checked against engine (a): the same period, the same configuration.

The bars are aggregated from the very events engine (a) replays (``bars_from_events``), so the
comparison isolates the bars engine's approximations: fees from bar volume and liquidity share
(instead of each swap against the exact pool), a constant-liquidity pool for plans, and its
own liquidity adding no volume. Tolerances, for a position small beside the pool (below 1% of its
in-range liquidity) whose decisions coincide (same number of rebalances): fees within
``FEE_TOLERANCE`` (relative) and the final value within ``VALUE_TOLERANCE`` of the capital. A
large position earns more in engine (a), where prices follow history and its liquidity adds the
volume needed to move them (fees scale with ``(L_pool + L) / L_pool``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lpbot.backtest.bars import bars_from_events
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.exact import run_exact
from lpbot.backtest.ledger import BacktestResult
from lpbot.backtest.vector import run_bars

FEE_TOLERANCE = 0.10
VALUE_TOLERANCE = 0.0025


@dataclass(frozen=True)
class EngineComparison:
    fees_exact_usd: float
    fees_bars_usd: float
    fees_diff: float  # relative: bars / exact - 1
    value_exact_usd: float
    value_bars_usd: float
    value_diff: float  # (bars - exact) / capital
    rebalances_exact: int
    rebalances_bars: int
    time_in_range_exact: float
    time_in_range_bars: float

    @property
    def within_tolerance(self) -> bool:
        return abs(self.fees_diff) <= FEE_TOLERANCE and abs(self.value_diff) <= VALUE_TOLERANCE

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            **asdict(self),
            "fee_tolerance": FEE_TOLERANCE,
            "value_tolerance": VALUE_TOLERANCE,
            "within_tolerance": self.within_tolerance,
        }


def compare(exact: BacktestResult, bars: BacktestResult) -> EngineComparison:
    fa, fb = exact.breakdown.fees, bars.breakdown.fees
    return EngineComparison(
        fees_exact_usd=fa,
        fees_bars_usd=fb,
        fees_diff=fb / fa - 1.0 if fa else 0.0,
        value_exact_usd=exact.breakdown.final_usd,
        value_bars_usd=bars.breakdown.final_usd,
        value_diff=(bars.breakdown.final_usd - exact.breakdown.final_usd)
        / exact.breakdown.initial_usd,
        rebalances_exact=exact.metrics.rebalances,
        rebalances_bars=bars.metrics.rebalances,
        time_in_range_exact=exact.metrics.time_in_range,
        time_in_range_bars=bars.metrics.time_in_range,
    )


def compare_engines(
    dataset: Dataset, config: BacktestConfig, *, bar_interval: int = 60
) -> tuple[BacktestResult, BacktestResult, EngineComparison]:
    """Run both engines from the first bar of ``dataset``'s swaps; return both and the diff."""
    bars = bars_from_events(dataset, bar_interval)
    if config.start_timestamp is None:
        config = config.model_copy(update={"start_timestamp": int(bars.ts[0])})
    exact = run_exact(dataset, config)
    approx = run_bars(bars, config)
    return exact, approx, compare(exact, approx)
