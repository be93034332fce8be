"""The jobs' guard: every run's row closed, errors alerted once, the node's loss and return
alerted once each with a backoff between, an unwritable database a stop (``jobs.guard``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from lpbot.chain.rpc import connect
from lpbot.devnet.anvil import free_port
from lpbot.errors import LpbotError, Refused
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.guard import REMIND_FIRST, RPC_BACKOFF_FIRST, JobGuard, close_interrupted
from lpbot.store import migrate, repo
from lpbot.store.lock import LockLost
from lpbot.store.models import JobRun, JobStatus
from lpbot.store.session import make_engine, session_factory


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(e)
    yield e
    e.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _runs(sessions: sessionmaker[Session]) -> list[JobRun]:
    with sessions() as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


def _guard(sessions: sessionmaker[Session], **kw: Any) -> tuple[JobGuard, MemoryNotifier, Clock]:
    notifier, clock = MemoryNotifier(), Clock()
    return JobGuard(sessions, notifier, "test@host", clock=clock, **kw), notifier, clock


def test_every_exit_path_closes_the_run(sessions: sessionmaker[Session]) -> None:
    guard, notifier, _ = _guard(sessions)

    def refused() -> None:
        raise Refused("the policy said no")

    def lpbot_error() -> None:
        raise LpbotError("no marks")

    def library_error() -> None:
        from eth_abi.exceptions import InsufficientDataBytes

        raise InsufficientDataBytes("Tried to read 32 bytes, only got 0 bytes.")

    def stopped() -> None:
        raise KeyboardInterrupt

    assert guard.run("monitor:a", lambda: "ok") == "ok"
    assert guard.run("monitor:a", refused) == "refused: the policy said no"
    assert guard.run("monitor:a", lpbot_error) is None
    assert guard.run("history:a", library_error) is None
    with pytest.raises(KeyboardInterrupt):
        guard.run("monitor:a", stopped)
    runs = _runs(sessions)
    assert [r.status for r in runs] == [
        JobStatus.SUCCEEDED,
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.FAILED,
        JobStatus.FAILED,
    ]
    assert all(r.finished_at is not None for r in runs)
    assert runs[2].error == "LpbotError: no marks"
    assert runs[3].error is not None and runs[3].error.startswith("InsufficientDataBytes")
    assert runs[4].error == "interrupted: the process was stopped"
    assert [a.title for a in notifier.alerts] == ["job monitor:a failed", "job history:a failed"]


def test_runs_a_killed_process_left_running_are_marked_interrupted(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s, s.begin():
        repo.start_job_run(s, "monitor:a", instance="4242@host")
        repo.start_job_run(s, "rebalance_check:a", instance="4242@host")
    assert close_interrupted(sessions, "1@host") == 2
    runs = _runs(sessions)
    assert {r.status for r in runs} == {JobStatus.FAILED}
    assert all(r.error and r.error.startswith("interrupted") for r in runs)
    assert close_interrupted(sessions, "1@host") == 0


def test_a_repeating_error_is_alerted_once_then_reminded_with_a_backoff(
    sessions: sessionmaker[Session],
) -> None:
    guard, notifier, clock = _guard(sessions)

    def history(block: int) -> Any:
        def body() -> None:
            raise ValueError(f"no history at block {block}")

        return body

    def another() -> None:
        raise KeyError("another")

    for block in range(10):  # the same error every second: one alert
        guard.run("monitor:a", history(block))
        clock.now += 1
    assert len(notifier.alerts) == 1
    clock.now += REMIND_FIRST  # still failing after 10 minutes: one reminder
    guard.run("monitor:a", history(11))
    guard.run("monitor:a", history(12))
    assert [a.title for a in notifier.alerts] == [
        "job monitor:a failed",
        "job monitor:a still fails (11 times)",
    ]
    clock.now += REMIND_FIRST  # the next reminder waits twice as long
    guard.run("monitor:a", history(13))
    assert len(notifier.alerts) == 2
    guard.run("monitor:a", lambda: "ok")  # a success clears it: the next failure is news
    guard.run("monitor:a", history(14))
    guard.run("monitor:a", another)
    assert len(notifier.alerts) == 4
    assert len(_runs(sessions)) == 16  # every run recorded, the job went on each time


class _Node(BaseHTTPRequestHandler):
    """A JSON-RPC node answering ``eth_blockNumber`` (the node that comes back)."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x2a"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def test_the_node_lost_is_alerted_once_retried_with_a_backoff_and_its_return_once(
    sessions: sessionmaker[Session],
) -> None:
    guard, notifier, clock = _guard(sessions)
    port = free_port()
    w3 = connect(f"http://127.0.0.1:{port}")  # nothing listens there yet: the node is down

    def read() -> int:
        return int(w3.eth.block_number)

    assert guard.run("monitor:a", read) is None
    assert guard.rpc_down and [a.kind for a in notifier.alerts] == ["rpc_down"]
    tried = len(_runs(sessions))
    for _ in range(20):  # every job of the next few seconds waits: no request, no row
        assert guard.run("monitor:a", read) is None
        assert guard.run("rebalance_check:a", read) is None
        clock.now += 0.2
    assert len(_runs(sessions)) == tried
    delays = []
    for _ in range(4):  # each failed try doubles the wait
        before = len(_runs(sessions))
        waited = 0.0
        while len(_runs(sessions)) == before:
            guard.run("monitor:a", read)
            clock.now += 1
            waited += 1
        delays.append(waited)
    assert delays == [2.0, 2 * RPC_BACKOFF_FIRST, 4 * RPC_BACKOFF_FIRST, 8 * RPC_BACKOFF_FIRST]
    assert [a.kind for a in notifier.alerts] == ["rpc_down"]

    server = ThreadingHTTPServer(("127.0.0.1", port), _Node)  # the node is back, same URL
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        clock.now += 16 * RPC_BACKOFF_FIRST
        assert guard.run("monitor:a", read) == 42  # reconnected
        assert guard.run("monitor:a", read) == 42
    finally:
        server.shutdown()
        server.server_close()
    assert [a.kind for a in notifier.alerts] == ["rpc_down", "rpc_recovered"]
    assert not guard.rpc_down


def test_a_database_that_cannot_be_written_stops_once_with_one_line(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    stops: list[int] = []
    guard, notifier, _ = _guard(sessions, stop=lambda: stops.append(1))
    assert guard.run("monitor:a", lambda: "ok") == "ok"

    # the database file now refuses every write (as a full disk or a read-only mount does)
    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = ON")

    engine.dispose()
    ran: list[int] = []
    assert guard.run("monitor:a", lambda: ran.append(1)) is None
    assert ran == []  # its run could not be recorded: the body never ran
    assert guard.fatal is not None
    assert guard.fatal.startswith("the database cannot be written (attempt to write a readonly")
    assert "\n" not in guard.fatal
    assert stops == [1]
    assert [a.kind for a in notifier.alerts] == ["database_unwritable"]
    assert guard.run("monitor:a", lambda: ran.append(1)) is None  # stopped: nothing more runs
    assert ran == [] and stops == [1] and len(notifier.alerts) == 1


@pytest.mark.devnet
def test_lpbot_run_stops_with_one_line_when_the_database_refuses_writes(
    setup: tuple[Path, dict[str, str], Any], passwords: None
) -> None:
    """The scheduler, its jobs and its lock on a database that stops taking writes while it
    runs: the daemon stops (no traceback from the scheduler's thread), after an alert, and
    ``lpbot run`` exits non-zero with the guard's one line."""
    from lpbot.app import App
    from lpbot.jobs import scheduler
    from lpbot.jobs.guard import DatabaseUnwritable
    from lpbot.jobs.runtime import build_runtime

    _data, env, _chain = setup
    app = App.load(env["LPBOT_CONFIG"], environ=env)
    notifier = MemoryNotifier()
    lock = scheduler.take_lock(app.engine)
    runtime = build_runtime(app, notifier=notifier)
    engine = app.engine

    def read_only() -> None:
        @event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA query_only = ON")

        engine.dispose()

    timer = threading.Timer(4.0, read_only)
    timer.start()
    with pytest.raises(DatabaseUnwritable) as raised:
        scheduler.start(runtime, lock, run_for_seconds=60)
    timer.cancel()
    assert str(raised.value).startswith("the database cannot be written")
    assert "\n" not in str(raised.value)
    assert [a.kind for a in notifier.alerts].count("database_unwritable") == 1
    app.close()


def test_a_node_that_moved_while_down_is_followed_at_once_and_its_return_alerted_once(
    sessions: sessionmaker[Session],
) -> None:
    w3 = connect(f"http://127.0.0.1:{free_port()}")  # the node is down
    moved: list[str] = []

    def follow() -> list[str]:  # the devnet's manifest, read again at each try while down
        if not moved:
            return []
        w3.provider.endpoint_uri = moved[0]  # type: ignore[attr-defined]
        return [f"chain devnet: now {moved.pop()}"]

    guard, notifier, _clock = _guard(sessions, follow=follow)

    def read() -> int:
        return int(w3.eth.block_number)

    assert guard.run("monitor:a", read) is None
    assert guard.run("monitor:a", read) is None  # waits out its backoff: no request
    assert [a.kind for a in notifier.alerts] == ["rpc_down"]
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Node)  # back, at another address
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        moved.append(f"http://127.0.0.1:{port}")
        assert guard.run("monitor:a", read) == 42  # no backoff left to wait: the manifest moved
        assert guard.run("monitor:a", read) == 42
    finally:
        server.shutdown()
        server.server_close()
    assert [a.kind for a in notifier.alerts] == ["rpc_down", "rpc_recovered"]
    assert str(port) in notifier.alerts[1].body and not guard.rpc_down


def test_a_lost_lock_stops_even_when_its_alert_fails_and_the_alert_names_the_instance(
    sessions: sessionmaker[Session],
) -> None:
    """The instance that lost the lock stops whatever the alert channel does; the alert says
    which instance stopped (two hosts alert to one channel)."""
    sent: list[Any] = []

    class Failing:
        def notify(self, alert: Any) -> None:
            sent.append(alert)
            raise ValueError("unknown url type")

    stops: list[int] = []
    guard = JobGuard(sessions, Failing(), "4242@host-b", stop=lambda: stops.append(1))
    guard.lock_lost(LockLost("instance lock 'lpbot-run' could not be renewed"))
    assert stops == [1]
    assert guard.fatal is not None and guard.fatal_error is LockLost
    assert len(sent) == 1 and "4242@host-b" in sent[0].title


def test_a_chain_whose_node_is_down_holds_back_its_own_jobs_only(
    sessions: sessionmaker[Session],
) -> None:
    """Two chains: Arbitrum's node lost, Ethereum's jobs run on every time; the alerts name
    arbitrum; Arbitrum's jobs wait their backoff and its return is alerted once."""
    guard, notifier, clock = _guard(sessions)
    port = free_port()
    arbitrum = connect(f"http://127.0.0.1:{port}")  # nothing listens there: the node is down

    def read_arbitrum() -> int:
        return int(arbitrum.eth.block_number)

    assert guard.run("monitor:arb", read_arbitrum, chain="arbitrum") is None
    assert guard.chain_down("arbitrum") and not guard.chain_down("ethereum")
    assert guard.rpc_down
    (down,) = notifier.alerts
    assert down.kind == "rpc_down" and "arbitrum" in down.title and "ethereum" not in down.title
    tried = len(_runs(sessions))
    ran: list[str] = []
    for _ in range(10):  # within Arbitrum's backoff
        assert guard.run("monitor:eth", lambda: ran.append("eth") or 1, chain="ethereum") == 1
        assert guard.run("monitor:arb", read_arbitrum, chain="arbitrum") is None
        clock.now += 0.2
    # Ethereum's every job ran and was recorded, Arbitrum's none (no request, no row)
    assert ran == ["eth"] * 10
    runs = _runs(sessions)[tried:]
    assert [r.job for r in runs] == ["monitor:eth"] * 10
    assert all(r.status == JobStatus.SUCCEEDED for r in runs)
    assert [a.kind for a in notifier.alerts] == ["rpc_down"]

    # Ethereum's node lost too: its own alert, its own backoff
    eth_port = free_port()
    ethereum = connect(f"http://127.0.0.1:{eth_port}")
    assert (
        guard.run("monitor:eth", lambda: int(ethereum.eth.block_number), chain="ethereum") is None
    )
    assert [a.kind for a in notifier.alerts] == ["rpc_down", "rpc_down"]
    assert "ethereum" in notifier.alerts[1].title

    server = ThreadingHTTPServer(("127.0.0.1", port), _Node)  # Arbitrum's node is back
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        clock.now += RPC_BACKOFF_FIRST
        assert guard.run("monitor:arb", read_arbitrum, chain="arbitrum") == 42
    finally:
        server.shutdown()
        server.server_close()
    # Arbitrum's return alerted once, naming it; Ethereum still down
    assert [a.kind for a in notifier.alerts] == ["rpc_down", "rpc_down", "rpc_recovered"]
    assert "arbitrum" in notifier.alerts[2].title
    assert not guard.chain_down("arbitrum") and guard.chain_down("ethereum")


def test_a_job_of_another_chain_does_not_end_a_chains_backoff_or_alert_its_return(
    sessions: sessionmaker[Session],
) -> None:
    """A success on Ethereum is not Arbitrum's node answering: no ``rpc_recovered``, and
    Arbitrum's backoff goes on (each failed try doubles it)."""
    guard, notifier, clock = _guard(sessions)
    arbitrum = connect(f"http://127.0.0.1:{free_port()}")

    def read_arbitrum() -> int:
        return int(arbitrum.eth.block_number)

    assert guard.run("monitor:arb", read_arbitrum, chain="arbitrum") is None
    waits = []
    for _ in range(3):
        before = len([r for r in _runs(sessions) if r.job == "monitor:arb"])
        waited = 0.0
        while len([r for r in _runs(sessions) if r.job == "monitor:arb"]) == before:
            assert guard.run("monitor:eth", lambda: 1, chain="ethereum") == 1
            guard.run("monitor:arb", read_arbitrum, chain="arbitrum")
            clock.now += 1
            waited += 1
        waits.append(waited)
    assert waits == [RPC_BACKOFF_FIRST + 1, 2 * RPC_BACKOFF_FIRST, 4 * RPC_BACKOFF_FIRST]
    assert [a.kind for a in notifier.alerts] == ["rpc_down"]
    assert guard.chain_down("arbitrum")


def test_a_stop_waits_for_each_chains_running_job_and_starts_none_queued_behind_it(
    sessions: sessionmaker[Session],
) -> None:
    # SIGTERM while chain a's monitor is slow (its node hangs): chain a's rebalance check,
    # due meanwhile and queued behind it on a's executor, must not start once stopping
    from datetime import UTC, datetime, timedelta

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore

    from lpbot.jobs import scheduler

    sched = scheduler._Scheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"chain:a": ThreadPoolExecutor(1), "chain:b": ThreadPoolExecutor(1)},
    )
    guard = sched.guard = JobGuard(sessions, MemoryNotifier(), "test@host")
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def monitor() -> None:
        started.set()
        release.wait(10)
        ran.append("monitor:a")

    def monitor_a() -> None:
        guard.run("monitor:a", monitor, chain="a")

    now = datetime.now(UTC)
    sched.add_job(monitor_a, "date", run_date=now, executor="chain:a", id="monitor:a")
    sched.add_job(
        lambda: guard.run("rebalance_check:a", lambda: ran.append("rebalance_check:a"), chain="a"),
        "date",
        run_date=now + timedelta(milliseconds=1),
        executor="chain:a",
        id="rebalance_check:a",
    )
    loop = threading.Thread(target=sched.start)
    loop.start()
    assert started.wait(10)
    for _ in range(100):  # submitted to a's executor: queued behind the monitor
        if sched.get_job("rebalance_check:a") is None:
            break
        threading.Event().wait(0.05)
    scheduler._stop(sched)
    release.set()
    scheduler.shutdown_executors(sched)
    loop.join(10)
    assert ran == ["monitor:a"]
    with sessions() as s:  # the running one finished and recorded; nothing else began
        runs = s.scalars(select(JobRun)).all()
        assert [(r.job, r.status) for r in runs] == [("monitor:a", JobStatus.SUCCEEDED)]


class _Gateway(BaseHTTPRequestHandler):
    """A provider's gateway whose nodes are all down: HTTP 503 to every request, until
    ``healthy``, then the node's answer."""

    healthy = False

    def do_POST(self) -> None:
        if _Gateway.healthy:
            _Node.do_POST(self)  # type: ignore[arg-type]
            return
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"no healthy upstream"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def test_a_provider_answering_503_for_a_chain_is_its_node_down_alerted_once_per_chain(
    sessions: sessionmaker[Session],
) -> None:
    # a hosted node behind its provider's gateway: the gateway answers, the node does not.
    # Every job of the chain failing must be one rpc_down (not an alert per job), a backoff,
    # and one rpc_recovered; the key in the URL's path appears in no alert and no job run
    guard, notifier, clock = _guard(sessions)
    _Gateway.healthy = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    arbitrum = connect(f"http://127.0.0.1:{server.server_address[1]}/v2/sEcReTkEy123")

    def read() -> int:
        return int(arbitrum.eth.block_number)

    try:
        for job in ("monitor:a", "rebalance_check:a", "hedge_sync:a", "monitor:b"):
            assert guard.run(job, read, chain="arbitrum") is None
        assert [a.kind for a in notifier.alerts] == ["rpc_down"]
        assert "arbitrum" in notifier.alerts[0].title
        tried = len(_runs(sessions))
        clock.now += 1  # within the backoff: no request, no row
        assert guard.run("monitor:a", read, chain="arbitrum") is None
        assert len(_runs(sessions)) == tried
        _Gateway.healthy = True
        clock.now += RPC_BACKOFF_FIRST
        assert guard.run("monitor:a", read, chain="arbitrum") == 42
    finally:
        server.shutdown()
        server.server_close()
    assert [a.kind for a in notifier.alerts] == ["rpc_down", "rpc_recovered"]
    said = " ".join(f"{a.title} {a.body}" for a in notifier.alerts)
    said += " ".join(r.error or "" for r in _runs(sessions))
    assert "sEcReTkEy123" not in said
