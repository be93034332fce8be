"""The devnet manifest: chain id, block, every deployed address and the accounts it funded."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

# the devnet's own USD stablecoins (by symbol: it deploys its tokens itself); a chain of the
# registry has its own list (``lpbot.chain.registry.ChainInfo.stablecoins``)
DEVNET_STABLECOINS = frozenset({"USDC", "USDT", "DAI"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TokenInfo(_Frozen):
    symbol: str
    address: str
    decimals: int


class PoolInfo(_Frozen):
    name: str  # e.g. "USDC/WETH 0.05%"
    address: str
    token0: str  # symbol
    token1: str
    fee: int
    tick_spacing: int
    price: str  # the quote of the base token in the quote token at deployment, as text


class Accounts(_Frozen):
    deployer: str
    lps: list[str]
    traders: list[str]
    bot: str
    safe_owners: list[str]


class Manifest(_Frozen):
    chain_id: int
    rpc_url: str
    block: int
    timestamp: int
    fork_url: str | None = None
    contracts: dict[str, str]
    pool_init_code_hash: str
    tokens: dict[str, TokenInfo]
    pools: list[PoolInfo]
    accounts: Accounts
    safe: str | None = None
    safe_position: int | None = None  # an NFT position owned by the Safe, for the demo
    # AggregatorV3 USD feeds by the token they mark (contracts/src/PriceFeed.sol stand-ins,
    # updated by the market's keeper; on a fork, Chainlink's own from the registry)
    price_feeds: dict[str, str] = {}
    # the real chain a shaped devnet copies ("ethereum", "arbitrum": ``lpbot.devnet.shapes``)
    shape: str | None = None

    def pool(self, name_or_address: str) -> PoolInfo:
        """A pool by address, name ("USDC/WETH 0.05%") or short name ("USDC/WETH-500")."""
        key = name_or_address.lower()
        for p in self.pools:
            short = f"{p.token0}/{p.token1}-{p.fee}".lower()
            if key in (p.address.lower(), p.name.lower(), short):
                return p
        known = ", ".join(f"{p.token0}/{p.token1}-{p.fee}" for p in self.pools)
        raise KeyError(f"no pool {name_or_address!r} in the devnet manifest; known: {known}")

    def stablecoin_addresses(self) -> list[str]:
        """The addresses of the devnet's USD stablecoins (``DEVNET_STABLECOINS``)."""
        return [t.address for s, t in self.tokens.items() if s in DEVNET_STABLECOINS]

    def token(self, symbol: str) -> TokenInfo:
        return self.tokens[symbol]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.model_validate_json(path.read_text())
