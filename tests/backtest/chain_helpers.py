"""Devnet helpers for the backtest tests: LP and trader actions straight on a pool, and a full
read of a pool's state to compare a replayed ``Pool`` with."""

from __future__ import annotations

from web3 import Web3

from lpbot.backtest.events import PoolMeta, StartState
from lpbot.backtest.fetch import Web3Source, _Caller, _Retry, fetch_start_state
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.manifest import Manifest, PoolInfo
from lpbot.uniswap.pool import Pool
from lpbot.uniswap.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO


def send(w3: Web3, fn: object, sender: str) -> int:
    """Send a contract call from ``sender``; the block it was mined in."""
    tx = fn.transact({"from": sender, "gas": GAS})  # type: ignore[attr-defined]
    receipt = w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.01)
    assert receipt["status"] == 1, f"transaction {tx.hex()} reverted"
    return int(receipt["blockNumber"])


def lp_and_trader_actions(w3: Web3, m: Manifest, info: PoolInfo) -> None:
    """Every kind of state change the replay handles, through the real contracts.

    A mint for an LP straight on the pool, exact-output swaps, an exact-input swap stopped by
    its price limit, a partial burn, a collect, the protocol fee switched on and the oracle grown.
    """
    pool = contract(w3, "UniswapV3Pool", info.address)
    caller = contract(w3, "PoolCaller", m.contracts["PoolCaller"])
    lp, trader = m.accounts.lps[1], m.accounts.traders[1]
    tick = pool.functions.slot0().call()[1]
    lower = (tick - 300) // info.tick_spacing * info.tick_spacing
    upper = (tick + 500) // info.tick_spacing * info.tick_spacing
    send(w3, caller.functions.mint(info.address, lp, lower, upper, 10**15), lp)
    send(w3, pool.functions.setFeeProtocol(4, 5), m.accounts.deployer)
    send(w3, pool.functions.increaseObservationCardinalityNext(250), lp)
    # exact output both ways, then exact input stopped by a limit
    send(w3, caller.functions.swap0ForExact1(info.address, 3 * 10**17, trader, 0), trader)
    send(w3, caller.functions.swap1ForExact0(info.address, 5_000 * 10**6, trader, 0), trader)
    sqrt_now = pool.functions.slot0().call()[0]
    limit = sqrt_now * 1002 // 1000
    send(w3, caller.functions.swapExact1For0(info.address, 10**24, trader, limit), trader)
    send(w3, caller.functions.swapExact0For1(info.address, 1_000 * 10**6, trader, 0), trader)
    send(w3, pool.functions.burn(lower, upper, 4 * 10**14), lp)
    send(w3, pool.functions.collect(lp, lower, upper, 2**128 - 1, 2**128 - 1), lp)
    assert MIN_SQRT_RATIO < limit < MAX_SQRT_RATIO


def chain_state(w3: Web3, m: Manifest, meta: PoolMeta, block: int, pool: Pool) -> StartState:
    """The chain pool's state at ``block`` with the positions the replayed ``pool`` knows."""
    src = Web3Source(w3)
    retry = _Retry(0, 0.0, lambda _s: None)
    caller = _Caller(src, retry, block, m.contracts["Multicall3"])
    ts = src.block_timestamp(block)
    return fetch_start_state(caller, meta, block, ts, sorted(pool.positions))
