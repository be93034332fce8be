"""The execution context for the devnet: its addresses, its Safe, Anvil's accounts."""

from __future__ import annotations

from pathlib import Path

from web3 import Web3

from lpbot.devnet.keys import dev_signer
from lpbot.devnet.manifest import Manifest
from lpbot.execution.service import ExecutionContext
from lpbot.execution.state import RebalanceRepo
from lpbot.pricing.base import PricingConfig
from lpbot.pricing.marks import Pricer, build_pricer
from lpbot.pricing.pools import PoolRef

BOT_ACCOUNT_INDEX = 8
SAFE_OWNER_INDEXES = (9, 10, 11)


def manifest_pricer(w3: Web3, manifest: Manifest, config: PricingConfig | None = None) -> Pricer:
    """Marks for the manifest's chain from its own pools and price feeds, like any chain's
    (``config.source`` says which: ``pricing.marks.build_pricer``). On a chain of the registry
    (live, or a fork of it) the feeds are the registry's, each with its heartbeat: a feed that
    updates once a day is current for a day, not ``max_age_seconds``."""
    from lpbot.chain.registry import CHAINS

    known = CHAINS.get(manifest.chain_id)
    feeds = dict(manifest.price_feeds)
    heartbeats: dict[str, int] = {}
    if known is not None:
        feeds = feeds or dict(known.price_feeds)
        # a heartbeat is the registry feed's: it holds only where the manifest lists that feed
        heartbeats = {
            t: hb
            for t, hb in known.price_feed_heartbeats.items()
            if feeds.get(t, "").lower() == known.price_feeds.get(t, "").lower()
        }
    return build_pricer(
        w3,
        chain=known.name if known else "devnet",
        tokens={s: t.decimals for s, t in manifest.tokens.items()},
        pools=[PoolRef(p.address, p.token0, p.token1, p.fee) for p in manifest.pools],
        feeds=feeds,
        heartbeats=heartbeats,
        config=config,
    )


def devnet_context(
    w3: Web3, manifest: Manifest, repo: RebalanceRepo, reports_dir: Path, **overrides: object
) -> ExecutionContext:
    """A context for the manifest's chain: by default the devnet's bot account sends and the
    demo Safe owns the positions; on a fork, pass ``safe=`` (the LP's own Safe) and the keys."""
    safe = overrides.pop("safe", None) or manifest.safe
    if safe is None:
        raise ValueError("this chain (a fork?) has no demo Safe: configure the Safe's address")
    pricer = overrides.pop("pricer", None) or manifest_pricer(w3, manifest)
    assert isinstance(pricer, Pricer)
    ctx = ExecutionContext(
        w3=w3,
        chain_id=manifest.chain_id,
        safe=str(safe),
        contracts=dict(manifest.contracts),
        repo=repo,
        reports_dir=reports_dir,
        executor=dev_signer(BOT_ACCOUNT_INDEX),
        symbols={t.address: (t.symbol, t.decimals) for t in manifest.tokens.values()},
        native_usd=pricer.fetch_mark("WETH", w3.eth.block_number).usd,
        # the module's operator on the devnet is the bot account (deploy.py sets it)
        operator=dev_signer(BOT_ACCOUNT_INDEX),
        pricer=pricer,
        # the gas token's USD price for the fee cap: its mark when the rebalance is sent
        gas_token_usd=lambda: pricer.fetch_mark("WETH", w3.eth.block_number).usd,
    )
    for k, v in overrides.items():
        setattr(ctx, k, v)
    return ctx


def owner_signers() -> list[object]:
    return [dev_signer(i) for i in SAFE_OWNER_INDEXES]
