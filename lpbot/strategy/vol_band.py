"""A band around the price, as wide as the volatility expected over a horizon."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lpbot.analytics.types import PoolSnapshot, PriceHistory
from lpbot.analytics.volatility import ewma_volatility
from lpbot.strategy.base import (
    AUTO,
    LOG_TICK,
    Auto,
    Range,
    auto_half_widths,
    distinct,
    range_around,
)

FALLBACK_K = 2.0  # an "auto" band with no expected value to choose by (no fee rate)


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")


@dataclass(frozen=True, slots=True)
class VolatilityBand:
    """``ln P +- k * sigma * sqrt(horizon_seconds)``, at least ``min_half_width_ticks`` wide.

    ``sigma`` is the EWMA realised volatility of the history's log-returns, per sqrt(second),
    with weights halving every ``halflife_seconds`` (``analytics.volatility``). ``k = 2`` with a
    one-day horizon keeps a driftless price in range for a day about 95% of the time.

    ``k = "auto"`` (the default): the policy chooses the half-width by expected value among
    ``candidates`` (``min_half_width_ticks`` to ``max_half_width_ticks``, geometric), at the
    current volatility, fee rate, costs and horizon (``strategy.ev``); ``range_for`` alone, with
    nothing to value ranges by, uses ``k = FALLBACK_K``.
    """

    k: float | Auto = AUTO
    horizon_seconds: float = 86_400.0
    halflife_seconds: float = 6 * 3600.0
    min_half_width_ticks: int = 10
    max_half_width_ticks: int = 200_000

    def __post_init__(self) -> None:
        if isinstance(self.k, str):
            if self.k != AUTO:
                raise ValueError(f'k must be a number or "auto", got {self.k!r}')
        else:
            _check_positive("k", self.k)
        _check_positive("horizon_seconds", self.horizon_seconds)
        _check_positive("halflife_seconds", self.halflife_seconds)
        if self.min_half_width_ticks < 1:
            raise ValueError(f"min_half_width_ticks must be >= 1, got {self.min_half_width_ticks}")
        if self.max_half_width_ticks < self.min_half_width_ticks:
            raise ValueError(
                f"max_half_width_ticks {self.max_half_width_ticks} must be >= "
                f"min_half_width_ticks {self.min_half_width_ticks}"
            )

    @property
    def auto(self) -> bool:
        return self.k == AUTO

    def half_widths(self) -> list[float]:
        """The half-widths (log-price) an auto band offers, narrowest first."""
        return auto_half_widths(
            self.min_half_width_ticks * LOG_TICK, self.max_half_width_ticks * LOG_TICK
        )

    def candidates(self, snapshot: PoolSnapshot, history: PriceHistory) -> tuple[Range, ...]:
        return distinct(
            [range_around(snapshot.tick, w, w, snapshot.tick_spacing) for w in self.half_widths()]
        )

    def half_width_log(self, history: PriceHistory) -> float:
        """The band's half-width in log-price, clamped to the configured tick bounds."""
        sigma = ewma_volatility(history, self.halflife_seconds)
        k = FALLBACK_K if isinstance(self.k, str) else self.k
        width = k * sigma * math.sqrt(self.horizon_seconds)
        return min(
            max(width, self.min_half_width_ticks * LOG_TICK),
            self.max_half_width_ticks * LOG_TICK,
        )

    def range_for(self, snapshot: PoolSnapshot, history: PriceHistory) -> Range:
        width = self.half_width_log(history)
        return range_around(snapshot.tick, width, width, snapshot.tick_spacing)
