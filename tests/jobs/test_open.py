"""``[positions.open]``: the daemon opens the configured capital as one Safe-owned position, through
the rebalance machinery (plan, dry-run report, policy, 2-of-3 signatures, pre-flight, state
machine), and never opens a second one: not on the next start, not after a crash."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lpbot.app import App
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import run_market
from lpbot.errors import ConfigError, Refused
from lpbot.execution import service
from lpbot.execution.state import RebalanceState as S
from lpbot.jobs import ledger as ledger_store
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.runtime import build_runtime
from lpbot.position_commands import Chain, quote_position
from lpbot.report.dryrun import read_report
from lpbot.signing.local import write_keystore
from lpbot.strategy.base import min_usable_tick
from tests.conftest import Devnet
from tests.execution.conftest import Crash
from tests.jobs.conftest import HOT_QUORUM_SIGNERS

pytestmark = pytest.mark.devnet

NAME = "eth-usdc"
CONFIG = """
version = 1
data_dir = "{data}"
[chains.devnet]
manifest = "{manifest}"
[[positions]]
name = "{name}"
chain = "devnet"
pool = "{pool}"
[positions.open]
capital = {{ {capital} }}
accept_expected_loss = {accept}
[positions.strategy]
{strategy}
{signers}[auto_execute]
enabled = {auto}
max_value_usd = "100000"
via = "multisig"
"""


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bot's and two owners' keystores, encrypted once (scrypt takes a second each)."""
    path = tmp_path_factory.mktemp("keys")
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        write_keystore(path / f"{name}.json", bytes(dev_signer(index)._account.key), f"pw-{name}")
    return path


@dataclass
class Env:
    chain: Devnet
    tmp: Path
    keys: Path

    def config(self, *, capital: str = 'USDC = "3000", WETH = "1"', **kw: str) -> Path:
        m = self.chain.manifest
        owners = [dev_signer(i).address for i in (9, 10, 11)]
        manifest = self.tmp / "manifest.json"
        m.write(manifest)
        values = {
            "data": self.tmp / "data",
            "manifest": manifest,
            "name": NAME,
            "pool": "USDC/WETH-500",
            "capital": capital,
            "signers": HOT_QUORUM_SIGNERS.format(
                keys=self.keys, o1=owners[0], o2=owners[1], o3=owners[2]
            ),
            "auto": "true",
            # the devnet pool's fees are below its LVR: these tests open there on purpose
            "accept": "true",
            "strategy": 'kind = "fixed"\nhalf_width_ticks = 600',
            **kw,
        }
        path = self.tmp / "lpbot.toml"
        path.write_text(CONFIG.format(**values))
        return path

    def balances(self) -> tuple[int, int]:
        m = self.chain.manifest
        return tuple(  # type: ignore[return-value]
            contract(self.chain.w3, "TestERC20", m.token(s).address)
            .functions.balanceOf(m.safe)
            .call()
            for s in ("USDC", "WETH")
        )

    def nfts(self) -> int:
        m = self.chain.manifest
        npm = contract(
            self.chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
        )
        return int(npm.functions.balanceOf(m.safe).call())

    def safe_nonce(self) -> int:
        m = self.chain.manifest
        return int(contract(self.chain.w3, "SafeL2", m.safe or "").functions.nonce().call())


@pytest.fixture
def env(
    chain: Devnet, tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    for name in ("bot", "owner1", "owner2"):
        monkeypatch.setenv(f"LPBOT_TEST_{name.upper()}_PW", f"pw-{name}")
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    # the market trades for an hour: the pool's TWAP has history
    run_market(chain.w3, m, info, steps=6, vol=0.8, seed=3, step_seconds=600)
    # the Safe is funded with more than the capital: the open takes only what is configured
    trader = m.accounts.traders[0]
    for symbol, amount in (("USDC", 5_000 * 10**6), ("WETH", 2 * 10**18)):
        token = contract(chain.w3, "TestERC20", m.token(symbol).address)
        tx = token.functions.transfer(m.safe, amount).transact({"from": trader, "gas": GAS})
        chain.w3.eth.wait_for_transaction_receipt(tx)
    yield Env(chain, tmp_path, keys)


def _open(config: Path) -> tuple[App, tasks.PendingOpen]:
    app = App.load(config)
    runtime = build_runtime(app)
    assert NAME not in runtime.positions
    return app, runtime.opens[NAME]


def test_run_opens_the_configured_capital_as_one_safe_position(env: Env) -> None:
    m = env.chain.manifest
    config = env.config()
    before, nonce, nfts = env.balances(), env.safe_nonce(), env.nfts()
    app, po = _open(config)
    try:
        event = tasks.open_position(po)
        assert event.startswith("opened #"), event
        record = service.latest_open(po.ctx, NAME)
        assert record is not None and record.state == S.CONFIRMED and record.kind == "open"
        assert record.result is not None and record.result["matches_report"] is True
        report = read_report(po.ctx.reports_dir, record.report_id or "")
        assert report["operation"] == "open" and all(c["ok"] for c in report["checks"])
        assert report["position"]["capital"] == [str(3000 * 10**6), str(10**18)]
        token_id = po.token_id
        assert token_id == record.result["new_token_id"]
    finally:
        app.close()

    npm = contract(
        env.chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    assert npm.functions.ownerOf(token_id).call() == m.safe
    p = npm.functions.positions(token_id).call()
    assert [p[5], p[6]] == report["position"]["new_range"]
    assert str(p[7]) == report["position"]["new_liquidity"] == report["dry_run"]["new_liquidity"]
    # the Safe's balances moved exactly as the report said, to the wei, within the capital
    after = env.balances()
    change = report["dry_run"]["balance_change"]
    usdc, weth = m.token("USDC").address, m.token("WETH").address
    assert after[0] - before[0] == int(change[usdc])
    assert after[1] - before[1] == int(change[weth])
    assert 0 < before[0] - after[0] <= 3000 * 10**6 and 0 < before[1] - after[1] <= 10**18
    assert env.safe_nonce() == nonce + 1 and env.nfts() == nfts + 1

    # the next start manages the new NFT and opens nothing
    app = App.load(config)
    try:
        runtime = build_runtime(app)
        assert runtime.opens == {}
        assert runtime.positions[NAME].token_id == token_id
        assert tasks.monitor(runtime.positions[NAME]).tick_lower == p[5]
    finally:
        app.close()
    # the ledger's first cost is the open's gas, to the wei, counted once across restarts
    receipt = env.chain.w3.eth.get_transaction_receipt(record.result["tx_hash"])
    paid = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    app = App.load(config)
    try:
        runtime = build_runtime(app)
        tasks.monitor(runtime.positions[NAME])
        with runtime.sessions() as s:
            start = ledger_store.load(s, NAME)
            assert start is not None
            assert [(g.tx_hash, g.wei) for g in start.opening_gas] == [
                (record.result["tx_hash"], paid)
            ]
            last = ledger_store.history(s, NAME).points[-1].ledger
            assert sum(g.wei for g in last.gas) == paid  # no rebalance yet: the open alone
    finally:
        app.close()
    # and the open job run again (a second daemon, a replayed job) finds the first open
    app, _ = App.load(config), None
    try:
        ctx = app.execution_context(NAME, actor="test")
        assert service.latest_open(ctx, NAME).state == S.CONFIRMED  # type: ignore[union-attr]
    finally:
        app.close()
    assert env.safe_nonce() == nonce + 1 and env.nfts() == nfts + 1 and env.balances() == after


@pytest.mark.parametrize("capital", ['USDC = "3000"', 'WETH = "1"'])
def test_one_sided_capital_opens_and_the_swap_dust_comes_back_to_the_safe(
    env: Env, capital: str
) -> None:
    """Capital in one token: part of it is swapped to the other, and what the mint leaves of
    the swap's output stays in the Safe (a gain, not a taking). The report passes its checks, a
    person approves it, the owners sign and the chain moves the Safe's balances exactly as the
    report said, never taking more than the capital."""
    m = env.chain.manifest
    usdc, weth = m.token("USDC").address, m.token("WETH").address
    config = env.config(capital=capital, auto="false")
    before, nonce, nfts = env.balances(), env.safe_nonce(), env.nfts()
    app, po = _open(config)
    try:
        assert "awaits approval" in tasks.open_position(po)
        record = service.latest_open(po.ctx, NAME)
        assert record is not None and record.state == S.SIMULATED
        report = read_report(po.ctx.reports_dir, record.report_id or "")
        failed = [c for c in report["checks"] if not c["ok"]]
        assert failed == [], failed
        cap = [int(x) for x in report["position"]["capital"]]
        change = report["dry_run"]["balance_change"]
        taken = [-int(change[usdc]), -int(change[weth])]
        side = 0 if cap[0] > 0 else 1
        assert cap[1 - side] == 0 and 0 < taken[side] <= cap[side]
        # the other token: only what the swap gave and the mint did not use comes back
        dust = int(report["plan"]["dust1" if side == 0 else "dust0"])
        assert taken[1 - side] == -dust <= 0
        service.approve(po.ctx, record.report_id or "", approver="alice")
        assert tasks.open_position(po).startswith("opened #")
        record = service.latest_open(po.ctx, NAME)
        assert record is not None and record.state == S.CONFIRMED
        assert record.result is not None and record.result["matches_report"] is True
    finally:
        app.close()
    after = env.balances()
    assert after[0] - before[0] == int(change[usdc])
    assert after[1] - before[1] == int(change[weth])
    assert env.safe_nonce() == nonce + 1 and env.nfts() == nfts + 1


@pytest.mark.parametrize("crash_at", ["signed", "submitted"])
def test_a_crash_after_signing_or_sending_resumes_to_one_position(env: Env, crash_at: str) -> None:
    config = env.config()
    nonce, nfts = env.safe_nonce(), env.nfts()
    app, po = _open(config)

    def checkpoint(name: str) -> None:
        if name == crash_at:
            raise Crash(name)

    po.ctx.checkpoint = checkpoint
    try:
        with pytest.raises(Crash):
            tasks.open_position(po)
    finally:
        app.close()
    record = service.latest_open(po.ctx, NAME)
    assert record is not None and record.state.value == crash_at.upper()

    # the restarted daemon: its start resumes the open against the chain first, and manages
    # the NFT it minted
    app = App.load(config)
    try:
        runtime = build_runtime(app)
        assert [(r.kind, r.state) for _n, r in runtime.resumed] == [("open", S.CONFIRMED)]
        assert runtime.opens == {}
        token = runtime.positions[NAME].token_id
    finally:
        app.close()
    assert env.safe_nonce() == nonce + 1 and env.nfts() == nfts + 1
    app = App.load(config)
    try:
        runtime = build_runtime(app)
        assert runtime.opens == {} and runtime.positions[NAME].token_id == token
        assert runtime.resumed == []
    finally:
        app.close()
    assert env.safe_nonce() == nonce + 1 and env.nfts() == nfts + 1


def test_where_the_model_expects_a_loss_the_daemon_alerts_once_and_waits(env: Env) -> None:
    """The devnet pool's fees are below its LVR: without ``accept_expected_loss`` the daemon
    plans nothing, alerts once and asks again on the next tick; accepted, it opens in the width
    ``position quote`` chooses for the position's policy (``auto``), not a fixed fallback."""
    nonce, before, nfts = env.safe_nonce(), env.balances(), env.nfts()
    app, po = _open(env.config(accept="false", strategy='kind = "vol_band"'))
    notifier = MemoryNotifier()
    po.notifier = notifier
    try:
        first = tasks.open_position(po)
        assert first.startswith("open waits") and "do not LP here" in first, first
        assert tasks.open_position(po).startswith("open waits")  # the next tick
        assert [a.kind for a in notifier.alerts] == ["expected_loss"]
        assert service.latest_open(po.ctx, NAME) is None  # nothing recorded
    finally:
        app.close()
    assert (env.safe_nonce(), env.balances(), env.nfts()) == (nonce, before, nfts)

    app, po = _open(env.config(strategy='kind = "vol_band"'))
    try:
        m = env.chain.manifest
        reader = service.pool_reader(po.ctx)
        quote = quote_position(
            Chain(env.chain.w3, m, reader, po.ctx.pricer),
            "USDC/WETH-500",
            ["3000 USDC", "1 WETH"],
            "vol_band",
            app.policy(NAME).strategy,
            policy=app.policy(NAME),
        )
        assert quote.outlook is not None and quote.outlook.expects_loss
        assert tasks.open_position(po).startswith("opened #")
        record = service.latest_open(po.ctx, NAME)
        assert record is not None
        report = read_report(po.ctx.reports_dir, record.report_id or "")
        rng = quote.plan.range
        assert report["position"]["new_range"] == [rng.tick_lower, rng.tick_upper]
        # fees below LVR: the model's width is full range (before: vol_band's k = 2 fallback)
        assert rng.tick_lower == min_usable_tick(rng.tick_spacing)
    finally:
        app.close()
    assert env.nfts() == nfts + 1


def test_without_the_policy_the_open_waits_for_approval(env: Env) -> None:
    config = env.config(auto="false")
    nonce, before = env.safe_nonce(), env.balances()
    app, po = _open(config)
    try:
        first = tasks.open_position(po)
        assert "awaits approval" in first
        again = tasks.open_position(po)  # the next tick: the same report, no second plan
        assert again == first
        assert env.safe_nonce() == nonce and env.balances() == before
        record = service.latest_open(po.ctx, NAME)
        assert record is not None and record.state == S.SIMULATED
        # a person approves; the daemon's next tick signs with the owners' keys and sends
        service.approve(po.ctx, record.report_id or "", approver="alice")
        assert tasks.open_position(po).startswith("opened #")
    finally:
        app.close()
    assert env.safe_nonce() == nonce + 1


def test_bad_input_is_one_error_and_changes_nothing(env: Env) -> None:
    nonce, before = env.safe_nonce(), env.balances()
    # more than the Safe holds
    app, po = _open(env.config(capital='USDC = "3000", WETH = "50"'))
    try:
        # amounts as a person writes them (never 0E-18)
        with pytest.raises(
            Refused,
            match=r"50\.0{18} WETH is more than the Safe .* holds \([0-9]+\.[0-9]{18} WETH\)",
        ):
            tasks.open_position(po)
        assert service.latest_open(po.ctx, NAME) is None and po.ctx.repo.unfinished() == []
    finally:
        app.close()
    # a pool the chain does not have
    with pytest.raises(ConfigError, match="not a pool of this chain"):
        _open(env.config(pool="USDC/WETH-777"))
    # a token that is not the pool's
    with pytest.raises(ConfigError, match=r"open.capital.WBTC: not a token of pool"):
        _open(env.config(capital='USDC = "3000", WBTC = "1"'))
    # zero capital
    with pytest.raises(ConfigError, match="at least one amount must be > 0"):
        App.load(env.config(capital='USDC = "0"'))
    assert env.safe_nonce() == nonce and env.balances() == before
