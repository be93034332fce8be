"""Money and time survive the database exactly, on every engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from lpbot.store import repo
from lpbot.store.models import HedgeOrder, OrderSide, PositionSnapshot

from .conftest import T0

BIG = [2**256 - 1, 10**30, 2**160 - 1, 2**63, 0, 1]


def test_amounts_round_trip_exactly(sessions: sessionmaker[Session], position_id: int) -> None:
    with sessions.begin() as s:
        for i, value in enumerate(BIG):
            repo.save_snapshot(
                s,
                position_id,
                taken_at=T0 + timedelta(minutes=i),
                sqrt_price_x96=value,
                tick=0,
                liquidity=value,
                amount0=value,
                amount1=10**30,
                fees0=2**256 - 1,
                fees1=0,
            )
    with sessions() as s:
        rows = s.scalars(select(PositionSnapshot).order_by(PositionSnapshot.id)).all()
        got = [(r.sqrt_price_x96, r.liquidity, r.amount0) for r in rows]
        assert got == [(v, v, v) for v in BIG]
        for r in rows:
            assert type(r.sqrt_price_x96) is int
            assert (r.amount1, r.fees0, r.fees1) == (10**30, 2**256 - 1, 0)


def test_amounts_are_stored_as_exact_digits(engine: Engine, position_id: int) -> None:
    factory = sessionmaker(bind=engine)
    with factory.begin() as s:
        repo.save_snapshot(
            s, position_id, taken_at=T0, sqrt_price_x96=2**256 - 1, tick=0, liquidity=10**30,
            amount0=0, amount1=0, fees0=0, fees1=0,
        )  # fmt: skip
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT sqrt_price_x96, liquidity FROM position_snapshots")).one()
    assert str(raw[0]) == str(2**256 - 1)
    assert str(raw[1]) == str(10**30)


def test_amount_refuses_floats_and_overflow(
    sessions: sessionmaker[Session], position_id: int
) -> None:
    for bad in (1.5, Decimal("1"), True, 10**78):
        with pytest.raises(StatementError, match="amount"), sessions.begin() as s:
            repo.save_snapshot(
                s, position_id, taken_at=T0, sqrt_price_x96=bad,  # type: ignore[arg-type]
                tick=0, liquidity=0, amount0=0, amount1=0, fees0=0, fees1=0,
            )  # fmt: skip


def test_exact_decimals_round_trip(sessions: sessionmaker[Session]) -> None:
    amounts = [Decimal("0.000000000000000001"), Decimal("123456789.123456789"), Decimal("1E+40")]
    with sessions.begin() as s:
        for i, amount in enumerate(amounts):
            repo.record_hedge_order(
                s, client_order_id=f"c{i}", exchange="paper", symbol="ETH/USDC:USDC",
                side=OrderSide.SELL, amount=amount, price=Decimal("3000.5"), now=T0,
            )  # fmt: skip
    with sessions() as s:
        rows = s.scalars(select(HedgeOrder).order_by(HedgeOrder.id)).all()
        assert [r.amount for r in rows] == amounts
        assert str(rows[1].amount) == "123456789.123456789"
        assert str(rows[2].amount) == "10000000000000000000000000000000000000000"
        assert rows[0].price == Decimal("3000.5") and rows[0].filled == 0
    with pytest.raises(StatementError, match="decimal places"), sessions.begin() as s:
        repo.record_hedge_order(
            s, client_order_id="x", exchange="paper", symbol="ETH/USDC:USDC",
            side=OrderSide.SELL, amount=Decimal("1e-19"),
        )  # fmt: skip


def test_datetimes_are_aware_utc(sessions: sessionmaker[Session], position_id: int) -> None:
    tokyo = datetime(2026, 1, 1, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=9)))
    with sessions.begin() as s:
        repo.save_snapshot(
            s, position_id, taken_at=tokyo, sqrt_price_x96=1, tick=0, liquidity=0,
            amount0=0, amount1=0, fees0=0, fees1=0,
        )  # fmt: skip
    with sessions() as s:
        got = s.scalars(select(PositionSnapshot.taken_at)).one()
    assert got == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert got.tzinfo is UTC
    with pytest.raises(StatementError, match="timezone-aware"), sessions.begin() as s:
        repo.save_snapshot(
            s, position_id, taken_at=datetime(2026, 1, 1), sqrt_price_x96=1, tick=0,
            liquidity=0, amount0=0, amount1=0, fees0=0, fees1=0,
        )  # fmt: skip
