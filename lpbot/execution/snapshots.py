"""Chain snapshots (``lpbot.chain.reader``) in the pure layers' terms (``analytics.types``)."""

from __future__ import annotations

from lpbot.analytics.types import (
    FeeGrowthX128,
    Liquidity,
    PoolSnapshot,
    PositionSnapshot,
    RawAmount,
    Tick,
)
from lpbot.chain.reader import NpmPositionState
from lpbot.chain.reader import PoolSnapshot as ChainPoolSnapshot


def pool_snapshot(snap: ChainPoolSnapshot, decimals0: int, decimals1: int) -> PoolSnapshot:
    """The pool as the pure layers see it (its known initialized ticks included)."""
    return PoolSnapshot.from_pool(
        snap.to_pool(), decimals0=decimals0, decimals1=decimals1, timestamp=snap.block_timestamp
    )


def position_snapshot(pos: NpmPositionState, opened_at: int = 0) -> PositionSnapshot:
    n = pos.npm
    return PositionSnapshot(
        tick_lower=Tick(n.tick_lower),
        tick_upper=Tick(n.tick_upper),
        liquidity=Liquidity(n.liquidity),
        fee_growth_inside0_last_x128=FeeGrowthX128(n.fee_growth_inside0_last_x128),
        fee_growth_inside1_last_x128=FeeGrowthX128(n.fee_growth_inside1_last_x128),
        tokens_owed0=RawAmount(n.tokens_owed0),
        tokens_owed1=RawAmount(n.tokens_owed1),
        lower_fee_growth_outside0_x128=FeeGrowthX128(pos.lower.fee_growth_outside0_x128),
        lower_fee_growth_outside1_x128=FeeGrowthX128(pos.lower.fee_growth_outside1_x128),
        upper_fee_growth_outside0_x128=FeeGrowthX128(pos.upper.fee_growth_outside0_x128),
        upper_fee_growth_outside1_x128=FeeGrowthX128(pos.upper.fee_growth_outside1_x128),
        opened_at=opened_at,
    )
