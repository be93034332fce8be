"""Engines and sessions from a database URL: SQLite (the default) or PostgreSQL.

SQLite runs in WAL mode with foreign keys on, and every transaction starts with
``BEGIN IMMEDIATE``: it takes the write lock at once (waiting up to ``busy_timeout``), so a
read-then-write transaction never fails on a snapshot another writer made stale, and SAVEPOINTs
work (Python's sqlite3 module otherwise opens transactions itself, only before writes).
PostgreSQL URLs use the psycopg (3) driver: ``postgresql://`` becomes ``postgresql+psycopg://``;
each connection names its process (``application_name``: ``lpbot <pid>@<hostname>``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from lpbot.errors import ConfigError

__all__ = ["application_name", "make_engine", "normalize_url", "redact_url", "session_factory"]

SQLITE_BUSY_TIMEOUT_S = 30.0


def normalize_url(url: str | URL) -> URL:
    """The URL with lpbot's driver choices: psycopg 3 for PostgreSQL, pysqlite for SQLite."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"database URL {redact_url(url)!r} is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"database {backend!r} is not supported; use sqlite or postgresql")
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # unparsable: show only its scheme
        return str(url).split(":", 1)[0] + "://..."


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url``; a SQLite file's directory is created if missing."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    if "application_name" not in parsed.query:
        # pg_stat_activity shows which process each connection is (``lpbot status`` names the
        # instance lock's holder by it; an operator cuts one instance off by it)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("application_name", application_name())
        kwargs["connect_args"] = connect_args
    return create_engine(parsed, **kwargs)


APPLICATION_PREFIX = "lpbot "


def application_name() -> str:
    """This process's name on a PostgreSQL connection: ``lpbot <pid>@<hostname>``."""
    return f"{APPLICATION_PREFIX}{os.getpid()}@{socket.gethostname()}"[:63]


def session_factory(bind: str | URL | Engine) -> sessionmaker[Session]:
    """Sessions on ``bind`` (an engine or a URL). Objects stay readable after commit."""
    engine = bind if isinstance(bind, Engine) else make_engine(bind)
    return sessionmaker(bind=engine, expire_on_commit=False)


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database
    in_memory = database in (None, "", ":memory:") or bool(url.query.get("mode") == "memory")
    if not in_memory and database is not None and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # lpbot, not the driver, begins transactions
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
