"""One set of marks per block: pools first, Chainlink as the second opinion, checks applied.

``Pricer.fetch_marks`` marks each token through the chain's pools (the market the position
trades in) and, where a Chainlink feed exists, reads the feed too: the two must agree within
``max_deviation_bps``. A token only a feed prices is marked by the feed. Every alert of
``pricing.base.check`` is on the returned ``Marks``; the caller raises it. A token marked through a
pool found through the factory, with no feed to check it, carries an ``unchecked`` alert: its
figures are shown, and the auto-execute policy leaves what is valued at them to a person.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from web3 import Web3

from lpbot.chain.registry import CHAINS, ChainInfo
from lpbot.pricing.base import (
    Mark,
    Marks,
    NoPriceRoute,
    PriceAlert,
    PriceSource,
    PricingConfig,
    check,
)
from lpbot.pricing.chainlink import ChainlinkFeeds
from lpbot.pricing.fixed import FixedPrices
from lpbot.pricing.pools import FoundPool, PoolPrices, PoolRef
from lpbot.uniswap.pool_address import compute_pool_address

if TYPE_CHECKING:
    from lpbot.chain.book import AddressBook
    from lpbot.devnet.manifest import Manifest

# the numeraires' tokens are marked with every set, so ETH and BTC figures and gas can be read
ALWAYS = ("WETH", "WBTC")


@dataclass(frozen=True, slots=True)
class Reference:
    """A second opinion on a pool's price: token0 in token1 (whole units, ``Decimal``), from
    sources other than the pool itself."""

    price1_per_0: Decimal
    source: str  # "chainlink", or the pool adapter's mode ("pool:spot")
    route: tuple[str, ...]
    block: int

    @property
    def text(self) -> str:
        return f"{self.source} {' -> '.join(self.route)}"


class Pricer:
    def __init__(self, pools: PoolPrices, feeds: PriceSource | None = None) -> None:
        self.pools = pools
        self.feeds = feeds
        self.chain = pools.chain
        self.config = pools.config

    def fetch_mark(self, token: str, block: int) -> Mark:
        if self.pools.has_route(token):
            return self.pools.fetch_mark(token, block)
        if self.feeds is not None and self.feeds.has_route(token):
            return self.feeds.fetch_mark(token, block)
        raise NoPriceRoute(token, self.chain)

    def fetch_reference(
        self, token0: str, token1: str, block: int, *, exclude_pool: str
    ) -> Reference | None:
        """``token0``'s price in ``token1`` at ``block`` from a second source, never the pool
        ``exclude_pool`` (the one being traded): both tokens' Chainlink feeds, else the most
        liquid other pool of the pair; None when there is neither."""
        feeds = self.feeds
        if feeds is not None and feeds.has_route(token0) and feeds.has_route(token1):
            m0, m1 = feeds.fetch_mark(token0, block), feeds.fetch_mark(token1, block)
            with localcontext() as ctx:
                ctx.prec = 40
                price = m0.usd / m1.usd
            return Reference(price, feeds.source, (*m0.route, *m1.route), block)
        others = [
            p
            for p in self.pools.pools
            if {p.token0, p.token1} == {token0, token1}
            and p.address.lower() != exclude_pool.lower()
        ]
        quotes = [q for q in self.pools.fetch_quotes(others, block)[0] if q.liquidity > 0]
        if not quotes:
            return None
        best = self.pools.deepest(quotes, block)
        with localcontext() as ctx:
            ctx.prec = 40
            price = best.price1_per_0 if best.pool.token0 == token0 else 1 / best.price1_per_0
        return Reference(
            price, self.pools.source, (f"{best.pool.name} {best.pool.address}",), block
        )

    def fetch_marks(self, tokens: Iterable[str], block: int) -> Marks:
        """Marks of ``tokens`` (and of WETH and WBTC where routable) at ``block``."""
        wanted = list(dict.fromkeys([*tokens, *ALWAYS]))
        asked = set(tokens)
        marks: dict[str, Mark] = {}
        checks: dict[str, Mark] = {}
        unpriced: list[PriceAlert] = []
        for token in wanted:
            routable = self.pools.has_route(token) or (
                self.feeds is not None and self.feeds.has_route(token)
            )
            if not routable:
                if token in ALWAYS and token not in asked:
                    continue
                raise NoPriceRoute(token, self.chain)
            try:
                marks[token] = self.fetch_mark(token, block)
            except NoPriceRoute as exc:
                if token in asked or token == "WETH":
                    raise
                # a numeraire's token no asked-for mark leans on (WBTC, for BTC figures):
                # its figures are left out, with an alert, and the USD marks stand
                unpriced.append(PriceAlert("unpriced", token, str(exc)))
                continue
            if (
                self.feeds is not None
                and self.feeds.has_route(token)
                and marks[token].source != self.feeds.source
            ):
                checks[token] = self.feeds.fetch_mark(token, block)
        for token in asked:
            found = self.pools.found_in(marks[token]) if token in marks else None
            if found is not None and token not in checks:
                unpriced.append(
                    PriceAlert(
                        "unchecked",
                        token,
                        f"{token} is marked only through {found}, a pool found through the "
                        "factory that no feed checks: its USD figures are unchecked, and a "
                        "person approves what is valued at them",
                    )
                )
        timestamp = int(self.pools.w3.eth.get_block(block)["timestamp"])
        alerts = check(marks, checks, timestamp=timestamp, config=self.config)
        return Marks(self.chain, block, timestamp, marks, checks, (*unpriced, *alerts))


def build_pricer(
    w3: Web3,
    *,
    chain: str,
    tokens: Mapping[str, int],
    pools: Sequence[PoolRef],
    feeds: Mapping[str, str],
    heartbeats: Mapping[str, int] | None = None,
    config: PricingConfig | None = None,
    discover: Callable[[str], Sequence[FoundPool]] | None = None,
) -> Pricer:
    """The price source ``config.source`` names, over a chain's pools and Chainlink feeds:
    ``pools`` (marks from the pools, the feeds anchoring the stablecoin and checking them;
    ``discover`` finds the pools of a token none of ``pools`` prices), ``chainlink`` (the feeds
    alone) or ``fixed`` (its constant marks)."""
    config = config or PricingConfig()
    if config.source == "fixed":
        fixed = FixedPrices(w3, chain=chain, prices=dict(config.fixed))
        return Pricer(PoolPrices(w3, chain=chain, tokens=tokens, pools=[], config=config,
                                 anchor=fixed), fixed)  # fmt: skip
    cl = ChainlinkFeeds(w3, chain=chain, feeds=feeds, heartbeats=heartbeats) if feeds else None
    if config.source == "chainlink":
        if cl is None:
            raise NoPriceRoute("any token", chain, "[pricing] source 'chainlink': no feeds listed")
        pools = []
        discover = None
    return Pricer(
        PoolPrices(w3, chain=chain, tokens=tokens, pools=pools, config=config, anchor=cl,
                   discover=discover),
        cl,
    )  # fmt: skip


def chain_pricer(
    w3: Web3,
    manifest: Manifest,
    config: PricingConfig | None = None,
    *,
    book: AddressBook | None = None,
) -> Pricer:
    """Marks for ``manifest``'s chain (the devnet's, or a live chain's ``registry_manifest``) from
    its pools and price feeds (``config.source`` says which: ``build_pricer``). On a chain of the
    registry (live, or a fork or shape of it) the feeds are the registry's, each with its
    heartbeat: a feed that updates once a day is current for a day, not ``max_age_seconds``.
    With ``book``, a token none of the manifest's pools prices is priced through the pools the
    chain's factory has of it (``AddressBook.price_routes``)."""
    known = CHAINS.get(manifest.chain_id)
    feeds = dict(manifest.price_feeds)
    heartbeats: dict[str, int] = {}
    if known is not None:
        feeds = feeds or dict(known.price_feeds)
        # a heartbeat is the registry feed's: it holds only where the manifest lists that feed
        heartbeats = {
            t: hb
            for t, hb in known.price_feed_heartbeats.items()
            if feeds.get(t, "").lower() == known.price_feeds.get(t, "").lower()
        }
    return build_pricer(
        w3,
        chain=known.name if known else "devnet",
        tokens={s: t.decimals for s, t in manifest.tokens.items()},
        pools=[PoolRef(p.address, p.token0, p.token1, p.fee) for p in manifest.pools],
        feeds=feeds,
        heartbeats=heartbeats,
        config=config,
        discover=book.price_routes if book is not None else None,
    )


def registry_pricer(w3: Web3, info: ChainInfo, config: PricingConfig | None = None) -> Pricer:
    """A pricer over the registry's well-known pools and Chainlink feeds (with their heartbeats)
    of a live chain, as ``config.source`` says (``build_pricer``)."""
    config = config or PricingConfig()
    tokens = {t.symbol: t.decimals for t in info.tokens.values()}
    by_symbol = {t.symbol: t for t in info.tokens.values()}
    pools = []
    for a, b, fee in info.well_known_pools:
        ta, tb = by_symbol[a], by_symbol[b]
        t0, t1 = (ta, tb) if ta.address.lower() < tb.address.lower() else (tb, ta)
        address = compute_pool_address(
            info.contracts["UniswapV3Factory"],
            t0.address,
            t1.address,
            fee,
            info.pool_init_code_hash,
            zksync=info.zksync_create2,
        )
        pools.append(PoolRef(address, t0.symbol, t1.symbol, fee))
    return build_pricer(
        w3,
        chain=info.name,
        tokens=tokens,
        pools=pools,
        feeds=info.price_feeds,
        heartbeats=info.price_feed_heartbeats,
        config=config,
    )
