"""Snapshots keep the pool's fee growth at their block: its fee tier and tick spacing, its fee
growth globals and the fee growth outside its two extreme usable ticks (NULL where such a tick
is not initialized). With the deposit's, they value the ledger's passive full-range benchmark
exactly (``analytics.full_range``). Snapshots from before this revision keep NULLs: the
benchmark starts at the first snapshot that has them.

Revision ID: v0006_pool_fee_growth
Revises: v0005_instances
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "v0006_pool_fee_growth"
down_revision: str | None = "v0005_instances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(78, 0).with_variant(sa.String(79), "sqlite")

COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any], str], ...] = (
    ("pool_fee", sa.Integer(), "the pool's fee, pips"),
    ("tick_spacing", sa.Integer(), "the pool's tick spacing"),
    ("fee_growth_global0_x128", AMOUNT, "the pool's feeGrowthGlobal0X128"),
    ("fee_growth_global1_x128", AMOUNT, "the pool's feeGrowthGlobal1X128"),
    (
        "full_range_lower_outside0_x128",
        AMOUNT,
        "feeGrowthOutside0X128 of the lowest usable tick (None: not initialized)",
    ),
    (
        "full_range_lower_outside1_x128",
        AMOUNT,
        "feeGrowthOutside1X128 of the lowest usable tick (None: not initialized)",
    ),
    (
        "full_range_upper_outside0_x128",
        AMOUNT,
        "feeGrowthOutside0X128 of the highest usable tick (None: not initialized)",
    ),
    (
        "full_range_upper_outside1_x128",
        AMOUNT,
        "feeGrowthOutside1X128 of the highest usable tick (None: not initialized)",
    ),
)


def upgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        for name, type_, comment in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True, comment=comment))


def downgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        for name, _type, _comment in reversed(COLUMNS):
            batch.drop_column(name)
