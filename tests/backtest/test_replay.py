"""Exact replay of a pool's logged history, checked against a pool that lived it.

A reference ``Pool`` is driven through every kind of action, including swaps the logs cannot
describe fully (exact output, stopped by a limit); its "logs" are built from the results as the
contract would emit them, then replayed into a copy of its start state.
"""

from __future__ import annotations

import random

import pytest

from lpbot.backtest.events import EventKind, PoolEvent, StartState
from lpbot.backtest.replay import EventReplayer, ReplayMismatch, replay_events
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick


def _history(seed: int) -> tuple[Pool, Pool, list[PoolEvent], dict[int, int]]:
    """A pool after seed liquidity (a copy), the pool after 300 random actions, their logs."""
    rng = random.Random(seed)
    tick0 = -196_250
    pool = Pool(500, 10, get_sqrt_ratio_at_tick(tick0), block_timestamp=1_000)
    pool.increase_observation_cardinality_next(20)
    for i, half in enumerate((200, 600, 2_000, 8_000)):
        pool.mint(f"lp{i}", (tick0 - half) // 10 * 10, (tick0 + half) // 10 * 10, 10**18)
    start = pool.copy()
    events: list[PoolEvent] = []
    timestamps: dict[int, int] = {}
    positions: list[tuple[str, int, int]] = []
    block = 100
    for n in range(300):
        block += 1
        pool.block_timestamp += rng.choice((0, 12, 12, 60))
        timestamps[block] = pool.block_timestamp

        def log(kind: EventKind, *args: object, _b: int = block, _n: int = n) -> None:
            events.append(PoolEvent(_b, _n, kind, tuple(args)))

        action = rng.random()
        zero_for_one = rng.random() < 0.5
        if action < 0.55:
            if rng.random() < 0.5:  # exact input, no limit
                amount = (
                    rng.randint(10**15, 5 * 10**18) if zero_for_one else rng.randint(10**6, 10**10)
                )
                limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
            else:  # exact output, or exact input stopped by a limit
                amount = (
                    -rng.randint(10**5, 10**9) if zero_for_one else -rng.randint(10**14, 10**18)
                )
                if rng.random() < 0.5:
                    amount = -amount * 10**3
                step = rng.randint(1, 40) * 10**-4
                p = pool.sqrt_price_x96
                limit = int(p * (1 - step)) if zero_for_one else int(p * (1 + step))
            r = pool.swap(zero_for_one, amount, limit)
            log(EventKind.SWAP, r.amount0, r.amount1, r.sqrt_price_x96, r.liquidity, r.tick)
        elif action < 0.7:
            lo = (pool.tick - rng.randint(1, 300) * 10) // 10 * 10
            hi = (pool.tick + rng.randint(1, 300) * 10) // 10 * 10
            amount = rng.randint(10**12, 10**17)
            a0, a1 = pool.mint("trader", lo, hi, amount)
            positions.append(("trader", lo, hi))
            log(EventKind.MINT, "trader", lo, hi, amount, a0, a1)
        elif action < 0.8 and positions:
            key = rng.choice(positions)
            liq = pool.position(*key).liquidity
            amount = rng.randint(0, liq)
            a0, a1 = pool.burn(*key, amount)
            log(EventKind.BURN, *key, amount, a0, a1)
            c0, c1 = pool.collect(*key, 2**128 - 1, rng.randint(0, 2**64))
            log(EventKind.COLLECT, *key, c0, c1)
        elif action < 0.85:
            paid0, paid1 = rng.randint(0, 10**16), rng.randint(0, 10**7)
            pool.flash(0, 0, paid0, paid1)
            log(EventKind.FLASH, 0, 0, paid0, paid1)
        elif action < 0.88:
            fp0, fp1 = rng.choice((0, 4, 7, 10)), rng.choice((0, 5, 6))
            old = pool.slot0.fee_protocol
            pool.set_fee_protocol(fp0, fp1)
            log(EventKind.SET_FEE_PROTOCOL, old % 16, old >> 4, fp0, fp1)
        else:
            new = pool.slot0.observation_cardinality_next + rng.randint(1, 5)
            old = pool.slot0.observation_cardinality_next
            pool.increase_observation_cardinality_next(new)
            log(EventKind.INCREASE_CARDINALITY, old, new)
    return start, pool, events, timestamps


def _state(p: Pool) -> tuple[object, ...]:
    return (
        p.slot0, p.liquidity, p.fee_growth_global0_x128, p.fee_growth_global1_x128,
        p.protocol_fees, p.ticks, p.tick_bitmap, p.positions, p.observations,
    )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_from_the_start_state_reproduces_every_field(seed: int) -> None:
    start, lived, events, timestamps = _history(seed)
    replayer = EventReplayer(start, 500, 10, strict=True)
    stats = replay_events(replayer, events, timestamps)
    assert stats.mismatches == 0
    assert stats.swaps_exact_input > 0 and stats.swaps_price_limit > 0
    assert replayer.pool is not None
    assert _state(replayer.pool) == _state(lived)


def test_a_wrong_log_is_counted_and_strict_mode_halts() -> None:
    start, _lived, events, timestamps = _history(4)
    swaps = [i for i, e in enumerate(events) if e.kind is EventKind.SWAP]
    i = swaps[3]
    e = events[i]
    a = list(e.args)
    k = 0 if a[0] > 0 else 1
    a[k] += a[k] // 10  # more input than the pool took to reach the logged price
    events[i] = PoolEvent(e.block_number, e.log_index, e.kind, tuple(a))
    lenient = EventReplayer(start.copy(), 500, 10)
    replay_events(lenient, events, timestamps)
    assert lenient.stats.mismatches >= 1 and lenient.stats.first_mismatch
    with pytest.raises(ReplayMismatch):
        replay_events(EventReplayer(start.copy(), 500, 10, strict=True), events, timestamps)


def test_an_empty_start_waits_for_initialize() -> None:
    state = StartState(block=9, timestamp=0, fee=3000, tick_spacing=60, slot0=None)
    assert state.empty and state.to_pool() is None
    sqrt = get_sqrt_ratio_at_tick(600)
    events = [
        PoolEvent(10, 0, EventKind.INITIALIZE, (sqrt, 600)),
        PoolEvent(10, 1, EventKind.MINT, ("lp", 0, 1200, 10**18, 0, 0)),
    ]
    reference = Pool(3000, 60, sqrt, block_timestamp=5)
    a0, a1 = reference.mint("lp", 0, 1200, 10**18)
    events[1] = PoolEvent(10, 1, EventKind.MINT, ("lp", 0, 1200, 10**18, a0, a1))
    replayer = EventReplayer(None, 3000, 60, strict=True)
    replay_events(replayer, events, {10: 5})
    assert replayer.pool is not None
    assert _state(replayer.pool) == _state(reference)


def test_start_state_json_round_trip() -> None:
    start, _lived, _events, _ts = _history(5)
    state = StartState(
        block=1, timestamp=start.block_timestamp, fee=500, tick_spacing=10, slot0=start.slot0,
        liquidity=start.liquidity, fee_growth_global0_x128=start.fee_growth_global0_x128,
        fee_growth_global1_x128=start.fee_growth_global1_x128, observations=start.observations,
        ticks=start.ticks, positions=start.positions,
    )  # fmt: skip
    again = StartState.from_json(state.to_json())
    assert again == state
    pool = again.to_pool()
    assert pool is not None and _state(pool)[:8] == _state(start)[:8]
