"""Snapshots keep what the position's owner (the Safe) holds of the pool's two tokens outside
the position, at the snapshot's block: with the ledger's recorded flows (each rebalance's and
compound's burned, fees, swap legs and minted amounts) they reconcile the owner's balances to
the wei.

Revision ID: v0004_owner_balances
Revises: v0003_signed_transactions
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "v0004_owner_balances"
down_revision: str | None = "v0003_signed_transactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(78, 0).with_variant(sa.String(79), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        batch.add_column(
            sa.Column(
                "owner_balance0",
                AMOUNT,
                nullable=True,
                comment="raw token0 the owner holds outside the position",
            )
        )
        batch.add_column(
            sa.Column(
                "owner_balance1",
                AMOUNT,
                nullable=True,
                comment="raw token1 the owner holds outside the position",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        batch.drop_column("owner_balance1")
        batch.drop_column("owner_balance0")
