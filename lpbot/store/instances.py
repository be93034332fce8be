"""Every ``lpbot run`` on a database and its heartbeat (``instances``): who is active, who
stands by (``lpbot run --standby``).

The instance lock (``lpbot.store.lock``) decides who is active; this table only shows it.
An instance writes its row when it starts waiting or acting and again at each heartbeat (the
database server's time on PostgreSQL, so hosts' clocks may differ), and
deletes it when it stops; a row whose heartbeat is older than its instance's own interval
(times ``STALE_AFTER``) is a process that died without deleting it, and ``standbys`` leaves
it out. Such rows are deleted by the next heartbeat of any instance once a day stale
(``FORGET_AFTER``), so the table holds only recent instances however often one is killed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, update

from lpbot.store.models import InstanceRow

__all__ = ["Instance", "forget", "heartbeat", "heartbeat_of", "instances"]

STALE_AFTER = 3  # heartbeats missed before a row no longer counts
# a row this stale is an instance that died without deleting it: the next heartbeat deletes it
# (far beyond the longest heartbeat interval, a third of standby_takeover_seconds <= 3600)
FORGET_AFTER = timedelta(days=1)

_TABLE: Table = InstanceRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Instance:
    owner: str  # pid@hostname
    role: str  # active | standby
    started_at: datetime
    heartbeat_at: datetime
    active_since: datetime | None


def heartbeat(
    engine: Engine,
    owner: str,
    role: str,
    *,
    started_at: datetime,
    active_since: datetime | None = None,
) -> None:
    """Record that ``owner`` (``pid@hostname``) runs now in ``role``."""
    hostname = owner.partition("@")[2]
    pid = int(owner.partition("@")[0])
    with engine.begin() as conn:
        now = _now(conn)
        values = {"role": role, "heartbeat_at": now, "active_since": active_since}
        conn.execute(
            delete(_TABLE).where(
                _TABLE.c.owner != owner, _TABLE.c.heartbeat_at < now - FORGET_AFTER
            )
        )
        updated = conn.execute(update(_TABLE).where(_TABLE.c.owner == owner).values(**values))
        if updated.rowcount == 0:
            conn.execute(
                insert(_TABLE).values(
                    owner=owner, hostname=hostname, pid=pid, started_at=started_at, **values
                )
            )


def heartbeat_of(engine: Engine, owner: str) -> datetime | None:
    """The last heartbeat ``owner`` recorded as the active instance, or None (no such row)."""
    with engine.connect() as conn:
        at = conn.execute(
            select(_TABLE.c.heartbeat_at).where(_TABLE.c.owner == owner, _TABLE.c.role == "active")
        ).scalar()
    return _aware(at) if at is not None else None


def forget(engine: Engine, owner: str) -> None:
    """``owner`` stopped: its row goes."""
    with engine.begin() as conn:
        conn.execute(delete(_TABLE).where(_TABLE.c.owner == owner))


def instances(engine: Engine, *, interval_seconds: float) -> list[Instance]:
    """The instances whose heartbeat is recent (``STALE_AFTER`` x ``interval_seconds``),
    the active first, then the standbys by when they started."""
    with engine.connect() as conn:
        since = _now(conn) - timedelta(seconds=STALE_AFTER * interval_seconds)
        rows = conn.execute(
            select(_TABLE).where(_TABLE.c.heartbeat_at >= since).order_by(_TABLE.c.started_at)
        ).all()
    found = [
        Instance(
            owner=str(r.owner),
            role=str(r.role),
            started_at=_aware(r.started_at),
            heartbeat_at=_aware(r.heartbeat_at),
            active_since=_aware(r.active_since) if r.active_since is not None else None,
        )
        for r in rows
    ]
    return sorted(found, key=lambda i: i.role != "active")


def _now(conn: Connection) -> datetime:
    """The time heartbeats are written and judged by: on PostgreSQL the database server's
    (instances on several hosts, whose clocks may differ), on SQLite this host's (the only
    one)."""
    if conn.dialect.name == "postgresql":
        return _aware(conn.execute(select(func.now())).scalar_one())
    return datetime.now(UTC)


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite through Core without the column's type
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
