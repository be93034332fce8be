"""The market regime in the backtester: through a crash and a liquidation cascade it withdraws
early, loses less than the same LP without it, and comes back when the market calms."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.backtest.crash import crash_comparison, render
from lpbot.cli import main
from lpbot.config import EXAMPLE_TOML, RiskConfig, RiskStressedConfig


@pytest.fixture(scope="module")
def crash() -> object:
    return crash_comparison(days=4, seed=7)


def test_the_regime_lowers_the_drawdown_of_a_crash_and_comes_back_after_it(crash: object) -> None:
    from lpbot.backtest.crash import CrashComparison

    assert isinstance(crash, CrashComparison)
    path, without, with_regime = crash.path, crash.without, crash.with_regime
    assert without is not None and with_regime is not None
    # the same market: the same hold benchmark
    assert with_regime.metrics.hold_return == pytest.approx(without.metrics.hold_return)
    # the LP without the regime rides the crash in its range and out of it, all in the
    # falling token; with it, the liquidity is out before most of the fall
    assert without.metrics.max_drawdown > 0.30
    assert with_regime.metrics.max_drawdown < without.metrics.max_drawdown - 0.10
    assert with_regime.metrics.net_return > without.metrics.net_return
    kinds = [(a.kind, a.timestamp) for a in with_regime.actions]
    withdrawals = [t for k, t in kinds if k == "withdraw"]
    reentries = [t for k, t in kinds if k == "reenter"]
    assert len(withdrawals) == 1 and len(reentries) == 1
    # withdrawn within the crash's first hour, re-entered after it ended
    assert path.crash_start < withdrawals[0] < path.crash_start + 3600
    assert reentries[0] > path.crash_end
    # elevated (before stressed) widened the next range: twice the configured width
    opened = with_regime.actions[0]
    width = opened.tick_upper - opened.tick_lower
    widened = [
        a
        for a in with_regime.actions
        if a.kind == "rebalance" and withdrawals[0] - 3600 < a.timestamp < withdrawals[0]
    ]
    assert widened and all(a.tick_upper - a.tick_lower >= 2 * width - 20 for a in widened)
    back = next(a for a in with_regime.actions if a.kind == "reenter")
    assert back.tick_upper - back.tick_lower == width  # normal again: the configured width
    assert back.reason == "regime normal: every signal calm for the minimum time"
    regime = with_regime.notes["regime"]
    levels = [t["level"] for t in regime["transitions"]]
    assert "stressed" in levels and levels[-1] == "normal"
    stressed = next(t for t in regime["transitions"] if t["level"] == "stressed")
    assert stressed["reasons"] and all(">=" in r or "<=" in r for r in stressed["reasons"])
    # no regime before the crash: nothing left normal before it started
    assert all(t["t"] >= path.crash_start for t in regime["transitions"])
    # the ledger explains the run with the withdrawal and re-entry in it (finish checks it)
    assert with_regime.ledger is not None
    assert with_regime.breakdown.total == pytest.approx(
        with_regime.breakdown.final_usd - with_regime.breakdown.initial_usd, abs=1e-6
    )
    text = render(crash)
    assert "LP with the regime" in text and "-> withdraw to tokens" in text


def test_stressed_may_move_to_the_full_range_instead() -> None:
    risk = RiskConfig(stressed=RiskStressedConfig(action="widest"))
    c = crash_comparison(days=4, seed=7, risk=risk, runs="on")
    assert c.without is None and c.with_regime is not None
    actions = c.with_regime.actions
    assert not any(a.kind in ("withdraw", "reenter") for a in actions)
    full = [a for a in actions if a.reason.startswith("regime stressed")]
    assert len(full) == 1 and full[0].tick_upper - full[0].tick_lower > 1_700_000
    back = [a for a in actions if a.reason.startswith("regime normal")]
    assert back and back[0].tick_upper - back[0].tick_lower < 10_000


def test_the_crash_command_reads_risk_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    assert main(["backtest", "crash", "--risk", "on", "--days", "3", "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert set(out["runs"]) == {"with_regime"}
    assert out["runs"]["with_regime"]["regime"]["withdrawals"] == 1
    # a [risk] that never stresses: the configuration's settings are the ones run
    config = tmp_path / "lpbot.toml"
    calm = EXAMPLE_TOML.replace("vol_5m_ratio = 5.0", 'vol_5m_ratio = "off"')
    calm = calm.replace("vol_30m_ratio = 3.5", 'vol_30m_ratio = "off"')
    calm = calm.replace("twap_deviation_bps = 300", 'twap_deviation_bps = "off"')
    calm = calm.replace("funding_bps_8h = 15.0", 'funding_bps_8h = "off"')
    calm = calm.replace("open_interest_change_pct = 12.0", 'open_interest_change_pct = "off"')
    calm = calm.replace("liquidation_ratio = 20.0", 'liquidation_ratio = "off"')
    calm = calm.replace("volume_ratio = 8.0", 'volume_ratio = "off"')
    config.write_text(calm)
    assert main(["--config", str(config), "backtest", "crash", "--risk", "on", "--days", "3",
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    regime = out["runs"]["with_regime"]["regime"]
    assert regime["withdrawals"] == 0 and regime["transitions"]


def test_the_crash_command_runs_the_regime_even_when_the_daemon_has_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `enabled = false` keeps the daemon from acting on the regime; "LP with the regime" must
    # still be a run with it (its thresholds and actions), not a copy of the run without it
    import json

    config = tmp_path / "lpbot.toml"
    off = EXAMPLE_TOML.replace("enabled = true\nexit_fraction", "enabled = false\nexit_fraction")
    assert off != EXAMPLE_TOML
    config.write_text(off)
    assert main(["--config", str(config), "backtest", "crash", "--days", "3", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs["with_regime"]["regime"]["withdrawals"] == 1
    assert runs["with_regime"]["max_drawdown"] < runs["without"]["max_drawdown"] - 0.10


def test_a_regime_that_never_changes_leaves_the_run_as_it_was() -> None:
    from lpbot.backtest.config import BacktestConfig
    from lpbot.backtest.study import bars_of
    from lpbot.backtest.synthetic import synthetic_minutes
    from lpbot.backtest.vector import run_bars
    from lpbot.config import RiskElevatedConfig
    from lpbot.risk.regime import SIGNALS

    bars = bars_of(synthetic_minutes(2, seed=3), 60)
    base = BacktestConfig(decision_interval_seconds=900, chain="arbitrum")
    off = {s.name: None for s in SIGNALS}
    silent = RiskConfig(elevated=RiskElevatedConfig(**off), stressed=RiskStressedConfig(**off))
    plain = run_bars(bars, base)
    watched = run_bars(bars, base.model_copy(update={"risk": silent}))
    assert watched.metrics == plain.metrics
    assert watched.actions == plain.actions
    assert watched.notes["regime"]["transitions"] == []
    # the market's own signals (no perp data): a quiet market never withdraws
    quiet = run_bars(bars, base.model_copy(update={"risk": RiskConfig()}))
    assert not any(a.kind == "withdraw" for a in quiet.actions)


def test_stressed_resizes_or_flattens_the_hedge() -> None:
    from lpbot.backtest.config import BacktestConfig
    from lpbot.backtest.study import bars_of
    from lpbot.backtest.synthetic import crash_minutes
    from lpbot.backtest.vector import run_bars

    path = crash_minutes(4, crash_at_hours=36.0)
    bars = bars_of(path.minutes, 60)
    base = BacktestConfig(decision_interval_seconds=300, chain="arbitrum", hedge_ratio=1.0)
    runs = {}
    for hedge in ("resize", "flatten"):
        risk = RiskConfig(stressed=RiskStressedConfig(hedge=hedge))
        runs[hedge] = run_bars(bars, base.model_copy(update={"risk": risk}), perp=path.perp)
    for hedge, result in runs.items():
        stressed = next(
            t for t in result.notes["regime"]["transitions"] if t["level"] == "stressed"
        )
        withdrawal = next(a for a in result.actions if a.kind == "withdraw")
        assert withdrawal.timestamp == stressed["t"]
        if hedge == "flatten":
            assert stressed["hedge_size"] == 0.0
        else:  # short what the withdrawal left in the volatile token (WETH, token1)
            assert stressed["hedge_size"] < -1.0
        normal = [t for t in result.notes["regime"]["transitions"] if t["level"] == "normal"]
        assert normal[-1]["hedge_size"] < -1.0  # back to the configured hedge
    # the withdrawn tokens stay hedged when re-sized: the crash costs far less than flattened
    resized, flattened = runs["resize"].metrics, runs["flatten"].metrics
    assert resized.max_drawdown < 0.05 < 0.15 < flattened.max_drawdown


def test_the_stress_monitor_runs_at_least_as_often_as_configured_on_any_bars() -> None:
    # a period that is not a multiple of the 60 s bars: the monitor acts at the first bar at or
    # after each tick (every bar for 45 s, as for 60 s), not only where both line up (180 s)
    from lpbot.backtest.risk import regime_path
    from lpbot.backtest.study import bars_of
    from lpbot.backtest.synthetic import crash_minutes

    path = crash_minutes(3, crash_at_hours=30.0)
    bars = bars_of(path.minutes, 60)
    config = RiskConfig().regime_config()
    runs = {
        s: regime_path(
            bars,
            config,
            decision_interval_seconds=300,
            stress_monitor_seconds=s,
            monitor_seconds=86_400,
            perp=path.perp,
        )
        for s in (45, 60, 90, 180)
    }
    assert runs[45].evaluations == runs[60].evaluations
    assert [(t.t, t.level) for t in runs[45].transitions] == [
        (t.t, t.level) for t in runs[60].transitions
    ]
    # 90 s: between every bar (60) and every third (180)
    assert runs[180].evaluations < runs[90].evaluations < runs[60].evaluations


def test_hour_bars_say_which_market_signals_they_cannot_measure() -> None:
    # 5- and 30-minute volatility and a 30-minute TWAP need bars finer than an hour: on hour
    # bars they are unavailable (not a calm 0) and the run says so
    from lpbot.backtest.config import BacktestConfig
    from lpbot.backtest.study import bars_of
    from lpbot.backtest.synthetic import crash_minutes
    from lpbot.backtest.vector import run_bars

    path = crash_minutes(4, crash_at_hours=36.0)
    base = BacktestConfig(decision_interval_seconds=3600, chain="arbitrum",
                          risk=RiskConfig())  # fmt: skip
    hourly = run_bars(bars_of(path.minutes, 3600), base)
    assert hourly.notes["regime"]["signals_unavailable"] == [
        "vol_5m_ratio", "vol_30m_ratio", "twap_deviation_bps", "funding_bps_8h",
        "open_interest_change_pct", "liquidation_ratio",
    ]  # fmt: skip
    minutes = run_bars(bars_of(path.minutes, 60), base, perp=path.perp)
    assert minutes.notes["regime"]["signals_unavailable"] == []


@pytest.mark.parametrize("interval", [60, 300, 3600])
def test_the_volume_ratio_of_a_quiet_market_is_about_1_on_any_bars(interval: int) -> None:
    # the window's volume is compared with the baseline's share for the time the window's bars
    # cover: an hour bar holds an hour of volume, not the 30 minutes of the window
    import numpy as np

    from lpbot.backtest.risk import MarketSignals
    from lpbot.backtest.study import bars_of
    from lpbot.backtest.synthetic import synthetic_minutes

    bars = bars_of(synthetic_minutes(3, seed=3), interval)
    signals = MarketSignals(bars, None, 1)
    n = len(bars)
    ratios = [signals.inputs(j).signals()["volume_ratio"] for j in range(n // 2, n)]
    assert float(np.mean(ratios)) == pytest.approx(1.0, abs=0.1)


def test_backtest_run_prints_the_regime_and_the_signals_it_could_not_measure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from lpbot.backtest.synthetic import crash_minutes, write_demeter_csv

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    files = write_demeter_csv(crash_minutes(3, crash_at_hours=30.0).minutes, tmp_path / "csv",
                              chain="arbitrum", pool="0xabc")  # fmt: skip
    data = tmp_path / "crash.sqlite"
    assert main(["data", "import-csv", *map(str, files), "--out", str(data), "--fee", "500",
                 "--decimals0", "6", "--decimals1", "18", "--symbol0", "USDC",
                 "--symbol1", "WETH"]) == 0  # fmt: skip
    (tmp_path / "bc.json").write_text(json.dumps({"risk": {}}))
    capsys.readouterr()
    assert main(["backtest", "run", "--data", str(data), "--backtest-config", "bc.json",
                 "--chain", "arbitrum", "--interval", "300", "--no-save"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("  market regime:"))
    assert "1 withdrawals, 1 re-entries" in line
    # a pool's bars carry no perp market: its three signals are said to be missing
    assert line.endswith(
        "never measured on these bars (no reading, not calm): funding_bps_8h, "
        "open_interest_change_pct, liquidation_ratio"
    )


def test_the_regime_watches_every_monitor_tick_whatever_the_decision_interval() -> None:
    # the daemon evaluates the regime on every monitor tick ([schedule] monitor_seconds, 60 s),
    # not only when it decides: with a decision every 4 hours the crash still withdraws the
    # liquidity within its first hour
    c = crash_comparison(days=4, seed=7, decision_interval_seconds=14_400)
    assert c.without is not None and c.with_regime is not None
    withdrawals = [a.timestamp for a in c.with_regime.actions if a.kind == "withdraw"]
    assert withdrawals and c.path.crash_start < withdrawals[0] < c.path.crash_start + 3600
    assert c.with_regime.metrics.max_drawdown < c.without.metrics.max_drawdown - 0.10
