"""The two 50/50 figures of a backtest say which they are: the ledger's (the deposit split at
its marks, no transaction) and the metrics' benchmark, which pays its way in."""

from __future__ import annotations

from decimal import Decimal

from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.vector import run_bars
from tests.backtest.test_ruin import _bars


def test_the_ledgers_5050_is_labelled_without_costs_and_the_benchmark_pays_its_way() -> None:
    config = BacktestConfig().with_overrides({"capital_usd": 10_000.0})
    result = run_bars(_bars(2), config)
    assert result.ledger is not None
    lines = result.summary()["ledger_usd"]
    assert "hold_5050" not in lines
    no_costs = Decimal(lines["hold_5050_no_costs"])
    assert no_costs == result.ledger.usd.hold_5050
    # the benchmark's 50/50 ends lower by what it paid to get in (a swap's fee and gas)
    costed = Decimal(str(config.capital_usd * (1 + result.metrics.fifty_return)))
    assert Decimal(0) < no_costs - costed < Decimal(50)
