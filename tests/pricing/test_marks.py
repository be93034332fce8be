"""Marks on the devnet: from its pools (spot and TWAP) against a known pool state, the feed
stand-ins (``contracts/src/PriceFeed.sol``) against the pool, a WETH pool off the ETH feed, a
depegged USDC (its own USD feed), a chain with no stablecoin feed, a stale feed, and a token with
no route."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.analytics.prices import price0_per_1, price1_per_0, sqrt_price_x96_from_price
from lpbot.devnet.context import devnet_context
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.market import push_feeds, run_market
from lpbot.jobs import tasks
from lpbot.jobs.alerts import MemoryNotifier
from lpbot.pricing.base import NoPriceRoute, PricingConfig
from lpbot.pricing.marks import chain_pricer
from lpbot.pricing.pools import mean_tick
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def _weth_pools(chain: Devnet) -> list[tuple[str, int, int]]:
    """(address, sqrt price, in-range liquidity) of the devnet's USDC/WETH pools."""
    out = []
    for p in chain.manifest.pools:
        if {p.token0, p.token1} == {"USDC", "WETH"}:
            c = contract(chain.w3, "UniswapV3Pool", p.address)
            out.append((p.address, c.functions.slot0().call()[0], c.functions.liquidity().call()))
    return out


def _feed(chain: Devnet, symbol: str) -> Decimal:
    feed = contract(chain.w3, "PriceFeed", chain.manifest.price_feeds[symbol])
    return Decimal(feed.functions.latestRoundData().call()[1]) / 10**8


def test_pool_marks_equal_the_most_liquid_pool_and_the_feed(chain: Devnet) -> None:
    run_market(chain.w3, chain.manifest, chain.manifest.pool("USDC/WETH-500"), steps=3, vol=1.0,
               seed=3)  # fmt: skip
    block = chain.w3.eth.block_number
    marks = chain_pricer(chain.w3, chain.manifest).fetch_marks(["USDC", "WETH"], block)
    address, sqrt, _ = max(_weth_pools(chain), key=lambda p: p[2])
    in_usdc = price0_per_1(sqrt, 6, 18)  # USDC per WETH, USDC is token0
    feed = _feed(chain, "WETH")
    # USDC is marked by its own USD feed, which the keeper holds at 1 USD
    usdc = marks.marks["USDC"]
    assert usdc.usd == 1 and _feed(chain, "USDC") == 1
    assert usdc.source == "chainlink" and chain.manifest.price_feeds["USDC"] in usdc.route_text
    # WETH: the pool's price of WETH in USDC, times the USDC mark
    weth = marks.marks["WETH"]
    assert weth.usd == pytest.approx(in_usdc, rel=Decimal("1e-27"))
    assert weth.source == "pool:spot" and address in weth.route_text
    assert weth.block == block
    # the keeper wrote the pool's price into the ETH feed (8 decimals): they agree, no alert
    assert abs(feed - in_usdc) < Decimal("0.00000001") * 2
    assert marks.checks["WETH"].usd == feed
    assert marks.alerts == ()
    assert marks.price("WETH", "ETH") == 1
    assert marks.price("USDC", "BTC") == marks.usd("USDC") / marks.usd("WBTC")


def test_without_a_stablecoin_feed_weth_is_the_feed_and_not_checked_against_it(
    chain: Devnet,
) -> None:
    # a chain with no USDC / USD feed: USDC is derived from the ETH feed over the WETH pool,
    # so a WETH pool mark would be the feed again: WETH is marked by the feed, and says so
    m = chain.manifest
    feeds = {s: a for s, a in m.price_feeds.items() if s != "USDC"}
    pricer = chain_pricer(chain.w3, m.model_copy(update={"price_feeds": feeds}))
    _push_weth_price(chain, Decimal(3300))
    marks = pricer.fetch_marks(["USDC", "WETH"], chain.w3.eth.block_number)
    weth, usdc = marks.marks["WETH"], marks.marks["USDC"]
    assert weth.usd == 3000 and weth.source == "chainlink"
    assert "unchecked: no USDC / USD feed" in weth.route_text
    assert "WETH" not in marks.checks
    assert usdc.source == "chainlink/pool:spot"
    assert usdc.usd == pytest.approx(Decimal(3000) / 3300, rel=Decimal("1e-4"))
    assert {(a.kind, a.token) for a in marks.alerts} >= {("depeg", "USDC")}
    assert not any(a.kind == "disagree" and a.token == "WETH" for a in marks.alerts)


def test_twap_marks_use_the_oracle_mean_tick(chain: Devnet) -> None:
    info = chain.manifest.pool("USDC/WETH-500")
    run_market(chain.w3, chain.manifest, info, steps=4, vol=2.0, seed=8, step_seconds=300)
    block = chain.w3.eth.block_number
    pricer = chain_pricer(chain.w3, chain.manifest, PricingConfig(twap_seconds=600))
    quote = pricer.pools.fetch_quote(pricer.pools.pools[0], block)
    pool = contract(chain.w3, "UniswapV3Pool", info.address)
    cum, _ = pool.functions.observe([600, 0]).call(block_identifier=block)
    tick = mean_tick(cum[0], cum[1], 600)
    assert quote.price1_per_0 == price1_per_0(get_sqrt_ratio_at_tick(tick), 6, 18)
    assert pricer.fetch_marks(["WETH"], block).marks["WETH"].source == "pool:twap600"


def _push_weth_price(chain: Devnet, usdc_per_weth: Decimal) -> None:
    """A trader moves every USDC/WETH pool to ``usdc_per_weth``; the feeds are left alone."""
    m = chain.manifest
    router = contract(chain.w3, "SwapRouter02", m.contracts["SwapRouter02"])
    usdc, weth = m.token("USDC"), m.token("WETH")
    trader = m.accounts.traders[1]
    target = sqrt_price_x96_from_price(1 / usdc_per_weth, 6, 18)
    for p in m.pools:
        if {p.token0, p.token1} != {"USDC", "WETH"}:
            continue
        now = contract(chain.w3, "UniswapV3Pool", p.address).functions.slot0().call()[0]
        zero_for_one = target < now  # selling USDC (token0) lowers the price of USDC
        t_in, t_out = (usdc, weth) if zero_for_one else (weth, usdc)
        params = (t_in.address, t_out.address, p.fee, trader, 10**9 * 10**t_in.decimals, 0, target)
        tx = router.functions.exactInputSingle(params).transact({"from": trader, "gas": GAS})
        assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


def test_a_weth_pool_off_the_eth_feed_is_a_disagreement_on_weth(chain: Devnet) -> None:
    pricer = chain_pricer(chain.w3, chain.manifest)
    push_feeds(chain.w3, chain.manifest)
    before = pricer.fetch_marks(["USDC", "WETH"], chain.w3.eth.block_number)
    assert before.alerts == ()
    # ETH/USD stays 3000 on the feed while the USDC pools pay 3300 USDC per WETH
    _push_weth_price(chain, Decimal(3300))
    after = pricer.fetch_marks(["USDC", "WETH"], chain.w3.eth.block_number)
    assert after.usd("USDC") == 1
    assert after.usd("WETH") == pytest.approx(Decimal(3300), rel=Decimal("1e-4"))
    assert after.checks["WETH"].usd == 3000
    assert after.usd("WBTC") == before.usd("WBTC")
    assert [(a.kind, a.token) for a in after.alerts] == [("disagree", "WETH")]
    assert after.alerts[0].message.startswith("WETH: pool:spot 3300")


def test_a_depegged_usdc_changes_the_marks_and_raises_the_alert(chain: Devnet) -> None:
    pricer = chain_pricer(chain.w3, chain.manifest)
    push_feeds(chain.w3, chain.manifest)
    # USDC / USD falls to 0.97 while the pools still pay 3000 USDC per WETH
    m = chain.manifest
    feed = contract(chain.w3, "PriceFeed", m.price_feeds["USDC"])
    tx = feed.functions.updateAnswer(97_000_000).transact({"from": m.accounts.deployer})
    assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    after = pricer.fetch_marks(["USDC", "WETH"], chain.w3.eth.block_number)
    assert after.usd("USDC") == Decimal("0.97")
    # a WETH is 3000 USDC, 2910 USD: 300 bps below the ETH feed; so is WBTC against its feed
    assert after.usd("WETH") == pytest.approx(Decimal(2910), rel=Decimal("1e-4"))
    assert after.usd("WBTC") == pytest.approx(Decimal(90000) * Decimal("0.97"), rel=Decimal("1e-3"))
    kinds = {(a.kind, a.token) for a in after.alerts}
    assert kinds == {("depeg", "USDC"), ("disagree", "WETH"), ("disagree", "WBTC")}
    assert any("off its peg" in a.message for a in after.alerts)
    # the monitor's marks raise it as an alert, once while it lasts
    mp = _managed(chain)
    mp.fetch_marks(chain.w3.eth.block_number)
    mp.fetch_marks(chain.w3.eth.block_number)
    raised = [a.kind for a in mp.notifier.alerts]  # type: ignore[attr-defined]
    assert raised.count("price_depeg") == 1 and "price_disagree" in raised


def _managed(chain: Devnet) -> tasks.ManagedPosition:
    m = chain.manifest
    info = m.pool("USDC/WETH-500")
    ctx = devnet_context(chain.w3, m, None, Path("/nonexistent"))  # type: ignore[arg-type]
    return tasks.ManagedPosition(
        name="p",
        ctx=ctx,
        sessions=None,  # type: ignore[arg-type]
        policy=None,  # type: ignore[arg-type]
        token_id=0,
        pool=info.address,
        token0=m.token(info.token0).address,
        token1=m.token(info.token1).address,
        notifier=MemoryNotifier(),
        pricer=chain_pricer(chain.w3, m),
    )


def test_a_feed_that_stopped_updating_is_a_stale_alert(chain: Devnet) -> None:
    config = PricingConfig(max_age_seconds=3600)
    pricer = chain_pricer(chain.w3, chain.manifest, config)
    push_feeds(chain.w3, chain.manifest)
    chain.increase_time(2 * 3600)
    marks = pricer.fetch_marks(["USDC", "WETH"], chain.w3.eth.block_number)
    stale = {a.token for a in marks.alerts if a.kind == "stale"}
    assert {"USDC", "WETH", "WBTC"} <= stale  # every mark that leans on a feed


def test_a_token_with_no_route_is_named_with_its_chain(chain: Devnet) -> None:
    pricer = chain_pricer(chain.w3, chain.manifest)
    block = chain.w3.eth.block_number
    with pytest.raises(NoPriceRoute, match=r"no price route for DAI on devnet"):
        pricer.fetch_marks(["USDC", "DAI"], block)
    # a chain without feeds cannot anchor its stablecoin: refused, not assumed 1 USD
    bare = chain_pricer(chain.w3, chain.manifest.model_copy(update={"price_feeds": {}}))
    with pytest.raises(NoPriceRoute, match=r"no price route for USDC on devnet"):
        bare.fetch_marks(["USDC", "WETH"], block)


def test_a_btc_mark_the_chain_cannot_give_leaves_the_usd_marks(chain: Devnet) -> None:
    # WBTC is marked only for BTC figures; its pools have no liquidity: a USDC/WETH position is
    # still marked in USD and ETH, and the missing BTC mark is an alert, not a made-up price
    m = chain.manifest
    factory = contract(chain.w3, "UniswapV3Factory", m.contracts["UniswapV3Factory"])
    pools = []
    for p in m.pools:
        if "WBTC" not in (p.token0, p.token1):
            pools.append(p)
            continue
        t0, t1 = sorted([m.token(p.token0).address, m.token(p.token1).address], key=str.lower)
        fee = next(f for f in (500, 3000, 10_000) if f != p.fee)
        tx = factory.functions.createPool(t0, t1, fee).transact({"from": m.accounts.deployer})
        assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        empty = factory.functions.getPool(t0, t1, fee).call()
        pools.append(p.model_copy(update={"address": empty, "fee": fee}))
    pricer = chain_pricer(chain.w3, m.model_copy(update={"pools": pools}))
    marks = pricer.fetch_marks(["USDC", "WETH"], chain.w3.eth.block_number)
    assert set(marks.marks) == {"USDC", "WETH"}
    assert [(a.kind, a.token) for a in marks.alerts] == [("unpriced", "WBTC")]
    assert "no price route for WBTC on devnet" in marks.alerts[0].message
    # asked for by name, it is still refused
    with pytest.raises(NoPriceRoute, match="no price route for WBTC on devnet"):
        pricer.fetch_marks(["WBTC", "WETH"], chain.w3.eth.block_number)
