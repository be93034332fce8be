"""The demo on a local chain: open a position through the real NonfungiblePositionManager, let
the market trade around it, and follow it block by block from the chain's own numbers.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from web3 import Web3
from web3.logs import DISCARD

from lpbot.analytics.prices import price0_per_1, to_units
from lpbot.chain.reader import PoolReader, PoolSnapshot
from lpbot.chain.rpc import connect
from lpbot.devnet import anvil
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.manifest import Manifest
from lpbot.devnet.market import run_market
from lpbot.devnet.service import load_or_deploy
from lpbot.errors import Halt
from lpbot.uniswap.liquidity_amounts import get_liquidity_for_amounts
from lpbot.uniswap.position_value import fees, get_fee_growth_inside, principal
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

SLIPPAGE_BPS = 50
DEADLINE_S = 600


@dataclass(frozen=True)
class Step:
    hour: int
    block: int
    price: Decimal
    tick: int
    in_range: bool
    amount0: int
    amount1: int
    fees0: int
    fees1: int
    value_usd: Decimal
    hold_usd: Decimal


def _usd(snapshot: PoolSnapshot, d0: int, d1: int, a0: int, a1: int) -> Decimal:
    eth = price0_per_1(snapshot.slot0.sqrt_price_x96, d0, d1)
    return to_units(a0, d0) + to_units(a1, d1) * eth


def open_position(
    w3: Web3, manifest: Manifest, reader: PoolReader, *, usdc: int, half_width_ticks: int
) -> tuple[int, int, int, int, int]:
    """Mint a position for the bot account around the price; (token id, lower, upper, a0, a1)."""
    info = manifest.pool("USDC/WETH-500")
    snap = reader.fetch_pool_state(info.address)
    spacing = snap.tick_spacing
    lower = (snap.slot0.tick - half_width_ticks) // spacing * spacing
    upper = -(-(snap.slot0.tick + half_width_ticks) // spacing) * spacing
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
        bot,
        snap.block_timestamp + DEADLINE_S,
    )
    tx = npm.functions.mint(params).transact({"from": bot, "gas": GAS})
    receipt = w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.01)
    if receipt["status"] != 1:
        raise Halt(f"demo mint reverted: {tx.hex()}")
    event = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]["args"]
    if (event["amount0"], event["amount1"], event["liquidity"]) != (need0, need1, liquidity):
        raise Halt("the chain took other amounts than the exact core computed")
    return event["tokenId"], lower, upper, event["amount0"], event["amount1"]


def run(hours: int = 24, seed: int = 7, out: Callable[[str], None] = print) -> list[Step]:
    """Start a private devnet, open a position, trade ``hours`` hours, print what happens."""
    home = Path(tempfile.gettempdir()) / "lpbot-demo"
    home.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    proc = anvil.start(log_path=home / "anvil.log")
    try:
        w3 = connect(proc.url)
        manifest, cached = load_or_deploy(w3, proc.url, home)
        out(
            f"local chain {proc.url}: Uniswap V3 and Safe deployed from the official artifacts "
            f"({'loaded' if cached else 'deployed and seeded'} in "
            f"{time.monotonic() - t_start:.1f} s)"
        )
        reader = PoolReader(
            w3,
            multicall=manifest.contracts["Multicall3"],
            tick_lens=manifest.contracts["TickLens"],
            position_manager=manifest.contracts["NonfungiblePositionManager"],
        )
        info = manifest.pool("USDC/WETH-500")
        d0, d1 = manifest.token(info.token0).decimals, manifest.token(info.token1).decimals
        token_id, lower, upper, held0, held1 = open_position(
            w3, manifest, reader, usdc=5_000, half_width_ticks=1000
        )
        out(
            f"opened position #{token_id} on {info.name}: ticks [{lower}, {upper}), paid "
            f"{to_units(held0, d0):.2f} {info.token0} + {to_units(held1, d1):.6f} {info.token1} "
            f"(mins -{SLIPPAGE_BPS / 100:.1f}%, deadline +{DEADLINE_S} s)\n"
        )
        steps: list[Step] = []
        for hour in range(hours + 1):
            if hour > 0:
                run_market(w3, manifest, info, steps=1, vol=0.8, seed=seed * 1000 + hour)
            snap = reader.fetch_pool_state(info.address, token_ids=[token_id])
            pos = snap.positions[token_id]
            a0, a1 = principal(pos.npm, snap.slot0.sqrt_price_x96)
            inside = get_fee_growth_inside(
                snap.slot0.tick,
                snap.fee_growth_global0_x128,
                snap.fee_growth_global1_x128,
                pos.lower.fee_growth_outside0_x128,
                pos.lower.fee_growth_outside1_x128,
                pos.upper.fee_growth_outside0_x128,
                pos.upper.fee_growth_outside1_x128,
                lower,
                upper,
            )
            f0, f1 = fees(pos.npm, *inside)
            steps.append(
                Step(
                    hour=hour,
                    block=snap.block_number,
                    price=price0_per_1(snap.slot0.sqrt_price_x96, d0, d1),
                    tick=snap.slot0.tick,
                    in_range=lower <= snap.slot0.tick < upper,
                    amount0=a0,
                    amount1=a1,
                    fees0=f0,
                    fees1=f1,
                    value_usd=_usd(snap, d0, d1, a0 + f0, a1 + f1),
                    hold_usd=_usd(snap, d0, d1, held0, held1),
                )
            )
        # the chain agrees: collect (as a call) pays exactly the fees computed above
        npm = contract(
            w3, "NonfungiblePositionManager", manifest.contracts["NonfungiblePositionManager"]
        )
        bot = manifest.accounts.bot
        collect = npm.functions.collect((token_id, bot, 2**128 - 1, 2**128 - 1)).call({"from": bot})
        last = steps[-1]
        verdict = "equal to the wei" if tuple(collect) == (last.fees0, last.fees1) else "DIFFERENT"
        out(render(steps))
        out(
            f"\nfees owed per the exact core: {to_units(last.fees0, d0)} {info.token0}, "
            f"{to_units(last.fees1, d1)} {info.token1}; the contract's collect() pays "
            f"{to_units(collect[0], d0)} {info.token0}, {to_units(collect[1], d1)} {info.token1}"
            f" -> {verdict}"
        )
        if verdict != "equal to the wei":
            raise Halt("the exact core and the contract disagree on the fees owed")
        return steps
    finally:
        proc.stop()


def render(steps: list[Step]) -> str:
    head = (
        f"{'hour':>4} {'block':>6} {'ETH/USD':>9} {'range':>5} {'USDC':>10} {'WETH':>9} "
        f"{'fees USDC':>10} {'fees WETH':>10} {'LP value $':>11} {'hold $':>11} {'LP-hold $':>9}"
    )
    lines = [head, "-" * len(head)]
    for s in steps:
        lines.append(
            f"{s.hour:>4} {s.block:>6} {s.price:>9.2f} {'in' if s.in_range else 'OUT':>5} "
            f"{to_units(s.amount0, 6):>10.2f} {to_units(s.amount1, 18):>9.5f} "
            f"{to_units(s.fees0, 6):>10.4f} {to_units(s.fees1, 18):>10.6f} "
            f"{s.value_usd:>11.2f} {s.hold_usd:>11.2f} {s.value_usd - s.hold_usd:>9.2f}"
        )
    return "\n".join(lines)
