"""Speed of the market regime: one evaluation.

Targets (2-core machine): ``RegimeTracker.update`` on every signal well under 0.1 ms; one
evaluation in the backtester (the signals measured from a day of minute bars and the perp's
series, then the update) under 1 ms. The issue's whole-tick budget (with pool depth over 200
initialized ticks) is 5 ms. Run with ``make bench``.
"""

from __future__ import annotations

from itertools import count

from pytest_benchmark.fixture import BenchmarkFixture

from lpbot.backtest.risk import MarketSignals
from lpbot.backtest.study import bars_of
from lpbot.backtest.synthetic import crash_minutes
from lpbot.risk.regime import RegimeConfig, RegimeInputs, RegimeTracker

INPUTS = RegimeInputs(
    vol_5m=3.1e-4, vol_30m=2.2e-4, vol_baseline=1.0e-4, var_1m_pct=0.8, var_5m_pct=2.1,
    var_30m_pct=4.0, twap_deviation_bps=-85.0, volume_usd=4.0e6, volume_baseline_usd=1.1e6,
    funding_rate_8h=-0.0007, open_interest_change_pct=-6.5, liquidations_usd=3.0e6,
    liquidations_baseline_usd=2.0e5, hedge_liquidation_distance_pct=24.0,
)  # fmt: skip


def test_regime_update(benchmark: BenchmarkFixture) -> None:
    tracker = RegimeTracker(RegimeConfig())
    clock = count(start=1_700_000_000, step=60)
    state = benchmark(lambda: tracker.update(INPUTS, next(clock)))
    assert state.level.label == "elevated"


def test_regime_evaluation_from_bars(benchmark: BenchmarkFixture) -> None:
    path = crash_minutes(2, crash_at_hours=30.0)
    bars = bars_of(path.minutes, 60)
    signals = MarketSignals(bars, path.perp, quote_token=0)
    tracker = RegimeTracker(RegimeConfig())
    j = len(bars) - 1
    clock = count(start=int(bars.end[j]), step=1)
    state = benchmark(lambda: tracker.update(signals.inputs(j), next(clock)))
    assert state.level.label in ("normal", "elevated", "stressed")
