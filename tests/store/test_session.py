"""Engines from URLs: SQLite's pragmas and directory, PostgreSQL's driver."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from lpbot.errors import ConfigError
from lpbot.store.session import make_engine, normalize_url, redact_url, session_factory


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "lpbot.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_in_memory(tmp_path: Path) -> None:
    factory = session_factory("sqlite://")
    with factory() as s:
        assert s.execute(text("SELECT 1")).scalar() == 1


def test_urls() -> None:
    assert normalize_url("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    assert redact_url("postgresql://u:hunter2@h/db") == "postgresql://u:***@h/db"
    with pytest.raises(ConfigError, match="not supported"):
        normalize_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match="not valid"):
        normalize_url("not a url")
