"""A range of fixed width around the current price."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpbot.analytics.types import PoolSnapshot, PriceHistory
from lpbot.strategy.base import LOG_TICK, Range, range_around


@dataclass(frozen=True, slots=True)
class FixedWidth:
    """``current tick +- half_width_ticks``, or ``price * (1 -+ half_width_pct / 100)``.

    Exactly one of the two is given. Edges snap outward to the tick spacing, so the range is at
    least as wide as asked. The history is not used.
    """

    half_width_ticks: int | None = None
    half_width_pct: float | None = None

    def __post_init__(self) -> None:
        if (self.half_width_ticks is None) == (self.half_width_pct is None):
            raise ValueError("give exactly one of half_width_ticks and half_width_pct")
        if self.half_width_ticks is not None and self.half_width_ticks <= 0:
            raise ValueError(f"half_width_ticks must be > 0, got {self.half_width_ticks}")
        if self.half_width_pct is not None and not 0 < self.half_width_pct < 100:
            raise ValueError(f"half_width_pct must be in (0, 100), got {self.half_width_pct}")

    def range_for(self, snapshot: PoolSnapshot, history: PriceHistory) -> Range:
        if self.half_width_ticks is not None:
            down = up = self.half_width_ticks * LOG_TICK
        else:
            assert self.half_width_pct is not None
            down = -math.log1p(-self.half_width_pct / 100)
            up = math.log1p(self.half_width_pct / 100)
        return range_around(snapshot.tick, down, up, snapshot.tick_spacing)
