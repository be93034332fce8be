"""Store fixtures: every test runs on SQLite and, when ``LPBOT_TEST_POSTGRES_URL`` is set, on
PostgreSQL too (``scripts/ci-postgres.sh`` starts a server and prints that variable).

Each PostgreSQL test gets a schema of its own (a fresh ``search_path``), dropped afterwards, so
tests stay independent and may run in parallel on one database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from lpbot.store import migrate, repo
from lpbot.store.session import make_engine, session_factory

POSTGRES_ENV = "LPBOT_TEST_POSTGRES_URL"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections use a new, empty schema of the test server; dropped after."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (scripts/ci-postgres.sh starts a server)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@contextmanager
def _migrated(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    migrate.upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL: a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lpbot.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the newest schema (each engine in turn)."""
    with _migrated(db_url) as eng:
        yield eng


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database, for what only SQLite has."""
    with _migrated(f"sqlite:///{tmp_path / 'lpbot.db'}") as eng:
        yield eng


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new PostgreSQL schema's URL, for what only PostgreSQL has (skipped without a server)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    with _migrated(postgres_url) as eng:
        yield eng


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


T0 = datetime(2026, 1, 1, tzinfo=UTC)
POOL = "0x1B8d837dcd03b2dC9CE5B5CBd62949410FC2699C"
OWNER = "0xaEdDcf8f23259914Bcf7c301CBA47ebdAb60ffad"


@pytest.fixture
def position_id(sessions: sessionmaker[Session]) -> int:
    """A recorded USDC/WETH position on the devnet chain."""
    with sessions.begin() as s:
        row = repo.record_position(
            s,
            label="eth-usdc",
            chain_id=31337,
            pool_address=POOL,
            token_id=1,
            owner_address=OWNER,
            tick_lower=-200_000,
            tick_upper=-190_000,
            now=T0,
        )
        return row.id
