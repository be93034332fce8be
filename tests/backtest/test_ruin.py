"""A run whose value falls to zero or below has no Sharpe or Sortino ratio; a capital that
cannot pay for its opening is refused."""

from __future__ import annotations

import numpy as np
import pytest

from lpbot.backtest.bars import Bars, regular
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.metrics import sharpe_sortino
from lpbot.backtest.synthetic import synthetic_minutes
from lpbot.backtest.vector import run_bars
from lpbot.errors import Refused


def test_a_series_that_goes_below_zero_has_no_ratio() -> None:
    values = np.array([9.0, 8.0, 7.0, -1.0, -2.0, -2.5, -3.0, -3.5, -4.0, -4.5, -5.0, -5.5])
    assert sharpe_sortino(10.0, values, 3600) == (None, None)
    assert sharpe_sortino(10.0, np.abs(values), 3600) != (None, None)


def _bars(days: int) -> Bars:
    h = synthetic_minutes(days, seed=3)
    rows = [
        (int(h.ts[i]), *(1.0001 ** float(t) for t in (h.open_tick[i], h.high_tick[i],
         h.low_tick[i], h.close_tick[i])), float(h.liquidity), h.in0[i] * 5e-4, h.in1[i] * 5e-4,
         float(h.in0[i]), float(h.in1[i]), int(h.close_tick[i]))
        for i in range(len(h))
    ]  # fmt: skip
    return regular(rows, 60, fee=500, tick_spacing=10, decimals0=6, decimals1=18,
                   symbol0="USDC", symbol1="WETH", source="test")  # fmt: skip


def test_capital_that_cannot_pay_the_opening_is_refused_not_run_to_a_negative_value() -> None:
    config = BacktestConfig().with_overrides({"capital_usd": 5.0})  # opening gas is ~$12
    with pytest.raises(Refused, match="all of the capital"):  # was: -$7.46, drawdown 255%
        run_bars(_bars(2), config)
    assert run_bars(_bars(2), config.with_overrides({"capital_usd": 50.0})).metrics.sharpe
