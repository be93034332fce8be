"""Every transaction is a row of the store's ``transactions`` table, written with its signed
bytes before it is broadcast: a confirmed rebalance's row holds what its receipt says, and a
crash between signing and broadcasting is resumed by sending the very same bytes (or finding
them mined), never a second signature for the nonce."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils.crypto import keccak
from sqlalchemy import select

from lpbot.execution import service
from lpbot.execution.state import RebalanceRepo, RebalanceState
from lpbot.store import migrate
from lpbot.store.models import Transaction, TxStatus
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from tests.execution.conftest import Crash, Setup
from tests.execution.test_preflight import _owners, _planned_and_approved, _recording, _sends

pytestmark = pytest.mark.devnet
S = RebalanceState


@pytest.fixture
def repo(tmp_path: Path) -> RebalanceRepo:
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    return SqlRebalanceRepo(session_factory(engine))


def _rows(setup: Setup) -> list[Transaction]:
    sessions = setup.ctx.repo.sessions  # type: ignore[attr-defined]
    with sessions() as s:
        return list(s.scalars(select(Transaction).order_by(Transaction.id)))


def _crash_before_broadcast(name: str) -> None:
    if name == "submitted":  # recorded, signed bytes and all; the node has not seen it
        raise Crash(name)


@pytest.mark.parametrize("via", ["multisig", "module"])
def test_a_confirmed_rebalance_has_one_row_equal_to_its_receipt(setup: Setup, via: str) -> None:
    ctx = setup.ctx
    ctx.via = via
    report = _planned_and_approved(setup)
    provider = _recording(setup)
    record = service.execute(ctx, report["report_id"], signers=_owners())
    assert record.state == S.CONFIRMED and record.result is not None
    [row] = _rows(setup)
    receipt = setup.chain.w3.eth.get_transaction_receipt(row.tx_hash)  # type: ignore[arg-type]
    [index] = _sends(provider)
    assert row.raw_tx is not None
    assert provider.requests[index][1][0] == "0x" + row.raw_tx.hex()  # the bytes sent
    assert row.tx_hash == "0x" + keccak(row.raw_tx).hex() == record.result["tx_hash"]
    assert row.tx_hash == "0x" + bytes(receipt["transactionHash"]).hex()
    sender = ctx.executor.address if via == "multisig" else ctx.operator.address  # type: ignore[union-attr]
    mined = setup.chain.w3.eth.get_transaction(row.tx_hash)  # type: ignore[arg-type]
    assert (row.chain_id, row.from_address, row.nonce, row.gas_limit) == (
        setup.chain.w3.eth.chain_id,
        sender,
        mined["nonce"],
        mined["gas"],
    )
    assert row.status == TxStatus.CONFIRMED and row.receipt_status == 1 and row.kind == "send"
    assert row.rebalance_id == record.id and row.block_number == receipt["blockNumber"]
    assert row.gas_used == receipt["gasUsed"]
    assert row.effective_gas_price == receipt["effectiveGasPrice"]
    assert row.gas_paid == receipt["gasUsed"] * receipt["effectiveGasPrice"] > 0


@pytest.mark.parametrize("via", ["multisig", "module"])
def test_a_crash_between_signing_and_broadcast_sends_the_same_bytes_once(
    setup: Setup, via: str
) -> None:
    ctx = setup.ctx
    ctx.via = via
    report = _planned_and_approved(setup)
    provider = _recording(setup)
    ctx.checkpoint = _crash_before_broadcast
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"], signers=_owners())
    ctx.checkpoint = lambda _name: None
    assert _sends(provider) == []
    [row] = _rows(setup)
    assert row.status == TxStatus.PENDING and row.raw_tx is not None
    recorded = "0x" + row.raw_tx.hex()

    [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED
    sends = _sends(provider)
    assert [provider.requests[i][1][0] for i in sends] == [recorded]  # once, the same bytes
    [row] = _rows(setup)  # no second transaction was signed for the nonce
    assert row.status == TxStatus.CONFIRMED and record.result["tx_hash"] == row.tx_hash  # type: ignore[index]


def test_a_crash_after_the_node_took_it_finds_it_mined_and_sends_nothing(setup: Setup) -> None:
    ctx = setup.ctx
    report = _planned_and_approved(setup)
    provider = _recording(setup)
    ctx.checkpoint = _crash_before_broadcast
    with pytest.raises(Crash):
        service.execute(ctx, report["report_id"], signers=_owners())
    ctx.checkpoint = lambda _name: None
    [row] = _rows(setup)
    assert row.raw_tx is not None
    # the process had broadcast it when it died: the node mined it
    w3 = setup.chain.w3
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(row.raw_tx))
    before = len(_sends(provider))
    [record] = service.resume(ctx)
    assert record.state == S.CONFIRMED and len(_sends(provider)) == before
    [row] = _rows(setup)
    assert row.status == TxStatus.CONFIRMED and row.gas_paid is not None and row.gas_paid > 0
