"""All the prices a position can cover: the usable ticks at the pool's spacing."""

from __future__ import annotations

from dataclasses import dataclass

from lpbot.analytics.types import PoolSnapshot, PriceHistory
from lpbot.strategy.base import Range, max_usable_tick, min_usable_tick


@dataclass(frozen=True, slots=True)
class FullRange:
    """``[min usable tick, max usable tick]``: a Uniswap V2-like position. Never moves."""

    def range_for(self, snapshot: PoolSnapshot, history: PriceHistory) -> Range:
        spacing = snapshot.tick_spacing
        return Range(min_usable_tick(spacing), max_usable_tick(spacing), spacing)
