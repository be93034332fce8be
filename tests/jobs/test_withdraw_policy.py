"""``policy.on_expected_loss = "withdraw"``: where the model expects the managed pool to lose (its
fees below its LVR), the daemon withdraws the position's liquidity and fees to the Safe once,
through the ordinary plan, dry-run, policy and signing path; its hedge goes to the new delta
(zero), and the position is no longer managed. Without the auto-execute policy the owners are
asked, once, and the withdraw heads ``lpbot status``'s approvals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.app import App
from lpbot.cli.daemon import status_data
from lpbot.devnet.deploy import contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import run_market
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.runtime import build_runtime
from lpbot.signing.local import write_keystore
from tests.conftest import Devnet
from tests.jobs.conftest import CONFIG, HOT_QUORUM_SIGNERS

pytestmark = pytest.mark.devnet

NAME = "eth-usdc"
HEDGE = """
[hedge]
exchange = "paper"
symbol = "ETH/USDT:USDT"
band_abs = "0.05"
band_pct = 5.0
"""


@dataclass
class Env:
    chain: Devnet
    tmp: Path

    def config(self, *, auto: bool, on_expected_loss: str = "withdraw") -> Path:
        m = self.chain.manifest
        data = self.tmp / "data"
        manifest = self.tmp / "manifest.json"
        m.write(manifest)
        owners = [dev_signer(i).address for i in (9, 10, 11)]
        signers = HOT_QUORUM_SIGNERS.format(
            keys=self.tmp / "keys", o1=owners[0], o2=owners[1], o3=owners[2]
        )
        text = CONFIG.format(
            data=data, manifest=manifest, token_id=m.safe_position, signers=signers
        )
        text = text.replace(
            'rebalance_rule = "fees"               # re-centre on every exit, whatever the LVR',
            f'rebalance_rule = "ev"\non_expected_loss = "{on_expected_loss}"',
        )
        assert 'rebalance_rule = "ev"' in text
        text = text.replace("[schedule]", HEDGE + "[schedule]")
        if not auto:
            text = text.replace("enabled = true", "enabled = false")
        path = self.tmp / "lpbot.toml"
        path.write_text(text)
        return path

    def balances(self) -> tuple[int, int]:
        m = self.chain.manifest
        return tuple(  # type: ignore[return-value]
            contract(self.chain.w3, "TestERC20", m.token(s).address)
            .functions.balanceOf(m.safe)
            .call()
            for s in ("USDC", "WETH")
        )

    def npm(self) -> list[int]:
        m = self.chain.manifest
        npm = contract(
            self.chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
        )
        return list(npm.functions.positions(m.safe_position).call())

    def safe_nonce(self) -> int:
        m = self.chain.manifest
        return int(contract(self.chain.w3, "SafeL2", m.safe or "").functions.nonce().call())


@pytest.fixture
def env(chain: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        key = bytes(dev_signer(index)._account.key)
        write_keystore(tmp_path / "keys" / f"{name}.json", key, f"pw-{name}")
        monkeypatch.setenv(f"LPBOT_TEST_{name.upper()}_PW", f"pw-{name}")
    m = chain.manifest
    # two hours of trading: the pool's fees are below its LVR at this volatility (as in the
    # expected-loss tests of the compound and the open)
    run_market(chain.w3, m, m.pool("USDC/WETH-500"), steps=12, vol=1.2, seed=4, step_seconds=600)
    yield Env(chain, tmp_path)


def _position(config: Path) -> tuple[App, tasks.ManagedPosition, MemoryNotifier]:
    app = App.load(config)
    runtime = build_runtime(app)
    mp = runtime.positions[NAME]
    notifier = MemoryNotifier()
    mp.notifier = notifier
    return app, mp, notifier


def _hedge_size(data: Path) -> Decimal:
    (state_file,) = (data / "hedge").glob("hedge-paper-*.json")
    return Decimal(json.loads(state_file.read_text())["ledger"]["size"])


def test_the_daemon_withdraws_once_where_fees_are_below_lvr(env: Env) -> None:
    config = env.config(auto=True)
    app, mp, notifier = _position(config)
    assert mp.on_expected_loss == "withdraw"
    try:
        tasks.monitor(mp)  # the ledger starts
        tasks.hedge_sync(mp)
        assert _hedge_size(env.tmp / "data") < 0  # a short against the position's WETH
        before, nonce = env.balances(), env.safe_nonce()
        liquidity = env.npm()[7]
        assert liquidity > 0

        event = tasks.rebalance_check(mp)
        assert event.startswith(f"withdrew #{mp.token_id} to the Safe"), event
        withdraws = [r for r in _records(mp) if r.kind == "withdraw"]
        (record,) = withdraws
        assert record.state.value == "CONFIRMED" and record.result is not None
        assert "fee/LVR 0." in (record.result and _reason(app, record.id))
        # the Safe holds exactly what the receipt collected; the NFT holds nothing
        collected = tuple(int(x) for x in record.result["collected"])
        after = env.balances()
        assert (after[0] - before[0], after[1] - before[1]) == collected
        p = env.npm()
        assert (p[7], p[10], p[11]) == (0, 0, 0)
        assert env.safe_nonce() == nonce + 1
        # the hedge went to the new delta, zero, by the hedge path's own sync
        assert _hedge_size(env.tmp / "data") == 0
        assert mp.withdrawn
        assert [a.kind for a in notifier.alerts].count("withdrawn") == 1

        # the next checks: not managed, nothing planned or sent again
        again = tasks.rebalance_check(mp)
        assert again.startswith("withdrawn"), again
        assert tasks.withdrawn_note(mp) is not None
        assert [r.id for r in _records(mp) if r.kind == "withdraw"] == [record.id]
        assert env.safe_nonce() == nonce + 1 and env.balances() == after

        # the ledger (status, export, dashboard) has a point at the withdraw: nothing left in
        # the NFT, the collected tokens idle in the Safe, the withdraw's gas paid
        from lpbot.jobs.ledger import history

        with app.sessions() as s:
            last = history(s, NAME).points[-1]
        assert last.snapshot.block_number >= int(record.result["block"])
        assert (last.snapshot.amount0, last.snapshot.amount1) == (0, 0)
        assert last.ledger.usd.gas > 0
        assert [a.kind for a in notifier.alerts if a.kind == "ledger_outside_change"] == []
        # `lpbot status` shows it withdrawn; a restarted daemon does not manage it
        status = status_data(app)
        assert f"block {last.snapshot.block_number}:" in status["ledger"][0]["line"]
        (row,) = [x for x in status["positions"] if x["token_id"] == mp.token_id]
        assert row["state"] == "withdrawn"
    finally:
        app.close()
    app2 = App.load(config)
    try:  # a restarted daemon keeps only its hedge (flat), and plans nothing for it
        again = build_runtime(app2).positions[NAME]
        assert again.withdrawn and tasks.rebalance_check(again).startswith("withdrawn")
        assert env.safe_nonce() == nonce + 1 and env.balances() == after
    finally:
        app2.close()
    unhedged = env.config(auto=True).read_text().replace(HEDGE, "")
    config.write_text(unhedged)
    app3 = App.load(config)
    try:  # without a hedge, nothing of it is managed
        assert NAME not in build_runtime(app3).positions
    finally:
        app3.close()


def test_a_hedge_left_open_by_a_failed_sync_is_flattened_after_a_restart(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The withdraw confirmed but the venue did not answer the hedge's sync, and the daemon
    stopped: the restarted daemon still hedges the withdrawn position (to its delta, zero),
    and nothing else is planned or sent for it."""
    from lpbot.errors import RetryLater

    config = env.config(auto=True)
    app, mp, notifier = _position(config)
    try:
        tasks.monitor(mp)
        tasks.hedge_sync(mp)
        short = _hedge_size(env.tmp / "data")
        assert short < 0
        assert mp.hedge_runner is not None

        def venue_down(*_a: object, **_k: object) -> None:
            raise RetryLater("the venue does not answer")

        monkeypatch.setattr(mp.hedge_runner, "sync", venue_down)
        event = tasks.rebalance_check(mp)
        assert event.startswith(f"withdrew #{mp.token_id}") and "hedge not synced" in event
        assert _hedge_size(env.tmp / "data") == short  # still short: nothing to hedge
        assert [a.kind for a in notifier.alerts if "hedge" in a.title] == ["failure", "withdrawn"]
    finally:
        app.close()
    after, nonce = env.balances(), env.safe_nonce()
    app2 = App.load(config)
    try:
        again = build_runtime(app2).positions[NAME]  # kept for its hedge only
        assert again.withdrawn and again.token_id == mp.token_id
        tasks.hedge_sync(again)
        assert _hedge_size(env.tmp / "data") == 0
        assert tasks.rebalance_check(again).startswith("withdrawn")
        assert (env.balances(), env.safe_nonce()) == (after, nonce)
    finally:
        app2.close()


def test_without_auto_execution_the_owners_are_asked_once(env: Env) -> None:
    config = env.config(auto=False)
    app, mp, notifier = _position(config)
    try:
        before, nonce = env.balances(), env.safe_nonce()
        first = tasks.rebalance_check(mp)
        second = tasks.rebalance_check(mp)
        assert first.startswith("withdraw ") and "SIMULATED" in first, first
        assert second == first  # the same withdraw, still waiting
        assert [a.kind for a in notifier.alerts] == ["approval_needed"]
        assert "withdraw" in notifier.alerts[0].title
        (waiting,) = [r for r in mp.ctx.repo.unfinished() if r.kind == "withdraw"]
        status = status_data(app)
        assert status["pending_approvals"][0]["kind"] == "withdraw"
        assert status["pending_approvals"][0]["id"] == waiting.id
        assert (env.balances(), env.safe_nonce()) == (before, nonce)
    finally:
        app.close()


def test_alert_only_by_default(env: Env) -> None:
    config = env.config(auto=True, on_expected_loss="alert")
    app, mp, notifier = _position(config)
    try:
        nonce = env.safe_nonce()
        tasks.rebalance_check(mp)
        tasks.rebalance_check(mp)
        assert [a.kind for a in notifier.alerts].count("expected_loss") == 1
        assert not [r for r in _records(mp) if r.kind == "withdraw"]
        assert env.safe_nonce() == nonce
    finally:
        app.close()


def _records(mp: tasks.ManagedPosition) -> list:
    out, i = [], 1
    while (r := mp.ctx.repo.get(i)) is not None:
        out.append(r)
        i += 1
    return out


def _reason(app: App, rebalance_id: int) -> str:
    from lpbot.store.models import Rebalance

    with app.sessions() as s:
        row = s.get(Rebalance, rebalance_id)
        assert row is not None
        return str(row.reason)


def test_on_expected_loss_is_validated_and_documented(tmp_path: Path) -> None:
    from lpbot.config import load_config, parse_config, write_example
    from tests.test_config import _errors, _with

    assert parse_config(_with("")).positions[0].policy.on_expected_loss == "alert"
    chosen = parse_config(_with('[positions.policy]\non_expected_loss = "withdraw"\n'))
    assert chosen.positions[0].policy.on_expected_loss == "withdraw"
    message = _errors(_with('[positions.policy]\non_expected_loss = "sell"\n'))
    assert "positions[0].policy.on_expected_loss" in message, message
    # the commented configuration `lpbot init` writes names the key and its default
    path = write_example(tmp_path / "lpbot.toml")
    assert 'on_expected_loss = "alert"' in path.read_text()
    assert load_config(path).positions[0].policy.on_expected_loss == "alert"
