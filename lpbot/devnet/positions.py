"""Opening positions on the devnet from its bot account (tests, demos, the hedge commands)."""

from __future__ import annotations

from decimal import Decimal

from web3 import Web3
from web3.logs import DISCARD

from lpbot.analytics.prices import price0_per_1
from lpbot.chain.reader import PoolReader, PoolSnapshot
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.manifest import Manifest
from lpbot.errors import Halt
from lpbot.uniswap.liquidity_amounts import get_liquidity_for_amounts
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

SLIPPAGE_BPS = 50
DEADLINE_S = 600


def open_position(
    w3: Web3, manifest: Manifest, reader: PoolReader, *, usdc: int, half_width_ticks: int
) -> tuple[int, int, int, int, int]:
    """Mint a position for the bot account around the price; (token id, lower, upper, a0, a1)."""
    snap = reader.fetch_pool_state(manifest.pool("USDC/WETH-500").address)
    spacing = snap.tick_spacing
    lower = (snap.slot0.tick - half_width_ticks) // spacing * spacing
    upper = -(-(snap.slot0.tick + half_width_ticks) // spacing) * spacing
    token_id, amount0, amount1 = mint_usdc_weth(
        w3, manifest, snap, lower, upper, usdc=usdc, recipient=manifest.accounts.bot
    )
    return token_id, lower, upper, amount0, amount1


def mint_usdc_weth(
    w3: Web3,
    manifest: Manifest,
    snap: PoolSnapshot,
    lower: int,
    upper: int,
    *,
    usdc: int,
    recipient: str,
) -> tuple[int, int, int]:
    """The bot pays for a USDC/WETH 0.05% position in [lower, upper) for ``recipient``, offering
    ``usdc`` USDC and as much in WETH: amounts from the exact core on ``snap``, minimums at
    -0.5%, a deadline; the chain must take exactly what was computed. (token id, a0, a1)."""
    token_id, amount0, amount1, _tx = mint_usdc_weth_tx(
        w3, manifest, snap, lower, upper, usdc=usdc, recipient=recipient
    )
    return token_id, amount0, amount1


def mint_usdc_weth_tx(
    w3: Web3,
    manifest: Manifest,
    snap: PoolSnapshot,
    lower: int,
    upper: int,
    *,
    usdc: int,
    recipient: str,
) -> tuple[int, int, int, str]:
    """``mint_usdc_weth``, and the mint's transaction hash (its gas is the opening's cost; the
    bot's token approvals are the devnet's setup). (token id, a0, a1, tx hash)."""
    info = manifest.pool("USDC/WETH-500")
    d0, d1 = manifest.token(info.token0).decimals, manifest.token(info.token1).decimals
    eth_usd = price0_per_1(snap.slot0.sqrt_price_x96, d0, d1)
    amount0 = usdc * 10**d0
    amount1 = int(Decimal(usdc) / eth_usd * 10**d1)
    liquidity = get_liquidity_for_amounts(
        snap.slot0.sqrt_price_x96,
        get_sqrt_ratio_at_tick(lower),
        get_sqrt_ratio_at_tick(upper),
        amount0,
        amount1,
    )
    # what the pool will take, from the exact core on the snapshot, less the slippage bound
    need0, need1 = snap.to_pool().mint("bot", lower, upper, liquidity)
    min0 = need0 * (10_000 - SLIPPAGE_BPS) // 10_000
    min1 = need1 * (10_000 - SLIPPAGE_BPS) // 10_000
    bot = manifest.accounts.bot
    npm = contract(
        w3, "NonfungiblePositionManager", manifest.contracts["NonfungiblePositionManager"]
    )
    params = (
        manifest.token(info.token0).address,
        manifest.token(info.token1).address,
        info.fee,
        lower,
        upper,
        need0,
        need1,
        min0,
        min1,
        recipient,
        snap.block_timestamp + DEADLINE_S,
    )
    tx = npm.functions.mint(params).transact({"from": bot, "gas": GAS})
    receipt = w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.01)
    if receipt["status"] != 1:
        raise Halt(f"devnet mint reverted: {tx.hex()}")
    event = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]["args"]
    if (event["amount0"], event["amount1"], event["liquidity"]) != (need0, need1, liquidity):
        raise Halt("the chain took other amounts than the exact core computed")
    return int(event["tokenId"]), event["amount0"], event["amount1"], "0x" + bytes(tx).hex()
