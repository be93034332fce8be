"""Rebalance states STALE (the pre-flight found that it would revert, or the price moved past
the policy's bound: re-plan) and CANCELLED (stuck, replaced, then cancelled at its nonce).

Revision ID: v0002_preflight
Revises: v0002_ledger
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "v0002_preflight"
down_revision: str | None = "v0002_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("PLANNED", "SIMULATED", "APPROVED", "SIGNED", "SUBMITTED", "CONFIRMED", "FAILED", "EXPIRED")
_NEW = (*_OLD, "STALE", "CANCELLED")


def _state(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="state", native_enum=False, create_constraint=True, length=24)


def _states(values: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # a CHECK constraint changes by copying the table
        with op.batch_alter_table("rebalances", recreate="always") as batch:
            batch.alter_column(
                "state", existing_type=_state(_OLD), type_=_state(_NEW), existing_nullable=False
            )
            batch.add_column(sa.Column("stale_at", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        return
    # PostgreSQL: other tables refer to rebalances, so the constraint is swapped in place
    op.drop_constraint(op.f("ck_rebalances_state"), "rebalances", type_="check")
    op.create_check_constraint(op.f("ck_rebalances_state"), "rebalances", _states(_NEW))
    op.add_column("rebalances", sa.Column("stale_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "rebalances", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.execute("UPDATE rebalances SET state = 'EXPIRED' WHERE state IN ('STALE', 'CANCELLED')")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("rebalances", recreate="always") as batch:
            batch.drop_column("cancelled_at")
            batch.drop_column("stale_at")
            batch.alter_column(
                "state", existing_type=_state(_NEW), type_=_state(_OLD), existing_nullable=False
            )
        return
    op.drop_column("rebalances", "cancelled_at")
    op.drop_column("rebalances", "stale_at")
    op.drop_constraint(op.f("ck_rebalances_state"), "rebalances", type_="check")
    op.create_check_constraint(op.f("ck_rebalances_state"), "rebalances", _states(_OLD))
