"""Live chains: the registry's Chainlink feeds and well-known pools give every token a route."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.app import App
from lpbot.chain.registry import CHAINS
from lpbot.pricing.base import Mark, NoPriceRoute, PricingConfig, check
from lpbot.pricing.marks import registry_pricer
from tests.conftest import Devnet


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


@pytest.mark.parametrize("chain_id", [1, 42161])
def test_a_feed_within_its_heartbeat_is_not_stale(chain_id: int) -> None:
    # Chainlink's USDC / USD on Ethereum (and every feed on Arbitrum) updates once a day while
    # the price holds: a 20-hour-old answer is current, a 27-hour-old one is stale
    info = CHAINS[chain_id]
    assert set(info.price_feed_heartbeats) == set(info.price_feeds)
    feeds = registry_pricer(Web3(), info).feeds
    assert feeds is not None and feeds.heartbeats["USDC"] == 86_400
    now = 1_800_000_000
    config = PricingConfig()  # 3 h by default

    def usdc(age: int) -> Mark:
        return Mark("USDC", Decimal("0.9999"), "chainlink", ("feed",), 1, now - age, 86_400)

    assert check({"USDC": usdc(20 * 3600)}, {}, timestamp=now, config=config) == ()
    stale = check({"USDC": usdc(27 * 3600)}, {}, timestamp=now, config=config)
    assert [(a.kind, a.token) for a in stale] == [("stale", "USDC")]
    # a mark without a heartbeat (a pool, the devnet's feed) keeps the configured age
    pool = Mark("WETH", Decimal(3000), "pool:spot", ("pool",), 1, now - 4 * 3600)
    assert [a.kind for a in check({"WETH": pool}, {}, timestamp=now, config=config)] == ["stale"]


@pytest.mark.devnet
def test_the_app_on_ethereum_prices_with_the_registry_feeds_and_their_heartbeats(
    chain: Devnet, tmp_path: Path
) -> None:
    # an RPC answering as Ethereum (the devnet with chain id 1): the app's pricer reads the
    # registry's Chainlink feeds, each current for its heartbeat (USDC / USD: a day), not 3 h
    info = CHAINS[1]
    path = tmp_path / "lpbot.toml"
    path.write_text(f'version = 1\ndata_dir = "{tmp_path}"\n[chains.ethereum]\nrpc_url_env = "R"\n')
    chain.w3.provider.make_request("anvil_setChainId", [1])  # type: ignore[arg-type]
    try:
        pricer = App.load(path, environ={"R": chain.url}).pricer("ethereum")
    finally:
        chain.w3.provider.make_request("anvil_setChainId", [31337])  # type: ignore[arg-type]
    assert pricer.chain == "ethereum"
    assert pricer.feeds is not None and pricer.feeds.feeds == info.price_feeds
    assert pricer.feeds.heartbeats == {"WETH": 3600, "WBTC": 3600, "USDC": 86_400}
    assert pricer.pools.anchor is pricer.feeds
    assert {p.address for p in pricer.pools.pools} == {
        p.address for p in registry_pricer(Web3(), info).pools.pools
    }
