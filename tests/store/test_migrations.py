"""The migrations build exactly the models' schema, and go down and up again."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from lpbot.store import migrate
from lpbot.store.models import Base
from lpbot.store.session import make_engine


def test_migrated_schema_equals_the_models(engine: Engine) -> None:
    assert migrate.schema_diff(engine) == []
    assert migrate.current(engine) == migrate.head()


def test_every_model_table_is_created(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_an_empty_database_differs_and_has_no_revision(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert migrate.current(engine) is None
        diff = migrate.schema_diff(engine)
        assert {op[1].name for op in diff if op[0] == "add_table"} == set(Base.metadata.tables)
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    migrate.upgrade(engine)  # at head already: nothing to do
    migrate.downgrade(engine, "base")
    assert migrate.current(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert migrate.schema_diff(engine) == []


def test_pool_fee_growth_columns_keep_old_snapshots_and_hold_uint256(db_url: str) -> None:
    """v0006 on a database with a snapshot from before it: the snapshot is kept, with no fee
    growth (the full-range benchmark starts after it); new snapshots hold the pool's fee growth
    to the last bit of a uint256, an uninitialized tick as NULL; down and up again."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from lpbot.analytics.full_range import PoolFeeState
    from lpbot.store import repo
    from lpbot.store.models import PositionSnapshot
    from lpbot.store.session import session_factory

    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "v0005_instances")
        sessions = session_factory(engine)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        with sessions.begin() as s:
            pos = repo.record_position(
                s, label="p", chain_id=31337, pool_address="0x" + "11" * 20, token_id=7,
                owner_address="0x" + "22" * 20, tick_lower=-600, tick_upper=600, now=at,
            )  # fmt: skip
            pid = pos.id
        # the row as v0005 wrote it: only its columns (the model has the new ones)
        with engine.begin() as c:
            row = dict(position_id=pid, taken_at=at, block_number=10, sqrt_price_x96=2**96,
                       tick=0, liquidity=10**12, amount0=1, amount1=2, fees0=0,
                       fees1=0)  # fmt: skip
            c.execute(PositionSnapshot.__table__.insert().values(**row))
        migrate.upgrade(engine)
        assert migrate.schema_diff(engine) == []
        top = 2**256 - 1
        fees = PoolFeeState(
            block=11, sqrt_price_x96=2**96, tick=0, fee=3000, tick_spacing=60,
            fee_growth_global0_x128=top, fee_growth_global1_x128=top - 5,
            lower_outside=(top - 1, 2**255), upper_outside=None,
        )  # fmt: skip
        with sessions.begin() as s:
            repo.save_snapshot(
                s, pid, taken_at=at, block_number=11, sqrt_price_x96=2**96, tick=0,
                liquidity=10**12, amount0=1, amount1=2, fees0=0, fees1=0, pool_fees=fees,
            )  # fmt: skip
        with sessions() as s:
            old, new = s.scalars(select(PositionSnapshot).order_by(PositionSnapshot.id)).all()
            assert (old.block_number, old.amount1, old.fee_growth_global0_x128) == (10, 2, None)
            assert old.pool_fee is None and old.full_range_lower_outside0_x128 is None
            assert (new.pool_fee, new.tick_spacing) == (3000, 60)
            assert (new.fee_growth_global0_x128, new.fee_growth_global1_x128) == (top, top - 5)
            assert (new.full_range_lower_outside0_x128, new.full_range_lower_outside1_x128) == (
                top - 1,
                2**255,
            )
            assert new.full_range_upper_outside0_x128 is None
            assert new.full_range_upper_outside1_x128 is None
        migrate.downgrade(engine, "v0005_instances")
        cols = {c["name"] for c in inspect(engine).get_columns("position_snapshots")}
        assert "fee_growth_global0_x128" not in cols and "owner_balance0" in cols
        migrate.upgrade(engine)
        assert migrate.schema_diff(engine) == []
    finally:
        engine.dispose()
