"""The chains lpbot knows: Uniswap V3, Multicall3, Safe and token addresses, and chain facts.

Addresses are the published deployments (Uniswap's "deployments" pages per chain; Safe's
safe-deployments for v1.3.0/v1.4.1; each token's own documentation), each checked against its
source in ``tests/chain/test_registry.py``. The local devnet's come from its manifest instead
(``lpbot.devnet.manifest``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lpbot.errors import ConfigError

EVM_POOL_INIT_CODE_HASH = "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
# zkSync Era derives CREATE2 addresses from the bytecode hash, not the init code hash
ZKSYNC_POOL_BYTECODE_HASH = "0x010013f177ea1fcbc4520f9a3ca7cd2d1d77959e05aa66484027cb38e712aeed"

# Safe v1.4.1 singleton factory deployments: the same addresses on every EVM chain
# (safe-deployments "canonical"; zkSync Era has no v1.4.1 deployment)
_SAFE_141 = {
    "Safe": "0x41675C099F32341bf84BFc5382aF534df5C7461a",
    "SafeL2": "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762",
    "SafeProxyFactory": "0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67",
    "MultiSend": "0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526",
    "MultiSendCallOnly": "0x9641d764fc13c8B624c04430C7356C1C7C8102e2",
    "CompatibilityFallbackHandler": "0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99",
    # safe-deployments src/assets/v1.4.1/simulate_tx_accessor.json, "canonical"
    "SimulateTxAccessor": "0x3d4BA2E0884aa488718476ca2FB8Efc291A46199",
}
# Uniswap V3 on Ethereum and Arbitrum One (the same addresses on both)
_UNISWAP_L1 = {
    "UniswapV3Factory": "0x1F98431c8aD98523631AE4a59f267346ea31F984",
    "NonfungiblePositionManager": "0xC36442b4a4522E871399CD717aBDD847Ab11FE88",
    "SwapRouter02": "0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45",
    "QuoterV2": "0x61fFE014bA17989E743c5F6cB21bF9697530B21e",
    "TickLens": "0xbfd8137f7d1516D3ea5cA83523914859ec47F573",
    "Multicall3": "0xcA11bde05977b3631167028862bE2a173976CA11",
}
# Safe v1.3.0 on zkSync Era: safe-deployments' "zksync" deployment (EraVM bytecode, so its own
# addresses), under the same keys as the v1.4.1 contracts above
_SAFE_130_ZKSYNC = {
    "Safe": "0xB00ce5CCcdEf57e539ddcEd01DF43a13855d9910",
    "SafeL2": "0x1727c2c531cf966f902E5927b98490fDFb3b2b70",
    "SafeProxyFactory": "0xDAec33641865E4651fB43181C6DB6f7232Ee91c2",
    "MultiSend": "0x0dFcccB95225ffB03c6FBB2559B530C2B7C8A912",
    "MultiSendCallOnly": "0xf220D3b4DFb23C4ade8C88E526C1353AbAcbC38F",
    "CompatibilityFallbackHandler": "0x2f870a80647BbC554F3a0EBD093f11B4d2a7492A",
    # safe-deployments src/assets/v1.3.0/simulate_tx_accessor.json, "zksync" (network 324)
    "SimulateTxAccessor": "0x4191E2e12E8BC5002424CE0c51f9947b02675a44",
}
ETHEREUM_CHAIN_ID = 1
# the private endpoint a swap-bearing transaction goes to by default (``chains.NAME.
# private_submission = "auto"``): Flashbots Protect never puts it in the public mempool, so it
# cannot be seen and sandwiched before it is mined (docs.flashbots.net, "Flashbots Protect")
DEFAULT_PRIVATE_RPC = {ETHEREUM_CHAIN_ID: "https://rpc.flashbots.net"}
# Arbitrum's ArbSys precompile: ``arbBlockNumber()`` is the Arbitrum block number, where Solidity's
# ``block.number`` is an estimate of the L1 block (Arbitrum docs, "Block numbers and time")
ARBSYS = "0x0000000000000000000000000000000000000064"
# what a chain lpbot does not know (the local devnet) is assumed to be: an Ethereum-like chain
# whose ``block.number`` is its own block number, reorg-free
_UNKNOWN_BLOCK_NUMBER_SOURCE = "evm"


@dataclass(frozen=True)
class TokenRef:
    symbol: str
    address: str
    decimals: int


@dataclass(frozen=True)
class ChainInfo:
    chain_id: int
    name: str
    contracts: dict[str, str]
    tokens: dict[str, TokenRef]
    pool_init_code_hash: str
    zksync_create2: bool = False
    block_time_s: float = 12.0
    confirmations: int = 2
    anvil_fork_supported: bool = True
    well_known_pools: tuple[tuple[str, str, int], ...] = field(default_factory=tuple)
    # the Safe version whose contracts ``contracts`` lists
    safe_version: str = "1.4.1"
    # how a transaction's cost is estimated (``lpbot.chain.gas.gas_model_for``):
    # "eip1559" | "arbitrum" (L2 + L1 data component) | "zksync" (zks_estimateFee)
    gas_model: str = "eip1559"
    # where the number of the block a read ran at comes from (``lpbot.chain.reader``):
    # "evm": Solidity ``block.number`` (Multicall3 ``getBlockNumber``) is the chain's block;
    # "arbsys": ``block.number`` is the L1 block, the chain's own is ArbSys ``arbBlockNumber()``;
    # "node": only the node's ``eth_getBlockByNumber`` is trusted (the read is pinned to it)
    block_number_source: str = "evm"
    # Chainlink USD price feeds (AggregatorV3Interface) by the token they mark
    # (data.chain.link: ETH / USD for WETH, BTC / USD for WBTC, USDC / USD)
    price_feeds: dict[str, str] = field(default_factory=dict)
    # each feed's heartbeat in seconds (data.chain.link): the longest it goes without an
    # update while the price stays within its deviation threshold, so a mark that old is not
    # stale (Ethereum's USDC / USD and every Arbitrum feed: 24 h)
    price_feed_heartbeats: dict[str, int] = field(default_factory=dict)
    # the USD stablecoins of the chain (USDC, USDT, DAI and their bridged forms), by address:
    # a pool against one of them is quoted in it (``lpbot.chain.book.AddressBook.is_stablecoin``)
    stablecoins: tuple[str, ...] = ()


CHAINS: dict[int, ChainInfo] = {
    1: ChainInfo(
        chain_id=1,
        name="ethereum",
        contracts={**_UNISWAP_L1, **_SAFE_141},
        tokens={
            "WETH": TokenRef("WETH", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", 18),
            "USDC": TokenRef("USDC", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6),
            "USDT": TokenRef("USDT", "0xdAC17F958D2ee523a2206206994597C13D831ec7", 6),
            "WBTC": TokenRef("WBTC", "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8),
        },
        pool_init_code_hash=EVM_POOL_INIT_CODE_HASH,
        block_time_s=12.0,
        confirmations=2,
        well_known_pools=(("USDC", "WETH", 500), ("USDC", "WETH", 3000), ("WBTC", "WETH", 3000)),
        price_feeds={
            "WETH": "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419",
            "WBTC": "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c",
            "USDC": "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6",
        },
        price_feed_heartbeats={"WETH": 3600, "WBTC": 3600, "USDC": 86400},
        stablecoins=(
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",  # USDC
            "0xdAC17F958D2ee523a2206206994597C13D831ec7",  # USDT
            "0x6B175474E89094C44Da98b954EedeAC495271d0F",  # DAI
        ),
    ),
    42161: ChainInfo(
        chain_id=42161,
        name="arbitrum",
        contracts={**_UNISWAP_L1, **_SAFE_141},
        tokens={
            "WETH": TokenRef("WETH", "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", 18),
            "USDC": TokenRef("USDC", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", 6),
            "USDT": TokenRef("USDT", "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9", 6),
            "WBTC": TokenRef("WBTC", "0x2f2a2543B76A4166549F7aaB2e75Bef0aefC5B0f", 8),
        },
        pool_init_code_hash=EVM_POOL_INIT_CODE_HASH,
        block_time_s=0.25,
        confirmations=1,
        well_known_pools=(("WETH", "USDC", 500), ("WBTC", "WETH", 500)),
        gas_model="arbitrum",
        block_number_source="arbsys",
        price_feeds={
            "WETH": "0x639Fe6ab55C921f74e7fac1ee960C0B6293ba612",
            "WBTC": "0x6ce185860a4963106506C203335A2910413708e9",
            "USDC": "0x50834F3163758fcC1Df9973b6e91f0F0F0434aD3",
        },
        price_feed_heartbeats={"WETH": 86400, "WBTC": 86400, "USDC": 86400},
        stablecoins=(
            "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",  # USDC (Circle's native)
            "0xFF970A61A04b1cA14834A43f5dE4533eBDDB5CC8",  # USDC.e (bridged)
            "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9",  # USDT
            "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1",  # DAI
        ),
    ),
    324: ChainInfo(
        chain_id=324,
        name="zksync",
        contracts={
            "UniswapV3Factory": "0x8FdA5a7a8dCA67BBcDd10F02Fa0649A937215422",
            "NonfungiblePositionManager": "0x0616e5762c1E7Dc3723c50663dF10a162D690a86",
            "SwapRouter02": "0x99c56385daBCE3E81d8499d0b8d0257aBC07E8A3",
            "QuoterV2": "0x8Cb537fc92E26d8EBBb760E632c95484b6Ea3e28",
            "TickLens": "0xe10FF11b809f8EE07b056B452c3B2caa7FE24f89",
            "Multicall3": "0xF9cda624FBC7e059355ce98a31693d299FACd963",
            **_SAFE_130_ZKSYNC,
        },
        tokens={
            "WETH": TokenRef("WETH", "0x5AEa5775959fBC2557Cc8789bC1bf90A239D9a91", 18),
            # Circle's native USDC; the bridged one is USDC.e
            "USDC": TokenRef("USDC", "0x1d17CBcF0D6D143135aE902365D2E5e2A16538D4", 6),
            "USDC.e": TokenRef("USDC.e", "0x3355df6D4c9C3035724Fd0e3914dE96A5a83aaf4", 6),
            "WBTC": TokenRef("WBTC", "0xBBeB516fb02a01611cBBE0453Fe3c580D7281011", 8),
        },
        pool_init_code_hash=ZKSYNC_POOL_BYTECODE_HASH,
        zksync_create2=True,
        block_time_s=1.0,
        confirmations=1,
        anvil_fork_supported=False,
        well_known_pools=(("USDC.e", "WETH", 3000),),
        safe_version="1.3.0",
        gas_model="zksync",
        # zkSync Era's ``block.number`` was the L1 batch number before its virtual-blocks
        # upgrade; the node's answer is right before and after
        block_number_source="node",
        stablecoins=(
            "0x1d17CBcF0D6D143135aE902365D2E5e2A16538D4",  # USDC (Circle's native)
            "0x3355df6D4c9C3035724Fd0e3914dE96A5a83aaf4",  # USDC.e (bridged)
        ),
    ),
}


def chain(chain_id: int) -> ChainInfo:
    try:
        return CHAINS[chain_id]
    except KeyError:
        known = ", ".join(f"{c.name} ({c.chain_id})" for c in CHAINS.values())
        raise ConfigError(f"chain id {chain_id} is not supported; known: {known}") from None


def block_number_source(chain_id: int) -> str:
    """``ChainInfo.block_number_source`` of ``chain_id``; "evm" for a chain not in the registry."""
    info = CHAINS.get(chain_id)
    return info.block_number_source if info is not None else _UNKNOWN_BLOCK_NUMBER_SOURCE


def confirmations(chain_id: int) -> int:
    """Blocks behind the head that a fetch stays (``ChainInfo.confirmations``); 0 for a chain
    not in the registry (the local devnet, which does not reorganise)."""
    info = CHAINS.get(chain_id)
    return info.confirmations if info is not None else 0


def default_contract(chain_id: int, name: str) -> str | None:
    """The registry's address of contract ``name`` on ``chain_id`` (None where it has none)."""
    info = CHAINS.get(chain_id)
    return None if info is None else info.contracts.get(name)
