"""Snapshots keep their marks: ETH and BTC in USD, each mark's source, route and block, and the
hedge's figures, so the ledger can be derived again (or re-marked) from raw amounts.

Revision ID: v0002_ledger
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "v0002_ledger"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        batch.add_column(
            sa.Column("eth_usd", sa.Double(), nullable=True, comment="analytics float: USD/ETH")
        )
        batch.add_column(
            sa.Column("btc_usd", sa.Double(), nullable=True, comment="analytics float: USD/BTC")
        )
        batch.add_column(
            sa.Column(
                "mark_sources",
                sa.Text(),
                nullable=True,
                comment="JSON: token -> [source, route, block, time] of each mark",
            )
        )
        batch.add_column(
            sa.Column(
                "hedge",
                sa.Text(),
                nullable=True,
                comment="JSON: the hedge's realised, unrealised, fees, funding (decimal strings)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        batch.drop_column("hedge")
        batch.drop_column("mark_sources")
        batch.drop_column("btc_usd")
        batch.drop_column("eth_usd")
