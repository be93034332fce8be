"""The dry-run: execute the exact Safe transaction on a snapshot of the chain, record, revert.

On the devnet or an Anvil fork, the chain is snapshotted (``evm_snapshot``), the Safe's owners
approve the SafeTx hash from impersonated accounts (``anvil_impersonateAccount``), and the very
``execTransaction`` that will later carry real signatures runs with Safe's pre-validated
signatures. Balances, events and gas are recorded, then the chain is reverted (``evm_revert``):
nothing is signed and nothing stays changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.logs import DISCARD
from web3.types import BlockIdentifier, TxReceipt

from lpbot.chain import artifacts
from lpbot.errors import Halt, Refused
from lpbot.signing.module import module_revert_reason
from lpbot.signing.safe import SafeTransaction, exec_transaction_data, prevalidated_signatures

log = logging.getLogger(__name__)

GAS_LIMIT = 3_000_000


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """What the Safe transaction did on the snapshot."""

    success: bool
    revert_reason: str | None
    block: int
    gas_used: int
    effective_gas_price: int
    balance_before: dict[str, int]  # token address -> Safe balance
    balance_after: dict[str, int]
    decreased: tuple[int, int]
    collected: tuple[int, int]
    swap: tuple[int, int] | None  # pool deltas (amount0, amount1), positive into the pool
    sqrt_price_after_x96: int
    tick_after: int
    new_token_id: int | None
    new_liquidity: int
    minted: tuple[int, int]
    nft_owner_after: str | None
    # the minted position's range, from the pool's Mint event
    new_ticks: tuple[int, int] | None = None
    # a kept position's (liquidity, tokensOwed0, tokensOwed1) after the transaction (a
    # withdraw's: all three 0); None when not read
    position_after: tuple[int, int, int] | None = None

    def delta(self, token: str) -> int:
        return self.balance_after[token] - self.balance_before[token]


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response:
        raise Refused(f"{method} failed: {response['error']}")
    return response["result"]


def _balances(w3: Web3, tokens: list[str], holder: str, block: BlockIdentifier) -> dict[str, int]:
    erc20 = w3.eth.contract(abi=artifacts.abi("TestERC20"))
    out = {}
    for t in tokens:
        c = erc20(address=to_checksum_address(t))
        out[t] = c.functions.balanceOf(holder).call(block_identifier=block)
    return out


def dry_run(
    w3: Web3,
    tx: SafeTransaction,
    *,
    owners: list[str],
    threshold: int,
    executor: str,
    tokens: list[str],
    position_manager: str,
    pool: str,
    checkpoint: Callable[[str], None] = lambda _name: None,
    keeps: int | None = None,
) -> DryRunResult:
    """Run ``tx`` on a snapshot and revert; ``owners`` are the Safe's, ``executor`` sends it;
    ``keeps``: a position the transaction keeps, whose state after it is read.

    ``w3`` must be a disposable chain (a fork): a process killed before the revert leaves the
    owners' approvals and the execution on it (``checkpoint("dry-run")`` marks that moment)."""
    safe_c = w3.eth.contract(address=to_checksum_address(tx.safe), abi=artifacts.abi("SafeL2"))
    if safe_c.functions.nonce().call() != tx.nonce:
        raise Refused("the Safe's nonce moved since the plan: plan again")
    approvers = owners[:threshold]
    snapshot_id = _rpc(w3, "evm_snapshot", [])
    try:
        block = w3.eth.block_number
        before = _balances(w3, tokens, tx.safe, block)
        digest = tx.safe_tx_hash
        for owner in approvers:
            _rpc(w3, "anvil_impersonateAccount", [owner])
            h = safe_c.functions.approveHash(digest).transact({"from": owner, "gas": 200_000})
            w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
            _rpc(w3, "anvil_stopImpersonatingAccount", [owner])
        data = exec_transaction_data(tx, prevalidated_signatures(approvers))
        _rpc(w3, "anvil_impersonateAccount", [executor])  # any key: a keystore, MPC, remote
        sent = w3.eth.send_transaction(
            {"from": executor, "to": tx.safe, "data": data, "gas": GAS_LIMIT}
        )
        receipt = w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.01)
        checkpoint("dry-run")
        _rpc(w3, "anvil_stopImpersonatingAccount", [executor])
        after = _balances(w3, tokens, tx.safe, "latest")
        result = _decode(w3, receipt, before, after, position_manager, pool, tx.safe, keeps=keeps)
        if not result.success:
            result = _with_reason(result, _revert_reason(w3, executor, tx.safe, data, block))
        return result
    finally:
        _rpc(w3, "evm_revert", [snapshot_id])


def dry_run_module(
    w3: Web3,
    module_tx: Any,
    *,
    safe: str,
    tokens: list[str],
    position_manager: str,
    pool: str,
    checkpoint: Callable[[str], None] = lambda _name: None,
    keeps: int | None = None,
) -> DryRunResult:
    """Run the operator's module call on a snapshot and revert (the operator impersonated)."""
    snapshot_id = _rpc(w3, "evm_snapshot", [])
    try:
        block = w3.eth.block_number
        before = _balances(w3, tokens, safe, block)
        _rpc(w3, "anvil_impersonateAccount", [module_tx.operator])
        sent = w3.eth.send_transaction(
            {
                "from": module_tx.operator,
                "to": module_tx.module,
                "data": module_tx.data,
                "gas": GAS_LIMIT,
            }
        )
        receipt = w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.01)
        checkpoint("dry-run")
        _rpc(w3, "anvil_stopImpersonatingAccount", [module_tx.operator])
        after = _balances(w3, tokens, safe, "latest")
        result = _decode(
            w3, receipt, before, after, position_manager, pool, safe, via_module=True, keeps=keeps
        )
        if not result.success:
            result = _with_reason(result, module_revert_reason(w3, module_tx))
        return result
    finally:
        _rpc(w3, "evm_revert", [snapshot_id])


def _revert_reason(w3: Web3, sender: str, to: str, data: bytes, block: int) -> str:
    try:
        w3.eth.call({"from": sender, "to": to, "data": data}, block_identifier="latest")
    except Exception as exc:  # web3 wraps the node's revert in several exception types
        return str(exc)
    return "reverted"


def _with_reason(result: DryRunResult, reason: str) -> DryRunResult:
    from dataclasses import replace

    return replace(result, revert_reason=reason)


def _decode(
    w3: Web3,
    receipt: TxReceipt,
    before: dict[str, int],
    after: dict[str, int],
    position_manager: str,
    pool: str,
    safe: str,
    *,
    via_module: bool = False,
    keeps: int | None = None,
) -> DryRunResult:
    npm = w3.eth.contract(
        address=to_checksum_address(position_manager),
        abi=artifacts.abi("NonfungiblePositionManager"),
    )
    pool_c = w3.eth.contract(address=to_checksum_address(pool), abi=artifacts.abi("UniswapV3Pool"))
    safe_c = w3.eth.contract(address=to_checksum_address(safe), abi=artifacts.abi("SafeL2"))
    # a Safe transaction reports its inner result in ExecutionSuccess; a module call reverts
    success = receipt["status"] == 1 and (
        via_module
        or bool(safe_c.events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD))
    )
    dec = npm.events.DecreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    col = npm.events.Collect().process_receipt(receipt, errors=DISCARD)
    inc = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    swaps = [
        e
        for e in pool_c.events.Swap().process_receipt(receipt, errors=DISCARD)
        if e["address"] == pool_c.address
    ]
    mints = [
        e
        for e in pool_c.events.Mint().process_receipt(receipt, errors=DISCARD)
        if e["address"] == pool_c.address
    ]
    slot0 = pool_c.functions.slot0().call()
    new_id = inc[0]["args"]["tokenId"] if inc else None
    owner = npm.functions.ownerOf(new_id).call() if new_id is not None else None
    if len(inc) > 1 or len(swaps) > 1:
        raise Halt("a rebalance made more than one mint or swap in the pool")
    kept = None
    if keeps is not None:
        p = npm.functions.positions(keeps).call()
        kept = (int(p[7]), int(p[10]), int(p[11]))
    return DryRunResult(
        success=success,
        revert_reason=None,
        block=receipt["blockNumber"],
        gas_used=receipt["gasUsed"],
        effective_gas_price=receipt.get("effectiveGasPrice", 0),
        balance_before=before,
        balance_after=after,
        decreased=((dec[0]["args"]["amount0"], dec[0]["args"]["amount1"]) if dec else (0, 0)),
        collected=(col[0]["args"]["amount0"], col[0]["args"]["amount1"]) if col else (0, 0),
        swap=(swaps[0]["args"]["amount0"], swaps[0]["args"]["amount1"]) if swaps else None,
        sqrt_price_after_x96=slot0[0],
        tick_after=slot0[1],
        new_token_id=new_id,
        new_liquidity=inc[0]["args"]["liquidity"] if inc else 0,
        minted=(inc[0]["args"]["amount0"], inc[0]["args"]["amount1"]) if inc else (0, 0),
        nft_owner_after=owner,
        new_ticks=(
            (int(mints[0]["args"]["tickLower"]), int(mints[0]["args"]["tickUpper"]))
            if mints
            else None
        ),
        position_after=kept,
    )
