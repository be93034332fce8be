"""Ranges and the range-strategy interface.

A strategy maps a pool snapshot and a price history to the ``Range`` it wants the liquidity in.
Widths in log-price convert to ticks by ``ln(1.0001)`` per tick (a tick is a 0.01% price step);
the same percentage holds for raw and whole-token prices, so decimals do not enter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from lpbot.analytics.types import PoolSnapshot, PriceHistory, Tick
from lpbot.uniswap.tick_math import MAX_TICK, MIN_TICK

LOG_TICK = math.log(1.0001)  # log-price per tick
Auto = Literal["auto"]  # a width parameter the policy chooses by expected value
AUTO: Auto = "auto"
AUTO_CANDIDATES = 28  # widths an "auto" strategy offers the policy


def auto_half_widths(min_log: float, max_log: float, count: int = AUTO_CANDIDATES) -> list[float]:
    """``count`` half-widths in log-price, geometric from ``min_log`` to ``max_log``."""
    if not 0 < min_log <= max_log:
        raise ValueError(f"need 0 < min_log <= max_log, got {min_log}, {max_log}")
    if count < 2 or min_log == max_log:
        return [min_log]
    step = (max_log / min_log) ** (1.0 / (count - 1))
    return [min_log * step**i for i in range(count)]


def min_usable_tick(tick_spacing: int) -> Tick:
    """The lowest tick a position can use at this spacing (a multiple of it, >= MIN_TICK)."""
    _check_spacing(tick_spacing)
    return Tick(-(MAX_TICK // tick_spacing) * tick_spacing)


def max_usable_tick(tick_spacing: int) -> Tick:
    """The highest tick a position can use at this spacing (a multiple of it, <= MAX_TICK)."""
    _check_spacing(tick_spacing)
    return Tick(MAX_TICK // tick_spacing * tick_spacing)


def _check_spacing(tick_spacing: int) -> None:
    if not 0 < tick_spacing < 16384:
        raise ValueError(f"tick spacing must be in (0, 16384), got {tick_spacing}")


@dataclass(frozen=True, slots=True)
class Range:
    """A position's ticks ``[tick_lower, tick_upper)``: multiples of the pool's spacing."""

    tick_lower: Tick
    tick_upper: Tick
    tick_spacing: int

    def __post_init__(self) -> None:
        _check_spacing(self.tick_spacing)
        if self.tick_lower >= self.tick_upper:
            raise ValueError(
                f"tick_lower {self.tick_lower} must be below tick_upper {self.tick_upper}"
            )
        if self.tick_lower < MIN_TICK or self.tick_upper > MAX_TICK:
            raise ValueError(
                f"range [{self.tick_lower}, {self.tick_upper}] outside [{MIN_TICK}, {MAX_TICK}]"
            )
        for name in ("tick_lower", "tick_upper"):
            if getattr(self, name) % self.tick_spacing:
                raise ValueError(
                    f"{name} {getattr(self, name)} is not a multiple of the tick spacing "
                    f"{self.tick_spacing}"
                )

    def contains(self, tick: int) -> bool:
        """True when liquidity in this range is active at ``tick`` (lower <= tick < upper)."""
        return self.tick_lower <= tick < self.tick_upper

    @property
    def width_ticks(self) -> int:
        return self.tick_upper - self.tick_lower


def range_around(
    tick: int, down_log: float, up_log: float, tick_spacing: int, *, min_half_spacings: int = 1
) -> Range:
    """The range from ``tick - down_log`` to ``tick + up_log`` (log-price), snapped outward.

    The lower edge rounds down and the upper edge up to the spacing, each at least
    ``min_half_spacings`` spacings from the current tick's own spacing cell, and both are clipped
    to the usable ticks; the current tick stays inside (lower <= tick < upper).
    """
    if not (math.isfinite(down_log) and math.isfinite(up_log)):
        raise ValueError(f"widths must be finite, got {down_log}, {up_log}")
    low, high = min_usable_tick(tick_spacing), max_usable_tick(tick_spacing)
    cell = tick // tick_spacing * tick_spacing  # the spacing cell holding the current tick
    lower = math.floor((tick - max(down_log, 0.0) / LOG_TICK) / tick_spacing) * tick_spacing
    upper = math.ceil((tick + max(up_log, 0.0) / LOG_TICK) / tick_spacing) * tick_spacing
    lower = min(lower, cell - (min_half_spacings - 1) * tick_spacing)
    upper = max(upper, cell + min_half_spacings * tick_spacing)
    lower = max(low, min(lower, high - tick_spacing))
    upper = min(high, max(upper, lower + tick_spacing))
    return Range(Tick(lower), Tick(upper), tick_spacing)


@runtime_checkable
class AutoWidth(Protocol):
    """A strategy whose width is ``"auto"``: it offers ranges of its shape and the policy picks
    the one whose expected value is highest (``strategy.ev``)."""

    @property
    def auto(self) -> bool:
        """True when the width is chosen by the policy."""
        ...

    def candidates(self, snapshot: PoolSnapshot, history: PriceHistory) -> tuple[Range, ...]:
        """The ranges of this shape to choose from, narrowest first (distinct)."""
        ...


def distinct(ranges: list[Range]) -> tuple[Range, ...]:
    """``ranges`` without repeats, in order."""
    return tuple(dict.fromkeys(ranges))


class RangeStrategy(Protocol):
    """Chooses where the liquidity should be; pure: no I/O, no clock, no randomness."""

    def range_for(self, snapshot: PoolSnapshot, history: PriceHistory) -> Range:
        """The range to hold the liquidity in now."""
        ...
