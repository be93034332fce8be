"""``lpbot run`` as a user runs it: a real process, killed and restarted, never acting twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from lpbot.devnet.deploy import contract
from lpbot.store.models import RebalanceState
from lpbot.store.session import make_engine, session_factory
from tests.conftest import Devnet
from tests.jobs.conftest import rebalances as _rebalances

pytestmark = pytest.mark.devnet


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


def _ledger_started_once_and_adds_up(data: Path, *, opened: bool = False) -> None:
    """The daemon starts a position's ledger at its first snapshot and resumes it after the
    kill: one deposit in the store, and every stored snapshot's lines add up. ``opened``: the
    daemon opened the position and hedged it before the first snapshot: the hedge's first
    trade may already show at the start."""
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
        # a position the daemon opened pays its opening's gas from the start, once
        assert bool(start.opening_gas) == opened
        for gas in start.opening_gas:
            assert gas.wei == paid[gas.tx_hash] > 0
        opening = sum((g.usd for g in start.opening_gas), Decimal(0))
    assert h.points
    for p in h.points:
        u = p.ledger.usd
        assert u.net == u.fees + u.il + u.hedge_pnl + u.funding - u.gas - u.swap_costs
        value_less_hold = u.value + u.hedge_pnl + u.funding - u.gas - u.hold
        assert abs(u.net - value_less_hold) <= Decimal("0.02")  # each rounded on its own
    # the first snapshot is the start: nothing earned or lost yet (but a hedge's first trade)
    first = h.points[0].ledger.usd
    assert first.fees == 0 and first.gas == opening.quantize(Decimal("0.01"))
    assert abs(first.il) <= Decimal("0.01")  # IL, the derived line, takes the rounding residue
    expected = first.hedge_pnl + first.funding - first.gas if opened else Decimal(0)
    assert abs(first.net - expected) <= Decimal("0.01")
