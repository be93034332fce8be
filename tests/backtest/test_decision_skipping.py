"""A refused rebalance is not priced again until something it depends on changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpbot.backtest import gate, vector
from lpbot.backtest.bars import Bars
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.vector import run_bars


def _drifting_bars(days: int, seed: int = 5) -> Bars:
    """WETH/USDC minute bars (token0 WETH) that drift 30% up over the first two days, then
    wander: a +-2% range opened at the start is left behind for good."""
    n = days * 1440
    rng = np.random.default_rng(seed)
    sigma = 0.5 * math.sqrt(60 / (365 * 86_400))
    drift = np.where(np.arange(n) < 2880, math.log(1.3) / 2880, 0.0)
    close = 3000e-12 * np.exp(np.cumsum(drift + rng.normal(0.0, sigma, n)))
    opened = np.concatenate(([close[0]], close[:-1]))
    v1 = rng.lognormal(math.log(2e9), 1.0, n)  # ~$2,000 a minute: a thin pool
    ts = 1_700_006_400 + 60 * np.arange(n, dtype=np.int64)
    return Bars(
        ts, 60, opened, np.maximum(opened, close), np.minimum(opened, close), close,
        np.full(n, 2e18), np.zeros(n), v1 * 5e-4, np.zeros(n), v1, 500, 10, 18, 6, "WETH",
        "USDC", "synthetic",
    )  # fmt: skip


CONFIG = BacktestConfig(
    strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 2.0}),
    policy={"vol_ratio_trigger": None},
    capital_usd=1_000.0,
    gas_price_gwei=30.0,
)


def test_an_out_of_range_month_prices_the_rebalance_a_few_times_not_hourly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bars = _drifting_bars(30)
    result = run_bars(bars, CONFIG)
    assert result.metrics.rebalances == 0 and result.metrics.time_in_range < 0.1
    hours = 30 * 24
    # old behaviour: decide() every hour out of range, each refused by the cost gate
    assert result.metrics.decisions < hours / 10
    assert result.notes["decisions_skipped_unchanged"] > hours * 0.8
    # the same run deciding every hour gives the same actions and the same value
    monkeypatch.setattr(vector, "refusal", lambda *a, **k: None)
    hourly = run_bars(bars, CONFIG)
    assert hourly.metrics.decisions > hours * 0.8
    assert [(a.timestamp, a.kind) for a in hourly.actions] == [
        (a.timestamp, a.kind) for a in result.actions
    ]
    assert hourly.breakdown.final_usd == pytest.approx(result.breakdown.final_usd, rel=1e-12)


def test_a_refusal_lapses_when_the_cost_falls_or_the_fees_rise() -> None:
    r = gate.Refusal(key=(True, False, False, False), rate_usd=1e-20, gas_usd=10.0, log_price=0.0)
    key = (True, False, False, False)
    assert r.holds(key, 1e-20, 10.0, 0.0)
    assert not r.holds((False, False, False, False), 1e-20, 10.0, 0.0)  # back in range
    assert not r.holds(key, 1.2e-20, 10.0, 0.0)  # fees up 20%
    assert not r.holds(key, 1e-20, 8.0, 0.0)  # gas down 20%
    assert not r.holds(key, 1e-20, 10.0, math.log(1.2))  # price up 20%
    assert r.holds(key, 1.05e-20, 9.5, math.log(1.05))


@pytest.mark.devnet
def test_the_exact_engine_skips_the_same_refusals_without_changing_the_result(
    market: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lpbot.backtest import exact
    from lpbot.backtest.exact import run_exact

    config = CONFIG.model_copy(update={"capital_usd": 300.0, "gas_price_gwei": 50.0})
    result = run_exact(market, config)
    assert result.notes["decisions_skipped_unchanged"] > 10
    monkeypatch.setattr(exact, "refusal", lambda *a, **k: None)
    hourly = run_exact(market, config)
    assert hourly.notes["decisions_skipped_unchanged"] == 0
    assert hourly.metrics.decisions > result.metrics.decisions
    assert [(a.timestamp, a.kind) for a in hourly.actions] == [
        (a.timestamp, a.kind) for a in result.actions
    ]
    assert hourly.breakdown.final_usd == pytest.approx(result.breakdown.final_usd, rel=1e-12)
