"""The values that analytics and strategies read: pool and position snapshots, price history.

Snapshots hold exactly what the contracts store (ints, raw units, Q64.96 and Q128.128 fixed
point); a chain reader fills them and nothing here does I/O. ``PriceHistory`` is float (analytics):
prices of token0 in token1, in any fixed scaling (raw or whole tokens), since only their ratios
are used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NewType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lpbot.uniswap.pool import Pool, Slot0
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.tick import TickInfo
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_tick_at_sqrt_ratio,
)

Tick = NewType("Tick", int)
Liquidity = NewType("Liquidity", int)
RawAmount = NewType("RawAmount", int)  # a token amount in its smallest unit
SqrtPriceX96 = NewType("SqrtPriceX96", int)
FeeGrowthX128 = NewType("FeeGrowthX128", int)

FloatArray = NDArray[np.float64]

SECONDS_PER_YEAR = 365 * 24 * 3600

_U256 = 1 << 256


def _check_u256(name: str, value: int) -> None:
    if not 0 <= value < _U256:
        raise ValueError(f"{name} must be a uint256, got {value}")


@dataclass(frozen=True, slots=True)
class TokenAmounts:
    """A pair of raw token amounts (smallest units)."""

    amount0: RawAmount
    amount1: RawAmount


@dataclass(frozen=True, slots=True)
class TickSnapshot:
    """The part of ``UniswapV3Pool.ticks(tick)`` that swaps and fee accounting read."""

    tick: Tick
    liquidity_gross: Liquidity
    liquidity_net: int
    fee_growth_outside0_x128: FeeGrowthX128 = FeeGrowthX128(0)
    fee_growth_outside1_x128: FeeGrowthX128 = FeeGrowthX128(0)

    def __post_init__(self) -> None:
        if not MIN_TICK <= self.tick <= MAX_TICK:
            raise ValueError(f"tick {self.tick} outside [{MIN_TICK}, {MAX_TICK}]")
        if self.liquidity_gross <= 0:
            raise ValueError(f"tick {self.tick}: an initialized tick has liquidity_gross > 0")
        _check_u256("fee_growth_outside0_x128", self.fee_growth_outside0_x128)
        _check_u256("fee_growth_outside1_x128", self.fee_growth_outside1_x128)


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """A pool's state at one block: ``slot0``, ``liquidity``, fee growth and initialized ticks.

    ``timestamp`` is the block's time in seconds. ``ticks`` holds the initialized ticks that a
    swap may cross (empty: swaps see only the in-range liquidity); quotes are exact only over the
    ticks given.
    """

    sqrt_price_x96: SqrtPriceX96
    tick: Tick
    liquidity: Liquidity
    fee: int  # pips (1e-6)
    tick_spacing: int
    fee_growth_global0_x128: FeeGrowthX128
    fee_growth_global1_x128: FeeGrowthX128
    decimals0: int
    decimals1: int
    timestamp: int
    ticks: tuple[TickSnapshot, ...] = ()

    def __post_init__(self) -> None:
        if not MIN_SQRT_RATIO <= self.sqrt_price_x96 < MAX_SQRT_RATIO:
            raise ValueError(f"sqrt_price_x96 {self.sqrt_price_x96} outside the valid range")
        if get_tick_at_sqrt_ratio(self.sqrt_price_x96) != self.tick:
            raise ValueError(f"tick {self.tick} does not match sqrt_price_x96")
        if self.liquidity < 0:
            raise ValueError(f"liquidity must be >= 0, got {self.liquidity}")
        if not 0 <= self.fee < 1_000_000:
            raise ValueError(f"fee must be in [0, 1e6) pips, got {self.fee}")
        if not 0 < self.tick_spacing < 16384:
            raise ValueError(f"tick spacing must be in (0, 16384), got {self.tick_spacing}")
        for name in ("decimals0", "decimals1"):
            if not 0 <= getattr(self, name) <= 255:
                raise ValueError(f"{name} must be in [0, 255], got {getattr(self, name)}")
        _check_u256("fee_growth_global0_x128", self.fee_growth_global0_x128)
        _check_u256("fee_growth_global1_x128", self.fee_growth_global1_x128)

    @classmethod
    def from_pool(
        cls, pool: Pool, *, decimals0: int, decimals1: int, timestamp: int | None = None
    ) -> PoolSnapshot:
        """The snapshot of a simulated ``Pool`` (all its initialized ticks)."""
        return cls(
            sqrt_price_x96=SqrtPriceX96(pool.sqrt_price_x96),
            tick=Tick(pool.tick),
            liquidity=Liquidity(pool.liquidity),
            fee=pool.fee,
            tick_spacing=pool.tick_spacing,
            fee_growth_global0_x128=FeeGrowthX128(pool.fee_growth_global0_x128),
            fee_growth_global1_x128=FeeGrowthX128(pool.fee_growth_global1_x128),
            decimals0=decimals0,
            decimals1=decimals1,
            timestamp=pool.block_timestamp if timestamp is None else timestamp,
            ticks=tuple(
                TickSnapshot(
                    Tick(t),
                    Liquidity(info.liquidity_gross),
                    info.liquidity_net,
                    FeeGrowthX128(info.fee_growth_outside0_x128),
                    FeeGrowthX128(info.fee_growth_outside1_x128),
                )
                for t, info in sorted(pool.ticks.items())
                if info.initialized
            ),
        )

    def to_pool(self, positions: Mapping[tuple[str, int, int], PositionInfo] | None = None) -> Pool:
        """A ``Pool`` in this state, to quote swaps against (``quote_swap``) or fork."""
        return Pool.from_state(
            fee=self.fee,
            tick_spacing=self.tick_spacing,
            slot0=Slot0(self.sqrt_price_x96, self.tick),
            liquidity=self.liquidity,
            fee_growth_global0_x128=self.fee_growth_global0_x128,
            fee_growth_global1_x128=self.fee_growth_global1_x128,
            ticks={
                t.tick: TickInfo(
                    liquidity_gross=t.liquidity_gross,
                    liquidity_net=t.liquidity_net,
                    fee_growth_outside0_x128=t.fee_growth_outside0_x128,
                    fee_growth_outside1_x128=t.fee_growth_outside1_x128,
                    initialized=True,
                )
                for t in self.ticks
            },
            block_timestamp=self.timestamp,
            positions=positions,
        )


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """One position: ``positions(key)`` of the pool and the fee growth outside its two ticks.

    ``opened_at`` is when the position was minted (seconds, same clock as the pool snapshot).
    """

    tick_lower: Tick
    tick_upper: Tick
    liquidity: Liquidity
    fee_growth_inside0_last_x128: FeeGrowthX128 = FeeGrowthX128(0)
    fee_growth_inside1_last_x128: FeeGrowthX128 = FeeGrowthX128(0)
    tokens_owed0: RawAmount = RawAmount(0)
    tokens_owed1: RawAmount = RawAmount(0)
    lower_fee_growth_outside0_x128: FeeGrowthX128 = FeeGrowthX128(0)
    lower_fee_growth_outside1_x128: FeeGrowthX128 = FeeGrowthX128(0)
    upper_fee_growth_outside0_x128: FeeGrowthX128 = FeeGrowthX128(0)
    upper_fee_growth_outside1_x128: FeeGrowthX128 = FeeGrowthX128(0)
    opened_at: int = 0

    def __post_init__(self) -> None:
        if not MIN_TICK <= self.tick_lower < self.tick_upper <= MAX_TICK:
            raise ValueError(
                f"need MIN_TICK <= tick_lower < tick_upper <= MAX_TICK, "
                f"got [{self.tick_lower}, {self.tick_upper}]"
            )
        if self.liquidity < 0:
            raise ValueError(f"liquidity must be >= 0, got {self.liquidity}")
        if self.tokens_owed0 < 0 or self.tokens_owed1 < 0:
            raise ValueError("tokens owed must be >= 0")
        for name in (
            "fee_growth_inside0_last_x128",
            "fee_growth_inside1_last_x128",
            "lower_fee_growth_outside0_x128",
            "lower_fee_growth_outside1_x128",
            "upper_fee_growth_outside0_x128",
            "upper_fee_growth_outside1_x128",
        ):
            _check_u256(name, getattr(self, name))

    @classmethod
    def from_pool(
        cls, pool: Pool, owner: str, tick_lower: int, tick_upper: int, *, opened_at: int = 0
    ) -> PositionSnapshot:
        """The snapshot of ``owner``'s position in a simulated ``Pool``."""
        info = pool.position(owner, tick_lower, tick_upper)
        lower = pool.tick_info(tick_lower)
        upper = pool.tick_info(tick_upper)
        return cls(
            tick_lower=Tick(tick_lower),
            tick_upper=Tick(tick_upper),
            liquidity=Liquidity(info.liquidity),
            fee_growth_inside0_last_x128=FeeGrowthX128(info.fee_growth_inside0_last_x128),
            fee_growth_inside1_last_x128=FeeGrowthX128(info.fee_growth_inside1_last_x128),
            tokens_owed0=RawAmount(info.tokens_owed0),
            tokens_owed1=RawAmount(info.tokens_owed1),
            lower_fee_growth_outside0_x128=FeeGrowthX128(lower.fee_growth_outside0_x128),
            lower_fee_growth_outside1_x128=FeeGrowthX128(lower.fee_growth_outside1_x128),
            upper_fee_growth_outside0_x128=FeeGrowthX128(upper.fee_growth_outside0_x128),
            upper_fee_growth_outside1_x128=FeeGrowthX128(upper.fee_growth_outside1_x128),
            opened_at=opened_at,
        )


def _readonly(values: ArrayLike) -> FloatArray:
    array = np.array(values, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True, eq=False, init=False)
class PriceHistory:
    """Observed prices of token0 in token1 at increasing timestamps (seconds). Float, analytics.

    Any fixed scaling of the price works (raw units or whole tokens): only ratios are used. The
    arrays are copied and made read-only.

    ``averaging_seconds`` says what each price is: 0 for a point price (the price in force at its
    timestamp), ``A > 0`` for the time-weighted mean over the ``A`` seconds ending at it. Returns
    between means carry less variance than the price's (two thirds of it between adjacent means
    of a diffusion); ``analytics.volatility`` and ``analytics.var`` correct for it.
    """

    timestamps: FloatArray = field(repr=False)
    prices: FloatArray = field(repr=False)
    averaging_seconds: float

    def __init__(
        self, timestamps: ArrayLike, prices: ArrayLike, *, averaging_seconds: float = 0.0
    ) -> None:
        if not (math.isfinite(averaging_seconds) and averaging_seconds >= 0):
            raise ValueError(f"averaging_seconds must be finite and >= 0, got {averaging_seconds}")
        ts = _readonly(timestamps)
        ps = _readonly(prices)
        if ts.ndim != 1 or ps.ndim != 1 or ts.shape != ps.shape:
            raise ValueError(
                f"timestamps and prices must be 1-d and of one length, got {ts.shape}, {ps.shape}"
            )
        if ts.size and not np.all(np.isfinite(ts)):
            raise ValueError("timestamps must be finite")
        if ts.size > 1 and not np.all(np.diff(ts) > 0):
            raise ValueError("timestamps must be strictly increasing")
        if ps.size and not (np.all(np.isfinite(ps)) and np.all(ps > 0)):
            raise ValueError("prices must be finite and > 0")
        object.__setattr__(self, "timestamps", ts)
        object.__setattr__(self, "prices", ps)
        object.__setattr__(self, "averaging_seconds", float(averaging_seconds))

    @property
    def basis(self) -> str:
        """What the prices are, for labels: point prices, or means over an interval."""
        if self.averaging_seconds == 0:
            return "point prices"
        return f"{self.averaging_seconds:g} s mean prices (variance corrected for averaging)"

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[float, float]]) -> PriceHistory:
        """From ``(timestamp, price)`` pairs in time order."""
        rows = list(pairs)
        return cls([t for t, _ in rows], [p for _, p in rows])

    def __len__(self) -> int:
        return int(self.prices.size)

    def __repr__(self) -> str:
        if not len(self):
            return "PriceHistory(empty)"
        return (
            f"PriceHistory({len(self)} {self.basis}, t=[{self.timestamps[0]:.0f}, "
            f"{self.timestamps[-1]:.0f}])"
        )

    def since(self, timestamp: float) -> PriceHistory:
        """The observations at or after ``timestamp``."""
        start = int(np.searchsorted(self.timestamps, timestamp, side="left"))
        return PriceHistory(
            self.timestamps[start:],
            self.prices[start:],
            averaging_seconds=self.averaging_seconds,
        )
