"""Engine (a): exact event replay with the bot's own position inside the pool.

Every logged swap, mint, burn, collect and flash is applied to an ``lpbot.uniswap.Pool`` started
from the pool's real state (``replay.EventReplayer``; its docstring says how swaps are replayed
and how the bot's liquidity changes them). At each decision time (multiples of
``decision_interval_seconds``) the bot, first in the block of the next event, reads the pool as
the live reader would (``PoolSnapshot.from_pool`` with every initialized tick, its position, a
price history of per-``history_step_seconds`` closes over ``history_seconds``, the pool's fee
rate over ``fee_window_seconds``) and calls the same ``RebalancePolicy.decide`` the live bot
calls (skipped after a refused rebalance while nothing it depends on has changed,
``backtest.gate``). Its actions are real pool calls: ``burn`` and ``collect`` of the position,
the planned exact-input ``swap`` (its fee and price impact are exactly the pool's, and it moves
the price) and ``mint``. Its fees are what ``collect`` pays, to the wei.

With ``config.risk``, the market regime runs on the pool's minute bars (``bars_from_events``,
``backtest.risk.regime_path``: the same path as the bars engine's) and each change acts at its
time, before a decision due then, as in the bars engine: withdraw (``burn`` and ``collect``),
full range, re-entry, and the hedge the level asks for.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque

import numpy as np

from lpbot.analytics.fees import FeeRate
from lpbot.analytics.types import (
    PoolSnapshot,
    PositionSnapshot,
    PriceHistory,
    RawAmount,
    TokenAmounts,
)
from lpbot.analytics.value import position_amounts
from lpbot.analytics.volatility import ewma_volatility
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.events import EventKind
from lpbot.backtest.gate import Refusal, refusal, trigger_key
from lpbot.backtest.ledger import OWNER, Accountant, BacktestResult, SwapFill
from lpbot.backtest.replay import EventReplayer
from lpbot.backtest.risk import RegimePath, Transition, apply_hedge_actions, regime_path
from lpbot.backtest.synthetic import PerpSeries
from lpbot.errors import Halt, Refused
from lpbot.risk.actions import RegimeActions, policy_for
from lpbot.risk.regime import Level
from lpbot.strategy import (
    Compound,
    FullRange,
    Hold,
    MarketInputs,
    OpenPlan,
    Rebalance,
    RebalancePolicy,
    plan_open,
)
from lpbot.uniswap.constants import MOD_128, MOD_256, Q96, Q128
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.position import fees_owed
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick

log = logging.getLogger(__name__)

MAX_U128 = 2**128 - 1


def raw_price(sqrt_price_x96: int) -> float:
    """Raw token1 per raw token0 (float, analytics)."""
    root = sqrt_price_x96 / Q96
    return root * root


class _Bot:
    """The bot's position, wallet and decisions inside the replayed pool."""

    def __init__(
        self, config: BacktestConfig, dataset: Dataset, replayer: EventReplayer, acc: Accountant
    ) -> None:
        self.config = config
        self.meta = dataset.meta
        self.replayer = replayer
        self.acc = acc
        self.policy: RebalancePolicy = config.build_policy()
        self.range: tuple[int, int] | None = None
        self.liquidity = 0
        self.opened_at = 0
        self.wallet = (0, 0)
        self.decisions = 0
        self.hist_t: list[float] = []
        self.hist_p: list[float] = []
        self.growth: deque[tuple[int, int, int]] = deque()
        self.fr_growth0 = (0, 0)
        self.waiting_reason = ""
        self.refusal: Refusal | None = None
        self.skipped = 0
        # the market regime (``backtest.risk``), when the run has one
        self.regime: RegimePath | None = None
        self.level = Level.NORMAL
        self.regime_actions = RegimeActions()
        self.policies = {level: self.policy for level in Level}
        self.base_hedge = config.hedge_model()
        self.withdrawn = False
        self.widest = False
        self.regime_log: list[dict[str, object]] = []

    def use_regime(self, path: RegimePath, actions: RegimeActions) -> None:
        self.regime = path
        self.regime_actions = actions
        base = self.policies[Level.NORMAL]
        self.policies = {lv: policy_for(base, actions.for_level(lv)) for lv in Level}

    def regime_notes(self) -> dict[str, object]:
        if self.regime is None:
            return {}
        return {
            "regime": {
                "transitions": self.regime_log,
                "evaluations": self.regime.evaluations,
                "seconds_in": self.regime.seconds_in,
                "signals_unavailable": list(self.regime.unavailable),
                "withdrawals": sum(1 for a in self.acc.actions if a.kind == "withdraw"),
                "reentries": sum(1 for a in self.acc.actions if a.kind == "reenter"),
            }
        }

    def on_transition(self, transition: Transition) -> None:
        """Apply what the regime's new level asks for, as the bars engine does
        (``vector._Engine._on_transition``)."""
        level = transition.level
        now = transition.t
        self.level = level
        self.policy = self.policies[level]
        self.refusal = None
        why = "; ".join(transition.reasons) or "every signal calm for the minimum time"
        reason = f"regime {level.label}: {why}"
        if self.range is not None:
            if level is Level.STRESSED and not self.withdrawn and not self.widest:
                if self.regime_actions.stressed_action == "withdraw":
                    assert self.range is not None
                    rng = self.range
                    burned, fees = self._withdraw(self.liquidity)
                    self.acc.record_withdraw(
                        now=now, rng=rng, price_raw=raw_price(self.pool.sqrt_price_x96),
                        reason=reason, burned=burned, fees=fees,
                    )  # fmt: skip
                    self.replayer.bot_range = None
                    self.withdrawn = True
                else:
                    self.move(now, "rebalance", reason, widest=True)
            elif level is Level.NORMAL and (self.withdrawn or self.widest):
                self.move(now, "reenter" if self.withdrawn else "rebalance", reason, widest=False)
            held, owed = self.held_and_owed()
            held1 = held[1] + owed[1] if self.config.quote_token == 0 else held[0] + owed[0]
            decimals = self.meta.decimals1 if self.config.quote_token == 0 else self.meta.decimals0
            price = self.acc.volatile_usd(raw_price(self.pool.sqrt_price_x96))
            apply_hedge_actions(
                self.acc.hedge, self.base_hedge, self.regime_actions.for_level(level), price,
                held1 / 10.0**decimals,
            )  # fmt: skip
        self.regime_log.append({**transition.to_dict(), "hedge_size": self.acc.hedge.size})

    def move(self, now: int, kind: str, reason: str, *, widest: bool) -> None:
        """Take the position out (if any) and open the full range (``widest``) or the policy's
        range from the wallet; a plan that cannot be made leaves the bot out until the next
        decision."""
        pool = self.pool
        burned = fees = (0, 0)
        if self.liquidity > 0:
            burned, fees = self._withdraw(self.liquidity)
        snap = self.snapshot(now)
        history = self.history(now)
        price = raw_price(pool.sqrt_price_x96)
        try:
            if widest:
                target = FullRange().range_for(snap, history)
            else:
                market = self._market(now, price)
                target, _why = self.policy.choose_open_range(snap, history, market, *self.wallet)
            plan = plan_open(pool, target, *self.wallet)
        except ValueError as exc:
            self.waiting_reason = str(exc)
            if burned != (0, 0) or fees != (0, 0):
                assert self.range is not None
                self.acc.record_withdraw(
                    now=now, rng=self.range, price_raw=price, reason=reason,
                    burned=burned, fees=fees,
                )  # fmt: skip
            self.replayer.bot_range = None
            self.withdrawn, self.widest = True, False
            return
        self._execute(plan, now, kind, reason, burned=burned, fees=fees)
        self.withdrawn, self.widest = False, widest

    @property
    def pool(self) -> Pool:
        pool = self.replayer.pool
        if pool is None:
            raise Refused("the pool is not initialized at the backtest's start")
        return pool

    # -------------------------------------------------------------------------------- inputs

    def observe_price(self, t: int, price: float) -> None:
        step = self.config.history_step_seconds
        close = (t // step + 1) * step  # the close of the step the price belongs to
        if self.hist_t and self.hist_t[-1] == close:
            self.hist_p[-1] = price
        else:
            self.hist_t.append(close)
            self.hist_p.append(price)

    def history(self, now: int) -> PriceHistory:
        """Closes every ``history_step_seconds`` over ``history_seconds`` up to ``now``, each the
        last price observed before it (forward-filled: the bars engine sees the same grid)."""
        step = self.config.history_step_seconds
        t = np.asarray(self.hist_t)
        if t.size == 0:
            return PriceHistory([], [])
        first = max(now - self.config.history_seconds, int(t[0]))
        grid = np.arange(-(-first // step) * step, now + 1, step, dtype=np.float64)
        idx = np.searchsorted(t, grid, side="right") - 1
        keep = idx >= 0
        return PriceHistory(grid[keep], np.asarray(self.hist_p)[idx[keep]])

    def fee_rate(self, now: int) -> FeeRate:
        pool = self.pool
        g = self.growth
        g.append((now, pool.fee_growth_global0_x128, pool.fee_growth_global1_x128))
        while len(g) > 1 and g[1][0] <= now - self.config.fee_window_seconds:
            g.popleft()
        t0, a0, a1 = g[0]
        if now <= t0:
            return FeeRate(0.0, 0.0, 0.0)
        dt = now - t0
        return FeeRate(
            ((pool.fee_growth_global0_x128 - a0) % MOD_256) / Q128 / dt,
            ((pool.fee_growth_global1_x128 - a1) % MOD_256) / Q128 / dt,
            float(dt),
        )

    def snapshot(self, now: int) -> PoolSnapshot:
        return PoolSnapshot.from_pool(
            self.pool, decimals0=self.meta.decimals0, decimals1=self.meta.decimals1, timestamp=now
        )

    # ------------------------------------------------------------------------------- actions

    def _execute(
        self,
        plan: OpenPlan,
        now: int,
        kind: str,
        reason: str,
        *,
        burned: tuple[int, int],
        fees: tuple[int, int],
        kept: tuple[int, int] = (0, 0),
    ) -> None:
        """Swap and mint ``plan`` in the pool from the wallet, and record the flow (``burned``,
        ``fees``: out of the old position, or the deposit; ``kept``: a compound's principal)."""
        pool = self.pool
        price_before = raw_price(pool.sqrt_price_x96)
        w0, w1 = self.wallet
        swap = plan.swap
        fill = None
        if swap is not None:
            limit = MIN_SQRT_RATIO + 1 if swap.zero_for_one else MAX_SQRT_RATIO - 1
            r = pool.swap(swap.zero_for_one, swap.amount_in, limit)
            w0, w1 = w0 - r.amount0, w1 - r.amount1
            out = -(r.amount1 if swap.zero_for_one else r.amount0)
            paid = r.amount0 if swap.zero_for_one else r.amount1
            fill = SwapFill(swap.zero_for_one, paid, out, r.fee_amount)
        rng = plan.range
        after_swap = (w0, w1)
        m0, m1 = pool.mint(OWNER, rng.tick_lower, rng.tick_upper, plan.liquidity)
        w0, w1 = w0 - m0, w1 - m1
        if w0 < 0 or w1 < 0:
            raise Halt(f"the {kind} plan overspent the wallet: {w0}, {w1}")
        self.wallet = (w0, w1)
        if self.range != (rng.tick_lower, rng.tick_upper):
            self.range = (rng.tick_lower, rng.tick_upper)
            self.liquidity = 0
            self.opened_at = now
        self.liquidity += plan.liquidity
        self.replayer.bot_range = self.range
        self.replayer.in_history = False
        self.acc.record_open(
            now=now,
            kind=kind,
            rng=rng,
            plan=plan,
            price_raw=price_before,
            reason=reason,
            burned=burned,
            fees=fees,
            swap=fill,
            minted=(kept[0] + m0, kept[1] + m1),
            wallet=after_swap,
        )

    def _withdraw(self, amount: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Burn ``amount`` of the position and collect everything owed; return (principal
        burned, fees)."""
        assert self.range is not None
        lo, hi = self.range
        b0, b1 = self.pool.burn(OWNER, lo, hi, amount)
        c0, c1 = self.pool.collect(OWNER, lo, hi, MAX_U128, MAX_U128)
        self.wallet = (self.wallet[0] + c0, self.wallet[1] + c1)
        self.liquidity -= amount
        return (b0, b1), (c0 - b0, c1 - b1)

    def _market(self, now: int, price: float) -> MarketInputs:
        return self.acc.market(now, price, self.fee_rate(now))

    def decide(self, now: int) -> None:
        """One decision at ``now`` (the pool's own clock is the acting block's)."""
        pool = self.pool
        if self.withdrawn:  # out of the pool: re-enter once the regime is normal
            if self.level is Level.NORMAL:
                self.move(now, "reenter", "regime normal: re-entering", widest=False)
            return
        if self.range is None and self.level is Level.STRESSED:
            self.waiting_reason = "the market regime is stressed"
            return
        if self.range is None:
            self.decisions += 1
            snap = self.snapshot(now)
            history = self.history(now)
            price = raw_price(pool.sqrt_price_x96)
            amounts = self.acc.initial_amounts(price)
            try:
                market = self._market(now, price)
                target, _why = self.policy.choose_open_range(snap, history, market, *amounts)
                plan = plan_open(pool, target, *amounts)
            except ValueError as exc:
                self.waiting_reason = str(exc)
                return
            self.acc.start(price, pool.sqrt_price_x96, amounts, now)
            self.wallet = amounts
            self.fr_growth0 = (pool.fee_growth_global0_x128, pool.fee_growth_global1_x128)
            self._execute(plan, now, "open", "opening position", burned=amounts, fees=(0, 0))
            return
        price = raw_price(pool.sqrt_price_x96)
        market = self._market(now, price)
        history = self.history(now)
        if self.refusal is not None and self._still_refused(now, market, history):
            self.skipped += 1
            return
        self.decisions += 1
        snap = self.snapshot(now)
        lo, hi = self.range
        position = PositionSnapshot.from_pool(pool, OWNER, lo, hi, opened_at=self.opened_at)
        idle = TokenAmounts(*self.wallet)  # type: ignore[arg-type]
        decision = self.policy.decide(snap, position, history, market, idle=idle)
        self.refusal = None
        if isinstance(decision, Rebalance):
            burned, fees = self._withdraw(self.liquidity)
            self._execute(
                decision.plan, now, "rebalance", decision.reason, burned=burned, fees=fees
            )
        elif isinstance(decision, Compound) and decision.plan is not None:
            a = position_amounts(pool.sqrt_price_x96, lo, hi, self.liquidity)
            kept = (a.amount0, a.amount1)
            _none, fees = self._withdraw(0)
            self._execute(
                decision.plan, now, "compound", decision.reason, burned=kept, fees=fees, kept=kept
            )
        elif isinstance(decision, Hold) and decision.triggers:
            held, owed = self.held_and_owed()
            holdings = TokenAmounts(RawAmount(held[0] + owed[0]), RawAmount(held[1] + owed[1]))
            self.refusal = refusal(
                self.policy,
                self._trigger_key(now, history),
                snap,
                market,
                holdings,
                log_price=math.log(price),
                stay_lvr_usd=decision.ev_stay.lvr_usd if decision.ev_stay else 0.0,
            )

    def _trigger_key(self, now: int, history: PriceHistory) -> tuple[bool, ...]:
        """The triggers that fire now (``gate.trigger_key`` on the policy's own signals)."""
        assert self.range is not None
        pool, p = self.pool, self.policy
        lo, hi = self.range
        in_range = lo <= pool.tick < hi
        edge = 0.0
        if in_range and p.edge_pct is not None:
            sqrt_p = pool.sqrt_price_x96 / Q96
            pa = (get_sqrt_ratio_at_tick(lo) / Q96 / sqrt_p) ** 2
            pb = (get_sqrt_ratio_at_tick(hi) / Q96 / sqrt_p) ** 2
            edge = 100.0 * max(min(1.0 - pa, pb - 1.0), 0.0)
        ratio = math.nan
        if p.vol_ratio_trigger is not None and len(history) >= 2:
            short = ewma_volatility(history, p.vol_short_halflife_seconds)
            long = ewma_volatility(history, p.vol_long_halflife_seconds)
            ratio = short / long if long > 0 else math.nan
        return trigger_key(
            p, in_range=in_range, edge_pct=edge, age=now - self.opened_at, vol_ratio=ratio
        )

    def _still_refused(self, now: int, market: MarketInputs, history: PriceHistory) -> bool:
        """The last refusal holds and compounding is not due (``gate`` module docstring)."""
        assert self.refusal is not None and self.range is not None
        pool = self.pool
        lo, hi = self.range
        if lo <= pool.tick < hi:
            _held, owed = self.held_and_owed()
            u0, u1 = self.acc.unit_usd(raw_price(pool.sqrt_price_x96))
            fees_usd = owed[0] * u0 + owed[1] * u1
            if fees_usd > self.policy.compound_margin * market.compound_gas_usd:
                return False
        r = market.fee_rate
        d0, d1 = self.meta.decimals0, self.meta.decimals1
        rate = (
            r.token0_per_second / 10.0**d0 * market.token0_usd
            + r.token1_per_second / 10.0**d1 * market.token1_usd
        )
        return self.refusal.holds(
            self._trigger_key(now, history),
            rate,
            market.rebalance_gas_usd,
            math.log(raw_price(pool.sqrt_price_x96)),
        )

    # ------------------------------------------------------------------------------- samples

    def held_and_owed(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(principal + wallet, fees owed) as ``burn`` and ``collect`` would pay them now."""
        w0, w1 = self.wallet
        if self.range is None or self.liquidity == 0:
            return (w0, w1), (0, 0)
        lo, hi = self.range
        pool = self.pool
        principal = position_amounts(pool.sqrt_price_x96, lo, hi, self.liquidity)
        info = pool.position(OWNER, lo, hi)
        inside0, inside1 = pool.fee_growth_inside(lo, hi)
        new0, new1 = fees_owed(
            info.liquidity,
            inside0,
            inside1,
            info.fee_growth_inside0_last_x128,
            info.fee_growth_inside1_last_x128,
        )
        owed = ((info.tokens_owed0 + new0) % MOD_128, (info.tokens_owed1 + new1) % MOD_128)
        return (principal.amount0 + w0, principal.amount1 + w1), owed

    def sample(self, now: int) -> None:
        pool = self.pool
        held, owed = self.held_and_owed()
        g0 = (pool.fee_growth_global0_x128 - self.fr_growth0[0]) % MOD_256
        g1 = (pool.fee_growth_global1_x128 - self.fr_growth0[1]) % MOD_256
        fr_fees = (self.acc.fr_liquidity * g0 / Q128, self.acc.fr_liquidity * g1 / Q128)
        in_range = (
            self.range is not None
            and self.liquidity > 0
            and self.range[0] <= pool.tick < self.range[1]
        )
        self.acc.sample(
            now, raw_price(pool.sqrt_price_x96), pool.sqrt_price_x96, held, owed, fr_fees,
            self.range, in_range,
        )  # fmt: skip


def run_exact(
    dataset: Dataset, config: BacktestConfig, *, perp: PerpSeries | None = None
) -> BacktestResult:
    """Backtest ``config`` on ``dataset`` by exact event replay (module docstring); ``perp``:
    the perp market's data for the regime (``config.risk``), when there is one."""
    t_start = time.perf_counter()
    meta = dataset.meta
    config = config.resolve(
        symbol0=meta.symbol0, symbol1=meta.symbol1, sigma_per_sqrt_second=realised_sigma(dataset)
    )
    replayer = EventReplayer(dataset.start.to_pool(), meta.fee, meta.tick_spacing)
    acc = Accountant(
        config,
        decimals0=meta.decimals0,
        decimals1=meta.decimals1,
        tick_spacing=meta.tick_spacing,
        pool_info=_pool_info(dataset),
    )
    bot = _Bot(config, dataset, replayer, acc)
    interval = config.decision_interval_seconds
    transitions: tuple[Transition, ...] = ()
    risk = config.risk
    if risk is not None and risk.enabled:
        # the regime on the pool's minute bars, as the bars engine computes it (backtest.risk)
        from lpbot.backtest.bars import bars_from_events

        path = regime_path(
            bars_from_events(dataset, 60), risk.regime_config(),
            decision_interval_seconds=interval,
            stress_monitor_seconds=risk.stress_monitor_seconds,
            monitor_seconds=config.monitor_seconds, perp=perp,
            quote_token=config.quote_token if config.quote_token is not None else 1,
        )  # fmt: skip
        bot.use_regime(path, risk.actions())
        transitions = path.transitions
    k = 0
    start = (
        config.start_timestamp if config.start_timestamp is not None else dataset.first_timestamp
    )
    end = config.end_timestamp if config.end_timestamp is not None else dataset.last_timestamp
    next_decision = -(-start // interval) * interval
    timestamps = dataset.timestamps
    apply = replayer.apply
    in_range_seconds = 0.0
    live_seconds = 0.0
    last_t: int | None = None
    for event in dataset.events:
        t = timestamps[event.block_number]
        if t > end:
            break
        pool = replayer.pool
        if pool is not None:
            if bot.range is not None and last_t is not None and t > last_t:
                live_seconds += t - last_t
                if bot.liquidity > 0 and bot.range[0] <= pool.slot0.tick < bot.range[1]:
                    in_range_seconds += t - last_t
            while not acc.ruined:
                td = next_decision if next_decision <= end else math.inf
                tt = transitions[k].t if k < len(transitions) else math.inf
                if min(td, tt) > t or min(td, tt) > end:
                    break
                pool.block_timestamp = t  # the bot's transactions go first in this block
                if tt <= td:  # a regime change acts before a decision at the same time
                    bot.on_transition(transitions[k])
                    if bot.range is not None:
                        bot.sample(int(tt))
                    k += 1
                    continue
                bot.decide(next_decision)
                if bot.range is not None:
                    bot.sample(next_decision)
                next_decision += interval
        if acc.ruined:  # zero equity: nothing more is done (``Accountant``)
            break
        last_t = t
        apply(event, t)
        if event.kind is EventKind.SWAP and replayer.pool is not None:
            bot.observe_price(t, raw_price(replayer.pool.slot0.sqrt_price_x96))
    if replayer.pool is None or bot.range is None:
        raise Refused(
            "the bot never opened a position in this period"
            + (f": {bot.waiting_reason}" if bot.waiting_reason else "")
        )
    final_t = min(end, last_t if last_t is not None else end)
    if not acc.ruined and (not acc.rows or acc.rows[-1][0] < final_t):
        bot.sample(final_t)
    held, owed = bot.held_and_owed()
    principal = (held[0] - bot.wallet[0], held[1] - bot.wallet[1])
    stats = replayer.stats
    notes = {
        "events": stats.events,
        "swaps_exact_input": stats.swaps_exact_input,
        "swaps_price_limit": stats.swaps_price_limit,
        "swaps_price_target": stats.swaps_price_target,
        "replay_mismatches": stats.mismatches,
        "seconds": time.perf_counter() - t_start,
        "decide_calls": bot.decisions,
        "decisions_skipped_unchanged": bot.skipped,
        "defaults": config.sources,
        **bot.regime_notes(),
    }
    return acc.finish(
        "exact",
        final_principal=principal,
        final_wallet=bot.wallet,
        final_owed=owed,
        final_price_raw=raw_price(replayer.pool.sqrt_price_x96),
        time_in_range=in_range_seconds / live_seconds if live_seconds > 0 else 0.0,
        decisions=bot.decisions,
        notes=notes,
    )


def realised_sigma(dataset: Dataset) -> float:
    """The pool's realised volatility from swap to swap, per sqrt(second) (float)."""
    total = 0.0
    last: float | None = None
    first_t = last_t = 0
    for event in dataset.events:
        if event.kind is not EventKind.SWAP:
            continue
        ln_p = 2.0 * math.log(event.args[2] / Q96)
        t = dataset.timestamps[event.block_number]
        if last is None:
            first_t = t
        else:
            total += (ln_p - last) ** 2
        last, last_t = ln_p, t
    span = last_t - first_t
    return math.sqrt(total / span) if span > 0 else 0.0


def _pool_info(dataset: Dataset) -> dict[str, object]:
    m = dataset.meta
    return {
        "address": m.address,
        "chain_id": m.chain_id,
        "symbol0": m.symbol0,
        "symbol1": m.symbol1,
        "decimals0": m.decimals0,
        "decimals1": m.decimals1,
        "fee": m.fee,
        "tick_spacing": m.tick_spacing,
        "from_block": dataset.from_block,
        "to_block": dataset.to_block,
    }
