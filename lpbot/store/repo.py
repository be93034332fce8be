"""The store's operations, as functions of a ``Session``.

Functions flush but never commit: the caller owns the transaction (``with factory.begin() as
s:``), so a step's rows and its audit entry land together or not at all. Creating functions are
idempotent on their natural key (idempotency key, client order id, transaction hash...): a
second call returns the row the first made. ``transition`` moves a rebalance by compare-and-set
on its current state, so of two processes trying the same move exactly one succeeds. The audit
log can only be appended to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lpbot.analytics.full_range import PoolFeeState
from lpbot.errors import Halt
from lpbot.store.models import (
    AuditEntry,
    Base,
    FundingPayment,
    HedgeFill,
    HedgeOrder,
    JobRun,
    JobStatus,
    OrderSide,
    OrderStatus,
    Position,
    PositionSnapshot,
    Rebalance,
    RebalanceState,
    Signature,
    Transaction,
    TxStatus,
)
from lpbot.store.types import MAX_DIGITS

__all__ = [
    "TRANSITIONS",
    "InvalidTransition",
    "append_audit",
    "audit_entries",
    "close_position",
    "create_rebalance",
    "finish_job_run",
    "get_rebalance",
    "latest_snapshot",
    "latest_snapshots",
    "lock_account_nonces",
    "next_nonce",
    "open_positions",
    "pending_approvals",
    "rebalance_by_key",
    "rebalance_transactions",
    "record_fill",
    "record_funding",
    "record_hedge_order",
    "record_position",
    "record_signature",
    "record_transaction",
    "save_snapshot",
    "signatures_for",
    "snapshots",
    "start_job_run",
    "transition",
    "unfinished_rebalances",
    "update_hedge_order",
    "update_transaction",
    "withdrawal_of",
]

log = logging.getLogger(__name__)

S = RebalanceState
_END = frozenset({S.FAILED, S.EXPIRED, S.STALE, S.CANCELLED})
# each state's successors: one step forward, or an early end
TRANSITIONS: Mapping[RebalanceState, frozenset[RebalanceState]] = {
    S.PLANNED: frozenset({S.SIMULATED}) | _END,
    S.SIMULATED: frozenset({S.APPROVED}) | _END,
    S.APPROVED: frozenset({S.SIGNED}) | _END,
    S.SIGNED: frozenset({S.SUBMITTED}) | _END,
    S.SUBMITTED: frozenset({S.CONFIRMED}) | _END,
    S.CONFIRMED: frozenset(),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.STALE: frozenset(),
    S.CANCELLED: frozenset(),
}
UNFINISHED = tuple(s for s in RebalanceState if not s.finished)

M = TypeVar("M", bound=Base)


class InvalidTransition(Halt):
    """A move the state machine does not have (a bug): nothing was changed."""


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _get_or_create(
    session: Session, model: type[M], where: Sequence[ColumnElement[bool]], make: Callable[[], M]
) -> tuple[M, bool]:
    """The row matching ``where``, else a new one from ``make()``; True when it was created.

    The insert runs in a SAVEPOINT: when another transaction inserted the same key first, the
    unique constraint rejects ours and the row it made is returned instead.
    """
    found = session.scalars(select(model).where(*where)).one_or_none()
    if found is not None:
        return found, False
    row = make()
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = session.scalars(select(model).where(*where)).one_or_none()
        if found is None:
            raise  # a different constraint failed
        return found, False
    return row, True


# ------------------------------------------------------------------------------------ audit


def append_audit(
    session: Session,
    kind: str,
    reasons: Sequence[str] | Mapping[str, Any],
    *,
    subject: str | None = None,
    decision: str | None = None,
    actor: str = "lpbot",
    position_id: int | None = None,
    rebalance_id: int | None = None,
    data: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one decision with its reasons (JSON) to the audit log."""
    entry = AuditEntry(
        at=_now(now),
        actor=actor,
        kind=kind,
        subject=subject,
        decision=decision,
        position_id=position_id,
        rebalance_id=rebalance_id,
        reasons=list(reasons) if not isinstance(reasons, Mapping) else dict(reasons),
        data=dict(data) if data is not None else None,
    )
    session.add(entry)
    session.flush()
    return entry


def audit_entries(
    session: Session,
    *,
    subject: str | None = None,
    rebalance_id: int | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """Audit entries in the order they were appended, optionally filtered."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    if rebalance_id is not None:
        query = query.where(AuditEntry.rebalance_id == rebalance_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# -------------------------------------------------------------------------------- positions


def record_position(
    session: Session,
    *,
    label: str,
    chain_id: int,
    pool_address: str,
    token_id: int,
    owner_address: str,
    tick_lower: int,
    tick_upper: int,
    replaces_id: int | None = None,
    now: datetime | None = None,
) -> Position:
    """The position NFT ``token_id`` on ``chain_id``, recorded once (idempotent)."""
    row, _created = _get_or_create(
        session,
        Position,
        [Position.chain_id == chain_id, Position.token_id == token_id],
        lambda: Position(
            label=label,
            chain_id=chain_id,
            pool_address=pool_address,
            token_id=token_id,
            owner_address=owner_address,
            tick_lower=tick_lower,
            tick_upper=tick_upper,
            opened_at=_now(now),
            replaces_id=replaces_id,
        ),
    )
    return row


def close_position(session: Session, position_id: int, *, now: datetime | None = None) -> None:
    """Mark a position closed (its liquidity was withdrawn); a second call changes nothing."""
    session.execute(
        update(Position)
        .where(Position.id == position_id, Position.closed_at.is_(None))
        .values(closed_at=_now(now))
        .execution_options(synchronize_session="fetch")
    )


def open_positions(session: Session, *, label: str | None = None) -> list[Position]:
    query = select(Position).where(Position.closed_at.is_(None)).order_by(Position.id)
    if label is not None:
        query = query.where(Position.label == label)
    return list(session.scalars(query))


# -------------------------------------------------------------------------------- snapshots


def save_snapshot(
    session: Session,
    position_id: int,
    *,
    taken_at: datetime,
    sqrt_price_x96: int,
    tick: int,
    liquidity: int,
    amount0: int,
    amount1: int,
    fees0: int,
    fees1: int,
    block_number: int | None = None,
    token0_usd: float | None = None,
    token1_usd: float | None = None,
    eth_usd: float | None = None,
    btc_usd: float | None = None,
    mark_sources: str | None = None,
    hedge: str | None = None,
    value_usd: float | None = None,
    il_usd: float | None = None,
    delta: float | None = None,
    owner_balances: tuple[int, int] | None = None,
    pool_fees: PoolFeeState | None = None,
) -> PositionSnapshot:
    """Store a position's state at ``taken_at``: exact ints, then analytics floats.
    ``owner_balances``: the raw token0, token1 its owner holds outside it at ``block_number``;
    ``pool_fees``: the pool's fee growth there (the full-range benchmark's, same block)."""
    row = PositionSnapshot(
        position_id=position_id,
        taken_at=taken_at,
        block_number=block_number,
        sqrt_price_x96=sqrt_price_x96,
        tick=tick,
        liquidity=liquidity,
        amount0=amount0,
        amount1=amount1,
        fees0=fees0,
        fees1=fees1,
        token0_usd=token0_usd,
        token1_usd=token1_usd,
        eth_usd=eth_usd,
        btc_usd=btc_usd,
        mark_sources=mark_sources,
        hedge=hedge,
        value_usd=value_usd,
        il_usd=il_usd,
        delta=delta,
        owner_balance0=None if owner_balances is None else owner_balances[0],
        owner_balance1=None if owner_balances is None else owner_balances[1],
    )
    if pool_fees is not None:
        if pool_fees.block != block_number:
            raise ValueError(
                f"pool fee growth of block {pool_fees.block} on a snapshot of {block_number}"
            )
        lower, upper = pool_fees.lower_outside, pool_fees.upper_outside
        row.pool_fee = pool_fees.fee
        row.tick_spacing = pool_fees.tick_spacing
        row.fee_growth_global0_x128 = pool_fees.fee_growth_global0_x128
        row.fee_growth_global1_x128 = pool_fees.fee_growth_global1_x128
        row.full_range_lower_outside0_x128 = None if lower is None else lower[0]
        row.full_range_lower_outside1_x128 = None if lower is None else lower[1]
        row.full_range_upper_outside0_x128 = None if upper is None else upper[0]
        row.full_range_upper_outside1_x128 = None if upper is None else upper[1]
    session.add(row)
    session.flush()
    return row


def latest_snapshots(session: Session) -> dict[int, PositionSnapshot]:
    """The newest snapshot of every position that has one, by position id."""
    ranked = select(
        PositionSnapshot.id,
        func.row_number()
        .over(
            partition_by=PositionSnapshot.position_id,
            order_by=(PositionSnapshot.taken_at.desc(), PositionSnapshot.id.desc()),
        )
        .label("rank"),
    ).subquery()
    query = select(PositionSnapshot).join(ranked, ranked.c.id == PositionSnapshot.id)
    return {row.position_id: row for row in session.scalars(query.where(ranked.c.rank == 1))}


def latest_snapshot(session: Session, position_id: int) -> PositionSnapshot | None:
    query = (
        select(PositionSnapshot)
        .where(PositionSnapshot.position_id == position_id)
        .order_by(PositionSnapshot.taken_at.desc(), PositionSnapshot.id.desc())
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def snapshots(
    session: Session,
    position_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[PositionSnapshot]:
    """A position's snapshots, oldest first, with ``since <= taken_at < until``."""
    query = select(PositionSnapshot).where(PositionSnapshot.position_id == position_id)
    if since is not None:
        query = query.where(PositionSnapshot.taken_at >= since)
    if until is not None:
        query = query.where(PositionSnapshot.taken_at < until)
    return list(session.scalars(query.order_by(PositionSnapshot.taken_at, PositionSnapshot.id)))


# ------------------------------------------------------------------------------- rebalances


def create_rebalance(
    session: Session,
    *,
    idempotency_key: str,
    position_id: int,
    reason: str,
    decision: Mapping[str, Any],
    reasons: Sequence[str] = (),
    value_usd: float | None = None,
    deadline: datetime | None = None,
    actor: str = "lpbot",
    now: datetime | None = None,
) -> tuple[Rebalance, bool]:
    """A PLANNED rebalance, or the one already made with ``idempotency_key``; True if new.

    A new one is written to the audit log with ``reasons`` in the same transaction.
    """
    at = _now(now)
    row, created = _get_or_create(
        session,
        Rebalance,
        [Rebalance.idempotency_key == idempotency_key],
        lambda: Rebalance(
            idempotency_key=idempotency_key,
            position_id=position_id,
            state=RebalanceState.PLANNED,
            reason=reason,
            decision=dict(decision),
            value_usd=value_usd,
            deadline=deadline,
            created_at=at,
            updated_at=at,
            planned_at=at,
        ),
    )
    if created:
        append_audit(
            session,
            "rebalance.planned",
            list(reasons) or [reason],
            subject=f"rebalance:{row.id}",
            decision=RebalanceState.PLANNED.value,
            actor=actor,
            position_id=position_id,
            rebalance_id=row.id,
            data={"idempotency_key": idempotency_key},
            now=at,
        )
    return row, created


def get_rebalance(session: Session, rebalance_id: int) -> Rebalance | None:
    return session.get(Rebalance, rebalance_id, populate_existing=True)


def rebalance_by_key(session: Session, idempotency_key: str) -> Rebalance | None:
    query = select(Rebalance).where(Rebalance.idempotency_key == idempotency_key)
    return session.scalars(query).one_or_none()


_SET_ON_TRANSITION = frozenset(
    {"report_id", "report_hash", "plan", "safe_tx_hash", "approved_by", "error", "new_position_id"}
)


def transition(
    session: Session,
    rebalance_id: int,
    expected: RebalanceState,
    new: RebalanceState,
    *,
    reason: str,
    actor: str = "lpbot",
    now: datetime | None = None,
    **fields: Any,
) -> bool:
    """Move rebalance ``rebalance_id`` from ``expected`` to ``new``; False if it was not there.

    Compare-and-set: one ``UPDATE ... WHERE state = expected``. When another process moved it
    first this changes nothing and returns False. ``fields`` sets columns along with the move:
    ``report_id``, ``report_hash``, ``plan``, ``safe_tx_hash``, ``approved_by``, ``error``,
    ``new_position_id``. The move is written to the audit log with ``reason``. Raises
    ``InvalidTransition`` for a move the state machine does not have.
    """
    if new not in TRANSITIONS[expected]:
        raise InvalidTransition(f"rebalance {rebalance_id}: no move {expected.name} -> {new.name}")
    unknown = set(fields) - _SET_ON_TRANSITION
    if unknown:
        raise InvalidTransition(f"transition cannot set {sorted(unknown)}")
    at = _now(now)
    values: dict[str, Any] = {
        "state": new,
        "updated_at": at,
        f"{new.value.lower()}_at": at,
        **fields,
    }
    result = session.execute(
        update(Rebalance)
        .where(Rebalance.id == rebalance_id, Rebalance.state == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        log.info("rebalance %s was not %s: not moved to %s", rebalance_id, expected.name, new.name)
        return False
    row = session.get(Rebalance, rebalance_id)
    if row is not None:
        session.refresh(row)
    append_audit(
        session,
        "rebalance.transition",
        [reason],
        subject=f"rebalance:{rebalance_id}",
        decision=new.value,
        actor=actor,
        position_id=row.position_id if row is not None else None,
        rebalance_id=rebalance_id,
        data={"from": expected.value, "to": new.value},
        now=at,
    )
    return True


def withdrawal_of(session: Session, chain_id: int, token_id: int) -> Rebalance | None:
    """The confirmed withdraw of NFT ``token_id`` on ``chain_id`` (its liquidity and fees
    collected to the Safe, the emptied NFT kept, its row closed), or None: what tells a
    withdrawn position from one a rebalance replaced."""
    rows = session.scalars(
        select(Rebalance)
        .join(Position, Rebalance.position_id == Position.id)
        .where(
            Position.chain_id == chain_id,
            Position.token_id == token_id,
            Rebalance.state == RebalanceState.CONFIRMED,
        )
        .order_by(Rebalance.id.desc())
    )
    return next((r for r in rows if (r.decision or {}).get("kind") == "withdraw"), None)


def pending_approvals(session: Session) -> list[Rebalance]:
    """Rebalances simulated and reported, waiting for an approval, oldest first."""
    query = select(Rebalance).where(Rebalance.state == RebalanceState.SIMULATED)
    return list(session.scalars(query.order_by(Rebalance.id)))


def unfinished_rebalances(session: Session) -> list[Rebalance]:
    """Rebalances not CONFIRMED, FAILED or EXPIRED: to resume or abandon on start, oldest first."""
    query = select(Rebalance).where(Rebalance.state.in_(UNFINISHED))
    return list(session.scalars(query.order_by(Rebalance.id)))


# ---------------------------------------------------------------------- transactions, Safe


def record_transaction(
    session: Session,
    *,
    chain_id: int,
    tx_hash: str,
    nonce: int,
    from_address: str,
    to_address: str | None,
    value: int = 0,
    gas_limit: int | None = None,
    max_fee_per_gas: int | None = None,
    max_priority_fee_per_gas: int | None = None,
    rebalance_id: int | None = None,
    kind: str | None = None,
    raw_tx: bytes | None = None,
    now: datetime | None = None,
) -> Transaction:
    """A PENDING transaction, recorded once per (chain, hash), with its signed bytes when
    given (recorded before it is broadcast)."""
    at = _now(now)
    row, _created = _get_or_create(
        session,
        Transaction,
        [Transaction.chain_id == chain_id, Transaction.tx_hash == tx_hash],
        lambda: Transaction(
            chain_id=chain_id,
            tx_hash=tx_hash,
            nonce=nonce,
            from_address=from_address,
            to_address=to_address,
            value=value,
            gas_limit=gas_limit,
            max_fee_per_gas=max_fee_per_gas,
            max_priority_fee_per_gas=max_priority_fee_per_gas,
            status=TxStatus.PENDING,
            rebalance_id=rebalance_id,
            kind=kind,
            raw_tx=raw_tx,
            submitted_at=at,
            updated_at=at,
        ),
    )
    return row


def lock_account_nonces(session: Session, chain_id: int, address: str) -> None:
    """Serialise, until this store transaction ends, every claim of a nonce of ``address`` on
    ``chain_id``. SQLite: each transaction already holds the database's write lock from its
    start (``BEGIN IMMEDIATE``). PostgreSQL: a transaction-level advisory lock keyed by the
    schema, chain and address (released at commit or rollback)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    from lpbot.store.lock import advisory_key

    schema = session.execute(text("SELECT current_schema()")).scalar_one()
    key = advisory_key(f"nonce:{chain_id}:{address.lower()}", str(schema))
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def next_nonce(session: Session, chain_id: int, address: str) -> int:
    """One past the highest nonce of ``address`` held by a PENDING transaction (0 if none): a
    nonce at or below it is some send's, mined or not."""
    highest = session.scalar(
        select(func.max(Transaction.nonce)).where(
            Transaction.chain_id == chain_id,
            func.lower(Transaction.from_address) == address.lower(),
            Transaction.status == TxStatus.PENDING,
        )
    )
    return 0 if highest is None else int(highest) + 1


def rebalance_transactions(session: Session) -> list[Transaction]:
    """Every transaction sent for a rebalance (replacements and cancels too), in order."""
    query = select(Transaction).where(Transaction.rebalance_id.is_not(None))
    return list(session.scalars(query.order_by(Transaction.id)))


def wasted_gas(transactions: list[Transaction]) -> int:
    """Wei paid for transactions that did not rebalance: reverted ones and cancelling
    self-transfers (to == from)."""
    return sum(
        int(t.gas_used or 0) * int(t.effective_gas_price or 0)
        for t in transactions
        if t.status == TxStatus.REVERTED
        or (
            t.status == TxStatus.CONFIRMED
            and (t.to_address or "").lower() == t.from_address.lower()
        )
    )


def update_transaction(
    session: Session,
    tx_id: int,
    *,
    status: TxStatus,
    block_number: int | None = None,
    gas_used: int | None = None,
    effective_gas_price: int | None = None,
    replaced_by_id: int | None = None,
    error: str | None = None,
    receipt_status: int | None = None,
    now: datetime | None = None,
) -> Transaction:
    """Record what the chain says of a transaction: its receipt (gas paid = gas used x
    effective gas price, exact), or its replacement."""
    row = session.get(Transaction, tx_id)
    if row is None:
        raise Halt(f"no transaction {tx_id} in the store")
    row.status = status
    for name, value in (
        ("block_number", block_number),
        ("gas_used", gas_used),
        ("effective_gas_price", effective_gas_price),
        ("replaced_by_id", replaced_by_id),
        ("error", error),
        ("receipt_status", receipt_status),
    ):
        if value is not None:
            setattr(row, name, value)
    if row.gas_used is not None and row.effective_gas_price is not None:
        paid = int(row.gas_used) * int(row.effective_gas_price)
        if paid < 10**MAX_DIGITS:  # any fee a chain can charge; past uint256 is not one
            row.gas_paid = paid
    row.updated_at = _now(now)
    session.flush()
    return row


def record_signature(
    session: Session,
    *,
    safe_address: str,
    safe_tx_hash: str,
    signer_address: str,
    signature: bytes,
    rebalance_id: int | None = None,
    now: datetime | None = None,
) -> Signature:
    """An owner's signature of a SafeTx hash, kept once per (hash, signer)."""
    row, _created = _get_or_create(
        session,
        Signature,
        [Signature.safe_tx_hash == safe_tx_hash, Signature.signer_address == signer_address],
        lambda: Signature(
            safe_address=safe_address,
            safe_tx_hash=safe_tx_hash,
            signer_address=signer_address,
            signature=bytes(signature),
            rebalance_id=rebalance_id,
            created_at=_now(now),
        ),
    )
    return row


def signatures_for(session: Session, safe_tx_hash: str) -> list[Signature]:
    query = select(Signature).where(Signature.safe_tx_hash == safe_tx_hash)
    return list(session.scalars(query.order_by(Signature.id)))


# ------------------------------------------------------------------------------------ hedge


def record_hedge_order(
    session: Session,
    *,
    client_order_id: str,
    exchange: str,
    symbol: str,
    side: OrderSide,
    amount: Decimal,
    order_type: str = "market",
    price: Decimal | None = None,
    reduce_only: bool = False,
    reason: str | None = None,
    now: datetime | None = None,
) -> tuple[HedgeOrder, bool]:
    """A NEW order reserving ``client_order_id`` (before it is sent); True when new."""
    at = _now(now)
    return _get_or_create(
        session,
        HedgeOrder,
        [HedgeOrder.client_order_id == client_order_id],
        lambda: HedgeOrder(
            client_order_id=client_order_id,
            exchange=exchange,
            symbol=symbol,
            side=side,
            order_type=order_type,
            amount=amount,
            price=price,
            reduce_only=reduce_only,
            status=OrderStatus.NEW,
            filled=Decimal(0),
            reason=reason,
            created_at=at,
            updated_at=at,
        ),
    )


def update_hedge_order(
    session: Session,
    order_id: int,
    *,
    status: OrderStatus,
    exchange_order_id: str | None = None,
    filled: Decimal | None = None,
    average_price: Decimal | None = None,
    now: datetime | None = None,
) -> HedgeOrder:
    """Record the exchange's view of an order."""
    row = session.get(HedgeOrder, order_id)
    if row is None:
        raise Halt(f"no hedge order {order_id} in the store")
    row.status = status
    if exchange_order_id is not None:
        row.exchange_order_id = exchange_order_id
    if filled is not None:
        row.filled = filled
    if average_price is not None:
        row.average_price = average_price
    row.updated_at = _now(now)
    session.flush()
    return row


def record_fill(
    session: Session,
    *,
    order_id: int,
    trade_id: str,
    amount: Decimal,
    price: Decimal,
    fee: Decimal,
    fee_currency: str,
    filled_at: datetime,
) -> HedgeFill:
    """A fill of an order, kept once per (order, exchange trade id)."""
    row, _created = _get_or_create(
        session,
        HedgeFill,
        [HedgeFill.order_id == order_id, HedgeFill.trade_id == trade_id],
        lambda: HedgeFill(
            order_id=order_id,
            trade_id=trade_id,
            amount=amount,
            price=price,
            fee=fee,
            fee_currency=fee_currency,
            filled_at=filled_at,
        ),
    )
    return row


def record_funding(
    session: Session,
    *,
    exchange: str,
    symbol: str,
    amount: Decimal,
    currency: str,
    paid_at: datetime,
    rate: Decimal | None = None,
) -> FundingPayment:
    """A funding payment, kept once per (exchange, symbol, time)."""
    row, _created = _get_or_create(
        session,
        FundingPayment,
        [
            FundingPayment.exchange == exchange,
            FundingPayment.symbol == symbol,
            FundingPayment.paid_at == paid_at,
        ],
        lambda: FundingPayment(
            exchange=exchange,
            symbol=symbol,
            amount=amount,
            currency=currency,
            rate=rate,
            paid_at=paid_at,
        ),
    )
    return row


# ------------------------------------------------------------------------------------- jobs


def start_job_run(
    session: Session, job: str, *, instance: str, now: datetime | None = None
) -> JobRun:
    row = JobRun(job=job, instance=instance, status=JobStatus.RUNNING, started_at=_now(now))
    session.add(row)
    session.flush()
    return row


def finish_job_run(
    session: Session,
    run_id: int,
    status: JobStatus,
    *,
    error: str | None = None,
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> JobRun:
    if status is JobStatus.RUNNING:
        raise ValueError("a job run finishes as SUCCEEDED, FAILED or SKIPPED")
    row = session.get(JobRun, run_id)
    if row is None:
        raise Halt(f"no job run {run_id} in the store")
    row.status = status
    row.finished_at = _now(now)
    row.error = error
    row.details = dict(details) if details is not None else None
    session.flush()
    return row
