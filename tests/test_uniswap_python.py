"""uniswap-python 0.7.1 on the devnet, cross-checked against lpbot's exact core and QuoterV2.

uniswap-python is the Python client many bots start from; here it is pointed at the devnet and
used for what it can do there: token metadata, pool lookup and state, quotes through a Quoter,
and a concentrated-liquidity mint through the NonfungiblePositionManager. Every number it returns
must equal what ``lpbot.uniswap`` computes from the pool's on-chain state, and what the devnet's
QuoterV2 returns, exactly.

What uniswap-python 0.7.1 cannot do here, and how the tests work around it:

* It knows only the chain ids in its ``_netid_to_name`` table; Anvil's 31337 is not there, so the
  constructor raises "Unknown netid" unless the id is added to that table first.
* With ``version=3`` it ignores ``factory_contract_addr`` and ``router_contract_addr`` and
  hardcodes the mainnet factory, Quoter, SwapRouter, position manager and Multicall2 addresses; the
  tests replace those contract attributes after construction.
* It speaks only the first Quoter's ABI (``quoteExactInputSingle(tokenIn, tokenOut, fee, amountIn,
  sqrtPriceLimitX96)``); the devnet deploys QuoterV2, whose functions take a struct, so its quotes
  revert there (``test_uniswap_python_cannot_use_quoter_v2``). The tests deploy the official
  v3-periphery ``Quoter`` artifact for it. It always passes ``sqrtPriceLimitX96 = 0`` and
  refuses multi-hop routes on V3 ("custom route not yet supported for v3").
* Its swaps (``make_trade``) encode SwapRouter (V1) structs with a ``deadline`` field, which
  SwapRouter02 does not have, and sign with a private key; they are not used here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from uniswap import Uniswap
from uniswap.constants import _netid_to_name
from uniswap.util import _load_contract, _str_to_addr
from web3 import Web3
from web3.contract.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from lpbot.chain import artifacts
from lpbot.devnet.deploy import TOKENS
from lpbot.devnet.manifest import PoolInfo
from lpbot.uniswap import MAX_TICK, MIN_TICK, Pool, Slot0
from lpbot.uniswap.liquidity_amounts import get_liquidity_for_amounts
from lpbot.uniswap.tick import TickInfo, tick_spacing_to_max_liquidity_per_tick
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

QUOTER_V1 = "node_modules/@uniswap/v3-periphery/artifacts/contracts/lens/Quoter.sol/Quoter.json"
TOKEN_NAMES = {symbol: name for symbol, name, _ in TOKENS} | {"WETH": "Wrapped Ether"}


def addr(address: str) -> ChecksumAddress:
    return to_checksum_address(address)


def contract(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=artifacts.abi(name))


def deploy_quoter_v1(chain: Devnet) -> str:
    """The official v3-periphery Quoter (the one uniswap-python's ABI matches)."""
    data = json.loads((artifacts.project_root() / QUOTER_V1).read_text())
    m = chain.manifest
    factory = chain.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    tx = factory.constructor(m.contracts["UniswapV3Factory"], m.contracts["WETH9"]).transact(
        {"from": m.accounts.deployer}
    )
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    return str(receipt["contractAddress"])


def connect_uniswap_python(
    chain: Devnet, monkeypatch: pytest.MonkeyPatch, address: str | None, quoter: str | None
) -> Uniswap:
    """A ``Uniswap(version=3)`` client whose contracts are the devnet's."""
    m, w3 = chain.manifest, chain.w3
    monkeypatch.setitem(_netid_to_name, m.chain_id, "devnet")
    uni = Uniswap(address=address, private_key=None, web3=w3, version=3)
    uni.factory_contract = _load_contract(w3, "uniswap-v3/factory", m.contracts["UniswapV3Factory"])
    if quoter is not None:
        uni.quoter = _load_contract(w3, "uniswap-v3/quoter", quoter)
    uni.positionManager_addr = _str_to_addr(m.contracts["NonfungiblePositionManager"])
    uni.nonFungiblePositionManager = _load_contract(
        w3, "uniswap-v3/nonFungiblePositionManager", m.contracts["NonfungiblePositionManager"]
    )
    return uni


@pytest.fixture
def uni(chain: Devnet, monkeypatch: pytest.MonkeyPatch) -> Iterator[Uniswap]:
    yield connect_uniswap_python(chain, monkeypatch, None, deploy_quoter_v1(chain))


# ----------------------------------------------------------------------- lpbot's side, exact


def fetch_pool(w3: Web3, multicall_address: str, info: PoolInfo) -> Pool:
    """A ``Pool`` from the chain: slot0, liquidity, fee growth and every initialized tick.

    All tickBitmap words in one Multicall3 call, then ticks(t) for each set bit in another.
    """
    pool = contract(w3, "UniswapV3Pool", info.address)
    multicall = contract(w3, "Multicall3", multicall_address)
    spacing = info.tick_spacing

    def aggregate(calls: list[tuple[str, list[Any]]], outputs: list[str]) -> list[Any]:
        encoded = [(pool.address, False, pool.encode_abi(fn_name=f, args=a)) for f, a in calls]
        results = multicall.functions.aggregate3(encoded).call()
        return [w3.codec.decode(outputs, data) for _ok, data in results]

    words = range((MIN_TICK // spacing) >> 8, ((MAX_TICK // spacing) >> 8) + 1)
    bitmaps = aggregate([("tickBitmap", [w]) for w in words], ["uint256"])
    ticks: list[int] = []
    for w, (bits,) in zip(words, bitmaps, strict=True):
        ticks += [(w * 256 + b) * spacing for b in range(256) if bits >> b & 1]
    infos = aggregate(
        [("ticks", [t]) for t in ticks],
        ["uint128", "int128", "uint256", "uint256", "int56", "uint160", "uint32", "bool"],
    )
    f = pool.functions
    timestamp = w3.eth.get_block("latest")["timestamp"]
    return Pool.from_state(
        fee=info.fee,
        tick_spacing=spacing,
        slot0=Slot0(*f.slot0().call()),
        liquidity=f.liquidity().call(),
        fee_growth_global0_x128=f.feeGrowthGlobal0X128().call(),
        fee_growth_global1_x128=f.feeGrowthGlobal1X128().call(),
        ticks={t: TickInfo(*i) for t, i in zip(ticks, infos, strict=True)},
        block_timestamp=timestamp,
    )


def lpbot_quote(
    pool: Pool, zero_for_one: bool, amount: int, exact_in: bool
) -> tuple[int, int, int]:
    """(the other side's amount, sqrt price after, initialized ticks crossed) of a full fill."""
    limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    r = pool.quote_swap(zero_for_one, amount if exact_in else -amount, limit)
    paid, received = (r.amount0, -r.amount1) if zero_for_one else (r.amount1, -r.amount0)
    assert (paid if exact_in else received) == amount, "the pool cannot fill this amount"
    return (received if exact_in else paid), r.sqrt_price_x96, r.ticks_crossed


def quote_amounts(w3: Web3, info: PoolInfo, token: str, decimals: int, exact_in: bool) -> list[int]:
    """One unit of ``token`` up to 90% of the pool's balance of it (exact out) or five times that
    balance (exact in): the larger amounts cross several initialized ticks."""
    balance = contract(w3, "TestERC20", token).functions.balanceOf(info.address).call()
    large = balance * 5 if exact_in else balance * 9 // 10
    return [1, 10**decimals, balance // 1000, balance // 10, large]


# ------------------------------------------------------------------------------------ tests


def test_token_metadata(uni: Uniswap, chain: Devnet) -> None:
    """get_token reads name, symbol and decimals as the manifest and the deploy script state."""
    for symbol, info in chain.manifest.tokens.items():
        token = uni.get_token(addr(info.address))
        assert (token.symbol, token.name, token.decimals) == (
            symbol,
            TOKEN_NAMES[symbol],
            info.decimals,
        )


@pytest.mark.parametrize("index", range(4))
def test_pool_lookup_and_state(uni: Uniswap, chain: Devnet, index: int) -> None:
    """get_pool_instance, get_pool_immutables and get_pool_state agree with the manifest and
    with lpbot's Pool read from the chain."""
    m = chain.manifest
    info = m.pools[index]
    t0, t1 = addr(m.tokens[info.token0].address), addr(m.tokens[info.token1].address)
    pool = uni.get_pool_instance(t0, t1, info.fee)
    assert pool.address == info.address
    assert uni.get_pool_immutables(pool) == {
        "factory": m.contracts["UniswapV3Factory"],
        "token0": t0,
        "token1": t1,
        "fee": info.fee,
        "tickSpacing": info.tick_spacing,
        "maxLiquidityPerTick": tick_spacing_to_max_liquidity_per_tick(info.tick_spacing),
    }
    ours = fetch_pool(chain.w3, m.contracts["Multicall3"], info)
    s = ours.slot0
    assert uni.get_pool_state(pool) == {
        "liquidity": ours.liquidity,
        "sqrtPriceX96": s.sqrt_price_x96,
        "tick": s.tick,
        "observationIndex": s.observation_index,
        "observationCardinality": s.observation_cardinality,
        "observationCardinalityNext": s.observation_cardinality_next,
        "feeProtocol": s.fee_protocol,
        "unlocked": s.unlocked,
    }


@pytest.mark.parametrize("index", range(4))
def test_quotes_match_lpbot_and_quoter_v2(uni: Uniswap, chain: Devnet, index: int) -> None:
    """Exact in and exact out, both directions, from one unit to a multiple of the pool's balance:
    uniswap-python's get_price_input/get_price_output (Quoter), QuoterV2 and lpbot's
    ``Pool.quote_swap`` on the pool read from the chain give the same amounts, and QuoterV2 and
    lpbot the same price after the swap.

    QuoterV2's ``initializedTicksCrossed`` is not compared: PoolTicksCounter estimates gas by
    counting the bitmap bits between the start and end ticks, including the initialized tick at
    the bottom of the end tick's spacing when the price stops above it (not crossed); lpbot counts
    the ticks the swap loop actually crosses."""
    m, w3 = chain.manifest, chain.w3
    info = m.pools[index]
    tokens = (m.tokens[info.token0], m.tokens[info.token1])
    quoter_v2 = contract(w3, "QuoterV2", m.contracts["QuoterV2"])
    pool = fetch_pool(w3, m.contracts["Multicall3"], info)
    crossed = 0
    for zero_for_one in (True, False):
        token_in, token_out = tokens if zero_for_one else tokens[::-1]
        for exact_in in (True, False):
            specified = token_in if exact_in else token_out
            for amount in quote_amounts(w3, info, specified.address, specified.decimals, exact_in):
                ours, sqrt_after, ticks_crossed = lpbot_quote(pool, zero_for_one, amount, exact_in)
                params = (token_in.address, token_out.address, amount, info.fee, 0)
                if exact_in:
                    theirs = uni.get_price_input(
                        addr(token_in.address), addr(token_out.address), amount, fee=info.fee
                    )
                    v2 = quoter_v2.functions.quoteExactInputSingle(params).call()
                else:
                    theirs = uni.get_price_output(
                        addr(token_in.address), addr(token_out.address), amount, fee=info.fee
                    )
                    v2 = quoter_v2.functions.quoteExactOutputSingle(params).call()
                case = f"{info.name} {'0->1' if zero_for_one else '1->0'} exact "
                case += f"{'in' if exact_in else 'out'} {amount}"
                assert (theirs, v2[0], v2[1]) == (ours, ours, sqrt_after), case
                crossed = max(crossed, ticks_crossed)
    assert crossed > 0, "no quote crossed an initialized tick"


def test_uniswap_python_cannot_use_quoter_v2(
    chain: Devnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pointed at QuoterV2, uniswap-python's Quoter (V1) calls hit no function and revert."""
    m = chain.manifest
    uni = connect_uniswap_python(chain, monkeypatch, None, m.contracts["QuoterV2"])
    info = m.pools[0]
    t0, t1 = addr(m.tokens[info.token0].address), addr(m.tokens[info.token1].address)
    with pytest.raises(ContractLogicError):
        uni.get_price_input(t0, t1, 10**6, fee=info.fee)


@pytest.mark.parametrize("index", range(4))
def test_mint_liquidity_matches_lpbot(
    chain: Devnet, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    """uniswap-python's mint_liquidity (NonfungiblePositionManager.mint over any tick range)
    mints the liquidity LiquidityAmounts gives for the amounts, and pays what Pool.mint says."""
    m, w3 = chain.manifest, chain.w3
    info = m.pools[index]
    lp = m.accounts.lps[0]
    uni = connect_uniswap_python(chain, monkeypatch, lp, None)
    model = fetch_pool(w3, m.contracts["Multicall3"], info)
    spacing = info.tick_spacing
    lower = (model.tick // spacing - 7) * spacing
    upper = (model.tick // spacing + 12) * spacing
    decimals = (m.tokens[info.token0].decimals, m.tokens[info.token1].decimals)
    amount0, amount1 = 3 * 10 ** decimals[0], 5 * 10 ** decimals[1]

    receipt = uni.mint_liquidity(
        uni.get_pool_instance(
            addr(m.tokens[info.token0].address), addr(m.tokens[info.token1].address), info.fee
        ),
        amount0,
        amount1,
        lower,
        upper,
    )

    npm = contract(w3, "NonfungiblePositionManager", m.contracts["NonfungiblePositionManager"])
    (event,) = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    token_id = event["args"]["tokenId"]
    assert token_id in uni.get_liquidity_positions()
    liquidity = get_liquidity_for_amounts(
        model.sqrt_price_x96,
        get_sqrt_ratio_at_tick(lower),
        get_sqrt_ratio_at_tick(upper),
        amount0,
        amount1,
    )
    position = uni.nonFungiblePositionManager.functions.positions(token_id).call()
    assert (position[5], position[6], position[7]) == (lower, upper, liquidity)
    paid = model.mint(m.contracts["NonfungiblePositionManager"], lower, upper, liquidity)
    assert (event["args"]["liquidity"], event["args"]["amount0"], event["args"]["amount1"]) == (
        liquidity,
        *paid,
    )
