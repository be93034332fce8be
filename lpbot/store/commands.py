"""``lpbot db upgrade|current|check``: migrate the configured database and show its revision.

``register(subparsers)`` adds the ``db`` command to lpbot's argument parser.
"""

from __future__ import annotations

import argparse

from lpbot.config import load_config, resolve_config_path
from lpbot.errors import Halt
from lpbot.store import migrate
from lpbot.store.session import make_engine, redact_url

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``db`` and its subcommands to ``subparsers``."""
    db = subparsers.add_parser("db", help="the database: migrate it, show its revision")
    db.add_argument("--config", help="config file (default $LPBOT_CONFIG or ./lpbot.toml)")
    sub = db.add_subparsers(dest="db_command", required=True)
    up = sub.add_parser("upgrade", help="migrate the database to the newest schema")
    up.add_argument("--revision", default="head", help="migrate to this revision (default head)")
    up.set_defaults(func=_cmd_upgrade)
    sub.add_parser("current", help="the database's schema revision").set_defaults(func=_cmd_current)
    sub.add_parser("check", help="compare the database's schema with lpbot's").set_defaults(
        func=_cmd_check
    )


def _database_url(args: argparse.Namespace) -> str:
    return load_config(resolve_config_path(args.config)).resolve_database_url()


def _cmd_upgrade(args: argparse.Namespace) -> int:
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
