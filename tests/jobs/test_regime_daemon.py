"""The market regime in the daemon (``lpbot.jobs.regime``): on the devnet, a crash through the
real pool drives the monitor's regime normal -> elevated -> stressed with its reasons, one alert
per change; the state is stored in the audit log and a restarted daemon resumes it; a calm
market stays normal."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from lpbot.app import App
from lpbot.cli import main
from lpbot.cli.daemon import status_data
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds
from lpbot.jobs import regime, tasks
from lpbot.jobs import scheduler as scheduler_mod
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.runtime import build_runtime
from lpbot.risk.regime import Level
from lpbot.signing.local import write_keystore
from lpbot.store.models import Rebalance
from lpbot.web.data import regime_of
from tests.conftest import Devnet
from tests.jobs.conftest import CONFIG, HOT_QUORUM_SIGNERS

pytestmark = pytest.mark.devnet

NAME = "eth-usdc"
POOL = "USDC/WETH-500"
HEDGE = """
[hedge]
exchange = "paper"
symbol = "ETH/USDT:USDT"
band_abs = "0.05"
band_pct = 5.0
"""
RISK = """
[risk]
min_dwell_seconds = 600
stress_monitor_seconds = 60
"""


@dataclass
class Env:
    chain: Devnet
    tmp: Path

    def config(self, extra: str = "", *, auto: bool = False) -> Path:
        m = self.chain.manifest
        manifest = self.tmp / "manifest.json"
        m.write(manifest)
        owners = [dev_signer(i).address for i in (9, 10, 11)]
        signers = HOT_QUORUM_SIGNERS.format(
            keys=self.tmp / "keys", o1=owners[0], o2=owners[1], o3=owners[2]
        )
        text = CONFIG.format(
            data=self.tmp / "data", manifest=manifest, token_id=m.safe_position, signers=signers
        )
        text = text.replace("[schedule]", HEDGE + RISK + extra + "[schedule]")
        if not auto:  # the owners approve: a stressed withdraw waits for them
            text = text.replace("enabled = true", "enabled = false")
        path = self.tmp / "lpbot.toml"
        path.write_text(text)
        return path

    def balances_at(self, block: int) -> tuple[int, int]:
        """The Safe's raw token0, token1 at ``block``."""
        m = self.chain.manifest
        info = m.pool(POOL)
        return tuple(  # type: ignore[return-value]
            contract(self.chain.w3, "TestERC20", m.token(t).address)
            .functions.balanceOf(m.safe)
            .call(block_identifier=block)
            for t in (info.token0, info.token1)
        )

    def move(self, factor: float) -> None:
        """Trade the pool (and the pair's other pools, as arbitrage would) to ``factor`` times
        its sqrt price; the devnet's keeper then pushes the feeds."""
        m = self.chain.manifest
        w3 = self.chain.w3
        info = m.pool(POOL)
        pool = contract(w3, "UniswapV3Pool", info.address)
        router = contract(w3, "SwapRouter02", m.contracts["SwapRouter02"])
        trader = m.accounts.traders[0]
        target = int(pool.functions.slot0().call()[0] * factor)
        up = factor > 1  # the sqrt price of token1 in token0 rises: token1 is sold
        t_in, t_out = (info.token1, info.token0) if up else (info.token0, info.token1)
        for p in [p for p in m.pools if {p.token0, p.token1} == {info.token0, info.token1}]:
            tx = router.functions.exactInputSingle(
                (m.token(t_in).address, m.token(t_out).address, p.fee, trader, 10**24, 0, target)
            ).transact({"from": trader, "gas": GAS})
            w3.eth.wait_for_transaction_receipt(tx)
        push_feeds(w3, m)


@pytest.fixture
def env(chain: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        key = bytes(dev_signer(index)._account.key)
        write_keystore(tmp_path / "keys" / f"{name}.json", key, f"pw-{name}")
        monkeypatch.setenv(f"LPBOT_TEST_{name.upper()}_PW", f"pw-{name}")
    yield Env(chain, tmp_path)


def _position(config: Path) -> tuple[App, tasks.ManagedPosition, MemoryNotifier]:
    app = App.load(config)
    mp = build_runtime(app).positions[NAME]
    notifier = MemoryNotifier()
    mp.notifier = notifier
    return app, mp, notifier


def tick(env: Env, mp: tasks.ManagedPosition, factor: float, seconds: int) -> Level:
    """``seconds`` pass, the price moves by ``factor`` (of its sqrt), the hedge and the
    monitor run as the daemon's jobs do; the regime the monitor left."""
    env.chain.increase_time(seconds)
    if factor != 1:
        env.move(factor)
    tasks.hedge_sync(mp)
    tasks.monitor(mp)
    assert mp.regime is not None and mp.regime.tracker is not None
    return mp.regime.level


def calm(env: Env, mp: tasks.ManagedPosition, n: int, seed: int = 1) -> list[Level]:
    """``n`` ticks five minutes apart, the price wandering by about 0.05% each."""
    rng = random.Random(seed)
    return [tick(env, mp, 1 + rng.choice((-1, 1)) * 0.00025, 300) for _ in range(n)]


def _regime_alerts(notifier: MemoryNotifier) -> list[str]:
    return [a.title for a in notifier.alerts if a.kind == "risk_regime"]


def crash(env: Env, mp: tasks.ManagedPosition) -> list[Level]:
    """An hour of calm (the baseline), then ETH falls about 2% in a minute and 6% more over
    the next two; the levels the monitor left after each crash tick."""
    levels = calm(env, mp, 12)
    assert set(levels) == {Level.NORMAL}, levels
    return [tick(env, mp, f, 60) for f in (1.01, 1.015, 1.015)]


def until_planned(env: Env, mp: tasks.ManagedPosition) -> list[Level]:
    """Minute ticks, the price still, until a withdraw is planned (at most 15)."""
    levels = []
    for _ in range(15):
        if [r for r in _records(mp) if r.kind == "withdraw"]:
            return levels
        levels.append(tick(env, mp, 1.0, 60))
    raise AssertionError(f"no withdraw planned: {levels}")


def test_a_crash_drives_the_regime_up_and_a_restart_resumes_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    config = env.config()
    app, mp, notifier = _position(config)
    try:
        assert mp.hedge is not None
        band = (mp.hedge.config.band_abs, mp.hedge.config.band_pct)
        assert band[1] == Decimal(5)
        assert tasks.decision_policy(mp).strategy == mp.policy.strategy
        levels = crash(env, mp)
        assert levels == [Level.ELEVATED, Level.STRESSED, Level.STRESSED], levels
        # not normal: the next range twice as wide, the hedge band half as wide
        strategy = tasks.decision_policy(mp).strategy
        assert getattr(strategy, "half_width_ticks", None) == 1200, strategy
        assert mp.hedge.config.band_pct == Decimal("2.5")
        assert mp.hedge.config.band_abs == max(band[0] / 2, mp.hedge.market.min_amount)
        # the monitor's job now runs every stress_monitor_seconds (60 s, not 2 s)
        scheduler = BackgroundScheduler()
        scheduler.add_job(print, "interval", seconds=2, id=f"monitor:{NAME}")
        runtime = SimpleNamespace(positions={NAME: mp}, config=app.config)
        assert scheduler_mod.monitor_interval(scheduler, runtime, NAME) == 60  # type: ignore[arg-type]
        assert scheduler.get_job(f"monitor:{NAME}").trigger.interval.total_seconds() == 60
        assert scheduler_mod.monitor_interval(scheduler, runtime, NAME) is None  # type: ignore[arg-type]
        # the spot is far from the pool's 10-minute TWAP: the planner's manipulation guard
        # refuses any plan for now (said once); the withdraw is tried on every stressed tick
        # and planned as soon as the TWAP has caught up
        assert [a.kind for a in notifier.alerts].count("risk_action_refused") == 1
        levels = until_planned(env, mp)
        assert set(levels) == {Level.STRESSED}, levels
        # stressed asks for a withdraw: without the auto-execute policy it is the first thing
        # the owners see, asked once
        (ask,) = [a for a in notifier.alerts if a.kind == "approval_needed"]
        assert "withdraw" in ask.title and "market regime stressed" in ask.body, ask
        approvals = status_data(app)["pending_approvals"]
        assert approvals[0]["kind"] == "withdraw" and "TWAP" in approvals[0]["reason"]
        assert _regime_alerts(notifier) == [
            f"{NAME}: market regime normal -> elevated",
            f"{NAME}: market regime elevated -> stressed",
        ]
        elevated, stressed = (a for a in notifier.alerts if a.kind == "risk_regime")
        assert "TWAP" in elevated.body, elevated.body
        assert mp.regime is not None and mp.regime.tracker is not None
        assert "TWAP" in stressed.body and "(stressed)" in stressed.body, stressed.body
        # the next tick while stressed: no new alert
        tick(env, mp, 1.0, 60)
        state = mp.regime.tracker.state
        assert len(_regime_alerts(notifier)) == 2

        # what `lpbot status` and the dashboard read back from the store
        with app.sessions() as s:
            stored = regime.stored_regime(s, NAME)
        assert stored is not None and stored["regime"] == "stressed"
        assert stored["reasons"] == list(mp.regime.tracker.state.reasons)
        assert stored["inputs"]["twap_deviation_bps"] > 0
        # `lpbot status` (--json) and the dashboard show it
        (row,) = [x for x in status_data(app)["positions"] if x["token_id"] == mp.token_id]
        assert row["regime"]["regime"] == "stressed"
        assert row["regime"]["reasons"] == stored["reasons"]
        shown = regime_of(app, NAME)
        assert shown is not None and shown["regime"] == "stressed"
        assert shown["reasons"] == stored["reasons"]
    finally:
        app.close()
    # a restarted daemon resumes the stored state: still stressed, since the same time
    app2, mp2, notifier2 = _position(config)
    try:
        loaded = regime.load_state(app2.sessions, NAME)
        assert loaded is not None
        assert (loaded.level, loaded.since, loaded.reasons) == (
            Level.STRESSED,
            state.since,
            state.reasons,
        )
        level = tick(env, mp2, 1.0, 60)
        assert level is Level.STRESSED
        assert mp2.regime is not None and mp2.regime.tracker is not None
        assert mp2.regime.tracker.state.since == state.since
        assert _regime_alerts(notifier2) == []
        assert [a.kind for a in notifier2.alerts if a.kind == "approval_needed"] == []
        withdraws = [r for r in mp2.ctx.repo.unfinished() if r.kind == "withdraw"]
        assert len(withdraws) == 1  # the same withdraw, still waiting
    finally:
        app2.close()
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"regime of {NAME}: stressed since" in out and "TWAP" in out, out


def test_stressed_withdraws_to_the_safe_and_flattens_the_hedge(env: Env) -> None:
    app, mp, notifier = _position(env.config(auto=True))
    try:
        levels = crash(env, mp)
        assert levels == [Level.ELEVATED, Level.STRESSED, Level.STRESSED], levels
        levels = until_planned(env, mp)
        assert set(levels) == {Level.STRESSED}, levels
        assert mp.withdrawn
        (record,) = [r for r in _records(mp) if r.kind == "withdraw"]
        assert record.state.value == "CONFIRMED" and record.result is not None
        with app.sessions() as s:
            row = s.get(Rebalance, record.id)
            assert row is not None and "market regime stressed" in str(row.reason)
        # the Safe received exactly what the receipt collected (read at the withdraw's block
        # against the block before it); the NFT holds nothing
        collected = tuple(int(x) for x in record.result["collected"])
        block = int(record.result["block"])
        after, before = env.balances_at(block), env.balances_at(block - 1)
        assert (after[0] - before[0], after[1] - before[1]) == collected
        assert collected[0] > 0 or collected[1] > 0
        # the hedge went to the position's new delta, zero
        assert _hedge_size(env.tmp / "data") == 0
        kinds = [a.kind for a in notifier.alerts]
        assert kinds.count("risk_regime") == 2 and kinds.count("withdrawn") == 1, kinds
        # it waits withdrawn, and says so (no automatic re-entry)
        assert kinds.count("risk_withdrawn") == 1, kinds
        note = tasks.withdrawn_note(mp)
        assert note is not None and note.startswith("withdrawn for the stressed market"), note
    finally:
        app.close()


def _records(mp: tasks.ManagedPosition) -> list[Any]:
    out, i = [], 1
    while (r := mp.ctx.repo.get(i)) is not None:
        out.append(r)
        i += 1
    return out


def test_an_unhealthy_pool_moves_the_regime_to_stressed(env: Env) -> None:
    # no pool on the devnet holds $1T within 1%: below the rule at once
    extra = '[health]\nmin_depth_usd_1pct = 1000000000000\non_unhealthy = "stressed"\n'
    app, mp, notifier = _position(env.config(extra))
    try:
        levels = calm(env, mp, 3)
        assert levels == [Level.STRESSED] * 3, levels
        assert mp.regime is not None and mp.regime.tracker is not None
        (reason,) = mp.regime.tracker.state.reasons
        assert reason.startswith("pool below the health rule"), reason
        kinds = [a.kind for a in notifier.alerts]
        assert kinds.count("pool_unhealthy") == 1 and kinds.count("risk_regime") == 1, kinds
        # the stressed action: a withdraw for the owners to approve (auto-execute is off)
        assert kinds.count("approval_needed") == 1, kinds
    finally:
        app.close()


def test_a_calm_market_stays_normal(env: Env) -> None:
    app, mp, notifier = _position(env.config())
    try:
        levels = calm(env, mp, 16, seed=7)
        assert set(levels) == {Level.NORMAL}, levels
        assert _regime_alerts(notifier) == []
        with app.sessions() as s:
            stored = regime.stored_regime(s, NAME)
        assert stored is not None and stored["regime"] == "normal" and stored["reasons"] == []
    finally:
        app.close()


def _hedge_size(data: Path) -> Decimal:
    (state_file,) = (data / "hedge").glob("hedge-paper-*.json")
    return Decimal(json.loads(state_file.read_text())["ledger"]["size"])
