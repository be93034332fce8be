"""The standby's wait for the instance lock and the instances' heartbeats
(``jobs.scheduler.wait_for_lock``, ``store.instances``), on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, tzinfo

import pytest
from sqlalchemy import Engine, select, update

from lpbot.errors import Refused
from lpbot.jobs import scheduler
from lpbot.store import instances, migrate
from lpbot.store.lock import acquire_instance_lock, lock_holder
from lpbot.store.models import InstanceRow
from lpbot.store.session import make_engine

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_standby_waits_for_the_lock_then_holds_it_naming_the_one_before(
    engine: Engine, db_url: str
) -> None:
    other = make_engine(db_url)  # the active instance's process
    active = acquire_instance_lock(other, scheduler.LOCK_NAME)
    assert active is not None
    said: list[str] = []
    slept: list[float] = []
    seen: list[list[instances.Instance]] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        seen.append(instances.instances(engine, interval_seconds=seconds))
        if len(slept) == 2:
            active.release()  # the active one ends while the standby waits

    try:
        lock, took = scheduler.wait_for_lock(
            engine, takeover_seconds=6, say=said.append, sleep=sleep
        )
    finally:
        active.release()
        other.dispose()
    try:
        assert slept == [2.0, 2.0]  # a third of the takeover time
        # one line while the same instance is active; it names the active one
        assert len(said) == 1 and active.owner in said[0] and "standing by" in said[0]
        # while it waited, it was listed as a standby
        assert [(i.role, i.active_since) for i in seen[0]] == [("standby", None)]
        assert took.previous == active.owner
        assert took.locked_at >= took.started_at
        with pytest.raises(Refused) as refused:
            scheduler.take_lock(make_engine(db_url))
        assert lock.owner in str(refused.value) and "--standby" in str(refused.value)
    finally:
        lock.release()


def test_heartbeats_list_the_active_first_and_leave_out_stale_rows(engine: Engine) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    instances.heartbeat(engine, "11@b", "standby", started_at=t0)
    instances.heartbeat(engine, "10@a", "active", started_at=t0, active_since=t0)
    instances.heartbeat(engine, "12@c", "standby", started_at=t0)
    instances.heartbeat(engine, "12@c", "standby", started_at=t0)  # again: updated in place
    listed = instances.instances(engine, interval_seconds=10)
    assert [(i.owner, i.role) for i in listed] == [
        ("10@a", "active"),
        ("11@b", "standby"),
        ("12@c", "standby"),
    ]
    # a standby that died without deleting its row: stale after three missed heartbeats
    with engine.begin() as conn:
        conn.execute(
            update(InstanceRow.__table__)
            .where(InstanceRow.owner == "11@b")
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=31))
        )
    instances.forget(engine, "12@c")
    assert [i.owner for i in instances.instances(engine, interval_seconds=10)] == ["10@a"]


def test_rows_of_instances_gone_for_a_day_are_deleted(engine: Engine) -> None:
    """An instance killed (kill -9, a dead machine) never deletes its row: the next heartbeat
    of any instance deletes rows stale for a day, so the table does not grow with restarts."""
    now = datetime.now(UTC)
    for n in range(3):
        instances.heartbeat(engine, f"{100 + n}@gone", "active", started_at=now)
    instances.heartbeat(engine, "200@recent", "standby", started_at=now)
    with engine.begin() as conn:
        conn.execute(
            update(InstanceRow.__table__)
            .where(InstanceRow.owner.like("%@gone"))
            .values(heartbeat_at=now - timedelta(days=2))
        )
        conn.execute(
            update(InstanceRow.__table__)
            .where(InstanceRow.owner == "200@recent")
            .values(heartbeat_at=now - timedelta(hours=1))
        )
    instances.heartbeat(engine, "10@a", "active", started_at=now, active_since=now)
    with engine.connect() as conn:
        owners = sorted(conn.execute(select(InstanceRow.owner)).scalars())
    assert owners == ["10@a", "200@recent"]


class _HostBehind(datetime):
    """This host's clock, ten minutes behind the database server's and the other hosts'."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _HostBehind:  # type: ignore[override]
        t = datetime.now(tz) - timedelta(minutes=10)
        return cls.fromtimestamp(t.timestamp(), tz)


def test_postgresql_heartbeats_are_judged_by_the_database_clock(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A standby on a host whose clock is behind is still listed (``lpbot status``): its
    heartbeat is the database server's time, and so is the staleness it is judged by."""
    with monkeypatch.context() as m:
        m.setattr(instances, "datetime", _HostBehind)
        instances.heartbeat(postgres_engine, "7@behind", "standby", started_at=T0)
    listed = instances.instances(postgres_engine, interval_seconds=10)
    assert [i.owner for i in listed] == ["7@behind"]
    assert abs((listed[0].heartbeat_at - datetime.now(UTC)).total_seconds()) < 60


def test_a_long_hostname_still_names_the_holder_by_its_heartbeat_row(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL cuts application_name to 63 bytes: the holder read back from it is still
    the instance whose heartbeat the standby watches (else a paused active is never ended)."""
    host = "lpbot-standby-1.europe-west4-a.c.example-project-123456.internal"
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    lock = None
    try:
        lock = acquire_instance_lock(engine, scheduler.LOCK_NAME)
        assert lock is not None
        me = scheduler._instance()
        assert lock.owner == me and me.endswith(host)
        now = datetime.now(UTC)
        instances.heartbeat(engine, me, "active", started_at=now, active_since=now)
        assert lock_holder(engine, scheduler.LOCK_NAME) == me
        assert instances.heartbeat_of(engine, me) is not None
    finally:
        if lock is not None:
            lock.release()
        engine.dispose()
