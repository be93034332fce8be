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
