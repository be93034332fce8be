"""A market on the devnet: other accounts trade through SwapRouter02 along a seeded price path.

Each step advances the chain's clock, draws the next price of a geometric Brownian motion
(annualised volatility ``vol``), lets traders send a few uninformed trades of realistic size in
random directions, then an arbitrageur trades the pool to the path's price. The LP's position sees
real swaps and earns real fees, exactly as on a live chain.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from decimal import Decimal

from web3 import Web3

from lpbot.analytics.prices import price1_per_0, sqrt_price_x96_from_price
from lpbot.devnet.deploy import GAS, USD_PRICES, contract
from lpbot.devnet.manifest import Manifest, PoolInfo
from lpbot.errors import Refused
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO

log = logging.getLogger(__name__)

SECONDS_PER_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class MarketResult:
    pool: str
    steps: int
    trades: int
    start_price: Decimal  # token1 per token0, whole tokens
    end_price: Decimal
    volume_usd: Decimal
    start_block: int
    end_block: int


def _rpc(w3: Web3, method: str, params: list[object]) -> object:
    return w3.provider.make_request(method, params)  # type: ignore[arg-type]


def run_market(
    w3: Web3,
    manifest: Manifest,
    pool_info: PoolInfo,
    *,
    steps: int,
    vol: float,
    seed: int,
    step_seconds: int = 3600,
    trades_per_step: int = 4,
    median_trade_usd: float = 20_000.0,
    keeper: bool = True,
) -> MarketResult:
    """Trade ``steps`` steps on the pool; return what happened. With ``keeper`` the devnet's
    USD price feeds are updated after each step (``push_feeds``), as Chainlink's are."""
    if steps <= 0 or vol < 0 or step_seconds <= 0 or trades_per_step < 0:
        raise Refused("market: steps and step seconds must be > 0, vol and trades >= 0")
    rng = random.Random(seed)
    pool = contract(w3, "UniswapV3Pool", pool_info.address)
    router = contract(w3, "SwapRouter02", manifest.contracts["SwapRouter02"])
    t0 = manifest.token(pool_info.token0)
    t1 = manifest.token(pool_info.token1)
    usd0, usd1 = USD_PRICES.get(t0.symbol), USD_PRICES.get(t1.symbol)
    traders = manifest.accounts.traders
    arbitrageur = traders[0]

    start_sqrt = pool.functions.slot0().call()[0]
    start_price = price1_per_0(start_sqrt, t0.decimals, t1.decimals)
    start_block = w3.eth.block_number
    price = float(start_price)
    sigma = vol * math.sqrt(step_seconds / SECONDS_PER_YEAR)
    trades = 0
    volume = Decimal(0)

    tiers = [pool_info] + [
        p
        for p in manifest.pools
        if (p.token0, p.token1) == (pool_info.token0, pool_info.token1)
        and p.address != pool_info.address
    ]

    def swap(sender: str, zero_for_one: bool, amount_in: int, limit: int, fee: int = 0) -> None:
        token_in, token_out = (t0, t1) if zero_for_one else (t1, t0)
        fee = fee or pool_info.fee
        params = (token_in.address, token_out.address, fee, sender, amount_in, 0, limit)
        tx = router.functions.exactInputSingle(params).transact({"from": sender, "gas": GAS})
        receipt = w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.01)
        if receipt["status"] != 1:
            log.warning("market trade reverted: %s", tx.hex())

    for _step in range(steps):
        _rpc(w3, "evm_increaseTime", [step_seconds])
        price *= math.exp(rng.gauss(-0.5 * sigma**2, sigma))
        current = float(price1_per_0(pool.functions.slot0().call()[0], t0.decimals, t1.decimals))
        for _ in range(trades_per_step):
            usd = rng.lognormvariate(math.log(median_trade_usd), 1.0)
            zero_for_one = rng.random() < 0.5
            sender = rng.choice(traders)
            if zero_for_one:
                # value token0 in USD directly, or through the pool price and token1's USD price
                usd_token0 = float(usd0) if usd0 else float(usd1 or 1) * current
                amount = int(usd / usd_token0 * 10**t0.decimals)
                swap(sender, True, amount, MIN_SQRT_RATIO + 1)
            else:
                usd_token1 = float(usd1) if usd1 else float(usd0 or 1) / current
                amount = int(usd / usd_token1 * 10**t1.decimals)
                swap(sender, False, amount, MAX_SQRT_RATIO - 1)
            trades += 1
            volume += Decimal(str(round(usd, 2)))
        target = sqrt_price_x96_from_price(Decimal(price), t0.decimals, t1.decimals)
        # the arbitrageur brings this pool, and the pair's other fee tiers, to the path's price
        for tier in tiers:
            sqrt_now = contract(w3, "UniswapV3Pool", tier.address).functions.slot0().call()[0]
            if target != sqrt_now:
                zero_for_one = target < sqrt_now
                token = t0 if zero_for_one else t1
                # enough input to reach the target: the router only pulls what the pool takes
                swap(arbitrageur, zero_for_one, 10**9 * 10**token.decimals, target, tier.fee)
                trades += 1
        _rpc(w3, "evm_mine", [])
        if keeper:
            push_feeds(w3, manifest)

    end_price = price1_per_0(pool.functions.slot0().call()[0], t0.decimals, t1.decimals)
    return MarketResult(
        pool=pool_info.address,
        steps=steps,
        trades=trades,
        start_price=start_price,
        end_price=end_price,
        volume_usd=volume,
        start_block=start_block,
        end_block=w3.eth.block_number,
    )


def push_feeds(w3: Web3, manifest: Manifest) -> dict[str, Decimal]:
    """The devnet's feed keeper: write each price feed's answer (8 decimals) from the token's
    most liquid pool against USDC; USDC's own feed stays at its 1 USD, as Chainlink's USDC / USD
    does while USDC holds its peg, never taken from the pools. Returns the answers."""
    answers: dict[str, Decimal] = {}
    if not manifest.price_feeds:
        return answers
    usdc = manifest.token("USDC")
    for symbol in manifest.price_feeds:
        # USDC's feed is not read off the pools: a keeper of its own would move it
        best: tuple[int, Decimal] | None = (0, USD_PRICES["USDC"]) if symbol == "USDC" else None
        for p in manifest.pools if symbol != "USDC" else ():
            if {p.token0, p.token1} != {symbol, "USDC"}:
                continue
            c = contract(w3, "UniswapV3Pool", p.address)
            liquidity = c.functions.liquidity().call()
            sqrt = c.functions.slot0().call()[0]
            token = manifest.token(symbol)
            price = (
                price1_per_0(sqrt, token.decimals, usdc.decimals)
                if p.token0 == symbol
                else 1 / price1_per_0(sqrt, usdc.decimals, token.decimals)
            )
            if best is None or liquidity > best[0]:
                best = (liquidity, price)
        if best is None:
            continue
        answers[symbol] = best[1]
    write_feeds(w3, manifest.accounts.deployer, manifest.price_feeds, answers)
    return answers


def write_feeds(w3: Web3, updater: str, feeds: dict[str, str], answers: dict[str, Decimal]) -> None:
    """Write each answer (USD, 8 decimals) to its token's feed, as the feeds' ``updater``."""
    for symbol, answer in answers.items():
        fn = contract(w3, "PriceFeed", feeds[symbol]).functions.updateAnswer(int(answer * 10**8))
        tx = fn.transact({"from": updater, "gas": GAS})
        w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.01)


def move_price(
    w3: Web3, manifest: Manifest, pool_info: PoolInfo, factor: float, *, keeper: bool = True
) -> int:
    """Trade the pool, and the pair's other pools as arbitrage would, to ``factor`` times its
    sqrt price (one exact-input swap each, the price limit as the target) and wait for the
    receipts; with ``keeper`` the devnet's USD feeds follow (``push_feeds``). Returns the
    pool's new sqrt price."""
    if not factor > 0:
        raise Refused(f"market: the price factor must be > 0, got {factor}")
    pool = contract(w3, "UniswapV3Pool", pool_info.address)
    router = contract(w3, "SwapRouter02", manifest.contracts["SwapRouter02"])
    trader = manifest.accounts.traders[0]
    target = int(pool.functions.slot0().call()[0] * factor)
    up = factor > 1  # the sqrt price (token1 per token0) rises when token1 is sold
    t_in, t_out = (
        (pool_info.token1, pool_info.token0) if up else (pool_info.token0, pool_info.token1)
    )
    pair = {pool_info.token0, pool_info.token1}
    for p in [p for p in manifest.pools if {p.token0, p.token1} == pair]:
        tx = router.functions.exactInputSingle(
            (
                manifest.token(t_in).address,
                manifest.token(t_out).address,
                p.fee,
                trader,
                10**24,
                0,
                target,
            )
        ).transact({"from": trader, "gas": GAS})
        w3.eth.wait_for_transaction_receipt(tx)
    if keeper:
        push_feeds(w3, manifest)
    return int(pool.functions.slot0().call()[0])
