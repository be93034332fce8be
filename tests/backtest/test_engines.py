"""Both engines on a devnet market's real history: exact fees, the identity, reports, sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lpbot.backtest.bars import bars_from_events
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.exact import run_exact
from lpbot.backtest.report import write_report
from lpbot.backtest.sweep import sweep
from lpbot.backtest.validate import FEE_TOLERANCE, VALUE_TOLERANCE, compare_engines
from lpbot.backtest.vector import run_bars
from lpbot.cli import main

pytestmark = pytest.mark.devnet

# USDC is token0 of the devnet's USDC/WETH pool; a small LP beside $20M of depth
CONFIG = BacktestConfig(
    strategy=StrategyConfig(kind="fixed", params={"half_width_pct": 2.0}),
    # rebalance whenever out of range: the engines are compared on the same decisions, not on
    # how each would estimate a volatility regime or the cost gate's gain
    policy={
        "edge_pct": None,
        "vol_ratio_trigger": None,
        "min_gain_over_cost": 0.0,
        "rebalance_rule": "fees",
    },
    quote_token=0,
    chain="arbitrum",
    capital_usd=10_000.0,
)


def test_bars_engine_agrees_with_exact_replay_within_tolerance(market: Dataset) -> None:
    exact, _approx, diff = compare_engines(market, CONFIG)
    assert exact.metrics.rebalances >= 2  # the comparison covers rebalancing
    assert diff.rebalances_bars == diff.rebalances_exact
    assert abs(diff.fees_diff) <= FEE_TOLERANCE
    assert abs(diff.value_diff) <= VALUE_TOLERANCE
    assert diff.within_tolerance


def test_exact_engine_accounts_for_every_dollar(market: Dataset) -> None:
    config = CONFIG.model_copy(update={"hedge_ratio": 0.8, "slippage_bps": 3.0})
    result = run_exact(market, config)
    b, s = result.breakdown, result.series
    assert b.fees0_raw > 0 and b.fees1_raw > 0
    assert b.final_usd - b.initial_usd == pytest.approx(b.total, abs=1e-6)
    assert s.value[-1] == pytest.approx(b.final_usd, rel=1e-12)
    assert b.gas > 0 and b.slippage > 0 and b.hedge_fees > 0 and b.swap_fees > 0
    assert result.notes["replay_mismatches"] == 0
    # the hedge offsets the position's exposure to the volatile token
    unhedged = run_exact(market, CONFIG)
    assert np.std(np.diff(s.value)) < np.std(np.diff(unhedged.series.value))
    assert 0 < result.metrics.time_in_range <= 1
    assert len(s.t) >= 40 and np.all(np.diff(s.t) > 0)


def test_exact_engine_fees_are_what_the_pool_pays(market: Dataset) -> None:
    """A position that never moves earns ``L * fee growth inside``, to the wei."""
    from lpbot.backtest.ledger import OWNER
    from lpbot.backtest.replay import EventReplayer, replay_events

    config = CONFIG.model_copy(
        update={
            "strategy": StrategyConfig(kind="full_range"),
            "policy": {"compound_margin": 1e12, "vol_ratio_trigger": None},
        }
    )
    result = run_exact(market, config)
    assert result.metrics.rebalances == 0 and result.metrics.compounds == 0
    # the same history replayed, the same position minted at the same time, collected at the end
    opened = result.actions[0]
    replayer = EventReplayer(market.start.to_pool(), market.meta.fee, market.meta.tick_spacing)
    minted = False
    for event in market.events:
        t = market.timestamps[event.block_number]
        if not minted and t >= opened.timestamp and replayer.pool is not None:
            replayer.pool.block_timestamp = t
            if opened.swap_amount_in:
                from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO

                zfo = bool(opened.swap_zero_for_one)
                limit = MIN_SQRT_RATIO + 1 if zfo else MAX_SQRT_RATIO - 1
                replayer.pool.swap(zfo, opened.swap_amount_in, limit)
            replayer.pool.mint(OWNER, opened.tick_lower, opened.tick_upper, opened.liquidity)
            replayer.bot_range = (opened.tick_lower, opened.tick_upper)
            replayer.in_history = False
            minted = True
        if t > result.series.t[-1]:
            break
        replay_events(replayer, [event], market.timestamps)
    pool = replayer.pool
    assert pool is not None
    pool.burn(OWNER, opened.tick_lower, opened.tick_upper, 0)
    info = pool.position(OWNER, opened.tick_lower, opened.tick_upper)
    assert (info.tokens_owed0, info.tokens_owed1) == (
        result.breakdown.fees0_raw,
        result.breakdown.fees1_raw,
    )


def test_reports_are_self_contained(market: Dataset, tmp_path: Path) -> None:
    exact, _approx, diff = compare_engines(market, CONFIG)
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    write_report(exact, html_path, json_path, diff.as_dict())
    page = html_path.read_text()
    assert page.count("<svg") == 4 and "bot&#x27;s range" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    summary = json.loads(json_path.read_text())
    assert summary["engine"] == "exact"
    assert summary["breakdown_usd"]["total"] == pytest.approx(
        summary["breakdown_usd"]["final_usd"] - summary["breakdown_usd"]["initial_usd"]
    )
    assert summary["comparison"]["within_tolerance"] is True
    for key in ("apr", "max_drawdown", "sharpe", "time_in_range", "rebalances"):
        assert key in summary["metrics"]


def test_sweep_runs_the_grid_in_parallel_processes(market: Dataset, market_path: Path) -> None:
    grid = {"strategy.half_width_pct": [1.0, 4.0], "policy.min_gain_over_cost": [0.0, 2.0]}
    rows = sweep(grid, market_path, CONFIG, workers=2)
    assert [r.params for r in rows] == [
        {"strategy.half_width_pct": w, "policy.min_gain_over_cost": g}
        for w in (1.0, 4.0)
        for g in (0.0, 2.0)
    ]
    assert all(r.error is None for r in rows)
    one = run_bars(bars_from_events(market), CONFIG.with_overrides(rows[3].params))
    assert rows[3].metrics["apr"] == pytest.approx(one.metrics.apr, rel=1e-12)
    refused = sweep({"strategy.half_width_pct": [150.0]}, market_path, CONFIG, workers=1)
    assert refused[0].error is not None


def test_cli_runs_and_sweeps(
    market_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data", str(market_path), "--quote-token", "0", "--chain", "arbitrum"]
    run = ["backtest", "run", *common, "--strategy", "fixed", "--param", "half_width_pct=2",
           "--policy", "edge_pct=none", "--policy", "rebalance_rule=fees"]  # fmt: skip
    assert main([*run, "--engine", "both", "--json-out", str(tmp_path / "s.json"),
                 "--html", str(tmp_path / "s.html")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "[exact]" in out and "[bars]" in out and "within tolerance" in out
    assert main([*run, "--engine", "exact", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # stdout is the JSON summary alone
    written = json.loads((tmp_path / "s.json").read_text())
    assert summary["engine"] == "exact" and set(written) - set(summary) == {"comparison"}
    assert main(["backtest", "sweep", *common, "--grid", "strategy.half_width_pct=1,3",
                 "--workers", "1", "--json-out", str(tmp_path / "sweep.json")]) == 0  # fmt: skip
    assert len(json.loads((tmp_path / "sweep.json").read_text())) == 2


def test_both_engines_stop_at_zero_equity(market: Dataset) -> None:
    # ~$7 to open and ~$11 a rebalance at this gas price, on $25: ruined by the third
    config = CONFIG.model_copy(update={"capital_usd": 25.0, "gas_price_gwei": 2.0})
    for result in (run_exact(market, config), run_bars(bars_from_events(market), config)):
        m, s = result.metrics, result.series
        assert m.ruined_at is not None and s.t[-1] == m.ruined_at, result.engine
        assert s.value[-1] <= 0 < s.value[-2] and s.value[0] == config.capital_usd
        assert all(a.timestamp <= m.ruined_at for a in result.actions)
        assert m.net_return == -1.0 and m.sharpe is None
        b = result.breakdown
        assert b.final_usd - b.initial_usd == pytest.approx(b.total, abs=1e-9 * b.initial_usd)
