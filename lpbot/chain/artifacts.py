"""The compiled contracts lpbot deploys and talks to, read from their official packages.

Uniswap V3 and Safe come from their npm packages' compiled artifacts (never recompiled);
WETH9 from ``canonical-weth``; lpbot's own contracts (test tokens, the test router, Multicall3,
the rebalance module) from ``forge build`` output in ``contracts/out``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from lpbot.errors import NeedsAttention


def project_root() -> Path:
    """The repository root (``LPBOT_ROOT`` overrides): where node_modules and contracts/ live."""
    env = os.environ.get("LPBOT_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


_NM = "node_modules"
_V3_CORE = f"{_NM}/@uniswap/v3-core/artifacts/contracts"
_V3_PERIPHERY = f"{_NM}/@uniswap/v3-periphery/artifacts/contracts"
_ROUTER02 = f"{_NM}/@uniswap/swap-router-contracts/artifacts/contracts"
_SAFE = f"{_NM}/@safe-global/safe-contracts/build/artifacts/contracts"
_OUT = "contracts/out"

ARTIFACT_PATHS: dict[str, str] = {
    "UniswapV3Factory": f"{_V3_CORE}/UniswapV3Factory.sol/UniswapV3Factory.json",
    "UniswapV3Pool": f"{_V3_CORE}/UniswapV3Pool.sol/UniswapV3Pool.json",
    "NonfungiblePositionManager": (
        f"{_V3_PERIPHERY}/NonfungiblePositionManager.sol/NonfungiblePositionManager.json"
    ),
    "NonfungibleTokenPositionDescriptor": (
        f"{_V3_PERIPHERY}/NonfungibleTokenPositionDescriptor.sol/"
        "NonfungibleTokenPositionDescriptor.json"
    ),
    "NFTDescriptor": f"{_V3_PERIPHERY}/libraries/NFTDescriptor.sol/NFTDescriptor.json",
    "QuoterV2": f"{_V3_PERIPHERY}/lens/QuoterV2.sol/QuoterV2.json",
    "TickLens": f"{_V3_PERIPHERY}/lens/TickLens.sol/TickLens.json",
    "SwapRouter02": f"{_ROUTER02}/SwapRouter02.sol/SwapRouter02.json",
    "WETH9": f"{_NM}/canonical-weth/build/contracts/WETH9.json",
    "Safe": f"{_SAFE}/Safe.sol/Safe.json",
    "SafeL2": f"{_SAFE}/SafeL2.sol/SafeL2.json",
    "SafeProxyFactory": f"{_SAFE}/proxies/SafeProxyFactory.sol/SafeProxyFactory.json",
    "MultiSend": f"{_SAFE}/libraries/MultiSend.sol/MultiSend.json",
    "MultiSendCallOnly": f"{_SAFE}/libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json",
    "CompatibilityFallbackHandler": (
        f"{_SAFE}/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json"
    ),
    "SimulateTxAccessor": f"{_SAFE}/accessors/SimulateTxAccessor.sol/SimulateTxAccessor.json",
    "Multicall3": f"{_OUT}/Multicall3.sol/Multicall3.json",
    "TestERC20": f"{_OUT}/TestERC20.sol/TestERC20.json",
    "PoolCaller": f"{_OUT}/PoolCaller.sol/PoolCaller.json",
    "LPRebalanceModule": f"{_OUT}/LPRebalanceModule.sol/LPRebalanceModule.json",
    "PriceFeed": f"{_OUT}/PriceFeed.sol/PriceFeed.json",
    "NodeInterfaceStandIn": f"{_OUT}/ArbitrumStandIns.sol/NodeInterfaceStandIn.json",
    "ArbSysStandIn": f"{_OUT}/ArbitrumStandIns.sol/ArbSysStandIn.json",
}


@dataclass(frozen=True)
class Artifact:
    """A contract's ABI and creation bytecode (hex, possibly with library placeholders)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    link_references: dict[str, dict[str, list[dict[str, int]]]]
    deployed_bytecode: str = ""  # the runtime code (hex), where the artifact carries it

    def linked(self, libraries: dict[str, str]) -> str:
        """The bytecode with each library placeholder replaced by its deployed address."""
        code = self.bytecode.removeprefix("0x")
        for _source, libs in self.link_references.items():
            for lib_name, refs in libs.items():
                if lib_name not in libraries:
                    raise NeedsAttention(f"{self.name} needs library {lib_name} linked")
                address = libraries[lib_name].lower().removeprefix("0x")
                for ref in refs:
                    start = ref["start"] * 2
                    code = code[:start] + address + code[start + ref["length"] * 2 :]
        return "0x" + code

    @property
    def init_code_hash(self) -> str:
        """keccak256 of the creation code, as CREATE2 address derivation uses it."""
        return "0x" + keccak(bytes.fromhex(self.bytecode.removeprefix("0x"))).hex()


@cache
def load(name: str) -> Artifact:
    """Read one artifact by contract name; a missing file says which set-up step to run."""
    rel = ARTIFACT_PATHS.get(name)
    if rel is None:
        raise KeyError(f"unknown artifact {name!r}; known: {', '.join(sorted(ARTIFACT_PATHS))}")
    path = project_root() / rel
    if not path.exists():
        step = "forge build" if rel.startswith(_OUT) else "npm ci"
        raise NeedsAttention(f"artifact {name} not found at {path}: run `make setup` ({step})")
    data = json.loads(path.read_text())
    bytecode = data["bytecode"]
    if isinstance(bytecode, dict):  # forge output
        link_references = bytecode.get("linkReferences", {})
        bytecode = bytecode["object"]
    else:
        link_references = data.get("linkReferences", {})
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    deployed = data.get("deployedBytecode") or ""
    if isinstance(deployed, dict):  # forge output
        deployed = deployed.get("object", "")
    if deployed and not deployed.startswith("0x"):
        deployed = "0x" + deployed
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=bytecode,
        link_references=link_references,
        deployed_bytecode=deployed,
    )


def abi(name: str) -> list[dict[str, Any]]:
    return load(name).abi
