"""Fees in one engine and none in the other is a disagreement, not a 0% gap."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

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
