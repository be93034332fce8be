"""Devnets shaped like Ethereum and Arbitrum One: every address of the chain registry holds the
official contract it names, constructed as on the real chain.

A contract's code on the devnet must equal its artifact's runtime code except in the immutable
words (the artifact holds zeros there: each is a ``PUSH32`` of 32 zero bytes), and those words
must be exactly the values the real deployment was constructed with (its factory, WETH, its own
address, ...). The Safe contracts' code hashes are also the ones safe-deployments publishes for
the real chains (src/assets/v1.4.1/<file>.json, "canonical" ``codeHash``, commit d0989c9).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.chain import artifacts
from lpbot.chain.artifacts import project_root
from lpbot.chain.gas import ArbitrumGasModel, fetch_arbitrum_l1_component, gas_model_for
from lpbot.chain.registry import ARBSYS, CHAINS, EVM_POOL_INIT_CODE_HASH
from lpbot.chain.rpc import connect
from lpbot.devnet import service, shapes
from lpbot.devnet.deploy import contract
from lpbot.errors import ConfigError, Refused
from lpbot.uniswap.pool_address import compute_pool_address
from tests.conftest import Devnet, shaped_devnet

pytestmark = pytest.mark.devnet

# safe-deployments v1.4.1 "canonical" codeHash of each contract (the real chains' code)
SAFE_141_CODE_HASHES = {
    "Safe": "0x1fe2df852ba3299d6534ef416eefa406e56ced995bca886ab7a553e6d0c5e1c4",
    "SafeL2": "0xb1f926978a0f44a2c0ec8fe822418ae969bd8c3f18d61e5103100339894f81ff",
    "SafeProxyFactory": "0x50c3cdc4074750a7a974204a716c999edd37482f907608d960b2b025ee0b3317",
    "MultiSend": "0x0e4f7fc66550a322d1e7688e181b75e217e662a4f3f4d6a29b22bc61217c4b77",
    "MultiSendCallOnly": "0xecd5bd14a08c5d2122379900b2f272bdf107a7e92423c10dd5fe3254386c9939",
    "CompatibilityFallbackHandler": (
        "0x7c6007a5d711cea8dfd5d91f5940ec29c7f200fe511eb1fc1397b367af3c42f9"
    ),
    "SimulateTxAccessor": "0x91f82615581fc73b190b83d72e883608b25e392f72322035df1b13d51766cf8d",
}


@pytest.fixture(scope="module", params=sorted(shapes.SHAPES))
def shaped(request: pytest.FixtureRequest) -> Iterator[Devnet]:
    with shaped_devnet(request.param) as devnet:
        yield devnet


def immutable_words(runtime: bytes, code: bytes) -> list[bytes]:
    """The words ``code`` holds where ``runtime`` (an artifact) has an immutable's placeholder
    (``PUSH32`` of zeros); fails where the two differ anywhere else."""
    assert len(code) == len(runtime), "code length differs from the artifact's"
    expected = bytearray(runtime)
    words: list[bytes] = []
    i = 0
    while i < len(runtime):
        op = runtime[i]
        if 0x60 <= op <= 0x7F:  # PUSH1..PUSH32
            n = op - 0x5F
            if op == 0x7F and runtime[i + 1 : i + 33] == bytes(32):
                word = code[i + 1 : i + 33]
                expected[i + 1 : i + 33] = word
                words.append(word)
            i += n
        i += 1
    assert bytes(expected) == code, "code differs from the artifact outside the immutables"
    return words


def word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


def expected_immutables(chain_id: int, name: str, address: str) -> set[bytes]:
    """The non-zero immutables the real deployment of ``name`` holds."""
    info = CHAINS[chain_id]
    c, weth = info.contracts, info.tokens["WETH"].address
    v2 = shapes.UNISWAP_V2_FACTORY[chain_id]
    descriptor = shapes.create_address(shapes.UNISWAP_DEPLOYER, 7)
    permit = {keccak(b"Uniswap V3 Positions NFT-V1"), keccak(b"1")}  # ERC721Permit name/version
    words: dict[str, set[bytes]] = {
        # NoDelegateCall's ``original``: the factory's own address
        "UniswapV3Factory": {word(address)},
        "NonfungiblePositionManager": {
            word(c["UniswapV3Factory"]),
            word(weth),
            word(descriptor),
            *permit,
        },
        "SwapRouter02": {
            word(c["UniswapV3Factory"]),
            word(c["NonfungiblePositionManager"]),
            word(weth),
            *({word(v2)} if int(v2, 16) else set()),
        },
        "QuoterV2": {word(c["UniswapV3Factory"]), word(weth)},
        # their own address, to refuse a DELEGATECALL / a direct call
        "MultiSend": {word(address)},
        "SimulateTxAccessor": {word(address)},
    }
    return words.get(name, set())


def runtime(name: str) -> bytes:
    return bytes.fromhex(artifacts.load(name).deployed_bytecode.removeprefix("0x"))


def nonzero(words: list[bytes]) -> set[bytes]:
    return {w for w in words if any(w)}


def test_every_registry_contract_is_the_official_one_constructed_as_on_the_real_chain(
    shaped: Devnet,
) -> None:
    chain_id = shaped.manifest.chain_id
    info = CHAINS[chain_id]
    assert set(info.contracts) == {
        "UniswapV3Factory",
        "NonfungiblePositionManager",
        "SwapRouter02",
        "QuoterV2",
        "TickLens",
        "Multicall3",
        *SAFE_141_CODE_HASHES,
    }
    for name, address in info.contracts.items():
        code = bytes(shaped.w3.eth.get_code(address))
        assert code, f"{name}: no code at {address}"
        words = immutable_words(runtime(name), code)
        assert nonzero(words) == expected_immutables(chain_id, name, address), name


def test_safe_contracts_have_the_real_chains_code_hashes(shaped: Devnet) -> None:
    info = CHAINS[shaped.manifest.chain_id]
    for name, code_hash in SAFE_141_CODE_HASHES.items():
        code = bytes(shaped.w3.eth.get_code(info.contracts[name]))
        assert "0x" + keccak(code).hex() == code_hash, name


def test_tokens_are_at_their_real_addresses_with_their_real_metadata(shaped: Devnet) -> None:
    w3 = shaped.w3
    info = CHAINS[shaped.manifest.chain_id]
    assert {s: t.address for s, t in shaped.manifest.tokens.items()} == {
        s: t.address for s, t in info.tokens.items()
    }
    assert set(info.tokens) == {"WETH", "USDC", "USDT", "WBTC"}
    for symbol, ref in info.tokens.items():
        erc20 = contract(w3, "TestERC20", ref.address)
        assert erc20.functions.symbol().call() == symbol
        assert erc20.functions.decimals().call() == ref.decimals
        code = bytes(w3.eth.get_code(ref.address))
        if symbol == "WETH":  # WETH9 itself: no immutables, name and symbol in storage
            assert code == runtime("WETH9")
            assert erc20.functions.name().call() == "Wrapped Ether"
        else:  # decimals is TestERC20's one immutable
            assert nonzero(immutable_words(runtime("TestERC20"), code)) == {
                ref.decimals.to_bytes(32, "big")
            }
            assert erc20.functions.name().call() == shapes.TOKEN_NAMES[symbol]
        # the devnet's accounts hold it: the market and the bot can trade it
        assert erc20.functions.balanceOf(shaped.manifest.accounts.bot).call() > 0


def test_pools_come_from_the_real_factory_and_init_code_hash(shaped: Devnet) -> None:
    w3, manifest = shaped.w3, shaped.manifest
    info = CHAINS[manifest.chain_id]
    factory = contract(w3, "UniswapV3Factory", info.contracts["UniswapV3Factory"])
    assert artifacts.load("UniswapV3Pool").init_code_hash == EVM_POOL_INIT_CODE_HASH
    for p in manifest.pools:
        t0, t1 = manifest.token(p.token0).address, manifest.token(p.token1).address
        address = compute_pool_address(factory.address, t0, t1, p.fee, EVM_POOL_INIT_CODE_HASH)
        assert p.address == address == factory.functions.getPool(t0, t1, p.fee).call()
        assert contract(w3, "UniswapV3Pool", p.address).functions.liquidity().call() > 0
    # every well-known pool of the registry is seeded, at the live pool's address
    names = {(frozenset((p.token0, p.token1)), p.fee) for p in manifest.pools}
    for a, b, fee in info.well_known_pools:
        assert (frozenset((a, b)), fee) in names
    live = {
        1: "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640",  # USDC/WETH 0.05% on Ethereum
        42161: "0xC6962004f452bE9203591991D15f6b388e09E8D0",  # WETH/USDC 0.05% on Arbitrum One
    }[manifest.chain_id]
    assert manifest.pool("USDC/WETH 0.05%" if manifest.chain_id == 1 else live).address == live


def test_price_feeds_are_at_the_registry_addresses_and_answer_the_market(
    shaped: Devnet,
) -> None:
    w3, manifest = shaped.w3, shaped.manifest
    info = CHAINS[manifest.chain_id]
    assert manifest.price_feeds == info.price_feeds
    for symbol, address in info.price_feeds.items():
        feed = contract(w3, "PriceFeed", address)
        assert feed.functions.description().call() == shapes.FEED_DESCRIPTIONS[symbol]
        assert feed.functions.decimals().call() == 8
        words = nonzero(immutable_words(runtime("PriceFeed"), bytes(w3.eth.get_code(address))))
        assert words == {(8).to_bytes(32, "big"), word(manifest.accounts.deployer)}
        answer = feed.functions.latestRoundData().call()[1]
        expected = {"WETH": 3000, "WBTC": 90000, "USDC": 1}[symbol] * 10**8
        assert abs(answer - expected) <= expected // 100, symbol  # within 1% of the market


def test_the_safe_and_its_position(shaped: Devnet) -> None:
    """The usual devnet Safe, made through the canonical proxy factory and singleton."""
    w3, manifest = shaped.w3, shaped.manifest
    info = CHAINS[manifest.chain_id]
    assert manifest.safe is not None and manifest.safe_position is not None
    safe = contract(w3, "SafeL2", manifest.safe)
    assert safe.functions.getThreshold().call() == 2
    assert safe.functions.getOwners().call() == manifest.accounts.safe_owners
    singleton = bytes(w3.eth.get_storage_at(manifest.safe, 0))[12:]
    assert to_checksum_address(singleton) == info.contracts["SafeL2"]
    assert safe.functions.isModuleEnabled(manifest.contracts["LPRebalanceModule"]).call()
    npm = contract(w3, "NonfungiblePositionManager", info.contracts["NonfungiblePositionManager"])
    assert npm.functions.ownerOf(manifest.safe_position).call() == manifest.safe
    # the token descriptor NonfungiblePositionManager was constructed with answers tokenURI
    uri = npm.functions.tokenURI(manifest.safe_position).call()
    assert uri.startswith("data:application/json;base64,")


def test_arbitrum_node_interface_and_arbsys_stand_ins(shaped: Devnet) -> None:
    w3 = shaped.w3
    if shaped.manifest.chain_id != 42161:
        for address in (shapes.NODE_INTERFACE, ARBSYS):
            assert w3.eth.get_code(Web3.to_checksum_address(address)) == b""
        return
    arbsys = w3.eth.contract(address=Web3.to_checksum_address(ARBSYS), abi=ARBSYS_ABI)
    assert arbsys.functions.arbBlockNumber().call() == w3.eth.block_number
    weth = contract(w3, "WETH9", shaped.manifest.token("WETH").address)
    bot, owner = shaped.manifest.accounts.bot, shaped.manifest.accounts.safe_owners[0]
    data = bytes.fromhex(weth.encode_abi(fn_name="transfer", args=[owner, 10**18])[2:])
    tx: dict[str, object] = {"from": bot, "to": weth.address, "data": data}
    component = fetch_arbitrum_l1_component(w3, tx)  # type: ignore[arg-type]
    assert component is not None
    # 16 gas per byte of (calldata + 140 bytes) at 10 gwei, in L2 gas at the L2 base fee
    l1_cost = (len(data) + 140) * 16 * shapes.ARBITRUM_L1_BASE_FEE_WEI
    assert component.l1_base_fee_estimate == shapes.ARBITRUM_L1_BASE_FEE_WEI
    assert component.base_fee > 0
    assert component.gas_estimate_for_l1 == l1_cost // component.base_fee
    model = gas_model_for(42161)
    assert isinstance(model, ArbitrumGasModel)
    cost = model.fetch_cost(w3, tx)  # type: ignore[arg-type]
    assert cost.l1_fee_wei > 0 and cost.total_wei == cost.l2_fee_wei + cost.l1_fee_wei


ARBSYS_ABI = [
    {
        "name": "arbBlockNumber",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


def test_the_cli_offers_every_shape() -> None:
    from lpbot.cli.devnet import SHAPE_NAMES

    assert sorted(SHAPE_NAMES) == sorted(shapes.SHAPES)
    for name, chain_id in shapes.SHAPES.items():
        assert CHAINS[chain_id].name == name


def test_up_down_and_reset_keep_the_shape(tmp_path: Path, shaped: Devnet) -> None:
    """`lpbot devnet up --shape`: the chain id and addresses of that chain; `down` saves it and
    the next `up` of that shape loads it; another shape is refused; `reset` keeps the shape."""
    shape = shaped.manifest.shape
    assert shape is not None
    # the seeded state the test devnet cached (no second deployment)
    for src, dst in zip(
        service._cache_paths(project_root() / ".lpbot" / "test-devnet", shape),
        service._cache_paths(tmp_path, shape),
        strict=True,
    ):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    other = next(s for s in shapes.SHAPES if s != shape)
    record, manifest, _seconds = service.up(tmp_path, shape=shape)
    try:
        assert (record.shape, manifest.shape) == (shape, shape)
        assert connect(record.rpc_url).eth.chain_id == shapes.SHAPES[shape]
        assert (
            manifest.contracts["UniswapV3Factory"] == shaped.manifest.contracts["UniswapV3Factory"]
        )
        assert service.down(tmp_path) is True
        for wrong in (None, other):
            with pytest.raises(Refused):
                service.up(tmp_path, shape=wrong)
        record, manifest, _seconds = service.up(tmp_path, shape=shape)
        assert record.shape == shape
        record, manifest, _seconds = service.reset(tmp_path)
        assert (record.shape, manifest.chain_id) == (shape, shapes.SHAPES[shape])
    finally:
        service.down(tmp_path)
    with pytest.raises(ConfigError):
        service.up(tmp_path / "other", shape="zksync")
    with pytest.raises(Refused):
        service.up(tmp_path / "other", shape=shape, fork_url="http://127.0.0.1:1")
