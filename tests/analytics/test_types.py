"""Snapshots and price histories validate and round-trip through the simulated pool."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lpbot.analytics.types import PoolSnapshot, PositionSnapshot, PriceHistory, TickSnapshot

from .helpers import ONE_FOR_ZERO_LIMIT, seeded_pool


def test_pool_snapshot_round_trip_quotes_the_same() -> None:
    pool = seeded_pool(1_234)
    pool.swap(False, 10**17, ONE_FOR_ZERO_LIMIT)
    snapshot = PoolSnapshot.from_pool(pool, decimals0=18, decimals1=6)
    rebuilt = snapshot.to_pool()
    assert rebuilt.quote_swap(True, 3 * 10**17, 4295128740) == pool.quote_swap(
        True, 3 * 10**17, 4295128740
    )
    assert PoolSnapshot.from_pool(rebuilt, decimals0=18, decimals1=6) == snapshot
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.tick = 0  # type: ignore[misc, assignment]


def test_pool_snapshot_validates() -> None:
    snapshot = PoolSnapshot.from_pool(seeded_pool(0), decimals0=18, decimals1=6)
    with pytest.raises(ValueError, match="does not match"):
        dataclasses.replace(snapshot, tick=5)
    with pytest.raises(ValueError, match="decimals0"):
        dataclasses.replace(snapshot, decimals0=-1)
    with pytest.raises(ValueError, match="uint256"):
        dataclasses.replace(snapshot, fee_growth_global0_x128=2**256)
    with pytest.raises(ValueError, match="liquidity_gross"):
        TickSnapshot(60, 0, 0)


def test_position_snapshot_validates() -> None:
    with pytest.raises(ValueError, match="tick_lower < tick_upper"):
        PositionSnapshot(tick_lower=60, tick_upper=60, liquidity=1)
    with pytest.raises(ValueError, match="liquidity"):
        PositionSnapshot(tick_lower=0, tick_upper=60, liquidity=-1)


def test_price_history() -> None:
    history = PriceHistory.from_pairs([(0, 1.0), (60, 1.1), (120, 1.2)])
    assert len(history) == 3
    assert not history.prices.flags.writeable
    assert len(history.since(60)) == 2
    with pytest.raises(ValueError, match="increasing"):
        PriceHistory([0, 0], [1, 1])
    with pytest.raises(ValueError, match="> 0"):
        PriceHistory([0, 1], [1, -1])
    with pytest.raises(ValueError, match="one length"):
        PriceHistory([0, 1], [1])
    source = np.array([1.0, 2.0])
    copy = PriceHistory([0, 1], source)
    source[0] = 5.0
    assert copy.prices[0] == 1.0
