"""Marks from Uniswap V3 pools: a token's price against the configured stablecoin.

A token is priced through its most liquid pool against the stablecoin (the largest in-range
``liquidity()`` among the pair's fee tiers), or, when it has none, through its most liquid pool
against WETH and WETH's own mark. Among pools found through the factory (``FoundPool``: anyone
may create one), the deepest is the one holding most of the stablecoin or WETH it is priced
against, not the one with most in-range liquidity: a sliver of capital in one tick spacing at any
price outbids a deep pool's in-range liquidity, never its balance. The price is the pool's spot
(``slot0``) or, with ``twap_seconds``, its arithmetic-mean tick over that window
(``OracleLibrary.consult``, v3-periphery 1.0.0, rounded toward negative infinity). Conversions
are ``Decimal`` (analytics).

The stablecoin itself is not taken as 1 USD: it is marked by the anchor source's feed of the
stablecoin (USDC / USD on Ethereum and Arbitrum; the devnet's stand-in), independent of the pools.
So a stablecoin off its peg shows in its mark (``pricing.base.check``'s depeg alert), and a WETH
pool off the ETH / USD feed shows as WETH's marks disagreeing.

Where the anchor has no feed of the stablecoin, the stablecoin's mark is derived: the ETH / USD
feed divided by WETH's price in its most liquid stablecoin pool (source ``chainlink/pool:spot``).
WETH priced through that same pool would be the feed again, so WETH's mark is then the feed's
own (source ``chainlink``, the route saying why) and is not claimed as a pool mark checked
against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from lpbot.analytics.prices import price1_per_0
from lpbot.chain import artifacts
from lpbot.errors import RetryLater
from lpbot.pricing.base import Mark, NoPriceRoute, PriceSource, PricingConfig
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick


@dataclass(frozen=True, slots=True)
class PoolRef:
    address: str
    token0: str  # symbol
    token1: str
    fee: int

    @property
    def name(self) -> str:
        return f"{self.token0}/{self.token1}-{self.fee}"


@dataclass(frozen=True, slots=True)
class FoundPool:
    """A pool the chain's factory has of a token no listed pool prices, against ``quote`` (the
    address of the stablecoin or WETH it prices the token in), with both tokens' decimals."""

    pool: PoolRef
    decimals0: int
    decimals1: int
    quote: str


BALANCE_OF = "0x70a08231"  # balanceOf(address)


@dataclass(frozen=True, slots=True)
class PoolQuote:
    """One pool read at one block: its price of token0 in token1 (whole units) and depth."""

    pool: PoolRef
    price1_per_0: Decimal
    liquidity: int
    timestamp: int


def mean_tick(cumulative_old: int, cumulative_new: int, seconds: int) -> int:
    """OracleLibrary.consult's arithmetic-mean tick, rounded toward negative infinity."""
    delta = cumulative_new - cumulative_old
    tick = abs(delta) // seconds * (1 if delta >= 0 else -1)
    if delta < 0 and delta % seconds != 0:
        tick -= 1
    return tick


class PoolPrices:
    """USD marks from a chain's Uniswap V3 pools (a ``PriceSource``)."""

    def __init__(
        self,
        w3: Web3,
        *,
        chain: str,
        tokens: Mapping[str, int],  # symbol -> decimals
        pools: Sequence[PoolRef],
        config: PricingConfig,
        anchor: PriceSource | None = None,
        discover: Callable[[str], Sequence[FoundPool]] | None = None,
    ) -> None:
        self.w3 = w3
        self.chain = chain
        self.tokens = dict(tokens)
        self.pools = list(pools)
        self.config = config
        self.anchor = anchor
        self._abi = artifacts.abi("UniswapV3Pool")
        self._quotes: dict[tuple[str, int], PoolQuote] = {}
        self._contracts: dict[str, Any] = {}
        # the chain's pools of a token no listed pool prices, with both tokens' decimals
        # (``lpbot.chain.book.AddressBook.price_routes``): asked once per token
        self._discover = discover
        self._discovered: set[str] = set()
        self._found: dict[str, str] = {}  # found pool's address -> its quote token's address

    @property
    def source(self) -> str:
        tw = self.config.twap_seconds
        return f"pool:twap{tw}" if tw else "pool:spot"

    def _pairs(self, a: str, b: str) -> list[PoolRef]:
        return [p for p in self.pools if {p.token0, p.token1} == {a, b}]

    def _learn(self, token: str) -> None:
        """Add the chain's pools of ``token`` when no listed pool of it is against the
        stablecoin or WETH (once per token)."""
        if self._discover is None or token in self._discovered:
            return
        if token in self.tokens and (
            self._pairs(token, self.config.stable) or self._pairs(token, "WETH")
        ):
            return
        self._discovered.add(token)
        listed = {p.address.lower() for p in self.pools}
        for found in self._discover(token):
            ref = found.pool
            self.tokens.setdefault(ref.token0, found.decimals0)
            self.tokens.setdefault(ref.token1, found.decimals1)
            if ref.address.lower() not in listed:
                self.pools.append(ref)
                listed.add(ref.address.lower())
                self._found[ref.address.lower()] = found.quote

    def has_route(self, token: str) -> bool:
        stable = self.config.stable
        if token != stable:
            self._learn(token)
        if token == stable:
            return self.anchor is not None and (
                self.anchor.has_route(stable)
                or (self.anchor.has_route("WETH") and bool(self._pairs("WETH", stable)))
            )
        if not self.has_route(stable) or token not in self.tokens:
            return False
        if self._pairs(token, stable):
            return True
        return token != "WETH" and bool(self._pairs(token, "WETH")) and self.has_route("WETH")

    def fetch_quote(self, pool: PoolRef, block: int) -> PoolQuote:
        """The pool's price (spot or TWAP per the config) and in-range liquidity at ``block``."""
        key = (pool.address, block)
        if key in self._quotes:
            return self._quotes[key]
        c = self._contracts.get(pool.address)
        if c is None:
            c = self.w3.eth.contract(address=to_checksum_address(pool.address), abi=self._abi)
            self._contracts[pool.address] = c
        tw = self.config.twap_seconds
        try:
            sqrt_price = c.functions.slot0().call(block_identifier=block)[0]
            liquidity = c.functions.liquidity().call(block_identifier=block)
            if tw:
                cum, _ = c.functions.observe([tw, 0]).call(block_identifier=block)
                sqrt_price = get_sqrt_ratio_at_tick(mean_tick(cum[0], cum[1], tw))
            timestamp = self.w3.eth.get_block(block)["timestamp"]
        except ContractLogicError as exc:  # 'OLD': the oracle does not reach back that far
            raise NoPriceRoute(
                pool.token0, self.chain, f"pool {pool.name} cannot be read: {exc}"
            ) from exc
        except (BadFunctionCallOutput, OSError) as exc:
            raise RetryLater(f"pool {pool.name} on {self.chain} at block {block}: {exc}") from exc
        d0, d1 = self.tokens[pool.token0], self.tokens[pool.token1]
        quote = PoolQuote(pool, price1_per_0(sqrt_price, d0, d1), liquidity, timestamp)
        self._quotes[key] = quote
        if len(self._quotes) > 256:
            self._quotes.pop(next(iter(self._quotes)))
        return quote

    def _best(self, token: str, against: str, block: int) -> tuple[Decimal, PoolQuote]:
        """``token``'s price in ``against`` through the most liquid pool of the pair."""
        quotes, unread = self.fetch_quotes(self._pairs(token, against), block)
        quotes = [q for q in quotes if q.liquidity > 0]
        if not quotes:
            if unread:
                raise unread[0]
            raise NoPriceRoute(token, self.chain, f"no pool against {against} has liquidity")
        best = self.deepest(quotes, block)
        with localcontext() as ctx:
            ctx.prec = 40
            price = best.price1_per_0 if best.pool.token0 == token else 1 / best.price1_per_0
        return price, best

    def fetch_quotes(
        self, pools: Sequence[PoolRef], block: int
    ) -> tuple[list[PoolQuote], list[NoPriceRoute]]:
        """``fetch_quote`` of each of ``pools``; a pool found through the factory that cannot be
        read (too young for the TWAP: 'OLD'; never initialized: 'I') is left out, with why."""
        quotes: list[PoolQuote] = []
        unread: list[NoPriceRoute] = []
        for p in pools:
            try:
                quotes.append(self.fetch_quote(p, block))
            except NoPriceRoute as exc:
                if p.address.lower() not in self._found:
                    raise
                unread.append(exc)  # anyone may create one: the others price the token
        return quotes, unread

    def found_in(self, mark: Mark) -> str | None:
        """The step of ``mark``'s route through a pool found through the factory (name and
        address), if it went through one: a price no listed pool or feed vouches for."""
        for step in mark.route:
            if step.rsplit(" ", 1)[-1].lower() in self._found:
                return step
        return None

    def deepest(self, quotes: Sequence[PoolQuote], block: int) -> PoolQuote:
        """The deepest of ``quotes`` (pools of one pair): the most in-range liquidity, or, where
        a pool was found through the factory, the most of its quote token held (``FoundPool``)."""
        if not any(q.pool.address.lower() in self._found for q in quotes):
            return max(quotes, key=lambda q: q.liquidity)
        return max(quotes, key=lambda q: self._fetch_held(q.pool, block))

    def _fetch_held(self, pool: PoolRef, block: int) -> int:
        """The raw amount of a found pool's quote token (stablecoin or WETH) it holds at
        ``block``; 0 for a pool not found through the factory."""
        quote = self._found.get(pool.address.lower())
        if quote is None:
            return 0
        data = BALANCE_OF + pool.address.lower()[2:].rjust(64, "0")
        try:
            raw = self.w3.eth.call(
                {"to": to_checksum_address(quote), "data": data},  # type: ignore[typeddict-item]
                block_identifier=block,
            )
        except (ContractLogicError, BadFunctionCallOutput):
            return 0
        except OSError as exc:
            raise RetryLater(f"pool {pool.name} on {self.chain} at block {block}: {exc}") from exc
        return int.from_bytes(bytes(raw)[:32], "big") if len(raw) >= 32 else 0

    def fetch_mark(self, token: str, block: int) -> Mark:
        stable = self.config.stable
        if token == stable:
            return self._stable_mark(block)
        self._learn(token)
        if token not in self.tokens:
            raise NoPriceRoute(token, self.chain, "not a token of this chain's registry")
        if self._pairs(token, stable):
            price, q = self._best(token, stable, block)
            s = self._stable_mark(block)
            if token == "WETH" and not self._stable_has_feed():
                # the stablecoin's mark is the ETH feed over this very pool: WETH's is the feed
                eth = self._anchor().fetch_mark("WETH", block)
                why = f"{q.pool.name} {q.pool.address} unchecked: no {stable} / USD feed"
                return Mark(token, eth.usd, eth.source, (*eth.route, why), block,
                            eth.timestamp, eth.heartbeat)  # fmt: skip
            return Mark(
                token,
                price * s.usd,
                self.source,
                (f"{q.pool.name} {q.pool.address}", f"{stable} {s.usd:.6f} USD"),
                block,
                q.timestamp,
            )
        if token != "WETH" and self._pairs(token, "WETH"):
            price, q = self._best(token, "WETH", block)
            eth = self.fetch_mark("WETH", block)
            return Mark(
                token,
                price * eth.usd,
                self.source,
                (f"{q.pool.name} {q.pool.address}", *eth.route),
                block,
                q.timestamp,
            )
        raise NoPriceRoute(token, self.chain, f"no pool against {stable} or WETH")

    def _anchor(self) -> PriceSource:
        if self.anchor is None:
            raise NoPriceRoute(self.config.stable, self.chain, "no feed anchors it to USD")
        return self.anchor

    def _stable_has_feed(self) -> bool:
        """Whether the stablecoin has a USD mark of its own (not derived from the pools)."""
        return self.anchor is not None and self.anchor.has_route(self.config.stable)

    def _stable_mark(self, block: int) -> Mark:
        stable = self.config.stable
        anchor = self._anchor()
        if anchor.has_route(stable):
            return anchor.fetch_mark(stable, block)
        if anchor.has_route("WETH") and self._pairs("WETH", stable):
            eth_usd = anchor.fetch_mark("WETH", block)
            eth_in_stable, q = self._best("WETH", stable, block)
            return Mark(
                stable,
                eth_usd.usd / eth_in_stable,
                f"{eth_usd.source}/{self.source}",
                (*eth_usd.route, f"/ {q.pool.name} {q.pool.address}"),
                block,
                min(eth_usd.timestamp, q.timestamp),
                eth_usd.heartbeat,
            )
        raise NoPriceRoute(stable, self.chain, "no feed for it or for ETH to anchor it to USD")
