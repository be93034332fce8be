"""``lpbot run`` as a user runs it: a real process, killed and restarted, never acting twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import push_feeds
from lpbot.signing.local import write_keystore
from lpbot.store.models import Rebalance, RebalanceState
from lpbot.store.session import make_engine, session_factory
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

CONFIG = """
version = 1
data_dir = "{data}"
[chains.devnet]
manifest = "{manifest}"
[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = {token_id}
[positions.strategy]
kind = "fixed"
half_width_ticks = 600
[positions.policy]
# the market below moves 0.4% every ten minutes: the spot stands up to about 80 bps off its
# TWAP, which a 10 bps slippage (and so TWAP) bound would refuse
slippage_bps = 100
edge_pct = "off"
vol_ratio_trigger = "off"
min_gain_over_cost = 0.0
[signer]
sender = "bot"
# the test's two owners sign from this one process: a hot quorum, accepted explicitly
allow_hot_quorum = true
[signer.keystores.bot]
path = "{data}/keys/bot.json"
password_env = "LPBOT_TEST_BOT_PW"
[signer.keystores.owner1]
path = "{data}/keys/owner1.json"
password_env = "LPBOT_TEST_OWNER1_PW"
[signer.keystores.owner2]
path = "{data}/keys/owner2.json"
password_env = "LPBOT_TEST_OWNER2_PW"
[signer.safe]
address = "devnet"
threshold = 2
owners = [
    {{ address = "{o1}", keystore = "owner1" }},
    {{ address = "{o2}", keystore = "owner2" }},
    {{ address = "{o3}" }},
]
[schedule]
monitor_seconds = 2
rebalance_check_seconds = 2
hedge_sync_seconds = 30
[auto_execute]
enabled = true
max_value_usd = "100000"
via = "multisig"
"""


@pytest.fixture
def setup(chain: Devnet, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Devnet]]:
    m = chain.manifest
    data = tmp_path / "data"
    env = dict(os.environ)
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        key = bytes(dev_signer(index)._account.key)
        write_keystore(data / "keys" / f"{name}.json", key, f"pw-{name}")
        env[f"LPBOT_TEST_{name.upper()}_PW"] = f"pw-{name}"
    manifest_path = tmp_path / "manifest.json"
    m.write(manifest_path)
    owners = [dev_signer(i).address for i in (9, 10, 11)]
    config = tmp_path / "lpbot.toml"
    config.write_text(
        CONFIG.format(
            data=data,
            manifest=manifest_path,
            token_id=m.safe_position,
            o1=owners[0],
            o2=owners[1],
            o3=owners[2],
        )
    )
    # the price moves 4% away: the position's +-300 ticks range is far behind
    info = m.pool("USDC/WETH-500")
    pool = contract(chain.w3, "UniswapV3Pool", info.address)
    router = contract(chain.w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[0]
    # the pair's other pool follows (arbitrage): the planner checks the spot against it
    others = [p for p in m.pools if {p.token0, p.token1} == {info.token0, info.token1}]
    for _ in range(6):  # in steps, a few minutes apart, so the TWAP follows
        target = pool.functions.slot0().call()[0] * 1004 // 1000
        for p in others:
            router.functions.exactInputSingle(
                (m.token(info.token1).address, m.token(info.token0).address, p.fee, trader,
                 10**24, 0, target)
            ).transact({"from": trader, "gas": GAS})  # fmt: skip
        chain.increase_time(600)
    push_feeds(chain.w3, m)  # the devnet's keeper: the feeds follow, the marks agree
    env["LPBOT_CONFIG"] = str(config)
    yield data, env, chain


def _rebalances(data: Path) -> list[Rebalance]:
    sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
    with sessions() as s:
        return list(s.scalars(select(Rebalance).order_by(Rebalance.id)))


def _start(env: dict[str, str], seconds: float, out: Path) -> subprocess.Popen[str]:
    """``lpbot run`` in the background, its output to a file (a pipe nobody reads while it
    runs could fill and stall it)."""
    with out.open("w") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "lpbot", "run", "--seconds", str(seconds)],
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_run_survives_a_kill_and_never_repeats_a_rebalance(
    setup: tuple[Path, dict[str, str], Devnet],
) -> None:
    data, env, chain = setup
    safe = contract(chain.w3, "SafeL2", chain.manifest.safe or "")
    nonce = safe.functions.nonce().call()

    # generous waits: each returns as soon as its condition holds, and a loaded machine is slow
    first_out, second_out = data / "first.out", data / "second.out"
    first = _start(env, 180, first_out)
    try:
        assert _wait(lambda: (data / "lpbot.db").exists() and _rebalances(data), 150), (
            first_out.read_text()
        )
        os.kill(first.pid, signal.SIGKILL)  # killed as soon as a rebalance exists
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()

    second = _start(env, 180, second_out)
    try:
        assert _wait(
            lambda: any(r.state == RebalanceState.CONFIRMED for r in _rebalances(data)), 150
        ), second_out.read_text()
        # while it runs, a second `lpbot run` on the same database refuses to start
        third = subprocess.run(
            [sys.executable, "-m", "lpbot", "run", "--seconds", "5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert third.returncode == 2
        assert "instance lock" in third.stderr
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    out = second_out.read_text()
    assert second.returncode == 0, out

    confirmed = [r for r in _rebalances(data) if r.state == RebalanceState.CONFIRMED]
    assert len(confirmed) >= 1
    # every confirmed rebalance is one Safe execution, and nothing executed twice
    assert safe.functions.nonce().call() == nonce + len(confirmed)
    assert "rebalanced into" in out or any(r.report_id for r in confirmed)
    _ledger_started_once_and_adds_up(data)


def _ledger_started_once_and_adds_up(data: Path) -> None:
    """The daemon starts a position's ledger at its first snapshot and resumes it after the
    kill: one deposit in the store, and every stored snapshot's lines add up."""
    from lpbot.jobs import ledger as ledger_store
    from lpbot.store.models import AuditEntry, Transaction

    sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
    with sessions() as s:
        deposits = s.scalars(select(AuditEntry).where(AuditEntry.kind == "ledger_deposit")).all()
        assert len(deposits) == 1
        (label,) = ledger_store.labels(s)
        h = ledger_store.history(s, label)
        start = ledger_store.load(s, label)
        assert start is not None
        # the ledger's gas is what the transactions table recorded from each receipt
        paid = {t.tx_hash: t.gas_paid for t in s.scalars(select(Transaction))}
        for _block, _flow, gas in start.rebalances:
            assert gas.wei == paid[gas.tx_hash] > 0
    assert h.points
    for p in h.points:
        u = p.ledger.usd
        assert u.net == u.fees + u.il + u.hedge_pnl + u.funding - u.gas - u.swap_costs
        assert u.net == u.value + u.hedge_pnl + u.funding - u.gas - u.hold
    # the first snapshot is the start: nothing earned or lost yet
    first = h.points[0].ledger.usd
    assert (first.fees, first.il, first.net) == (0, 0, 0)
