"""One instance per database: the second acquirer gets None until the first lets go."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from lpbot.store.lock import LockLost, acquire_instance_lock, end_holder_session, lock_holder
from lpbot.store.models import InstanceLockRow, InstanceRow
from lpbot.store.session import make_engine

from .conftest import T0, postgres_schema


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_second_acquirer_gets_none_until_release(engine: Engine, db_url: str) -> None:
    other = make_engine(db_url)  # another process's engine
    try:
        first = acquire_instance_lock(engine, "lpbot-run")
        assert first is not None
        assert acquire_instance_lock(other, "lpbot-run") is None
        assert acquire_instance_lock(engine, "lpbot-run") is None  # also from the same engine
        assert first.refresh()
        other_name = acquire_instance_lock(other, "backtest")  # locks are per name
        assert other_name is not None
        other_name.release()
        first.release()
        first.release()  # twice is harmless
        assert not first.refresh()
        second = acquire_instance_lock(other, "lpbot-run")
        assert second is not None
        with second:  # released on leaving the block
            assert acquire_instance_lock(engine, "lpbot-run") is None
        third = acquire_instance_lock(engine, "lpbot-run")
        assert third is not None
        third.release()
    finally:
        other.dispose()


def test_postgresql_lock_goes_with_its_connection(
    postgres_engine: Engine, postgres_url: str
) -> None:
    other = make_engine(postgres_url)
    try:
        first = acquire_instance_lock(other, "lpbot-run")
        assert first is not None
        assert acquire_instance_lock(postgres_engine, "lpbot-run") is None
        first._connection.invalidate()  # type: ignore[attr-defined]  # as if the process died
        second = None
        for _ in range(100):  # the server ends the session once it sees the socket closed
            second = acquire_instance_lock(postgres_engine, "lpbot-run")
            if second is not None:
                break
            time.sleep(0.05)
        assert second is not None
        assert not first.refresh()
        second.release()
    finally:
        other.dispose()


def test_postgresql_locks_are_per_schema(postgres_engine: Engine) -> None:
    with postgres_schema() as other_url:
        other = make_engine(other_url)
        try:
            mine = acquire_instance_lock(postgres_engine, "lpbot-run")
            theirs = acquire_instance_lock(other, "lpbot-run")
            assert mine is not None and theirs is not None
            mine.release()
            theirs.release()
        finally:
            other.dispose()


def test_sqlite_lease_expires_and_refresh_extends_it(sqlite_engine: Engine) -> None:
    clock_a, clock_b = Clock(T0), Clock(T0)
    holder = acquire_instance_lock(sqlite_engine, "lpbot-run", lease_seconds=60, clock=clock_a)
    assert holder is not None
    clock_a.now = clock_b.now = T0 + timedelta(seconds=50)
    assert holder.refresh()  # now it expires at T0 + 110 s
    clock_b.now = T0 + timedelta(seconds=100)
    assert acquire_instance_lock(sqlite_engine, "lpbot-run", clock=clock_b) is None
    # make the holder look like another live process, so that only the lease decides
    with sqlite_engine.begin() as conn:
        conn.execute(update(InstanceLockRow).values(pid=1))
    clock_b.now = T0 + timedelta(seconds=111)
    taker = acquire_instance_lock(sqlite_engine, "lpbot-run", clock=clock_b)
    assert taker is not None
    clock_a.now = T0 + timedelta(seconds=112)
    assert not holder.refresh()  # it lost the lock and knows it
    holder.release()  # and does not free the taker's
    assert acquire_instance_lock(sqlite_engine, "lpbot-run", clock=clock_b) is None
    taker.release()


def test_sqlite_lock_of_a_dead_process_on_this_host_is_taken(sqlite_engine: Engine) -> None:
    holder = acquire_instance_lock(sqlite_engine, "lpbot-run", lease_seconds=3600)
    assert holder is not None
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with sqlite_engine.begin() as conn:
        conn.execute(update(InstanceLockRow).values(pid=int(dead.stdout)))
    taker = acquire_instance_lock(sqlite_engine, "lpbot-run")
    assert taker is not None
    with sqlite_engine.connect() as conn:
        owner = conn.execute(text("SELECT owner FROM instance_locks")).scalar_one()
    assert owner == taker.owner
    taker.release()


def test_lock_holder_names_who_holds_it_and_only_reads(engine: Engine, db_url: str) -> None:
    """``lpbot status`` says whether a daemon runs: the holder while the lock is held, None
    once it is released (and taking it afterwards still works: the check changed nothing)."""
    assert lock_holder(engine, "lpbot-run") is None
    other = make_engine(db_url)  # the daemon's process
    try:
        held = acquire_instance_lock(other, "lpbot-run")
        assert held is not None
        # on both backends the holder's pid@hostname (PostgreSQL: its lock connection's name)
        assert lock_holder(engine, "lpbot-run") == held.owner
        assert lock_holder(engine, "backtest") is None
        held.release()
        assert lock_holder(engine, "lpbot-run") is None
        again = acquire_instance_lock(engine, "lpbot-run")
        assert again is not None
        again.release()
    finally:
        other.dispose()


def test_lock_holder_ignores_an_expired_lease(sqlite_engine: Engine) -> None:
    holder = acquire_instance_lock(sqlite_engine, "lpbot-run", lease_seconds=60, clock=Clock(T0))
    assert holder is not None
    assert lock_holder(sqlite_engine, "lpbot-run", clock=Clock(T0 + timedelta(seconds=59)))
    assert lock_holder(sqlite_engine, "lpbot-run", clock=Clock(T0 + timedelta(seconds=61))) is None
    holder.release()


def test_postgresql_a_step_fenced_before_a_takeover_never_commits_after_it(
    postgres_engine: Engine, postgres_url: str
) -> None:
    """The old holder checked its fence, then paused before committing (a suspended VM); the
    standby ends its lock's session and takes the lock. The old holder's step must not commit
    after the new holder started reading (it would send what the new one never saw)."""
    old_engine = make_engine(postgres_url)
    try:
        old = acquire_instance_lock(old_engine, "lpbot-run")
        assert old is not None
        step = Session(old_engine)
        step.begin()
        old.fence(step)  # the fence passes: the step is about to be recorded
        step.add(
            InstanceRow(
                owner="1@old", role="active", hostname="old", pid=1, started_at=T0, heartbeat_at=T0
            )
        )
        step.flush()
        # the old holder pauses here; the standby ends its lock's session and takes over
        assert end_holder_session(postgres_engine, "lpbot-run")
        new = None
        for _ in range(100):
            new = acquire_instance_lock(postgres_engine, "lpbot-run")
            if new is not None:
                break
            time.sleep(0.05)
        assert new is not None
        try:
            # the old holder wakes up and commits its step
            committed = True
            try:
                step.commit()
            except DBAPIError:
                committed = False
            finally:
                step.close()
            assert not committed
            with postgres_engine.connect() as conn:
                assert conn.execute(select(InstanceRow.owner)).scalars().all() == []
            # and every later step of the old holder is refused
            later = Session(old_engine)
            with later.begin(), pytest.raises(LockLost):
                old.fence(later)
            later.close()
        finally:
            new.release()
    finally:
        old_engine.dispose()


def test_postgresql_a_standby_ends_only_the_holder_it_saw_stale(
    postgres_engine: Engine, postgres_url: str
) -> None:
    """Two standbys saw the same active stop renewing; the first ended its session and took
    the lock. The second must not end the new holder's session (it would stop the instance
    that just took over, mid-resume)."""
    other = make_engine(postgres_url)
    try:
        new = acquire_instance_lock(other, "lpbot-run")
        assert new is not None
        assert not end_holder_session(postgres_engine, "lpbot-run", owner="4242@paused-host")
        assert new.refresh()
        assert end_holder_session(postgres_engine, "lpbot-run", owner=new.owner)
        assert not new.refresh()
    finally:
        other.dispose()


def test_postgresql_the_fence_knows_its_session_not_only_its_pid(
    postgres_engine: Engine, postgres_url: str
) -> None:
    """Backend pids are reused by the server's operating system: the old holder's fence must
    not pass because the new holder's lock session got the same pid."""
    other = make_engine(postgres_url)
    try:
        old = acquire_instance_lock(other, "lpbot-run")
        assert old is not None
        assert end_holder_session(postgres_engine, "lpbot-run")
        new = None
        for _ in range(100):
            new = acquire_instance_lock(postgres_engine, "lpbot-run")
            if new is not None:
                break
            time.sleep(0.05)
        assert new is not None
        old._backend = new._backend  # type: ignore[attr-defined]  # the pid, reused
        with Session(other) as s, s.begin(), pytest.raises(LockLost):
            old.fence(s)
        new.release()
    finally:
        other.dispose()
