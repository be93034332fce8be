"""The execution context for the devnet: its addresses, its Safe, Anvil's accounts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from web3 import Web3

from lpbot.devnet.deploy import USD_PRICES
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.manifest import Manifest
from lpbot.execution.service import ExecutionContext
from lpbot.execution.state import RebalanceRepo

BOT_ACCOUNT_INDEX = 8
SAFE_OWNER_INDEXES = (9, 10, 11)


def pool_usd_prices(w3: Web3, manifest: Manifest) -> dict[str, Decimal]:
    """USD prices read from the manifest's pools against USDC (analytics, for reports and the
    cost gate): what a fork of a real chain must use instead of the devnet's seeded prices."""
    from lpbot.analytics.prices import price0_per_1, price1_per_0
    from lpbot.devnet.deploy import contract

    prices = {"USDC": Decimal(1)}
    for p in manifest.pools:
        if "USDC" not in (p.token0, p.token1):
            continue
        sqrt = contract(w3, "UniswapV3Pool", p.address).functions.slot0().call()[0]
        d0, d1 = manifest.token(p.token0).decimals, manifest.token(p.token1).decimals
        if p.token0 == "USDC":
            prices.setdefault(p.token1, price0_per_1(sqrt, d0, d1))
        else:
            prices.setdefault(p.token0, price1_per_0(sqrt, d0, d1))
    return prices


def devnet_context(
    w3: Web3, manifest: Manifest, repo: RebalanceRepo, reports_dir: Path, **overrides: object
) -> ExecutionContext:
    """A context for the manifest's chain: by default the devnet's bot account sends and the
    demo Safe owns the positions; on a fork, pass ``safe=`` (the LP's own Safe) and the keys."""
    safe = overrides.pop("safe", None) or manifest.safe
    if safe is None:
        raise ValueError("this chain (a fork?) has no demo Safe: configure the Safe's address")
    by_address = {t.address: t for t in manifest.tokens.values()}
    ctx = ExecutionContext(
        w3=w3,
        chain_id=manifest.chain_id,
        safe=str(safe),
        contracts=dict(manifest.contracts),
        repo=repo,
        reports_dir=reports_dir,
        executor=dev_signer(BOT_ACCOUNT_INDEX),
        # USD figures (analytics): the devnet's seeded reference prices, or on a fork the
        # pools' own prices against USDC
        usd_price=(
            (lambda token: pool_usd_prices(w3, manifest).get(by_address[token].symbol, Decimal(0)))
            if manifest.fork_url
            else (lambda token: USD_PRICES.get(by_address[token].symbol, Decimal(0)))
        ),
        symbols={t.address: (t.symbol, t.decimals) for t in manifest.tokens.values()},
        native_usd=(
            pool_usd_prices(w3, manifest).get("WETH", USD_PRICES["WETH"])
            if manifest.fork_url
            else USD_PRICES["WETH"]
        ),
        # the module's operator on the devnet is the bot account (deploy.py sets it)
        operator=dev_signer(BOT_ACCOUNT_INDEX),
    )
    for k, v in overrides.items():
        setattr(ctx, k, v)
    return ctx


def owner_signers() -> list[object]:
    return [dev_signer(i) for i in SAFE_OWNER_INDEXES]
