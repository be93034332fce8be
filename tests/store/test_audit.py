"""The audit log is append-only: the mapper refuses changes and so does the database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from lpbot.store import repo
from lpbot.store.models import AppendOnlyViolation, AuditEntry

from .conftest import T0


def _append(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as s:
        entry = repo.append_audit(
            s,
            "decision",
            ["price within 1% of the upper edge", "expected gain $12.40 beats cost $3.10"],
            subject="position:eth-usdc",
            decision="rebalance",
            data={"tick": -196_250},
            now=T0,
        )
        return entry.id


def test_append_and_read_back(sessions: sessionmaker[Session]) -> None:
    entry_id = _append(sessions)
    with sessions.begin() as s:
        repo.append_audit(s, "decision", {"hold": "in range, no trigger"}, subject="other")
    with sessions() as s:
        entries = repo.audit_entries(s)
        first = entries[0]
        assert first.id == entry_id
        assert first.reasons == [
            "price within 1% of the upper edge",
            "expected gain $12.40 beats cost $3.10",
        ]
        assert (first.kind, first.decision, first.actor, first.at) == (
            "decision", "rebalance", "lpbot", T0,
        )  # fmt: skip
        assert first.data == {"tick": -196_250}
        assert [e.reasons for e in repo.audit_entries(s, subject="other")] == [
            {"hold": "in range, no trigger"}
        ]


def test_the_mapper_refuses_update_and_delete(sessions: sessionmaker[Session]) -> None:
    entry_id = _append(sessions)
    with pytest.raises(AppendOnlyViolation, match="updated"), sessions.begin() as s:
        entry = s.get(AuditEntry, entry_id)
        assert entry is not None
        entry.reasons = ["rewritten"]
    with pytest.raises(AppendOnlyViolation, match="deleted"), sessions.begin() as s:
        s.delete(s.get(AuditEntry, entry_id))
    with sessions() as s:
        assert s.scalars(select(AuditEntry.reasons)).one()[0].startswith("price")


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditEntry).values(actor="someone else"),
        delete(AuditEntry),
    ],
    ids=["update", "delete"],
)
def test_the_database_rejects_update_and_delete(
    engine: Engine, sessions: sessionmaker[Session], statement: object
) -> None:
    _append(sessions)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(actor) FROM audit_log")).one() == (
            1,
            "lpbot",
        )


def test_postgresql_rejects_truncate(postgres_engine: Engine) -> None:
    _append(sessionmaker(bind=postgres_engine))
    with pytest.raises(DBAPIError, match="append-only"), postgres_engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))
