"""Fencing: a holder that lost the instance lock (paused past its lease while another instance
took it) can record no rebalance step, no transaction and no hedge order, so it can send
nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, update

from lpbot.execution.state import RebalanceState, TxRecord
from lpbot.hedge.controller import HedgeController
from lpbot.hedge.plan import HedgeConfig
from lpbot.hedge.state import MemoryStateStore
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.jobs.guard import JobGuard
from lpbot.jobs.hedge_orders import StoreOrderJournal
from lpbot.store.lock import LockLost, acquire_instance_lock
from lpbot.store.models import HedgeFill, HedgeOrder, InstanceLockRow, OrderStatus
from lpbot.store.rebalances import SqlRebalanceRepo
from lpbot.store.session import make_engine, session_factory
from tests.hedge.fakes import BTC, paper

from .conftest import OWNER, POOL, T0
from .test_lock import Clock

TX = TxRecord(
    tx_hash="0x" + "ab" * 32,
    nonce=7,
    sender=OWNER,
    to=OWNER,
    gas_limit=400_000,
    max_fee_per_gas=3 * 10**9,
    max_priority_fee_per_gas=10**9,
)


def test_a_holder_that_lost_the_lease_cannot_record_or_send(sqlite_engine: Engine) -> None:
    clock_a, clock_b = Clock(T0), Clock(T0)
    paused = acquire_instance_lock(sqlite_engine, "lpbot-run", lease_seconds=60, clock=clock_a)
    assert paused is not None
    sessions = session_factory(sqlite_engine)
    mine = SqlRebalanceRepo(sessions, fence=paused.fence)
    record = mine.create(
        idempotency_key="k1", chain_id=31337, safe=OWNER, token_id=21, pool=POOL,
        tick_range=(-600, 600), reason="test",
    )  # fmt: skip
    record = mine.transition(record.id, RebalanceState.PLANNED, RebalanceState.SIMULATED)
    record = mine.transition(record.id, RebalanceState.SIMULATED, RebalanceState.APPROVED)

    # the holder is paused past its lease (as another live process would be); another takes it
    with sqlite_engine.begin() as conn:
        conn.execute(update(InstanceLockRow).values(pid=1))
    clock_b.now = T0 + timedelta(seconds=61)
    other = make_engine(str(sqlite_engine.url))
    taker = acquire_instance_lock(other, "lpbot-run", clock=clock_b)
    assert taker is not None

    # woken up, before its own refresh noticed anything: every step is refused, nothing written
    with pytest.raises(LockLost):
        mine.transition(record.id, RebalanceState.APPROVED, RebalanceState.SIGNED, signatures=[])
    with pytest.raises(LockLost):
        mine.record_transaction(record.id, TX)  # recorded before any broadcast: never sent
    with pytest.raises(LockLost):
        mine.check_fence()
    with pytest.raises(LockLost):
        mine.create(idempotency_key="k2", chain_id=31337, safe=OWNER, token_id=22, pool=POOL)
    got = mine.get(record.id)
    assert got is not None and got.state == RebalanceState.APPROVED
    assert mine.transactions(record.id) == []
    assert mine.by_report("none") is None  # reading stays possible

    theirs = SqlRebalanceRepo(session_factory(other), fence=taker.fence)
    moved = theirs.transition(
        record.id, RebalanceState.APPROVED, RebalanceState.SIGNED, signatures=[]
    )
    assert moved.state == RebalanceState.SIGNED
    taker.release()
    other.dispose()


def test_a_job_that_finds_the_lock_lost_stops_the_daemon(sqlite_engine: Engine) -> None:
    clock_a, clock_b = Clock(T0), Clock(T0)
    paused = acquire_instance_lock(sqlite_engine, "lpbot-run", lease_seconds=60, clock=clock_a)
    assert paused is not None
    with sqlite_engine.begin() as conn:
        conn.execute(update(InstanceLockRow).values(pid=1))
    clock_b.now = T0 + timedelta(seconds=61)
    taker = acquire_instance_lock(sqlite_engine, "lpbot-run", clock=clock_b)
    assert taker is not None
    sessions = session_factory(sqlite_engine)
    repo = SqlRebalanceRepo(sessions, fence=paused.fence)
    stops: list[int] = []
    notifier = MemoryNotifier()
    guard = JobGuard(sessions, notifier, "paused@host", stop=lambda: stops.append(1))
    assert guard.run("rebalance_check:a", repo.check_fence) is None
    assert stops == [1] and [a.kind for a in notifier.alerts] == ["lock_lost"]
    assert guard.fatal is not None and guard.fatal_error is LockLost
    assert guard.run("rebalance_check:a", lambda: "acts") is None  # it acts no more
    taker.release()


def test_a_holder_that_lost_the_lease_cannot_place_a_hedge_order(sqlite_engine: Engine) -> None:
    clock_a, clock_b = Clock(T0), Clock(T0)
    paused = acquire_instance_lock(sqlite_engine, "lpbot-run", lease_seconds=60, clock=clock_a)
    assert paused is not None
    sessions = session_factory(sqlite_engine)
    venue, _, venue_clock = paper()
    state = MemoryStateStore()
    config = HedgeConfig(symbol=BTC, band_abs=Decimal("0.05"), band_pct=Decimal(2))

    def hedge(fence: object) -> HedgeController:
        journal = StoreOrderJournal(sessions, exchange="paper", fence=fence)  # type: ignore[arg-type]
        return HedgeController(
            venue, config, state, position_id="31337:npm:7", clock=venue_clock, journal=journal
        )

    mine = hedge(paused.fence)
    first = mine.sync(Decimal(5))  # while it holds the lock: reserved, sent, booked
    assert [o.filled for o in first.orders] == [Decimal(5)]
    with sessions() as s:
        (order,) = s.scalars(select(HedgeOrder)).all()
        (fill,) = s.scalars(select(HedgeFill)).all()
        assert (order.status, order.filled, fill.amount) == (
            OrderStatus.FILLED, Decimal(5), Decimal(5),
        )  # fmt: skip

    # paused past its lease while another instance took the lock
    with sqlite_engine.begin() as conn:
        conn.execute(update(InstanceLockRow).values(pid=1))
    clock_b.now = T0 + timedelta(seconds=61)
    other = make_engine(str(sqlite_engine.url))
    taker = acquire_instance_lock(other, "lpbot-run", clock=clock_b)
    assert taker is not None

    # woken up, the LP delta moved: the order it would send is refused before it is sent
    with pytest.raises(LockLost):
        mine.sync(Decimal(8))
    assert len(venue.state.orders) == 1 and venue.fetch_position(BTC).size == Decimal(-5)
    assert mine.state.pending is None
    with sessions() as s:
        assert len(s.scalars(select(HedgeOrder)).all()) == 1

    # the instance that holds the lock hedges the move
    theirs = hedge(taker.fence)
    moved = theirs.sync(Decimal(8))
    assert [o.filled for o in moved.orders] == [Decimal(3)]
    assert venue.fetch_position(BTC).size == Decimal(-8)
    with sessions() as s:
        assert sorted(o.filled for o in s.scalars(select(HedgeOrder))) == [Decimal(3), Decimal(5)]
    taker.release()
    other.dispose()
