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
