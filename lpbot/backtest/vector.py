"""Engine (b): a fast vectorised backtest on price bars, for parameter sweeps.

Between two decisions the bot's position is fixed, so its fees and value over the bars in
between are numpy expressions (float64, analytics):

- fees: bar ``i`` pays the position ``fee_i * f_i * L / (L_i + L)`` of each token, where
  ``fee_i`` is what the bar's swaps paid liquidity providers, ``L_i`` the pool's in-range
  liquidity, ``L`` the position's and ``f_i`` the share of the bar's price span (low..high, in
  log-price) inside the range (a flat bar counts 1 when its close is inside). This is the
  contract's rule (fees are shared by in-range liquidity) with the bar's liquidity taken as
  constant across its span and the swaps' volume as history's (the bot's liquidity does not add
  volume; engine (a) lets it).
- value: the position's principal at the bar's close, exact-int at each sample.

Decisions happen at the same times as in engine (a): multiples of ``decision_interval_seconds``
(a bar end). ``RebalancePolicy.decide`` itself is called only where a cheap vectorised gate says a
trigger may fire or compounding may pay: out of range, within ``edge_pct`` of an edge, older
than ``max_age_seconds``, a volatility ratio within 10% of ``vol_ratio_trigger`` (EWMA over all
bars so far, recursively), or fees owed above the compounding threshold (edge and fees are the
numbers ``decide`` computes, up to float rounding: a margin of 1e-6). After a refused
rebalance, decisions are skipped while nothing it depends on has changed (``backtest.gate``).
Elsewhere ``decide`` would hold. The snapshot it sees is synthetic: the bar's close as the
price, the bar's liquidity plus the position's as the in-range liquidity, and the position's two
ticks; plans are quoted against that constant-liquidity pool, so a rebalancing swap's fee and
price impact are estimated from the in-range liquidity. The price then follows the bars (the
bot's impact is taken back by the market, as in engine (a)).

With ``config.risk``, the market regime's path (``backtest.risk.regime_path``) is computed
first; each of its changes is a decision point too, where the level's actions are applied
(``lpbot.risk.actions``): the policy decides with the level's widened strategy, stressed
withdraws to the wallet (no fees, no decisions while out) or moves to the full range, the
hedge follows the level, and the position re-enters when the regime is normal again.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
from numpy.typing import NDArray

from lpbot.analytics.fees import FeeRate
from lpbot.analytics.types import (
    FloatArray,
    Liquidity,
    PoolSnapshot,
    PositionSnapshot,
    PriceHistory,
    RawAmount,
    SqrtPriceX96,
    Tick,
    TickSnapshot,
    TokenAmounts,
)
from lpbot.backtest.bars import Bars
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.gate import MARGIN, Refusal, refusal
from lpbot.backtest.ledger import OWNER, Accountant, BacktestResult, SwapFill
from lpbot.backtest.risk import RegimePath, Transition, apply_hedge_actions, regime_path
from lpbot.backtest.synthetic import PerpSeries
from lpbot.errors import ConfigError, Halt, Refused
from lpbot.risk.actions import RegimeActions, policy_for
from lpbot.risk.regime import Level
from lpbot.strategy import (
    Compound,
    FullRange,
    Hold,
    MarketInputs,
    OpenPlan,
    Rebalance,
    plan_open,
)
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.position import PositionInfo
from lpbot.uniswap.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
)

GATE_MARGIN = 0.10  # the volatility ratio: the engine's EWMA is not the policy's
EXACT_MARGIN = 1e-6  # edge distance and compounding: the same numbers decide() computes
LOG_TICK = math.log(1.0001)
_MAX_BLOCK_HALFLIVES = 400.0


def ewma_sum(t: FloatArray, x: FloatArray, halflife: float) -> FloatArray:
    """``S_n = sum_{i <= n} 2**(-(t_n - t_i) / halflife) * x_i`` for every ``n``, vectorised.

    Computed in blocks spanning at most 400 half-lives, rescaled at each block's start so that
    the exponentials stay within float64's range.
    """
    out = np.empty_like(x)
    n = x.size
    start = 0
    carry = 0.0
    carry_t = t[0] if n else 0.0
    span = _MAX_BLOCK_HALFLIVES * halflife
    while start < n:
        end = int(np.searchsorted(t, t[start] + span, side="right"))
        end = max(end, start + 1)
        tb = t[start:end]
        rel = (tb - tb[0]) / halflife
        grow = np.exp2(rel)
        acc = np.cumsum(x[start:end] * grow)
        acc += carry * 2.0 ** (-(tb[0] - carry_t) / halflife)
        out[start:end] = acc / grow
        carry = float(out[end - 1])
        carry_t = float(tb[-1])
        start = end
    return out


def _overlap(
    low: FloatArray, high: FloatArray, flat: NDArray[np.bool_], a: float, b: float
) -> FloatArray:
    """Share of each bar's log-price span ``[low, high]`` inside ``[a, b)`` (log-prices);
    ``flat``: whether the close is in range, for bars that did not move."""
    width = high - low
    inside = np.clip(np.minimum(high, b) - np.maximum(low, a), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac: FloatArray = np.where(width > 1e-12, inside / width, flat.astype(np.float64))
    return frac


def _sqrt_price(price: float) -> int:
    s = int(math.sqrt(price) * Q96)
    return min(max(s, MIN_SQRT_RATIO), MAX_SQRT_RATIO - 1)


_sqrt_at = functools.lru_cache(maxsize=1 << 16)(get_sqrt_ratio_at_tick)


def sqrt_price_in_tick(price: float, tick: int) -> int:
    """The sqrt price of ``price`` kept inside ``tick`` (the float's rounding can leave it one
    tick off, below or above)."""
    low = _sqrt_at(tick)
    high = _sqrt_at(tick + 1) - 1 if tick < MAX_TICK else MAX_SQRT_RATIO - 1
    return min(max(_sqrt_price(price), low), high)


def close_ticks(bars: Bars) -> NDArray[np.int64]:
    """Each bar's close tick: the source's when it gave one, else from the close price."""
    if bars.tick is not None:
        return bars.tick
    ticks = np.floor(np.log(bars.close) / LOG_TICK).astype(np.int64)
    return np.clip(ticks, MIN_TICK, MAX_TICK - 1)


class _Engine:
    def __init__(self, bars: Bars, config: BacktestConfig, perp: PerpSeries | None = None) -> None:
        self.b = bars
        self.config = config
        self.policy = config.build_policy()
        # the market regime (``backtest.risk``): its path, and the policy each level decides with
        self.regime: RegimePath | None = None
        self.regime_actions = RegimeActions()
        self.policies = {level: self.policy for level in Level}
        self.withdrawn = False  # the stressed regime took the liquidity out to tokens
        self.widest = False  # the stressed regime moved it to the full range
        self.regime_log: list[dict[str, object]] = []
        risk = config.risk
        if risk is not None and risk.enabled:
            self.regime = regime_path(
                bars,
                risk.regime_config(),
                decision_interval_seconds=config.decision_interval_seconds,
                stress_monitor_seconds=risk.stress_monitor_seconds,
                monitor_seconds=config.monitor_seconds,
                perp=perp,
                quote_token=config.quote_token if config.quote_token is not None else 1,
            )
            self.regime_actions = risk.actions()
            self.policies = {
                level: policy_for(self.policy, self.regime_actions.for_level(level))
                for level in Level
            }
        self.base_hedge = config.hedge_model()  # the configured hedge, before any regime
        transitions = () if self.regime is None else self.regime.transitions
        self.transition_at: dict[int, Transition] = {t.bar: t for t in transitions}
        self.transition_bars = np.array(sorted(self.transition_at), dtype=np.int64)
        self.acc = Accountant(
            config,
            decimals0=bars.decimals0,
            decimals1=bars.decimals1,
            tick_spacing=bars.tick_spacing,
            pool_info={**bars.info(), "bars": len(bars)},
        )
        n = len(bars)
        self.n = n
        self.end_t = bars.end.astype(np.float64)
        self.ln_close = np.log(bars.close)
        self.tick = close_ticks(bars)
        self.ln_low = np.log(np.minimum(bars.low, bars.close))
        self.ln_high = np.log(np.maximum(bars.high, bars.close))
        liq = np.maximum(bars.liquidity, 1.0)
        self.liq = liq
        self.growth0 = np.concatenate(([0.0], np.cumsum(bars.fee0 / liq)))
        self.growth1 = np.concatenate(([0.0], np.cumsum(bars.fee1 / liq)))
        self.vol_ratio = self._vol_ratio()
        step = config.history_step_seconds
        ends = bars.end
        self.hist_idx = np.flatnonzero(ends % step == 0) if step > bars.interval else np.arange(n)
        self.hist_end = self.end_t[self.hist_idx]
        self.hist_close = bars.close[self.hist_idx]
        self.refusal: Refusal | None = None
        self.skipped = 0
        self.range: tuple[int, int] | None = None
        self.liquidity = 0
        self.opened_at = 0
        self.wallet = (0, 0)
        self.owed = [0.0, 0.0]
        self.decisions = 0
        self.in_range_seconds = 0.0
        self.live_seconds = 0.0
        self.fr_fees = np.zeros((2, n + 1))
        self.fr_origin = 0
        self.waiting_reason = ""
        self.ruin_bar: int | None = None  # the bar where the value fell to zero or below

    # ------------------------------------------------------------------------------ helpers

    def _vol_ratio(self) -> FloatArray:
        p = self.policy
        if p.vol_ratio_trigger is None or self.n < 3:
            return np.full(self.n, np.nan)
        r = np.diff(self.ln_close, prepend=self.ln_close[0])
        dt = np.full(self.n, float(self.b.interval))
        t = self.end_t
        short = ewma_sum(t, r * r, p.vol_short_halflife_seconds) / ewma_sum(
            t, dt, p.vol_short_halflife_seconds
        )
        long = ewma_sum(t, r * r, p.vol_long_halflife_seconds) / ewma_sum(
            t, dt, p.vol_long_halflife_seconds
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio: FloatArray = np.sqrt(short / long)
        return ratio

    def _history(self, j: int) -> PriceHistory:
        """Closes at multiples of ``history_step_seconds`` over ``history_seconds`` up to bar
        ``j`` (every bar when the bars are coarser), and bar ``j``'s own close."""
        now = self.end_t[j]
        lo = int(np.searchsorted(self.hist_end, now - self.config.history_seconds, "left"))
        hi = int(np.searchsorted(self.hist_idx, j, side="left"))
        t = np.append(self.hist_end[lo:hi], now)
        p = np.append(self.hist_close[lo:hi], self.b.close[j])
        return PriceHistory(t, p)

    def _fee_rate(self, j: int) -> FeeRate:
        now = self.end_t[j]
        lo = int(np.searchsorted(self.end_t, now - self.config.fee_window_seconds, side="left"))
        seconds = float(now - (self.end_t[lo] - self.b.interval))
        g0 = self.growth0[j + 1] - self.growth0[lo]
        g1 = self.growth1[j + 1] - self.growth1[lo]
        return FeeRate(max(g0, 0.0) / seconds, max(g1, 0.0) / seconds, seconds)

    def _snapshot(self, j: int) -> tuple[PoolSnapshot, int, int]:
        price = float(self.b.close[j])
        tick = int(self.tick[j])
        sqrt = sqrt_price_in_tick(price, tick)
        liq = int(self.b.liquidity[j])
        ticks: tuple[TickSnapshot, ...] = ()
        if self.range is not None and self.liquidity > 0:
            lo, hi = self.range
            if lo <= tick < hi:
                liq += self.liquidity
            ticks = (
                TickSnapshot(Tick(lo), Liquidity(self.liquidity), self.liquidity),
                TickSnapshot(Tick(hi), Liquidity(self.liquidity), -self.liquidity),
            )
        snap = PoolSnapshot(
            sqrt_price_x96=SqrtPriceX96(sqrt),
            tick=Tick(tick),
            liquidity=Liquidity(liq),
            fee=self.b.fee,
            tick_spacing=self.b.tick_spacing,
            fee_growth_global0_x128=0,  # type: ignore[arg-type]
            fee_growth_global1_x128=0,  # type: ignore[arg-type]
            decimals0=self.b.decimals0,
            decimals1=self.b.decimals1,
            timestamp=int(self.end_t[j]),
            ticks=ticks,
        )
        return snap, sqrt, tick

    # ------------------------------------------------------------------------------ actions

    def _execute(
        self,
        plan: OpenPlan,
        now: int,
        price: float,
        kind: str,
        reason: str,
        *,
        burned: tuple[int, int],
        fees: tuple[int, int],
        kept: tuple[int, int] = (0, 0),
    ) -> None:
        """Swap and add ``plan``'s liquidity from the wallet, and record the flow: ``burned``
        and ``fees`` came out of the old position (the deposit, for the opening), ``kept`` is
        the principal a compound leaves in place."""
        w0, w1 = self.wallet
        swap = plan.swap
        fill = None
        if swap is not None:
            if swap.zero_for_one:
                w0, w1 = w0 - swap.amount_in, w1 + swap.expected_out
            else:
                w0, w1 = w0 + swap.expected_out, w1 - swap.amount_in
            fill = SwapFill(swap.zero_for_one, swap.amount_in, swap.expected_out, swap.fee_amount)
        after_swap = (w0, w1)
        w0, w1 = w0 - plan.amount0, w1 - plan.amount1
        if w0 < 0 or w1 < 0:
            raise Halt(f"the {kind} plan overspent the wallet: {w0}, {w1}")
        self.wallet = (w0, w1)
        rng = plan.range
        if self.range != (rng.tick_lower, rng.tick_upper):
            self.range = (rng.tick_lower, rng.tick_upper)
            self.liquidity = 0
            self.opened_at = now
        self.liquidity += plan.liquidity
        self.acc.record_open(
            now=now,
            kind=kind,
            rng=rng,
            plan=plan,
            price_raw=price,
            reason=reason,
            burned=burned,
            fees=fees,
            swap=fill,
            minted=(kept[0] + plan.amount0, kept[1] + plan.amount1),
            wallet=after_swap,
        )

    def _collect(self, snap: PoolSnapshot, burn: bool) -> tuple[tuple[int, int], tuple[int, int]]:
        """Burn the position (``burn``) and collect: principal as the pool pays it, fees owed;
        return (principal, fees)."""
        assert self.range is not None
        o0, o1 = int(self.owed[0]), int(self.owed[1])
        self.owed = [0.0, 0.0]
        p0 = p1 = 0
        if burn and self.liquidity > 0:
            lo, hi = self.range
            pool = snap.to_pool(positions={(OWNER, lo, hi): PositionInfo(self.liquidity)})
            p0, p1 = pool.burn(OWNER, lo, hi, self.liquidity)
            self.liquidity = 0
        self.wallet = (self.wallet[0] + p0 + o0, self.wallet[1] + p1 + o1)
        return (p0, p1), (o0, o1)

    def _market(self, j: int, now: int, price: float) -> MarketInputs:
        return self.acc.market(now, price, self._fee_rate(j))

    def _decide(self, j: int) -> None:
        if self.regime is not None:
            level = self.regime.at(j)
            self.policy = self.policies[level]
            if self.range is None and level is Level.STRESSED:
                self.waiting_reason = "the market regime is stressed"
                return
        self.decisions += 1
        now = int(self.end_t[j])
        price = float(self.b.close[j])
        snap, sqrt, _tick = self._snapshot(j)
        history = self._history(j)
        if self.range is None:
            amounts = self.acc.initial_amounts(price)
            try:
                market = self._market(j, now, price)
                target, _why = self.policy.choose_open_range(snap, history, market, *amounts)
                plan = plan_open(snap, target, *amounts)
            except ValueError as exc:
                self.waiting_reason = str(exc)
                return
            self.acc.start(price, sqrt, amounts, now)
            self.wallet = amounts
            self.fr_origin = j
            self._execute(plan, now, price, "open", "opening position", burned=amounts, fees=(0, 0))
            return
        lo, hi = self.range
        market = self._market(j, now, price)
        position = PositionSnapshot(
            tick_lower=Tick(lo),
            tick_upper=Tick(hi),
            liquidity=Liquidity(self.liquidity),
            tokens_owed0=RawAmount(int(self.owed[0])),
            tokens_owed1=RawAmount(int(self.owed[1])),
            opened_at=self.opened_at,
        )
        idle = TokenAmounts(RawAmount(self.wallet[0]), RawAmount(self.wallet[1]))
        decision = self.policy.decide(snap, position, history, market, idle=idle)
        self.refusal = None
        if isinstance(decision, Rebalance):
            burned, fees = self._collect(snap, burn=True)
            self._execute(
                decision.plan, now, price, "rebalance", decision.reason, burned=burned, fees=fees
            )
        elif isinstance(decision, Compound) and decision.plan is not None:
            from lpbot.analytics.value import position_amounts

            a = position_amounts(sqrt, lo, hi, self.liquidity)
            kept = (a.amount0, a.amount1)
            _none, fees = self._collect(snap, burn=False)
            self._execute(
                decision.plan, now, price, "compound", decision.reason,
                burned=kept, fees=fees, kept=kept,
            )  # fmt: skip
        elif isinstance(decision, Hold) and decision.triggers:
            from lpbot.analytics.value import position_amounts

            key = tuple(bool(k) for k in self._trigger_keys(np.array([j]))[0])
            principal = position_amounts(sqrt, lo, hi, self.liquidity)
            holdings = TokenAmounts(
                RawAmount(principal.amount0 + int(self.owed[0]) + self.wallet[0]),
                RawAmount(principal.amount1 + int(self.owed[1]) + self.wallet[1]),
            )
            self.refusal = refusal(
                self.policy, key, snap, market, holdings, log_price=float(self.ln_close[j]),
                stay_lvr_usd=decision.ev_stay.lvr_usd if decision.ev_stay else 0.0,
            )  # fmt: skip

    # ------------------------------------------------------------------------ the regime

    def _on_transition(self, j: int, transition: Transition) -> None:
        """Apply what the regime's new level asks for (``lpbot.risk.actions``): stressed
        withdraws (or moves to the full range), back to normal re-enters; elevated only widens
        the next range (the level's policy, ``policy_for``)."""
        level = transition.level
        self.policy = self.policies[level]
        self.refusal = None
        why = "; ".join(transition.reasons) or "every signal calm for the minimum time"
        reason = f"regime {level.label}: {why}"
        if self.range is not None:
            if level is Level.STRESSED and not self.withdrawn and not self.widest:
                if self.regime_actions.stressed_action == "withdraw":
                    self._withdraw(j, reason)
                else:
                    self._move(j, "rebalance", reason, widest=True)
            elif level is Level.NORMAL and (self.withdrawn or self.widest):
                self._move(j, "reenter" if self.withdrawn else "rebalance", reason, widest=False)
            self._hedge_for(j, level)
        self.regime_log.append({**transition.to_dict(), "hedge_size": self.acc.hedge.size})

    def _hedge_for(self, j: int, level: Level) -> None:
        """The hedge a level asks for (``lpbot.risk.actions``): the band times the level's
        factor; stressed flattens the perp (and keeps it flat) or re-sizes it to the new delta
        at once; normal returns to the configured hedge."""
        price = self.acc.volatile_usd(float(self.b.close[j]))
        acts = self.regime_actions.for_level(level)
        apply_hedge_actions(self.acc.hedge, self.base_hedge, acts, price, self._exposure(j))

    def _exposure(self, j: int) -> float:
        """The volatile tokens held now (position, fees owed and wallet), whole tokens."""
        from lpbot.analytics.value import position_amounts

        held0 = self.wallet[0] + int(self.owed[0])
        held1 = self.wallet[1] + int(self.owed[1])
        if self.range is not None and self.liquidity > 0:
            sqrt = sqrt_price_in_tick(float(self.b.close[j]), int(self.tick[j]))
            a = position_amounts(sqrt, self.range[0], self.range[1], self.liquidity)
            held0, held1 = held0 + a.amount0, held1 + a.amount1
        if self.config.quote_token == 1:
            return held0 / 10.0**self.b.decimals0
        return held1 / 10.0**self.b.decimals1

    def _withdraw(self, j: int, reason: str) -> None:
        """Burn the position and collect everything to the wallet."""
        assert self.range is not None
        snap, _sqrt, _tick = self._snapshot(j)
        burned, fees = self._collect(snap, burn=True)
        self.acc.record_withdraw(
            now=int(self.end_t[j]), rng=self.range, price_raw=float(self.b.close[j]),
            reason=reason, burned=burned, fees=fees,
        )  # fmt: skip
        self.withdrawn = True

    def _move(self, j: int, kind: str, reason: str, *, widest: bool) -> None:
        """Take the position out (if any) and open the full range (``widest``) or the
        policy's range from the wallet; on a plan that cannot be made, stay out and retry at
        the next decision."""
        now = int(self.end_t[j])
        price = float(self.b.close[j])
        burned = fees = (0, 0)
        if self.liquidity > 0 or self.owed != [0.0, 0.0]:
            snap, _sqrt, _tick = self._snapshot(j)
            burned, fees = self._collect(snap, burn=True)
        snap, _sqrt, _tick = self._snapshot(j)
        history = self._history(j)
        try:
            if widest:
                target = FullRange().range_for(snap, history)
            else:
                market = self._market(j, now, price)
                target, _why = self.policy.choose_open_range(snap, history, market, *self.wallet)
            plan = plan_open(snap, target, *self.wallet)
        except ValueError as exc:
            self.waiting_reason = str(exc)
            if burned != (0, 0) or fees != (0, 0):
                assert self.range is not None
                self.acc.record_withdraw(
                    now=now, rng=self.range, price_raw=price, reason=reason,
                    burned=burned, fees=fees,
                )  # fmt: skip
            self.withdrawn = True
            self.widest = False
            return
        self._execute(plan, now, price, kind, reason, burned=burned, fees=fees)
        self.withdrawn = False
        self.widest = widest

    def _unit_usd(self, price: FloatArray) -> tuple[FloatArray, FloatArray]:
        """USD per raw unit of token0 and token1 at raw prices (``Accountant.unit_usd``)."""
        b, q = self.b, self.config.quote_usd
        whole = price * 10.0 ** (b.decimals0 - b.decimals1)
        if self.config.quote_token == 1:
            return whole * q / 10.0**b.decimals0, np.full_like(whole, q / 10.0**b.decimals1)
        return np.full_like(whole, q / 10.0**b.decimals0), q / whole / 10.0**b.decimals1

    def _gas_usd(self, action: str, j_idx: NDArray[np.int64]) -> FloatArray:
        gas = self.acc.gas
        units = gas.units_for(action, True)
        if gas.gas_price_series is None:
            gwei = np.full(j_idx.size, gas.price_gwei(0.0))
        else:
            gwei = np.array([gas.price_gwei(float(t)) for t in self.end_t[j_idx]])
        series = self.acc.native
        if series is not None:
            native = np.array([series.at(float(t)) for t in self.end_t[j_idx]])
        elif self.config.native_usd is not None:
            native = np.full(j_idx.size, self.config.native_usd)
        else:
            u0, u1 = self._unit_usd(self.b.close[j_idx])
            native = (
                u0 * 10.0**self.b.decimals0
                if self.config.quote_token == 1
                else u1 * 10.0**self.b.decimals1
            )
        cost: FloatArray = units * gwei * 1e-9 * native
        return cost

    def _trigger_keys(self, j_idx: NDArray[np.int64]) -> NDArray[np.bool_]:
        """The triggers that fire at each bar (``gate.trigger_key``, vectorised): rows of
        (out of range, near an edge, volatility regime, age)."""
        p = self.policy
        assert self.range is not None
        lo, hi = self.range
        ticks = self.tick[j_idx]
        in_range = (ticks >= lo) & (ticks < hi)
        ln_p = self.ln_close[j_idx]
        keys = np.zeros((j_idx.size, 4), dtype=bool)
        keys[:, 0] = ~in_range
        if p.edge_pct is not None:
            a, b = lo * LOG_TICK, hi * LOG_TICK
            edge = 100.0 * np.minimum(1.0 - np.exp(a - ln_p), np.exp(b - ln_p) - 1.0)
            keys[:, 1] = in_range & (edge < p.edge_pct)
        if p.vol_ratio_trigger is not None:
            r = self.vol_ratio[j_idx]
            k = p.vol_ratio_trigger
            with np.errstate(invalid="ignore"):
                keys[:, 2] = np.isfinite(r) & ((r > k) | (r < 1.0 / k))
        if p.max_age_seconds is not None:
            keys[:, 3] = (self.end_t[j_idx] - self.opened_at) > p.max_age_seconds
        return keys

    def _fee_rate_usd(self, j_idx: NDArray[np.int64]) -> FloatArray:
        """The pool's fees per unit of in-range liquidity over the fee window, USD a second
        (``_fee_rate`` valued at each bar's close)."""
        now = self.end_t[j_idx]
        lo = np.searchsorted(self.end_t, now - self.config.fee_window_seconds, side="left")
        seconds = now - (self.end_t[lo] - self.b.interval)
        g0 = np.maximum(self.growth0[j_idx + 1] - self.growth0[lo], 0.0)
        g1 = np.maximum(self.growth1[j_idx + 1] - self.growth1[lo], 0.0)
        u0, u1 = self._unit_usd(self.b.close[j_idx])
        rate: FloatArray = (g0 * u0 + g1 * u1) / seconds
        return rate

    def _still_refused(
        self, j_idx: NDArray[np.int64], compound: NDArray[np.bool_]
    ) -> NDArray[np.bool_]:
        """Decision bars where the last refusal still holds (``gate`` module docstring)."""
        r = self.refusal
        if r is None or j_idx.size == 0:
            return np.zeros(j_idx.size, dtype=bool)
        same = np.all(self._trigger_keys(j_idx) == np.array(r.key), axis=1)
        rate = self._fee_rate_usd(j_idx)
        gas = self._gas_usd("rebalance", j_idx)
        moved = np.abs(self.ln_close[j_idx] - r.log_price)
        still: NDArray[np.bool_] = (
            same
            & ~compound
            & (rate <= r.rate_usd * (1.0 + MARGIN))
            & (gas >= r.gas_usd * (1.0 - MARGIN))
            & (moved <= math.log1p(MARGIN))
        )
        return still

    # --------------------------------------------------------------------------- the sweep

    def _sample(self, j: int) -> None:
        from lpbot.analytics.value import position_amounts

        price = float(self.b.close[j])
        tick = int(self.tick[j])
        sqrt = sqrt_price_in_tick(price, tick)
        held = self.wallet
        in_range = False
        if self.range is not None and self.liquidity > 0:
            lo, hi = self.range
            a = position_amounts(sqrt, lo, hi, self.liquidity)
            held = (held[0] + a.amount0, held[1] + a.amount1)
            in_range = lo <= tick < hi
        fr = self.fr_fees[:, j + 1] - self.fr_fees[:, self.fr_origin + 1]
        self.acc.sample(
            float(self.end_t[j]), price, sqrt, held, (int(self.owed[0]), int(self.owed[1])),
            (float(fr[0]), float(fr[1])), self.range, in_range,
        )  # fmt: skip

    def _gates(
        self, j_idx: NDArray[np.int64], fees_usd: FloatArray
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Which decision bars may trigger (module docstring), and which may compound."""
        p = self.policy
        assert self.range is not None
        lo, hi = self.range
        ln_p = self.ln_close[j_idx]
        ticks = self.tick[j_idx]
        a, b = lo * LOG_TICK, hi * LOG_TICK
        in_range = (ticks >= lo) & (ticks < hi)
        fire = ~in_range
        if p.edge_pct is not None:
            edge = 100.0 * np.minimum(1.0 - np.exp(a - ln_p), np.exp(b - ln_p) - 1.0)
            fire |= edge < p.edge_pct * (1.0 + EXACT_MARGIN)
        if p.max_age_seconds is not None:
            fire |= (self.end_t[j_idx] - self.opened_at) > p.max_age_seconds
        if p.vol_ratio_trigger is not None:
            r = self.vol_ratio[j_idx]
            k = p.vol_ratio_trigger / (1.0 + GATE_MARGIN)
            with np.errstate(invalid="ignore"):
                fire |= (r > k) | (r < 1.0 / k)
        gas = self._gas_usd("compound", j_idx)
        compound = in_range & (fees_usd > p.compound_margin * gas * (1.0 - EXACT_MARGIN))
        return fire | compound, compound

    def run(self) -> BacktestResult:
        b = self.b
        interval = self.config.decision_interval_seconds
        if interval % b.interval:
            raise ConfigError(
                f"decision interval {interval} s is not a multiple of the bars' {b.interval} s"
            )
        # full-range benchmark fees: its liquidity share of every bar's fees (set at open)
        decision_bars = np.flatnonzero(b.end % interval == 0)
        k = 0
        # open at the first decision time where the strategy can choose a range
        while self.range is None and k < decision_bars.size:
            j = int(decision_bars[k])
            self._decide(j)
            k += 1
        if self.range is None:
            raise Refused(
                "the bot never opened a position in this period"
                + (f": {self.waiting_reason}" if self.waiting_reason else "")
            )
        lfr = float(self.acc.fr_liquidity)
        share = lfr / (b.liquidity + lfr)
        self.fr_fees[0, 1:] = np.cumsum(b.fee0 * share)
        self.fr_fees[1, 1:] = np.cumsum(b.fee1 * share)
        i = int(decision_bars[k - 1]) + 1  # first bar after the opening decision
        for early in self.regime.transitions if self.regime is not None else ():
            if early.bar < i:  # before the opening: nothing to act on, but on the record
                self.regime_log.append({**early.to_dict(), "hedge_size": 0.0})
        self._sample(i - 1)
        if self.acc.ruined:
            self.ruin_bar = i - 1
            i = self.n
        chunk = 1024
        while i < self.n:
            hi = min(self.n, i + chunk)
            lo_t, hi_t = self.range
            a, c = lo_t * LOG_TICK, hi_t * LOG_TICK
            flat = (self.tick[i:hi] >= lo_t) & (self.tick[i:hi] < hi_t)
            frac = _overlap(self.ln_low[i:hi], self.ln_high[i:hi], flat, a, c)
            if self.liquidity == 0:  # withdrawn: nothing in range
                frac = np.zeros_like(frac)
            pos_share = self.liquidity / (b.liquidity[i:hi] + self.liquidity)
            f0 = np.cumsum(b.fee0[i:hi] * frac * pos_share)
            f1 = np.cumsum(b.fee1[i:hi] * frac * pos_share)
            in_seg = decision_bars[(decision_bars >= i) & (decision_bars < hi)]
            fire_at = -1
            if in_seg.size and self.withdrawn:  # out of the pool: retry a failed re-entry
                if self.regime is not None and self.regime.at(int(in_seg[0])) is Level.NORMAL:
                    fire_at = int(in_seg[0])
            elif in_seg.size:
                rel = in_seg - i
                usd0, usd1 = self._unit_usd(b.close[in_seg])
                fees_usd = (self.owed[0] + f0[rel]) * usd0 + (self.owed[1] + f1[rel]) * usd1
                fire, compound = self._gates(in_seg, fees_usd)
                hits = np.flatnonzero(fire)
                if hits.size and self.refusal is not None:
                    still = self._still_refused(in_seg[hits], compound[hits])
                    first = int(np.argmin(still)) if not still.all() else still.size
                    self.skipped += first  # the rest are looked at again after the decision
                    hits = hits[~still]
                if hits.size:
                    fire_at = int(in_seg[hits[0]])
            policy_fire = fire_at
            tb = self.transition_bars
            tb = tb[(tb >= i) & (tb < hi)]
            if tb.size and (fire_at < 0 or tb[0] < fire_at):
                fire_at = int(tb[0])
            stop = fire_at if fire_at >= 0 else hi - 1
            m = stop - i  # the last bar accrued in this pass, relative to i
            self.in_range_seconds += float(np.sum(frac[: m + 1])) * b.interval
            self.live_seconds += (m + 1) * b.interval
            base0, base1 = self.owed
            for j in in_seg[in_seg < stop] if fire_at >= 0 else in_seg:
                rj = int(j) - i
                self.owed = [base0 + float(f0[rj]), base1 + float(f1[rj])]
                self._sample(int(j))
                if self.acc.ruined:  # zero equity: nothing more is done (``Accountant``)
                    self.ruin_bar = int(j)
                    break
            if self.ruin_bar is not None:
                break
            self.owed = [base0 + float(f0[m]), base1 + float(f1[m])]
            if fire_at >= 0:
                transition = self.transition_at.get(fire_at)
                if transition is not None:
                    self._on_transition(fire_at, transition)
                if self.withdrawn:  # a failed re-entry is retried at decisions while normal
                    normal = self.regime is not None and self.regime.at(fire_at) is Level.NORMAL
                    if fire_at == policy_fire and normal:
                        self._move(fire_at, "reenter", "regime normal: re-entering", widest=False)
                elif fire_at == policy_fire:
                    self._decide(fire_at)
                self._sample(fire_at)
                if self.acc.ruined:
                    self.ruin_bar = fire_at
                    break
                chunk = 1024
            else:
                chunk = min(chunk * 2, 1 << 20)
            i = stop + 1
        last = self.n - 1 if self.ruin_bar is None else self.ruin_bar
        if self.ruin_bar is None and self.acc.rows[-1][0] < self.end_t[last]:
            self._sample(last)
        principal = (0, 0)
        if self.liquidity > 0 and self.range is not None:
            from lpbot.analytics.value import position_amounts

            sqrt_last = sqrt_price_in_tick(float(b.close[last]), int(self.tick[last]))
            a_ = position_amounts(sqrt_last, self.range[0], self.range[1], self.liquidity)
            principal = (a_.amount0, a_.amount1)
        return self.acc.finish(
            "bars",
            final_principal=principal,
            final_wallet=self.wallet,
            final_owed=(int(self.owed[0]), int(self.owed[1])),
            final_price_raw=float(b.close[last]),
            time_in_range=self.in_range_seconds / self.live_seconds if self.live_seconds else 0.0,
            decisions=self.decisions,
            notes={
                "bars": self.n,
                "bar_interval": b.interval,
                "decisions_skipped_unchanged": self.skipped,
                **self._regime_notes(),
            },
        )

    def _regime_notes(self) -> dict[str, object]:
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


def run_bars(
    bars: Bars, config: BacktestConfig, *, perp: PerpSeries | None = None
) -> BacktestResult:
    """Backtest ``config`` on ``bars`` with the vectorised engine (module docstring);
    ``perp``: the perp market's data for the regime (``config.risk``), when there is one."""
    t0 = time.perf_counter()
    window = bars.between(config.start_timestamp, config.end_timestamp)
    if len(window) < 2:
        raise Refused("fewer than two bars in the chosen period")
    ln_close = np.log(window.close)
    span = float(window.end[-1] - window.ts[0])
    sigma = math.sqrt(float(np.sum(np.diff(ln_close) ** 2)) / span) if span > 0 else 0.0
    config = config.resolve(
        symbol0=window.symbol0, symbol1=window.symbol1, sigma_per_sqrt_second=sigma
    )
    result = _Engine(window, config, perp).run()
    from lpbot.backtest.validate import position_share

    result.notes["position_share"] = position_share(result, window)
    result.notes["seconds"] = time.perf_counter() - t0
    result.notes["defaults"] = config.sources
    return result
