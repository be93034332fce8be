"""Constant USD marks from the configuration, for the devnet only (``[pricing] source = "fixed"``).

``config`` refuses this source on any chain but a devnet: on a live chain no price is ever a
constant. A mark's time is its block's, so a fixed mark is never stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from web3 import Web3

from lpbot.pricing.base import Mark, NoPriceRoute


class FixedPrices:
    """USD marks that do not move (a ``PriceSource``)."""

    source = "fixed"

    def __init__(self, w3: Web3, *, chain: str, prices: Mapping[str, Decimal]) -> None:
        self.w3 = w3
        self.chain = chain
        self.prices = dict(prices)

    def has_route(self, token: str) -> bool:
        return token in self.prices

    def fetch_mark(self, token: str, block: int) -> Mark:
        usd = self.prices.get(token)
        if usd is None:
            raise NoPriceRoute(token, self.chain, "no fixed price configured ([pricing] fixed)")
        timestamp = int(self.w3.eth.get_block(block)["timestamp"])
        return Mark(token, usd, self.source, ("[pricing] fixed",), block, timestamp)
