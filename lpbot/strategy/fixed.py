"""A range of fixed width around the current price."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpbot.analytics.types import PoolSnapshot, PriceHistory
from lpbot.strategy.base import (
    AUTO,
    LOG_TICK,
    Auto,
    Range,
    auto_half_widths,
    distinct,
    max_usable_tick,
    range_around,
)

FALLBACK_PCT = 5.0  # an "auto" width with no expected value to choose by (no fee rate)


@dataclass(frozen=True, slots=True)
class FixedWidth:
    """``current tick +- half_width_ticks``, or ``price * (1 -+ half_width_pct / 100)``.

    Exactly one of the two is given. Edges snap outward to the tick spacing, so the range is at
    least as wide as asked. The history is not used. ``half_width_pct = "auto"``: the policy
    chooses the width by expected value among ``candidates`` (one tick spacing to the usable
    edge); ``range_for`` alone, with nothing to value ranges by, uses ``FALLBACK_PCT``.
    """

    half_width_ticks: int | None = None
    half_width_pct: float | Auto | None = None

    def __post_init__(self) -> None:
        if (self.half_width_ticks is None) == (self.half_width_pct is None):
            raise ValueError("give exactly one of half_width_ticks and half_width_pct")
        if self.half_width_ticks is not None and self.half_width_ticks <= 0:
            raise ValueError(f"half_width_ticks must be > 0, got {self.half_width_ticks}")
        pct = self.half_width_pct
        if isinstance(pct, str):
            if pct != AUTO:
                raise ValueError(f'half_width_pct must be a number or "auto", got {pct!r}')
        elif pct is not None and not 0 < pct < 100:
            raise ValueError(f"half_width_pct must be in (0, 100), got {pct}")

    @property
    def auto(self) -> bool:
        return self.half_width_pct == AUTO

    def candidates(self, snapshot: PoolSnapshot, history: PriceHistory) -> tuple[Range, ...]:
        spacing = snapshot.tick_spacing
        top = max(
            max_usable_tick(spacing) - snapshot.tick, snapshot.tick + max_usable_tick(spacing)
        )
        widths = auto_half_widths(spacing * LOG_TICK, top * LOG_TICK)
        return distinct([range_around(snapshot.tick, w, w, spacing) for w in widths])

    def range_for(self, snapshot: PoolSnapshot, history: PriceHistory) -> Range:
        if self.half_width_ticks is not None:
            down = up = self.half_width_ticks * LOG_TICK
        else:
            pct = FALLBACK_PCT if isinstance(self.half_width_pct, str) else self.half_width_pct
            assert pct is not None
            down = -math.log1p(-pct / 100)
            up = math.log1p(pct / 100)
        return range_around(snapshot.tick, down, up, snapshot.tick_spacing)
