"""``lpbot db upgrade|current|check``: migrate the configured database and show its revision.

Every command migrates the database itself when it opens it; ``db upgrade`` is for choosing a
revision, ``current`` and ``check`` look without changing anything.
"""

from __future__ import annotations

import argparse

import click

from lpbot.cli.common import app, config_option
from lpbot.errors import Halt

__all__ = ["db"]


def _database_url(args: argparse.Namespace) -> str:
    return app().database_url


def _cmd_upgrade(args: argparse.Namespace) -> int:
    from lpbot.store import migrate
    from lpbot.store.session import make_engine, redact_url

    url = _database_url(args)
    engine = make_engine(url)
    try:
        before = migrate.current(engine)
        migrate.upgrade(engine, args.revision)
        after = migrate.current(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"{redact_url(url)}: at revision {after} already")
    else:
        print(f"{redact_url(url)}: migrated {before or 'empty'} -> {after}")
    return 0


def _cmd_current(args: argparse.Namespace) -> int:
    from lpbot.store import migrate
    from lpbot.store.session import make_engine, redact_url

    url = _database_url(args)
    engine = make_engine(url)
    try:
        revision = migrate.current(engine)
    finally:
        engine.dispose()
    head = migrate.head()
    if revision is None:
        print(f"{redact_url(url)}: not migrated (newest is {head}); run `lpbot db upgrade`")
        return 1
    note = "(newest)" if revision == head else f"(newest is {head}; run `lpbot db upgrade`)"
    print(f"{redact_url(url)}: revision {revision} {note}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from lpbot.store import migrate
    from lpbot.store.session import make_engine, redact_url

    url = _database_url(args)
    engine = make_engine(url)
    try:
        diff = migrate.schema_diff(engine)
    finally:
        engine.dispose()
    if diff:
        lines = "\n".join(f"  {d}" for d in diff)
        raise Halt(f"{redact_url(url)}: the schema differs from lpbot's models:\n{lines}")
    print(f"{redact_url(url)}: the schema matches lpbot's models")
    return 0


@click.group()
@config_option
def db() -> None:
    """The database: migrate it, show its revision."""


@db.command()
@config_option
@click.option("--revision", default="head", show_default=True, help="migrate to this revision")
def upgrade(revision: str) -> int:
    """Migrate the database to the newest schema (or --revision)."""
    return _cmd_upgrade(argparse.Namespace(revision=revision))


@db.command()
@config_option
def current() -> int:
    """The database's schema revision."""
    return _cmd_current(argparse.Namespace())


@db.command()
@config_option
def check() -> int:
    """Compare the database's schema with lpbot's."""
    return _cmd_check(argparse.Namespace())
