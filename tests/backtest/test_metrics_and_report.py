"""Performance numbers a user can trust: ratios on period log returns from the initial capital,
LP minus the benchmarks, costs by kind; a report with prices on a labelled axis."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.metrics import max_drawdown, sharpe_sortino
from lpbot.backtest.report import write_report
from lpbot.backtest.vector import run_bars
from tests.backtest.test_bars_and_costs import _synthetic_bars


def test_a_losing_run_has_no_positive_sharpe() -> None:
    """The old defect: +13.99 on a -0.11% return. The opening's gas took 0.12% before the first
    sample, then the value crept up; ratios of the samples alone missed the loss."""
    rng = np.random.default_rng(2)
    after_gas = 10_000.0 * (1 - 0.0012)
    values = after_gas + np.cumsum(np.abs(rng.normal(0.0, 0.005, 48)))
    assert values[-1] / 10_000.0 - 1 < 0  # a loss overall
    sharpe, sortino = sharpe_sortino(10_000.0, values, 3600.0)
    assert sharpe is not None and sharpe < 0 and sortino is not None and sortino < 0
    # a flat series (all in the stablecoin, out of range) has no ratio, not an infinite one
    assert sharpe_sortino(10_000.0, np.full(48, 10_000.0), 3600.0) == (None, None)
    assert sharpe_sortino(10_000.0, values[:5], 3600.0) == (None, None)  # too few periods
    assert max_drawdown(10_000.0, values) == pytest.approx(1 - values[0] / 10_000.0, rel=1e-12)


def test_ratios_are_annualised_log_return_ratios_for_the_stated_period() -> None:
    r = np.array([0.01, -0.005, 0.002, 0.004, -0.001, 0.003, 0.0, 0.006, -0.002, 0.001, 0.002])
    values = 100.0 * np.exp(np.cumsum(r))
    sharpe, sortino = sharpe_sortino(100.0, values, 86_400.0)
    scale = math.sqrt(365)
    assert sharpe == pytest.approx(r.mean() / r.std(ddof=1) * scale, rel=1e-9)
    assert sortino == pytest.approx(r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * scale)


def test_lp_minus_benchmarks_costs_and_report(tmp_path: Path) -> None:
    bars = _synthetic_bars(4 * 1440, seed=4)
    config = BacktestConfig(strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 1.0}),
                            policy={"min_gain_over_cost": 0.0,
            "rebalance_rule": "fees"})  # fmt: skip
    result = run_bars(bars, config)
    m, b = result.metrics, result.breakdown
    assert m.rebalances >= 1
    assert m.lp_vs_hold == pytest.approx(m.net_return - m.hold_return)  # was hold's own return
    assert m.lp_vs_fifty == pytest.approx(m.net_return - m.fifty_return)
    assert m.lp_vs_full_range == pytest.approx(m.net_return - m.full_range_return)
    assert m.period_seconds == 3600
    assert m.costs_usd["gas"] == pytest.approx(b.gas) and m.costs_usd["slippage"] > 0
    assert m.turnover > 0
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    write_report(result, html_path, json_path)
    page = html_path.read_text()
    assert page.count("time (UTC)") == 2 and "USDC per WETH" in page
    assert page.count('stroke-dasharray="3,3" stroke-width') == 2 * m.rebalances  # marked
    # the price axis is in USDC a WETH (~3,000), not ticks or raw ratios
    labels = [float(x.replace(",", "")) for x in re.findall(r'text-anchor="end">([\d,.]+)<', page)]
    assert any(2_000 < v < 4_000 for v in labels)
    assert "Costs by kind" in page and "LP minus hold" in page and "Sortino" in page
    summary = json.loads(json_path.read_text())
    for key in ("lp_vs_hold", "lp_vs_fifty", "lp_vs_full_range", "sortino", "period_seconds",
                "turnover", "costs_usd"):  # fmt: skip
        assert key in summary["metrics"]
    assert summary["metrics"]["lp_vs_hold"] == pytest.approx(m.lp_vs_hold)
    # the hold line is its own series, not the value line
    assert not np.allclose(result.series.hold, result.series.value)


def test_the_report_says_which_usd_marks_it_assumed(tmp_path: Path) -> None:
    # the bars hold pool prices only: USDC's USD mark is an assumption, said in both outputs
    bars = _synthetic_bars(2 * 1440, seed=5)
    config = BacktestConfig(strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 1.0}))
    result = run_bars(bars, config)
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    write_report(result, html_path, json_path)
    (said,) = json.loads(json_path.read_text())["assumptions"]
    assert said.startswith("USDC marked at $1 for the whole run (quote_usd, the default)")
    assert "no USD mark" in said
    assert "Assumed marks" in html_path.read_text() and "no USD mark" in html_path.read_text()
