"""Deploying the official contracts to a fresh Anvil and seeding realistic pools.

Everything is deployed from the official compiled artifacts (see ``lpbot.chain.artifacts``):
WETH9, UniswapV3Factory, NFTDescriptor linked into NonfungibleTokenPositionDescriptor,
NonfungiblePositionManager, SwapRouter02, QuoterV2, TickLens, Multicall3, the Safe 1.4.1
singleton, proxy factory, MultiSend, MultiSendCallOnly and fallback handler; then test tokens
(USDC with 6 decimals, WBTC with 8), pools at the 0.05%, 0.3% and 1% tiers at realistic prices,
liquidity from several LP accounts in nested ranges, and a 2-of-3 Safe for the demo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract.contract import Contract, ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from lpbot.analytics.prices import sqrt_price_x96_from_price
from lpbot.chain import artifacts
from lpbot.devnet.manifest import Accounts, Manifest, PoolInfo, TokenInfo
from lpbot.errors import Halt
from lpbot.uniswap.liquidity_amounts import get_liquidity_for_amounts
from lpbot.uniswap.pool import FEE_TICK_SPACING
from lpbot.uniswap.tick_math import (
    MAX_TICK,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)

log = logging.getLogger(__name__)

GAS = 15_000_000
MAX_UINT256 = 2**256 - 1
ZERO = "0x0000000000000000000000000000000000000000"
OBSERVATION_CARDINALITY = 200  # enough history for TWAP guards over several minutes


@dataclass(frozen=True)
class PoolSpec:
    base: str
    quote: str
    fee: int
    price: Decimal  # quote tokens per base token
    usd_depth: int  # notional the seed LPs put in, in USD


TOKENS: tuple[tuple[str, str, int], ...] = (
    ("USDC", "USD Coin (devnet)", 6),
    ("WBTC", "Wrapped BTC (devnet)", 8),
)
USD_PRICES = {
    "USDC": Decimal(1),
    "USDT": Decimal(1),
    "WETH": Decimal(3000),
    "WBTC": Decimal(90000),
}
POOLS: tuple[PoolSpec, ...] = (
    PoolSpec("WETH", "USDC", 500, Decimal(3000), 20_000_000),
    PoolSpec("WETH", "USDC", 3000, Decimal(3000), 6_000_000),
    PoolSpec("WBTC", "USDC", 3000, Decimal(90000), 10_000_000),
    PoolSpec("WBTC", "WETH", 10000, Decimal(30), 4_000_000),
)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
# the tokens the devnet has a USD price feed for, and the feed's asset name
FEEDS = {"WETH": "ETH", "WBTC": "BTC"}
# (lp index, half-width in percent or None for full range, share of the pool's depth)
SEED_SHAPE: tuple[tuple[int, int | None, Decimal], ...] = (
    (0, 1, Decimal("0.20")),
    (1, 3, Decimal("0.30")),
    (2, 10, Decimal("0.30")),
    (3, 40, Decimal("0.15")),
    (0, None, Decimal("0.05")),
)


class Deployer:
    """Sends the deployment transactions from Anvil's unlocked accounts."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.accounts: list[str] = [str(to_checksum_address(a)) for a in w3.eth.accounts]

    def wait(self, tx_hash: Any) -> TxReceipt:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
        if receipt["status"] != 1:
            raise Halt(f"devnet transaction {tx_hash.hex()} reverted")
        return receipt

    def deploy(self, name: str, *args: Any, libraries: dict[str, str] | None = None) -> Contract:
        art = artifacts.load(name)
        code = art.linked(libraries or {}) if art.link_references else art.bytecode
        factory = self.w3.eth.contract(abi=art.abi, bytecode=code)
        receipt = self.wait(
            factory.constructor(*args).transact({"from": self.accounts[0], "gas": GAS})
        )
        address = receipt["contractAddress"]
        assert address is not None
        log.info("deployed %s at %s", name, address)
        return self.w3.eth.contract(address=address, abi=art.abi)

    def send(self, fn: ContractFunction, sender: str, value: int = 0) -> TxReceipt:
        tx: Any = {"from": sender, "gas": GAS, "value": value}
        return self.wait(fn.transact(tx))


def contract(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=artifacts.abi(name))


def _usable_ticks(spacing: int) -> tuple[int, int]:
    return -(-MIN_TICK // spacing) * spacing, MAX_TICK // spacing * spacing


def deploy_devnet(w3: Web3, rpc_url: str, shape: str | None = None) -> Manifest:
    """Deploy and seed everything on a fresh chain; return the manifest (not yet written).
    ``shape`` ("ethereum", "arbitrum"): the official contracts at that chain's real addresses
    (``lpbot.devnet.shapes``) on an Anvil with its chain id; None: at fresh addresses."""
    d = Deployer(w3)
    acc = d.accounts
    deployer, lps, traders, bot, owners = acc[0], acc[1:5], acc[5:8], acc[8], acc[9:12]

    tokens: dict[str, Contract] = {}
    decimals: dict[str, int] = {}
    feeds: dict[str, str] = {}
    extra: dict[str, str] = {}
    if shape is None:
        weth = d.deploy("WETH9")
        factory = d.deploy("UniswapV3Factory")
        nft_lib = d.deploy("NFTDescriptor")
        descriptor = d.deploy(
            "NonfungibleTokenPositionDescriptor",
            weth.address,
            b"ETH".ljust(32, b"\0"),
            libraries={"NFTDescriptor": nft_lib.address},
        )
        npm = d.deploy(
            "NonfungiblePositionManager", factory.address, weth.address, descriptor.address
        )
        router = d.deploy("SwapRouter02", ZERO, factory.address, npm.address, weth.address)
        quoter = d.deploy("QuoterV2", factory.address, weth.address)
        tick_lens = d.deploy("TickLens")
        multicall = d.deploy("Multicall3")
        safe_singleton = d.deploy("SafeL2")
        safe_factory = d.deploy("SafeProxyFactory")
        multisend = d.deploy("MultiSend")
        multisend_call_only = d.deploy("MultiSendCallOnly")
        fallback = d.deploy("CompatibilityFallbackHandler")
        pool_caller = d.deploy("PoolCaller")
        tokens["WETH"], decimals["WETH"] = weth, 18
        for symbol, name, dec in TOKENS:
            tokens[symbol] = d.deploy("TestERC20", name, symbol, dec)
            decimals[symbol] = dec
        extra = {
            "NFTDescriptor": nft_lib.address,
            "NonfungibleTokenPositionDescriptor": descriptor.address,
            "QuoterV2": quoter.address,
            "TickLens": tick_lens.address,
            "Multicall3": multicall.address,
            "MultiSend": multisend.address,
        }
    else:
        from lpbot.devnet.shapes import deploy_core, shape_chain

        core = deploy_core(w3, deployer, shape)
        c = core.contracts
        weth = contract(w3, "WETH9", core.tokens["WETH"])
        factory = contract(w3, "UniswapV3Factory", c["UniswapV3Factory"])
        npm = contract(w3, "NonfungiblePositionManager", c["NonfungiblePositionManager"])
        router = contract(w3, "SwapRouter02", c["SwapRouter02"])
        safe_singleton = contract(w3, "SafeL2", c["SafeL2"])
        safe_factory = contract(w3, "SafeProxyFactory", c["SafeProxyFactory"])
        multisend_call_only = contract(w3, "MultiSendCallOnly", c["MultiSendCallOnly"])
        fallback = contract(w3, "CompatibilityFallbackHandler", c["CompatibilityFallbackHandler"])
        pool_caller = d.deploy("PoolCaller")
        for symbol, ref in shape_chain(shape).tokens.items():
            tokens[symbol] = contract(w3, "TestERC20", core.tokens[symbol])
            decimals[symbol] = ref.decimals
        feeds = dict(core.feeds)
        extra = dict(c)

    # fund LPs and traders: test tokens by mint, WETH by deposit of Anvil's ETH
    for who in [*lps, *traders, bot, *owners]:
        for symbol in tokens:
            if symbol == "WETH":
                continue
            usd = 200_000_000 if who in lps else 20_000_000
            amount = int(Decimal(usd) / USD_PRICES[symbol] * 10 ** decimals[symbol])
            d.send(tokens[symbol].functions.mint(who, amount), deployer)
        weth_amount = (100_000 if who in lps else 20_000) * 10**18
        d.send(weth.functions.deposit(), who, value=weth_amount)
        for token in tokens.values():
            for spender in (npm.address, router.address, pool_caller.address):
                d.send(token.functions.approve(spender, MAX_UINT256), who)

    pools: list[PoolInfo] = []
    for spec in pool_specs(shape):
        pools.append(_create_and_seed(d, npm, factory, tokens, decimals, spec, lps))

    safe = _create_safe(d, safe_factory, safe_singleton.address, fallback.address, owners, 2)
    safe_position = _mint_for_safe(d, npm, tokens, pools[0], safe, bot)

    if shape is None:
        # Chainlink-style USD feeds for ETH and BTC (8 decimals, like Chainlink's), written by
        # the deployer as the market's keeper
        feeds = {
            symbol: str(
                d.deploy(
                    "PriceFeed", 8, f"{usd_name} / USD", int(USD_PRICES[symbol] * 10**8)
                ).address
            )
            for symbol, usd_name in FEEDS.items()
        }
    else:  # the keeper writes the shaped chain's feeds (placed at the registry's addresses)
        from lpbot.devnet.market import write_feeds

        write_feeds(w3, deployer, feeds, {s: USD_PRICES[s] for s in feeds})
    anchors = {s: f for s, f in feeds.items() if s != ANCHOR_UNIT}
    module = _enable_module(
        d,
        safe,
        npm.address,
        router.address,
        multisend_call_only.address,
        pools,
        tokens,
        bot,
        anchors,
    )
    if shape is None:
        # USDC's own USD feed (Ethereum and Arbitrum have one): the stablecoin's mark is
        # independent of the pools, so a pool off the ETH feed, or USDC off its peg, shows as
        # an alert
        one_usd = int(USD_PRICES[ANCHOR_UNIT] * 10**8)
        feeds[ANCHOR_UNIT] = str(d.deploy("PriceFeed", 8, f"{ANCHOR_UNIT} / USD", one_usd).address)
        # Safe's SimulateTxAccessor: the call dry-run runs the Safe batch through it (deployed
        # last, so every address above is unchanged); a shaped devnet has it at its canonical
        # address, from the Safe singleton factory
        extra["SimulateTxAccessor"] = d.deploy("SimulateTxAccessor").address

    block = w3.eth.get_block("latest")
    return Manifest(
        chain_id=w3.eth.chain_id,
        rpc_url=rpc_url,
        block=block["number"],
        timestamp=block["timestamp"],
        contracts={
            **extra,
            "WETH9": weth.address,
            "UniswapV3Factory": factory.address,
            "NonfungiblePositionManager": npm.address,
            "SwapRouter02": router.address,
            "SafeL2": safe_singleton.address,
            "SafeProxyFactory": safe_factory.address,
            "MultiSendCallOnly": multisend_call_only.address,
            "CompatibilityFallbackHandler": fallback.address,
            "PoolCaller": pool_caller.address,
            "LPRebalanceModule": module,
        },
        pool_init_code_hash=artifacts.load("UniswapV3Pool").init_code_hash,
        tokens={
            s: TokenInfo(symbol=s, address=c.address, decimals=decimals[s])
            for s, c in tokens.items()
        },
        pools=pools,
        accounts=Accounts(deployer=deployer, lps=lps, traders=traders, bot=bot, safe_owners=owners),
        safe=safe,
        safe_position=safe_position,
        price_feeds=feeds,
        shape=shape,
    )


def pool_specs(shape: str | None) -> tuple[PoolSpec, ...]:
    """The pools a devnet seeds: ``POOLS``, and on a shaped devnet also the registry's
    well-known pools of that chain (the ones a chain configured by its RPC URL prices from)."""
    if shape is None:
        return POOLS
    from lpbot.devnet.shapes import shape_chain

    specs = list(POOLS)
    have = {(frozenset((p.base, p.quote)), p.fee) for p in POOLS}
    for a, b, fee in shape_chain(shape).well_known_pools:
        if (frozenset((a, b)), fee) in have:
            continue
        base, quote = sorted((a, b), key=lambda s: USD_PRICES[s], reverse=True)
        price = USD_PRICES[base] / USD_PRICES[quote]
        specs.append(PoolSpec(base, quote, fee, price, 4_000_000))
        have.add((frozenset((a, b)), fee))
    return tuple(specs)


def _mint_for_safe(
    d: Deployer, npm: Contract, tokens: dict[str, Contract], pool: PoolInfo, safe: str, payer: str
) -> int:
    """A position of about $10,000 in +-3% around the price, owned by the Safe (paid by
    ``payer``): what the demo and the rebalance commands manage."""
    c = contract(d.w3, "UniswapV3Pool", pool.address)
    tick = c.functions.slot0().call()[1]
    spacing = pool.tick_spacing
    lower, upper = (tick - 300) // spacing * spacing, -(-(tick + 300) // spacing) * spacing
    t0, t1 = tokens[pool.token0], tokens[pool.token1]
    usd0, usd1 = USD_PRICES[pool.token0], USD_PRICES[pool.token1]
    d0, d1 = t0.functions.decimals().call(), t1.functions.decimals().call()
    amount0 = int(Decimal(5000) / usd0 * 10**d0)
    amount1 = int(Decimal(5000) / usd1 * 10**d1)
    params = (t0.address, t1.address, pool.fee, lower, upper, amount0, amount1, 0, 0, safe, 2**32)
    receipt = d.send(npm.functions.mint(params), payer)
    events = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    token_id: int = events[0]["args"]["tokenId"]
    return token_id


# the devnet module's limits: 6 rebalances in any 24 hours, 10 minutes apart, swaps of at most
# 60% of the Safe's holdings of the pool's tokens; spot within 150 ticks (about 1.5%) of a
# 30-minute TWAP, valued at spot too when the pool has not been observed for 10 minutes
MODULE_LIMITS = (6, 600, 6000)
MODULE_PRICE_CHECK = (1800, 150, 600)
# the owners' loss budget at the TWAP, in bps of the Safe's value in the pool: 1% per call
# (a 60% swap in the 1% WBTC/WETH tier pays 0.6% in fees alone), 3% in any 24 hours
MODULE_LOSS_BUDGET = (100, 300)
# minimums within 2% of what the TWAP price gives (the bot asks for 0.5% below its expected
# amounts; the 1% fee tier and the pool's price impact sit in between), ranges at least 60
# ticks wide around the TWAP, deadlines at most one hour ahead (the planner uses 20 minutes)
MODULE_BOUNDS = (200, 60, 3600)
# every listed pool is anchored to the feeds (USDC, the devnet's dollar, is the unit: it has
# no feed): answers at most 1 hour old (Chainlink's ETH/USD heartbeat), the pool's TWAP and
# pre-block tick within 300 ticks (about 3%) of the feeds' tick
MODULE_ANCHOR = (3600, 300)
ANCHOR_UNIT = "USDC"


def _anchor_feed(feeds: dict[str, str], symbol: str) -> str:
    """The USD feed anchoring ``symbol`` in the module; the zero address for the unit (USDC)."""
    if symbol == ANCHOR_UNIT:
        return ZERO_ADDRESS
    if symbol not in feeds:
        raise ValueError(f"no USD feed for {symbol}: the module cannot anchor its pools")
    return feeds[symbol]


def _enable_module(
    d: Deployer,
    safe: str,
    npm: str,
    router: str,
    multisend_call_only: str,
    pools: list[PoolInfo],
    tokens: dict[str, Contract],
    operator: str,
    feeds: dict[str, str],
) -> str:
    """Deploy LPRebalanceModule for the Safe, and have 2 of its 3 owners enable and configure
    it in one Safe transaction (MultiSendCallOnly): operator, allowed pools, limits, TWAP check,
    loss budget, bounds and each pool's price anchor (its tokens' USD feeds)."""
    from lpbot.devnet.keys import dev_signer
    from lpbot.signing.safe import (
        InnerCall,
        build_safe_transaction,
        combine,
        exec_transaction_data,
        sign,
    )

    module = d.deploy("LPRebalanceModule", safe, npm, router)
    safe_c = contract(d.w3, "SafeL2", safe)

    def data(c: Contract, fn: str, *args: Any) -> bytes:
        return bytes.fromhex(c.encode_abi(fn_name=fn, args=list(args))[2:])

    calls = [
        InnerCall(safe, data(safe_c, "enableModule", module.address)),
        InnerCall(module.address, data(module, "setOperator", operator)),
        InnerCall(module.address, data(module, "setLimits", *MODULE_LIMITS)),
        InnerCall(module.address, data(module, "setPriceCheck", *MODULE_PRICE_CHECK)),
        InnerCall(module.address, data(module, "setLossBudget", *MODULE_LOSS_BUDGET)),
        InnerCall(module.address, data(module, "setBounds", *MODULE_BOUNDS)),
    ]
    for p in pools:
        a, b = tokens[p.token0].address, tokens[p.token1].address
        calls.append(InnerCall(module.address, data(module, "allowPool", a, b, p.fee)))
        feed_a, feed_b = _anchor_feed(feeds, p.token0), _anchor_feed(feeds, p.token1)
        calls.append(
            InnerCall(
                module.address,
                data(module, "setAnchor", a, b, p.fee, feed_a, feed_b, *MODULE_ANCHOR),
            )
        )
    tx = build_safe_transaction(
        chain_id=d.w3.eth.chain_id,
        safe=safe,
        nonce=safe_c.functions.nonce().call(),
        calls=calls,
        multisend_call_only=multisend_call_only,
    )
    signatures = combine([sign(tx, dev_signer(i)) for i in (9, 10)], 2)
    d.wait(
        d.w3.eth.send_transaction(
            {
                "from": d.accounts[0],
                "to": safe,
                "data": exec_transaction_data(tx, signatures),
                "gas": GAS,
            }
        )
    )
    if not safe_c.functions.isModuleEnabled(module.address).call():
        raise Halt("the Safe did not enable the rebalance module")
    address: str = module.address
    return address


def _create_and_seed(
    d: Deployer,
    npm: Contract,
    factory: Contract,
    tokens: dict[str, Contract],
    decimals: dict[str, int],
    spec: PoolSpec,
    lps: list[str],
) -> PoolInfo:
    base, quote = tokens[spec.base], tokens[spec.quote]
    base_is_0 = int(base.address, 16) < int(quote.address, 16)
    sym0, sym1 = (spec.base, spec.quote) if base_is_0 else (spec.quote, spec.base)
    t0, t1 = tokens[sym0], tokens[sym1]
    dec0, dec1 = decimals[sym0], decimals[sym1]
    price1_per_0 = spec.price if base_is_0 else 1 / spec.price
    sqrt_price = sqrt_price_x96_from_price(price1_per_0, dec0, dec1)

    d.send(
        npm.functions.createAndInitializePoolIfNecessary(
            t0.address, t1.address, spec.fee, sqrt_price
        ),
        d.accounts[0],
    )
    address = factory.functions.getPool(t0.address, t1.address, spec.fee).call()
    pool = contract(d.w3, "UniswapV3Pool", address)
    d.send(
        pool.functions.increaseObservationCardinalityNext(OBSERVATION_CARDINALITY), d.accounts[0]
    )

    spacing = FEE_TICK_SPACING[spec.fee]
    lo_usable, hi_usable = _usable_ticks(spacing)
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    usd0, usd1 = USD_PRICES[sym0], USD_PRICES[sym1]
    for lp_index, half_width, share in SEED_SHAPE:
        if half_width is None:
            lower, upper = lo_usable, hi_usable
        else:
            # +-half_width% in price is about +-ln(1 + w) / ln(1.0001) ticks
            span = int((Decimal(1) + Decimal(half_width) / 100).ln() / Decimal("1.0001").ln())
            lower = max(lo_usable, (tick - span) // spacing * spacing)
            upper = min(hi_usable, -(-(tick + span) // spacing) * spacing)
        notional = Decimal(spec.usd_depth) * share
        amount0 = int(notional / 2 / usd0 * 10**dec0)
        amount1 = int(notional / 2 / usd1 * 10**dec1)
        liquidity = get_liquidity_for_amounts(
            sqrt_price,
            get_sqrt_ratio_at_tick(lower),
            get_sqrt_ratio_at_tick(upper),
            amount0,
            amount1,
        )
        if liquidity == 0:
            continue
        params = (
            t0.address,
            t1.address,
            spec.fee,
            lower,
            upper,
            amount0,
            amount1,
            0,
            0,
            lps[lp_index],
            2**32,
        )
        d.send(npm.functions.mint(params), lps[lp_index])

    pct = Decimal(spec.fee) / 10_000
    return PoolInfo(
        name=f"{sym0}/{sym1} {pct.normalize()}%",
        address=address,
        token0=sym0,
        token1=sym1,
        fee=spec.fee,
        tick_spacing=spacing,
        price=f"{spec.price} {spec.quote}/{spec.base}",
    )


def _create_safe(
    d: Deployer,
    safe_factory: Contract,
    singleton: str,
    fallback: str,
    owners: list[str],
    threshold: int,
) -> str:
    safe_abi = artifacts.abi("SafeL2")
    setup = d.w3.eth.contract(abi=safe_abi).encode_abi(
        fn_name="setup",
        args=[owners, threshold, ZERO, b"", fallback, ZERO, 0, ZERO],
    )
    receipt = d.send(
        safe_factory.functions.createProxyWithNonce(singleton, setup, 0), d.accounts[0]
    )
    events = safe_factory.events.ProxyCreation().process_receipt(receipt, errors=DISCARD)
    address: str = events[0]["args"]["proxy"]
    log.info("created a %d-of-%d Safe at %s", threshold, len(owners), address)
    return address
