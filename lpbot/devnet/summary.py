"""Human-readable lines about the devnet's pools."""

from __future__ import annotations

from decimal import Decimal

from web3 import Web3

from lpbot.analytics.prices import price1_per_0
from lpbot.chain.reader import PoolReader
from lpbot.devnet.manifest import DEVNET_STABLECOINS as STABLES
from lpbot.devnet.manifest import Manifest, PoolInfo


def quote(pool: PoolInfo, sqrt_price_x96: int, manifest: Manifest) -> str:
    """'1 WETH = 3000.00 USDC': the volatile token priced in the other (stablecoin first)."""
    d0 = manifest.token(pool.token0).decimals
    d1 = manifest.token(pool.token1).decimals
    p = price1_per_0(sqrt_price_x96, d0, d1)
    if pool.token0 in STABLES or (pool.token0 == "WETH" and pool.token1 == "WBTC"):
        return f"1 {pool.token1} = {Decimal(1) / p:,.2f} {pool.token0}"
    return f"1 {pool.token0} = {p:,.6g} {pool.token1}"


def pool_lines(w3: Web3, manifest: Manifest) -> list[str]:
    reader = PoolReader(
        w3, multicall=manifest.contracts["Multicall3"], tick_lens=manifest.contracts["TickLens"]
    )
    lines = []
    for p in manifest.pools:
        s = reader.fetch_pool_state(p.address, twap_seconds=(0,))
        lines.append(
            f"  {p.name:<18} {p.address}  {quote(p, s.slot0.sqrt_price_x96, manifest):<28} "
            f"tick {s.slot0.tick:>8}  liquidity {s.liquidity:.3e}  "
            f"{len(s.ticks)} initialized ticks nearby"
        )
    return lines
