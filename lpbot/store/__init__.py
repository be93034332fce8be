"""The store: SQLAlchemy models, repository functions, sessions, migrations, the instance lock.

Adapters elsewhere use ``repo`` functions on a ``Session`` from ``session_factory(url)``; the
schema comes from the Alembic migrations (``migrate.upgrade``).
"""

from lpbot.store.lock import Lock, acquire_instance_lock
from lpbot.store.migrate import current, upgrade
from lpbot.store.models import (
    AppendOnlyViolation,
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
from lpbot.store.repo import InvalidTransition
from lpbot.store.session import make_engine, session_factory

__all__ = [
    "AppendOnlyViolation",
    "AuditEntry",
    "Base",
    "FundingPayment",
    "HedgeFill",
    "HedgeOrder",
    "InvalidTransition",
    "JobRun",
    "JobStatus",
    "Lock",
    "OrderSide",
    "OrderStatus",
    "Position",
    "PositionSnapshot",
    "Rebalance",
    "RebalanceState",
    "Signature",
    "Transaction",
    "TxStatus",
    "acquire_instance_lock",
    "current",
    "make_engine",
    "session_factory",
    "upgrade",
]
