"""lpbot.uniswap.Pool against the deployed UniswapV3Pool (v3-core 1.0.0 artifact), step by step.

For each fee tier and seed a fresh pool is created on the devnet, and one seeded random sequence of
mint, burn (partial, full, and 0 = poke), collect, swap (exact in and exact out, both directions,
with and without a price limit, large ones crossing many initialized ticks), oracle growth and
protocol-fee changes, valid and reverting, runs on the contract and on the Python pool. Time moves
between steps (evm_setNextBlockTimestamp, 0 s to 3 days) so that the oracle and the seconds-outside
values change. After every step these must be identical:

* the return values (from the pool's Mint/Burn/Collect/Swap event), or the revert reason;
* slot0, liquidity, fee growth globals and protocol fees;
* ticks(t) for every tick ever used as a bound, the tickBitmap words covering them, and the set of
  initialized ticks those words encode against the model's;
* positions(key) for every (owner, lower, upper) ever touched;
* every observation slot below observationCardinalityNext, and three observe() results;
* after a revert, the pool state is what it was before the step.

The contract side is read in one Multicall3 aggregate3 eth_call per step.

``LPBOT_DIFF_OPS`` sets the total number of operations (default 2,100, split evenly over the tiers
and seeds); ``LPBOT_DIFF_SEEDS`` the comma-separated seeds (default ``1,2``).
"""

from __future__ import annotations

import os
import random
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest

from lpbot.uniswap import MAX_TICK, MIN_TICK, Pool, SwapResult
from lpbot.uniswap.constants import MAX_INT128, MAX_UINT128, Q96
from lpbot.uniswap.tick import tick_spacing_to_max_liquidity_per_tick
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick
from tests.conftest import Devnet

from .onchain_pool import (
    MAX_SQRT_PRICE_LIMIT,
    MIN_SQRT_PRICE_LIMIT,
    JsonRpc,
    OnchainPool,
    Reverted,
    State,
    StateQuery,
    initialized_ticks,
    model_outcome,
    model_state,
    tick_word,
)

pytestmark = [pytest.mark.differential, pytest.mark.devnet]

TIERS = ((500, 10), (3000, 60), (10000, 200))
SEEDS = tuple(int(s) for s in os.environ.get("LPBOT_DIFF_SEEDS", "1,2").split(","))
TOTAL_OPS = int(os.environ.get("LPBOT_DIFF_OPS", "2100"))
OPS_PER_CASE = -(-TOTAL_OPS // (len(TIERS) * len(SEEDS)))
WARM_UP = 24  # the first steps are mints, so that swaps soon cross initialized ticks
FUNDING = 2**200  # of each token, for every actor: enough for swaps to the extreme prices
STEP_SECONDS = 60  # a step that takes longer is a loop that makes no progress

# realistic starting prices: (decimals of the two tokens, whole token1 per whole token0)
PRICES = (
    ((18, 6), "3000"),
    ((6, 18), "0.00033"),
    ((8, 18), "30"),
    ((18, 8), "0.033"),
    ((18, 18), "1"),
    ((6, 6), "1.0002"),
    ((8, 6), "90000"),
    ((18, 18), "0.0005"),
)

FIELDS = {
    "slot0": (
        "sqrtPriceX96",
        "tick",
        "observationIndex",
        "observationCardinality",
        "observationCardinalityNext",
        "feeProtocol",
        "unlocked",
    ),
    "protocolFees": ("token0", "token1"),
    "ticks": (
        "liquidityGross",
        "liquidityNet",
        "feeGrowthOutside0X128",
        "feeGrowthOutside1X128",
        "tickCumulativeOutside",
        "secondsPerLiquidityOutsideX128",
        "secondsOutside",
        "initialized",
    ),
    "positions": (
        "liquidity",
        "feeGrowthInside0LastX128",
        "feeGrowthInside1LastX128",
        "tokensOwed0",
        "tokensOwed1",
    ),
    "observations": (
        "blockTimestamp",
        "tickCumulative",
        "secondsPerLiquidityCumulativeX128",
        "initialized",
    ),
}
ARGS = {
    "mint": ("owner", "tick_lower", "tick_upper", "amount"),
    "burn": ("owner", "tick_lower", "tick_upper", "amount"),
    "collect": ("owner", "tick_lower", "tick_upper", "amount0_requested", "amount1_requested"),
    "swap": ("trader", "zero_for_one", "amount_specified", "sqrt_price_limit_x96"),
    "grow": ("sender", "observation_cardinality_next"),
    "fee_protocol": ("fee_protocol0", "fee_protocol1"),
}


@dataclass(frozen=True)
class Op:
    """One pool action; ``note`` says what the generator aimed at (e.g. ``'poke'``, ``'LS'``)."""

    kind: str
    args: tuple[Any, ...]
    note: str = ""

    def __str__(self) -> str:
        args = ", ".join(f"{n}={v!r}" for n, v in zip(ARGS[self.kind], self.args, strict=True))
        return f"{self.kind}({args})" + (f" [{self.note}]" if self.note else "")


def field_diffs(key: Any, chain: Any, model: Any) -> list[str]:
    """Name the differing fields of one state entry."""
    kind = key if isinstance(key, str) else key[0]
    names = FIELDS.get(kind)
    label = key if isinstance(key, str) else f"{kind}{list(key[1:])}"
    if names and isinstance(chain, tuple) and isinstance(model, tuple):
        return [
            f"{label}.{n}: chain {c!r} != model {m!r}"
            for n, c, m in zip(names, chain, model, strict=True)
            if c != m
        ]
    return [f"{label}: chain {chain!r} != model {model!r}"]


def static(state: State) -> State:
    """The entries that no mere passing of time changes."""
    return {
        k: v
        for k, v in state.items()
        if k != "block.timestamp" and not (isinstance(k, tuple) and k[0] == "observe")
    }


class StepTimeout(Exception):
    pass


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Interrupt the block after ``seconds``: a swap loop that makes no progress also grows its
    journal without bound, so waiting for it would exhaust memory."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise StepTimeout(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Case:
    """One fee tier and seed: a fresh pool on the chain, its Python twin, and the generator."""

    def __init__(self, devnet: Devnet, fee: int, tick_spacing: int, seed: int, n_ops: int) -> None:
        self.seed = seed
        self.fee = fee
        self.spacing = tick_spacing
        self.n_ops = n_ops
        self.rng = random.Random(f"lpbot-differential-{fee}-{seed}")
        accounts = devnet.w3.eth.accounts
        self.owners: list[str] = list(accounts[1:5])
        self.traders: list[str] = list(accounts[5:8])
        m = devnet.manifest
        decimals, price = self.rng.choice(PRICES)
        jitter = Decimal(self.rng.randint(800_000, 1_250_000)) / 1_000_000
        self.rpc = JsonRpc(devnet.url)
        self.chain = OnchainPool.create(
            self.rpc,
            factory=m.contracts["UniswapV3Factory"],
            factory_owner=m.accounts.deployer,
            pool_caller=m.contracts["PoolCaller"],
            multicall=m.contracts["Multicall3"],
            fee=fee,
            tick_spacing=tick_spacing,
            decimals=decimals,
            price=Decimal(price) * jitter,
            actors=self.owners + self.traders,
            funding=FUNDING,
        )
        self.model = Pool(
            fee,
            tick_spacing,
            self.chain.sqrt_price_x96,
            block_timestamp=self.chain.initialized_at,
        )
        self.time = self.chain.initialized_at
        self.start_tick = self.model.tick
        self.usable = (
            -(-MIN_TICK // tick_spacing) * tick_spacing,
            MAX_TICK // tick_spacing * tick_spacing,
        )
        self.max_liquidity = tick_spacing_to_max_liquidity_per_tick(tick_spacing)
        self.query = StateQuery()
        self.step = 0
        self.op: Op | None = None
        self.stats: Counter[str] = Counter()
        self.max_crossed = 0

    # ------------------------------------------------------------------------------ checking

    def fail(self, lines: list[str]) -> None:
        where = f"seed {self.seed}, fee {self.fee}, step {self.step} of {self.n_ops}: {self.op}"
        shown = "\n  ".join(lines[:15]) + ("\n  ..." if len(lines) > 15 else "")
        pytest.fail(
            f"lpbot.uniswap.Pool differs from UniswapV3Pool\n{where}\n  {shown}\n"
            f"(rerun: LPBOT_DIFF_SEEDS={self.seed} LPBOT_DIFF_OPS={self.n_ops * len(TIERS)} "
            f"pytest tests/differential -k fee{self.fee})",
            pytrace=False,
        )

    def compare(self, block: int) -> State:
        chain_state = self.chain.fetch_state(self.query, block)
        expected = model_state(self.model, self.query)
        lines: list[str] = []
        for key, value in chain_state.items():
            if value != expected[key]:
                lines += field_diffs(key, value, expected[key])
        words = {
            k[1]: v for k, v in chain_state.items() if isinstance(k, tuple) and k[0] == "tickBitmap"
        }
        on_chain = initialized_ticks(words, self.spacing)
        in_model = set(self.model.ticks)
        if on_chain != in_model:
            lines.append(
                f"initialized ticks: only on chain {sorted(on_chain - in_model)}, "
                f"only in the model {sorted(in_model - on_chain)}"
            )
        if lines:
            self.fail(lines)
        return expected

    def track(self, op: Op) -> None:
        """Add the op's ticks and position to what every later state read covers."""
        if op.kind in ("mint", "burn", "collect"):
            owner, lower, upper = op.args[:3]
            self.query.positions.add((owner, lower, upper))
            for t in (lower, upper):
                self.query.ticks.add(t)
                self.query.words.add(tick_word(t, self.spacing))
        self.query.words.add(tick_word(self.model.tick, self.spacing))
        self.query.words.update(self.model.tick_bitmap)

    def pick_observe(self) -> None:
        """observe() at three times: now, one within the stored history, and one that may be
        older than the oldest observation ('OLD'); and every slot below cardinalityNext."""
        rng, s, now = self.rng, self.model.slot0, self.model.block_timestamp
        stored = [
            o.block_timestamp
            for i, o in self.model.observations.items()
            if i < s.observation_cardinality and o.initialized
        ]
        span = now - min(stored)
        r = rng.random()
        if r < 0.4:
            older = now - rng.choice(stored)
        elif r < 0.85:
            older = rng.randint(0, span)
        else:
            older = span + rng.randint(1, 1000)
        self.query.observe = [(0, rng.randint(0, max(span, 1))), (older,)]
        self.query.observations = s.observation_cardinality_next

    # ----------------------------------------------------------------------------- execution

    def execute(self, op: Op) -> tuple[Any, Any, int]:
        """Run ``op`` on both pools: (chain outcome, model outcome, block number)."""
        c, m, a = self.chain, self.model, op.args
        if op.kind == "mint":
            out, block = c.mint(*a)
            return out, model_outcome(m.mint, *a), block
        if op.kind == "burn":
            out, block = c.burn(*a)
            return out, model_outcome(m.burn, *a), block
        if op.kind == "collect":
            out, block = c.collect(*a)
            return out, model_outcome(m.collect, *a), block
        if op.kind == "swap":
            trader, zero_for_one, amount, limit = a
            out, block = c.swap(trader, zero_for_one, amount, limit)
            if limit == 0:  # PoolCaller's "no limit"
                limit = MIN_SQRT_PRICE_LIMIT if zero_for_one else MAX_SQRT_PRICE_LIMIT
            r = model_outcome(m.swap, zero_for_one, amount, limit)
            if isinstance(r, SwapResult):
                self.max_crossed = max(self.max_crossed, r.ticks_crossed)
                r = (r.amount0, r.amount1, r.sqrt_price_x96, r.liquidity, r.tick)
            return out, r, block
        if op.kind == "grow":
            out, block = c.increase_observation_cardinality_next(*a)
            return out, model_outcome(m.increase_observation_cardinality_next, a[1]), block
        out, block = c.set_fee_protocol(*a)
        return out, model_outcome(m.set_fee_protocol, *a), block

    def advance_time(self) -> None:
        r = self.rng.random()
        if r < 0.3:
            delta = 0  # the same block time, as for transactions in one block
        elif r < 0.7:
            delta = self.rng.randint(1, 15)
        elif r < 0.9:
            delta = self.rng.randint(16, 900)
        else:
            delta = self.rng.randint(901, 3 * 86_400)
        self.time += delta
        self.rpc("evm_setNextBlockTimestamp", self.time)
        self.model.block_timestamp = self.time % 2**32

    def run(self) -> None:
        self.query.observations = 1
        self.compare(self.chain.initialized_block)
        for step in range(1, self.n_ops + 1):
            self.step = step
            try:
                with deadline(STEP_SECONDS):
                    self.run_step()
            except StepTimeout as e:
                self.fail([str(e)])

    def run_step(self) -> None:
        self.advance_time()
        op = self.op = self.next_op()
        self.track(op)
        before = static(model_state(self.model, replace(self.query, observe=[])))
        chain_out, model_out, block = self.execute(op)
        self.stats[op.kind] += 1
        self.stats[f"{op.kind} {op.note}"] += 1
        if isinstance(chain_out, Reverted):
            self.stats[f"revert {chain_out.reason!r}"] += 1
        if chain_out != model_out:
            self.fail([f"outcome: chain {chain_out!r} != model {model_out!r}"])
        index_before = before["slot0"][2]
        self.pick_observe()
        after = self.compare(block)
        if after["slot0"][2] < index_before:
            self.stats["oracle wrapped"] += 1
        for key in self.query.observe:
            if isinstance(after["observe", key], Reverted):
                self.stats[f"observe {after['observe', key].reason!r}"] += 1
        if isinstance(chain_out, Reverted):
            changed = [k for k, v in static(after).items() if before.get(k, v) != v]
            if changed:
                self.fail([f"the pool changed although the call reverted: {changed}"])

    # ---------------------------------------------------------------------------- generation

    def next_op(self) -> Op:
        if self.step <= WARM_UP:
            return self.gen_mint()
        r = self.rng.random()
        if r < 0.32:
            return self.gen_swap()
        if r < 0.56:
            return self.gen_mint()
        if r < 0.74:
            return self.gen_burn()
        if r < 0.86:
            return self.gen_collect()
        if r < 0.88:
            return self.gen_grow()
        if r < 0.89:
            return self.gen_fee_protocol()
        return self.gen_invalid()

    def aligned(self, tick: int) -> int:
        return tick // self.spacing * self.spacing

    def clamp(self, tick: int) -> int:
        return min(max(tick, self.usable[0]), self.usable[1])

    def pick_range(self) -> tuple[int, int]:
        rng, s = self.rng, self.spacing
        r = rng.random()
        if r < 0.06:
            return self.usable
        if r < 0.4 and len(self.model.ticks) >= 2:
            a = rng.choice(sorted(self.model.ticks))
            b = self.clamp(a + rng.choice((-1, 1)) * rng.randint(1, 400) * s)
            if rng.random() < 0.5:
                b = rng.choice(sorted(self.model.ticks))
        else:
            width = rng.choice((1, 2, 5, 10, 30, 100, 300, 1000, 3000))
            a = self.clamp(self.aligned(self.model.tick) - rng.randint(-width // 3, width) * s)
            b = self.clamp(a + rng.randint(1, width) * s)
        if a == b:
            b = a + s if a + s <= self.usable[1] else a - s
        return min(a, b), max(a, b)

    def pick_liquidity(self) -> int:
        return self.rng.randint(1, 10 ** self.rng.randint(0, 24))

    def positions(self, live: bool) -> list[tuple[str, int, int]]:
        return sorted(k for k, p in self.model.positions.items() if p.liquidity > 0 or not live)

    def gen_mint(self) -> Op:
        rng = self.rng
        existing = self.positions(live=False)
        if existing and rng.random() < 0.25:
            owner, lower, upper = rng.choice(existing)
            return Op("mint", (owner, lower, upper, self.pick_liquidity()), "add")
        lower, upper = self.pick_range()
        return Op("mint", (rng.choice(self.owners), lower, upper, self.pick_liquidity()))

    def gen_burn(self) -> Op:
        rng = self.rng
        live = self.positions(live=True)
        if not live:
            return self.gen_mint()
        key = rng.choice(live)
        liquidity = self.model.positions[key].liquidity
        r = rng.random()
        if r < 0.35 or liquidity == 1:
            return Op("burn", (*key, liquidity), "all")
        if r < 0.55:
            return Op("burn", (*key, 0), "poke")
        return Op("burn", (*key, rng.randint(1, liquidity - 1)), "part")

    def gen_collect(self) -> Op:
        rng = self.rng
        keys = self.positions(live=False)
        r = rng.random()
        if not keys or r < 0.08:
            lower, upper = self.pick_range()
            return Op("collect", (rng.choice(self.owners), lower, upper, MAX_UINT128, MAX_UINT128))
        key = rng.choice(keys)
        p = self.model.positions[key]
        if r < 0.55:
            return Op("collect", (*key, MAX_UINT128, MAX_UINT128), "all")
        if r < 0.85:
            return Op(
                "collect",
                (*key, rng.randint(0, p.tokens_owed0), rng.randint(0, p.tokens_owed1)),
                "part",
            )
        return Op("collect", (*key, *rng.choice(((0, MAX_UINT128), (MAX_UINT128, 0)))), "one side")

    def swap_amount(self, zero_for_one: bool, exact_in: bool) -> tuple[int, str]:
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return rng.randint(1, 10 ** rng.randint(0, 15)), "small"
        if r < 0.8:
            # the specified token's amount that moves the price by about 10**-k
            liquidity = max(self.model.liquidity, 1)
            sqrt_price = self.model.sqrt_price_x96
            token0 = zero_for_one == exact_in
            full = liquidity * Q96 // sqrt_price if token0 else liquidity * sqrt_price // Q96
            return max(1, full // 10 ** rng.randint(0, 6)), "sized"
        return 2 ** rng.randint(90, 180), "large"

    def swap_limit(self, zero_for_one: bool) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            return 0
        sqrt_price = self.model.sqrt_price_x96
        if r < 0.55:
            return sqrt_price - 1 if zero_for_one else sqrt_price + 1
        k = rng.choice((1, 3, 10, 100, 1000, 5000, 20_000, 100_000))
        tick = self.model.tick - k if zero_for_one else self.model.tick + k
        return get_sqrt_ratio_at_tick(min(max(tick, MIN_TICK), MAX_TICK))

    def gen_swap(self) -> Op:
        rng = self.rng
        # lean back towards the starting price so that the walk keeps meeting liquidity
        lean = (self.model.tick - self.start_tick) / (2000 * self.spacing)
        zero_for_one = rng.random() < 0.5 + max(-0.35, min(0.35, lean))
        exact_in = rng.random() < 0.6
        amount, size = self.swap_amount(zero_for_one, exact_in)
        limit = self.swap_limit(zero_for_one)
        return Op(
            "swap",
            (
                rng.choice(self.traders + self.owners),
                zero_for_one,
                amount if exact_in else -amount,
                limit,
            ),
            f"exact {'in' if exact_in else 'out'}, {size}",
        )

    def gen_grow(self) -> Op:
        current = self.model.slot0.observation_cardinality_next
        n = self.rng.randint(1, current) if current >= 48 else current + self.rng.randint(-2, 6)
        return Op("grow", (self.rng.choice(self.owners), max(n, 1)))

    def gen_fee_protocol(self) -> Op:
        valid = (0, 4, 5, 6, 7, 8, 9, 10)
        if self.rng.random() < 0.85:
            return Op("fee_protocol", (self.rng.choice(valid), self.rng.choice(valid)))
        return Op("fee_protocol", (self.rng.choice((1, 3, 11, 15)), self.rng.choice(valid)), "bad")

    def gen_invalid(self) -> Op:
        """An op that the contract refuses, each aimed at one revert."""
        rng, s = self.rng, self.spacing
        owner = rng.choice(self.owners)
        lower, upper = self.pick_range()
        amount = self.pick_liquidity()
        live = self.positions(live=True)
        sqrt_price = self.model.sqrt_price_x96
        kind = rng.choice(
            ("TLU", "TLM", "TUM", "spacing", "zero", "LO", "int128", "LS", "NP", "burn int128",
             "AS", "SPL")
        )  # fmt: skip
        if kind == "TLU":
            return Op("mint", (owner, upper, rng.choice((upper, lower)), amount), kind)
        if kind == "TLM":
            return Op("mint", (owner, self.aligned(MIN_TICK - 1), upper, amount), kind)
        if kind == "TUM":
            return Op("mint", (owner, lower, -(-(MAX_TICK + 1) // s) * s, amount), kind)
        if kind == "spacing" and s > 1:
            return Op("mint", (owner, lower + rng.randint(1, s - 1), upper, amount), kind)
        if kind == "zero":
            return Op("mint", (owner, lower, upper, 0), kind)
        if kind == "LO":
            return Op("mint", (owner, lower, upper, self.max_liquidity + 1), kind)
        if kind == "int128":
            return Op("mint", (owner, lower, upper, rng.randint(MAX_INT128 + 1, MAX_UINT128)), kind)
        if kind == "LS" and live:
            key = rng.choice(live)
            excess = rng.randint(1, 10**6)
            return Op("burn", (*key, self.model.positions[key].liquidity + excess), kind)
        if kind == "NP":
            return Op("burn", (owner, lower, upper, 0), kind)  # 'NP' unless that position is live
        if kind == "burn int128" and live:
            return Op("burn", (*rng.choice(live), rng.randint(MAX_INT128 + 1, MAX_UINT128)), kind)
        zero_for_one = rng.random() < 0.5
        if kind == "AS":
            return Op("swap", (owner, zero_for_one, 0, 0), kind)
        # 'SPL': the limit at or beyond the current price, or at the extreme ratio itself
        if zero_for_one:
            limit = rng.choice((sqrt_price, sqrt_price + rng.randint(1, 10**12), MIN_SQRT_RATIO))
        else:
            limit = rng.choice(
                (sqrt_price, max(1, sqrt_price - rng.randint(1, 10**12)), MAX_SQRT_RATIO)
            )
        return Op("swap", (owner, zero_for_one, rng.randint(1, 10**18), limit), "SPL")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("fee", "tick_spacing"), TIERS, ids=[f"fee{f}" for f, _ in TIERS])
def test_pool_matches_contract(chain: Devnet, fee: int, tick_spacing: int, seed: int) -> None:
    """Every step of a seeded random sequence gives identical results and state on both pools."""
    case = Case(chain, fee, tick_spacing, seed, OPS_PER_CASE)
    try:
        case.run()
    finally:
        case.rpc.close()
    s = case.stats
    print(
        f"fee {fee} seed {seed}: {case.n_ops} ops, max ticks crossed {case.max_crossed}, {dict(s)}"
    )
    if case.n_ops < 200:
        return
    # the generator reached what this test is for
    assert s["swap"] and s["mint"] and s["burn"] and s["collect"], s
    assert s["burn all"] and s["burn part"] and s["burn poke"], s
    assert s["oracle wrapped"] and s["observe 'OLD'"], s
    assert case.max_crossed >= 5, f"no swap crossed 5 initialized ticks: {s}"
    assert sum(v for k, v in s.items() if k.startswith("revert")) > 0, s
