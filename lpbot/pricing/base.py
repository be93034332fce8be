"""The price source port: what a mark is, and the checks every set of marks goes through.

A ``Mark`` is one token's price in USD at one block, with where it came from (``source``: the
adapter and its mode, e.g. ``pool:spot``, ``pool:twap600``, ``chainlink``) and the way it was
reached (``route``: the pools or feeds read, in order). Prices are ``Decimal`` (analytics); the
chain's raw numbers stay with the adapters. ``Marks`` is the set a valuation uses: every USD, ETH
and BTC figure of one snapshot comes from one ``Marks``, so two surfaces valuing the same
position at the same block print the same numbers.

A mark older than ``max_age_seconds``, two sources disagreeing by more than
``max_deviation_bps``, or a stablecoin more than ``depeg_bps`` off 1 USD is a ``PriceAlert`` on
the ``Marks``, never a silent fallback to another number. A token with no route raises
``NoPriceRoute`` naming the token and the chain; no made-up mark is ever returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from lpbot.errors import NeedsAttention

SOURCES = ("pools", "chainlink", "fixed")
STABLECOINS = frozenset({"USDC", "USDC.e", "USDT", "DAI"})
# the numeraires a ledger can be read in besides USD: their mark is that of these tokens
NUMERAIRE_TOKENS = {"ETH": "WETH", "BTC": "WBTC"}


class NoPriceRoute(NeedsAttention):
    """No pool or feed prices this token on this chain: configure one, or leave the token out."""

    def __init__(self, token: str, chain: str, why: str = "") -> None:
        self.token, self.chain = token, chain
        super().__init__(
            f"no price route for {token} on {chain}"
            + (f": {why}" if why else "")
            + " (a pool against the configured stablecoin or through WETH, or a Chainlink feed)"
        )


@dataclass(frozen=True, slots=True)
class PricingConfig:
    """How marks are taken and checked (frozen; per chain).

    ``stable`` is the stablecoin pools are quoted against; ``twap_seconds`` 0 marks at the pool's
    spot price, otherwise at its time-weighted mean over that window (``OracleLibrary.consult``).
    ``source``: ``pools`` (the chain's pools, checked against its Chainlink feeds), ``chainlink``
    (the feeds alone) or ``fixed`` (``fixed``'s constant marks: the devnet only).
    """

    stable: str = "USDC"
    twap_seconds: int = 0
    max_age_seconds: int = 3 * 3600
    max_deviation_bps: int = 100
    depeg_bps: int = 50
    source: str = "pools"
    fixed: tuple[tuple[str, Decimal], ...] = ()  # (token, USD) for source "fixed"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"pricing: source must be one of {', '.join(SOURCES)}")
        if (self.source == "fixed") != bool(self.fixed):
            raise ValueError("pricing: fixed prices go with source 'fixed', and it needs them")
        if self.twap_seconds < 0 or self.max_age_seconds <= 0:
            raise ValueError("pricing: twap_seconds must be >= 0 and max_age_seconds > 0")
        if self.max_deviation_bps <= 0 or self.depeg_bps <= 0:
            raise ValueError("pricing: max_deviation_bps and depeg_bps must be > 0")


@dataclass(frozen=True, slots=True)
class Mark:
    """One token's USD price at one block, and how it was found."""

    token: str
    usd: Decimal
    source: str
    route: tuple[str, ...]
    block: int
    timestamp: int  # the time the price is from (a feed's ``updatedAt``; a pool's block time)
    # a feed's heartbeat (seconds): it may go that long without an update and still be current
    heartbeat: int = 0

    def __post_init__(self) -> None:
        if not self.usd > 0:
            raise ValueError(f"mark of {self.token} must be > 0, got {self.usd}")

    @property
    def route_text(self) -> str:
        return " -> ".join(self.route)


@dataclass(frozen=True, slots=True)
class PriceAlert:
    # "stale" | "disagree" | "depeg" | "unpriced" | "unchecked" (a mark no feed checks, from a
    # pool found through the factory: shown, never auto-executed on)
    kind: str
    token: str
    message: str


@dataclass(frozen=True)
class Marks:
    """The marks one valuation uses, all at ``block`` (the checks' alerts included)."""

    chain: str
    block: int
    timestamp: int
    marks: dict[str, Mark]
    checks: dict[str, Mark] = field(default_factory=dict)  # the second source, where one exists
    alerts: tuple[PriceAlert, ...] = ()

    def usd(self, token: str) -> Decimal:
        try:
            return self.marks[token].usd
        except KeyError:
            raise NoPriceRoute(token, self.chain, "not marked at this block") from None

    def price(self, token: str, numeraire: str = "USD") -> Decimal:
        """``token`` in USD, ETH or BTC (the latter two through the WETH and WBTC marks)."""
        if numeraire == "USD":
            return self.usd(token)
        return self.usd(token) / self.usd(NUMERAIRE_TOKENS.get(numeraire, numeraire))

    def sources(self) -> dict[str, str]:
        return {t: f"{m.source} {m.route_text}" for t, m in self.marks.items()}


class PriceSource(Protocol):
    """A source of USD marks (``pools.PoolPrices``, ``chainlink.ChainlinkFeeds``,
    ``fixed.FixedPrices``)."""

    chain: str

    @property
    def source(self) -> str: ...

    def has_route(self, token: str) -> bool: ...

    def fetch_mark(self, token: str, block: int) -> Mark: ...


def check(
    marks: dict[str, Mark],
    checks: dict[str, Mark],
    *,
    timestamp: int,
    config: PricingConfig,
) -> tuple[PriceAlert, ...]:
    """The alerts for a set of marks at a block of time ``timestamp``: stale, disagreeing with
    the second source, or a stablecoin off its peg."""
    alerts: list[PriceAlert] = []
    for group in (marks, checks):
        for token, m in sorted(group.items()):
            age = timestamp - m.timestamp
            # a feed is stale past its heartbeat (and a tenth of it for the update to land),
            # never sooner than the configured age
            limit = max(config.max_age_seconds, m.heartbeat + m.heartbeat // 10)
            if age > limit:
                alerts.append(
                    PriceAlert(
                        "stale",
                        token,
                        f"{token} mark from {m.source} is {age} s old (limit {limit} s)",
                    )
                )
    bound = Decimal(config.max_deviation_bps) / Decimal(10_000)
    for token, m in sorted(marks.items()):
        other = checks.get(token)
        if other is None:
            continue
        gap = abs(m.usd - other.usd) / other.usd
        if gap > bound:
            alerts.append(
                PriceAlert(
                    "disagree",
                    token,
                    f"{token}: {m.source} {m.usd:.6g} USD vs {other.source} {other.usd:.6g} USD "
                    f"({gap * 10_000:.0f} bps apart, limit {config.max_deviation_bps})",
                )
            )
    peg = Decimal(config.depeg_bps) / Decimal(10_000)
    for token, m in sorted(marks.items()):
        if token in STABLECOINS and abs(m.usd - 1) > peg:
            alerts.append(
                PriceAlert(
                    "depeg",
                    token,
                    f"{token} marked at {m.usd:.4f} USD ({m.source} {m.route_text}): "
                    f"off its peg by more than {config.depeg_bps} bps",
                )
            )
    return tuple(alerts)
