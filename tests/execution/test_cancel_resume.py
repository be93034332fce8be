"""A stuck rebalance's cancel survives a crash: on resume only the cancel is followed, so the
cancelled rebalance can never land later. The cancel mined: CANCELLED for good; the rebalance
mined instead: reconciled CONFIRMED. And a transaction signed under an older state, whose gas
limit would now run out, is never sent: the pre-flight estimates again and sends with the new
limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD
from web3.types import RPCEndpoint, RPCResponse

from lpbot.devnet.deploy import GAS, contract
from lpbot.execution import preflight as pf
from lpbot.execution import service
from lpbot.execution.state import RebalanceRecord, RebalanceRepo, RebalanceState
from lpbot.store import migrate
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from lpbot.testing.rpc import RecordingProvider, decode_raw
from tests.execution.conftest import Crash, Setup
from tests.execution.test_preflight import _alerts, _planned_and_approved, _recording, _sends

pytestmark = pytest.mark.devnet
S = RebalanceState


@pytest.fixture
def repo(tmp_path: Path) -> RebalanceRepo:
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    return SqlRebalanceRepo(session_factory(engine))


def _mine(setup: Setup) -> None:
    setup.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _automine(setup: Setup, on: bool) -> None:
    setup.chain.w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


@pytest.fixture
def cancel_recorded(setup: Setup) -> Iterator[tuple[RebalanceRecord, list[Any]]]:
    """Automine off: the rebalance is sent and sits in the pool; not mined in time, its cancel
    is signed and recorded, and the process dies before broadcasting the cancel."""
    ctx = setup.ctx
    ctx.via = "module"
    ctx.replace_after = 0.3
    ctx.max_replacements = 0  # straight to the cancel
    report = _planned_and_approved(setup)
    submitted: list[str] = []

    def crash(name: str) -> None:
        submitted.append(name)
        if submitted.count("submitted") == 2:  # the cancel: recorded, not broadcast
            raise Crash(name)

    ctx.checkpoint = crash
    _automine(setup, False)
    try:
        with pytest.raises(Crash):
            service.execute(ctx, report["report_id"])
        ctx.checkpoint = lambda _name: None
        record = ctx.repo.by_report(report["report_id"])
        assert record is not None and record.state == S.SUBMITTED
        txs = ctx.repo.transactions(record.id)
        assert [(t.kind, t.status) for t in txs] == [
            ("rebalance", "PENDING"),
            ("cancel", "PENDING"),
        ]
        yield record, txs
    finally:
        _automine(setup, True)


class MinesAfterSend(RecordingProvider):
    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        answer = super().make_request(method, params)
        if method == "eth_sendRawTransaction":
            super().make_request(RPCEndpoint("evm_mine"), [])
        return answer


def _untouched(setup: Setup, before: tuple[int, int]) -> None:
    npm = setup.ctx.contract("NonfungiblePositionManager")
    assert npm.functions.ownerOf(setup.token_id).call() == setup.ctx.safe
    assert npm.functions.positions(setup.token_id).call()[7] > 0  # its liquidity is still in
    assert setup.balances() == before


def test_the_cancel_mined_while_down_leaves_the_rebalance_cancelled_for_good(
    setup: Setup, cancel_recorded: tuple[RebalanceRecord, list[Any]]
) -> None:
    record, txs = cancel_recorded
    before = setup.balances()
    w3 = setup.chain.w3
    w3.eth.send_raw_transaction(txs[1].raw)  # it had gone out before the process died
    _mine(setup)
    _automine(setup, True)
    provider = _recording(setup)
    alerts = _alerts(setup)
    [done] = service.resume(setup.ctx)
    assert done.state == S.CANCELLED and _sends(provider) == []
    assert [k for k, _ in alerts] == ["rebalance_cancelled"]
    statuses = [(t.kind, t.status) for t in setup.ctx.repo.transactions(record.id)]
    assert statuses == [("rebalance", "REPLACED"), ("cancel", "CONFIRMED")]
    _untouched(setup, before)
    assert service.resume(setup.ctx) == []  # nothing left to send, ever


def test_the_rebalance_mined_instead_of_its_cancel_is_reconciled_confirmed(
    setup: Setup, cancel_recorded: tuple[RebalanceRecord, list[Any]]
) -> None:
    record, _txs = cancel_recorded
    _mine(setup)  # only the rebalance is in the pool: it takes the nonce
    _automine(setup, True)
    provider = _recording(setup)
    [done] = service.resume(setup.ctx)
    assert done.state == S.CONFIRMED and _sends(provider) == []
    assert done.result is not None and done.result["new_token_id"]
    statuses = [(t.kind, t.status) for t in setup.ctx.repo.transactions(record.id)]
    assert statuses == [("rebalance", "CONFIRMED"), ("cancel", "REPLACED")]


def test_a_pending_cancel_is_sent_again_and_never_the_rebalance(
    setup: Setup, cancel_recorded: tuple[RebalanceRecord, list[Any]]
) -> None:
    record, txs = cancel_recorded
    before = setup.balances()
    # automine stays off: the rebalance is still in the pool, unmined; a block is mined
    # right after whatever resume sends
    provider = MinesAfterSend(setup.chain.url)
    setup.ctx.w3 = Web3(provider)
    [done] = service.resume(setup.ctx)
    assert done.state == S.CANCELLED
    # one broadcast: the recorded cancel's own bytes; nothing re-signed, no rebalance
    assert [provider.requests[i][1][0] for i in _sends(provider)] == ["0x" + txs[1].raw.hex()]
    statuses = [(t.kind, t.status) for t in setup.ctx.repo.transactions(record.id)]
    assert statuses == [("rebalance", "REPLACED"), ("cancel", "CONFIRMED")]
    _untouched(setup, before)


def test_a_gas_limit_from_the_old_state_is_never_sent_when_it_would_run_out(
    setup: Setup,
) -> None:
    """Planned while an LP's position had initialised the new range's ticks; signed and
    recorded; the process dies; the LP leaves, so the rebalance's mint must initialise both
    ticks itself. The recorded transaction's limit would run out of gas: resume estimates
    again and sends a replacement with the new limit, which is mined."""
    ctx = setup.ctx
    ctx.via = "module"
    ctx.gas_margin_bps = 0  # the limit is the estimate itself: no headroom hides the change
    w3, m = setup.chain.w3, setup.chain.manifest
    pool = contract(w3, "UniswapV3Pool", setup.pool)
    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    lower, upper = setup.new_range.tick_lower, setup.new_range.tick_upper
    assert pool.functions.ticks(lower).call()[0] == 0 == pool.functions.ticks(upper).call()[0]
    lp = m.accounts.lps[3]
    t0, t1 = setup.tokens
    minted = npm.functions.mint(
        (t0, t1, 500, lower, upper, 10**6, 10**15, 0, 0, lp, 2**40)
    ).transact({"from": lp, "gas": GAS})
    receipt = w3.eth.wait_for_transaction_receipt(minted)
    event = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]["args"]
    report = _planned_and_approved(setup)

    def crash(name: str) -> None:
        if name == "submitted":
            raise Crash(name)

    ctx.checkpoint = crash
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"])
    ctx.checkpoint = lambda _name: None
    record = ctx.repo.by_report(report["report_id"])
    assert record is not None
    [signed] = ctx.repo.transactions(record.id)
    old = decode_raw(signed.raw)
    # the LP leaves: its liquidity out, both ticks uninitialised again
    left = npm.functions.decreaseLiquidity(
        (event["tokenId"], event["liquidity"], 0, 0, 2**40)
    ).transact({"from": lp, "gas": GAS})
    assert w3.eth.wait_for_transaction_receipt(left)["status"] == 1  # mined before reading
    assert pool.functions.ticks(lower).call()[0] == 0
    assert ctx.operator is not None
    would = pf.fetch_call_outcome(w3, ctx.operator.address, old.to, old.data, gas=old.gas)
    assert not would.ok  # sent as signed, it would run out of gas now
    provider = _recording(setup)
    lines: list[str] = []
    ctx.progress = lines.append
    [done] = service.resume(ctx)
    assert done.state == S.CONFIRMED
    [index] = _sends(provider)
    sent = decode_raw(provider.requests[index][1][0])
    assert sent.nonce == old.nonce and sent.data == old.data and sent.gas > old.gas
    assert provider.requests[index][1][0] != "0x" + signed.raw.hex()
    mined = w3.eth.get_transaction_receipt(done.result["tx_hash"])  # type: ignore[index]
    # mined with the new limit (its gas used is below both limits: refunds, and the 63/64
    # headroom inner calls need is what the old limit lacked)
    assert mined["status"] == 1 and mined["gasUsed"] < sent.gas
    assert any("would run out now" in line for line in lines)


def test_a_nonce_used_by_someone_else_alerts_and_stops(setup: Setup) -> None:
    """Signed and recorded, the process dies; meanwhile a transfer lpbot did not send uses the
    operator's nonce. Resume sends nothing, alerts, and the rebalance ends FAILED."""
    ctx = setup.ctx
    ctx.via = "module"
    report = _planned_and_approved(setup)

    def crash(name: str) -> None:
        if name == "submitted":
            raise Crash(name)

    ctx.checkpoint = crash
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"])
    ctx.checkpoint = lambda _name: None
    record = ctx.repo.by_report(report["report_id"])
    assert record is not None and ctx.operator is not None
    [signed] = ctx.repo.transactions(record.id)
    me, w3 = ctx.operator.address, setup.chain.w3
    other = w3.eth.send_transaction({"from": me, "to": me, "value": 1, "nonce": signed.nonce})  # type: ignore[typeddict-item]
    assert w3.eth.wait_for_transaction_receipt(other)["status"] == 1
    provider = _recording(setup)
    alerts = _alerts(setup)
    [done] = service.resume(ctx)
    assert done.state == S.FAILED and "did not send" in (done.error or "")
    assert [k for k, _ in alerts] == ["nonce_taken"] and _sends(provider) == []
    assert [t.status for t in ctx.repo.transactions(record.id)] == ["DROPPED"]
    assert service.resume(ctx) == []  # and it stays stopped
