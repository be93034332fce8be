"""Every address in the chain registry equals its published deployment, source cited beside it.

Sources (repository + path; the commit is the version read):
- UNI_ETH  Uniswap/docs docs/contracts/v3/reference/deployments/Ethereum-Deployments.md (0c8900b)
- UNI_ARB  Uniswap/docs docs/contracts/v3/reference/deployments/Arbitrum-Deployments.md (0a73c0a)
- UNI_ZK   Uniswap/docs docs/contracts/v3/reference/deployments/ZKsync-Deployments.md (0e9e607)
- SAFE141  safe-global/safe-deployments src/assets/v1.4.1/<file>.json, "canonical" (000c547);
           its networkAddresses list 1 and 42161, not 324
- SAFE130  safe-global/safe-deployments src/assets/v1.3.0/<file>.json, "zksync", which
           networkAddresses maps 324 to (0010f4e; simulate_tx_accessor.json at d0989c9)
- MC3      mds1/multicall deployments.json (7b5a5da): "zkSync Era", chainId 324, "address"
- SOR      Uniswap/smart-order-router src/providers/token-provider.ts (USDC_MAINNET,
           USDT_MAINNET, WBTC_MAINNET, WBTC_ARBITRUM, USDC_NATIVE_ARBITRUM, USDT_ARBITRUM,
           USDC_ZKSYNC, USDCE_ZKSYNC)
- SDK_ZK   Uniswap/sdks sdks/v3-sdk/src/utils/computePoolAddress.test.ts (4d1c918), "should
           correctly compute zkevm pool address": USDC.e, WETH, factory, bytecode hash, pool
- DERP_ZK  derpdex-official/token-list zksync.tokenlist.json: "Wrapped BTC", chainId 324
"""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address

from lpbot.chain.registry import (
    CHAINS,
    EVM_POOL_INIT_CODE_HASH,
    ZKSYNC_POOL_BYTECODE_HASH,
    chain,
)
from lpbot.errors import ConfigError
from lpbot.uniswap.pool_address import compute_pool_address

# Uniswap V3 on Ethereum and Arbitrum One: the same addresses in UNI_ETH and UNI_ARB
UNISWAP_ETH_ARB = {
    "UniswapV3Factory": "0x1F98431c8aD98523631AE4a59f267346ea31F984",  # UNI_ETH, UNI_ARB
    "NonfungiblePositionManager": "0xC36442b4a4522E871399CD717aBDD847Ab11FE88",  # UNI_ETH, UNI_ARB
    "SwapRouter02": "0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45",  # UNI_ETH, UNI_ARB
    "QuoterV2": "0x61fFE014bA17989E743c5F6cB21bF9697530B21e",  # UNI_ETH, UNI_ARB
    "TickLens": "0xbfd8137f7d1516D3ea5cA83523914859ec47F573",  # UNI_ETH, UNI_ARB
    # MC3: Mainnet (1) and Arbitrum (42161) at the deterministic address
    "Multicall3": "0xcA11bde05977b3631167028862bE2a173976CA11",
}
SAFE_141 = {
    "Safe": "0x41675C099F32341bf84BFc5382aF534df5C7461a",  # SAFE141 safe.json
    "SafeL2": "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762",  # SAFE141 safe_l2.json
    # SAFE141 safe_proxy_factory.json
    "SafeProxyFactory": "0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67",
    "MultiSend": "0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526",  # SAFE141 multi_send.json
    # SAFE141 multi_send_call_only.json
    "MultiSendCallOnly": "0x9641d764fc13c8B624c04430C7356C1C7C8102e2",
    # SAFE141 compatibility_fallback_handler.json
    "CompatibilityFallbackHandler": "0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99",
    # SAFE141 simulate_tx_accessor.json (d0989c9)
    "SimulateTxAccessor": "0x3d4BA2E0884aa488718476ca2FB8Efc291A46199",
}
ZKSYNC_CONTRACTS = {
    "UniswapV3Factory": "0x8FdA5a7a8dCA67BBcDd10F02Fa0649A937215422",  # UNI_ZK
    "NonfungiblePositionManager": "0x0616e5762c1E7Dc3723c50663dF10a162D690a86",  # UNI_ZK
    "SwapRouter02": "0x99c56385daBCE3E81d8499d0b8d0257aBC07E8A3",  # UNI_ZK
    "QuoterV2": "0x8Cb537fc92E26d8EBBb760E632c95484b6Ea3e28",  # UNI_ZK
    "TickLens": "0xe10FF11b809f8EE07b056B452c3B2caa7FE24f89",  # UNI_ZK
    "Multicall3": "0xF9cda624FBC7e059355ce98a31693d299FACd963",  # MC3
    "Safe": "0xB00ce5CCcdEf57e539ddcEd01DF43a13855d9910",  # SAFE130 gnosis_safe.json
    "SafeL2": "0x1727c2c531cf966f902E5927b98490fDFb3b2b70",  # SAFE130 gnosis_safe_l2.json
    "SafeProxyFactory": "0xDAec33641865E4651fB43181C6DB6f7232Ee91c2",  # SAFE130 proxy_factory.json
    "MultiSend": "0x0dFcccB95225ffB03c6FBB2559B530C2B7C8A912",  # SAFE130 multi_send.json
    # SAFE130 multi_send_call_only.json
    "MultiSendCallOnly": "0xf220D3b4DFb23C4ade8C88E526C1353AbAcbC38F",
    # SAFE130 compatibility_fallback_handler.json
    "CompatibilityFallbackHandler": "0x2f870a80647BbC554F3a0EBD093f11B4d2a7492A",
    # SAFE130 simulate_tx_accessor.json
    "SimulateTxAccessor": "0x4191E2e12E8BC5002424CE0c51f9947b02675a44",
}

EXPECTED_CONTRACTS = {
    1: {**UNISWAP_ETH_ARB, **SAFE_141},
    42161: {**UNISWAP_ETH_ARB, **SAFE_141},
    324: ZKSYNC_CONTRACTS,
}
EXPECTED_TOKENS = {
    1: {
        "WETH": ("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", 18),  # UNI_ETH wrapped native token
        "USDC": ("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6),  # SOR USDC_MAINNET
        "USDT": ("0xdAC17F958D2ee523a2206206994597C13D831ec7", 6),  # SOR USDT_MAINNET
        "WBTC": ("0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8),  # SOR WBTC_MAINNET
    },
    42161: {
        "WETH": ("0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", 18),  # UNI_ARB wrapped native token
        "USDC": ("0xaf88d065e77c8cC2239327C5EDb3A432268e5831", 6),  # SOR USDC_NATIVE_ARBITRUM
        "USDT": ("0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9", 6),  # SOR USDT_ARBITRUM
        "WBTC": ("0x2f2a2543B76A4166549F7aaB2e75Bef0aefC5B0f", 8),  # SOR WBTC_ARBITRUM
    },
    324: {
        "WETH": ("0x5AEa5775959fBC2557Cc8789bC1bf90A239D9a91", 18),  # UNI_ZK wrapped native, SDK_ZK
        "USDC": ("0x1d17CBcF0D6D143135aE902365D2E5e2A16538D4", 6),  # SOR USDC_ZKSYNC (Circle)
        "USDC.e": ("0x3355df6D4c9C3035724Fd0e3914dE96A5a83aaf4", 6),  # SOR USDCE_ZKSYNC, SDK_ZK
        "WBTC": ("0xBBeB516fb02a01611cBBE0453Fe3c580D7281011", 8),  # DERP_ZK
    },
}

# Live pools the registry's factory + init code hash must reproduce: (chain, a, b, fee, pool)
LIVE_POOLS = [
    # UNI_ETH's example "ETH/USDC 0.3% pool"
    (1, "USDC", "WETH", 3000, "0x8ad599c3A0ff1De082011EFDDc58f1908eb6e6D8"),
    # Ethereum's most traded V3 pool, USDC/WETH 0.05%
    (1, "USDC", "WETH", 500, "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"),
    # Arbitrum One's WETH/USDC 0.05% (native USDC)
    (42161, "WETH", "USDC", 500, "0xC6962004f452bE9203591991D15f6b388e09E8D0"),
    # SDK_ZK: USDC.e/WETH 0.3% on zkSync Era
    (324, "USDC.e", "WETH", 3000, "0xff577f0E828a878743Ecc5E2632cbf65ceCf17cF"),
]


def test_the_registry_covers_exactly_three_chains() -> None:
    assert sorted(CHAINS) == [1, 324, 42161]
    for chain_id, info in CHAINS.items():
        assert info.chain_id == chain_id
        assert chain(chain_id) is info


@pytest.mark.parametrize("chain_id", sorted(EXPECTED_CONTRACTS))
def test_contract_addresses_are_the_published_ones(chain_id: int) -> None:
    assert CHAINS[chain_id].contracts == EXPECTED_CONTRACTS[chain_id]


@pytest.mark.parametrize("chain_id", sorted(EXPECTED_TOKENS))
def test_token_addresses_are_the_published_ones(chain_id: int) -> None:
    tokens = CHAINS[chain_id].tokens
    assert {s: (t.address, t.decimals) for s, t in tokens.items()} == EXPECTED_TOKENS[chain_id]
    assert all(t.symbol == s for s, t in tokens.items())


def test_every_address_is_checksummed() -> None:
    for info in CHAINS.values():
        addresses = [*info.contracts.values(), *(t.address for t in info.tokens.values())]
        for address in addresses:
            assert address == to_checksum_address(address), f"{info.name}: {address}"


def test_every_chain_names_the_same_contracts() -> None:
    keys = {frozenset(info.contracts) for info in CHAINS.values()}
    assert len(keys) == 1


def test_pool_hashes() -> None:
    # Uniswap/v3-periphery contracts/libraries/PoolAddress.sol POOL_INIT_CODE_HASH
    assert EVM_POOL_INIT_CODE_HASH == (
        "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
    )
    # SDK_ZK, the bytecode hash passed to computeZksyncCreate2Address
    assert ZKSYNC_POOL_BYTECODE_HASH == (
        "0x010013f177ea1fcbc4520f9a3ca7cd2d1d77959e05aa66484027cb38e712aeed"
    )
    assert CHAINS[1].pool_init_code_hash == EVM_POOL_INIT_CODE_HASH
    assert CHAINS[42161].pool_init_code_hash == EVM_POOL_INIT_CODE_HASH
    assert CHAINS[324].pool_init_code_hash == ZKSYNC_POOL_BYTECODE_HASH
    assert [c for c, info in CHAINS.items() if info.zksync_create2] == [324]


@pytest.mark.parametrize(("chain_id", "a", "b", "fee", "pool"), LIVE_POOLS)
def test_registry_reproduces_live_pools(chain_id: int, a: str, b: str, fee: int, pool: str) -> None:
    info = CHAINS[chain_id]
    ta, tb = info.tokens[a].address, info.tokens[b].address
    factory = info.contracts["UniswapV3Factory"]
    zk = info.zksync_create2
    for x, y in ((ta, tb), (tb, ta)):
        assert compute_pool_address(factory, x, y, fee, info.pool_init_code_hash, zksync=zk) == pool


def test_well_known_pools_are_registry_tokens() -> None:
    for info in CHAINS.values():
        for a, b, fee in info.well_known_pools:
            assert a in info.tokens and b in info.tokens and a != b
            assert fee in (100, 500, 3000, 10000)
    # zkSync Era's is the live pool above
    assert CHAINS[324].well_known_pools == (("USDC.e", "WETH", 3000),)


def test_safe_versions_and_gas_models() -> None:
    assert {c: i.safe_version for c, i in CHAINS.items()} == {
        1: "1.4.1",
        42161: "1.4.1",
        324: "1.3.0",  # SAFE130: safe-deployments has no v1.4.1 on 324
    }
    assert {c: i.gas_model for c, i in CHAINS.items()} == {
        1: "eip1559",
        42161: "arbitrum",
        324: "zksync",
    }


def test_unknown_chain_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        chain(10)
