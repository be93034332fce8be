"""The bookkeeping both engines share: what the bot holds, what it paid, what it earned.

Token amounts are raw ints while they move; values are USD floats (analytics). The breakdown is
an identity over the run, with ``hold`` the initial tokens held and ``F`` every fee earned (the
collected ones and those owed at the end), all valued at the final prices:

    price            = hold(end) - initial value            (the tokens' own move)
    impermanent_loss = LP tokens(end) - F - hold(end)       (incl. rebalancing and own swaps)
    fees             = F
    hedge, funding, hedge fees, gas, slippage as accrued
    total            = final value - initial value = the sum of the above

``swap_fees`` and ``price_impact`` (what the bot's own rebalancing swaps paid the pool) are shown
for information; they are inside ``impermanent_loss``. Benchmarks start with the same capital:
holding the initial tokens, a 50/50 split held, all in the volatile token, and a passive
full-range position (50/50, minted once, its fees those of a position of its liquidity that
never moves: ``L x fee growth`` in the exact engine, its liquidity share of the bars' fees in the
bars engine).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lpbot.analytics.types import FloatArray
from lpbot.analytics.value import position_amounts
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.costs import GasModel, HedgeBook
from lpbot.backtest.metrics import SECONDS_PER_YEAR, max_drawdown, sharpe_sortino
from lpbot.errors import Refused
from lpbot.strategy.base import Range, max_usable_tick, min_usable_tick
from lpbot.strategy.open import OpenPlan
from lpbot.uniswap.liquidity_amounts import get_liquidity_for_amounts
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

OWNER = "lpbot-backtest"


@dataclass(frozen=True, slots=True)
class Action:
    """One thing the bot did: open, rebalance or compound (raw amounts, USD costs)."""

    timestamp: int
    kind: str
    tick_lower: int
    tick_upper: int
    liquidity: int
    swap_zero_for_one: bool | None
    swap_amount_in: int
    swap_fee_usd: float
    price_impact_usd: float
    slippage_usd: float
    gas_usd: float
    reason: str
    amount0: int = 0  # raw amounts the plan put into the position
    amount1: int = 0


@dataclass(frozen=True)
class Series:
    """Samples at decision times (and the end). Prices are whole token1 per token0; USD values."""

    t: FloatArray
    price: FloatArray
    lower: FloatArray
    upper: FloatArray
    value: FloatArray
    lp: FloatArray
    hold: FloatArray
    fifty: FloatArray
    volatile: FloatArray
    full_range: FloatArray
    fees: FloatArray
    gas: FloatArray
    hedge: FloatArray
    in_range: FloatArray


@dataclass(frozen=True)
class Breakdown:
    initial_usd: float
    final_usd: float
    price: float
    impermanent_loss: float
    fees: float
    hedge_pnl: float
    funding: float
    hedge_fees: float
    gas: float
    slippage: float
    swap_fees: float
    price_impact: float
    fees0_raw: int
    fees1_raw: int

    @property
    def total(self) -> float:
        return (
            self.price
            + self.impermanent_loss
            + self.fees
            + self.hedge_pnl
            + self.funding
            - self.hedge_fees
            - self.gas
            - self.slippage
        )


@dataclass(frozen=True)
class Metrics:
    """``backtest.metrics`` says how each is computed. Returns are fractions of the capital."""

    days: float
    net_return: float
    apr: float
    max_drawdown: float
    sharpe: float | None
    sortino: float | None
    period_seconds: float  # what Sharpe and Sortino's returns are per
    time_in_range: float
    rebalances: int
    compounds: int
    decisions: int
    hold_return: float
    fifty_return: float
    volatile_return: float
    full_range_return: float  # net of its opening gas
    lp_vs_hold: float  # net_return - hold_return
    lp_vs_fifty: float
    lp_vs_full_range: float
    turnover: float  # the bot's swap notional / capital
    costs_usd: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BacktestResult:
    engine: str
    label: str
    pool: dict[str, Any]
    config: dict[str, Any]
    series: Series
    actions: tuple[Action, ...]
    breakdown: Breakdown
    metrics: Metrics
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: pool, config, metrics, breakdown, actions and notes (no series)."""
        b = asdict(self.breakdown)
        b["total"] = self.breakdown.total
        return {
            "engine": self.engine,
            "label": self.label,
            "pool": self.pool,
            "config": self.config,
            "metrics": asdict(self.metrics),
            "breakdown_usd": b,
            "actions": [asdict(a) for a in self.actions],
            "notes": self.notes,
        }


class Accountant:
    """Values, costs, benchmarks and the hedge for one run (module docstring)."""

    def __init__(
        self,
        config: BacktestConfig,
        *,
        decimals0: int,
        decimals1: int,
        tick_spacing: int,
        pool_info: dict[str, Any],
    ) -> None:
        self.config = config
        self.d0, self.d1 = decimals0, decimals1
        self.spacing = tick_spacing
        self.pool_info = pool_info
        self.gas: GasModel = config.gas_model()
        self.hedge = HedgeBook(config.hedge_model())
        self.native = config.native_series()
        self.rows: list[tuple[float, ...]] = []
        self.actions: list[Action] = []
        self.fees0 = 0  # collected fees, raw
        self.fees1 = 0
        self.gas_usd = 0.0
        self.swap_fee_usd = 0.0
        self.impact_usd = 0.0
        self.slippage_usd = 0.0
        self.swap_notional_usd = 0.0
        self.initial: tuple[int, int] | None = None
        self.initial_usd = 0.0
        self.fifty = (0.0, 0.0)
        self.all_volatile = (0.0, 0.0)
        self.fr_ticks = (min_usable_tick(tick_spacing), max_usable_tick(tick_spacing))
        self.fr_liquidity = 0
        self.fr_cash = (0, 0)
        self.opening_wallet = (0, 0)

    # --------------------------------------------------------------------------------- prices

    def unit_usd(self, price_raw: float) -> tuple[float, float]:
        """USD per raw unit of token0 and of token1 at a raw price (token1 per token0)."""
        whole = price_raw * 10.0 ** (self.d0 - self.d1)
        q = self.config.quote_usd
        t0, t1 = (whole * q, q) if self.config.quote_token == 1 else (q, q / whole)
        return t0 / 10.0**self.d0, t1 / 10.0**self.d1

    def token_usd(self, price_raw: float) -> tuple[float, float]:
        """USD per whole token0 and token1."""
        u0, u1 = self.unit_usd(price_raw)
        return u0 * 10.0**self.d0, u1 * 10.0**self.d1

    def volatile_usd(self, price_raw: float) -> float:
        t0, t1 = self.token_usd(price_raw)
        return t1 if self.config.quote_token == 0 else t0

    def native_usd(self, price_raw: float, t: float) -> float:
        """USD a whole native token at ``t``: the series, the given price, else the pool's."""
        if self.native is not None:
            return self.native.at(t)
        return self.config.native_usd or self.volatile_usd(price_raw)

    # ---------------------------------------------------------------------------- the start

    def initial_amounts(self, price_raw: float) -> tuple[int, int]:
        """The capital in raw tokens: ``volatile_share`` of it in the volatile token."""
        u0, u1 = self.unit_usd(price_raw)
        cap = self.config.capital_usd
        vol = self.config.volatile_share
        share0 = vol if self.config.quote_token == 1 else 1.0 - vol
        return int(cap * share0 / u0), int(cap * (1.0 - share0) / u1)

    def start(self, price_raw: float, sqrt_price_x96: int, amounts: tuple[int, int]) -> None:
        self.initial = amounts
        u0, u1 = self.unit_usd(price_raw)
        self.initial_usd = amounts[0] * u0 + amounts[1] * u1
        v = self.initial_usd
        self.fifty = (v / 2 / u0, v / 2 / u1)
        self.all_volatile = (v / u0, 0.0) if self.config.quote_token == 1 else (0.0, v / u1)
        half0, half1 = int(v / 2 / u0), int(v / 2 / u1)
        lo, hi = self.fr_ticks
        self.fr_liquidity = get_liquidity_for_amounts(
            sqrt_price_x96, get_sqrt_ratio_at_tick(lo), get_sqrt_ratio_at_tick(hi), half0, half1
        )
        used = position_amounts(sqrt_price_x96, lo, hi, self.fr_liquidity)
        self.fr_cash = (half0 - used.amount0, half1 - used.amount1)

    # ---------------------------------------------------------------------------------- costs

    def charge_gas(self, action: str, with_swap: bool, t: float, price_raw: float) -> float:
        cost = self.gas.cost_usd(action, with_swap, t, self.native_usd(price_raw, t))
        self.gas_usd += cost
        return cost

    def record_open(
        self,
        *,
        now: int,
        kind: str,
        rng: Range,
        plan: OpenPlan,
        costs: tuple[float, float, float],
        price_raw: float,
        reason: str,
        wallet: tuple[int, int] | None = None,
    ) -> None:
        """Charge the gas of an open/rebalance/compound and log it as an ``Action``.

        ``costs`` are the swap's fee, price impact and slippage in USD (``charge_swap``);
        ``wallet`` what the bot held after the swap, before adding liquidity (kept for the
        opening).
        """
        if kind == "open" and wallet is not None:
            self.opening_wallet = wallet
        swap = plan.swap
        fee_usd, impact, slip = costs
        gas = self.charge_gas(kind, swap is not None, now, price_raw)
        if kind == "open" and gas + slip >= self.initial_usd:
            raise Refused(
                f"opening the position costs ${gas + slip:,.2f} (gas and slippage), all of the "
                f"capital ${self.initial_usd:,.2f}: give more --capital-usd, a gas price "
                "(--gas-price-gwei) or --no-costs"
            )
        self.actions.append(
            Action(
                timestamp=now,
                kind=kind,
                tick_lower=rng.tick_lower,
                tick_upper=rng.tick_upper,
                liquidity=plan.liquidity,
                swap_zero_for_one=None if swap is None else swap.zero_for_one,
                swap_amount_in=0 if swap is None else swap.amount_in,
                swap_fee_usd=fee_usd,
                price_impact_usd=impact,
                slippage_usd=slip,
                gas_usd=gas,
                reason=reason,
                amount0=plan.amount0,
                amount1=plan.amount1,
            )
        )

    def gas_estimate(self, action: str, t: float, price_raw: float) -> float:
        return self.gas.cost_usd(action, True, t, self.native_usd(price_raw, t))

    def charge_swap(
        self, zero_for_one: bool, amount_in: int, amount_out: int, fee_amount: int, price_raw: float
    ) -> tuple[float, float, float]:
        """Fee, price impact and slippage (USD) of the bot's swap at the pre-swap raw price."""
        u0, u1 = self.unit_usd(price_raw)
        net_in = amount_in - fee_amount
        if zero_for_one:
            fee_usd, in_usd = fee_amount * u0, amount_in * u0
            impact = (net_in * price_raw - amount_out) * u1
        else:
            fee_usd, in_usd = fee_amount * u1, amount_in * u1
            impact = (net_in / price_raw - amount_out) * u0
        slip = in_usd * (self.config.slippage_bps or 0.0) / 10_000
        self.swap_fee_usd += fee_usd
        self.impact_usd += max(impact, 0.0)
        self.slippage_usd += slip
        self.swap_notional_usd += in_usd
        return fee_usd, max(impact, 0.0), slip

    def collected_fees(self, fees0: int, fees1: int) -> None:
        self.fees0 += fees0
        self.fees1 += fees1

    # -------------------------------------------------------------------------------- samples

    def full_range_value(
        self, sqrt_price_x96: int, price_raw: float, fees0: float, fees1: float
    ) -> float:
        lo, hi = self.fr_ticks
        amounts = position_amounts(sqrt_price_x96, lo, hi, self.fr_liquidity)
        u0, u1 = self.unit_usd(price_raw)
        return (amounts.amount0 + self.fr_cash[0] + fees0) * u0 + (
            amounts.amount1 + self.fr_cash[1] + fees1
        ) * u1

    def sample(
        self,
        t: float,
        price_raw: float,
        sqrt_price_x96: int,
        held: tuple[int, int],
        owed: tuple[int, int],
        full_range_fees: tuple[float, float],
        ticks: tuple[int, int] | None,
        in_range: bool,
    ) -> None:
        """Record one sample; ``held`` = position principal + wallet, ``owed`` = fees owed."""
        assert self.initial is not None
        u0, u1 = self.unit_usd(price_raw)
        a0, a1 = held[0] + owed[0], held[1] + owed[1]
        lp = a0 * u0 + a1 * u1
        exposure = a0 / 10.0**self.d0 if self.config.quote_token == 1 else a1 / 10.0**self.d1
        self.hedge.step(t, self.volatile_usd(price_raw), exposure)
        hedge_total = self.hedge.pnl_usd + self.hedge.funding_usd - self.hedge.fees_usd
        value = lp + hedge_total - self.gas_usd - self.slippage_usd
        fees = (self.fees0 + owed[0]) * u0 + (self.fees1 + owed[1]) * u1
        scale = 10.0 ** (self.d0 - self.d1)
        lower = upper = math.nan
        if ticks is not None:
            lower = 1.0001 ** ticks[0] * scale
            upper = 1.0001 ** ticks[1] * scale
        self.rows.append(
            (
                t,
                price_raw * scale,
                lower,
                upper,
                value,
                lp,
                self.initial[0] * u0 + self.initial[1] * u1,
                self.fifty[0] * u0 + self.fifty[1] * u1,
                self.all_volatile[0] * u0 + self.all_volatile[1] * u1,
                self.full_range_value(sqrt_price_x96, price_raw, *full_range_fees),
                fees,
                self.gas_usd,
                hedge_total,
                1.0 if in_range else 0.0,
            )
        )

    # -------------------------------------------------------------------------------- the end

    def finish(
        self,
        engine: str,
        *,
        final_held: tuple[int, int],
        final_owed: tuple[int, int],
        final_price_raw: float,
        time_in_range: float,
        decisions: int,
        notes: dict[str, Any],
    ) -> BacktestResult:
        if self.initial is None or not self.rows:
            raise Refused(
                "the bot never opened a position in this period (not enough history, or the "
                "capital cannot pay for any liquidity)"
            )
        cols = np.array(self.rows, dtype=np.float64).T
        series = Series(*cols)
        u0, u1 = self.unit_usd(final_price_raw)
        lp_end = (final_held[0] + final_owed[0]) * u0 + (final_held[1] + final_owed[1]) * u1
        f0, f1 = self.fees0 + final_owed[0], self.fees1 + final_owed[1]
        fees_usd = f0 * u0 + f1 * u1
        hold_end = self.initial[0] * u0 + self.initial[1] * u1
        h = self.hedge
        final = lp_end + h.pnl_usd + h.funding_usd - h.fees_usd - self.gas_usd - self.slippage_usd
        breakdown = Breakdown(
            initial_usd=self.initial_usd,
            final_usd=final,
            price=hold_end - self.initial_usd,
            impermanent_loss=lp_end - fees_usd - hold_end,
            fees=fees_usd,
            hedge_pnl=h.pnl_usd,
            funding=h.funding_usd,
            hedge_fees=h.fees_usd,
            gas=self.gas_usd,
            slippage=self.slippage_usd,
            swap_fees=self.swap_fee_usd,
            price_impact=self.impact_usd,
            fees0_raw=f0,
            fees1_raw=f1,
        )
        span = float(series.t[-1] - series.t[0])
        v0 = self.initial_usd
        net = final / v0 - 1.0

        def ret(col: FloatArray) -> float:
            return float(col[-1] / v0 - 1.0)

        period = float(self.config.decision_interval_seconds)
        sharpe, sortino = sharpe_sortino(v0, series.value, period)
        opening_gas = self.actions[0].gas_usd if self.actions else 0.0
        hold_r, fifty_r = ret(series.hold), ret(series.fifty)
        full_r = float((series.full_range[-1] - opening_gas) / v0 - 1.0)
        metrics = Metrics(
            days=span / 86_400,
            net_return=net,
            apr=net * SECONDS_PER_YEAR / span if span > 0 else 0.0,
            max_drawdown=max_drawdown(v0, series.value),
            sharpe=sharpe,
            sortino=sortino,
            period_seconds=period,
            time_in_range=time_in_range,
            rebalances=sum(1 for a in self.actions if a.kind == "rebalance"),
            compounds=sum(1 for a in self.actions if a.kind == "compound"),
            decisions=decisions,
            hold_return=hold_r,
            fifty_return=fifty_r,
            volatile_return=ret(series.volatile),
            full_range_return=full_r,
            lp_vs_hold=net - hold_r,
            lp_vs_fifty=net - fifty_r,
            lp_vs_full_range=net - full_r,
            turnover=self.swap_notional_usd / v0,
            costs_usd={
                "gas": self.gas_usd,
                "swap_fees": self.swap_fee_usd,
                "price_impact": self.impact_usd,
                "slippage": self.slippage_usd,
                "hedge_fees": h.fees_usd,
                "funding_paid": abs(min(h.funding_usd, 0.0)),
            },
        )
        notes = {**notes, "hedge_trades": h.trades, "opening_wallet": list(self.opening_wallet)}
        return BacktestResult(
            engine=engine,
            label=self.config.label,
            pool=self.pool_info,
            config=self.config.model_dump(),
            series=series,
            actions=tuple(self.actions),
            breakdown=breakdown,
            metrics=metrics,
            notes=notes,
        )
