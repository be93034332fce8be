"""``lpbot run`` with several chains, one of which does not answer at start: the others start,
the silent one is deferred (alerted, audited, shown by ``lpbot status``) and tried again with a
backoff; when it answers its positions are built and scheduled on its own executor; a
configuration error found then is alerted as needing attention and not tried again."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from lpbot.app import App
from lpbot.devnet.anvil import free_port
from lpbot.errors import RetryLater
from lpbot.jobs import scheduler
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.guard import RPC_BACKOFF_FIRST, JobGuard
from lpbot.jobs.runtime import build_runtime
from lpbot.store.models import AuditEntry
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

CHAIN_B = 31338

# a second chain (its own chain id): the same devnet behind a proxy that is not listening yet,
# and a position on it still to open
SECOND = """
[chains.devnet-b]
manifest = "{manifest}"
rpc_url = "http://127.0.0.1:{port}"

[[positions]]
name = "b-usdc"
chain = "devnet-b"
pool = "USDC/WETH-500"
[positions.open]
capital = {{ USDC = "1000" }}
accept_expected_loss = true
[positions.strategy]
kind = "fixed"
half_width_ticks = 600
"""


def _proxy(port: int, target: str, chain_id: int | None = CHAIN_B) -> ThreadingHTTPServer:
    """A JSON-RPC node at ``port`` that answers as ``target`` does (the chain back), but for
    its chain id: ``chain_id`` (a second chain, as the configuration says; None: the
    devnet's own)."""

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            call = json.loads(body)
            if chain_id is not None and call.get("method") == "eth_chainId":
                answer = json.dumps(
                    {"jsonrpc": "2.0", "id": call["id"], "result": hex(chain_id)}
                ).encode()
            else:
                request = urllib.request.Request(
                    target, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = response.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def two_chains(
    setup: tuple[Path, dict[str, str], Devnet], passwords: None, tmp_path: Path
) -> Iterator[tuple[App, int, Devnet]]:
    """The daemon's configuration with a second chain whose node does not answer yet."""
    _data, env, devnet = setup
    config = Path(env["LPBOT_CONFIG"])
    port = free_port()
    manifest = tmp_path / "manifest-b.json"
    devnet.manifest.model_copy(update={"chain_id": CHAIN_B}).write(manifest)
    second = SECOND.format(manifest=manifest, port=port)
    config.write_text(config.read_text().replace("[schedule]", f"{second}\n[schedule]"))
    app = App.load(config, environ=env)
    try:
        yield app, port, devnet
    finally:
        app.close()


def _start(app: App) -> tuple[Any, BackgroundScheduler, MemoryNotifier]:
    notifier = MemoryNotifier()
    runtime = build_runtime(app, notifier=notifier)
    runtime.guard = JobGuard(runtime.sessions, notifier, "test@host")
    # not started: the jobs it is given wait in it, as they would before their time
    sched = BackgroundScheduler(jobstores={"default": MemoryJobStore(), "local": MemoryJobStore()})
    return runtime, sched, notifier


def _audit(app: App) -> list[tuple[str, str | None]]:
    with app.sessions() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.kind.like("chain_%")))
        return [(r.kind, r.decision) for r in rows]


def test_a_chain_that_does_not_answer_at_start_is_deferred_and_managed_when_it_answers(
    two_chains: tuple[App, int, Devnet],
) -> None:
    from lpbot.cli.daemon import status_data

    app, port, devnet = two_chains
    lock = scheduler.take_lock(app.engine)
    try:
        with scheduler.active_heartbeat(app.engine, 30):
            runtime, sched, notifier = _start(app)
            # the chain that answers is built, the other waits
            assert set(runtime.positions) == {"eth-usdc"} and runtime.opens == {}
            assert set(runtime.deferred) == {"devnet-b"}
            assert f"127.0.0.1:{port}" in runtime.deferred["devnet-b"]
            scheduler.defer_chain(sched, runtime, "devnet-b", runtime.deferred["devnet-b"])
            (deferred,) = notifier.alerts
            assert deferred.kind == "chain_deferred" and "devnet-b" in deferred.title
            assert "b-usdc" in deferred.body
            job = sched.get_job("connect:devnet-b")
            assert job is not None and job.executor == "chain:devnet-b"
            assert _audit(app) == [("chain_deferred", "deferred")]
            (waiting,) = status_data(app)["chains_waiting"]
            assert (waiting["chain"], waiting["state"]) == ("devnet-b", "waiting")

            # still silent: tried again later, no new alert
            assert scheduler.reconnect(sched, runtime, "devnet-b") == "waiting"
            assert scheduler._WAITING["devnet-b"].delay == 2 * RPC_BACKOFF_FIRST
            assert len(notifier.alerts) == 1 and "b-usdc" not in runtime.opens

            server = _proxy(port, devnet.url)  # the node answers
            try:
                assert scheduler.reconnect(sched, runtime, "devnet-b") == "connected"
            finally:
                server.shutdown()
                server.server_close()
            # its position to open is built, on the second chain, and its job is on its
            # chain's executor; the first chain's position is untouched
            assert set(runtime.opens) == {"b-usdc"} and set(runtime.positions) == {"eth-usdc"}
            assert runtime.opens["b-usdc"].ctx.w3.provider.endpoint_uri.endswith(f":{port}")  # type: ignore[attr-defined]
            job = sched.get_job("open:b-usdc")
            assert job is not None and job.executor == "chain:devnet-b"
            assert runtime.deferred == {}
            assert [a.kind for a in notifier.alerts] == ["chain_deferred", "chain_connected"]
            assert _audit(app) == [
                ("chain_deferred", "deferred"),
                ("chain_connected", "connected"),
            ]
            assert status_data(app)["chains_waiting"] == []
            assert scheduler.reconnect(sched, runtime, "devnet-b") == "stopped"  # done
            runtime.close()
    finally:
        lock.release()


def test_a_configuration_error_found_when_a_chain_answers_is_alerted_and_not_tried_again(
    two_chains: tuple[App, int, Devnet],
) -> None:
    app, port, devnet = two_chains
    # when it answers, the second chain's node serves the devnet's chain id, not its own
    runtime, sched, notifier = _start(app)
    try:
        assert set(runtime.deferred) == {"devnet-b"}
        scheduler.defer_chain(sched, runtime, "devnet-b", runtime.deferred["devnet-b"])
        server = _proxy(port, devnet.url, chain_id=None)
        try:
            assert scheduler.reconnect(sched, runtime, "devnet-b") == "failed"
            # not tried again: no connect job left, and a later call does nothing
            assert sched.get_job("connect:devnet-b") is None
            assert scheduler.reconnect(sched, runtime, "devnet-b") == "stopped"
        finally:
            server.shutdown()
            server.server_close()
        assert [a.kind for a in notifier.alerts] == ["chain_deferred", "chain_failed"]
        failed = notifier.alerts[1]
        assert "devnet-b" in failed.title and "needs attention" in failed.title
        assert f"serves chain id 31337, not the configured {CHAIN_B}" in failed.body
        assert runtime.deferred == {} and "b-usdc" not in runtime.opens
        assert set(runtime.positions) == {"eth-usdc"}
        assert _audit(app) == [("chain_deferred", "deferred"), ("chain_failed", "needs_attention")]
    finally:
        runtime.close()


def test_no_chain_answering_at_start_stops_the_start_with_its_one_line(
    two_chains: tuple[App, int, Devnet],
) -> None:
    app, _port, _devnet = two_chains
    text = Path(app.source).read_text()
    dead = free_port()
    text = text.replace(
        "[chains.devnet]\n", f'[chains.devnet]\nrpc_url = "http://127.0.0.1:{dead}"\n'
    )
    Path(app.source).write_text(text)
    app = App.load(app.source, environ=app.environ)
    try:
        with pytest.raises(RetryLater, match=f"chain devnet at http://127.0.0.1:{dead} does not"):
            build_runtime(app, notifier=MemoryNotifier())
    finally:
        app.close()


def test_a_standby_whose_second_chain_died_while_it_stood_by_defers_it_at_the_takeover(
    two_chains: tuple[App, int, Devnet],
) -> None:
    from lpbot.jobs.runtime import check_start

    app, port, devnet = two_chains
    server = _proxy(port, devnet.url)  # both chains answer when the standby starts
    try:
        check_start(app)  # what `lpbot run --standby` checks before it stands by
    finally:
        server.shutdown()
        server.server_close()
    # the second chain's node died while it stood by; the active one ends: the takeover
    # starts the chain that answers and defers the other, as a fresh start would
    runtime = build_runtime(app, notifier=MemoryNotifier())
    try:
        assert set(runtime.positions) == {"eth-usdc"} and runtime.opens == {}
        assert set(runtime.deferred) == {"devnet-b"}
        assert "devnet-b" in runtime.deferred["devnet-b"]
        assert "does not answer" in runtime.deferred["devnet-b"]
    finally:
        runtime.close()


def test_rebalance_resume_finishes_the_unfinished_work_of_every_chain(
    two_chains: tuple[App, int, Devnet], capsys: pytest.CaptureFixture[str]
) -> None:
    # `lpbot run` stopped says an interrupted rebalance is resumed by `lpbot rebalance
    # resume`: with several chains, one left on the second chain is found there too
    from lpbot.cli import main
    from lpbot.store.rebalances import SqlRebalanceRepo

    app, port, devnet = two_chains
    safe = devnet.manifest.safe
    assert safe is not None
    left = SqlRebalanceRepo(app.sessions, "test").create(
        idempotency_key="b-left", chain_id=CHAIN_B, safe=safe, token_id=7, kind="rebalance"
    )
    server = _proxy(port, devnet.url)
    try:
        assert main(["rebalance", "resume", "--config", str(app.source)]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert f"rebalance {left.id}: EXPIRED" in capsys.readouterr().out
    assert SqlRebalanceRepo(app.sessions, "test").unfinished() == []
