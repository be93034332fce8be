"""The initial schema: positions, snapshots, rebalances, transactions, signatures, hedge orders,
fills and funding, job runs, the append-only audit log and the instance lock lease.

Written with plain SQLAlchemy types (not lpbot's own), so that it keeps creating this exact
schema whatever the models become: amounts are NUMERIC(78, 0) (VARCHAR(79) on SQLite, whose
NUMERIC affinity would round integers past 64 bits), exact decimals NUMERIC(78, 18).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AMOUNT = sa.Numeric(78, 0).with_variant(sa.String(79), "sqlite")
EXACT_DECIMAL = sa.Numeric(78, 18).with_variant(sa.String(80), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)

_APPEND_ONLY = "audit_log is append-only"
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END""",
    f"""CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END""",
]
POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{_APPEND_ONLY}' USING ERRCODE = 'restrict_violation';
        END $$""",
    """CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "funding_payments",
        sa.Column("id", ID, nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("amount", EXACT_DECIMAL, nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("rate", EXACT_DECIMAL, nullable=True),
        sa.Column("paid_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_payments")),
        sa.UniqueConstraint(
            "exchange",
            "symbol",
            "paid_at",
            name=op.f("uq_funding_payments_exchange_symbol_paid_at"),
        ),
    )
    op.create_table(
        "hedge_orders",
        sa.Column("id", ID, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column(
            "side",
            sa.Enum(
                "BUY", "SELL", name="side", native_enum=False, create_constraint=True, length=24
            ),
            nullable=False,
        ),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("amount", EXACT_DECIMAL, nullable=False, comment="base units, exact"),
        sa.Column("price", EXACT_DECIMAL, nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "NEW",
                "OPEN",
                "PARTIALLY_FILLED",
                "FILLED",
                "CANCELED",
                "REJECTED",
                "EXPIRED",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("exchange_order_id", sa.String(length=128), nullable=True),
        sa.Column("filled", EXACT_DECIMAL, nullable=False),
        sa.Column("average_price", EXACT_DECIMAL, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hedge_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_hedge_orders_client_order_id")),
    )
    op.create_index(op.f("ix_hedge_orders_status"), "hedge_orders", ["status"], unique=False)
    op.create_table(
        "instance_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=False, comment="pid@hostname"),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", UTC_DATETIME, nullable=False),
        sa.Column("heartbeat_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_locks")),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
                "SKIPPED",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index(
        op.f("ix_job_runs_job_started_at"), "job_runs", ["job", "started_at"], unique=False
    )
    op.create_table(
        "positions",
        sa.Column("id", ID, nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("pool_address", sa.String(length=42), nullable=False),
        sa.Column("token_id", AMOUNT, nullable=False),
        sa.Column("owner_address", sa.String(length=42), nullable=False),
        sa.Column("tick_lower", sa.Integer(), nullable=False),
        sa.Column("tick_upper", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=False),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("replaces_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["positions.id"], name=op.f("fk_positions_replaces_id_positions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("chain_id", "token_id", name=op.f("uq_positions_chain_id_token_id")),
    )
    op.create_index(op.f("ix_positions_label"), "positions", ["label"], unique=False)
    op.create_table(
        "hedge_fills",
        sa.Column("id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("trade_id", sa.String(length=128), nullable=False),
        sa.Column("amount", EXACT_DECIMAL, nullable=False),
        sa.Column("price", EXACT_DECIMAL, nullable=False),
        sa.Column("fee", EXACT_DECIMAL, nullable=False),
        sa.Column("fee_currency", sa.String(length=16), nullable=False),
        sa.Column("filled_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["hedge_orders.id"], name=op.f("fk_hedge_fills_order_id_hedge_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hedge_fills")),
        sa.UniqueConstraint("order_id", "trade_id", name=op.f("uq_hedge_fills_order_id_trade_id")),
    )
    op.create_table(
        "position_snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("position_id", ID, nullable=False),
        sa.Column("taken_at", UTC_DATETIME, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("sqrt_price_x96", AMOUNT, nullable=False),
        sa.Column("tick", sa.Integer(), nullable=False),
        sa.Column("liquidity", AMOUNT, nullable=False),
        sa.Column("amount0", AMOUNT, nullable=False, comment="raw token0 in the position"),
        sa.Column("amount1", AMOUNT, nullable=False, comment="raw token1 in the position"),
        sa.Column("fees0", AMOUNT, nullable=False, comment="raw token0 fees owed"),
        sa.Column("fees1", AMOUNT, nullable=False, comment="raw token1 fees owed"),
        sa.Column("token0_usd", sa.Double(), nullable=True, comment="analytics float: USD/token0"),
        sa.Column("token1_usd", sa.Double(), nullable=True, comment="analytics float: USD/token1"),
        sa.Column(
            "value_usd",
            sa.Double(),
            nullable=True,
            comment="analytics float: position value incl. fees, USD",
        ),
        sa.Column(
            "il_usd",
            sa.Double(),
            nullable=True,
            comment="analytics float: impermanent loss vs holding, USD",
        ),
        sa.Column(
            "delta",
            sa.Double(),
            nullable=True,
            comment="analytics float: d value / d price, in whole base-token units",
        ),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.id"],
            name=op.f("fk_position_snapshots_position_id_positions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_snapshots")),
    )
    op.create_index(
        op.f("ix_position_snapshots_position_id_taken_at"),
        "position_snapshots",
        ["position_id", "taken_at"],
        unique=False,
    )
    op.create_table(
        "rebalances",
        sa.Column("id", ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("position_id", ID, nullable=False),
        sa.Column("new_position_id", ID, nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "PLANNED",
                "SIMULATED",
                "APPROVED",
                "SIGNED",
                "SUBMITTED",
                "CONFIRMED",
                "FAILED",
                "EXPIRED",
                name="state",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False, comment="the decision and its reasons"),
        sa.Column("plan", sa.JSON(), nullable=True, comment="the execution plan, once built"),
        sa.Column(
            "value_usd",
            sa.Double(),
            nullable=True,
            comment="analytics float: value moved, USD (for the auto-execution limit)",
        ),
        sa.Column("deadline", UTC_DATETIME, nullable=True),
        sa.Column("report_id", sa.String(length=128), nullable=True),
        sa.Column("report_hash", sa.String(length=66), nullable=True),
        sa.Column("safe_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("approved_by", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("planned_at", UTC_DATETIME, nullable=True),
        sa.Column("simulated_at", UTC_DATETIME, nullable=True),
        sa.Column("approved_at", UTC_DATETIME, nullable=True),
        sa.Column("signed_at", UTC_DATETIME, nullable=True),
        sa.Column("submitted_at", UTC_DATETIME, nullable=True),
        sa.Column("confirmed_at", UTC_DATETIME, nullable=True),
        sa.Column("failed_at", UTC_DATETIME, nullable=True),
        sa.Column("expired_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["new_position_id"],
            ["positions.id"],
            name=op.f("fk_rebalances_new_position_id_positions"),
        ),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.id"], name=op.f("fk_rebalances_position_id_positions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebalances")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_rebalances_idempotency_key")),
    )
    op.create_index(op.f("ix_rebalances_position_id"), "rebalances", ["position_id"], unique=False)
    op.create_index(op.f("ix_rebalances_state"), "rebalances", ["state"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=True),
        sa.Column("position_id", ID, nullable=True),
        sa.Column("rebalance_id", ID, nullable=True),
        sa.Column("decision", sa.String(length=64), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.id"], name=op.f("fk_audit_log_position_id_positions")
        ),
        sa.ForeignKeyConstraint(
            ["rebalance_id"], ["rebalances.id"], name=op.f("fk_audit_log_rebalance_id_rebalances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_subject_id"), "audit_log", ["subject", "id"], unique=False)
    op.create_table(
        "signatures",
        sa.Column("id", ID, nullable=False),
        sa.Column("rebalance_id", ID, nullable=True),
        sa.Column("safe_address", sa.String(length=42), nullable=False),
        sa.Column("safe_tx_hash", sa.String(length=66), nullable=False),
        sa.Column("signer_address", sa.String(length=42), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["rebalance_id"], ["rebalances.id"], name=op.f("fk_signatures_rebalance_id_rebalances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
        sa.UniqueConstraint(
            "safe_tx_hash", "signer_address", name=op.f("uq_signatures_safe_tx_hash_signer_address")
        ),
    )
    op.create_index(
        op.f("ix_signatures_rebalance_id"), "signatures", ["rebalance_id"], unique=False
    )
    op.create_table(
        "transactions",
        sa.Column("id", ID, nullable=False),
        sa.Column("rebalance_id", ID, nullable=True),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=True),
        sa.Column("value", AMOUNT, nullable=False, comment="wei"),
        sa.Column("gas_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_fee_per_gas", AMOUNT, nullable=True, comment="wei"),
        sa.Column("max_priority_fee_per_gas", AMOUNT, nullable=True, comment="wei"),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "CONFIRMED",
                "REVERTED",
                "REPLACED",
                "DROPPED",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("effective_gas_price", AMOUNT, nullable=True, comment="wei"),
        sa.Column("replaced_by_id", ID, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("submitted_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["rebalance_id"],
            ["rebalances.id"],
            name=op.f("fk_transactions_rebalance_id_rebalances"),
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"],
            ["transactions.id"],
            name=op.f("fk_transactions_replaced_by_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("chain_id", "tx_hash", name=op.f("uq_transactions_chain_id_tx_hash")),
    )
    op.create_index(
        op.f("ix_transactions_chain_id_from_address_nonce"),
        "transactions",
        ["chain_id", "from_address", "nonce"],
        unique=False,
    )
    op.create_index(
        op.f("ix_transactions_rebalance_id"), "transactions", ["rebalance_id"], unique=False
    )

    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    op.drop_table("transactions")
    op.drop_table("signatures")
    op.drop_table("audit_log")
    op.drop_table("rebalances")
    op.drop_table("position_snapshots")
    op.drop_table("hedge_fills")
    op.drop_table("positions")
    op.drop_table("job_runs")
    op.drop_table("instance_locks")
    op.drop_table("hedge_orders")
    op.drop_table("funding_payments")
