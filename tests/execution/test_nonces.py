"""One nonce manager per (chain, account), shared through the store by every thread and
process: two senders signing at the same moment get distinct, consecutive nonces, and the
signature that lost the race for a nonce is never broadcast."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from lpbot.chain.submit import NonceManager, SentTx, Submitter
from lpbot.devnet.keys import dev_signer
from lpbot.execution.state import RebalanceRecord, TxRecord
from lpbot.signing.base import SignedTransaction
from lpbot.store import migrate
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from lpbot.testing.rpc import RecordingProvider
from tests.conftest import Devnet
from tests.store.conftest import postgres_schema

pytestmark = pytest.mark.devnet


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lpbot.db'}"
        return
    with postgres_schema() as url:
        yield url


class RacingSigner:
    """Signs like dev account ``index``, but holds its first signature until the other sender
    has signed too: both have chosen their nonce before either recorded it."""

    def __init__(self, index: int, barrier: threading.Barrier) -> None:
        self.inner = dev_signer(index)
        self.barrier = barrier
        self.signed: list[int] = []

    @property
    def address(self) -> str:
        return self.inner.address

    def sign_digest(self, digest: bytes) -> Any:
        return self.inner.sign_digest(digest)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        signed = self.inner.sign_transaction(tx)
        self.signed.append(int(tx["nonce"]))
        if len(self.signed) == 1:
            self.barrier.wait(timeout=30)
        return signed


def _recorder(repo: SqlRebalanceRepo, record: RebalanceRecord, sender: str) -> Any:
    def on_signed(sent: SentTx) -> None:
        repo.record_transaction(
            record.id,
            TxRecord(
                tx_hash=sent.hash,
                nonce=sent.nonce,
                sender=sender,
                to=sent.to,
                gas_limit=sent.gas,
                max_fee_per_gas=sent.fees.max_fee_per_gas,
                max_priority_fee_per_gas=sent.fees.max_priority_fee_per_gas,
                raw=sent.raw,
                sent_as=sent.kind,
            ),
            claim=sent.fresh,
        )

    return on_signed


def test_two_senders_at_once_get_distinct_consecutive_nonces(chain: Devnet, db_url: str) -> None:
    migrate.upgrade(make_engine(db_url))
    # two processes' worth: each sender has its own engine and connections on one database
    repos = [SqlRebalanceRepo(session_factory(make_engine(db_url))) for _ in range(2)]
    chain_id = chain.w3.eth.chain_id
    m = chain.manifest
    barrier = threading.Barrier(2)
    signers = [RacingSigner(9, barrier), RacingSigner(9, barrier)]
    account = signers[0].address
    first = chain.w3.eth.get_transaction_count(account, "pending")  # type: ignore[arg-type]
    providers = [RecordingProvider(chain.url) for _ in range(2)]
    sent: list[SentTx] = []
    errors: list[BaseException] = []

    def position(i: int) -> None:
        try:
            record = repos[i].create(
                idempotency_key=f"nonce-race-{i}",
                chain_id=chain_id,
                safe=str(m.safe),
                token_id=10_000 + i,
            )
            w3 = Web3(providers[i])
            submitter = Submitter(
                w3, signers[i], preflight=lambda tx: None, nonces=NonceManager(w3, repos[i])
            )
            sent.append(
                submitter.send(account, b"", 21_000, on_signed=_recorder(repos[i], record, account))
            )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=position, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(s.nonce for s in sent) == [first, first + 1]
    for s in sent:
        receipt = chain.w3.eth.wait_for_transaction_receipt(s.hash)  # type: ignore[arg-type]
        assert receipt["status"] == 1
    # both signed the first nonce at once; the one that lost signed again, with the next
    assert sorted(signers[0].signed + signers[1].signed) == [first, first, first + 1]
    # and its first signature never left: one broadcast per transaction
    raws = [p for pr in providers for m_, p in pr.requests if m_ == "eth_sendRawTransaction"]
    assert sorted(r[0] for r in raws) == sorted("0x" + s.raw.hex() for s in sent)
    rows = [t for rec in (1, 2) for t in repos[0].transactions(rec)]
    assert sorted((t.nonce, t.tx_hash) for t in rows) == sorted((s.nonce, s.hash) for s in sent)
