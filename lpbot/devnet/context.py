"""The execution context for the devnet: its addresses, its Safe, Anvil's accounts."""

from __future__ import annotations

from pathlib import Path

from web3 import Web3

from lpbot.devnet.keys import dev_signer
from lpbot.devnet.manifest import Manifest
from lpbot.execution.service import ExecutionContext, chain_context
from lpbot.execution.state import RebalanceRepo
from lpbot.pricing.marks import Pricer, chain_pricer
from lpbot.signing.base import Signer

BOT_ACCOUNT_INDEX = 8
SAFE_OWNER_INDEXES = (9, 10, 11)


def devnet_context(
    w3: Web3, manifest: Manifest, repo: RebalanceRepo, reports_dir: Path, **overrides: object
) -> ExecutionContext:
    """A context for the manifest's chain (``execution.service.chain_context``): by default the
    devnet's bot account sends and the demo Safe owns the positions; on a fork, pass ``safe=``
    (the LP's own Safe) and the keys."""
    safe = overrides.pop("safe", None) or manifest.safe
    if safe is None:
        raise ValueError("this chain (a fork?) has no demo Safe: configure the Safe's address")
    pricer = overrides.pop("pricer", None) or chain_pricer(w3, manifest)
    assert isinstance(pricer, Pricer)
    # the module's operator on the devnet is the bot account (deploy.py sets it)
    bot = dev_signer(BOT_ACCOUNT_INDEX)
    executor = overrides.pop("executor") if "executor" in overrides else bot
    operator = overrides.pop("operator") if "operator" in overrides else bot
    return chain_context(
        w3, manifest, repo, reports_dir, safe=str(safe), executor=executor,  # type: ignore[arg-type]
        operator=operator, pricer=pricer, **overrides,  # type: ignore[arg-type]
    )  # fmt: skip


def bot_signer() -> Signer:
    """The devnet's bot account: it sends, and operates the rebalance module (deploy.py)."""
    return dev_signer(BOT_ACCOUNT_INDEX)


def owner_signers() -> list[object]:
    return [dev_signer(i) for i in SAFE_OWNER_INDEXES]
