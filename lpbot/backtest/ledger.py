"""The bookkeeping both engines share: the flows a run makes, and the ledger that explains them.

The engines move raw token amounts; the ``Accountant`` records every flow as the live bot's
records are kept: the deposit, each open, rebalance and compound as an
``analytics.ledger.RebalanceFlow`` (principal out, fees collected, the swap's input and output
and its modelled slippage, what went into the new position, the marks at that time), every
transaction's gas as a ``GasPaid`` (wei at the native token's mark), and the hedge's result as
``HedgeFigures``. The breakdown is ``analytics.ledger``'s, the same code the live ledger runs
(its docstring defines each line), in exact ``Decimal``s from those flows:

    value + hedge + funding - gas - slippage - hold
        = fees + IL + hedge + funding - gas - swap costs - slippage

and the backtest adds the tokens' own move, ``price = hold(end) - initial value``, so that
``final - initial`` is the sum of the lines. The opening is a rebalance out of the deposit: its
swap's fee and impact are a swap cost, not IL. ``Breakdown`` carries the exact figures as floats
(analytics: they add up to 1e-9 of the capital); ``BacktestResult.ledger`` holds the ledger
itself (its ``usd`` lines add up to the cent).

The value series (``sample``) is the same sum in float (analytics) at each decision time. It
starts from the first dollar: its first point is the capital at the opening's time, before any
cost, so the opening's gas, swap and slippage fall in the first period. A run stops at zero
equity: once a sample's value is at or below zero (costs have taken everything) the bot does
nothing more, the series and the ledger end there and the result reports the ruin
(``Metrics.ruined_at``; the return is -100%).

Benchmarks start with the same capital at the same time, and pay their own way in: holding the
initial tokens (no transaction), a 50/50 split held and all in the volatile token (each one
swap from the initial tokens: its gas, the pool's fee and the slippage on what it sells), and a
passive full-range position (50/50, minted once: the gas of a mint, with a swap when the
initial tokens are not 50/50, the pool's fee and the slippage; its fees those of a position of
its liquidity that never moves: ``L x fee growth`` in the exact engine, its liquidity share of
the bars' fees in the bars engine). The benchmarks' swaps are charged no price impact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from lpbot.analytics.fees import FeeRate
from lpbot.analytics.ledger import (
    GasPaid,
    HedgeFigures,
    Ledger,
    LedgerMismatch,
    PathSums,
    Prices,
    RebalanceFlow,
    compute_ledger,
)
from lpbot.analytics.types import FloatArray
from lpbot.analytics.value import position_amounts
from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.costs import GWEI, GasModel, HedgeBook
from lpbot.backtest.metrics import SECONDS_PER_YEAR, max_drawdown, sharpe_sortino
from lpbot.errors import Refused
from lpbot.strategy.base import Range, max_usable_tick, min_usable_tick
from lpbot.strategy.open import OpenPlan
from lpbot.strategy.rebalance import MarketInputs
from lpbot.uniswap.liquidity_amounts import get_liquidity_for_amounts
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

OWNER = "lpbot-backtest"
WEI_PER_ETH = 10**18


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


@dataclass(frozen=True, slots=True)
class SwapFill:
    """A swap as the pool filled it: raw amounts, and the pool's fee (in the input token)."""

    zero_for_one: bool
    amount_in: int
    amount_out: int
    fee_amount: int

    @property
    def flows(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(sold to the pool, bought) as (token0, token1) pairs."""
        if self.zero_for_one:
            return (self.amount_in, 0), (0, self.amount_out)
        return (0, self.amount_in), (self.amount_out, 0)


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
    """The ledger's exact USD figures as floats (analytics), and the tokens' own move.

    ``total = price + impermanent_loss + fees - swap_costs + hedge_pnl + funding - gas -
    slippage = final_usd - initial_usd``; ``hedge_pnl`` is net of ``hedge_fees``, and
    ``swap_fees`` and ``price_impact`` are the two parts of ``swap_costs`` (information)."""

    initial_usd: float
    final_usd: float
    hold_usd: float
    price: float
    impermanent_loss: float
    fees: float
    swap_costs: float
    hedge_pnl: float
    funding: float
    gas: float
    slippage: float
    hedge_fees: float
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
            - self.swap_costs
            + self.hedge_pnl
            + self.funding
            - self.gas
            - self.slippage
        )

    @classmethod
    def from_ledger(
        cls, ledger: Ledger, *, info: dict[str, float], fees_raw: tuple[int, int]
    ) -> Breakdown:
        """The breakdown of ``ledger`` (its exact figures); ``info`` the information lines."""
        f = ledger.exact
        return cls(
            initial_usd=float(f.entry),
            final_usd=float(f.value + f.hedge_pnl + f.funding - f.gas - f.slippage),
            hold_usd=float(f.hold),
            price=float(f.hold - f.entry),
            impermanent_loss=float(f.il),
            fees=float(f.fees),
            swap_costs=float(f.swap_costs),
            hedge_pnl=float(f.hedge_pnl),
            funding=float(f.funding),
            gas=float(f.gas),
            slippage=float(f.slippage),
            hedge_fees=info["hedge_fees"],
            swap_fees=info["swap_fees"],
            price_impact=info["price_impact"],
            fees0_raw=fees_raw[0],
            fees1_raw=fees_raw[1],
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
    full_range_return: float  # net of its own opening costs
    lp_vs_hold: float  # net_return - hold_return
    lp_vs_fifty: float
    lp_vs_full_range: float
    turnover: float  # the bot's swap notional / capital
    costs_usd: dict[str, float] = field(default_factory=dict)
    ruined_at: float | None = None  # when the value fell to zero or below (the run stopped)


@dataclass(frozen=True)
class RecordedFlows:
    """Everything a run's ledger is computed from, as the live bot records it: the deposit and
    its marks, each action's flow and gas (one transaction each), the position and its fees
    owed at the end with the marks then, and the hedge's result."""

    decimals: tuple[int, int]
    deposit: tuple[int, int]
    entry: Prices
    rebalances: tuple[RebalanceFlow, ...]
    gas: tuple[GasPaid, ...]
    principal: tuple[int, int]
    uncollected: tuple[int, int]
    marks: Prices
    hedge: HedgeFigures

    def ledger(self) -> Ledger:
        """The ledger, by the code the live monitor runs (``analytics.ledger.compute_ledger``)."""
        return compute_ledger(
            decimals=self.decimals,
            deposit=self.deposit,
            entry=self.entry,
            rebalances=self.rebalances,
            principal=self.principal,
            uncollected=self.uncollected,
            marks=self.marks,
            gas=self.gas,
            hedge=self.hedge,
        )


# the ledger's 50/50 is the deposit's value split at the deposit's marks, with no transaction;
# ``Metrics.fifty_return`` is the 50/50 benchmark that pays its way in (swap, pool fee, gas)
LEDGER_JSON_NAMES = {"hold_5050": "hold_5050_no_costs"}


def ledger_lines(ledger: Ledger) -> dict[str, str]:
    """The ledger's USD lines (to the cent; they add up exactly), as strings for JSON; the
    50/50 is ``hold_5050_no_costs``, not the costed benchmark of ``metrics.fifty_return``."""
    return {
        LEDGER_JSON_NAMES.get(k, k): str(v) for k, v in asdict(ledger.usd).items() if k != "unit"
    }


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
    ledger: Ledger | None = None  # the analytics ledger the breakdown comes from
    flows: RecordedFlows | None = None  # what the ledger was computed from

    def summary(self) -> dict[str, Any]:
        """JSON-ready: pool, config, metrics, breakdown, ledger, actions and notes (no series)."""
        b = asdict(self.breakdown)
        b["total"] = self.breakdown.total
        return {
            "engine": self.engine,
            "label": self.label,
            "pool": self.pool,
            "config": self.config,
            "metrics": asdict(self.metrics),
            "breakdown_usd": b,
            "ledger_usd": ledger_lines(self.ledger) if self.ledger is not None else None,
            "actions": [asdict(a) for a in self.actions],
            "notes": self.notes,
        }


class Accountant:
    """The run's flows, costs, benchmarks and hedge, and its ledger (module docstring)."""

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
        # the flows, as the ledger folds them
        self.sums: PathSums | None = None
        self.entry: Prices | None = None
        self.flows: list[RebalanceFlow] = []
        self.gas_txs: list[GasPaid] = []
        self.gas_usd = 0.0  # float twins of the ledger's sums, for the value series
        self.slippage_usd = 0.0
        self.swap_fee_usd = 0.0
        self.impact_usd = 0.0
        self.swap_notional_usd = 0.0
        self.initial: tuple[int, int] | None = None
        self.initial_usd = 0.0
        self.fifty = (0.0, 0.0)
        self.all_volatile = (0.0, 0.0)
        self.fr_ticks = (min_usable_tick(tick_spacing), max_usable_tick(tick_spacing))
        self.fr_liquidity = 0
        self.fr_cash = (0, 0)
        self.opening_wallet = (0, 0)
        self.benchmark_costs: dict[str, float] = {}
        self.ruined_at: float | None = None

    @property
    def ruined(self) -> bool:
        """The value fell to zero or below: the bot acts no more (module docstring)."""
        return self.ruined_at is not None

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

    def marks(self, price_raw: float, t: float) -> Prices:
        """The run's marks at ``t`` for the ledger: the two tokens and the native token (the
        floats the run prices with, converted exactly)."""
        t0, t1 = self.token_usd(price_raw)
        return Prices(
            Decimal(t0), Decimal(t1), Decimal(self.native_usd(price_raw, t)), block=int(t)
        )

    # ---------------------------------------------------------------------------- the start

    def initial_amounts(self, price_raw: float) -> tuple[int, int]:
        """The capital in raw tokens: ``volatile_share`` of it in the volatile token."""
        u0, u1 = self.unit_usd(price_raw)
        cap = self.config.capital_usd
        vol = self.config.volatile_share
        share0 = vol if self.config.quote_token == 1 else 1.0 - vol
        return int(cap * share0 / u0), int(cap * (1.0 - share0) / u1)

    def start(
        self, price_raw: float, sqrt_price_x96: int, amounts: tuple[int, int], t: float = 0.0
    ) -> None:
        """The deposit: ``amounts`` at ``t``, the benchmarks bought with the same capital (each
        paying its own way in), and the series' first point: the capital, before any cost."""
        self.initial = amounts
        self.sums = PathSums(start=amounts)
        self.entry = self.marks(price_raw, t)
        u0, u1 = self.unit_usd(price_raw)
        self.initial_usd = amounts[0] * u0 + amounts[1] * u1
        v = self.initial_usd
        held0 = amounts[0] * u0  # USD of token0 among the initial tokens
        vol0 = self.config.quote_token == 1  # token0 is the volatile one
        fifty_v = v - self._way_in("fifty", held0, v / 2, "swap", t, price_raw)
        self.fifty = (fifty_v / 2 / u0, fifty_v / 2 / u1)
        vol_v = v - self._way_in("volatile", held0, v if vol0 else 0.0, "swap", t, price_raw)
        self.all_volatile = (vol_v / u0, 0.0) if vol0 else (0.0, vol_v / u1)
        fr_v = v - self._way_in("full_range", held0, v / 2, "open", t, price_raw)
        half0, half1 = int(fr_v / 2 / u0), int(fr_v / 2 / u1)
        lo, hi = self.fr_ticks
        self.fr_liquidity = get_liquidity_for_amounts(
            sqrt_price_x96, get_sqrt_ratio_at_tick(lo), get_sqrt_ratio_at_tick(hi), half0, half1
        )
        used = position_amounts(sqrt_price_x96, lo, hi, self.fr_liquidity)
        self.fr_cash = (half0 - used.amount0, half1 - used.amount1)
        scale = 10.0 ** (self.d0 - self.d1)
        self.rows.append(
            (t, price_raw * scale, math.nan, math.nan, v, v, v, v, v, v, 0.0, 0.0, 0.0, 1.0)
        )

    def _way_in(
        self, name: str, held0: float, want0: float, action: str, t: float, price_raw: float
    ) -> float:
        """What a benchmark pays (USD) to turn the initial tokens, ``held0`` USD of them
        token0, into ``want0`` USD of token0: one ``action``'s gas (with a swap when it must
        sell), the pool's fee and the slippage on what it sells (no price impact)."""
        sold = abs(want0 - held0)
        swaps = sold > 1e-9 * self.initial_usd
        rate = (self.pool_info.get("fee") or 0) / 1_000_000 + (self.config.slippage_bps or 0) / 1e4
        cost = sold * rate if swaps else 0.0
        if swaps or action != "swap":
            cost += self.gas.cost_usd(action, swaps, t, self.native_usd(price_raw, t))
        self.benchmark_costs[name] = cost
        return cost

    # ---------------------------------------------------------------------------------- flows

    def gas_paid(self, action: str, with_swap: bool, t: float, price_raw: float) -> GasPaid:
        """The gas of ``action`` at ``t``: wei (units x gas price), at the native token's mark."""
        wei = round(self.gas.units_for(action, with_swap) * self.gas.price_gwei(t) / GWEI)
        native = Decimal(self.native_usd(price_raw, t))
        return GasPaid(f"backtest:{action}@{int(t)}", int(wei), native)

    def gas_estimate(self, action: str, t: float, price_raw: float) -> float:
        return self.gas.cost_usd(action, True, t, self.native_usd(price_raw, t))

    def market(self, t: float, price_raw: float, fee_rate: FeeRate) -> MarketInputs:
        """What the policy reads at ``t``: the tokens' marks, the gas of a rebalance and of a
        compound, and the pool's fee rate (the engine's own measure of it)."""
        t0_usd, t1_usd = self.token_usd(price_raw)
        return MarketInputs(
            token0_usd=t0_usd,
            token1_usd=t1_usd,
            rebalance_gas_usd=self.gas_estimate("rebalance", t, price_raw),
            compound_gas_usd=self.gas_estimate("compound", t, price_raw),
            fee_rate=fee_rate,
        )

    def swap_costs(self, fill: SwapFill, price_raw: float) -> tuple[float, float, float]:
        """Fee, price impact and slippage (USD) of the bot's swap at the pre-swap raw price;
        fee + impact is the ledger's swap cost, ``P.(in - out)``."""
        u0, u1 = self.unit_usd(price_raw)
        net_in = fill.amount_in - fill.fee_amount
        if fill.zero_for_one:
            fee_usd, in_usd = fill.fee_amount * u0, fill.amount_in * u0
            impact = (net_in * price_raw - fill.amount_out) * u1
        else:
            fee_usd, in_usd = fill.fee_amount * u1, fill.amount_in * u1
            impact = (net_in / price_raw - fill.amount_out) * u0
        slip = in_usd * (self.config.slippage_bps or 0.0) / 10_000
        return fee_usd, impact, slip

    def record_open(
        self,
        *,
        now: int,
        kind: str,
        rng: Range,
        plan: OpenPlan,
        price_raw: float,
        reason: str,
        burned: tuple[int, int],
        fees: tuple[int, int],
        swap: SwapFill | None,
        minted: tuple[int, int],
        wallet: tuple[int, int] | None = None,
    ) -> None:
        """Record an open, rebalance or compound: its flow (``burned`` principal out, ``fees``
        collected, the ``swap`` as filled, ``minted`` into the position, at the marks of
        ``price_raw``, the pre-swap price), its gas, and an ``Action``.

        The opening ``burned`` the deposit; a compound ``burned`` and ``minted`` the
        position's principal (with what it added). ``wallet``: what the bot held after the
        swap, before adding liquidity (kept for the opening)."""
        assert self.sums is not None, "start() first"
        if kind == "open" and wallet is not None:
            self.opening_wallet = wallet
        fee_usd = impact = slip = 0.0
        sold, bought = ((0, 0), (0, 0)) if swap is None else swap.flows
        if swap is not None:
            fee_usd, impact, slip = self.swap_costs(swap, price_raw)
            u0, u1 = self.unit_usd(price_raw)
            self.swap_notional_usd += sold[0] * u0 + sold[1] * u1
        gas = self.gas_paid(kind, swap is not None, now, price_raw)
        gas_usd = float(gas.usd)
        if kind == "open" and gas_usd + slip >= self.initial_usd:
            raise Refused(
                f"opening the position costs ${gas_usd + slip:,.2f} (gas and slippage), all of "
                f"the capital ${self.initial_usd:,.2f}: give more --capital-usd, a gas price "
                "(--gas-price-gwei) or --no-costs"
            )
        flow = RebalanceFlow(
            burned, fees, sold, bought, minted, self.marks(price_raw, now), Decimal(slip)
        )
        decimals = (self.d0, self.d1)
        self.sums = self.sums.fold(flow, decimals).pay(gas)
        self.flows.append(flow)
        self.gas_txs.append(gas)
        self.gas_usd += gas_usd
        self.slippage_usd += slip
        self.swap_fee_usd += fee_usd
        self.impact_usd += impact
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
                gas_usd=gas_usd,
                reason=reason,
                amount0=plan.amount0,
                amount1=plan.amount1,
            )
        )

    def record_withdraw(
        self,
        *,
        now: int,
        rng: tuple[int, int],
        price_raw: float,
        reason: str,
        burned: tuple[int, int],
        fees: tuple[int, int],
    ) -> None:
        """Record a withdrawal to tokens (the regime's stressed action): ``burned`` principal
        and ``fees`` collected to the owner, nothing swapped or minted, one transaction's gas."""
        assert self.sums is not None, "start() first"
        flow = RebalanceFlow(
            burned, fees, (0, 0), (0, 0), (0, 0), self.marks(price_raw, now), Decimal(0)
        )
        gas = self.gas_paid("withdraw", False, now, price_raw)
        self.sums = self.sums.fold(flow, (self.d0, self.d1)).pay(gas)
        self.flows.append(flow)
        self.gas_txs.append(gas)
        self.gas_usd += float(gas.usd)
        self.actions.append(
            Action(
                timestamp=now,
                kind="withdraw",
                tick_lower=rng[0],
                tick_upper=rng[1],
                liquidity=0,
                swap_zero_for_one=None,
                swap_amount_in=0,
                swap_fee_usd=0.0,
                price_impact_usd=0.0,
                slippage_usd=0.0,
                gas_usd=float(gas.usd),
                reason=reason,
            )
        )

    def hedge_figures(self) -> HedgeFigures:
        """The hedge's result so far, as the ledger takes it (the model's floats, exactly)."""
        h = self.hedge
        return HedgeFigures(
            realised=Decimal(h.pnl_usd), fees=Decimal(h.fees_usd), funding=Decimal(h.funding_usd)
        )

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
        """Record one sample; ``held`` = position principal + wallet, ``owed`` = fees owed.

        A sample at the time of the last one (right after the opening) steps the hedge but
        leaves that point (the capital) standing. A value at or below zero is the ruin."""
        assert self.initial is not None and self.sums is not None
        if self.ruined:
            return
        u0, u1 = self.unit_usd(price_raw)
        a0, a1 = held[0] + owed[0], held[1] + owed[1]
        lp = a0 * u0 + a1 * u1
        exposure = a0 / 10.0**self.d0 if self.config.quote_token == 1 else a1 / 10.0**self.d1
        self.hedge.step(t, self.volatile_usd(price_raw), exposure)
        hedge_total = self.hedge.pnl_usd + self.hedge.funding_usd - self.hedge.fees_usd
        value = lp + hedge_total - self.gas_usd - self.slippage_usd
        if value <= 0.0:
            self.ruined_at = t
        if self.rows and self.rows[-1][0] >= t:
            return
        f = self.sums.fees
        fees = (f[0] + owed[0]) * u0 + (f[1] + owed[1]) * u1
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

    def recorded(
        self,
        *,
        principal: tuple[int, int],
        wallet: tuple[int, int],
        owed: tuple[int, int],
        price_raw: float,
        t: float,
    ) -> RecordedFlows:
        """The run's flows so far and the position's ``principal`` and ``owed`` fees at ``t``.
        ``wallet`` (what the engine holds besides the position) must be what the flows left."""
        assert self.sums is not None and self.initial is not None and self.entry is not None
        if wallet != self.sums.idle:
            raise LedgerMismatch(
                f"the engine's wallet {wallet} is not what the recorded flows left "
                f"{self.sums.idle}: a flow is missing"
            )
        return RecordedFlows(
            decimals=(self.d0, self.d1),
            deposit=self.initial,
            entry=self.entry,
            rebalances=tuple(self.flows),
            gas=tuple(self.gas_txs),
            principal=principal,
            uncollected=owed,
            marks=self.marks(price_raw, t),
            hedge=self.hedge_figures(),
        )

    def finish(
        self,
        engine: str,
        *,
        final_principal: tuple[int, int],
        final_wallet: tuple[int, int],
        final_owed: tuple[int, int],
        final_price_raw: float,
        time_in_range: float,
        decisions: int,
        notes: dict[str, Any],
    ) -> BacktestResult:
        if self.initial is None or self.sums is None or not self.rows:
            raise Refused(
                "the bot never opened a position in this period (not enough history, or the "
                "capital cannot pay for any liquidity)"
            )
        cols = np.array(self.rows, dtype=np.float64).T
        if self.actions:  # the first point's range: the opening's
            first = self.actions[0]
            scale = 10.0 ** (self.d0 - self.d1)
            cols[2, 0] = 1.0001**first.tick_lower * scale
            cols[3, 0] = 1.0001**first.tick_upper * scale
        series = Series(*cols)
        h = self.hedge
        flows = self.recorded(
            principal=final_principal,
            wallet=final_wallet,
            owed=final_owed,
            price_raw=final_price_raw,
            t=float(series.t[-1]),
        )
        led = flows.ledger()
        f = self.sums.fees
        breakdown = Breakdown.from_ledger(
            led,
            info={
                "hedge_fees": h.fees_usd,
                "swap_fees": self.swap_fee_usd,
                "price_impact": self.impact_usd,
            },
            fees_raw=(f[0] + final_owed[0], f[1] + final_owed[1]),
        )
        final = breakdown.final_usd
        if len(self.rows) > 1 and abs(series.value[-1] - final) > 1e-9 * self.initial_usd:
            raise LedgerMismatch(  # the float twin of the ledger's sum left it: a bug
                f"the value series ends at {series.value[-1]!r}, the ledger at {final!r}"
            )
        span = float(series.t[-1] - series.t[0])
        v0 = self.initial_usd
        # ruined: the equity is gone (what the costs took beyond it is in the breakdown)
        net = -1.0 if self.ruined else final / v0 - 1.0

        def ret(col: FloatArray) -> float:
            return float(col[-1] / v0 - 1.0)

        period = float(self.config.decision_interval_seconds)
        # the series starts at the capital (its first point): returns from there
        sharpe, sortino = sharpe_sortino(v0, series.value[1:], period)
        hold_r, fifty_r = ret(series.hold), ret(series.fifty)
        full_r = ret(series.full_range)
        metrics = Metrics(
            days=span / 86_400,
            net_return=net,
            apr=net * SECONDS_PER_YEAR / span if span > 0 else 0.0,
            max_drawdown=min(max_drawdown(v0, series.value[1:]), 1.0),
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
                "gas": breakdown.gas,
                "swap_fees": self.swap_fee_usd,
                "price_impact": self.impact_usd,
                "slippage": breakdown.slippage,
                "hedge_fees": h.fees_usd,
                "funding_paid": abs(min(h.funding_usd, 0.0)),
            },
            ruined_at=self.ruined_at,
        )
        notes = {
            **notes,
            "hedge_trades": h.trades,
            "opening_wallet": list(self.opening_wallet),
            "benchmark_opening_costs_usd": dict(self.benchmark_costs),
        }
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
            ledger=led,
            flows=flows,
        )
