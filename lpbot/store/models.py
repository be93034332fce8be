"""The store's tables: positions and their snapshots, rebalances and the steps under them, hedge
orders, job runs and the audit log.

Money is exact: token amounts and wei are ``Amount`` (``int`` in ``NUMERIC(78, 0)``), exchange
quantities ``ExactDecimal``. Columns of type ``Double`` hold analytics floats (USD values, IL,
delta) and say so in their comment; nothing is computed from them that moves money. Times are
aware UTC datetimes. The schema is created by the Alembic migrations (``lpbot.store.migrate``),
which also install the triggers that make ``audit_log`` append-only.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from lpbot.errors import Halt
from lpbot.store.types import ID, Amount, ExactDecimal, UTCDateTime

__all__ = [
    "AppendOnlyViolation",
    "AuditEntry",
    "Base",
    "FundingPayment",
    "HedgeFill",
    "HedgeOrder",
    "InstanceLockRow",
    "JobRun",
    "JobStatus",
    "OrderSide",
    "OrderStatus",
    "Position",
    "PositionSnapshot",
    "Rebalance",
    "RebalanceState",
    "Signature",
    "Transaction",
    "TxStatus",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ADDRESS = 42  # 0x + 40 hex digits
HASH = 66  # 0x + 64 hex digits


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """An enum stored as its value in a VARCHAR with a CHECK constraint (portable, no DB type)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class RebalanceState(enum.Enum):
    """A rebalance's steps, in order; FAILED, EXPIRED, STALE and CANCELLED end it early
    (``repo.TRANSITIONS``)."""

    PLANNED = "PLANNED"
    SIMULATED = "SIMULATED"
    APPROVED = "APPROVED"
    SIGNED = "SIGNED"
    SUBMITTED = "SUBMITTED"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    STALE = "STALE"  # the pre-flight refused it (would revert, or the price moved): re-plan
    CANCELLED = "CANCELLED"  # stuck, then cancelled by a self-transfer at its nonce

    @property
    def finished(self) -> bool:
        return self in (
            RebalanceState.CONFIRMED,
            RebalanceState.FAILED,
            RebalanceState.EXPIRED,
            RebalanceState.STALE,
            RebalanceState.CANCELLED,
        )


class TxStatus(enum.Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"  # mined with status 1 and enough confirmations
    REVERTED = "REVERTED"  # mined with status 0
    REPLACED = "REPLACED"  # another transaction took its nonce (see replaced_by_id)
    DROPPED = "DROPPED"  # left the mempool; its nonce was not used by it


class OrderSide(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"


class OrderStatus(enum.Enum):
    NEW = "NEW"  # recorded before it is sent: the client order id is reserved
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class JobStatus(enum.Enum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class Position(Base):
    """One Uniswap V3 position NFT that lpbot manages; ``label`` is its name in the config.

    A rebalance closes a position and opens another with the same label; ``replaces_id`` links
    the new one to the old.
    """

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("chain_id", "token_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    label: Mapped[str] = mapped_column(String(64), index=True)
    chain_id: Mapped[int] = mapped_column(Integer)
    pool_address: Mapped[str] = mapped_column(String(ADDRESS))
    token_id: Mapped[int] = mapped_column(Amount)
    owner_address: Mapped[str] = mapped_column(String(ADDRESS))
    tick_lower: Mapped[int] = mapped_column(Integer)
    tick_upper: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaces_id: Mapped[int | None] = mapped_column(ID, ForeignKey("positions.id"))


class PositionSnapshot(Base):
    """A position's state at one block: exact pool and token figures, then analytics floats."""

    __tablename__ = "position_snapshots"
    __table_args__ = (Index(None, "position_id", "taken_at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    position_id: Mapped[int] = mapped_column(ID, ForeignKey("positions.id"))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    sqrt_price_x96: Mapped[int] = mapped_column(Amount)
    tick: Mapped[int] = mapped_column(Integer)
    liquidity: Mapped[int] = mapped_column(Amount)
    amount0: Mapped[int] = mapped_column(Amount, comment="raw token0 in the position")
    amount1: Mapped[int] = mapped_column(Amount, comment="raw token1 in the position")
    fees0: Mapped[int] = mapped_column(Amount, comment="raw token0 fees owed")
    fees1: Mapped[int] = mapped_column(Amount, comment="raw token1 fees owed")
    owner_balance0: Mapped[int | None] = mapped_column(
        Amount, comment="raw token0 the owner holds outside the position"
    )
    owner_balance1: Mapped[int | None] = mapped_column(
        Amount, comment="raw token1 the owner holds outside the position"
    )
    token0_usd: Mapped[float | None] = mapped_column(Double, comment="analytics float: USD/token0")
    token1_usd: Mapped[float | None] = mapped_column(Double, comment="analytics float: USD/token1")
    eth_usd: Mapped[float | None] = mapped_column(Double, comment="analytics float: USD/ETH")
    btc_usd: Mapped[float | None] = mapped_column(Double, comment="analytics float: USD/BTC")
    mark_sources: Mapped[str | None] = mapped_column(
        Text, comment="JSON: token -> [source, route, block, time] of each mark"
    )
    hedge: Mapped[str | None] = mapped_column(
        Text, comment="JSON: the hedge's realised, unrealised, fees, funding (decimal strings)"
    )
    value_usd: Mapped[float | None] = mapped_column(
        Double, comment="analytics float: position value incl. fees, USD"
    )
    il_usd: Mapped[float | None] = mapped_column(
        Double, comment="analytics float: impermanent loss vs holding, USD"
    )
    delta: Mapped[float | None] = mapped_column(
        Double, comment="analytics float: d value / d price, in whole base-token units"
    )
    # the pool's fee growth at the snapshot's block, for the passive full-range benchmark
    # (``analytics.full_range``); None on snapshots taken before they were stored
    pool_fee: Mapped[int | None] = mapped_column(Integer, comment="the pool's fee, pips")
    tick_spacing: Mapped[int | None] = mapped_column(Integer, comment="the pool's tick spacing")
    fee_growth_global0_x128: Mapped[int | None] = mapped_column(
        Amount, comment="the pool's feeGrowthGlobal0X128"
    )
    fee_growth_global1_x128: Mapped[int | None] = mapped_column(
        Amount, comment="the pool's feeGrowthGlobal1X128"
    )
    full_range_lower_outside0_x128: Mapped[int | None] = mapped_column(
        Amount, comment="feeGrowthOutside0X128 of the lowest usable tick (None: not initialized)"
    )
    full_range_lower_outside1_x128: Mapped[int | None] = mapped_column(
        Amount, comment="feeGrowthOutside1X128 of the lowest usable tick (None: not initialized)"
    )
    full_range_upper_outside0_x128: Mapped[int | None] = mapped_column(
        Amount, comment="feeGrowthOutside0X128 of the highest usable tick (None: not initialized)"
    )
    full_range_upper_outside1_x128: Mapped[int | None] = mapped_column(
        Amount, comment="feeGrowthOutside1X128 of the highest usable tick (None: not initialized)"
    )


class Rebalance(Base):
    """One rebalance of a position, moved one state at a time (``repo.transition``).

    ``idempotency_key`` is unique: planning the same decision twice finds the same row. Each
    state has the time it was reached (``<state>_at``). ``report_hash`` is the digest of the
    dry-run report bound to the exact calldata; approval and signing check it.
    """

    __tablename__ = "rebalances"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    position_id: Mapped[int] = mapped_column(ID, ForeignKey("positions.id"), index=True)
    new_position_id: Mapped[int | None] = mapped_column(ID, ForeignKey("positions.id"))
    state: Mapped[RebalanceState] = mapped_column(_enum(RebalanceState, "state"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    decision: Mapped[Any] = mapped_column(JSON, comment="the decision and its reasons")
    plan: Mapped[Any | None] = mapped_column(JSON, comment="the execution plan, once built")
    value_usd: Mapped[float | None] = mapped_column(
        Double, comment="analytics float: value moved, USD (for the auto-execution limit)"
    )
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report_id: Mapped[str | None] = mapped_column(String(128))
    report_hash: Mapped[str | None] = mapped_column(String(HASH))
    safe_tx_hash: Mapped[str | None] = mapped_column(String(HASH))
    approved_by: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    simulated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stale_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    transactions: Mapped[list[Transaction]] = relationship(
        back_populates="rebalance", order_by="Transaction.id", viewonly=True
    )
    signatures: Mapped[list[Signature]] = relationship(order_by="Signature.id", viewonly=True)


class Transaction(Base):
    """A transaction lpbot signed: recorded with its signed bytes before it is broadcast, so a
    crash before the node answered is resumed by sending the same bytes again (or finding them
    mined), never by signing another transaction for its nonce. ``kind`` is ``send``,
    ``replacement`` (same nonce, higher fees) or ``cancel`` (a zero-value self-transfer at the
    nonce). CONFIRMED and REVERTED are the mined states (receipt status 1 and 0); ``gas_paid``
    is gas used x effective gas price, in wei, exact."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash"),
        Index(None, "chain_id", "from_address", "nonce"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    rebalance_id: Mapped[int | None] = mapped_column(ID, ForeignKey("rebalances.id"), index=True)
    chain_id: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    nonce: Mapped[int] = mapped_column(BigInteger)
    from_address: Mapped[str] = mapped_column(String(ADDRESS))
    to_address: Mapped[str | None] = mapped_column(String(ADDRESS))
    value: Mapped[int] = mapped_column(Amount, comment="wei")
    gas_limit: Mapped[int | None] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[int | None] = mapped_column(Amount, comment="wei")
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(Amount, comment="wei")
    status: Mapped[TxStatus] = mapped_column(_enum(TxStatus, "status"))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    effective_gas_price: Mapped[int | None] = mapped_column(Amount, comment="wei")
    replaced_by_id: Mapped[int | None] = mapped_column(ID, ForeignKey("transactions.id"))
    error: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16), comment="send, replacement or cancel")
    raw_tx: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="the signed transaction (public once broadcast; no key material)"
    )
    receipt_status: Mapped[int | None] = mapped_column(Integer, comment="1 success, 0 reverted")
    gas_paid: Mapped[int | None] = mapped_column(Amount, comment="wei: gas used x price")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    rebalance: Mapped[Rebalance | None] = relationship(back_populates="transactions")


class Signature(Base):
    """An owner's signature of a SafeTx hash. Signatures are public; keys never reach the store."""

    __tablename__ = "signatures"
    __table_args__ = (UniqueConstraint("safe_tx_hash", "signer_address"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    rebalance_id: Mapped[int | None] = mapped_column(ID, ForeignKey("rebalances.id"), index=True)
    safe_address: Mapped[str] = mapped_column(String(ADDRESS))
    safe_tx_hash: Mapped[str] = mapped_column(String(HASH))
    signer_address: Mapped[str] = mapped_column(String(ADDRESS))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HedgeOrder(Base):
    """A perp order; ``client_order_id`` is reserved here before the order is sent."""

    __tablename__ = "hedge_orders"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[OrderSide] = mapped_column(_enum(OrderSide, "side"))
    order_type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal, comment="base units, exact")
    price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus, "status"), index=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(128))
    filled: Mapped[Decimal] = mapped_column(ExactDecimal)
    average_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    fills: Mapped[list[HedgeFill]] = relationship(order_by="HedgeFill.id", viewonly=True)


class HedgeFill(Base):
    __tablename__ = "hedge_fills"
    __table_args__ = (UniqueConstraint("order_id", "trade_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    order_id: Mapped[int] = mapped_column(ID, ForeignKey("hedge_orders.id"))
    trade_id: Mapped[str] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    price: Mapped[Decimal] = mapped_column(ExactDecimal)
    fee: Mapped[Decimal] = mapped_column(ExactDecimal)
    fee_currency: Mapped[str] = mapped_column(String(16))
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FundingPayment(Base):
    """A perp funding payment: ``amount`` > 0 received, < 0 paid, in ``currency``."""

    __tablename__ = "funding_payments"
    __table_args__ = (UniqueConstraint("exchange", "symbol", "paid_at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    currency: Mapped[str] = mapped_column(String(16))
    rate: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (Index(None, "job", "started_at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    instance: Mapped[str] = mapped_column(String(255))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "status"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[Any | None] = mapped_column(JSON)


class AuditEntry(Base):
    """One decision and its reasons. Append-only: the mapper refuses updates and deletes, and
    database triggers reject UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "subject", "id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128))
    position_id: Mapped[int | None] = mapped_column(ID, ForeignKey("positions.id"))
    rebalance_id: Mapped[int | None] = mapped_column(ID, ForeignKey("rebalances.id"))
    decision: Mapped[str | None] = mapped_column(String(64))
    reasons: Mapped[Any] = mapped_column(JSON)
    data: Mapped[Any | None] = mapped_column(JSON)


class InstanceLockRow(Base):
    """The lease behind ``acquire_instance_lock`` on SQLite (PostgreSQL uses advisory locks)."""

    __tablename__ = "instance_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(320), comment="pid@hostname")
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstanceRow(Base):
    """An ``lpbot run`` on this database, active or standing by (``--standby``), with its
    heartbeat; ``lpbot status`` lists them."""

    __tablename__ = "instances"

    owner: Mapped[str] = mapped_column(String(320), primary_key=True, comment="pid@hostname")
    role: Mapped[str] = mapped_column(String(16), comment="active | standby")
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active_since: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="when it took the instance lock (None while it stands by)"
    )


class AppendOnlyViolation(Halt):
    """Code tried to change or delete an audit entry: a bug."""


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(_mapper: Mapper[AuditEntry], _conn: object, target: AuditEntry) -> None:
    raise AppendOnlyViolation(f"audit entry {target.id} is append-only: it cannot be updated")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(_mapper: Mapper[AuditEntry], _conn: object, target: AuditEntry) -> None:
    raise AppendOnlyViolation(f"audit entry {target.id} is append-only: it cannot be deleted")
