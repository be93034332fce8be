"""Fees in one engine and none in the other is a disagreement, not a 0% gap."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from lpbot.backtest.validate import compare


def _result(fees: float, final: float) -> Any:
    return SimpleNamespace(
        breakdown=SimpleNamespace(fees=fees, final_usd=final, initial_usd=10_000.0),
        metrics=SimpleNamespace(rebalances=0, time_in_range=0.0),
    )


def test_bars_fees_against_no_exact_fees_fail_the_comparison() -> None:
    diff = compare(_result(0.0, 10_000.0), _result(20.0, 10_020.0))  # value within 0.25%
    assert not diff.within_tolerance  # was "fees +0.00%, within tolerance"
    assert diff.as_dict()["within_tolerance"] is False


def test_no_fees_in_either_engine_agree() -> None:
    assert compare(_result(0.0, 10_000.0), _result(0.0, 10_000.0)).within_tolerance


def test_the_json_of_such_a_gap_stays_json() -> None:
    import json

    diff = compare(_result(0.0, 10_000.0), _result(20.0, 10_020.0)).as_dict()
    assert json.loads(json.dumps(diff, allow_nan=False))["fees_diff"] is None


def test_a_bars_run_by_a_position_that_dominates_the_pool_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lpbot.backtest.config import BacktestConfig
    from lpbot.backtest.vector import run_bars
    from lpbot.cli.backtest import _print_result
    from tests.backtest.test_ruin import _bars

    big = run_bars(_bars(2), BacktestConfig().with_overrides({"capital_usd": 1e12}))
    _print_result(big)
    assert "warning: the position reaches 100.0% of the pool" in capsys.readouterr().out
    small = run_bars(_bars(2), BacktestConfig())
    _print_result(small)
    assert "warning" not in capsys.readouterr().out
