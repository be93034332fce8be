"""Hot standby: two real ``lpbot run`` processes on one database, the second ``--standby``.

The active one is killed (SIGKILL, at a checkpoint of the crash harness: mid-rebalance with
its transaction mined and nothing reconciled, or mid-hedge with an order filled at the venue
and not booked), or cut off from PostgreSQL (every connection it opens is terminated); the
standby takes the instance lock within ``standby_takeover_seconds``, resumes, and the
harness's checker compares the chain, the venue and the store (``scripts/chaos.py``): one
execution per confirmed rebalance, one mint, every venue order booked once, no client order
id sent twice. PostgreSQL tests run when ``LPBOT_TEST_POSTGRES_URL`` names a server
(``scripts/ci-postgres.sh``); the SQLite one runs everywhere (same machine, the lease).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select, text

from lpbot.chain.artifacts import project_root
from lpbot.store.instances import instances
from lpbot.store.models import AuditEntry, HedgeOrder, Rebalance, Transaction
from lpbot.store.session import make_engine
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

TAKEOVER = 6  # [schedule] standby_takeover_seconds: the lock is tried every 2 s
UNFINISHED = ("PLANNED", "APPROVED", "SIGNED", "SUBMITTED")


def _chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lpbot_chaos", project_root() / "scripts" / "chaos.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chaos = _chaos()


def _needs_postgres() -> None:
    if not os.environ.get("LPBOT_TEST_POSTGRES_URL"):
        pytest.skip("LPBOT_TEST_POSTGRES_URL is not set (scripts/ci-postgres.sh starts a server)")


@contextmanager
def harness(work: Path, backend: str) -> Iterator[Any]:
    """The crash harness's devnet, Safe position, hedge and configuration, with a short
    takeover time."""
    with chaos.database(backend, work) as url:
        h = chaos.Harness(work, 1, url)
        config = Path(h.env["LPBOT_CONFIG"])
        config.write_text(
            config.read_text().replace(
                "[schedule]\n", f"[schedule]\nstandby_takeover_seconds = {TAKEOVER}\n"
            )
        )
        try:
            yield h
        finally:
            h.close()


class Run:
    """One ``lpbot run`` process and its output."""

    def __init__(
        self,
        h: Any,
        name: str,
        *flags: str,
        kill_at: str | None = None,
        pause_at: str | None = None,
        unset: tuple[str, ...] = (),
    ) -> None:
        env = {k: v for k, v in h.env.items() if k not in unset}
        if kill_at:
            env["LPBOT_KILL_AT"] = kill_at
        if pause_at:
            env["LPBOT_PAUSE_AT"] = pause_at
        self.log = h.work / f"{name}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lpbot", "run", "--seconds", "400", *flags],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=h.work,
        )
        self.owner = f"{self.proc.pid}@{socket.gethostname()}"
        self.ended_at: float | None = None  # wall time its end was seen

    def stopped(self) -> bool:
        """Whether the process stopped itself (SIGSTOP: state T)."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] == "T"

    def output(self) -> str:
        return self.log.read_text()

    def wait_output(self, marker: str, timeout: float) -> None:
        """Until the process has printed ``marker`` (it reached that point)."""
        deadline = time.monotonic() + timeout
        while marker not in self.output():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {marker!r} in:\n{self.output()}"
            time.sleep(0.1)

    def wait_end(self, timeout: float, while_waiting: Callable[[], None] = lambda: None) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running:\n{self.output()}"
            while_waiting()
            time.sleep(0.05)
        self.ended_at = time.time()
        self._out.close()
        return self.proc.returncode

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_end(120)


def until(what: str, check: Callable[[], bool], timeout: float, *runs: Run) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {r.log.name}\n{r.output()}" for r in runs)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)


def rebalance_states(h: Any) -> list[str]:
    if not h.migrated():
        return []
    with h.sessions() as s:
        return [r.state.value for r in s.scalars(select(Rebalance).order_by(Rebalance.id))]


def settled(h: Any) -> bool:
    """At least one rebalance confirmed, none unfinished."""
    states = rebalance_states(h)
    return "CONFIRMED" in states and not set(states) & set(UNFINISHED)


def takeover_entry(h: Any) -> dict[str, Any] | None:
    """The standby's takeover record, with ``at``: when it had resumed and was about to act."""
    with h.sessions() as s:
        row = s.scalars(select(AuditEntry).where(AuditEntry.kind == "instance_takeover")).first()
        if row is None or not row.data:
            return None
        return {**row.data, "at": row.at}


def standing_by(h: Any, run: Run) -> bool:
    engine = make_engine(h.db_url)
    try:
        return any(
            i.owner == run.owner and i.role == "standby"
            for i in instances(engine, interval_seconds=TAKEOVER / 3)
        )
    finally:
        engine.dispose()


def start_pair(
    h: Any, *, kill_at: str | None = None, pause_at: str | None = None
) -> tuple[Run, Run]:
    """The active ``lpbot run`` (its jobs scheduled), then the standby (standing by)."""
    active = Run(h, "active", kill_at=kill_at, pause_at=pause_at)
    active.wait_output("jobs scheduled", 180)
    standby = Run(h, "standby", "--standby")
    until("the standby to stand by", lambda: standing_by(h, standby), 120, active, standby)
    return active, standby


def status_json(h: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "lpbot", "status", "--json"],
        env=h.env,
        cwd=h.work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def took_over(h: Any, active: Run, standby: Run, since: float | None = None) -> float:
    """The standby's takeover was recorded, naming it and the one it took over from; the
    seconds from the active's end (or ``since``) to the standby taking the lock (printed
    for the README)."""
    until("the takeover", lambda: takeover_entry(h) is not None, 120, active, standby)
    entry = takeover_entry(h)
    assert entry is not None
    assert entry["active"] == standby.owner
    assert entry["previous"] == active.owner
    start = since if since is not None else active.ended_at
    assert start is not None
    seconds = datetime.fromisoformat(entry["locked_at"]).timestamp() - start
    at = entry["at"] if entry["at"].tzinfo else entry["at"].replace(tzinfo=UTC)
    print(
        f"takeover: lock taken {seconds:.2f} s after the active's end was seen, resumed and "
        f"acting after {at.timestamp() - start:.2f} s"
    )
    return seconds


def one_mint_per_confirmed(h: Any, *, at_least: int) -> None:
    """Every NFT minted to the Safe since the start is one confirmed rebalance's, and each
    confirmed rebalance has exactly one mined transaction."""
    with h.sessions() as s:
        confirmed = [r for r in s.scalars(select(Rebalance)) if r.state.value == "CONFIRMED"]
        for r in confirmed:
            mined = s.scalars(
                select(Transaction).where(
                    Transaction.rebalance_id == r.id, Transaction.block_number.is_not(None)
                )
            ).all()
            assert len(mined) == 1, f"rebalance {r.id}: {len(mined)} mined transactions"
    mints = [
        e
        for e in h.npm.events.Transfer().get_logs(fromBlock=h.block0 + 1)
        if e["args"]["from"] == chaos.ZERO
    ]
    assert len(mints) == len(confirmed) >= at_least


def finish(h: Any, standby: Run, *, rebalanced: bool = True) -> None:
    """The standby finished what was left: stopped, then the chain, venue and store agree."""
    if rebalanced:
        until("the rebalance to be confirmed", lambda: settled(h), 180, standby)
    time.sleep(2 * 3)  # a hedge sync or two after the rebalance (hedge_sync_seconds = 3)
    assert standby.stop() == 0, standby.output()
    assert h.check() == []
    one_mint_per_confirmed(h, at_least=1 if rebalanced else 0)


def test_kill_mid_rebalance_standby_takes_over_and_finishes_it(
    devnet: Devnet, tmp_path: Path
) -> None:
    del devnet  # its deployed state is cached: the harness's own devnet loads it
    _needs_postgres()
    with harness(tmp_path, "postgresql") as h:
        active, standby = start_pair(h, kill_at="mined")
        data = status_json(h)
        assert data["daemon"] == active.owner
        assert [(i["owner"], i["role"]) for i in data["instances"]] == [
            (active.owner, "active"),
            (standby.owner, "standby"),
        ]
        h.move_market()  # out of range: the active rebalances and dies with it mined
        assert active.wait_end(180) == -signal.SIGKILL
        assert took_over(h, active, standby) < TAKEOVER + 1
        finish(h, standby)
        assert rebalance_states(h).count("CONFIRMED") == 1


def test_kill_mid_hedge_order_no_order_doubled(devnet: Devnet, tmp_path: Path) -> None:
    del devnet
    _needs_postgres()
    with harness(tmp_path, "postgresql") as h:
        # a first run opens the hedge, so the killed one's order is the move's
        first = Run(h, "first")
        first.wait_output("jobs scheduled", 180)
        until("the hedge's first order", lambda: booked_orders(h) >= 1, 60, first)
        assert first.stop() == 0, first.output()
        before = booked_orders(h)
        active, standby = start_pair(h, kill_at="hedge-sent")
        nudge(h)  # the delta moves, in range: the hedge's order fills and the active dies
        assert active.wait_end(180) == -signal.SIGKILL
        assert took_over(h, active, standby) < TAKEOVER + 1
        finish(h, standby, rebalanced=False)
        # the order the active sent and never booked is booked once, by the standby
        assert booked_orders(h) > before


def nudge(h: Any) -> None:
    """Move the price some 60 ticks (two 0.3% swaps on each of the pair's pools), staying in
    the range: the LP delta moves past the hedge's band, no rebalance is due."""
    m = h.manifest
    info = m.pool("USDC/WETH-500")
    pool = chaos.contract(h.w3, "UniswapV3Pool", info.address)
    router = chaos.contract(h.w3, "SwapRouter02", m.contracts["SwapRouter02"])
    trader = m.accounts.traders[0]
    t0, t1 = m.token(info.token0).address, m.token(info.token1).address
    pools = [p for p in m.pools if {p.token0, p.token1} == {info.token0, info.token1}]
    for _ in range(2):
        sqrt = pool.functions.slot0().call()[0]
        for p in pools:
            args = (t1, t0, p.fee, trader, 10**24, 0, sqrt * 1003 // 1000)
            sent = router.functions.exactInputSingle(args).transact(
                {"from": trader, "gas": chaos.GAS}
            )
            h.w3.eth.wait_for_transaction_receipt(sent)
    chaos.push_feeds(h.w3, m)


def booked_orders(h: Any) -> int:
    if not h.migrated():
        return 0
    with h.sessions() as s:
        rows = s.scalars(select(HedgeOrder)).all()
        return sum(1 for o in rows if o.status.value == "FILLED")


def test_partition_the_active_stops_and_the_standby_takes_over(
    devnet: Devnet, tmp_path: Path
) -> None:
    """Every connection the active opens is terminated (pg_terminate_backend, again and again,
    as long as it runs): it cannot renew its lock, records nothing more, exits 2; the standby
    takes over."""
    del devnet
    _needs_postgres()
    with harness(tmp_path, "postgresql") as h:
        active, standby = start_pair(h)
        h.move_market()
        until("a rebalance", lambda: bool(rebalance_states(h)), 120, active, standby)
        admin = make_engine(h.db_url)
        name = f"lpbot {active.owner}"

        def cut() -> None:
            with admin.connect() as c:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :n"
                    ),
                    {"n": name},
                )
                c.commit()

        cut_at = time.time()
        try:
            code = active.wait_end(3 * TAKEOVER, while_waiting=cut)
        finally:
            admin.dispose()
        assert code == 2, active.output()
        assert active.ended_at is not None
        print(f"partition: the active exited {active.ended_at - cut_at:.2f} s after the cut")
        took_over(h, active, standby)
        finish(h, standby)


def test_paused_mid_send_the_standby_ends_its_session_and_nothing_is_doubled(
    devnet: Devnet, tmp_path: Path
) -> None:
    """The active stops itself (SIGSTOP, a suspended VM) with its Safe transaction recorded
    and not yet broadcast: its connections stay open, so PostgreSQL keeps its lock; its
    heartbeat stops, and after ``standby_takeover_seconds`` the standby ends its session,
    takes over and sends the recorded transaction. Resumed (SIGCONT), the old active
    broadcasts the same signed bytes, records nothing (the fence) and exits 2: one mint."""
    del devnet
    _needs_postgres()
    with harness(tmp_path, "postgresql") as h:
        active, standby = start_pair(h, pause_at="submitted")
        h.move_market()
        until("the active to stop mid-send", active.stopped, 180, active, standby)
        paused_at = time.time()
        seconds = took_over(h, active, standby, since=paused_at)
        # not at once: only once its heartbeat was unchanged for TAKEOVER seconds (the last
        # one up to a third of TAKEOVER before the pause), then at the next try
        assert 2 * TAKEOVER / 3 - 1 <= seconds < TAKEOVER + TAKEOVER / 3 + 2
        until("the rebalance to be confirmed", lambda: settled(h), 180, active, standby)
        active.proc.send_signal(signal.SIGCONT)
        assert active.wait_end(120) == 2, active.output()
        finish(h, standby)
        assert rebalance_states(h).count("CONFIRMED") == 1


def test_sqlite_standby_on_the_same_machine_takes_over_the_lease(
    devnet: Devnet, tmp_path: Path
) -> None:
    """SQLite: the lease row; a killed holder on this host is seen gone at the next try."""
    del devnet
    with harness(tmp_path, "sqlite") as h:
        active, standby = start_pair(h, kill_at="mined")
        h.move_market()
        assert active.wait_end(180) == -signal.SIGKILL
        assert took_over(h, active, standby) < TAKEOVER + 1
        finish(h, standby)
        assert rebalance_states(h).count("CONFIRMED") == 1


def test_a_second_plain_run_is_refused_naming_the_active(devnet: Devnet, tmp_path: Path) -> None:
    del devnet
    with harness(tmp_path, "sqlite") as h:
        active = Run(h, "active")
        active.wait_output("jobs scheduled", 180)
        second = Run(h, "second")
        assert second.wait_end(120) == 2
        assert active.owner in second.output()
        assert active.stop() == 0


def test_a_standby_without_its_key_password_refuses_before_standing_by(
    devnet: Devnet, tmp_path: Path
) -> None:
    """A standby checks its keys when it starts: a missing password is one clear error now,
    not a failed takeover after the active one has died."""
    del devnet
    with harness(tmp_path, "sqlite") as h:
        active = Run(h, "active")
        active.wait_output("jobs scheduled", 180)
        standby = Run(h, "standby", "--standby", unset=("LPBOT_CHAOS_BOT_PW",))
        try:
            assert standby.wait_end(60) != 0
            assert "LPBOT_CHAOS_BOT_PW" in standby.output()
            assert "standing by" not in standby.output()
        finally:
            if standby.proc.poll() is None:
                standby.proc.kill()
            assert active.stop() == 0
