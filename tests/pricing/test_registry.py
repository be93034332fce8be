"""Live chains: the registry's Chainlink feeds and well-known pools give every token a route."""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.chain.registry import CHAINS
from lpbot.pricing.base import NoPriceRoute
from lpbot.pricing.marks import registry_pricer


@pytest.mark.parametrize("chain_id", [1, 42161])
def test_every_registry_token_has_a_route_and_feeds_are_checksummed(chain_id: int) -> None:
    info = CHAINS[chain_id]
    assert set(info.price_feeds) == {"WETH", "WBTC", "USDC"}
    for address in info.price_feeds.values():
        assert address == to_checksum_address(address)
    pricer = registry_pricer(Web3(), info)  # no RPC is touched until a mark is fetched
    # the stablecoin through its own USD feed; the others through pools, the feeds as a check
    for token in ("USDC", "WETH", "WBTC"):
        assert pricer.pools.has_route(token)
    assert not pricer.pools.has_route("DAI")


def test_zksync_has_no_feed_so_its_stablecoin_has_no_route() -> None:
    pricer = registry_pricer(Web3(), CHAINS[324])
    assert not pricer.pools.has_route("USDC.e")
    with pytest.raises(NoPriceRoute, match="no price route for WETH on zksync"):
        pricer.fetch_mark("WETH", 1)
