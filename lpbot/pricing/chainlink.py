"""Marks from Chainlink price feeds (``AggregatorV3Interface``: ``decimals``, ``latestRoundData``).

A feed's answer is read at the block, scaled by its ``decimals``; the mark's timestamp is the
round's ``updatedAt``, so ``pricing.base.check`` sees a feed that stopped updating. The chain
registry lists the USD feeds of Ethereum and Arbitrum One by token (WETH -> ETH / USD, WBTC ->
BTC / USD, USDC -> USDC / USD); the devnet deploys ``contracts/src/PriceFeed.sol`` stand-ins.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from lpbot.errors import RetryLater
from lpbot.pricing.base import Mark, NoPriceRoute

AGGREGATOR_V3_ABI = [
    {
        "name": "decimals",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "name": "description",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
    },
    {
        "name": "latestRoundData",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "roundId", "type": "uint80"},
            {"name": "answer", "type": "int256"},
            {"name": "startedAt", "type": "uint256"},
            {"name": "updatedAt", "type": "uint256"},
            {"name": "answeredInRound", "type": "uint80"},
        ],
    },
]


class ChainlinkFeeds:
    """USD marks from AggregatorV3 feeds, one per token (a ``PriceSource``)."""

    source = "chainlink"

    def __init__(
        self,
        w3: Web3,
        *,
        chain: str,
        feeds: Mapping[str, str],
        heartbeats: Mapping[str, int] | None = None,
    ) -> None:
        self.w3 = w3
        self.chain = chain
        self.feeds = {t: to_checksum_address(a) for t, a in feeds.items()}
        self.heartbeats = dict(heartbeats or {})
        self._decimals: dict[str, int] = {}

    def has_route(self, token: str) -> bool:
        return token in self.feeds

    def fetch_mark(self, token: str, block: int) -> Mark:
        address = self.feeds.get(token)
        if address is None:
            raise NoPriceRoute(token, self.chain, "no Chainlink feed listed")
        c = self.w3.eth.contract(address=address, abi=AGGREGATOR_V3_ABI)
        try:
            if token not in self._decimals:
                self._decimals[token] = c.functions.decimals().call()
            _round, answer, _started, updated_at, _in_round = c.functions.latestRoundData().call(
                block_identifier=block
            )
        except ContractLogicError as exc:
            raise NoPriceRoute(token, self.chain, f"feed {address} reverted: {exc}") from exc
        except (BadFunctionCallOutput, OSError) as exc:
            raise RetryLater(f"feed {address} on {self.chain} at block {block}: {exc}") from exc
        if answer <= 0:
            raise NoPriceRoute(token, self.chain, f"feed {address} answered {answer}")
        usd = Decimal(answer).scaleb(-self._decimals[token])
        return Mark(
            token,
            usd,
            self.source,
            (f"feed {address}",),
            block,
            int(updated_at),
            self.heartbeats.get(token, 0),
        )
