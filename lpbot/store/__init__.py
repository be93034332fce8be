"""The store: SQLAlchemy models, repository functions, sessions, migrations, the instance lock.

Adapters elsewhere use ``repo`` functions on a ``Session`` from ``session_factory(url)``; the
schema comes from the Alembic migrations (``migrate.upgrade``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# imported on first use: a command that only reads the database need not load Alembic
_LAZY = {
    "Lock": "lock",
    "acquire_instance_lock": "lock",
    "current": "migrate",
    "upgrade": "migrate",
    "InvalidTransition": "repo",
    "make_engine": "session",
    "session_factory": "session",
}


def __getattr__(name: str) -> Any:
    import importlib

    module = _LAZY.get(name)
    if module is None and name in __all__:
        module = "models"
    if module is None:
        raise AttributeError(f"module 'lpbot.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lpbot.store.{module}"), name)


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
