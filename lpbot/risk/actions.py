"""What each regime level does to the position and the hedge (pure).

- normal: nothing; the configured strategy and hedge band.
- elevated: the next range is ``widen_factor`` times as wide (``widened``: every width of the
  strategy scaled, so that the policy's own choice, EV and costs see the wider range), and the
  hedge band is multiplied by ``hedge_band_factor`` (< 1 tightens it).
- stressed: ``action`` ``"withdraw"`` takes the liquidity out to the owner's tokens (re-entered
  when the regime is back to normal), ``"widest"`` moves it to the widest range the pool allows;
  ``hedge`` ``"flatten"`` closes the perp, ``"resize"`` re-sizes it to the new delta at once.

``RegimeActions.for_level`` lists what a level asks for, as data the daemon or the backtester
carries out. No I/O.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from lpbot.risk.regime import Level
from lpbot.strategy import (
    FixedWidth,
    FullRange,
    RangeStrategy,
    RebalancePolicy,
    SkewedBand,
    VolatilityBand,
)
from lpbot.uniswap.tick_math import MAX_TICK

StressedAction = Literal["withdraw", "widest"]
StressedHedge = Literal["flatten", "resize"]


@dataclass(frozen=True, slots=True)
class LevelActions:
    """What one level asks for: ``widen_factor`` of the next range (1: as configured),
    ``hedge_band_factor`` (1: as configured), ``liquidity`` (``"keep"``, ``"withdraw"``,
    ``"widest"``) and ``hedge`` (``"keep"``, ``"flatten"``, ``"resize"``)."""

    level: Level
    widen_factor: float = 1.0
    hedge_band_factor: float = 1.0
    liquidity: Literal["keep", "withdraw", "widest"] = "keep"
    hedge: Literal["keep", "flatten", "resize"] = "keep"


@dataclass(frozen=True, slots=True)
class RegimeActions:
    """The configured actions per level (module docstring)."""

    widen_factor: float = 2.0
    hedge_band_factor: float = 0.5
    stressed_action: StressedAction = "withdraw"
    stressed_hedge: StressedHedge = "resize"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.widen_factor) and self.widen_factor >= 1):
            raise ValueError(f"widen_factor: must be >= 1, got {self.widen_factor}")
        if not (math.isfinite(self.hedge_band_factor) and 0 < self.hedge_band_factor <= 1):
            raise ValueError(f"hedge_band_factor: must be in (0, 1], got {self.hedge_band_factor}")

    def for_level(self, level: Level) -> LevelActions:
        if level is Level.NORMAL:
            return LevelActions(level)
        if level is Level.ELEVATED:
            return LevelActions(level, self.widen_factor, self.hedge_band_factor)
        return LevelActions(
            level,
            self.widen_factor,
            self.hedge_band_factor,
            liquidity=self.stressed_action,
            hedge=self.stressed_hedge,
        )


def widened(strategy: RangeStrategy, factor: float) -> RangeStrategy:
    """``strategy`` with every width scaled by ``factor`` (>= 1); an ``"auto"`` width keeps its
    candidates' choice but a volatility band's floor and ceiling scale. Full range is as wide as
    it gets."""
    if factor == 1 or isinstance(strategy, FullRange):
        return strategy
    if isinstance(strategy, FixedWidth):
        ticks = strategy.half_width_ticks
        pct = strategy.half_width_pct
        return dataclasses.replace(
            strategy,
            half_width_ticks=None if ticks is None else min(round(ticks * factor), MAX_TICK),
            half_width_pct=min(pct * factor, 99.0) if isinstance(pct, int | float) else pct,
        )
    if isinstance(strategy, VolatilityBand):
        k = strategy.k
        return dataclasses.replace(
            strategy,
            k=k * factor if isinstance(k, int | float) else k,
            min_half_width_ticks=min(round(strategy.min_half_width_ticks * factor), MAX_TICK),
            max_half_width_ticks=min(round(strategy.max_half_width_ticks * factor), MAX_TICK),
        )
    if isinstance(strategy, SkewedBand):
        band = widened(strategy.band, factor)
        assert isinstance(band, VolatilityBand)
        return dataclasses.replace(strategy, band=band)
    raise TypeError(f"cannot widen a {type(strategy).__name__}")


def policy_for(policy: RebalancePolicy, actions: LevelActions) -> RebalancePolicy:
    """The rebalance policy a level decides with: its strategy ``widened`` by the level's
    factor."""
    if actions.widen_factor == 1:
        return policy
    return dataclasses.replace(policy, strategy=widened(policy.strategy, actions.widen_factor))
