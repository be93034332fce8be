"""A restart after a crash at any moment of a rebalance: the chain's truth first.

Killed right after the Safe transaction is sent (the row SUBMITTED, the transaction mined), the
next start finishes the rebalance against the chain before it reads which NFT it manages: the
row CONFIRMED, the burned NFT closed and the minted one managed, in one database transaction.
An NFT burned by a transaction the store never recorded is followed on the chain, not fatal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lpbot.app import App
from lpbot.devnet.deploy import contract
from lpbot.devnet.keys import dev_signer
from lpbot.execution import service
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.runtime import build_runtime
from lpbot.store.models import Position, RebalanceState
from lpbot.store.session import make_engine, session_factory
from lpbot.testing.fakes import MemoryRebalanceRepo
from tests.conftest import Devnet
from tests.jobs.conftest import rebalances

pytestmark = pytest.mark.devnet


class Crash(BaseException):
    """Stands for the process dying at a checkpoint (nothing after it runs)."""


def _positions(data: Path) -> list[Position]:
    sessions = session_factory(make_engine(f"sqlite:///{data / 'lpbot.db'}"))
    with sessions() as s:
        return list(s.scalars(select(Position).order_by(Position.id)))


def _load(env: dict[str, str]) -> App:
    return App.load(env["LPBOT_CONFIG"], environ=env)


def test_killed_after_the_safe_transaction_is_sent_the_restart_manages_the_new_nft(
    setup: tuple[Path, dict[str, str], Devnet], passwords: None
) -> None:
    data, env, chain = setup
    m = chain.manifest
    safe = contract(chain.w3, "SafeL2", m.safe or "")
    npm = contract(
        chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    nonce = safe.functions.nonce().call()
    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    mp = runtime.positions["eth-usdc"]
    old = mp.token_id
    tasks.monitor(mp)  # the store knows the position under its name

    def crash(name: str) -> None:
        if name == "mined":  # the Safe transaction sent and mined, the row SUBMITTED
            raise Crash(name)

    mp.ctx.checkpoint = crash
    with pytest.raises(Crash):
        tasks.rebalance_check(mp)
    runtime.close()
    app.close()
    # the chain executed it; the store stopped at SUBMITTED with the old NFT still open
    (row,) = rebalances(data)
    assert row.state == RebalanceState.SUBMITTED
    (sent,) = row.plan["tx_hashes"]
    chain.w3.eth.wait_for_transaction_receipt(sent)  # Anvil answers before it mines
    assert safe.functions.nonce().call() == nonce + 1
    assert [int(p.token_id) for p in _positions(data) if p.closed_at is None] == [old]

    notifier = MemoryNotifier()
    app = _load(env)
    runtime = build_runtime(app, notifier=notifier)
    try:
        mp = runtime.positions["eth-usdc"]
        (row,) = rebalances(data)
        assert row.state == RebalanceState.CONFIRMED
        new = int(row.plan["result"]["new_token_id"])
        assert mp.token_id == new != old
        assert npm.functions.ownerOf(new).call() == m.safe
        assert [r.state.value for _name, r in runtime.resumed] == ["CONFIRMED"]
        positions = {int(p.token_id): p for p in _positions(data)}
        assert positions[old].closed_at is not None
        assert positions[new].closed_at is None and positions[new].label == "eth-usdc"
        assert positions[new].replaces_id == positions[old].id
        lower, upper = npm.functions.positions(new).call()[5:7]
        assert (positions[new].tick_lower, positions[new].tick_upper) == (lower, upper)
        # the ledger has the rebalance's flows and gas, as if it had not been interrupted
        from lpbot.jobs import ledger as ledger_store

        with mp.sessions() as s:
            start = ledger_store.load(s, "eth-usdc")
        assert start is not None
        assert [g.tx_hash for _b, _f, g in start.rebalances] == [row.plan["result"]["tx_hash"]]
        state = tasks.monitor(mp)  # and it is managed: the monitor reads the new NFT
        assert (state.tick_lower, state.tick_upper) == (lower, upper)
        assert safe.functions.nonce().call() == nonce + 1  # nothing executed twice
    finally:
        runtime.close()
        app.close()


def _rebalance_elsewhere(mp: Any, chain: Devnet) -> tuple[int, Any]:
    """Another process (its store lost) rebalances the Safe's NFT: the chain is all that knows.
    Returns the minted NFT and its range."""
    from lpbot.strategy.base import Range

    ctx = mp.ctx
    ctx.repo = MemoryRebalanceRepo()
    pool = contract(chain.w3, "UniswapV3Pool", mp.pool)
    tick = pool.functions.slot0().call()[1]
    new_range = Range(tick // 10 * 10 - 600, tick // 10 * 10 + 600, 10)
    _, report, _ = service.plan_rebalance(ctx, mp.token_id, new_range, "elsewhere")
    service.approve(ctx, report["report_id"], approver="someone")
    record = service.execute(ctx, report["report_id"], signers=[dev_signer(9), dev_signer(10)])
    assert record.state == "CONFIRMED" and record.result is not None
    return int(record.result["new_token_id"]), new_range


def test_an_nft_burned_outside_the_store_is_followed_on_the_chain(
    setup: tuple[Path, dict[str, str], Devnet], passwords: None
) -> None:
    data, env, chain = setup
    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    mp = runtime.positions["eth-usdc"]
    old = mp.token_id
    tasks.monitor(mp)
    new, new_range = _rebalance_elsewhere(mp, chain)
    runtime.close()
    app.close()

    notifier = MemoryNotifier()
    app = _load(env)
    runtime = build_runtime(app, notifier=notifier)  # not "position does not exist"
    try:
        assert runtime.positions["eth-usdc"].token_id == new
        positions = {int(p.token_id): p for p in _positions(data)}
        assert positions[old].closed_at is not None
        assert positions[new].closed_at is None and positions[new].label == "eth-usdc"
        assert (positions[new].tick_lower, positions[new].tick_upper) == (
            new_range.tick_lower,
            new_range.tick_upper,
        )
        assert [a.kind for a in notifier.alerts] == ["position_reconciled"]
    finally:
        runtime.close()
        app.close()


def test_a_configured_nft_burned_before_the_store_existed_is_followed_to_its_successor(
    setup: tuple[Path, dict[str, str], Devnet], passwords: None
) -> None:
    """A new database and a configured token_id that was rebalanced elsewhere: the start
    follows the chain to the NFT that replaced it (the configured one is that position's past),
    instead of refusing with a suggestion to adopt the burned NFT."""
    data, env, chain = setup
    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    mp = runtime.positions["eth-usdc"]
    assert mp.token_id == chain.manifest.safe_position  # the configured token_id
    new, _range = _rebalance_elsewhere(mp, chain)
    runtime.close()
    app.close()
    (data / "lpbot.db").unlink()  # the store is lost; the configuration still names the old NFT

    notifier = MemoryNotifier()
    app = _load(env)
    runtime = build_runtime(app, notifier=notifier)
    try:
        assert runtime.positions["eth-usdc"].token_id == new
        assert [a.kind for a in notifier.alerts] == ["position_reconciled"]
        assert {int(p.token_id) for p in _positions(data) if p.closed_at is None} == {new}
    finally:
        runtime.close()
        app.close()


def test_lpbot_run_killed_after_sending_restarts_on_the_new_nft(
    setup: tuple[Path, dict[str, str], Devnet],
) -> None:
    """The issue's case with a real SIGKILL: the process dies the moment the Safe transaction
    is recorded as sent; the next ``lpbot run`` starts (no exit 2) and manages the new NFT."""
    data, env, chain = setup
    m = chain.manifest
    safe = contract(chain.w3, "SafeL2", m.safe or "")
    nonce = safe.functions.nonce().call()
    killed = subprocess.run(
        [sys.executable, "-m", "lpbot", "run", "--seconds", "60"],
        env={**env, "LPBOT_KILL_AT": "mined"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    (row,) = rebalances(data)
    assert row.state == RebalanceState.SUBMITTED
    (sent,) = row.plan["tx_hashes"]
    chain.w3.eth.wait_for_transaction_receipt(sent)  # Anvil answers before it mines
    assert safe.functions.nonce().call() == nonce + 1

    again = subprocess.run(
        [sys.executable, "-m", "lpbot", "run", "--seconds", "4"],
        env={k: v for k, v in env.items() if k != "LPBOT_KILL_AT"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    states = [r.state for r in rebalances(data)]
    assert states[0] == RebalanceState.CONFIRMED
    new = int(rebalances(data)[0].plan["result"]["new_token_id"])
    assert f"#{new}" in again.stdout or "monitor" in again.stdout
    open_rows = [p for p in _positions(data) if p.closed_at is None]
    assert [int(p.token_id) for p in open_rows if p.label == "eth-usdc"] == [new]
    # every confirmed rebalance is one Safe execution
    confirmed = sum(s == RebalanceState.CONFIRMED for s in states)
    assert safe.functions.nonce().call() == nonce + confirmed


def _fork_anvils(url: str) -> list[int]:
    """The pids of Anvil processes forking ``url`` (the dry-run forks) not started by this
    test process (an orphan of a killed lpbot run is the kernel's, or init's, child)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"anvil") and url.encode() in args:
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:  # it ended meanwhile
                continue
            if ppid != os.getpid():
                pids.append(int(proc.name))
    return pids


def test_killed_during_a_dry_run_the_managed_chain_is_unchanged(
    setup: tuple[Path, dict[str, str], Devnet],
) -> None:
    """The dry-run impersonates the owners, approves and executes on a disposable fork: killed
    right after that execution, the devnet itself shows no approval, no execution, no new NFT;
    and the fork died with the process."""
    data, env, chain = setup
    m = chain.manifest
    w3 = chain.w3
    safe = contract(w3, "SafeL2", m.safe or "")
    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    token = m.safe_position
    assert token is not None
    nonce, block = safe.functions.nonce().call(), w3.eth.block_number
    balance = npm.functions.balanceOf(m.safe).call()
    killed = subprocess.run(
        [sys.executable, "-m", "lpbot", "run", "--seconds", "60"],
        env={**env, "LPBOT_KILL_AT": "dry-run"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    (row,) = rebalances(data)
    assert row.state == RebalanceState.PLANNED  # killed inside its dry-run
    assert safe.functions.nonce().call() == nonce
    assert w3.eth.block_number == block  # not one transaction on the managed chain
    assert list(safe.events.ApproveHash().get_logs(fromBlock=block)) == []
    assert list(safe.events.ExecutionSuccess().get_logs(fromBlock=block)) == []
    assert npm.functions.ownerOf(token).call() == m.safe
    assert npm.functions.balanceOf(m.safe).call() == balance
    deadline = time.monotonic() + 10
    while _fork_anvils(chain.url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _fork_anvils(chain.url) == []


def test_rebalance_resume_reads_the_configuration_and_brings_the_store_to_the_chain(
    setup: tuple[Path, dict[str, str], Devnet],
    passwords: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`lpbot rebalance resume --config lpbot.toml` (the README's remedy) finishes the rebalance
    a kill left SUBMITTED with its transaction mined, and the next start manages the new NFT."""
    from lpbot.cli import main

    data, env, _chain = setup
    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    mp = runtime.positions["eth-usdc"]
    old = mp.token_id
    tasks.monitor(mp)

    def crash(name: str) -> None:
        if name == "mined":
            raise Crash(name)

    mp.ctx.checkpoint = crash
    with pytest.raises(Crash):
        tasks.rebalance_check(mp)
    runtime.close()
    app.close()

    assert main(["rebalance", "resume", "--config", env["LPBOT_CONFIG"]]) == 0
    (row,) = rebalances(data)
    assert row.state == RebalanceState.CONFIRMED
    new = int(row.plan["result"]["new_token_id"])
    assert f"rebalance {row.id}: CONFIRMED" in capsys.readouterr().out
    assert [int(p.token_id) for p in _positions(data) if p.closed_at is None] == [new]
    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    try:
        assert runtime.positions["eth-usdc"].token_id == new != old
        assert runtime.resumed == []  # nothing left to resume
    finally:
        runtime.close()
        app.close()


def _mint_full_range_to_safe(chain: Devnet) -> int:
    """A second NFT of the devnet's Safe (full range: in range whatever the price)."""
    from web3.logs import DISCARD

    from lpbot.analytics.full_range import full_range_ticks
    from lpbot.devnet.deploy import GAS

    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    npm = contract(
        chain.w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    lo, hi = full_range_ticks(10)
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    t0, t1 = m.token(info.token0), m.token(info.token1)
    amounts = (10 ** (t0.decimals + 2) // 10, 10 ** (t1.decimals + 2) // 10)
    params = (t0.address, t1.address, info.fee, lo, hi, *amounts, 0, 0, m.safe, deadline)
    tx = npm.functions.mint(params).transact({"from": m.accounts.bot, "gas": GAS})
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
    event = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]
    return int(event["args"]["tokenId"])


def test_a_rebalance_interrupted_on_one_position_is_finished_by_its_own_check_not_a_neighbours(
    setup: tuple[Path, dict[str, str], Devnet], passwords: None
) -> None:
    # two positions of one Safe on one chain (their jobs share the chain's executor): the
    # first one's rebalance stops after its transaction is mined (its node died, say); the
    # other position's check runs first when the chain is back. The interrupted rebalance
    # is finished for its own position: it manages the new NFT, its ledger has the rebalance
    from lpbot.jobs import ledger as ledger_store

    data, env, chain = setup
    npm = contract(
        chain.w3,
        "NonfungiblePositionManager",
        chain.manifest.contracts["NonfungiblePositionManager"],
    )
    other = _mint_full_range_to_safe(chain)
    config = Path(env["LPBOT_CONFIG"])
    config.write_text(
        config.read_text()
        + f'\n[[positions]]\nname = "wide"\nchain = "devnet"\npool = "USDC/WETH-500"\n'
        f'token_id = {other}\n[positions.strategy]\nkind = "full_range"\n'
    )
    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    try:
        mp, wide = runtime.positions["eth-usdc"], runtime.positions["wide"]
        old = mp.token_id
        tasks.monitor(mp)
        tasks.monitor(wide)

        def crash(name: str) -> None:
            if name == "mined":
                raise Crash(name)

        mp.ctx.checkpoint = crash
        with pytest.raises(Crash):
            tasks.rebalance_check(mp)
        mp.ctx.checkpoint = lambda _name: None
        (row,) = rebalances(data)
        assert row.state == RebalanceState.SUBMITTED
        chain.w3.eth.wait_for_transaction_receipt(row.plan["tx_hashes"][0])

        tasks.rebalance_check(wide)  # the neighbour's check comes first
        assert wide.token_id == other
        tasks.rebalance_check(mp)
        (row,) = rebalances(data)
        assert row.state == RebalanceState.CONFIRMED
        new = int(row.plan["result"]["new_token_id"])
        assert mp.token_id == new != old
        with mp.sessions() as s:
            start = ledger_store.load(s, "eth-usdc")
        assert start is not None
        assert [g.tx_hash for _b, _f, g in start.rebalances] == [row.plan["result"]["tx_hash"]]
        state = tasks.monitor(mp)
        assert (state.tick_lower, state.tick_upper) == tuple(
            npm.functions.positions(new).call()[5:7]
        )
    finally:
        runtime.close()
        app.close()


def test_a_rebalance_interrupted_on_the_second_position_of_a_chain_is_booked_in_its_ledger(
    setup: tuple[Path, dict[str, str], Devnet], passwords: None
) -> None:
    # the start resumes a chain's unfinished rebalances through its first position's context:
    # one of the chain's second position, confirmed then, is that position's (its NFT, its
    # ledger), as if it had not been interrupted
    from lpbot.jobs import ledger as ledger_store

    data, env, chain = setup
    other = _mint_full_range_to_safe(chain)
    config = Path(env["LPBOT_CONFIG"])
    wide = (
        f'[[positions]]\nname = "wide"\nchain = "devnet"\npool = "USDC/WETH-500"\n'
        f'token_id = {other}\n[positions.strategy]\nkind = "full_range"\n\n'
    )
    config.write_text(config.read_text().replace("[[positions]]\n", wide + "[[positions]]\n", 1))
    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    mp = runtime.positions["eth-usdc"]
    old = mp.token_id
    tasks.monitor(mp)

    def crash(name: str) -> None:
        if name == "mined":
            raise Crash(name)

    mp.ctx.checkpoint = crash
    with pytest.raises(Crash):
        tasks.rebalance_check(mp)
    runtime.close()
    app.close()
    (row,) = rebalances(data)
    chain.w3.eth.wait_for_transaction_receipt(row.plan["tx_hashes"][0])

    app = _load(env)
    runtime = build_runtime(app, notifier=MemoryNotifier())
    try:
        (row,) = rebalances(data)
        assert row.state == RebalanceState.CONFIRMED
        new = int(row.plan["result"]["new_token_id"])
        mp = runtime.positions["eth-usdc"]
        assert mp.token_id == new != old and runtime.positions["wide"].token_id == other
        assert [(name, r.id) for name, r in runtime.resumed] == [("eth-usdc", row.id)]
        with mp.sessions() as s:
            start = ledger_store.load(s, "eth-usdc")
        assert start is not None
        assert [g.tx_hash for _b, _f, g in start.rebalances] == [row.plan["result"]["tx_hash"]]
    finally:
        runtime.close()
        app.close()
