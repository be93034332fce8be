"""The execution's ``RebalanceRepo`` on the SQL store.

Rebalance rows, their compare-and-set transitions and audit entries are the store's
(``lpbot.store.repo``); the move to CONFIRMED closes the rebalanced position and records the
minted one in the same transaction, so the store never shows a confirmed rebalance whose old
NFT is still the managed one; what the execution adds along the way (the Safe nonce, the collected
signatures, the sent transaction hashes, the reconciled result) is kept in the row's ``plan``
JSON, and signatures and transactions also in their own tables. Each call is one short
transaction. A transaction recorded with ``claim`` takes a fresh nonce: the claim and the row are
one store transaction, serialised per (chain, account) across threads and processes
(``repo.lock_account_nonces``), and refused (``NonceTaken``) when another send holds that nonce
or a later one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from lpbot.errors import NonceTaken
from lpbot.execution.state import RebalanceRecord, StateConflict, TxRecord, check_transition
from lpbot.execution.state import RebalanceState as ES
from lpbot.store import repo
from lpbot.store.models import Rebalance, Transaction, TxStatus
from lpbot.store.models import RebalanceState as DS

_EXTRA = ("safe_nonce", "signatures", "tx_hashes", "result")


def _record(row: Rebalance, safe: str, chain_id: int, token_id: int) -> RebalanceRecord:
    extra = dict(row.plan or {})
    decision = dict(row.decision or {})
    return RebalanceRecord(
        id=row.id,
        idempotency_key=row.idempotency_key,
        state=ES(row.state.value),
        chain_id=chain_id,
        safe=safe,
        token_id=token_id,
        report_id=row.report_id,
        report_hash=row.report_hash,
        safe_tx_hash=row.safe_tx_hash,
        safe_nonce=extra.get("safe_nonce"),
        approved_by=row.approved_by,
        signatures=list(extra.get("signatures", [])),
        tx_hashes=list(extra.get("tx_hashes", [])),
        result=extra.get("result"),
        error=row.error,
        kind=str(decision.get("kind", "rebalance")),
        label=decision.get("label"),
    )


def _succeed(s: Session, position_id: int, result: dict[str, Any]) -> None:
    """In the confirming transaction: the rebalanced NFT is closed and the one it minted is
    recorded in its place, under the same name (so a restart manages the new one)."""
    from lpbot.store.models import Position

    old = s.get(Position, position_id)
    assert old is not None
    repo.close_position(s, old.id)
    ticks = result.get("new_range") or (old.tick_lower, old.tick_upper)
    new = repo.record_position(
        s,
        label=old.label,
        chain_id=old.chain_id,
        pool_address=old.pool_address,
        token_id=int(result["new_token_id"]),
        owner_address=old.owner_address,
        tick_lower=int(ticks[0]),
        tick_upper=int(ticks[1]),
        replaces_id=old.id,
    )
    new.label, new.closed_at = old.label, None
    if new.replaces_id is None:
        new.replaces_id = old.id


def _withdrawn(s: Session, position_id: int) -> None:
    """In the confirming transaction: the withdrawn NFT's row (one per chain and NFT, the one
    the monitor records under the position's name) is closed."""
    from lpbot.store.models import Position

    row = s.get(Position, position_id)
    assert row is not None
    repo.close_position(s, row.id)


class SqlRebalanceRepo:
    """``RebalanceRepo`` backed by the store; ``actor`` is written to the audit log."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        actor: str = "lpbot",
        fence: Callable[[Session], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.actor = actor
        # ``lpbot run``: the instance lock's fence, checked in every transaction that records a
        # step (``lpbot.store.lock``), so a process that lost the lock records and sends nothing
        self.fence = fence

    @contextmanager
    def _tx(self, *, fenced: bool = False) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            if fenced and self.fence is not None:
                self.fence(session)
            yield session

    def check_fence(self) -> None:
        """``LockLost`` when this process no longer holds the instance lock (no-op without)."""
        if self.fence is not None:
            with self._tx(fenced=True):
                pass

    def _to_record(self, session: Session, row: Rebalance) -> RebalanceRecord:
        position = row.position if hasattr(row, "position") else None
        if position is None:
            from lpbot.store.models import Position

            position = session.get(Position, row.position_id)
        assert position is not None
        return _record(row, position.owner_address, position.chain_id, int(position.token_id))

    def create(
        self,
        *,
        idempotency_key: str,
        chain_id: int,
        safe: str,
        token_id: int,
        pool: str = "",
        tick_range: tuple[int, int] = (0, 0),
        reason: str = "",
        kind: str = "rebalance",
        label: str | None = None,
    ) -> RebalanceRecord:
        with self._tx(fenced=True) as s:
            # an open has no NFT yet: its row points at the chain's "not minted" position
            # (token 0, which no position manager issues), closed so nothing lists it as held
            position = repo.record_position(
                s,
                label=f"{chain_id}:{token_id}",
                chain_id=chain_id,
                pool_address=pool,
                token_id=token_id,
                owner_address=safe,
                tick_lower=tick_range[0],
                tick_upper=tick_range[1],
            )
            if token_id == 0:
                repo.close_position(s, position.id)
            decision: dict[str, Any] = {"token_id": token_id, "reason": reason, "kind": kind}
            if label is not None:
                decision["label"] = label
            row, _created = repo.create_rebalance(
                s,
                idempotency_key=idempotency_key,
                position_id=position.id,
                reason=reason or kind,
                decision=decision,
                actor=self.actor,
            )
            return self._to_record(s, row)

    def get(self, rebalance_id: int) -> RebalanceRecord | None:
        with self._tx() as s:
            row = repo.get_rebalance(s, rebalance_id)
            return self._to_record(s, row) if row else None

    def by_report(self, report_id: str) -> RebalanceRecord | None:
        from sqlalchemy import select

        with self._tx() as s:
            row = s.scalars(select(Rebalance).where(Rebalance.report_id == report_id)).first()
            return self._to_record(s, row) if row else None

    def by_key(self, idempotency_key: str) -> RebalanceRecord | None:
        with self._tx() as s:
            row = repo.rebalance_by_key(s, idempotency_key)
            return self._to_record(s, row) if row else None

    def unfinished(self) -> list[RebalanceRecord]:
        with self._tx() as s:
            return [self._to_record(s, r) for r in repo.unfinished_rebalances(s)]

    def transition(
        self, rebalance_id: int, expected: ES, new: ES, **fields: Any
    ) -> RebalanceRecord:
        check_transition(expected, new)
        with self._tx(fenced=True) as s:
            row = repo.get_rebalance(s, rebalance_id)
            if row is None or row.state.value != expected.value:
                raise StateConflict(f"rebalance {rebalance_id} is not {expected.value}")
            extra = dict(row.plan or {})
            columns: dict[str, Any] = {}
            for key, value in fields.items():
                if key in _EXTRA:
                    extra[key] = value
                else:
                    columns[key] = value
            reason = fields.get("error") or f"{expected.value} -> {new.value}"
            steps = [new]
            if expected == ES.SIGNED and new == ES.CONFIRMED:
                steps = [ES.SUBMITTED, ES.CONFIRMED]  # found executed on chain by someone
            current = expected
            if new == expected:  # a replacement transaction: same state, more data
                row.plan = extra
                for k, v in columns.items():
                    setattr(row, k, v)
            for step in steps if new != expected else []:
                moved = repo.transition(
                    s,
                    rebalance_id,
                    DS(current.value),
                    DS(step.value),
                    reason=str(reason),
                    actor=self.actor,
                    plan=extra,
                    **columns,
                )
                if not moved:
                    raise StateConflict(f"rebalance {rebalance_id} moved under us")
                current = step
            s.flush()
            result = fields.get("result")
            if (
                new == ES.CONFIRMED
                and isinstance(result, dict)
                and result.get("new_token_id")
                and (row.decision or {}).get("kind", "rebalance") == "rebalance"
            ):  # an open's NFT is adopted by name, a compound keeps its NFT
                _succeed(s, row.position_id, result)
            if new == ES.CONFIRMED and (row.decision or {}).get("kind") == "withdraw":
                # the withdrawn NFT holds nothing: closed in the confirming transaction, and
                # so no longer managed (``repo.withdrawn_positions`` tells it from a rebalance)
                _withdrawn(s, row.position_id)
            if "signatures" in fields and row.safe_tx_hash:
                for sig in fields["signatures"]:
                    repo.record_signature(
                        s,
                        safe_address=self._to_record(s, row).safe,
                        safe_tx_hash=row.safe_tx_hash,
                        signer_address=sig["owner"],
                        signature=bytes.fromhex(sig["signature"][2:]),
                        rebalance_id=rebalance_id,
                    )
            refreshed = repo.get_rebalance(s, rebalance_id)
            assert refreshed is not None
            return self._to_record(s, refreshed)

    def _tx_row(self, s: Session, rebalance_id: int, tx_hash: str) -> Transaction | None:
        from sqlalchemy import select

        query = select(Transaction).where(
            Transaction.rebalance_id == rebalance_id, Transaction.tx_hash == tx_hash
        )
        return s.scalars(query).first()

    def record_transaction(self, rebalance_id: int, tx: TxRecord, *, claim: bool = False) -> None:
        with self._tx(fenced=True) as s:
            row = repo.get_rebalance(s, rebalance_id)
            assert row is not None
            chain_id = self._to_record(s, row).chain_id
            if claim:
                repo.lock_account_nonces(s, chain_id, tx.sender)
                if repo.next_nonce(s, chain_id, tx.sender) > tx.nonce:
                    raise NonceTaken(f"nonce {tx.nonce} of {tx.sender} was taken by another send")
            repo.record_transaction(
                s,
                chain_id=chain_id,
                tx_hash=tx.tx_hash,
                nonce=tx.nonce,
                from_address=tx.sender,
                to_address=tx.to,
                gas_limit=tx.gas_limit,
                max_fee_per_gas=tx.max_fee_per_gas,
                max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
                rebalance_id=rebalance_id,
                kind=tx.sent_as,
                raw_tx=tx.raw or None,
            )

    def next_nonce(self, chain_id: int, address: str) -> int:
        with self._tx() as s:
            return repo.next_nonce(s, chain_id, address)

    def update_transaction(self, rebalance_id: int, tx: TxRecord) -> None:
        with self._tx(fenced=True) as s:
            row = self._tx_row(s, rebalance_id, tx.tx_hash)
            if row is None:
                raise StateConflict(f"transaction {tx.tx_hash} was never recorded")
            repo.update_transaction(
                s,
                row.id,
                status=TxStatus(tx.status),
                block_number=tx.block,
                gas_used=tx.gas_used,
                effective_gas_price=tx.effective_gas_price,
                receipt_status=tx.receipt_status,
            )

    def transactions(self, rebalance_id: int) -> list[TxRecord]:
        from sqlalchemy import select

        with self._tx() as s:
            query = select(Transaction).where(Transaction.rebalance_id == rebalance_id)
            return [
                TxRecord(
                    tx_hash=r.tx_hash,
                    nonce=int(r.nonce),
                    sender=r.from_address,
                    to=r.to_address or "",
                    gas_limit=int(r.gas_limit or 0),
                    max_fee_per_gas=int(r.max_fee_per_gas or 0),
                    max_priority_fee_per_gas=int(r.max_priority_fee_per_gas or 0),
                    status=r.status.value,
                    block=r.block_number,
                    gas_used=r.gas_used,
                    effective_gas_price=(
                        None if r.effective_gas_price is None else int(r.effective_gas_price)
                    ),
                    raw=bytes(r.raw_tx or b""),
                    sent_as=r.kind or "send",
                    receipt_status=r.receipt_status,
                )
                for r in s.scalars(query.order_by(Transaction.id))
            ]


class SqlTransactionLog:
    """Transactions lpbot sends outside a rebalance (a Safe owner rotation): rows of the same
    ``transactions`` table (no rebalance), recorded with their signed bytes before broadcast,
    their fresh nonces claimed through the same per-account nonce manager."""

    def __init__(self, sessions: sessionmaker[Session], chain_id: int) -> None:
        self.sessions = sessions
        self.chain_id = chain_id

    def next_nonce(self, chain_id: int, address: str) -> int:
        with self.sessions() as s, s.begin():
            return repo.next_nonce(s, chain_id, address)

    def record(self, tx: TxRecord, *, claim: bool = False) -> None:
        with self.sessions() as s, s.begin():
            if claim:
                repo.lock_account_nonces(s, self.chain_id, tx.sender)
                if repo.next_nonce(s, self.chain_id, tx.sender) > tx.nonce:
                    raise NonceTaken(f"nonce {tx.nonce} of {tx.sender} was taken by another send")
            repo.record_transaction(
                s,
                chain_id=self.chain_id,
                tx_hash=tx.tx_hash,
                nonce=tx.nonce,
                from_address=tx.sender,
                to_address=tx.to,
                gas_limit=tx.gas_limit,
                max_fee_per_gas=tx.max_fee_per_gas,
                max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
                kind=tx.sent_as,
                raw_tx=tx.raw or None,
            )

    def settle(self, hashes: list[str], mined: str, receipt: dict[str, Any]) -> None:
        """The mined one of ``hashes`` (sent at one nonce) with its receipt; the rest REPLACED."""
        from sqlalchemy import select

        with self.sessions() as s, s.begin():
            rows = s.scalars(
                select(Transaction).where(
                    Transaction.chain_id == self.chain_id, Transaction.tx_hash.in_(hashes)
                )
            ).all()
            for row in rows:
                if row.tx_hash == mined:
                    ok = int(receipt["status"]) == 1
                    repo.update_transaction(
                        s,
                        row.id,
                        status=TxStatus.CONFIRMED if ok else TxStatus.REVERTED,
                        block_number=int(receipt["blockNumber"]),
                        gas_used=int(receipt["gasUsed"]),
                        effective_gas_price=int(receipt.get("effectiveGasPrice", 0)),
                        receipt_status=int(receipt["status"]),
                    )
                elif row.status == TxStatus.PENDING:
                    repo.update_transaction(s, row.id, status=TxStatus.REPLACED)


def rebalance_rows(session: Session) -> list[dict[str, Any]]:
    """Every rebalance (open, compound) with its state, position and report, oldest first: what
    ``lpbot rebalance list`` and the dashboard show."""
    from sqlalchemy import select

    from lpbot.store.models import Position, Rebalance

    rows = session.execute(
        select(Rebalance, Position)
        .join(Position, Rebalance.position_id == Position.id)
        .order_by(Rebalance.id)
    ).all()
    return [
        {
            "id": r.id,
            "kind": (r.decision or {}).get("kind", "rebalance"),
            "state": r.state.value,
            "position": (r.decision or {}).get("label") or p.label,
            "token_id": int(p.token_id) or None,  # an open's NFT is not minted yet
            "report_id": r.report_id,
            "reason": r.reason,
            "approved_by": r.approved_by,
            "updated_at": r.updated_at.isoformat(),
        }
        for r, p in rows
    ]
