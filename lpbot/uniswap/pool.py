"""A Python UniswapV3Pool: the contract's state and its state transitions, to the wei.

``Pool`` reproduces ``UniswapV3Pool.sol`` (v3-core 1.0.0) for ``initialize``, ``mint``, ``burn``,
``collect``, ``swap``, ``flash`` accounting, the oracle and protocol fees. Token transfers and
callbacks are not modelled: the caller is assumed to pay exactly what the contract would demand.
A revert raises ``UniswapRevert`` and leaves the pool as it was, as a reverted transaction does.

Time is the pool's ``block_timestamp`` (uint32 seconds), set by the caller before an action, as
the chain's block sets it for the contract.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from lpbot.uniswap import oracle
from lpbot.uniswap import position as position_lib
from lpbot.uniswap import tick as tick_lib
from lpbot.uniswap.constants import MAX_INT128, MAX_INT256, MOD_32, MOD_128, MOD_256, Q128
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.full_math import mul_div, mul_div_rounding_up
from lpbot.uniswap.liquidity_math import add_delta
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.sqrt_price_math import get_amount0_delta_signed, get_amount1_delta_signed
from lpbot.uniswap.swap_math import compute_swap_step
from lpbot.uniswap.tick import TickInfo
from lpbot.uniswap.tick_bitmap import flip_tick, next_initialized_tick_within_one_word
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)

FEE_TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}  # UniswapV3Factory's enabled tiers

PositionKey = tuple[str, int, int]  # (owner, tick_lower, tick_upper)


@dataclass(slots=True)
class Slot0:
    """UniswapV3Pool.slot0."""

    sqrt_price_x96: int
    tick: int
    observation_index: int = 0
    observation_cardinality: int = 1
    observation_cardinality_next: int = 1
    fee_protocol: int = 0
    unlocked: bool = True


class SwapResult(NamedTuple):
    """The pool's side of a swap: ``amount0``/``amount1`` > 0 are paid into the pool."""

    amount0: int
    amount1: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee_amount: int  # total fee in the input token, protocol share included
    ticks_crossed: int  # initialized ticks crossed


@dataclass(slots=True)
class ProtocolFees:
    token0: int = 0
    token1: int = 0


@dataclass(slots=True)
class _Journal:
    """The state a liquidity change may touch, saved before it so that a revert restores it."""

    slot0: Slot0
    liquidity: int
    ticks: dict[int, TickInfo | None]
    words: dict[int, int | None]
    key: PositionKey
    position: PositionInfo | None
    observations: dict[int, oracle.Observation]


@dataclass
class Pool:
    """UniswapV3Pool: a created and initialized pool.

    ``Pool(fee, tick_spacing, sqrt_price_x96)`` is the state right after the factory's
    ``createPool`` and the pool's ``initialize(sqrt_price_x96)``.
    """

    fee: int
    tick_spacing: int
    slot0: Slot0
    block_timestamp: int = 0
    liquidity: int = 0
    fee_growth_global0_x128: int = 0
    fee_growth_global1_x128: int = 0
    protocol_fees: ProtocolFees = field(default_factory=ProtocolFees)
    ticks: dict[int, TickInfo] = field(default_factory=dict)
    tick_bitmap: dict[int, int] = field(default_factory=dict)
    positions: dict[PositionKey, PositionInfo] = field(default_factory=dict)
    observations: dict[int, oracle.Observation] = field(default_factory=dict)
    max_liquidity_per_tick: int = 0

    def __init__(
        self, fee: int, tick_spacing: int, sqrt_price_x96: int, *, block_timestamp: int = 0
    ) -> None:
        """UniswapV3Pool constructor and ``initialize`` (v3-core 1.0.0); bad price: ``'R'``."""
        if not 0 < tick_spacing < 16384:
            raise ValueError(f"tick spacing must be in (0, 16384), got {tick_spacing}")
        if not 0 <= fee < 1_000_000:
            raise ValueError(f"fee must be in [0, 1e6) pips, got {fee}")
        self.fee = fee
        self.tick_spacing = tick_spacing
        self.block_timestamp = block_timestamp % MOD_32
        self.liquidity = 0
        self.fee_growth_global0_x128 = 0
        self.fee_growth_global1_x128 = 0
        self.protocol_fees = ProtocolFees()
        self.ticks = {}
        self.tick_bitmap = {}
        self.positions = {}
        self.observations = {}
        self.max_liquidity_per_tick = tick_lib.tick_spacing_to_max_liquidity_per_tick(tick_spacing)
        tick = get_tick_at_sqrt_ratio(sqrt_price_x96)
        cardinality, cardinality_next = oracle.initialize(self.observations, self.block_timestamp)
        self.slot0 = Slot0(sqrt_price_x96, tick, 0, cardinality, cardinality_next, 0, True)

    # ----------------------------------------------------------------------------------- state

    @classmethod
    def from_state(
        cls,
        *,
        fee: int,
        tick_spacing: int,
        slot0: Slot0,
        liquidity: int,
        fee_growth_global0_x128: int,
        fee_growth_global1_x128: int,
        ticks: Mapping[int, TickInfo],
        block_timestamp: int,
        observations: Mapping[int, oracle.Observation] | None = None,
        positions: Mapping[PositionKey, PositionInfo] | None = None,
        protocol_fees: ProtocolFees | None = None,
    ) -> Pool:
        """Build a pool from state read off a chain; the bitmap is derived from the ticks.

        ``ticks`` must hold every initialized tick in the range the pool will be used over: a
        swap past the last known tick sees no liquidity change there, as if none existed.
        """
        pool = cls(fee, tick_spacing, slot0.sqrt_price_x96, block_timestamp=block_timestamp)
        pool.slot0 = copy.copy(slot0)
        pool.liquidity = liquidity
        pool.fee_growth_global0_x128 = fee_growth_global0_x128
        pool.fee_growth_global1_x128 = fee_growth_global1_x128
        pool.ticks = {t: info.copy() for t, info in ticks.items() if info.initialized}
        for t in pool.ticks:
            flip_tick(pool.tick_bitmap, t, tick_spacing)
        pool.observations = dict(observations) if observations else {}
        if not pool.observations:
            pool.observations[slot0.observation_index] = oracle.Observation(
                block_timestamp % MOD_32, 0, 0, True
            )
        pool.positions = {k: p.copy() for k, p in (positions or {}).items()}
        pool.protocol_fees = copy.copy(protocol_fees) if protocol_fees else ProtocolFees()
        return pool

    def copy(self) -> Pool:
        """A deep copy: a fork of this pool that can be changed without touching the original."""
        return copy.deepcopy(self)

    @property
    def sqrt_price_x96(self) -> int:
        return self.slot0.sqrt_price_x96

    @property
    def tick(self) -> int:
        return self.slot0.tick

    def position(self, owner: str, tick_lower: int, tick_upper: int) -> PositionInfo:
        """``positions(keccak(owner, lower, upper))``: an empty position if there is none."""
        return self.positions.get((owner, tick_lower, tick_upper), PositionInfo())

    def tick_info(self, tick: int) -> TickInfo:
        """``ticks(tick)``: the all-zero struct for an uninitialized tick."""
        return self.ticks.get(tick, TickInfo())

    def fee_growth_inside(self, tick_lower: int, tick_upper: int) -> tuple[int, int]:
        """Tick.getFeeGrowthInside at the current tick and fee growth."""
        return tick_lib.get_fee_growth_inside(
            self.ticks,
            tick_lower,
            tick_upper,
            self.slot0.tick,
            self.fee_growth_global0_x128,
            self.fee_growth_global1_x128,
        )

    # ------------------------------------------------------------------------------ liquidity

    def _check_ticks(self, tick_lower: int, tick_upper: int) -> None:
        if tick_lower >= tick_upper:
            raise UniswapRevert("TLU", f"tick lower {tick_lower} >= tick upper {tick_upper}")
        if tick_lower < MIN_TICK:
            raise UniswapRevert("TLM", f"tick lower {tick_lower} < MIN_TICK")
        if tick_upper > MAX_TICK:
            raise UniswapRevert("TUM", f"tick upper {tick_upper} > MAX_TICK")

    def _journal(self, owner: str, tick_lower: int, tick_upper: int) -> _Journal:
        """What ``_modify_position`` may change, copied so that a revert can put it back."""
        spacing = self.tick_spacing
        words = {(tick_lower // spacing) >> 8, (tick_upper // spacing) >> 8}
        key = (owner, tick_lower, tick_upper)
        return _Journal(
            slot0=copy.copy(self.slot0),
            liquidity=self.liquidity,
            ticks={
                t: (self.ticks[t].copy() if t in self.ticks else None)
                for t in (tick_lower, tick_upper)
            },
            words={w: self.tick_bitmap.get(w) for w in words},
            key=key,
            position=self.positions[key].copy() if key in self.positions else None,
            observations=dict(self.observations),
        )

    def _restore(self, journal: _Journal) -> None:
        self.slot0 = journal.slot0
        self.liquidity = journal.liquidity
        for t, info in journal.ticks.items():
            if info is None:
                self.ticks.pop(t, None)
            else:
                self.ticks[t] = info
        for w, word in journal.words.items():
            if word is None:
                self.tick_bitmap.pop(w, None)
            else:
                self.tick_bitmap[w] = word
        if journal.position is None:
            self.positions.pop(journal.key, None)
        else:
            self.positions[journal.key] = journal.position
        self.observations = journal.observations

    def _update_position(
        self, owner: str, tick_lower: int, tick_upper: int, liquidity_delta: int, tick: int
    ) -> PositionInfo:
        """UniswapV3Pool._updatePosition (v3-core 1.0.0)."""
        key = (owner, tick_lower, tick_upper)
        info = self.positions.get(key)
        if info is None:
            info = PositionInfo()
        g0 = self.fee_growth_global0_x128
        g1 = self.fee_growth_global1_x128

        flipped_lower = flipped_upper = False
        if liquidity_delta != 0:
            time = self.block_timestamp
            s = self.slot0
            tick_cumulative, seconds_per_liquidity = oracle.observe_single(
                self.observations,
                time,
                0,
                s.tick,
                s.observation_index,
                self.liquidity,
                s.observation_cardinality,
            )
            flipped_lower = tick_lib.update(
                self.ticks,
                tick_lower,
                tick,
                liquidity_delta,
                g0,
                g1,
                seconds_per_liquidity,
                tick_cumulative,
                time,
                False,
                self.max_liquidity_per_tick,
            )
            flipped_upper = tick_lib.update(
                self.ticks,
                tick_upper,
                tick,
                liquidity_delta,
                g0,
                g1,
                seconds_per_liquidity,
                tick_cumulative,
                time,
                True,
                self.max_liquidity_per_tick,
            )
            if flipped_lower:
                flip_tick(self.tick_bitmap, tick_lower, self.tick_spacing)
            if flipped_upper:
                flip_tick(self.tick_bitmap, tick_upper, self.tick_spacing)

        inside0, inside1 = tick_lib.get_fee_growth_inside(
            self.ticks, tick_lower, tick_upper, tick, g0, g1
        )
        position_lib.update(info, liquidity_delta, inside0, inside1)
        self.positions[key] = info

        if liquidity_delta < 0:
            if flipped_lower:
                tick_lib.clear(self.ticks, tick_lower)
            if flipped_upper:
                tick_lib.clear(self.ticks, tick_upper)
        return info

    def _modify_position(
        self, owner: str, tick_lower: int, tick_upper: int, liquidity_delta: int
    ) -> tuple[PositionInfo, int, int]:
        """UniswapV3Pool._modifyPosition (v3-core 1.0.0): (position, amount0, amount1), signed."""
        self._check_ticks(tick_lower, tick_upper)
        s = self.slot0
        start_tick = s.tick
        start_sqrt_price = s.sqrt_price_x96
        info = self._update_position(owner, tick_lower, tick_upper, liquidity_delta, start_tick)

        amount0 = amount1 = 0
        if liquidity_delta != 0:
            sqrt_a = get_sqrt_ratio_at_tick(tick_lower)
            sqrt_b = get_sqrt_ratio_at_tick(tick_upper)
            if start_tick < tick_lower:
                amount0 = get_amount0_delta_signed(sqrt_a, sqrt_b, liquidity_delta)
            elif start_tick < tick_upper:
                liquidity_before = self.liquidity
                s.observation_index, s.observation_cardinality = oracle.write(
                    self.observations,
                    s.observation_index,
                    self.block_timestamp,
                    start_tick,
                    liquidity_before,
                    s.observation_cardinality,
                    s.observation_cardinality_next,
                )
                amount0 = get_amount0_delta_signed(start_sqrt_price, sqrt_b, liquidity_delta)
                amount1 = get_amount1_delta_signed(sqrt_a, start_sqrt_price, liquidity_delta)
                self.liquidity = add_delta(liquidity_before, liquidity_delta)
            else:
                amount1 = get_amount1_delta_signed(sqrt_a, sqrt_b, liquidity_delta)
        return info, amount0, amount1

    def _locked(self) -> None:
        if not self.slot0.unlocked:
            raise UniswapRevert("LOK", "pool is locked")

    def mint(self, owner: str, tick_lower: int, tick_upper: int, amount: int) -> tuple[int, int]:
        """UniswapV3Pool.mint (v3-core 1.0.0): add ``amount`` liquidity for ``owner``.

        Returns the (amount0, amount1) the minter must pay, rounded up.
        """
        self._locked()
        if amount <= 0:
            raise UniswapRevert("", "mint amount must be > 0")
        if amount > MAX_INT128:
            raise UniswapRevert("", "mint amount overflows int128")
        journal = self._journal(owner, tick_lower, tick_upper)
        try:
            _, amount0, amount1 = self._modify_position(owner, tick_lower, tick_upper, amount)
        except UniswapRevert:
            self._restore(journal)
            raise
        return amount0, amount1

    def burn(self, owner: str, tick_lower: int, tick_upper: int, amount: int) -> tuple[int, int]:
        """UniswapV3Pool.burn (v3-core 1.0.0): remove ``amount`` liquidity of ``owner``'s position.

        The (amount0, amount1) released, rounded down, are credited to the position's tokens owed
        (collect pays them out). ``amount == 0`` pokes the position to credit its fees.
        """
        self._locked()
        if not 0 <= amount <= MAX_INT128:
            raise UniswapRevert("", f"burn amount {amount} out of int128 range")
        journal = self._journal(owner, tick_lower, tick_upper)
        try:
            info, amount0_int, amount1_int = self._modify_position(
                owner, tick_lower, tick_upper, -amount
            )
        except UniswapRevert:
            self._restore(journal)
            raise
        amount0, amount1 = -amount0_int, -amount1_int
        if amount0 > 0 or amount1 > 0:
            # uint128 addition, wrapping as in the contract
            info.tokens_owed0 = (info.tokens_owed0 + amount0) % MOD_128
            info.tokens_owed1 = (info.tokens_owed1 + amount1) % MOD_128
        return amount0, amount1

    def collect(
        self,
        owner: str,
        tick_lower: int,
        tick_upper: int,
        amount0_requested: int,
        amount1_requested: int,
    ) -> tuple[int, int]:
        """UniswapV3Pool.collect (v3-core 1.0.0): pay out up to the requested tokens owed."""
        self._locked()
        info = self.positions.get((owner, tick_lower, tick_upper))
        if info is None:
            return 0, 0
        amount0 = min(amount0_requested, info.tokens_owed0)
        amount1 = min(amount1_requested, info.tokens_owed1)
        info.tokens_owed0 -= amount0
        info.tokens_owed1 -= amount1
        return amount0, amount1

    # ------------------------------------------------------------------------------------ swap

    def swap(
        self, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int
    ) -> SwapResult:
        """UniswapV3Pool.swap (v3-core 1.0.0).

        ``amount_specified`` > 0 is an exact input, < 0 an exact output. The result's amounts are
        the pool's deltas: positive is paid into the pool, negative paid out. Reverts ``'AS'`` for
        a zero amount, ``'LOK'`` when locked and ``'SPL'`` for a price limit on the wrong side.
        """
        return self._swap(zero_for_one, amount_specified, sqrt_price_limit_x96, commit=True)

    def quote_swap(
        self, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int
    ) -> SwapResult:
        """``swap`` without changing the pool: what the same call would return now."""
        return self._swap(zero_for_one, amount_specified, sqrt_price_limit_x96, commit=False)

    def _swap(
        self, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int, commit: bool
    ) -> SwapResult:
        if amount_specified == 0:
            raise UniswapRevert("AS", "amount specified is 0")
        if not -MAX_INT256 - 1 <= amount_specified <= MAX_INT256:
            raise UniswapRevert("", "amount specified overflows int256")
        start = self.slot0
        if not start.unlocked:
            raise UniswapRevert("LOK", "pool is locked")
        if zero_for_one:
            ok = MIN_SQRT_RATIO < sqrt_price_limit_x96 < start.sqrt_price_x96
        else:
            ok = start.sqrt_price_x96 < sqrt_price_limit_x96 < MAX_SQRT_RATIO
        if not ok:
            raise UniswapRevert(
                "SPL",
                f"price limit {sqrt_price_limit_x96} is not on the "
                f"{'low' if zero_for_one else 'high'} side of {start.sqrt_price_x96}",
            )

        fee = self.fee
        spacing = self.tick_spacing
        bitmap = self.tick_bitmap
        ticks = self.ticks
        fee_protocol = start.fee_protocol % 16 if zero_for_one else start.fee_protocol >> 4
        liquidity_start = self.liquidity
        block_timestamp = self.block_timestamp
        computed_latest_observation = False
        tick_cumulative = 0
        seconds_per_liquidity = 0
        exact_input = amount_specified > 0

        remaining = amount_specified
        calculated = 0
        sqrt_price = start.sqrt_price_x96
        tick = start.tick
        fee_growth_global = (
            self.fee_growth_global0_x128 if zero_for_one else self.fee_growth_global1_x128
        )
        protocol_fee = 0
        liquidity = liquidity_start
        fee_total = 0
        crossed = 0
        crossed_journal: list[tuple[int, TickInfo]] = []

        try:
            while remaining != 0 and sqrt_price != sqrt_price_limit_x96:
                sqrt_price_start = sqrt_price
                tick_next, initialized = next_initialized_tick_within_one_word(
                    bitmap, tick, spacing, zero_for_one
                )
                if tick_next < MIN_TICK:
                    tick_next = MIN_TICK
                elif tick_next > MAX_TICK:
                    tick_next = MAX_TICK
                sqrt_price_next = get_sqrt_ratio_at_tick(tick_next)

                if zero_for_one:
                    target = (
                        sqrt_price_limit_x96
                        if sqrt_price_next < sqrt_price_limit_x96
                        else sqrt_price_next
                    )
                else:
                    target = (
                        sqrt_price_limit_x96
                        if sqrt_price_next > sqrt_price_limit_x96
                        else sqrt_price_next
                    )
                sqrt_price, amount_in, amount_out, fee_amount = compute_swap_step(
                    sqrt_price, target, liquidity, remaining, fee
                )

                if exact_input:
                    remaining -= amount_in + fee_amount
                    calculated -= amount_out
                else:
                    remaining += amount_out
                    calculated += amount_in + fee_amount
                fee_total += fee_amount

                if fee_protocol > 0:
                    delta = fee_amount // fee_protocol
                    fee_amount -= delta
                    protocol_fee = (protocol_fee + delta) % MOD_128

                if liquidity > 0:
                    fee_growth_global = (
                        fee_growth_global + mul_div(fee_amount, Q128, liquidity)
                    ) % MOD_256

                if sqrt_price == sqrt_price_next:
                    if initialized:
                        if not computed_latest_observation:
                            tick_cumulative, seconds_per_liquidity = oracle.observe_single(
                                self.observations,
                                block_timestamp,
                                0,
                                start.tick,
                                start.observation_index,
                                liquidity_start,
                                start.observation_cardinality,
                            )
                            computed_latest_observation = True
                        if commit:
                            crossed_journal.append((tick_next, ticks[tick_next].copy()))
                            liquidity_net = tick_lib.cross(
                                ticks,
                                tick_next,
                                fee_growth_global if zero_for_one else self.fee_growth_global0_x128,
                                self.fee_growth_global1_x128 if zero_for_one else fee_growth_global,
                                seconds_per_liquidity,
                                tick_cumulative,
                                block_timestamp,
                            )
                        else:
                            liquidity_net = ticks[tick_next].liquidity_net
                        if zero_for_one:
                            liquidity_net = -liquidity_net
                        liquidity = add_delta(liquidity, liquidity_net)
                        crossed += 1
                    tick = tick_next - 1 if zero_for_one else tick_next
                elif sqrt_price != sqrt_price_start:
                    tick = get_tick_at_sqrt_ratio(sqrt_price)
        except UniswapRevert:
            for t, info in reversed(crossed_journal):
                ticks[t] = info
            raise

        if zero_for_one == exact_input:
            amount0, amount1 = amount_specified - remaining, calculated
        else:
            amount0, amount1 = calculated, amount_specified - remaining

        if commit:
            s = self.slot0
            if tick != start.tick:
                s.observation_index, s.observation_cardinality = oracle.write(
                    self.observations,
                    start.observation_index,
                    block_timestamp,
                    start.tick,
                    liquidity_start,
                    start.observation_cardinality,
                    start.observation_cardinality_next,
                )
                s.tick = tick
            s.sqrt_price_x96 = sqrt_price
            self.liquidity = liquidity
            if zero_for_one:
                self.fee_growth_global0_x128 = fee_growth_global
                if protocol_fee > 0:
                    self.protocol_fees.token0 = (self.protocol_fees.token0 + protocol_fee) % MOD_128
            else:
                self.fee_growth_global1_x128 = fee_growth_global
                if protocol_fee > 0:
                    self.protocol_fees.token1 = (self.protocol_fees.token1 + protocol_fee) % MOD_128

        return SwapResult(amount0, amount1, sqrt_price, tick, liquidity, fee_total, crossed)

    # ----------------------------------------------------------------------- oracle and admin

    def observe(self, seconds_agos: Iterable[int]) -> tuple[list[int], list[int]]:
        """UniswapV3Pool.observe (v3-core 1.0.0): cumulative ticks and seconds per liquidity."""
        s = self.slot0
        return oracle.observe(
            self.observations,
            self.block_timestamp,
            list(seconds_agos),
            s.tick,
            s.observation_index,
            self.liquidity,
            s.observation_cardinality,
        )

    def increase_observation_cardinality_next(self, observation_cardinality_next: int) -> None:
        """UniswapV3Pool.increaseObservationCardinalityNext (v3-core 1.0.0)."""
        self._locked()
        s = self.slot0
        s.observation_cardinality_next = oracle.grow(
            self.observations, s.observation_cardinality_next, observation_cardinality_next
        )

    def set_fee_protocol(self, fee_protocol0: int, fee_protocol1: int) -> None:
        """UniswapV3Pool.setFeeProtocol (v3-core 1.0.0): 0 (off) or 1/N of the fee, N in [4, 10]."""
        self._locked()
        for fp in (fee_protocol0, fee_protocol1):
            if not (fp == 0 or 4 <= fp <= 10):
                raise UniswapRevert("", f"fee protocol {fp} not 0 or in [4, 10]")
        self.slot0.fee_protocol = fee_protocol0 + (fee_protocol1 << 4)

    def flash(self, amount0: int, amount1: int, paid0: int, paid1: int) -> tuple[int, int]:
        """UniswapV3Pool.flash accounting (v3-core 1.0.0) for a flash loan repaid with ``paid0/1``.

        Returns the fees the borrower owed (fee0, fee1); reverts ``'F0'``/``'F1'`` when the
        payment falls short and ``'L'`` when the pool has no liquidity.
        """
        self._locked()
        fee0 = mul_div_rounding_up(amount0, self.fee, 1_000_000)
        fee1 = mul_div_rounding_up(amount1, self.fee, 1_000_000)
        if self.liquidity <= 0:
            raise UniswapRevert("L", "flash with no liquidity")
        if paid0 < fee0:
            raise UniswapRevert("F0", f"paid {paid0} < fee {fee0}")
        if paid1 < fee1:
            raise UniswapRevert("F1", f"paid {paid1} < fee {fee1}")
        if paid0 > 0:
            fp0 = self.slot0.fee_protocol % 16
            fees0 = 0 if fp0 == 0 else paid0 // fp0
            if fees0 % MOD_128 > 0:
                self.protocol_fees.token0 = (self.protocol_fees.token0 + fees0) % MOD_128
            self.fee_growth_global0_x128 = (
                self.fee_growth_global0_x128 + mul_div(paid0 - fees0, Q128, self.liquidity)
            ) % MOD_256
        if paid1 > 0:
            fp1 = self.slot0.fee_protocol >> 4
            fees1 = 0 if fp1 == 0 else paid1 // fp1
            if fees1 % MOD_128 > 0:
                self.protocol_fees.token1 = (self.protocol_fees.token1 + fees1) % MOD_128
            self.fee_growth_global1_x128 = (
                self.fee_growth_global1_x128 + mul_div(paid1 - fees1, Q128, self.liquidity)
            ) % MOD_256
        return fee0, fee1
