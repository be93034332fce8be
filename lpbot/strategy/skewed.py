"""A volatility band shifted toward the trend: more room on the side the price drifts to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lpbot.analytics.types import PoolSnapshot, PriceHistory
from lpbot.analytics.volatility import ewma_drift
from lpbot.strategy.base import Range, distinct, range_around
from lpbot.strategy.vol_band import VolatilityBand


@dataclass(frozen=True, slots=True)
class SkewedBand:
    """A ``VolatilityBand`` of half-width ``w`` whose centre moves by the expected drift.

    ``shift = clip(drift_weight * mu * horizon, -max_shift * w, max_shift * w)`` in log-price,
    where ``mu`` is the EWMA drift of log-returns per second (``analytics.volatility``); the range
    is ``[ln P + shift - w, ln P + shift + w]``. ``static_skew`` in (-1, 1) adds a fixed shift of
    ``static_skew * w`` (positive: more room above). ``max_shift < 1`` keeps the price inside.
    With the band's ``k = "auto"`` the policy chooses ``w`` by expected value (``candidates``:
    the band's half-widths, each shifted).
    """

    band: VolatilityBand = field(default_factory=VolatilityBand)
    drift_halflife_seconds: float = 24 * 3600.0
    drift_weight: float = 1.0
    max_shift: float = 0.5
    static_skew: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.drift_halflife_seconds) and self.drift_halflife_seconds > 0):
            raise ValueError(
                f"drift_halflife_seconds must be > 0, got {self.drift_halflife_seconds}"
            )
        if not (math.isfinite(self.drift_weight) and self.drift_weight >= 0):
            raise ValueError(f"drift_weight must be >= 0, got {self.drift_weight}")
        if not 0 <= self.max_shift < 1:
            raise ValueError(f"max_shift must be in [0, 1), got {self.max_shift}")
        if not -1 < self.static_skew < 1:
            raise ValueError(f"static_skew must be in (-1, 1), got {self.static_skew}")
        if abs(self.static_skew) + self.max_shift >= 1:
            raise ValueError(
                f"|static_skew| + max_shift must be < 1 to keep the price inside, got "
                f"{abs(self.static_skew)} + {self.max_shift}"
            )

    def shift_log(self, history: PriceHistory, half_width: float) -> float:
        """The centre's shift in log-price for a band of ``half_width``."""
        mu = ewma_drift(history, self.drift_halflife_seconds)
        cap = self.max_shift * half_width
        trend = min(max(self.drift_weight * mu * self.band.horizon_seconds, -cap), cap)
        return trend + self.static_skew * half_width

    @property
    def auto(self) -> bool:
        return self.band.auto

    def candidates(self, snapshot: PoolSnapshot, history: PriceHistory) -> tuple[Range, ...]:
        ranges = []
        for w in self.band.half_widths():
            shift = self.shift_log(history, w)
            ranges.append(range_around(snapshot.tick, w - shift, w + shift, snapshot.tick_spacing))
        return distinct(ranges)

    def range_for(self, snapshot: PoolSnapshot, history: PriceHistory) -> Range:
        width = self.band.half_width_log(history)
        shift = self.shift_log(history, width)
        return range_around(snapshot.tick, width - shift, width + shift, snapshot.tick_spacing)
