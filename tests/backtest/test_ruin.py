"""A run whose value falls to zero or below has no Sharpe or Sortino ratio; a capital that
cannot pay for its opening is refused."""

from __future__ import annotations

import numpy as np
import pytest

from lpbot.backtest.bars import Bars, regular
from lpbot.backtest.config import BacktestConfig, StrategyConfig
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


# ------------------------------------------------------------------- ruin, the first dollar

RUINOUS = BacktestConfig(
    strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 0.3}),
    policy={
        "min_gain_over_cost": 0.0,
        "edge_pct": None,
        "vol_ratio_trigger": None,
        "rebalance_rule": "fees",
    },  # re-centre whatever the LVR, to reach the ruin
    capital_usd=60.0,  # Ethereum gas: ~$18 to open, ~$27 a rebalance
)


def test_a_run_stops_at_zero_equity_and_reports_the_ruin() -> None:
    bars = _bars(3)
    result = run_bars(bars, RUINOUS)
    m, s, b = result.metrics, result.series, result.breakdown
    assert m.ruined_at is not None
    # the series ends at the ruin, the only point at or below zero; nothing is done after it
    assert s.t[-1] == m.ruined_at < float(bars.end[-1])
    assert s.value[-1] <= 0 and np.all(s.value[:-1] > 0)
    assert all(a.timestamp <= m.ruined_at for a in result.actions)
    assert m.net_return == -1.0 and m.max_drawdown == 1.0
    assert (m.sharpe, m.sortino) == (None, None)
    assert result.summary()["metrics"]["ruined_at"] == m.ruined_at
    # the ledger still explains every dollar up to the ruin
    assert b.final_usd - b.initial_usd == pytest.approx(b.total, abs=1e-9 * b.initial_usd)
    assert s.value[-1] == pytest.approx(b.final_usd, abs=1e-9 * b.initial_usd)
    # with the capital to pay its way the same bot runs to the end
    rich = run_bars(bars, RUINOUS.with_overrides({"capital_usd": 100_000.0}))
    assert rich.metrics.ruined_at is None and rich.series.t[-1] == float(bars.end[-1])
    assert len(rich.actions) > len(result.actions)


def test_the_value_series_starts_from_the_first_dollar() -> None:
    config = BacktestConfig(strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 2.0}),
                            capital_usd=1_000.0, slippage_bps=5.0)  # fmt: skip
    result = run_bars(_bars(2), config)
    s, m, b = result.series, result.metrics, result.breakdown
    opened = result.actions[0]
    assert s.t[0] == opened.timestamp
    # the capital before any cost, for the bot and every benchmark alike
    for col in (s.value, s.hold, s.fifty, s.volatile, s.full_range):
        assert col[0] == b.initial_usd
    assert s.gas[0] == 0 and s.gas[1] == pytest.approx(opened.gas_usd)  # paid in period 1
    assert opened.gas_usd > 0.01 * b.initial_usd  # a cost the ratios must see
    # Sharpe and Sortino: log returns per decision interval from the capital
    assert m.period_seconds == 3600
    assert (m.sharpe, m.sortino) == sharpe_sortino(s.value[0], s.value[1:], 3600)
    assert m.max_drawdown >= 1 - s.value[1] / s.value[0]


def test_sharpe_has_the_sign_of_the_mean_log_return() -> None:
    rng = np.random.default_rng(11)
    noise = rng.normal(0.0, 0.002, 200)
    for drift, sign in ((0.001, 1), (-0.001, -1)):
        r = drift + noise - noise.mean()  # mean log return exactly ``drift``
        values = 1_000.0 * np.exp(np.cumsum(r))
        sharpe, sortino = sharpe_sortino(1_000.0, values, 86_400)
        assert sharpe is not None and sortino is not None
        assert np.sign(sharpe) == np.sign(sortino) == sign
        assert sharpe == pytest.approx(drift / r.std(ddof=1) * np.sqrt(365), rel=1e-9)
    # a run that ends below its capital has a negative Sharpe even if it rose after the costs
    values = 1_000.0 * (1 - 0.02) + np.linspace(0.0, 10.0, 30)
    sharpe, _ = sharpe_sortino(1_000.0, values, 3600)
    assert values[-1] < 1_000.0 and sharpe is not None and sharpe < 0


def test_benchmarks_pay_their_own_way_in() -> None:
    from lpbot.backtest.ledger import Accountant
    from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

    bars = _bars(1)
    config = BacktestConfig(
        capital_usd=10_000.0, volatile_share=1.0, quote_token=0, slippage_bps=5.0,
        gas_price_gwei=10.0, native_usd=3_000.0,
    )  # fmt: skip
    acc = Accountant(config, decimals0=bars.decimals0, decimals1=bars.decimals1,
                     tick_spacing=bars.tick_spacing, pool_info=bars.info())  # fmt: skip
    tick = int(np.floor(np.log(bars.close[0]) / np.log(1.0001)))
    sqrt = get_sqrt_ratio_at_tick(tick)
    price = (sqrt / 2**96) ** 2
    amounts = acc.initial_amounts(price)
    acc.start(price, sqrt, amounts, 0.0)
    u0, u1 = acc.unit_usd(price)
    v = acc.initial_usd
    gas = 10e-9 * 3_000.0
    rate = 500 / 1e6 + 5 / 1e4  # the pool's 0.05% and 5 bps of slippage on what is sold
    costs = acc.benchmark_costs
    # all volatile already: holding it and all-volatile cost nothing; 50/50 sells half
    assert "hold" not in costs and costs["volatile"] == 0.0
    assert costs["fifty"] == pytest.approx(v / 2 * rate + 150_000 * gas)
    assert costs["full_range"] == pytest.approx(v / 2 * rate + (450_000 + 150_000) * gas)
    assert acc.fifty[0] * u0 + acc.fifty[1] * u1 == pytest.approx(v - costs["fifty"])
    fr = acc.full_range_value(sqrt, price, 0.0, 0.0)
    assert fr == pytest.approx(v - costs["full_range"], rel=1e-9)
