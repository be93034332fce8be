"""The study (``lpbot backtest study``) on a small grid: the default strategy meets the target,
at least passive full range where fees are below LVR and better where they are above it.
``make nightly`` runs the whole grid (20 seeds, three volatilities, two path shapes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lpbot.backtest.study import (
    DEFAULT,
    TOLERANCE,
    Regime,
    bars_of,
    history_for,
    regimes,
    study,
    summarise,
    target_misses,
)
from lpbot.cli import main
from lpbot.strategy.ev import fee_to_lvr_ratio


@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_a_regime_has_the_fee_to_lvr_ratio_it_names(ratio: float) -> None:
    regime = Regime(0.8, ratio, "mean_revert")
    bars = bars_of(history_for(regime, 1, 3))
    seconds = float(bars.end[-1] - bars.ts[0])
    fees1 = float(np.sum(bars.fee0 * bars.close + bars.fee1))  # in raw token1
    per_l = fees1 / float(bars.liquidity[0]) / seconds
    sigma = 0.8 / math.sqrt(365 * 86_400)
    measured = fee_to_lvr_ratio(per_l, math.sqrt(float(np.median(bars.close))), sigma)
    assert measured == pytest.approx(ratio, rel=0.15)  # lognormal volume over three days
    # mean-reverting: the price stays near where it started
    assert abs(math.log(bars.close[-1] / bars.close[0])) < 0.3


def test_the_default_strategy_meets_the_target_on_a_small_grid() -> None:
    market = regimes(vols=(0.8,), ratios=(0.5, 2.0), paths=("trend",))
    rows = study(seeds=3, days=5, strategies=(DEFAULT, "full_range"), market=market, workers=1)
    assert len(rows) == 2 * 3 * 2 * 2 and all(r.error is None for r in rows)
    summaries = summarise(rows)
    assert target_misses(summaries) == []
    for s in summaries:
        if s.strategy == DEFAULT and s.fee_to_lvr < 1:  # it stays as wide as full range
            assert s.vs_full_range[1] >= -TOLERANCE and s.rebalances_median == 0
        if s.strategy == DEFAULT and s.fee_to_lvr > 1:
            assert s.vs_full_range[1] > 0.01  # more than a point of the capital in five days


def test_the_cli_writes_the_rows_and_the_table(tmp_path: Path) -> None:
    out, table = tmp_path / "rows.json", tmp_path / "table.md"
    argv = ["backtest", "study", "--seeds", "1", "--days", "2", "--vol", "0.8", "--fee-to-lvr",
            "0.5", "--path", "trend", "--chain", "arbitrum", "--strategy", "full_range",
            "--workers", "1", "--json-out", str(out), "--markdown-out", str(table)]  # fmt: skip
    assert main(argv) == 0
    (row,) = json.loads(out.read_text())
    assert row["strategy"] == "full_range" and row["chain"] == "arbitrum"
    assert abs(row["vs_full_range"]) < TOLERANCE
    assert "| arbitrum | vol 80%, fee/LVR 0.5, trend | full_range |" in table.read_text()
    assert main([*argv[:-4], "--strategy", "nope"]) != 0


def test_the_study_runs_on_a_pools_own_history(tmp_path: Path) -> None:
    """``--data``: a saved history (as ``lpbot data fetch`` or ``import-csv`` leaves one) is cut
    into consecutive windows, each a sample; its fee-to-LVR ratio is measured from it."""
    from lpbot.backtest.bars import load_bars, save_bars
    from lpbot.backtest.study import measured_fee_to_lvr

    bars = bars_of(history_for(Regime(0.8, 2.0, "mean_revert"), 3, 4))
    assert measured_fee_to_lvr(bars) == pytest.approx(2.0, rel=0.25)
    data = tmp_path / "pool.sqlite"
    save_bars(bars, data)
    out = tmp_path / "rows.json"
    argv = ["backtest", "study", "--data", str(data), "--days", "2", "--chain", "arbitrum",
            "--strategy", DEFAULT, "--strategy", "full_range", "--workers", "1",
            "--json-out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(out.read_text())
    assert sorted({r["seed"] for r in rows}) == [0, 1]  # two 2-day windows of four days
    assert len(rows) == 2 * 2 and all(r["error"] is None for r in rows)
    assert all(r["regime"].startswith("history USDC/WETH 0.05%") for r in rows)
    loaded = measured_fee_to_lvr(load_bars(data, interval=300))
    assert loaded == pytest.approx(measured_fee_to_lvr(bars), rel=1e-6)
    assert all(r["fee_to_lvr"] == pytest.approx(loaded) for r in rows)
    full = [r for r in rows if r["strategy"] == "full_range"]
    assert all(abs(r["vs_full_range"]) < TOLERANCE for r in full)


def test_a_history_shorter_than_a_window_or_with_a_synthetic_market_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lpbot.backtest.bars import save_bars

    data = tmp_path / "pool.sqlite"
    save_bars(bars_of(history_for(Regime(0.8, 2.0, "trend"), 1, 1)), data)
    assert main(["backtest", "study", "--data", str(data), "--days", "3", "--workers", "1"]) != 0
    assert "less than one 3-day window" in capsys.readouterr().err
    argv = ["backtest", "study", "--data", str(data), "--days", "1", "--vol", "0.4"]
    assert main(argv) != 0
    assert "--vol: the market of --data is its own history" in capsys.readouterr().err
    assert main(["backtest", "study", "--data", str(tmp_path / "none.sqlite")]) != 0
    assert "no such dataset" in capsys.readouterr().err
