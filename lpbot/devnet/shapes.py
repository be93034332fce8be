"""Devnets shaped like a real chain: the official contracts at their real addresses.

``lpbot devnet up --shape ethereum|arbitrum`` starts Anvil with that chain's id and puts every
contract of the chain registry (``lpbot.chain.registry``) where it is on the real chain, each the
way it got there:

- Uniswap V3 by replaying its deployer's nonces: the deployer is impersonated, its nonce set to
  the one that created the contract, and the same official artifact is deployed with the same
  constructor arguments; an address created by ``deployer`` is ``keccak(rlp([deployer,
  nonce]))[12:]``, so the nonces below are the ones that give the registry's addresses (found by
  that search). Pools then come out of the real factory address and init code hash.
- Safe 1.4.1 through its CREATE2 singleton factory: the factory's own pre-signed deployment
  transaction for this chain id (``@safe-global/safe-singleton-factory``) is sent as it was on
  the real chain, then each contract is created through it with the salt Safe used (zero), so
  they land at safe-deployments' "canonical" addresses.
- Multicall3 by replaying its deployer's nonce 0; WETH9 on Ethereum by its deployer's nonce 446.
- What has no replayable deployment here (WETH on Arbitrum is a proxy, the tokens are
  upgradeable proxies, the Chainlink feeds aggregators, Arbitrum's precompiles are native) is
  *placed*: a stand-in is deployed at a scratch address with the right constructor arguments
  and its runtime code and storage are copied to the real address (``anvil_setCode``,
  ``anvil_setStorageAt``), so immutables and constructor-written storage (a token's name,
  symbol and decimals) are those of a contract constructed there.

The market set-up (funded accounts, pools with liquidity, a Safe with the rebalance module)
follows, as on the default devnet (``lpbot.devnet.deploy``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.types import TxParams

from lpbot.chain import artifacts
from lpbot.chain.artifacts import project_root
from lpbot.chain.registry import ARBSYS, CHAINS, ChainInfo
from lpbot.errors import ConfigError, Halt, NeedsAttention

log = logging.getLogger(__name__)

# the shapes a devnet can take: the name given to ``--shape`` and the registry's chain id
SHAPES: dict[str, int] = {"ethereum": 1, "arbitrum": 42161}

ZERO = "0x0000000000000000000000000000000000000000"
GAS = 15_000_000
# geth's prestate tracer in diff mode: the state a transaction left, per account
DIFF_MODE = {"diffMode": True}

# Uniswap V3's deployer on Ethereum and Arbitrum One (the owner of the factory at deployment),
# and the nonce that created each contract: keccak(rlp([deployer, nonce]))[12:] is the
# registry's address (ProxyAdmin is nonce 1, the first SwapRouter 4, the descriptor's
# implementation 6 and its proxy 7, which NonfungiblePositionManager was constructed with)
UNISWAP_DEPLOYER = "0x6C9FC64A53c1b71FB3f9Af64d1ae3A4931A5f4E9"
UNISWAP_NONCES: dict[str, int] = {
    "UniswapV3Factory": 0,
    "TickLens": 2,
    "NFTDescriptor": 5,
    "NonfungibleTokenPositionDescriptor": 7,
    "NonfungiblePositionManager": 8,
    "QuoterV2": 13,
    "SwapRouter02": 14,
}
# the Uniswap V2 factory SwapRouter02 was constructed with: Ethereum's; Arbitrum One had no
# Uniswap V2 when SwapRouter02 was deployed there, and lpbot routes through V3 only
UNISWAP_V2_FACTORY: dict[int, str] = {1: "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f", 42161: ZERO}
# the descriptor's label for the native currency (NonfungibleTokenPositionDescriptor)
NATIVE_LABEL = b"ETH".ljust(32, b"\0")

# Multicall3 (mds1/multicall README, "Deployments and ABI"): its deployer's nonce 0 on every
# chain; the runtime here is lpbot's Multicall3 build (contracts/src/Multicall3.sol)
MULTICALL3_DEPLOYER = "0x05f32B3cC3888453ff71B01135B34FF8e41263F2"
# WETH9 on Ethereum: its deployer's nonce 446 (the search above)
WETH9_DEPLOYMENT: dict[int, tuple[str, int]] = {
    1: ("0x4F26FfBe5F04ED43630fdC30A87638d53D0b0876", 446)
}

# safe-global/safe-singleton-factory: the factory's address and the package that ships each
# chain's pre-signed deployment transaction (artifacts/<chain id>/deployment.json)
SAFE_SINGLETON_FACTORY = "0x914d7Fec6aaC8cd542e72Bca78B30650d45643d7"
SAFE_FACTORY_PACKAGE = "node_modules/@safe-global/safe-singleton-factory/artifacts"
# Safe's deployments through the singleton factory use the zero salt (safe-smart-account's
# hardhat-deploy ``deterministicDeployment``), which gives safe-deployments' addresses
SAFE_SALT = bytes(32)
SAFE_CONTRACTS = (
    "Safe",
    "SafeL2",
    "SafeProxyFactory",
    "MultiSend",
    "MultiSendCallOnly",
    "CompatibilityFallbackHandler",
    "SimulateTxAccessor",
)

# the tokens' own names (their contracts' ``name()``): symbol and decimals are the registry's
TOKEN_NAMES = {"USDC": "USD Coin", "USDT": "Tether USD", "WBTC": "Wrapped BTC"}
# each Chainlink feed's ``description()`` (data.chain.link), by the token it marks
FEED_DESCRIPTIONS = {"WETH": "ETH / USD", "WBTC": "BTC / USD", "USDC": "USDC / USD"}
FEED_DECIMALS = 8

# Arbitrum's NodeInterface (virtual) and the L1 base fee its stand-in estimates with
NODE_INTERFACE = "0x00000000000000000000000000000000000000C8"
ARBITRUM_L1_BASE_FEE_WEI = 10 * 10**9


def shape_chain(shape: str) -> ChainInfo:
    """The registry chain a shape is named after; a clear error for any other name."""
    if shape not in SHAPES:
        raise ConfigError(f"unknown devnet shape {shape!r}; known: {', '.join(sorted(SHAPES))}")
    return CHAINS[SHAPES[shape]]


def create_address(deployer: str, nonce: int) -> str:
    """The address a CREATE from ``deployer`` at ``nonce`` makes (Yellow Paper, eq. 86)."""
    import rlp

    raw = keccak(rlp.encode([bytes.fromhex(deployer.removeprefix("0x")), nonce]))
    return str(to_checksum_address(raw[12:]))


def create2_address(factory: str, salt: bytes, init_code: bytes) -> str:
    """The address a CREATE2 from ``factory`` makes (EIP-1014)."""
    raw = keccak(b"\xff" + bytes.fromhex(factory.removeprefix("0x")) + salt + keccak(init_code))
    return str(to_checksum_address(raw[12:]))


def creation_code(
    name: str, args: tuple[Any, ...] = (), libraries: dict[str, str] | None = None
) -> bytes:
    """An artifact's creation code with its ABI-encoded constructor arguments appended."""
    art = artifacts.load(name)
    code = art.linked(libraries or {}) if art.link_references else art.bytecode
    types = next(
        ([i["type"] for i in e["inputs"]] for e in art.abi if e.get("type") == "constructor"),
        [],
    )
    return bytes.fromhex(code.removeprefix("0x")) + (encode(types, list(args)) if types else b"")


@dataclass
class ShapedCore:
    """What ``deploy_core`` put on the chain: contracts by name, tokens by symbol, feeds."""

    contracts: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    feeds: dict[str, str] = field(default_factory=dict)


class _Chain:
    """The Anvil calls a shaped deployment makes, from one funded unlocked account."""

    def __init__(self, w3: Web3, sender: str) -> None:
        self.w3 = w3
        self.sender = sender

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in answer:
            raise Halt(f"devnet: {method} failed: {answer['error']}")
        return answer.get("result")

    def wait(self, tx_hash: Any) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
        if receipt["status"] != 1:
            raise Halt(f"devnet transaction {tx_hash.hex()} reverted")
        return receipt

    def code(self, address: str) -> bytes:
        return bytes(self.w3.eth.get_code(to_checksum_address(address)))

    def replay(self, deployer: str, nonce: int, expected: str, init_code: bytes) -> str:
        """Create ``init_code`` from ``deployer`` at ``nonce``: it lands at ``expected``."""
        if create_address(deployer, nonce) != to_checksum_address(expected):
            raise Halt(f"devnet: {deployer} at nonce {nonce} does not create {expected}")
        self.rpc("anvil_impersonateAccount", [deployer])
        self.rpc("anvil_setBalance", [deployer, hex(10**21)])
        self.rpc("anvil_setNonce", [deployer, hex(nonce)])
        tx: TxParams = {"from": deployer, "data": init_code, "gas": GAS}
        receipt = self.wait(self.w3.eth.send_transaction(tx))
        self.rpc("anvil_stopImpersonatingAccount", [deployer])
        address = str(receipt["contractAddress"])
        if address != to_checksum_address(expected):
            raise Halt(f"devnet: deployed at {address}, expected {expected}")
        return address

    def place(self, name: str, target: str, *args: Any) -> str:
        """Construct ``name`` at a scratch address, then copy its runtime code and the storage
        its constructor wrote to ``target`` (and clear the scratch address)."""
        init = creation_code(name, args)
        params: TxParams = {"from": self.sender, "data": init, "gas": GAS}
        tx = self.w3.eth.send_transaction(params)
        receipt = self.wait(tx)
        scratch = str(receipt["contractAddress"]).lower()
        trace = self.rpc(
            "debug_traceTransaction",
            ["0x" + bytes(tx).hex(), {"tracer": "prestateTracer", "tracerConfig": DIFF_MODE}],
        )
        post = trace["post"].get(scratch, {})
        target = str(to_checksum_address(target))
        self.rpc("anvil_setCode", [target, post.get("code") or "0x" + self.code(scratch).hex()])
        for slot, value in post.get("storage", {}).items():
            self.rpc("anvil_setStorageAt", [target, slot, value])
        self.rpc("anvil_setCode", [scratch, "0x"])
        return target


def deploy_core(w3: Web3, sender: str, shape: str) -> ShapedCore:
    """Put the registry's contracts, tokens and feeds for ``shape`` at their real addresses."""
    info = shape_chain(shape)
    if int(w3.eth.chain_id) != info.chain_id:
        raise Halt(f"devnet shape {shape} needs chain id {info.chain_id}, not {w3.eth.chain_id}")
    c = _Chain(w3, sender)
    core = ShapedCore()
    weth = info.tokens["WETH"].address

    _deploy_safe_factory(c, info.chain_id)
    for name in SAFE_CONTRACTS:
        core.contracts[name] = _deploy_through_safe_factory(c, name)

    # Uniswap V3, in the deployer's nonce order
    reg = info.contracts
    descriptor = create_address(
        UNISWAP_DEPLOYER, UNISWAP_NONCES["NonfungibleTokenPositionDescriptor"]
    )
    nft_lib = create_address(UNISWAP_DEPLOYER, UNISWAP_NONCES["NFTDescriptor"])
    uniswap: list[tuple[str, str, tuple[Any, ...], dict[str, str] | None]] = [
        ("UniswapV3Factory", reg["UniswapV3Factory"], (), None),
        ("TickLens", reg["TickLens"], (), None),
        ("NFTDescriptor", nft_lib, (), None),
        (
            "NonfungibleTokenPositionDescriptor",
            descriptor,
            (weth, NATIVE_LABEL),
            {"NFTDescriptor": nft_lib},
        ),
        (
            "NonfungiblePositionManager",
            reg["NonfungiblePositionManager"],
            (reg["UniswapV3Factory"], weth, descriptor),
            None,
        ),
        ("QuoterV2", reg["QuoterV2"], (reg["UniswapV3Factory"], weth), None),
        (
            "SwapRouter02",
            reg["SwapRouter02"],
            (
                UNISWAP_V2_FACTORY[info.chain_id],
                reg["UniswapV3Factory"],
                reg["NonfungiblePositionManager"],
                weth,
            ),
            None,
        ),
    ]
    for name, address, args, libraries in uniswap:
        init = creation_code(name, args, libraries)
        core.contracts[name] = c.replay(UNISWAP_DEPLOYER, UNISWAP_NONCES[name], address, init)

    core.contracts["Multicall3"] = c.replay(
        MULTICALL3_DEPLOYER, 0, reg["Multicall3"], creation_code("Multicall3")
    )

    if info.chain_id in WETH9_DEPLOYMENT:
        deployer, nonce = WETH9_DEPLOYMENT[info.chain_id]
        core.tokens["WETH"] = c.replay(deployer, nonce, weth, creation_code("WETH9"))
    else:
        core.tokens["WETH"] = c.place("WETH9", weth)
    core.contracts["WETH9"] = core.tokens["WETH"]

    for symbol, token in info.tokens.items():
        if symbol != "WETH":
            core.tokens[symbol] = c.place(
                "TestERC20", token.address, TOKEN_NAMES[symbol], symbol, token.decimals
            )

    for symbol, feed in info.price_feeds.items():
        # the first answer is a placeholder: the keeper writes the market's before any read
        core.feeds[symbol] = c.place("PriceFeed", feed, FEED_DECIMALS, FEED_DESCRIPTIONS[symbol], 1)

    if info.gas_model == "arbitrum":
        c.place("NodeInterfaceStandIn", NODE_INTERFACE, ARBITRUM_L1_BASE_FEE_WEI)
    if info.block_number_source == "arbsys":
        c.place("ArbSysStandIn", ARBSYS)

    for name, address in info.contracts.items():
        if not c.code(address):
            raise Halt(f"devnet shape {shape}: nothing at the registry's {name} {address}")
    return core


def _deploy_safe_factory(c: _Chain, chain_id: int) -> None:
    """Send the singleton factory's pre-signed deployment transaction for ``chain_id``."""
    path = project_root() / SAFE_FACTORY_PACKAGE / str(chain_id) / "deployment.json"
    if not path.exists():
        raise NeedsAttention(f"{path} not found: run `make setup` (npm ci)")
    deployment = json.loads(path.read_text())
    signer = str(to_checksum_address(deployment["signerAddress"]))
    cost = int(deployment["gasPrice"]) * int(deployment["gasLimit"])
    c.rpc("anvil_setBalance", [signer, hex(cost)])
    c.wait(c.w3.eth.send_raw_transaction(deployment["transaction"]))
    if to_checksum_address(deployment["address"]) != SAFE_SINGLETON_FACTORY or not c.code(
        SAFE_SINGLETON_FACTORY
    ):
        raise Halt("devnet: the Safe singleton factory is not at its address")


def _deploy_through_safe_factory(c: _Chain, name: str) -> str:
    """Create ``name`` through the singleton factory with Safe's salt; its canonical address."""
    init = creation_code(name)
    address = create2_address(SAFE_SINGLETON_FACTORY, SAFE_SALT, init)
    tx: TxParams = {
        "from": c.sender,
        "to": SAFE_SINGLETON_FACTORY,
        "data": SAFE_SALT + init,
        "gas": GAS,
    }
    c.wait(c.w3.eth.send_transaction(tx))
    if not c.code(address):
        raise Halt(f"devnet: {name} not created at {address}")
    return address
