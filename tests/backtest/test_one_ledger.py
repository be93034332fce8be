"""A backtest's breakdown is the live ledger's: the same flows, recorded the live way and read
back from the store, give the same ledger, and its lines add up exactly."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from lpbot.analytics.ledger import compute_ledger
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.ledger import BacktestResult
from lpbot.backtest.vector import run_bars
from lpbot.jobs import ledger as ledger_store
from lpbot.jobs.tasks import _flow
from lpbot.store import migrate
from lpbot.store.session import make_engine, session_factory
from tests.backtest.test_bars_and_costs import _synthetic_bars


def _run(**overrides: object) -> BacktestResult:
    config = BacktestConfig(
        strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 1.0}),
        policy={"min_gain_over_cost": 0.0, "rebalance_rule": "fees"},
        hedge_ratio=0.5,
        slippage_bps=3.0,
        **overrides,  # type: ignore[arg-type]
    )
    return run_bars(_synthetic_bars(4 * 1440, seed=4), config)


def test_backtest_flows_recorded_the_live_way_give_the_same_ledger(tmp_path: Path) -> None:
    result = _run()
    flows, led = result.flows, result.ledger
    assert flows is not None and led is not None
    assert result.metrics.rebalances >= 2 and len(flows.rebalances) == len(result.actions)
    # the live monitor's record: the deposit, then each rebalance's flows and gas in the store
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        ledger_store.record_deposit(
            s, "bt", deposit=flows.deposit, decimals=flows.decimals, symbols=("WETH", "USDC"),
            marks=flows.entry,
        )  # fmt: skip
        for i, (flow, gas) in enumerate(zip(flows.rebalances, flows.gas, strict=True)):
            ledger_store.record_rebalance(s, "bt", flow, gas, block=i + 1, timestamp=i + 1)
    with sessions() as s:
        start = ledger_store.load(s, "bt")
    assert start is not None
    live = compute_ledger(
        decimals=start.decimals,
        deposit=start.deposit,
        entry=start.entry,
        rebalances=[f for _, f, _ in start.rebalances if f is not None],
        principal=flows.principal,
        uncollected=flows.uncollected,
        marks=flows.marks,
        gas=[g for _, _, g in start.rebalances],
        hedge=flows.hedge,
    )
    assert live.exact == led.exact
    assert live.usd == led.usd and live.eth == led.eth
    # a reconciled live rebalance's result, read by the live code, is the backtest's flow
    for flow in flows.rebalances[1:]:
        result_dict = {
            "decreased": list(flow.burned),
            "collected": [flow.burned[i] + flow.fees[i] for i in (0, 1)],
            "swap": [flow.swap_in[i] - flow.swap_out[i] for i in (0, 1)],
            "minted": list(flow.minted),
        }
        read = _flow(result_dict, flow.marks)
        assert (read.burned, read.fees, read.swap_in, read.swap_out, read.minted) == (
            flow.burned, flow.fees, flow.swap_in, flow.swap_out, flow.minted,
        )  # fmt: skip


def test_the_breakdown_lines_add_up_to_net_against_hold() -> None:
    result = _run()
    led, b, s = result.ledger, result.breakdown, result.series
    assert led is not None
    u = led.usd  # Decimals to the cent: exact
    value_less_hold = u.value + u.hedge_pnl + u.funding - u.gas - u.slippage - u.hold
    assert abs(u.net - value_less_hold) <= Decimal("0.03")  # each figure rounded on its own
    assert u.net == led.exact.net.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert u.net == u.fees + u.il + u.hedge_pnl + u.funding - u.gas - u.swap_costs - u.slippage
    assert u.swap_costs > 0 and u.slippage > 0 and u.gas > 0 and u.hedge_pnl != 0
    f = led.exact  # unrounded: the identity to 1e-12 USD
    explained = f.fees + f.il + f.hedge_pnl + f.funding - f.gas - f.swap_costs - f.slippage
    assert abs(f.net - explained) < Decimal("1e-12")
    # the backtest's floats (analytics): within 1e-9 of the capital
    tol = 1e-9 * b.initial_usd
    assert b.final_usd - b.initial_usd == pytest.approx(b.total, abs=tol)
    assert b.final_usd - b.hold_usd == pytest.approx(float(f.net), abs=tol)
    assert s.value[-1] == pytest.approx(b.final_usd, abs=tol)
    # the swap fee and impact are the swap costs' two parts; the opening's swap is one of them
    assert b.swap_fees + b.price_impact == pytest.approx(b.swap_costs, rel=1e-9)
    assert result.actions[0].swap_amount_in > 0
