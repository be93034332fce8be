"""Quote, show and plan one position: the services behind ``lpbot position`` (``lpbot.cli``).

``quote`` plans a new position for some capital with ``plan_open`` on the pool as read now (its
swap quoted through the pool's initialized ticks, to the wei); ``show`` reads an NFT position and
reports its amounts, fees owed, value, impermanent loss, greeks and VaR; ``plan`` runs the
rebalance policy on it (``execution.decide.decide_position``).

The chain and its addresses come from the application context (``lpbot.app``). USD figures use
the marks of both tokens at the block read (``pricing``: the chain's pools against USDC,
anchored by its price feeds; Decimal), the same marks and formula as the monitor and the ledger;
token amounts are exact raw ints. ``--json`` prints one JSON object: raw amounts, liquidity and
square-root prices as strings of decimal digits, human prices and amounts as decimal strings,
analytics as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any, Literal

from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from lpbot.analytics.fees import uncollected_fees
from lpbot.analytics.greeks import Greeks, position_greeks
from lpbot.analytics.ledger import Prices
from lpbot.analytics.prices import price0_per_1, price1_per_0, raw_price, to_units
from lpbot.analytics.types import PriceHistory, RawAmount, TokenAmounts
from lpbot.analytics.value import position_amounts, value_in_token0, value_in_token1
from lpbot.analytics.var import DEFAULT_MIN_WINDOWS, VarEstimate, position_var
from lpbot.chain import artifacts
from lpbot.chain.book import AddressBook
from lpbot.chain.history import fetch_oracle_history
from lpbot.chain.reader import PoolReader
from lpbot.chain.reader import PoolSnapshot as ChainSnapshot
from lpbot.devnet.manifest import Manifest, PoolInfo, TokenInfo
from lpbot.errors import ConfigError, Refused, RetryLater
from lpbot.execution.snapshots import pool_snapshot, position_snapshot
from lpbot.pricing.base import Marks
from lpbot.pricing.marks import Pricer
from lpbot.risk.health import HealthRule, PoolHealth
from lpbot.strategy.base import Range, RangeStrategy
from lpbot.strategy.decision import Compound, Decision, Rebalance
from lpbot.strategy.ev import ExpectedValue
from lpbot.strategy.fixed import FixedWidth
from lpbot.strategy.full_range import FullRange
from lpbot.strategy.open import OpenPlan, plan_open
from lpbot.strategy.rebalance import MarketInputs, RebalancePolicy
from lpbot.strategy.skewed import SkewedBand
from lpbot.strategy.vol_band import VolatilityBand
from lpbot.uniswap.constants import MAX_UINT128
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

if TYPE_CHECKING:
    from lpbot.app import App

__all__ = [
    "Capital",
    "LiquidityEvent",
    "PositionQuote",
    "PositionReport",
    "build_strategy",
    "capital_amounts",
    "fetch_liquidity_events",
    "parse_capital",
    "quote_position",
    "show_position",
]

STRATEGIES = ("fixed", "vol_band", "skewed", "full")
VAR_HORIZONS = (60.0, 300.0, 1800.0)
LABEL_WIDTH = 14  # text tables: labels padded to this width
_CENT = Decimal("0.01")


# ------------------------------------------------------------------------------- arguments


@dataclass(frozen=True, slots=True)
class Capital:
    """One ``--capital`` argument: ``raw`` smallest units of the token ``symbol``."""

    symbol: str
    raw: int
    text: str


def parse_capital(text: str, tokens: Mapping[str, TokenInfo]) -> Capital:
    """Parse ``"5000 USDC"`` into raw units exactly (``Decimal`` times ``10**decimals``).

    ``tokens`` maps the allowed symbols to their tokens (matched case-insensitively). Refused
    (``ConfigError``, naming the argument): not ``AMOUNT SYMBOL``, not a finite decimal number,
    a comma (ambiguous), negative or zero, more decimal places than the token has (trailing
    zeros aside: the value must be a whole number of raw units), an unknown symbol, more than a
    uint128.
    """
    where = f'--capital "{text}"'
    parts = text.split()
    if len(parts) != 2:
        raise ConfigError(f'{where}: expected "AMOUNT SYMBOL", e.g. "5000 USDC"')
    amount_text, symbol_text = parts
    if "," in amount_text:
        raise ConfigError(f"{where}: write the amount without commas, with . for decimals")
    try:
        amount = Decimal(amount_text)
    except InvalidOperation:
        raise ConfigError(f"{where}: {amount_text!r} is not a number") from None
    if not amount.is_finite():
        raise ConfigError(f"{where}: {amount_text!r} is not a finite number")
    if amount.is_signed() and amount != 0:
        raise ConfigError(f"{where}: the amount must not be negative")
    if amount == 0:
        raise ConfigError(f"{where}: the amount must be > 0")
    by_symbol = {s.upper(): t for s, t in tokens.items()}
    token = by_symbol.get(symbol_text.upper())
    if token is None:
        known = ", ".join(tokens)
        raise ConfigError(f"{where}: unknown token {symbol_text!r}; this pool holds {known}")
    _sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite
    whole = int("".join(map(str, digits)))
    shift = exponent + token.decimals
    if shift >= 0:
        raw = whole * 10**shift
    else:
        raw, rest = divmod(whole, 10**-shift)
        if rest:
            raise ConfigError(
                f"{where}: {token.symbol} has {token.decimals} decimals; {amount_text} has "
                f"{-exponent}"
            )
    if raw > MAX_UINT128:
        raise ConfigError(f"{where}: more than a uint128 of raw {token.symbol} units")
    return Capital(token.symbol, raw, text)


def capital_amounts(texts: Sequence[str], token0: TokenInfo, token1: TokenInfo) -> tuple[int, int]:
    """The raw ``(amount0, amount1)`` of the ``--capital`` arguments; each token at most once."""
    amounts = {token0.symbol: 0, token1.symbol: 0}
    seen: set[str] = set()
    for text in texts:
        capital = parse_capital(text, {token0.symbol: token0, token1.symbol: token1})
        if capital.symbol in seen:
            raise ConfigError(f'--capital "{text}": {capital.symbol} is given twice')
        seen.add(capital.symbol)
        amounts[capital.symbol] = capital.raw
    return amounts[token0.symbol], amounts[token1.symbol]


def build_strategy(
    name: str, *, width_pct: float | None, width_ticks: int | None, k: float | None
) -> RangeStrategy:
    """The range strategy ``name`` (``STRATEGIES``) with its CLI parameters.

    ``fixed`` takes exactly one of the half-widths ``width_pct``/``width_ticks``; ``vol_band``
    and ``skewed`` take ``k`` (sigmas; default "auto": the width by expected value); ``full``
    takes none.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"--strategy {name!r}: one of {', '.join(STRATEGIES)}")
    widths = width_pct is not None or width_ticks is not None
    if name != "fixed" and widths:
        raise ConfigError(f"--width-pct and --width-ticks apply to --strategy fixed, not {name}")
    if name not in ("vol_band", "skewed") and k is not None:
        raise ConfigError(f"--k applies to --strategy vol_band or skewed, not {name}")
    try:
        if name == "fixed":
            if width_pct is None and width_ticks is None:
                raise ConfigError("--strategy fixed needs --width-pct P or --width-ticks N")
            if width_pct is not None and width_ticks is not None:
                raise ConfigError("--strategy fixed takes one of --width-pct and --width-ticks")
            return FixedWidth(half_width_ticks=width_ticks, half_width_pct=width_pct)
        if name == "vol_band":
            return VolatilityBand(k="auto" if k is None else k)
        if name == "skewed":
            return SkewedBand(band=VolatilityBand(k="auto" if k is None else k))
        return FullRange()
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"--strategy {name}: {exc}") from exc


# ------------------------------------------------------------------------------------ chain


@dataclass(frozen=True)
class Chain:
    """The node, the manifest of its addresses, its address book (tokens and pools read from the
    chain where the manifest does not list them), a pool reader and the pricer on it."""

    w3: Web3
    manifest: Manifest
    reader: PoolReader
    pricer: Pricer
    book: AddressBook = None  # type: ignore[assignment]  # None: the manifest's own

    def __post_init__(self) -> None:
        if self.book is None:
            object.__setattr__(self, "book", AddressBook.of(self.w3, self.manifest))

    @classmethod
    def connect(cls, rpc_url: str, manifest: Manifest) -> Chain:
        from lpbot.chain.rpc import connect
        from lpbot.pricing.marks import chain_pricer

        w3 = connect(rpc_url)
        c = manifest.contracts
        reader = PoolReader(
            w3,
            multicall=c["Multicall3"],
            tick_lens=c["TickLens"],
            position_manager=c["NonfungiblePositionManager"],
        )
        book = AddressBook.of(w3, manifest)
        return cls(w3, manifest, reader, chain_pricer(w3, manifest, book=book), book)

    @classmethod
    def of(cls, a: App, name: str | None = None) -> Chain:
        """Chain ``name`` of the application context (the first position's when None): its
        checked connection, manifest, pool reader and pricer, as ``lpbot position`` reads."""
        w3, manifest = a.w3(name), a.manifest(name)
        c = manifest.contracts
        reader = PoolReader(
            w3,
            multicall=c["Multicall3"],
            tick_lens=c["TickLens"],
            position_manager=c["NonfungiblePositionManager"],
        )
        return cls(w3, manifest, reader, a.pricer(name), a.book(name))

    def marks(self, pool: PoolTokens, block: int) -> PoolTokens:
        """``pool`` with its tokens' marks at ``block``."""
        found = self.pricer.fetch_marks([pool.token0.symbol, pool.token1.symbol], block)
        return replace(pool, marks=found)

    def contract(self, name: str, address: str | None = None) -> Any:
        addr = address or self.manifest.contracts[name]
        return self.w3.eth.contract(address=to_checksum_address(addr), abi=artifacts.abi(name))


@dataclass(frozen=True, slots=True)
class PoolTokens:
    """A pool with its two tokens; ``quote`` is the index of the token prices are shown in
    (the stablecoin, else WETH: ``AddressBook.quote_index``), the other one is the risky token."""

    info: PoolInfo
    token0: TokenInfo
    token1: TokenInfo
    quote: Literal[0, 1]
    marks: Marks | None = None  # the USD marks every USD figure of a read uses

    @classmethod
    def of(cls, book: AddressBook, info: PoolInfo) -> PoolTokens:
        token0, token1 = book.symbol_token(info.token0), book.symbol_token(info.token1)
        return cls(info, token0, token1, book.quote_index(info))

    @property
    def decimals(self) -> tuple[int, int]:
        return self.token0.decimals, self.token1.decimals

    @property
    def quote_token(self) -> TokenInfo:
        return self.token0 if self.quote == 0 else self.token1

    @property
    def risky_token(self) -> TokenInfo:
        return self.token1 if self.quote == 0 else self.token0

    @property
    def short_name(self) -> str:
        return f"{self.info.token0}/{self.info.token1}-{self.info.fee}"

    def usd(self, symbol: str) -> Decimal:
        if self.marks is None:
            raise RuntimeError("USD figures need the pool's marks (Chain.marks)")
        return self.marks.usd(symbol)

    def price(self, sqrt_price_x96: int) -> Decimal:
        """Whole quote tokens per whole risky token."""
        d0, d1 = self.decimals
        if self.quote == 0:
            return price0_per_1(sqrt_price_x96, d0, d1)
        return price1_per_0(sqrt_price_x96, d0, d1)

    def price_text(self, sqrt_price_x96: int) -> str:
        return f"{_fmt_price(self.price(sqrt_price_x96))} {self.price_unit}"

    @property
    def price_unit(self) -> str:
        return f"{self.quote_token.symbol} per {self.risky_token.symbol}"

    def edges(self, tick_lower: int, tick_upper: int) -> tuple[Decimal, Decimal]:
        """The range's prices, low then high, in quote per risky."""
        a = self.price(get_sqrt_ratio_at_tick(tick_lower))
        b = self.price(get_sqrt_ratio_at_tick(tick_upper))
        return min(a, b), max(a, b)

    def value_in_quote(self, sqrt_price_x96: int, amounts: TokenAmounts) -> int:
        """Raw quote tokens the amounts are worth at the price, rounded down."""
        if self.quote == 0:
            return value_in_token0(sqrt_price_x96, amounts)
        return value_in_token1(sqrt_price_x96, amounts)

    def value_usd(self, sqrt_price_x96: int, amounts: TokenAmounts) -> Decimal:
        """Each token at its own mark (``analytics.ledger.Prices.usd``), as every surface does;
        ``sqrt_price_x96`` is not used (kept for the callers' symmetry with value_in_quote)."""
        prices = Prices(self.usd(self.token0.symbol), self.usd(self.token1.symbol), Decimal(1))
        return prices.usd((amounts.amount0, amounts.amount1), self.decimals)


def _pool_by_name(chain: Chain, name: str) -> PoolTokens:
    """A pool by name or address (``AddressBook.pool``: read from the chain when not known)."""
    return PoolTokens.of(chain.book, chain.book.pool(name))


def _pool_of_tokens(chain: Chain, token0: str, token1: str, fee: int) -> PoolTokens:
    """The pool of two token addresses and a fee (``AddressBook.pool_of``: found by the
    factory when not known)."""
    return PoolTokens.of(chain.book, chain.book.pool_of(token0, token1, fee))


def _history(
    chain: Chain, pool: str, window_seconds: int, step_seconds: int
) -> tuple[PriceHistory | None, str | None]:
    """The pool's oracle history, or None and why (too short yet)."""
    try:
        return fetch_oracle_history(
            chain.w3, pool, window_seconds=window_seconds, step_seconds=step_seconds
        ), None
    except RetryLater as exc:
        return None, str(exc)


def _quote_usd_history(
    chain: Chain, pool: PoolTokens, window_seconds: int, step_seconds: int
) -> PriceHistory | None:
    """The quote token's USD price over time from the oracle of its pool against a stablecoin
    the address book knows (the first one listed), or None when the quote is a stablecoin or has
    no such pool or its history is too short yet (then VaR holds the quote's USD price fixed, and
    says so)."""
    quote = pool.quote_token.symbol
    stable = chain.book.is_stablecoin
    if stable(quote):
        return None
    for info in chain.book.pools:
        pair = (info.token0, info.token1)
        if quote not in pair or not any(stable(t) for t in pair if t != quote):
            continue
        history, _why = _history(chain, info.address, window_seconds, step_seconds)
        if history is None:
            return None
        if info.token1 == quote:  # the history is the stablecoin's price in the quote token
            return PriceHistory(
                history.timestamps,
                1.0 / history.prices,
                averaging_seconds=history.averaging_seconds,
            )
        return history
    return None


# ------------------------------------------------------------------------------------ quote


@dataclass(frozen=True, slots=True)
class Outlook:
    """The expected-value model's view of a quoted range over one day (``strategy.ev``; float):
    fees from the pool's recent fee rate, LVR at the oracle's volatility, time in range."""

    ev: ExpectedValue
    fee_to_lvr: float
    sigma_annual: float

    @property
    def expects_loss(self) -> bool:
        return self.ev.fees_usd <= self.ev.lvr_usd

    @property
    def verdict(self) -> str:
        ev = self.ev
        rates = (
            f"expected fees {ev.fee_apr:.2%}/yr vs expected LVR {ev.lvr_apr:.2%}/yr at "
            f"{self.sigma_annual:.0%} volatility (fee/LVR {self.fee_to_lvr:.2f})"
        )
        if self.expects_loss:
            return f"do not LP here: {rates}; arbitrage takes more than the fees pay"
        return f"LP here: {rates}"


@dataclass(frozen=True, slots=True)
class PositionQuote:
    """What opening a position with ``capital0``/``capital1`` would do, per ``plan``, and the
    model's outlook for it (None, and why, when the pool has no fee or price history yet)."""

    pool: PoolTokens
    snapshot: ChainSnapshot
    strategy: str
    capital0: int
    capital1: int
    plan: OpenPlan
    outlook: Outlook | None = None
    no_outlook: str = ""
    health: PoolHealth | None = None  # the pool under the [health] rule at the quote's block


def quote_position(
    chain: Chain,
    pool_name: str,
    capital: Sequence[str],
    strategy_name: str,
    strategy: RangeStrategy,
    *,
    policy: RebalancePolicy | None = None,
    history_seconds: int = 24 * 3600,
    history_step_seconds: int = 300,
    health_rule: HealthRule | None = None,
) -> PositionQuote:
    """Plan the swap and mint that put ``capital`` into the range ``strategy`` picks now
    (``policy``'s horizon and costs when given: a configured position's; else the defaults),
    and the pool's health under ``health_rule`` at the same block and marks.

    Solved by ``plan_open`` on ``Pool`` built from the pool's snapshot (``to_pool``): exact within
    the ticks read. Refused when the swap would leave them, or the plan is impossible.
    """
    pool = _pool_by_name(chain, pool_name)
    amount0, amount1 = capital_amounts(capital, pool.token0, pool.token1)
    snap = chain.reader.fetch_pool_state(pool.info.address, twap_seconds=(0,))
    pool = chain.marks(pool, snap.block_number)
    if policy is None:
        policy = RebalancePolicy(strategy=strategy)
    plan, outlook, no_outlook = _choose_open(
        chain, pool, snap, policy, amount0, amount1, strategy_name,
        history_seconds=history_seconds, history_step_seconds=history_step_seconds,
    )  # fmt: skip
    if plan.swap is not None:
        low, high = snap.tick_range_known
        if not low <= plan.swap.tick_after <= high:
            raise Refused(
                f"the swap would move the price to tick {plan.swap.tick_after}, beyond the ticks "
                f"read [{low}, {high}]: the quote would not be exact"
            )
    health = None
    if health_rule is not None:
        from lpbot.execution.health import health_at

        assert pool.marks is not None
        health = health_at(
            snap,
            pool.marks,
            symbols=(pool.token0.symbol, pool.token1.symbol),
            decimals=pool.decimals,
            rule=health_rule,
        )
    return PositionQuote(
        pool, snap, strategy_name, amount0, amount1, plan, outlook, no_outlook, health
    )


def _choose_open(
    chain: Chain,
    pool: PoolTokens,
    snap: ChainSnapshot,
    policy: RebalancePolicy,
    amount0: int,
    amount1: int,
    strategy_name: str,
    *,
    history_seconds: int = 24 * 3600,
    history_step_seconds: int = 300,
) -> tuple[OpenPlan, Outlook | None, str]:
    """The open plan in the range ``policy`` chooses on ``snap`` (the model's width for an
    ``"auto"`` one), its outlook, or None and why there is none."""
    strategy = policy.strategy
    analytics = pool_snapshot(snap, *pool.decimals)
    history = PriceHistory([], [])
    found, why = _history(chain, pool.info.address, history_seconds, history_step_seconds)
    if found is None and isinstance(strategy, VolatilityBand | SkewedBand):
        raise Refused(f"--strategy {strategy_name} needs the pool's price history: {why}")
    if found is not None:
        history = found
    market, no_outlook = _market(chain, pool, snap, analytics) if found else (None, why or "")
    try:
        if market is not None and len(history) >= 2:
            rng, _ = policy.choose_open_range(analytics, history, market, amount0, amount1)
        else:
            rng = strategy.range_for(analytics, history)
        plan = plan_open(snap.to_pool(), rng, amount0, amount1)
    except ValueError as exc:
        raise Refused(f"no plan for this capital in {pool.short_name}: {exc}") from exc
    outlook = None
    if market is not None and len(history) >= 2:
        outlook = _outlook(policy, analytics, history, market, plan)
    return plan, outlook, no_outlook


class ExpectedLoss(Refused):
    """The model expects the open to lose (fees below LVR) and no one accepted that."""


def open_range_chooser(
    chain: Chain,
    pool_name: str,
    policy: RebalancePolicy,
    capital: tuple[int, int],
    *,
    accept_expected_loss: bool,
    label: str,
    health_rule: HealthRule | None = None,
    accept_unhealthy: bool = False,
    accept_hints: Sequence[str] = (),
) -> Callable[[ChainSnapshot], Range]:
    """The range a configured position opens in, on the snapshot its open is planned at: the
    same width ``position quote`` chooses (``_choose_open``); ``UnhealthyPool`` where the pool
    is below ``health_rule`` at that snapshot, unless ``accept_unhealthy`` (``accept_hints``:
    how a person accepts it); ``ExpectedLoss`` where the model expects a loss, unless
    ``accept_expected_loss``."""
    from lpbot.execution.health import health_at, refuse_unhealthy

    def choose(snap: ChainSnapshot) -> Range:
        pool = chain.marks(_pool_by_name(chain, pool_name), snap.block_number)
        if health_rule is not None:
            assert pool.marks is not None
            health = health_at(
                snap,
                pool.marks,
                symbols=(pool.token0.symbol, pool.token1.symbol),
                decimals=pool.decimals,
                rule=health_rule,
            )
            refuse_unhealthy(
                health, what="opening", label=label, accepted=accept_unhealthy, hints=accept_hints
            )
        plan, outlook, _ = _choose_open(chain, pool, snap, policy, *capital, label)
        if outlook is not None and outlook.expects_loss and not accept_expected_loss:
            raise ExpectedLoss(
                f"{label}: {outlook.verdict}; set accept_expected_loss = true in "
                "[positions.open] (or give --accept-expected-loss) to open anyway"
            )
        return plan.range

    return choose


def _market(
    chain: Chain, pool: PoolTokens, snap: ChainSnapshot, analytics: Any
) -> tuple[MarketInputs | None, str]:
    """The pool's fee rate over the last blocks, the tokens' marks and the gas of a rebalance
    (``execution.decide``'s units) at the snapshot's block; None and why when there is none."""
    from lpbot.chain.submit import fetch_fees
    from lpbot.execution.decide import REBALANCE_GAS, measure_fee_rate

    rate = measure_fee_rate(chain.reader, pool.info.address, snap, pool.decimals)
    if rate.seconds <= 0:
        return None, "no time passed in the pool's last blocks to measure its fee rate"
    marks = pool.marks
    weth = float(marks.usd("WETH")) if marks is not None and "WETH" in marks.marks else 0.0
    gas_usd = REBALANCE_GAS * fetch_fees(chain.w3).max_fee_per_gas * weth / 1e18
    return MarketInputs(
        token0_usd=float(pool.usd(pool.token0.symbol)),
        token1_usd=float(pool.usd(pool.token1.symbol)),
        rebalance_gas_usd=gas_usd,
        compound_gas_usd=gas_usd / 2,
        fee_rate=rate,
    ), ""


def _outlook(
    policy: RebalancePolicy,
    analytics: Any,
    history: PriceHistory,
    market: MarketInputs,
    plan: OpenPlan,
) -> Outlook:
    """The plan's liquidity left in its range for a day (``strategy.ev``)."""
    from lpbot.analytics.volatility import annualised, ewma_volatility
    from lpbot.strategy.ev import expected_value, fee_to_lvr_ratio
    from lpbot.uniswap.constants import Q96

    sigma = max(
        ewma_volatility(history, policy.vol_short_halflife_seconds),
        ewma_volatility(history, policy.vol_long_halflife_seconds),
    )
    rate = market.fee_rate
    usd1 = market.token1_usd / 10.0**analytics.decimals1
    usd0 = market.token0_usd / 10.0**analytics.decimals0
    per_l_usd = rate.token0_per_second * usd0 + rate.token1_per_second * usd1
    sqrt_price = analytics.sqrt_price_x96 / Q96
    ev = expected_value(
        sqrt_price=sqrt_price,
        sqrt_lower=get_sqrt_ratio_at_tick(plan.range.tick_lower) / Q96,
        sqrt_upper=get_sqrt_ratio_at_tick(plan.range.tick_upper) / Q96,
        liquidity=float(plan.liquidity),
        sigma=sigma,
        horizon_seconds=86_400.0,
        fee_flow_usd=per_l_usd * analytics.liquidity,
        others_liquidity=float(analytics.liquidity),
        token1_usd=usd1,
    )
    return Outlook(ev, fee_to_lvr_ratio(per_l_usd / usd1, sqrt_price, sigma), annualised(sigma))


def _amount(raw: int, token: TokenInfo) -> str:
    return f"{to_units(raw, token.decimals):,f} {token.symbol}"


def _price_json(p: Decimal) -> str:
    """Twelve significant digits, as a decimal string."""
    with localcontext() as ctx:
        ctx.prec = 12
        return str(+p)


def _fmt_price(p: Decimal) -> str:
    """Six significant digits, without an exponent."""
    if p == 0:
        return "0"
    places = max(0, 6 - (p.adjusted() + 1))
    with localcontext() as ctx:
        ctx.prec = 80
        return f"{p.quantize(Decimal(1).scaleb(-places)):,f}"


def _plan_json(pool: PoolTokens, plan: OpenPlan) -> dict[str, Any]:
    swap = plan.swap
    low, high = pool.edges(plan.range.tick_lower, plan.range.tick_upper)
    return {
        "range": {
            "tick_lower": plan.range.tick_lower,
            "tick_upper": plan.range.tick_upper,
            "price_low": _price_json(low),
            "price_high": _price_json(high),
            "price_unit": pool.price_unit,
        },
        "swap": None
        if swap is None
        else {
            "zero_for_one": swap.zero_for_one,
            "token_in": (pool.token0 if swap.zero_for_one else pool.token1).symbol,
            "token_out": (pool.token1 if swap.zero_for_one else pool.token0).symbol,
            "amount_in": str(swap.amount_in),
            "expected_out": str(swap.expected_out),
            "fee_amount": str(swap.fee_amount),
            "sqrt_price_after_x96": str(swap.sqrt_price_after_x96),
            "tick_after": swap.tick_after,
            "price_after": _price_json(pool.price(swap.sqrt_price_after_x96)),
        },
        "deposit": {
            "liquidity": str(plan.liquidity),
            "amount0": str(plan.amount0),
            "amount1": str(plan.amount1),
            "sqrt_price_x96": str(plan.sqrt_price_x96),
        },
        "dust": {
            "amount0": str(plan.dust0),
            "amount1": str(plan.dust1),
            "bound0": str(plan.dust_bound0),
            "bound1": str(plan.dust_bound1),
        },
    }


def _pool_json(pool: PoolTokens, snap: ChainSnapshot) -> dict[str, Any]:
    return {
        "name": pool.short_name,
        "address": pool.info.address,
        "token0": {"symbol": pool.token0.symbol, "decimals": pool.token0.decimals},
        "token1": {"symbol": pool.token1.symbol, "decimals": pool.token1.decimals},
        "fee": snap.fee,
        "block": snap.block_number,
        "timestamp": snap.block_timestamp,
        "tick": snap.slot0.tick,
        "sqrt_price_x96": str(snap.slot0.sqrt_price_x96),
        "price": _price_json(pool.price(snap.slot0.sqrt_price_x96)),
        "price_unit": pool.price_unit,
        "marks": _marks_json(pool.marks),
    }


def _marks_text(marks: Marks | None) -> str:
    if marks is None:
        return "none"
    text = "; ".join(
        f"{t} {m.usd:,.4f} USD ({m.source})" for t, m in marks.marks.items() if t != "WBTC"
    )
    return text + "".join(f"\n  ALERT: {a.message}" for a in marks.alerts)


def _marks_json(marks: Marks | None) -> dict[str, Any] | None:
    if marks is None:
        return None
    return {
        "block": marks.block,
        "usd": {t: str(m.usd) for t, m in marks.marks.items()},
        "sources": {t: f"{m.source} {m.route_text}" for t, m in marks.marks.items()},
        "alerts": [a.message for a in marks.alerts],
    }


def quote_json(q: PositionQuote) -> dict[str, Any]:
    deposit = TokenAmounts(q.plan.amount0, q.plan.amount1)
    return {
        "pool": _pool_json(q.pool, q.snapshot),
        "strategy": q.strategy,
        "capital": {"amount0": str(q.capital0), "amount1": str(q.capital1)},
        **_plan_json(q.pool, q.plan),
        "deposit_value_usd": str(q.pool.value_usd(q.plan.sqrt_price_x96, deposit).quantize(_CENT)),
        "outlook": None
        if q.outlook is None
        else {
            "fee_apr": q.outlook.ev.fee_apr,
            "lvr_apr": q.outlook.ev.lvr_apr,
            "fee_to_lvr": q.outlook.fee_to_lvr,
            "volatility": q.outlook.sigma_annual,
            "time_in_range_1d": q.outlook.ev.time_in_range,
            "expected_net_usd_1d": q.outlook.ev.net_usd,
            "expects_loss": q.outlook.expects_loss,
            "verdict": q.outlook.verdict,
        },
        "no_outlook": q.no_outlook or None,
        "health": None if q.health is None else q.health.to_json(),
    }


def _rows(rows: Sequence[tuple[str, str]], indent: int = 2) -> list[str]:
    width = max(LABEL_WIDTH, *(len(label) for label, _ in rows))
    return [f"{' ' * indent}{label:<{width}}  {value}" for label, value in rows]


def _plan_lines(pool: PoolTokens, plan: OpenPlan) -> list[str]:
    t0, t1 = pool.token0, pool.token1
    low, high = pool.edges(plan.range.tick_lower, plan.range.tick_upper)
    rows = [
        (
            "range",
            f"ticks [{plan.range.tick_lower}, {plan.range.tick_upper})  "
            f"{_fmt_price(low)} - {_fmt_price(high)} {pool.price_unit}",
        )
    ]
    swap = plan.swap
    if swap is None:
        rows.append(("swap", "none"))
    else:
        tin, tout = (t0, t1) if swap.zero_for_one else (t1, t0)
        rows += [
            ("swap", f"{tin.symbol} -> {tout.symbol}"),
            ("  amount in", _amount(swap.amount_in, tin)),
            ("  expected out", _amount(swap.expected_out, tout)),
            ("  fee", _amount(swap.fee_amount, tin)),
            (
                "  price after",
                f"{pool.price_text(swap.sqrt_price_after_x96)} (tick {swap.tick_after})",
            ),
        ]
    rows += [
        ("deposit", f"{_amount(plan.amount0, t0)} + {_amount(plan.amount1, t1)}"),
        ("liquidity", str(plan.liquidity)),
        (
            "dust",
            f"{_amount(plan.dust0, t0)} + {_amount(plan.dust1, t1)} "
            f"(bounds {plan.dust_bound0}, {plan.dust_bound1} raw)",
        ),
    ]
    return _rows(rows)


def render_quote(q: PositionQuote) -> str:
    pool, snap = q.pool, q.snapshot
    deposit = TokenAmounts(q.plan.amount0, q.plan.amount1)
    lines = [
        f"quote: {pool.short_name} ({pool.info.address}), block {snap.block_number}, "
        f"strategy {q.strategy}",
        *_rows(
            [
                ("price", f"{pool.price_text(snap.slot0.sqrt_price_x96)} (tick {snap.slot0.tick})"),
                (
                    "capital",
                    f"{_amount(q.capital0, pool.token0)} + {_amount(q.capital1, pool.token1)}",
                ),
            ]
        ),
        *_plan_lines(pool, q.plan),
        *_rows([("deposit value", f"{q.pool.value_usd(q.plan.sqrt_price_x96, deposit):,.2f} USD")]),
    ]
    if q.outlook is not None:
        ev = q.outlook.ev
        lines += _rows(
            [
                ("expected fees", f"{ev.fee_apr:.2%}/yr ({ev.time_in_range:.0%} in range, 1 day)"),
                ("expected LVR", f"{ev.lvr_apr:.2%}/yr"),
                ("verdict", q.outlook.verdict),
            ]
        )
    else:
        lines += _rows([("verdict", f"unknown: {q.no_outlook}")])
    if q.health is not None:
        lines += _rows([("pool health", q.health.line())])
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- show


@dataclass(frozen=True, slots=True)
class LiquidityEvent:
    """A NonfungiblePositionManager ``IncreaseLiquidity`` or ``DecreaseLiquidity`` log."""

    kind: Literal["increase", "decrease"]
    block_number: int
    log_index: int
    liquidity: int
    amount0: int
    amount1: int


def fetch_liquidity_events(
    w3: Web3, npm: str, token_id: int, *, from_block: int = 0
) -> list[LiquidityEvent]:
    """The position's ``IncreaseLiquidity``/``DecreaseLiquidity`` logs since ``from_block``,
    in chain order (``eth_getLogs`` filtered on the indexed ``tokenId``)."""
    c = w3.eth.contract(
        address=to_checksum_address(npm), abi=artifacts.abi("NonfungiblePositionManager")
    )
    events: list[LiquidityEvent] = []
    kinds: tuple[tuple[Literal["increase", "decrease"], Any], ...] = (
        ("increase", c.events.IncreaseLiquidity),
        ("decrease", c.events.DecreaseLiquidity),
    )
    for kind, event in kinds:
        try:
            logs = event().get_logs(argument_filters={"tokenId": token_id}, fromBlock=from_block)
        except (ValueError, OSError) as exc:  # the node refused the range, or is unreachable
            raise RetryLater(f"eth_getLogs for position {token_id} failed: {exc}") from exc
        for log in logs:
            a = log["args"]
            events.append(
                LiquidityEvent(
                    kind,
                    log["blockNumber"],
                    log["logIndex"],
                    a["liquidity"],
                    a["amount0"],
                    a["amount1"],
                )
            )
    return sorted(events, key=lambda e: (e.block_number, e.log_index))


@dataclass(frozen=True, slots=True)
class Opening:
    """What was put in: net amounts deposited (increases less decreases, floored at 0) and the
    pool's price at the end of the block of the first deposit."""

    block_number: int
    timestamp: int
    amount0: int
    amount1: int
    sqrt_price_x96: int | None  # None: the node keeps no state that old
    increases: int
    decreases: int


@dataclass(frozen=True, slots=True)
class PositionReport:
    """A position as read at one block (module docstring for the units)."""

    token_id: int
    owner: str
    pool: PoolTokens
    snapshot: ChainSnapshot
    tick_lower: int
    tick_upper: int
    liquidity: int
    amounts: TokenAmounts
    fees: TokenAmounts
    opening: Opening | None
    greeks: Greeks
    var: tuple[VarEstimate, ...]
    var_note: str | None

    @property
    def sqrt_price_x96(self) -> int:
        return self.snapshot.slot0.sqrt_price_x96

    @property
    def in_range(self) -> bool:
        return self.tick_lower <= self.snapshot.slot0.tick < self.tick_upper

    def edge_distances(self) -> tuple[Decimal, Decimal, int, int]:
        """Percent moves of the shown price to the low and high edges; ticks to the lower and
        upper ticks (``tick - lower``, ``upper - tick``)."""
        price = self.pool.price(self.sqrt_price_x96)
        low, high = self.pool.edges(self.tick_lower, self.tick_upper)
        tick = self.snapshot.slot0.tick
        return (
            (low / price - 1) * 100,
            (high / price - 1) * 100,
            tick - self.tick_lower,
            self.tick_upper - tick,
        )

    def impermanent_loss(self) -> tuple[Decimal | None, Decimal | None]:
        """Principal over holding the net deposit, and over a 50/50 portfolio of the deposit's
        value at the opening price, both minus one, at today's price (fees excluded)."""
        if self.opening is None:
            return None, None
        o = self.opening
        p = raw_price(self.sqrt_price_x96)  # raw token1 per raw token0
        with localcontext() as ctx:
            ctx.prec = 60
            now = self.amounts.amount0 * p + self.amounts.amount1
            hold = o.amount0 * p + o.amount1
            vs_hold = now / hold - 1 if hold > 0 else None
            vs_fifty = None
            if o.sqrt_price_x96 is not None:
                p0 = raw_price(o.sqrt_price_x96)
                v0 = o.amount0 * p0 + o.amount1
                fifty = v0 / 2 * (p / p0) + v0 / 2
                vs_fifty = now / fifty - 1 if fifty > 0 else None
        return vs_hold, vs_fifty


def _opening(chain: Chain, pool: PoolTokens, events: Sequence[LiquidityEvent]) -> Opening | None:
    if not events:
        return None
    first = events[0]
    a0 = sum(e.amount0 if e.kind == "increase" else -e.amount0 for e in events)
    a1 = sum(e.amount1 if e.kind == "increase" else -e.amount1 for e in events)
    pool_c = chain.contract("UniswapV3Pool", pool.info.address)
    sqrt_price: int | None
    try:
        sqrt_price = pool_c.functions.slot0().call(block_identifier=first.block_number)[0]
    except (ContractLogicError, BadFunctionCallOutput, ValueError):  # no state at that block
        sqrt_price = None
    timestamp = chain.w3.eth.get_block(first.block_number)["timestamp"]
    return Opening(
        first.block_number,
        timestamp,
        max(a0, 0),
        max(a1, 0),
        sqrt_price,
        sum(e.kind == "increase" for e in events),
        sum(e.kind == "decrease" for e in events),
    )


def _position_pool(chain: Chain, token_id: int) -> tuple[PoolTokens, str]:
    npm = chain.contract("NonfungiblePositionManager")
    try:
        p = npm.functions.positions(token_id).call()
        owner = npm.functions.ownerOf(token_id).call()
    except ContractLogicError as exc:
        # web3's message is the revert text alone ("execution reverted: Invalid token ID"); its
        # str() carries the raw revert data too
        reason = getattr(exc, "message", None) or "reverted"
        raise Refused(
            f"position {token_id} does not exist on this chain ({reason}); give the NFT's token id"
        ) from exc
    return _pool_of_tokens(chain, p[2], p[3], p[4]), owner


def show_position(
    chain: Chain,
    token_id: int,
    *,
    from_block: int = 0,
    history_seconds: int = 6 * 3600,
    history_step_seconds: int = 60,
) -> PositionReport:
    """Read NFT position ``token_id`` and everything ``show`` reports on it.

    Fees owed are exact (what ``collect`` would pay now); the opening comes from the position's
    liquidity logs since ``from_block``; VaR (99%, 1/5/30 minutes) from the pool's oracle over
    ``history_seconds`` in ``history_step_seconds`` steps (a note when it is too short).
    """
    pool, owner = _position_pool(chain, token_id)
    snap = chain.reader.fetch_pool_state(pool.info.address, token_ids=[token_id], twap_seconds=(0,))
    pool = chain.marks(pool, snap.block_number)
    analytics = pool_snapshot(snap, *pool.decimals)
    position = position_snapshot(snap.positions[token_id])
    npm = snap.positions[token_id].npm
    amounts = position_amounts(
        snap.slot0.sqrt_price_x96, npm.tick_lower, npm.tick_upper, npm.liquidity
    )
    fees = uncollected_fees(analytics, position)
    events = fetch_liquidity_events(
        chain.w3, chain.manifest.contracts["NonfungiblePositionManager"], token_id,
        from_block=from_block,
    )  # fmt: skip
    quote_usd = float(pool.usd(pool.quote_token.symbol))
    greeks = position_greeks(analytics, position, quote=pool.quote, quote_usd=quote_usd)
    history, note = _history(chain, pool.info.address, history_seconds, history_step_seconds)
    var: tuple[VarEstimate, ...] = ()
    if history is not None:
        quote_history = _quote_usd_history(chain, pool, history_seconds, history_step_seconds)
        try:
            var = position_var(
                analytics, position, history, quote=pool.quote, quote_usd=quote_usd,
                quote_usd_history=quote_history, horizons=VAR_HORIZONS,
            )  # fmt: skip
        except ValueError as exc:  # too few prices for a volatility
            note = f"no VaR: {exc}"
    return PositionReport(
        token_id=token_id,
        owner=owner,
        pool=pool,
        snapshot=snap,
        tick_lower=npm.tick_lower,
        tick_upper=npm.tick_upper,
        liquidity=npm.liquidity,
        amounts=amounts,
        fees=fees,
        opening=_opening(chain, pool, events),
        greeks=greeks,
        var=var,
        var_note=note,
    )


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _dec(x: Decimal | None, places: int | None = None) -> str | None:
    if x is None:
        return None
    return str(x.quantize(Decimal(1).scaleb(-places)) if places is not None else x)


def report_json(r: PositionReport) -> dict[str, Any]:
    pool, sp = r.pool, r.sqrt_price_x96
    low, high = pool.edges(r.tick_lower, r.tick_upper)
    to_low, to_high, ticks_low, ticks_high = r.edge_distances()
    total = _sum(r.amounts, r.fees)
    vs_hold, vs_fifty = r.impermanent_loss()
    g = r.greeks
    o = r.opening
    return {
        "token_id": r.token_id,
        "owner": r.owner,
        "pool": _pool_json(pool, r.snapshot),
        "range": {
            "tick_lower": r.tick_lower,
            "tick_upper": r.tick_upper,
            "price_low": _price_json(low),
            "price_high": _price_json(high),
            "in_range": r.in_range,
            "to_low_pct": _dec(to_low, 4),
            "to_high_pct": _dec(to_high, 4),
            "ticks_from_lower": ticks_low,
            "ticks_to_upper": ticks_high,
        },
        "liquidity": str(r.liquidity),
        "amounts": {"amount0": str(r.amounts.amount0), "amount1": str(r.amounts.amount1)},
        "fees": {"amount0": str(r.fees.amount0), "amount1": str(r.fees.amount1)},
        "value": {
            "principal_usd": _dec(pool.value_usd(sp, r.amounts), 2),
            "fees_usd": _dec(pool.value_usd(sp, r.fees), 2),
            "total_usd": _dec(pool.value_usd(sp, total), 2),
            "total_in_token0": str(value_in_token0(sp, total)),
            "total_in_token1": str(value_in_token1(sp, total)),
        },
        "opening": None
        if o is None
        else {
            "block": o.block_number,
            "timestamp": o.timestamp,
            "amount0": str(o.amount0),
            "amount1": str(o.amount1),
            "sqrt_price_x96": None if o.sqrt_price_x96 is None else str(o.sqrt_price_x96),
            "increases": o.increases,
            "decreases": o.decreases,
        },
        "impermanent_loss": {
            "vs_hold": None if vs_hold is None else float(vs_hold),
            "vs_fifty_fifty": None if vs_fifty is None else float(vs_fifty),
        },
        "greeks": {
            "risky": pool.risky_token.symbol,
            "quote": pool.quote_token.symbol,
            "price": g.price,
            "delta": g.delta,
            "gamma": g.gamma,
            "delta_usd": g.delta_usd,
            "dollar_gamma_usd_per_pct": g.dollar_gamma,
        },
        "var": [
            {
                "horizon_seconds": v.horizon_seconds,
                "confidence": v.confidence,
                "historical_usd": _finite(v.historical_usd),
                "parametric_usd": _finite(v.parametric_usd),
                "delta_normal_usd": _finite(v.delta_normal_usd),
                "historical_scenarios": v.historical_scenarios,
                "price_basis": v.price_basis,
            }
            for v in r.var
        ],
        "var_note": r.var_note,
    }


def _sum(a: TokenAmounts, b: TokenAmounts) -> TokenAmounts:
    return TokenAmounts(RawAmount(a.amount0 + b.amount0), RawAmount(a.amount1 + b.amount1))


def _pct(x: Decimal | float | None) -> str:
    return "n/a" if x is None else f"{float(x):+.4f} %"


def render_report(r: PositionReport) -> str:
    pool, sp, snap = r.pool, r.sqrt_price_x96, r.snapshot
    t0, t1 = pool.token0, pool.token1
    low, high = pool.edges(r.tick_lower, r.tick_upper)
    to_low, to_high, ticks_low, ticks_high = r.edge_distances()
    total = _sum(r.amounts, r.fees)
    lines = [
        f"position {r.token_id}: {pool.short_name} ({pool.info.address}), owner {r.owner}, "
        f"block {snap.block_number}",
        *_rows(
            [
                (
                    "range",
                    f"ticks [{r.tick_lower}, {r.tick_upper})  "
                    f"{_fmt_price(low)} - {_fmt_price(high)} {pool.price_unit}",
                ),
                (
                    "price",
                    f"{pool.price_text(sp)} (tick {snap.slot0.tick}): "
                    f"{'in range' if r.in_range else 'OUT OF RANGE'}",
                ),
                ("marks", _marks_text(pool.marks)),
                (
                    "to the edges",
                    f"low {_pct(to_low)}, high {_pct(to_high)}; tick - lower {ticks_low}, "
                    f"upper - tick {ticks_high}",
                ),
                ("liquidity", str(r.liquidity)),
            ]
        ),
        "",
        f"  {'':<10}  {t0.symbol:>24}  {t1.symbol:>28}  {'USD':>14}",
    ]
    for label, a in (("principal", r.amounts), ("fees owed", r.fees), ("total", total)):
        lines.append(
            f"  {label:<10}  {to_units(a.amount0, t0.decimals):>24,f}  "
            f"{to_units(a.amount1, t1.decimals):>28,f}  {pool.value_usd(sp, a):>14,.2f}"
        )
    lines.append(
        f"  value: {_amount(value_in_token0(sp, total), t0)} = "
        f"{_amount(value_in_token1(sp, total), t1)}"
    )
    lines.append("")
    o = r.opening
    if o is None:
        lines.append("  opening: no IncreaseLiquidity log found")
    else:
        opened_at = "" if o.sqrt_price_x96 is None else f" at {pool.price_text(o.sqrt_price_x96)}"
        lines.append(
            f"  opened in block {o.block_number}{opened_at}: net deposit "
            f"{_amount(o.amount0, t0)} + {_amount(o.amount1, t1)} "
            f"({o.increases} increase(s), {o.decreases} decrease(s))"
        )
    vs_hold, vs_fifty = r.impermanent_loss()
    g = r.greeks
    risky, quote = pool.risky_token.symbol, pool.quote_token.symbol
    lines += _rows(
        [
            ("IL vs hold", _pct(None if vs_hold is None else vs_hold * 100)),
            ("IL vs 50/50", _pct(None if vs_fifty is None else vs_fifty * 100)),
            ("delta", f"{g.delta:,.6f} {risky}  ({g.delta_usd:,.2f} USD)"),
            (
                "gamma",
                f"{g.gamma:.6g} {risky} per {quote}  (dollar gamma {g.dollar_gamma:,.2f} USD "
                "per +1 %: the delta change, at today's price)",
            ),
        ]
    )
    lines.append("")
    if r.var:
        lines.append(f"  VaR {r.var[0].confidence:.0%}    historical    parametric  delta-normal")
        for v in r.var:
            hist = "not enough" if v.historical_usd is None else f"{v.historical_usd:,.2f}"
            lines.append(
                f"  {v.horizon_seconds / 60:>4g} min  {hist:>12}  {v.parametric_usd:>12,.2f}  "
                f"{v.delta_normal_usd:>12,.2f}  USD ({v.historical_scenarios} independent windows)"
            )
        lines.append(
            f"  VaR from {r.var[0].price_basis}; historical: at least {DEFAULT_MIN_WINDOWS} "
            "independent windows"
        )
    if r.var_note:
        lines.append(f"  VaR: {r.var_note}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- plan


@dataclass(frozen=True, slots=True)
class PositionPlan:
    token_id: int
    pool: PoolTokens
    snapshot: ChainSnapshot
    strategy: str
    decision: Decision


def plan_position(
    chain: Chain,
    token_id: int,
    strategy_name: str,
    strategy: RangeStrategy,
    *,
    from_block: int = 0,
    policy: RebalancePolicy | None = None,
) -> PositionPlan:
    """The rebalance policy's decision on ``token_id`` (``decide_position``), its age taken from
    the block of its first deposit; ``policy``: a configured position's (else the defaults
    with ``strategy``)."""
    from lpbot.execution.decide import decide_position

    pool, _owner = _position_pool(chain, token_id)
    events = fetch_liquidity_events(
        chain.w3, chain.manifest.contracts["NonfungiblePositionManager"], token_id,
        from_block=from_block,
    )  # fmt: skip
    opened_at = chain.w3.eth.get_block(events[0].block_number)["timestamp"] if events else 0
    # the marks of the block the decision reads (the latest), like ``show``
    block = chain.w3.eth.block_number
    pool = chain.marks(pool, block)
    try:
        view = decide_position(
            chain.w3,
            chain.reader,
            pool.info.address,
            token_id,
            policy if policy is not None else RebalancePolicy(strategy=strategy),
            decimals=pool.decimals,
            usd=(pool.usd(pool.token0.symbol), pool.usd(pool.token1.symbol)),
            native_usd=pool.marks.usd("WETH") if pool.marks else Decimal(0),
            opened_at=opened_at,
            block=block,  # the pool read at the marks' block
        )
    except ValueError as exc:
        raise Refused(f"no decision on position {token_id}: {exc}") from exc
    except DecodingError as exc:  # an empty answer: the node keeps no state that far back
        raise RetryLater(
            f"no decision on position {token_id}: the pool cannot be read "
            "back for its fee rate (a devnet started from its cache "
            f"has no older state: let some blocks pass, e.g. `lpbot devnet market`): {exc}"
        ) from exc
    return PositionPlan(token_id, pool, view.snapshot, strategy_name, view.decision)


def decision_json(p: PositionPlan) -> dict[str, Any]:
    d = p.decision
    s = d.signals
    out: dict[str, Any] = {
        "token_id": p.token_id,
        "pool": _pool_json(p.pool, p.snapshot),
        "strategy": p.strategy,
        "decision": type(d).__name__,
        "reason": d.reason,
        "reasons": list(d.reasons),
        "signals": {
            "in_range": s.in_range,
            "edge_distance_pct": _finite(s.edge_distance_pct),
            "age_seconds": s.age_seconds,
            "vol_short_per_sqrt_second": _finite(s.vol_short),
            "vol_long_per_sqrt_second": _finite(s.vol_long),
            "vol_ratio": _finite(s.vol_ratio),
            "fees_usd": _finite(s.fees_usd),
        },
    }
    if isinstance(d, Rebalance):
        out["triggers"] = [t.value for t in d.triggers]
        out["expected_gain_usd"] = d.expected_gain_usd
        out["expected_cost_usd"] = d.expected_cost_usd
        out["costs"] = {
            "gas_usd": d.costs.gas_usd,
            "swap_fee_usd": d.costs.swap_fee_usd,
            "price_impact_usd": d.costs.price_impact_usd,
            "slippage_usd": d.costs.slippage_usd,
        }
        out["plan"] = _plan_json(p.pool, d.plan)
    elif isinstance(d, Compound):
        out["fees0"] = str(d.fees0)
        out["fees1"] = str(d.fees1)
        out["fees_usd"] = d.fees_usd
        out["gas_usd"] = d.gas_usd
        out["plan"] = None if d.plan is None else _plan_json(p.pool, d.plan)
    else:
        out["triggers"] = [t.value for t in d.triggers]
        out["expected_gain_usd"] = _finite(d.expected_gain_usd)
        out["expected_cost_usd"] = _finite(d.expected_cost_usd)
    return out


def render_decision(p: PositionPlan) -> str:
    d = p.decision
    lines = [
        f"position {p.token_id}: {p.pool.short_name}, block {p.snapshot.block_number}, "
        f"strategy {p.strategy}",
        f"decision: {type(d).__name__}: {d.reason}",
    ]
    lines += [f"  - {r}" for r in d.reasons]
    lines += _rows([("marks", _marks_text(p.pool.marks))])
    if isinstance(d, Rebalance):
        c = d.costs
        lines += _rows(
            [
                ("expected gain", f"{d.expected_gain_usd:,.2f} USD"),
                (
                    "expected cost",
                    f"{d.expected_cost_usd:,.2f} USD (gas {c.gas_usd:,.2f}, swap fee "
                    f"{c.swap_fee_usd:,.2f}, impact {c.price_impact_usd:,.2f}, slippage "
                    f"{c.slippage_usd:,.2f})",
                ),
            ]
        )
        lines.append("  new position:")
        lines += ["  " + line for line in _plan_lines(p.pool, d.plan)]
    elif isinstance(d, Compound):
        lines += _rows(
            [
                (
                    "fees owed",
                    f"{_amount(d.fees0, p.pool.token0)} + {_amount(d.fees1, p.pool.token1)} "
                    f"({d.fees_usd:,.2f} USD)",
                ),
                ("gas", f"{d.gas_usd:,.2f} USD"),
            ]
        )
        if d.plan is not None:
            lines.append("  added to the position:")
            lines += ["  " + line for line in _plan_lines(p.pool, d.plan)]
    return "\n".join(lines)
