"""A devnet that forks a real chain: the manifest comes from the chain registry's real addresses."""

from __future__ import annotations

from web3 import Web3

from lpbot.chain.book import registry_manifest
from lpbot.chain.registry import chain
from lpbot.devnet.manifest import Manifest
from lpbot.errors import Refused


def fork_manifest(w3: Web3, rpc_url: str, fork_url: str) -> Manifest:
    """Describe a forked chain with the registry's addresses; zkSync Era is refused clearly."""
    info = chain(w3.eth.chain_id)
    if not info.anvil_fork_supported:
        raise Refused(
            f"{info.name} ({info.chain_id}) cannot be forked by Anvil: zkSync Era runs EraVM "
            "bytecode and its own system contracts, which Anvil does not execute. Use its own RPC "
            "directly (lpbot dry-runs there by eth_call), or a fork of Ethereum or Arbitrum One."
        )
    accounts = [str(Web3.to_checksum_address(a)) for a in w3.eth.accounts]
    return registry_manifest(w3, rpc_url, fork_url=fork_url, accounts=accounts)
