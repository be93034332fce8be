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


def devnet_context(
    w3: Web3, manifest: Manifest, repo: RebalanceRepo, reports_dir: Path, **overrides: object
) -> ExecutionContext:
    """A context whose executor is the devnet's bot account and whose Safe is the demo Safe."""
    if manifest.safe is None:
        raise ValueError("this devnet has no Safe (a fork?)")
    by_address = {t.address: t for t in manifest.tokens.values()}
    ctx = ExecutionContext(
        w3=w3,
        chain_id=manifest.chain_id,
        safe=manifest.safe,
        contracts=dict(manifest.contracts),
        repo=repo,
        reports_dir=reports_dir,
        executor=dev_signer(BOT_ACCOUNT_INDEX),
        # devnet prices for the report's USD figures (analytics): the seeded reference prices
        usd_price=lambda token: USD_PRICES.get(by_address[token].symbol, Decimal(0)),
        symbols={t.address: (t.symbol, t.decimals) for t in manifest.tokens.values()},
        native_usd=USD_PRICES["WETH"],
        # the module's operator on the devnet is the bot account (deploy.py sets it)
        operator=dev_signer(BOT_ACCOUNT_INDEX),
    )
    for k, v in overrides.items():
        setattr(ctx, k, v)
    return ctx


def owner_signers() -> list[object]:
    return [dev_signer(i) for i in SAFE_OWNER_INDEXES]
