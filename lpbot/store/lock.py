"""One lpbot instance per database: ``acquire_instance_lock(engine, name)``.

PostgreSQL: a session-level advisory lock (keyed by name and schema) held on a connection kept
open for the lock's life; the server drops it when that connection ends, so a crashed process
frees it as soon as the server sees its socket close.
SQLite: a lease row in ``instance_locks`` (owner pid@hostname, a random token, an expiry),
taken by a conditional write: an insert when there is no row, else an update that only matches
when the lease has expired or its owner, on this host, is no longer running. The holder renews
it with ``refresh()`` well within ``lease_seconds``; ``release()`` deletes it.

Fencing: ``fence(session)`` checks, inside the caller's database transaction, that this process
still holds the lock, and raises ``LockLost`` otherwise; the step that transaction records (a
rebalance's move, a transaction about to be sent) then rolls back. A holder paused past its
lease (SIGSTOP, a long GC, a suspended VM) can therefore never record a step, and so never send,
after another instance took the lock, even before its own ``refresh()`` notices. On SQLite the
check reads the lease row's token under the transaction's write lock (``BEGIN IMMEDIATE``): no
one can take the lease between the check and the commit. On PostgreSQL it asks ``pg_locks``
whether the backend that took the advisory lock still holds it, holding a second advisory key
(the fence key) shared until the transaction ends; a new holder takes that key exclusive once
before it acts, ending the sessions of the previous holder's transactions still open past
their fence, so a step fenced before the lock changed hands commits before or never.

A standby (``lpbot run --standby``) takes the lock the moment it is free. On PostgreSQL that is
as soon as the holder's lock connection ends (a killed process, a ``pg_terminate_backend``, a
dead machine once the server's TCP keepalives give up), even while the old holder is in the
middle of a step. That is safe because of the order every step keeps: the fenced transaction
that records a transaction (signed bytes, nonce) or reserves a hedge order (its client order
id) commits before the send. After the lock is lost the old holder's fence refuses every new
record, so all it can still send is what it recorded while it held the lock, and the standby's
start finds exactly that: a recorded transaction is looked up on the chain by its nonce (the
Safe's own nonce lets a Safe transaction execute once, whoever broadcasts it) and a reserved
order is looked up at the venue by its client order id before anything else is sent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    delete,
    false,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from lpbot.errors import Halt
from lpbot.store.models import InstanceLockRow, InstanceRow
from lpbot.store.session import APPLICATION_PREFIX, application_name

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "LOCK_NAME",
    "Lock",
    "LockLost",
    "acquire_instance_lock",
    "end_holder_session",
    "lease_seconds",
    "lock_holder",
    "lock_interval",
]


class LockLost(Halt):
    """This process no longer holds the instance lock: it must not record or send anything."""


log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60.0
Clock = Callable[[], datetime]
LOCK_NAME = "lpbot-run"  # the lock `lpbot run` holds (``lpbot.jobs.scheduler``)


def lock_interval(takeover_seconds: float) -> float:
    """How often the active renews (and checks) its instance lock and a standby tries to take
    it: a third of the takeover time, so a standby acts within it of the active's end."""
    return takeover_seconds / 3


def lease_seconds(takeover_seconds: float) -> float:
    """SQLite's lease: two renewals long, so a holder that stopped renewing loses it, and a
    standby trying every third of the takeover time takes it, within the takeover time."""
    return 2 * takeover_seconds / 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Lock(Protocol):
    """A held instance lock. ``refresh`` renews it (False when it was lost); ``release`` frees."""

    name: str
    owner: str

    def refresh(self) -> bool: ...

    def fence(self, session: Session) -> None: ...

    def release(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _owner() -> tuple[str, str, int]:
    hostname, pid = socket.gethostname(), os.getpid()
    return f"{pid}@{hostname}", hostname, pid


def acquire_instance_lock(
    engine: Engine,
    name: str,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    clock: Clock = _utcnow,
) -> Lock | None:
    """The lock ``name`` on this database, or None when another instance holds it."""
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock.try_acquire(engine, name)
    return _LeaseLock.try_acquire(engine, name, lease_seconds, clock)


def lock_holder(engine: Engine, name: str, *, clock: Clock = _utcnow) -> str | None:
    """Who holds the lock ``name`` on this database now (``pid@host``; on PostgreSQL the
    holder's connection names it, else the server's backend pid), or None; only reads. A
    lease past its expiry, or whose owner on this host is no longer running, is held by no
    one: the next ``acquire_instance_lock`` takes it."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
            unsigned = advisory_key(name, schema) & 0xFFFF_FFFF_FFFF_FFFF
            found = conn.execute(
                _HOLDER, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}
            ).one_or_none()
            if found is None:
                return None
            return _holder_name(conn, found[0], found[1])
        row = conn.execute(
            select(_TABLE).where(_TABLE.c.name == name, _TABLE.c.expires_at > clock())
        ).one_or_none()
    if row is None:
        return None
    if row.hostname == socket.gethostname() and not _alive(row.pid):
        return None
    return str(row.owner)


# PostgreSQL keeps 63 bytes of an application_name (NAMEDATALEN - 1)
_APPLICATION_MAX = 63


def _holder_name(conn: Connection, pid: int, application: str | None) -> str:
    """The lock holder's name from its backend: its application_name's ``pid@hostname``, else
    the backend's pid."""
    if application and str(application).startswith(APPLICATION_PREFIX):
        owner = str(application)[len(APPLICATION_PREFIX) :]
        if len(str(application)) >= _APPLICATION_MAX:  # cut short by the server
            owner = _full_owner(conn, owner)
        return owner
    return f"backend {pid}"


def _full_owner(conn: Connection, cut: str) -> str:
    """The instance (``pid@hostname``) whose application_name the server cut to ``cut``: the
    one heartbeat row that starts with it (the active first), else ``cut`` itself. The
    standby watches that row's heartbeat, and alerts and ``lpbot status`` name it."""
    table = InstanceRow.__table__
    try:
        with conn.begin_nested():
            rows = conn.execute(
                select(table.c.owner, table.c.role).where(
                    table.c.owner.startswith(cut, autoescape=True)
                )
            ).all()
    except DBAPIError:  # no heartbeat table yet
        return cut
    for wanted in ("active", None):
        found = [str(r.owner) for r in rows if wanted is None or r.role == wanted]
        if len(found) == 1:
            return found[0]
    return cut


def end_holder_session(engine: Engine, name: str, *, owner: str | None = None) -> bool:
    """PostgreSQL: end the session holding the advisory lock ``name`` (``pg_terminate_backend``,
    allowed on the sessions of one's own role), which frees it; whatever that holder tries to
    record afterwards its fence refuses. For a holder that stopped renewing (a paused process,
    a suspended VM) whose connection the server still sees open. ``owner``: only when the
    holder is still that instance (``lock_holder``'s name), not one that took the lock since
    (another standby's takeover). SQLite: False (a lease that is not renewed expires by
    itself)."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
        unsigned = advisory_key(name, schema) & 0xFFFF_FFFF_FFFF_FFFF
        found = conn.execute(
            _HOLDER, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}
        ).one_or_none()
        if found is None:
            return False
        if owner is not None and _holder_name(conn, found[0], found[1]) != owner:
            log.info("instance lock %r changed hands; its new holder is not ended", name)
            return False
        ended = bool(
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": found[0]}).scalar()
        )
        conn.commit()
    log.warning("ended the session holding instance lock %r (backend %s)", name, found[0])
    return ended


class _LockBase:
    name: str
    owner: str

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def advisory_key(name: str, schema: str) -> int:
    """The signed 64-bit advisory lock key for ``name`` in ``schema`` (SHA-256's first 8 bytes).

    Advisory locks are per database; the schema in the key makes lpbot's tables the scope, so
    two deployments in two schemas of one database do not exclude each other.
    """
    digest = hashlib.sha256(f"lpbot:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# a bigint advisory lock shows in pg_locks as classid (high 32 bits), objid (low), objsubid 1
_HELD = text(
    "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND objsubid = 1"
    " AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid)"
)

# the session that took the lock, by its pid and its start (a pid the server reuses for
# another session, the next holder's say, is not it)
_HELD_BY = text(
    "SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.pid = :pid AND l.objsubid = 1"
    " AND a.backend_start = :start"
    " AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid)"
)
_STARTED = text("SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")


_HOLDER = text(
    "SELECT l.pid, a.application_name FROM pg_locks l"
    " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid) LIMIT 1"
)
# the server's TCP keepalives on the lock's connection: a holder whose machine died without
# closing its socket loses the lock after about idle + interval x count seconds (5 + 2 x 3);
# a process that dies on a live machine loses it at once (its kernel closes the socket)
_KEEPALIVES = (
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
)


# the backends in a transaction that passed a fence of the lock (its shared fence key)
_FENCED = text(
    "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid <> pg_backend_pid() AND objsubid = 1"
    " AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid)"
)
_DRAIN_SECONDS = 5.0


def _split(key: int) -> dict[str, int]:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}


def _fence_key(name: str, schema: str) -> int:
    """The advisory key every fenced transaction takes shared, and a new holder exclusive."""
    return advisory_key(f"{name}#fence", schema)


def _drain_fenced(connection: Connection, name: str, fence_key: int) -> bool:
    """With the lock just taken: no transaction that passed the previous holder's fence may
    commit from now on. Each one holds the fence key shared until it ends; take it exclusive
    once, ending the sessions of those still open (a holder paused between its fence and its
    commit: its step rolls back, so it records, and sends, nothing the new holder cannot
    see). Later fences of the previous holder find the lock gone. False when they could not
    be ended within ``_DRAIN_SECONDS``."""
    deadline = time.monotonic() + _DRAIN_SECONDS
    while True:
        if connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": fence_key}).scalar():
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": fence_key})
            return True
        if time.monotonic() > deadline:
            return False
        for pid in connection.execute(_FENCED, _split(fence_key)).scalars().all():
            log.warning(
                "ending a transaction of the previous holder of instance lock %r (backend %s)"
                " that passed its fence before the lock changed hands",
                name,
                pid,
            )
            connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        time.sleep(0.05)


class _AdvisoryLock(_LockBase):
    def __init__(
        self,
        name: str,
        connection: Connection,
        key: int,
        backend: int,
        fence_key: int,
        started: object,
    ) -> None:
        self.name = name
        self.owner = _owner()[0]
        self._connection: Connection | None = connection
        self._key = key
        self._fence_key = fence_key
        self._backend = backend  # pg_backend_pid() of the connection holding the lock
        self._started = started  # and when that session started

    @classmethod
    def try_acquire(cls, engine: Engine, name: str) -> _AdvisoryLock | None:
        connection = engine.connect()
        try:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            key = advisory_key(name, str(schema))
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            backend = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
            started = connection.execute(_STARTED).scalar_one()
            fence_key = _fence_key(name, str(schema))
            if got and not _drain_fenced(connection, name, fence_key):
                log.error(
                    "took instance lock %r but could not end the previous holder's fenced "
                    "transactions; letting it go",
                    name,
                )
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                got = False
            if got:
                # who holds it, for ``lock_holder`` (and the standby's takeover alert); and the
                # server notices a holder whose machine died (no FIN) by TCP keepalives
                connection.execute(
                    text("SELECT set_config('application_name', :n, false)"),
                    {"n": application_name()},
                )
                for setting, value in _KEEPALIVES:
                    connection.execute(
                        text("SELECT set_config(:s, :v, false)"), {"s": setting, "v": value}
                    )
            connection.commit()  # the lock is the session's; keep no transaction open
        except BaseException:
            connection.close()
            raise
        if not got:
            connection.close()
            return None
        return cls(name, connection, key, backend, fence_key, started)

    def fence(self, session: Session) -> None:
        """``LockLost`` unless the backend that took the lock still holds it (checked in the
        caller's transaction). The transaction holds the fence key shared until it ends, so
        the next holder, taking the lock, ends it first if it is still open (``_drain_fenced``):
        it commits before the lock changes hands or not at all."""
        session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": self._fence_key})
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        held = (
            self._connection is not None
            and session.execute(
                _HELD_BY,
                {
                    "hi": unsigned >> 32,
                    "lo": unsigned & 0xFFFF_FFFF,
                    "pid": self._backend,
                    "start": self._started,
                },
            ).scalar()
        )
        if not held:
            raise LockLost(f"instance lock {self.name!r} is no longer held by this process")

    def refresh(self) -> bool:
        """True while this session still holds the lock (it goes with its connection)."""
        if self._connection is None:
            return False
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        try:
            held = self._connection.execute(
                _HELD, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}
            ).scalar()
            self._connection.commit()
        except DBAPIError:
            log.error("lost the connection holding instance lock %r", self.name, exc_info=True)
            held = False
        if not held:
            log.error("instance lock %r is no longer held", self.name)
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._connection.commit()
        except DBAPIError:
            log.warning("could not unlock %r; closing its connection frees it", self.name)
            self._connection.invalidate()
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _LeaseLock(_LockBase):
    def __init__(
        self, engine: Engine, name: str, token: str, owner: str, lease: timedelta, clock: Clock
    ) -> None:
        self.name = name
        self.owner = owner
        self._engine = engine
        self._token: str | None = token
        self._lease = lease
        self._clock = clock

    @classmethod
    def try_acquire(
        cls, engine: Engine, name: str, lease_seconds: float, clock: Clock
    ) -> _LeaseLock | None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        lease = timedelta(seconds=lease_seconds)
        owner, hostname, pid = _owner()
        token = uuid.uuid4().hex
        now = clock()
        values = {
            "token": token,
            "owner": owner,
            "hostname": hostname,
            "pid": pid,
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + lease,
        }
        table = _TABLE
        with engine.begin() as conn:
            holder = conn.execute(select(table).where(table.c.name == name)).one_or_none()
            if holder is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(table).values(name=name, **values))
                except IntegrityError:
                    return None  # another process inserted it first
                return cls(engine, name, token, owner, lease, clock)
            stale = holder.hostname == hostname and holder.pid != pid and not _alive(holder.pid)
            taken = conn.execute(
                update(table)
                .where(
                    table.c.name == name,
                    table.c.token == holder.token,
                    or_(table.c.expires_at <= now, true() if stale else false()),
                )
                .values(**values)
            ).rowcount
        if taken != 1:
            return None
        reason = "its owner is gone" if stale else "its lease expired"
        log.warning("took instance lock %r from %s: %s", name, holder.owner, reason)
        return cls(engine, name, token, owner, lease, clock)

    def fence(self, session: Session) -> None:
        """``LockLost`` unless the lease row still carries this holder's token (read in the
        caller's transaction, which holds SQLite's write lock until it commits)."""
        token = session.execute(select(_TABLE.c.token).where(_TABLE.c.name == self.name)).scalar()
        if self._token is None or token != self._token:
            self._token = None
            raise LockLost(f"instance lock {self.name!r} was taken by another instance")

    def refresh(self) -> bool:
        """Extend the lease from now; False when another instance has taken it."""
        if self._token is None:
            return False
        now = self._clock()
        table = _TABLE
        with self._engine.begin() as conn:
            renewed = conn.execute(
                update(table)
                .where(table.c.name == self.name, table.c.token == self._token)
                .values(heartbeat_at=now, expires_at=now + self._lease)
            ).rowcount
        if renewed != 1:
            log.error("instance lock %r was taken by another instance", self.name)
            self._token = None
            return False
        return True

    def release(self) -> None:
        if self._token is None:
            return
        table = _TABLE
        with self._engine.begin() as conn:
            conn.execute(
                delete(table).where(table.c.name == self.name, table.c.token == self._token)
            )
        self._token = None


_TABLE: Table = InstanceLockRow.__table__  # type: ignore[assignment]


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a process we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
