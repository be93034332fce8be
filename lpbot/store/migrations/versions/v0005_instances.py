"""Every ``lpbot run`` on the database, active or standing by, with its heartbeat: ``lpbot
status`` lists them (the instance lock says who is active; this table shows who stands by).

Revision ID: v0005_instances
Revises: v0004_owner_balances
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "v0005_instances"
down_revision: str | None = "v0004_owner_balances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("owner", sa.String(length=320), nullable=False, comment="pid@hostname"),
        sa.Column("role", sa.String(length=16), nullable=False, comment="active | standby"),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("heartbeat_at", UTC_DATETIME, nullable=False),
        sa.Column(
            "active_since",
            UTC_DATETIME,
            nullable=True,
            comment="when it took the instance lock (None while it stands by)",
        ),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_instances")),
    )


def downgrade() -> None:
    op.drop_table("instances")
