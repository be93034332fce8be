"""Repository operations: idempotent creation, compare-and-set transitions, queries."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from lpbot.store import repo
from lpbot.store.models import (
    HedgeOrder,
    JobRun,
    JobStatus,
    OrderSide,
    OrderStatus,
    Position,
    Rebalance,
    RebalanceState,
    TxStatus,
)

from .conftest import OWNER, POOL, T0

S = RebalanceState
DECISION = {"kind": "rebalance", "new_range": [-199_000, -193_000], "trigger": "near_edge"}


def _plan(sessions: sessionmaker[Session], position_id: int, key: str = "pos1:blk100") -> int:
    with sessions.begin() as s:
        row, created = repo.create_rebalance(
            s,
            idempotency_key=key,
            position_id=position_id,
            reason="near_edge: expected gain beats cost",
            decision=DECISION,
            reasons=["price within 1% of the edge", "gain $12 > cost $3"],
            value_usd=5_000.0,
            deadline=T0 + timedelta(minutes=20),
            now=T0,
        )
        assert created
        return row.id


def test_create_rebalance_is_idempotent(sessions: sessionmaker[Session], position_id: int) -> None:
    first = _plan(sessions, position_id)
    with sessions.begin() as s:
        again, created = repo.create_rebalance(
            s,
            idempotency_key="pos1:blk100",
            position_id=position_id,
            reason="a second planner",
            decision={"other": True},
        )
        assert not created
        assert again.id == first
        assert again.reason == "near_edge: expected gain beats cost"
        assert again.state is S.PLANNED and again.planned_at == T0
        assert again.decision == DECISION
    with sessions() as s:
        planned = repo.audit_entries(s, rebalance_id=first)
        assert [(e.kind, e.decision) for e in planned] == [("rebalance.planned", "PLANNED")]
        assert planned[0].reasons == ["price within 1% of the edge", "gain $12 > cost $3"]


def test_racing_creates_make_one_row(sessions: sessionmaker[Session], position_id: int) -> None:
    barrier = threading.Barrier(4)
    ids: list[int] = []
    flags: list[bool] = []

    def create() -> None:
        barrier.wait()
        with sessions.begin() as s:
            row, created = repo.create_rebalance(
                s, idempotency_key="race", position_id=position_id, reason="r", decision={}
            )
            ids.append(row.id)
            flags.append(created)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 4
    assert sorted(flags) == [False, False, False, True]


def test_walk_the_state_machine(sessions: sessionmaker[Session], position_id: int) -> None:
    rid = _plan(sessions, position_id)
    steps = [
        (S.PLANNED, S.SIMULATED, {"report_id": "r-1", "report_hash": "0x" + "ab" * 32}),
        (S.SIMULATED, S.APPROVED, {"approved_by": "policy:module"}),
        (S.APPROVED, S.SIGNED, {"safe_tx_hash": "0x" + "cd" * 32}),
        (S.SIGNED, S.SUBMITTED, {}),
        (S.SUBMITTED, S.CONFIRMED, {}),
    ]
    for i, (old, new, fields) in enumerate(steps, start=1):
        with sessions.begin() as s:
            moved = repo.transition(
                s, rid, old, new, reason=f"step {i}", now=T0 + timedelta(seconds=i), **fields
            )
            assert moved
    with sessions() as s:
        row = repo.get_rebalance(s, rid)
        assert row is not None
        assert row.state is S.CONFIRMED
        assert row.report_hash == "0x" + "ab" * 32 and row.approved_by == "policy:module"
        stamps = [row.simulated_at, row.approved_at, row.signed_at, row.submitted_at]
        assert stamps == [T0 + timedelta(seconds=i) for i in range(1, 5)]
        assert row.confirmed_at == T0 + timedelta(seconds=5)
        assert row.failed_at is None and row.updated_at == T0 + timedelta(seconds=5)
        moves = repo.audit_entries(s, rebalance_id=rid)[1:]
        trail = [(e.data["from"], e.data["to"]) for e in moves if e.data is not None]
        assert trail == [(old.value, new.value) for old, new, _ in steps]


def test_transition_compares_and_sets(sessions: sessionmaker[Session], position_id: int) -> None:
    rid = _plan(sessions, position_id)
    with sessions.begin() as s:
        assert repo.transition(s, rid, S.PLANNED, S.SIMULATED, reason="first")
    with sessions.begin() as s:  # a stale reader still believes it is PLANNED
        assert not repo.transition(s, rid, S.PLANNED, S.FAILED, reason="stale")
    with sessions() as s:
        row = repo.get_rebalance(s, rid)
        assert row is not None and row.state is S.SIMULATED and row.failed_at is None
        assert len(repo.audit_entries(s, rebalance_id=rid)) == 2  # planned + the one move


def _race(sessions: sessionmaker[Session], rid: int, old: S, new: S) -> list[bool]:
    """Two sessions try the same move at the same moment; what each got."""
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def move() -> None:
        try:
            with sessions() as s, s.begin():
                barrier.wait()
                results.append(repo.transition(s, rid, old, new, reason="racer"))
        except BaseException as exc:  # reported to the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=move) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_two_racing_sessions_exactly_one_wins(
    sessions: sessionmaker[Session], position_id: int
) -> None:
    rid = _plan(sessions, position_id)
    assert sorted(_race(sessions, rid, S.PLANNED, S.SIMULATED)) == [False, True]
    assert sorted(_race(sessions, rid, S.SIMULATED, S.APPROVED)) == [False, True]
    with sessions() as s:
        row = repo.get_rebalance(s, rid)
        assert row is not None and row.state is S.APPROVED
        assert len(repo.audit_entries(s, rebalance_id=rid)) == 3  # planned + the two moves


def test_invalid_transitions_are_refused(sessions: sessionmaker[Session], position_id: int) -> None:
    rid = _plan(sessions, position_id)
    with sessions.begin() as s:
        with pytest.raises(repo.InvalidTransition, match="PLANNED -> SIGNED"):
            repo.transition(s, rid, S.PLANNED, S.SIGNED, reason="skip ahead")
        with pytest.raises(repo.InvalidTransition, match="cannot set"):
            repo.transition(s, rid, S.PLANNED, S.SIMULATED, reason="x", state="CONFIRMED")
        assert repo.transition(s, rid, S.PLANNED, S.EXPIRED, reason="deadline passed")
        with pytest.raises(repo.InvalidTransition):
            repo.transition(s, rid, S.EXPIRED, S.PLANNED, reason="revive")
    assert all(
        new in repo.TRANSITIONS[old] for old, new in zip(list(S)[:5], list(S)[1:6], strict=True)
    )
    assert all(not repo.TRANSITIONS[s] for s in S if s.finished)


def test_pending_approvals_and_unfinished(
    sessions: sessionmaker[Session], position_id: int
) -> None:
    ids = [_plan(sessions, position_id, key=f"k{i}") for i in range(4)]
    with sessions.begin() as s:
        repo.transition(s, ids[1], S.PLANNED, S.SIMULATED, reason="simulated")
        repo.transition(s, ids[2], S.PLANNED, S.SIMULATED, reason="simulated")
        repo.transition(s, ids[2], S.SIMULATED, S.APPROVED, reason="approved")
        repo.transition(s, ids[3], S.PLANNED, S.FAILED, reason="reverted", error="'STF'")
    with sessions() as s:
        assert [r.id for r in repo.pending_approvals(s)] == [ids[1]]
        assert [r.id for r in repo.unfinished_rebalances(s)] == ids[:3]
        failed = repo.get_rebalance(s, ids[3])
        assert failed is not None and failed.error == "'STF'"
        assert repo.rebalance_by_key(s, "k2") is not None
        assert repo.rebalance_by_key(s, "nope") is None


def test_latest_snapshot_per_position(sessions: sessionmaker[Session], position_id: int) -> None:
    with sessions.begin() as s:
        other = repo.record_position(
            s, label="btc", chain_id=31337, pool_address=POOL, token_id=2, owner_address=OWNER,
            tick_lower=-60, tick_upper=60, now=T0,
        )  # fmt: skip
        assert repo.record_position(
            s, label="dup", chain_id=31337, pool_address=POOL, token_id=2, owner_address=OWNER,
            tick_lower=0, tick_upper=10,
        ).id == other.id  # fmt: skip
        for pid, minutes in [(position_id, 5), (position_id, 1), (other.id, 3), (position_id, 2)]:
            repo.save_snapshot(
                s, pid, taken_at=T0 + timedelta(minutes=minutes), sqrt_price_x96=2**96 + minutes,
                tick=minutes, liquidity=10**18, amount0=1, amount1=2, fees0=3, fees1=4,
                value_usd=1000.5, il_usd=-1.25, delta=0.5, block_number=100 + minutes,
            )  # fmt: skip
        other_id = other.id
    with sessions() as s:
        latest = repo.latest_snapshots(s)
        assert {pid: snap.tick for pid, snap in latest.items()} == {position_id: 5, other_id: 3}
        assert latest[position_id].sqrt_price_x96 == 2**96 + 5
        assert latest[position_id].value_usd == 1000.5 and latest[position_id].delta == 0.5
        one = repo.latest_snapshot(s, other_id)
        assert one is not None and one.block_number == 103
        history = repo.snapshots(s, position_id, since=T0 + timedelta(minutes=2))
        assert [h.tick for h in history] == [2, 5]
        assert repo.latest_snapshot(s, 10_000) is None


def test_positions_open_and_close(sessions: sessionmaker[Session], position_id: int) -> None:
    with sessions.begin() as s:
        new = repo.record_position(
            s, label="eth-usdc", chain_id=31337, pool_address=POOL, token_id=2**200,
            owner_address=OWNER, tick_lower=-10, tick_upper=10, replaces_id=position_id,
        )  # fmt: skip
        repo.close_position(s, position_id, now=T0 + timedelta(hours=1))
        repo.close_position(s, position_id, now=T0 + timedelta(hours=2))  # no change
    with sessions() as s:
        open_ = repo.open_positions(s, label="eth-usdc")
        assert [(p.id, p.token_id, p.replaces_id) for p in open_] == [(new.id, 2**200, position_id)]
        closed = s.get(Position, position_id)
        assert closed is not None and closed.closed_at == T0 + timedelta(hours=1)


def test_transactions_and_replacement(sessions: sessionmaker[Session], position_id: int) -> None:
    rid = _plan(sessions, position_id)
    with sessions.begin() as s:
        tx = repo.record_transaction(
            s, chain_id=31337, tx_hash="0x" + "11" * 32, nonce=7, from_address=OWNER,
            to_address=POOL, max_fee_per_gas=30 * 10**9, max_priority_fee_per_gas=10**9,
            gas_limit=500_000, rebalance_id=rid, now=T0,
        )  # fmt: skip
        same = repo.record_transaction(
            s, chain_id=31337, tx_hash="0x" + "11" * 32, nonce=7, from_address=OWNER,
            to_address=POOL,
        )  # fmt: skip
        assert same.id == tx.id and same.status is TxStatus.PENDING
        bump = repo.record_transaction(
            s, chain_id=31337, tx_hash="0x" + "22" * 32, nonce=7, from_address=OWNER,
            to_address=POOL, max_fee_per_gas=45 * 10**9, rebalance_id=rid,
        )  # fmt: skip
        repo.update_transaction(s, tx.id, status=TxStatus.REPLACED, replaced_by_id=bump.id)
        repo.update_transaction(
            s, bump.id, status=TxStatus.CONFIRMED, block_number=123, gas_used=321_000,
            effective_gas_price=2**255,
        )  # fmt: skip
    with sessions() as s:
        row = repo.get_rebalance(s, rid)
        assert row is not None
        txs = row.transactions
        assert [(t.status, t.replaced_by_id) for t in txs] == [
            (TxStatus.REPLACED, bump.id),
            (TxStatus.CONFIRMED, None),
        ]
        assert txs[1].effective_gas_price == 2**255 and txs[1].gas_used == 321_000
        assert txs[0].max_fee_per_gas == 30 * 10**9 and txs[0].value == 0


def test_signatures_kept_once_per_signer(sessions: sessionmaker[Session], position_id: int) -> None:
    rid = _plan(sessions, position_id)
    h = "0x" + "ef" * 32
    sig1, sig2 = bytes(range(65)), bytes(reversed(range(65)))
    with sessions.begin() as s:
        a = repo.record_signature(
            s, safe_address=OWNER, safe_tx_hash=h, signer_address=POOL, signature=sig1,
            rebalance_id=rid,
        )  # fmt: skip
        again = repo.record_signature(
            s, safe_address=OWNER, safe_tx_hash=h, signer_address=POOL, signature=sig2
        )
        assert again.id == a.id
        repo.record_signature(
            s, safe_address=OWNER, safe_tx_hash=h, signer_address=OWNER, signature=sig2
        )
    with sessions() as s:
        got = repo.signatures_for(s, h)
        assert [(g.signer_address, g.signature) for g in got] == [(POOL, sig1), (OWNER, sig2)]


def test_hedge_orders_fills_and_funding(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        order, created = repo.record_hedge_order(
            s, client_order_id="lpbot-h-1", exchange="paper", symbol="ETH/USDC:USDC",
            side=OrderSide.SELL, amount=Decimal("1.25"), reason="delta 1.3 outside band",
        )  # fmt: skip
        assert created
        again, created = repo.record_hedge_order(
            s, client_order_id="lpbot-h-1", exchange="paper", symbol="ETH/USDC:USDC",
            side=OrderSide.BUY, amount=Decimal("9"),
        )  # fmt: skip
        assert not created and again.id == order.id and again.side is OrderSide.SELL
        repo.update_hedge_order(
            s, order.id, status=OrderStatus.FILLED, exchange_order_id="ex-9",
            filled=Decimal("1.25"), average_price=Decimal("3001.5"),
        )  # fmt: skip
        fill = dict(
            order_id=order.id, trade_id="t1", amount=Decimal("1.25"), price=Decimal("3001.5"),
            fee=Decimal("0.00075"), fee_currency="USDC", filled_at=T0,
        )  # fmt: skip
        assert repo.record_fill(s, **fill).id == repo.record_fill(s, **fill).id  # type: ignore[arg-type]
        pay = dict(
            exchange="paper", symbol="ETH/USDC:USDC", amount=Decimal("-0.42"), currency="USDC",
            paid_at=T0, rate=Decimal("0.0001"),
        )  # fmt: skip
        assert repo.record_funding(s, **pay).id == repo.record_funding(s, **pay).id  # type: ignore[arg-type]
        order_id = order.id
    with sessions() as s:
        row = s.get(HedgeOrder, order_id)
        assert row is not None
        assert (row.status, row.filled, row.average_price) == (
            OrderStatus.FILLED, Decimal("1.25"), Decimal("3001.5"),
        )  # fmt: skip
        assert [(f.trade_id, f.fee) for f in row.fills] == [("t1", Decimal("0.00075"))]


def test_job_runs(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        run = repo.start_job_run(s, "monitor", instance="1@host", now=T0)
        assert run.status is JobStatus.RUNNING
        repo.finish_job_run(
            s, run.id, JobStatus.SUCCEEDED, details={"positions": 1},
            now=T0 + timedelta(seconds=2),
        )  # fmt: skip
        with pytest.raises(ValueError, match="finishes"):
            repo.finish_job_run(s, run.id, JobStatus.RUNNING)
    with sessions() as s:
        row = s.get(JobRun, run.id)
        assert row is not None and row.status is JobStatus.SUCCEEDED
        assert row.finished_at == T0 + timedelta(seconds=2) and row.details == {"positions": 1}


def test_rebalance_model_has_a_timestamp_per_state() -> None:
    columns = set(Rebalance.__table__.c.keys())
    assert {f"{state.value.lower()}_at" for state in S} <= columns
