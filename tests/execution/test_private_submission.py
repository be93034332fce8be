"""A swap-bearing rebalance on Ethereum goes to the private endpoint by default: never to the
public mempool, not even when the endpoint is down. The devnet (chain 31337) stands in for
chain 1 through ``submission_chain_id``; the endpoint is a local stand-in that records
``eth_sendRawTransaction`` and forwards it to the devnet."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3

from lpbot.devnet.context import devnet_context
from lpbot.errors import Refused, RetryLater
from lpbot.execution import service
from lpbot.execution.state import RebalanceState
from lpbot.report.dryrun import render_markdown
from lpbot.testing.fakes import MemoryRebalanceRepo
from lpbot.testing.rpc import RecordingProvider, SubmitEndpoint, decode_raw
from tests.conftest import Devnet
from tests.execution.conftest import Setup
from tests.execution.test_preflight import _owners, _planned_and_approved, _recording, _sends

pytestmark = pytest.mark.devnet
S = RebalanceState


def test_a_swap_bearing_rebalance_on_ethereum_goes_privately_and_never_leaks(
    setup: Setup,
) -> None:
    ctx = setup.ctx
    ctx.submission_chain_id = 1  # the devnet stands for Ethereum
    ctx.private_submission = "auto"
    ctx.submit_endpoint = "$PROTECT_URL"
    ctx.submit_w3 = Web3(HTTPProvider("http://127.0.0.1:9"))  # nothing listens: down
    report = _planned_and_approved(setup)
    assert report["plan"]["swap_zero_for_one"] is not None  # it carries a swap
    assert report["submission"] == {
        "route": "private",
        "endpoint": "$PROTECT_URL",
        "why": "carries a swap on Ethereum; private_submission = 'auto'",
        "public_fallback": False,
    }
    assert "Sent privately to $PROTECT_URL (carries a swap on Ethereum" in render_markdown(report)
    public = _recording(setup)
    # the configuration changed since the report: it would now go publicly, so nothing is sent
    ctx.private_submission = "never"
    with pytest.raises(Refused, match="the report says its transaction goes privately"):
        service.execute(ctx, report["report_id"], signers=_owners())
    ctx.private_submission = "auto"
    # the private endpoint is down: refused, and the public mempool never sees it
    with pytest.raises(RetryLater, match="submit endpoint is unreachable"):
        service.execute(ctx, report["report_id"], signers=_owners())
    assert _sends(public) == []
    with SubmitEndpoint(setup.chain.url) as endpoint:
        ctx.submit_w3 = Web3(HTTPProvider(endpoint.url))
        [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    [raw] = endpoint.raw_transactions()
    assert decode_raw(raw).to.lower() == ctx.safe.lower()
    assert _sends(public) == []


def test_without_a_private_endpoint_a_swap_on_ethereum_is_refused_before_anything_is_recorded(
    setup: Setup,
) -> None:
    ctx = setup.ctx
    ctx.submission_chain_id = 1
    ctx.submit_w3 = None
    with pytest.raises(Refused, match="must be sent privately"):
        service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert ctx.repo.unfinished() == []
    # "never": planned to go publicly, and said so
    ctx.private_submission = "never"
    _, report, _ = service.plan_rebalance(ctx, setup.token_id, setup.new_range, "test")
    assert report["submission"]["route"] == "public"


@pytest.mark.parametrize(
    ("mode", "swap", "private"),
    [("auto", False, False), ("auto", True, True), ("never", True, False)],
)
def test_each_send_on_ethereum_takes_its_route(
    chain: Devnet, tmp_path: Path, mode: str, swap: bool, private: bool
) -> None:
    """The service's submitter for one send: on a chain configured as Ethereum a transaction
    with no swap goes to the public node, one with a swap to the private endpoint, and with
    "never" every one to the public node."""
    public = RecordingProvider(chain.url)
    ctx = devnet_context(Web3(public), chain.manifest, MemoryRebalanceRepo(), tmp_path)
    ctx.submission_chain_id, ctx.private_submission = 1, mode
    signer = ctx.executor
    with SubmitEndpoint(chain.url) as endpoint:
        ctx.submit_w3 = Web3(HTTPProvider(endpoint.url))
        submitter = service._submitter(ctx, signer, lambda tx: None, swap=swap)
        sent = submitter.send(signer.address, b"", 21_000)
    assert chain.w3.eth.wait_for_transaction_receipt(sent.hash)["status"] == 1
    assert len(endpoint.raw_transactions()) == (1 if private else 0)
    assert len(_sends(public)) == (0 if private else 1)


class _Killed(BaseException):
    """The process killed at a checkpoint."""


def test_a_private_transaction_recorded_before_a_crash_is_never_resumed_publicly(
    setup: Setup,
) -> None:
    """Killed after the swap-bearing transaction was signed and recorded for the private
    endpoint; the configuration then says "never": the resume sends nothing to the public
    mempool (the report promised a private send), and goes on privately once it says so again."""
    ctx = setup.ctx
    ctx.submission_chain_id, ctx.private_submission = 1, "auto"
    ctx.submit_endpoint = "$PROTECT_URL"
    with SubmitEndpoint(setup.chain.url) as endpoint:
        ctx.submit_w3 = Web3(HTTPProvider(endpoint.url))
        report = _planned_and_approved(setup)
        assert report["submission"]["route"] == "private"

        def kill(state: str) -> None:
            if state == "submitted":
                raise _Killed(state)

        ctx.checkpoint = kill
        with pytest.raises(_Killed):
            service.execute(ctx, report["report_id"], signers=_owners())
        ctx.checkpoint = lambda _state: None
        public = _recording(setup)
        ctx.private_submission = "never"
        assert service.resume(ctx) == []
        assert _sends(public) == []
        assert endpoint.raw_transactions() == []
        [record] = ctx.repo.unfinished()
        assert record.state == S.SUBMITTED
        ctx.private_submission = "auto"
        [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    assert len(endpoint.raw_transactions()) == 1
    assert _sends(public) == []
