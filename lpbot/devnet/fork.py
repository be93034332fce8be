"""A devnet that forks a real chain: the manifest comes from the chain registry's real addresses."""

from __future__ import annotations

from web3 import Web3

from lpbot.chain.registry import chain
from lpbot.devnet.manifest import Accounts, Manifest, PoolInfo, TokenInfo
from lpbot.errors import Refused
from lpbot.uniswap.pool import FEE_TICK_SPACING
from lpbot.uniswap.pool_address import compute_pool_address, sort_tokens


def registry_manifest(w3: Web3, rpc_url: str) -> Manifest:
    """A live chain described by the registry (no local accounts): what ``lpbot run`` uses for
    a chain configured by its RPC URL."""
    return _manifest(w3, rpc_url, fork_url=None, accounts=[])


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
    return _manifest(w3, rpc_url, fork_url=fork_url, accounts=accounts)


def _manifest(w3: Web3, rpc_url: str, *, fork_url: str | None, accounts: list[str]) -> Manifest:
    chain_id = w3.eth.chain_id
    info = chain(chain_id)
    c = info.contracts
    pools = []
    for a, b, fee in info.well_known_pools:
        ta, tb = info.tokens[a], info.tokens[b]
        t0, _t1 = sort_tokens(ta.address, tb.address)
        sym0, sym1 = (a, b) if t0 == ta.address else (b, a)
        address = compute_pool_address(
            c["UniswapV3Factory"],
            ta.address,
            tb.address,
            fee,
            info.pool_init_code_hash,
            zksync=info.zksync_create2,  # a live zkSync Era chain (never forked)
        )
        pools.append(
            PoolInfo(
                name=f"{sym0}/{sym1} {fee / 10_000:g}%",
                address=address,
                token0=sym0,
                token1=sym1,
                fee=fee,
                tick_spacing=FEE_TICK_SPACING[fee],
                price="as forked",
            )
        )
    block = w3.eth.get_block("latest")
    return Manifest(
        chain_id=chain_id,
        rpc_url=rpc_url,
        block=block["number"],
        timestamp=block["timestamp"],
        fork_url=fork_url,
        contracts=dict(c),
        pool_init_code_hash=info.pool_init_code_hash,
        tokens={
            s: TokenInfo(symbol=s, address=t.address, decimals=t.decimals)
            for s, t in info.tokens.items()
        },
        pools=pools,
        accounts=Accounts(
            deployer=accounts[0] if accounts else "",
            lps=accounts[1:5],
            traders=accounts[5:8],
            bot=accounts[8] if len(accounts) > 8 else "",
            safe_owners=accounts[9:12],
        ),
        safe=None,
        price_feeds=dict(info.price_feeds),
    )
