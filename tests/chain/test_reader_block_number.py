"""The block a pool read reports and reads at is the chain's own block, also where Solidity's
``block.number`` is another chain's (Arbitrum: the L1 block).

On Anvil, an Arbitrum stand-in: ArbSys at 0x64 answers ``arbBlockNumber()`` with the block, and a
Multicall3 stand-in answers ``getBlockNumber()`` with an older block (as Arbitrum's ``block.number``
does) and delegates every other call to the real Multicall3.
"""

from __future__ import annotations

import pytest
from web3 import Web3

from lpbot.chain import registry
from lpbot.chain.reader import PoolReader
from lpbot.chain.registry import ARBSYS
from lpbot.devnet.deploy import contract
from tests.backtest.chain_helpers import send
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

GET_BLOCK_NUMBER = bytes.fromhex("42cbb15c")  # Multicall3.getBlockNumber()
STANDIN_MULTICALL = "0x00000000000000000000000000000000000A11B1"
# returns NUMBER for any call: ArbSys.arbBlockNumber() on a chain whose blocks are its own
ARBSYS_RUNTIME = bytes.fromhex("4360005260206000f3")


def l1_multicall_runtime(l1_block: int, multicall: str) -> bytes:
    """Runtime code: ``getBlockNumber()`` returns ``l1_block``; anything else is delegated."""
    ops = bytearray()
    ops += bytes.fromhex("60003560e01c")
    ops += bytes.fromhex("63") + GET_BLOCK_NUMBER + bytes.fromhex("14")
    fake_jump = len(ops)
    ops += bytes.fromhex("610000") + bytes.fromhex("57")  # PUSH2 fake; JUMPI
    ops += bytes.fromhex("366000600037")  # CALLDATACOPY(0, 0, CALLDATASIZE)
    # DELEGATECALL(gas, multicall, 0, calldatasize, 0, 0)
    ops += bytes.fromhex("6000600036600073") + bytes.fromhex(multicall[2:]) + bytes.fromhex("5af4")
    ops += bytes.fromhex("3d6000803e")  # RETURNDATACOPY(0, 0, RETURNDATASIZE)
    ok_jump = len(ops)
    ops += bytes.fromhex("610000") + bytes.fromhex("57")  # PUSH2 ok; JUMPI
    ops += bytes.fromhex("3d6000fd")  # REVERT(0, RETURNDATASIZE)
    ok = len(ops)
    ops += bytes.fromhex("5b3d6000f3")  # JUMPDEST; RETURN(0, RETURNDATASIZE)
    fake = len(ops)
    ops += bytes.fromhex("5b63") + l1_block.to_bytes(4, "big") + bytes.fromhex("60005260206000f3")
    ops[fake_jump + 1 : fake_jump + 3] = fake.to_bytes(2, "big")
    ops[ok_jump + 1 : ok_jump + 3] = ok.to_bytes(2, "big")
    return bytes(ops)


def _set_code(w3: Web3, address: str, code: bytes) -> None:
    w3.provider.make_request("anvil_setCode", [address, "0x" + code.hex()])  # type: ignore[arg-type]


def _arbitrum_like(chain: Devnet) -> tuple[int, int]:
    """Install the stand-ins; mint a new range after an 'L1' block so that the pool's ticks
    differ between it and the head. (l1 block, head)"""
    w3, m = chain.w3, chain.manifest
    info = m.pool("USDC/WETH-500")
    l1_block = w3.eth.block_number
    _set_code(w3, ARBSYS, ARBSYS_RUNTIME)
    _set_code(w3, STANDIN_MULTICALL, l1_multicall_runtime(l1_block, m.contracts["Multicall3"]))
    pool = contract(w3, "UniswapV3Pool", info.address)
    caller = contract(w3, "PoolCaller", m.contracts["PoolCaller"])
    tick = pool.functions.slot0().call()[1]
    lower = (tick - 170 * info.tick_spacing) // info.tick_spacing * info.tick_spacing
    upper = (tick + 190 * info.tick_spacing) // info.tick_spacing * info.tick_spacing
    lp = m.accounts.lps[1]
    send(w3, caller.functions.mint(info.address, lp, lower, upper, 10**15), lp)
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return l1_block, w3.eth.block_number


def _lens_ticks(chain: Devnet, words: range, block: int) -> set[int]:
    m = chain.manifest
    lens = contract(chain.w3, "TickLens", m.contracts["TickLens"])
    pool = m.pool("USDC/WETH-500").address
    return {
        t[0]
        for w in words
        for t in lens.functions.getPopulatedTicksInWord(pool, w).call(block_identifier=block)
    }


@pytest.mark.parametrize("source", ["arbsys", "node"])
def test_the_snapshot_block_and_the_read_block_are_the_chains_own(
    chain: Devnet, source: str
) -> None:
    l1_block, head = _arbitrum_like(chain)
    m = chain.manifest
    reader = PoolReader(
        chain.w3, multicall=STANDIN_MULTICALL, tick_lens=m.contracts["TickLens"],
        block_source=source,
    )  # fmt: skip
    # the first read has no tick hint: the bitmap words come in a second round trip, read at
    # the block the first one reported
    snap = reader.fetch_pool_state(m.pool("USDC/WETH-500").address)
    assert snap.round_trips == (2 if source == "arbsys" else 3)
    assert snap.block_number == head
    assert snap.block_timestamp == chain.w3.eth.get_block(head)["timestamp"]
    words = range(snap.word_range[0], snap.word_range[1] + 1)
    at_head = _lens_ticks(chain, words, head)
    assert at_head != _lens_ticks(chain, words, l1_block)  # the minted range is new
    assert set(snap.ticks) == at_head


def test_arbitrum_reads_block_numbers_from_arbsys_and_falls_back_to_the_node(
    chain: Devnet,
) -> None:
    assert registry.block_number_source(42161) == "arbsys"
    assert registry.block_number_source(324) == "node"
    assert registry.block_number_source(1) == "evm"
    assert registry.block_number_source(31337) == "evm"
    _l1_block, head = _arbitrum_like(chain)
    _set_code(chain.w3, ARBSYS, b"")  # an Anvil fork of Arbitrum has no ArbSys
    m = chain.manifest
    reader = PoolReader(
        chain.w3, multicall=STANDIN_MULTICALL, tick_lens=m.contracts["TickLens"],
        block_source="arbsys",
    )  # fmt: skip
    snap = reader.fetch_pool_state(m.pool("USDC/WETH-500").address)
    assert snap.block_number == head
    assert reader.block_source() == "node"


def test_a_read_at_a_given_block_reports_that_block(chain: Devnet) -> None:
    l1_block, head = _arbitrum_like(chain)
    m = chain.manifest
    reader = PoolReader(
        chain.w3, multicall=STANDIN_MULTICALL, tick_lens=m.contracts["TickLens"],
        block_source="arbsys",
    )  # fmt: skip
    snap = reader.fetch_pool_state(m.pool("USDC/WETH-500").address, block=head - 1)
    assert snap.block_number == head - 1 != l1_block


def test_a_read_where_the_pool_has_no_state_is_retried_later(devnet: Devnet) -> None:
    # a call to an address without code (as at a block a node does not serve, or before the pool
    # existed) succeeds with no data: that is "retry later", not an ABI decoding crash
    from lpbot.errors import RetryLater

    m = devnet.manifest
    reader = PoolReader(
        devnet.w3, multicall=m.contracts["Multicall3"], tick_lens=m.contracts["TickLens"]
    )
    with pytest.raises(RetryLater, match="no pool state"):
        reader.fetch_pool_state("0x" + "42" * 20)
