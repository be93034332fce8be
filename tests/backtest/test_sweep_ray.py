"""Sweeps on a local Ray instance give the rows the process pool gives, in the grid's order."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lpbot.backtest.bars import save_bars
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.sweep import sweep
from lpbot.cli import backtest as commands
from tests.backtest.test_bars_and_costs import _synthetic_bars

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason='Ray is not installed (pip install -e ".[ray]")',
)


@needs_ray
def test_a_sweep_on_local_ray_matches_the_process_pool(tmp_path: Path) -> None:
    path = tmp_path / "bars.sqlite"
    save_bars(_synthetic_bars(3 * 1440), path)
    grid = {"strategy.half_width_pct": [2.0, 5.0, 150.0], "policy.edge_pct": [None, 1.0]}
    base = BacktestConfig()
    on_ray = sweep(grid, path, base, executor="ray", workers=2)
    here = sweep(grid, path, base, workers=1)
    assert [r.params for r in on_ray] == [r.params for r in here]
    assert [r.metrics for r in on_ray] == [r.metrics for r in here]
    assert [r.error is not None for r in on_ray] == [False, False, False, False, True, True]


def test_the_executor_comes_from_the_options_or_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"capital_usd": 5000, "sweep": {"executor": "ray",
                                "ray_address": "ray://head:10001"}}))  # fmt: skip
    common = ["--data", "x.sqlite", "--grid", "strategy.half_width_pct=2"]
    args = commands.parse(commands.sweep, [*common, "--backtest-config", str(conf)])
    assert commands.sweep_executor(args) == ("ray", "ray://head:10001")
    assert commands._config(args).capital_usd == 5000  # the section is not a config field
    args = commands.parse(
        commands.sweep, [*common, "--backtest-config", str(conf), "--executor", "process"]
    )
    assert commands.sweep_executor(args)[0] == "process"
    assert commands.sweep_executor(commands.parse(commands.sweep, common)) == ("process", None)
