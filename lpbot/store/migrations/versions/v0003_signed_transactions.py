"""Every transaction is kept with its signed bytes before it is broadcast: its kind (send,
replacement, cancel), the raw transaction, and once mined the receipt's status and the gas it
paid in wei (gas used x effective gas price).

Revision ID: v0003_signed_transactions
Revises: v0002_preflight
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "v0003_signed_transactions"
down_revision: str | None = "v0002_preflight"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(78, 0).with_variant(sa.String(79), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(
            sa.Column(
                "kind", sa.String(length=16), nullable=True, comment="send, replacement or cancel"
            )
        )
        batch.add_column(
            sa.Column(
                "raw_tx",
                sa.LargeBinary(),
                nullable=True,
                comment="the signed transaction (public once broadcast; no key material)",
            )
        )
        batch.add_column(
            sa.Column(
                "receipt_status", sa.Integer(), nullable=True, comment="1 success, 0 reverted"
            )
        )
        batch.add_column(
            sa.Column("gas_paid", AMOUNT, nullable=True, comment="wei: gas used x price")
        )
    # rows mined before this revision: their receipt status and gas paid follow from what
    # was recorded (AMOUNT is text on SQLite, so the product is computed in Python)
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    rows = conn.execute(
        sa.text(
            "SELECT id, status, gas_used, effective_gas_price FROM transactions "
            "WHERE status IN ('CONFIRMED', 'REVERTED')"
        )
    ).all()
    for tx_id, status, gas_used, price in rows:
        paid: object = None
        if gas_used is not None and price is not None:
            wei = int(gas_used) * int(Decimal(price))
            paid = str(wei) if sqlite else Decimal(wei)
        conn.execute(
            sa.text("UPDATE transactions SET receipt_status = :s, gas_paid = :p WHERE id = :i"),
            {"s": 1 if status == "CONFIRMED" else 0, "p": paid, "i": tx_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("gas_paid")
        batch.drop_column("receipt_status")
        batch.drop_column("raw_tx")
        batch.drop_column("kind")
