"""Private submission when the endpoint took the transaction but gave no answer: the transaction
never also goes to the public mempool, and a resume never abandons it as STALE while it can
still be mined privately."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from web3 import Web3

from lpbot.chain.rpc import connect
from lpbot.chain.submit import Submitter
from lpbot.devnet.keys import dev_signer
from lpbot.errors import RetryLater
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from lpbot.testing.rpc import RecordingProvider
from tests.conftest import Devnet
from tests.execution.conftest import Setup
from tests.execution.test_preflight import _owners, _planned_and_approved, _sends, move_price

pytestmark = pytest.mark.devnet
S = RebalanceState


@contextmanager
def taking_endpoint(mode: str) -> Iterator[tuple[str, list[bytes]]]:
    """An endpoint that reads each request in full and then either drops the connection
    (``drop``) or never answers in time (``hang``): it got the transaction, said nothing."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            if mode == "hang":
                time.sleep(1.5)
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_that_took_the_transaction_and_dropped_the_line_gets_no_public_copy(
    chain: Devnet,
) -> None:
    public = RecordingProvider(chain.url)
    w3 = Web3(public)
    signer = dev_signer(9)
    with taking_endpoint("drop") as (url, received):
        submitter = Submitter(
            w3,
            signer,
            preflight=lambda tx: None,
            submit_w3=connect(url, timeout=5),
            public_fallback=True,
        )
        with pytest.raises(RetryLater, match="did not answer"):
            submitter.send(signer.address, b"", 21_000)
    assert len(received) == 1  # it reached the endpoint once
    assert "eth_sendRawTransaction" not in public.methods()  # and never the public mempool
    # an endpoint where nothing listens was never reached: the public fallback is taken
    submitter = Submitter(
        w3,
        signer,
        preflight=lambda tx: None,
        submit_w3=connect("http://127.0.0.1:9", timeout=5),
        public_fallback=True,
    )
    sent = submitter.send(signer.address, b"", 21_000)
    assert len(_sends(public)) == 1 and chain.w3.eth.wait_for_transaction_receipt(sent.hash)


def test_a_privately_held_rebalance_is_cancelled_not_left_stale_when_the_market_moves(
    setup: Setup,
) -> None:
    """The endpoint took the transaction and timed out; the public node never saw it. The
    market then moves past the bound. Resume must make the held transaction unminable (a
    cancel at its nonce), not mark it STALE while it can still land."""
    ctx = setup.ctx
    ctx.via = "module"
    report = _planned_and_approved(setup)
    with taking_endpoint("hang") as (url, received):
        ctx.submit_w3 = connect(url, timeout=0.5)
        with pytest.raises(RetryLater):
            service.execute(ctx, report["report_id"])
    held = received[0]
    raw = json.loads(held)["params"][0]
    record = ctx.repo.by_report(report["report_id"])
    assert record is not None and record.state == S.SUBMITTED
    move_price(setup, 60)  # past the bound: the pre-flight refuses it now
    ctx.submit_w3 = None
    service.resume(ctx)
    record = ctx.repo.by_report(report["report_id"])
    assert record is not None and record.state == S.CANCELLED
    # the privately held transaction can never be mined now
    with pytest.raises(ValueError, match="nonce"):
        setup.chain.w3.eth.send_raw_transaction(raw)


@pytest.mark.parametrize("via", ["multisig", "module"])
def test_a_dead_node_before_the_pre_flight_is_one_line_and_changes_nothing(
    setup: Setup, via: str
) -> None:
    ctx = setup.ctx
    ctx.via = via
    report = _planned_and_approved(setup)
    ctx.w3 = connect("http://127.0.0.1:9/v2/SECRETKEY", timeout=2)
    with pytest.raises(RetryLater) as refused:
        service.execute(ctx, report["report_id"], signers=_owners())
    assert "SECRETKEY" not in str(refused.value) and "127.0.0.1" not in str(refused.value)
    record = ctx.repo.by_report(report["report_id"])
    assert record is not None and record.state == S.APPROVED and record.tx_hashes == []
