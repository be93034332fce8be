"""The call dry-run: the plan's Safe transaction judged by ``eth_call`` alone, no fork.

Where Anvil cannot fork the chain (zkSync Era runs EraVM) or a fork is not wanted
(``[chains.NAME] dry_run = "call"``), the dry-run asks the node itself, every read pinned to
one block ``N``:

1. The Safe batch, exactly as it will be signed (``to``, ``value``, ``data``, ``operation`` of
   the SafeTx), runs in the Safe's own context through Safe's ``SimulateTxAccessor.simulate``,
   delegatecalled by the Safe's ``StorageAccessible.simulateAndRevert``: it says whether the
   batch succeeds, with the gas it used, and reverts everything (Safe 1.3.0 and 1.4.1).
2. The effects are the chain's own answers, not a prediction: the same calls, made again in the
   Safe's context by ``simulateAndRevert`` delegatecalling Multicall3's ``aggregate3`` (which
   calls each target from ``address(this)``, here the Safe), with reads between them: the
   Safe's balances before and after, the pool's balances around the swap (its deltas, as the
   pool's ``Swap`` event has them), each call's return values (``decreaseLiquidity``,
   ``collect``, ``mint``, ``increaseLiquidity``), the pool's ``slot0`` after, the position's
   owner and range after.

Why not a lens contract passed as code in ``eth_call``'s state override: the override is not
served by every node, and on zkSync Era the code would have to be EraVM bytecode (zksolc),
a second build of a contract lpbot would then have to keep equal to its EVM one. Why not the
effects computed by lpbot's exact core from state read by ``eth_call``: the report's checks
compare the chain's amounts with the exact core's; computing both with the core would make
those checks compare the core with itself. Multicall3 and SimulateTxAccessor are deployed on
every chain lpbot manages (the registry's addresses), so the call dry-run needs nothing but
``eth_call``, and the report's checks keep their meaning.

A plan through the rebalance module: the operator's call by ``eth_call`` (the module's own checks)
and ``eth_estimateGas`` from the operator; its effects replayed as above (the calls the module
makes the Safe make), checked against the amounts the module itself returns.

What differs from the fork's dry-run, by nature: ``block`` (the block whose state was read, where
the fork reports the block it mined the transaction in), ``gas_used`` (the accessor's measure
of the batch plus the ``execTransaction`` around it, before refunds: see ``exec_overhead_gas``)
and its price (``eth_gasPrice``), and a failed batch's ``revert_reason`` text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_typing import BlockNumber
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.chain import artifacts
from lpbot.errors import Halt, Refused
from lpbot.execution import preflight as pf
from lpbot.execution.simulate import DryRunResult
from lpbot.signing.safe import InnerCall, SafeTransaction, exec_transaction_data

log = logging.getLogger(__name__)

_W3 = Web3()


def _contract(name: str, address: str | None = None) -> Any:
    if address is None:
        return _W3.eth.contract(abi=artifacts.abi(name))
    return _W3.eth.contract(address=to_checksum_address(address), abi=artifacts.abi(name))


def _encode(contract: Any, fn: str, *args: Any) -> bytes:
    return bytes.fromhex(contract.encode_abi(fn_name=fn, args=list(args))[2:])


# the calls whose return values are the effects (v3-periphery NonfungiblePositionManager,
# swap-router-contracts SwapRouter02)
SEL_NPM_MULTICALL = function_signature_to_4byte_selector("multicall(bytes[])")
SEL_DECREASE = function_signature_to_4byte_selector(
    "decreaseLiquidity((uint256,uint128,uint256,uint256,uint256))"
)
SEL_COLLECT = function_signature_to_4byte_selector("collect((uint256,address,uint128,uint128))")
SEL_MINT = function_signature_to_4byte_selector(
    "mint((address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256))"
)
SEL_INCREASE = function_signature_to_4byte_selector(
    "increaseLiquidity((uint256,uint256,uint256,uint256,uint256,uint256))"
)
SEL_ROUTER_MULTICALL = function_signature_to_4byte_selector("multicall(uint256,bytes[])")


def exec_overhead_gas(tx: SafeTransaction, threshold: int) -> int:
    """Gas of ``execTransaction`` around its batch: the intrinsic 21,000, its calldata (EIP-2028:
    16 a byte, every signature byte counted as non-zero, as real ones nearly all are), and
    Safe's own work: per signature an ``ecrecover`` (3,000) and the owner read (2,100 cold), the
    nonce's write (5,000), the SafeL2 events with the data (8 a byte) and the calls around
    (10,000). An estimate for the report: the pre-flight's ``eth_estimateGas`` of the signed
    transaction gives the gas limit."""
    data = exec_transaction_data(tx, bytes(65 * threshold))
    calldata = sum(16 if b else 4 for b in data) + (16 - 4) * 65 * threshold
    return 21_000 + calldata + threshold * 5_100 + 5_000 + 8 * len(tx.data) + 10_000


def check_helper_code(w3: Web3, helpers: dict[str, str]) -> None:
    """Refuse unless each helper (name -> address) has code: the Safe's delegatecall into an
    address without code succeeds and returns nothing, which says nothing of the batch."""
    for name, address in helpers.items():
        if not bytes(w3.eth.get_code(to_checksum_address(address))):
            raise Refused(
                f"{name} at {to_checksum_address(address)} has no code on this chain: the call "
                'dry-run needs it (check the address, or dry_run = "fork"); nothing is planned'
            )


# Safe's GuardManager: keccak256("guard_manager.guard.address") (Safe 1.3.0 and 1.4.1)
GUARD_STORAGE_SLOT = 0x4A204F620C8C5CCDCA3FD54D003BADD85BA500436A431F0CBDA4F558C93C34C8


def check_no_guard(w3: Web3, safe: str, block: int | None = None) -> None:
    """Refuse when the Safe has a transaction guard: ``execTransaction`` runs it, the
    accessor does not, so the call dry-run could call a batch the guard refuses a success."""
    raw = bytes(
        w3.eth.get_storage_at(
            to_checksum_address(safe),
            GUARD_STORAGE_SLOT,
            "latest" if block is None else BlockNumber(block),
        )
    )
    guard = int.from_bytes(raw[-20:], "big") if raw else 0
    if guard:
        address = to_checksum_address(guard.to_bytes(20, "big"))
        raise Refused(
            f"the Safe {to_checksum_address(safe)} has a transaction guard {address}, which "
            "execTransaction runs and the call dry-run cannot: dry-run it on a fork "
            '(dry_run = "fork"); nothing is planned'
        )


def _simulate_and_revert(
    w3: Web3, safe: str, sender: str, target: str, payload: bytes, block: int
) -> tuple[bool, bytes]:
    """``simulateAndRevert(target, payload)`` on the Safe at ``block``: whether the
    delegatecall succeeded, and what it returned (or reverted with)."""
    call = _encode(
        _contract("SafeL2", safe), "simulateAndRevert", to_checksum_address(target), payload
    )
    outcome = pf.fetch_call_outcome(w3, sender, safe, call, estimate=False, block=block)
    raw = outcome.revert_data if not outcome.ok else outcome.output
    if len(raw) < 64:
        raise Refused(
            f"the Safe's simulateAndRevert answered nothing usable ({outcome.reason}): is "
            f"{safe} a Safe 1.3.0 or later?"
        )
    return int.from_bytes(raw[:32], "big") == 1, raw[64:]


def fetch_batch_outcome(
    w3: Web3, tx: SafeTransaction, *, accessor: str, sender: str, block: int
) -> tuple[bool, int, bytes]:
    """(success, gas used, return or revert data) of the SafeTx's batch, run in the Safe's
    context by ``SimulateTxAccessor.simulate`` (Safe's accessors/SimulateTxAccessor.sol)."""
    payload = _encode(
        _contract("SimulateTxAccessor"), "simulate", tx.to, tx.value, tx.data, tx.operation
    )
    ok, ret = _simulate_and_revert(w3, tx.safe, sender, accessor, payload, block)
    if not ok:
        raise Refused(f"SimulateTxAccessor at {accessor} failed: {pf.decode_revert(ret)}")
    try:
        estimate, success, data = decode(["uint256", "bool", "bytes"], ret)
    except DecodingError as exc:
        raise Refused(
            f"SimulateTxAccessor at {accessor} answered in an unknown format ({exc}): is it "
            "Safe's SimulateTxAccessor?"
        ) from exc
    return bool(success), int(estimate), bytes(data)


def _effects_calls(
    calls: Sequence[InnerCall],
    *,
    safe: str,
    tokens: list[str],
    pool: str,
    router_calls: set[int],
    position_manager: str,
    token_id: int | None,
) -> list[tuple[str, bool, bytes]]:
    erc20 = _contract("TestERC20")
    balances = [(t, False, _encode(erc20, "balanceOf", to_checksum_address(safe))) for t in tokens]
    pool_balances = [
        (t, False, _encode(erc20, "balanceOf", to_checksum_address(pool))) for t in tokens
    ]
    out: list[tuple[str, bool, bytes]] = list(balances)
    for i, c in enumerate(calls):
        if c.value:
            raise Refused("the call dry-run does not send value with a call; use the fork")
        if i in router_calls:
            out += pool_balances
        out.append((c.to, False, c.data))
        if i in router_calls:
            out += pool_balances
    out += balances
    out.append((pool, False, _encode(_contract("UniswapV3Pool"), "slot0")))
    if token_id is not None:
        npm = _contract("NonfungiblePositionManager")
        out.append((position_manager, True, _encode(npm, "ownerOf", token_id)))
        out.append((position_manager, True, _encode(npm, "positions", token_id)))
    return out


def _fetch_effects(
    w3: Web3,
    *,
    safe: str,
    sender: str,
    multicall: str,
    block: int,
    batch: list[tuple[str, bool, bytes]],
) -> list[tuple[bool, bytes]]:
    payload = _encode(
        _contract("Multicall3"),
        "aggregate3",
        [(to_checksum_address(t), allow, data) for t, allow, data in batch],
    )
    ok, ret = _simulate_and_revert(w3, safe, sender, multicall, payload, block)
    if not ok:
        # the accessor said the batch succeeds: the same calls failing here is the node's or
        # the chain's inconsistency, not the plan's
        raise Refused(f"the batch's effects could not be read: {pf.decode_revert(ret)}")
    try:
        (results,) = decode(["(bool,bytes)[]"], ret)
    except DecodingError as exc:
        raise Refused(
            f"Multicall3 at {multicall} answered in an unknown format ({exc}): is it Multicall3?"
        ) from exc
    if len(results) != len(batch):
        raise Refused(f"Multicall3 at {multicall} answered {len(results)} of {len(batch)} calls")
    return [(bool(s), bytes(d)) for s, d in results]


def _inner(data: bytes, ret: bytes) -> list[tuple[bytes, bytes]]:
    """(calldata, return data) of a call and, for a multicall, of each call inside it."""
    selector = data[:4]
    if selector == SEL_NPM_MULTICALL:
        (datas,) = decode(["bytes[]"], data[4:])
        (rets,) = decode(["bytes[]"], ret)
        return [(bytes(d), bytes(r)) for d, r in zip(datas, rets, strict=True)]
    if selector == SEL_ROUTER_MULTICALL:
        _deadline, datas = decode(["uint256", "bytes[]"], data[4:])
        (rets,) = decode(["bytes[]"], ret)
        return [(bytes(d), bytes(r)) for d, r in zip(datas, rets, strict=True)]
    return [(data, ret)]


def call_dry_run(
    w3: Web3,
    tx: SafeTransaction,
    *,
    calls: Sequence[InnerCall],
    threshold: int,
    executor: str,
    tokens: list[str],
    position_manager: str,
    router: str,
    pool: str,
    multicall: str,
    accessor: str,
    keeps: int | None = None,
) -> DryRunResult:
    """Judge the SafeTx ``tx`` (whose batch is ``calls``) by ``eth_call`` at the latest block,
    from ``executor``; nothing is sent and nothing changes. The result reads as the fork's
    ``dry_run``'s (module docstring: what differs by nature); ``keeps``: a position the batch
    keeps, whose liquidity and tokens owed after it are read."""
    block = int(w3.eth.block_number)
    safe_c = w3.eth.contract(address=to_checksum_address(tx.safe), abi=artifacts.abi("SafeL2"))
    if safe_c.functions.nonce().call(block_identifier=block) != tx.nonce:
        raise Refused("the Safe's nonce moved since the plan: plan again")
    check_no_guard(w3, tx.safe, block)
    success, used, ret = fetch_batch_outcome(
        w3, tx, accessor=accessor, sender=executor, block=block
    )
    reason = None
    if not success:
        why = pf.decode_revert(ret) if ret else _traced(w3, tx, executor)
        reason = f"the Safe batch reverts: {why}"
    replay = _Replay(
        w3, tx.safe, executor, multicall, block, tokens, pool, router, position_manager
    )
    return replay.result(
        calls if success else [],
        revert_reason=reason,
        gas_used=used + exec_overhead_gas(tx, threshold),
        keeps=keeps,
    )


def call_dry_run_module(
    w3: Web3,
    module_tx: Any,
    *,
    safe: str,
    calls: Sequence[InnerCall],
    tokens: list[str],
    position_manager: str,
    router: str,
    pool: str,
    multicall: str,
    keeps: int | None = None,
) -> DryRunResult:
    """Judge the operator's call to the rebalance module by ``eth_call`` from the operator (the
    module's own checks: its limits, the TWAP, the loss budget), its gas by
    ``eth_estimateGas``; the effects from the plan's calls replayed in the Safe's context (the
    calls the module makes the Safe make), checked against the module's own results."""
    block = int(w3.eth.block_number)
    outcome = pf.fetch_call_outcome(
        w3, module_tx.operator, module_tx.module, module_tx.data, block=block
    )
    replay = _Replay(
        w3, safe, module_tx.operator, multicall, block, tokens, pool, router, position_manager
    )
    if not outcome.ok or outcome.gas_estimate is None:
        return replay.result(
            [], revert_reason=f"the module call reverts: {outcome.reason}", gas_used=0
        )
    result = replay.result(calls, revert_reason=None, gas_used=outcome.gas_estimate, keeps=keeps)
    (results,) = decode(["bytes[]"], outcome.output)
    mine = _module_amounts([bytes(r) for r in results], module_tx.data)
    seen = {
        "decreased": result.decreased,
        "collected": result.collected,
        "minted": result.minted,
    }
    for name, amounts in mine.items():
        if amounts != seen[name]:
            raise Refused(
                f"the module's own {name} {amounts} differs from the Safe-context replay's "
                f'{seen[name]}: dry-run this plan on a fork (dry_run = "fork")'
            )
    return result


def _module_amounts(results: list[bytes], data: bytes) -> dict[str, tuple[int, int]]:
    """The amounts in the module's ``execute`` results, by the entry point that returned them
    (``LPRebalanceModule._dispatch``, whose entry points keep the position manager's
    signatures, so its selectors are the manager's)."""
    (entries,) = decode(["bytes[]"], data[4:])
    out: dict[str, tuple[int, int]] = {}
    for entry, ret in zip(entries, results, strict=True):
        head = bytes(entry)[:4]
        if head == SEL_DECREASE:
            out["decreased"] = _pair(ret)
        elif head == SEL_COLLECT:
            out["collected"] = _pair(ret)
        elif head == SEL_MINT:
            _id, _liq, a0, a1 = decode(["uint256", "uint128", "uint256", "uint256"], ret)
            out["minted"] = (int(a0), int(a1))
        elif head == SEL_INCREASE:
            _liq, a0, a1 = decode(["uint128", "uint256", "uint256"], ret)
            out["minted"] = (int(a0), int(a1))
    return out


class _Replay:
    """The batch's effects, read by replaying its calls in the Safe's context at ``block``."""

    def __init__(
        self,
        w3: Web3,
        safe: str,
        sender: str,
        multicall: str,
        block: int,
        tokens: list[str],
        pool: str,
        router: str,
        position_manager: str,
    ) -> None:
        self.w3, self.safe, self.sender, self.multicall, self.block = (
            w3,
            safe,
            sender,
            multicall,
            block,
        )
        self.tokens, self.pool, self.router, self.npm = tokens, pool, router, position_manager

    def _fetch(
        self, calls: Sequence[InnerCall], router_calls: set[int], token_id: int | None = None
    ) -> list[tuple[bool, bytes]]:
        batch = _effects_calls(
            calls,
            safe=self.safe,
            tokens=self.tokens,
            pool=self.pool,
            router_calls=router_calls,
            position_manager=self.npm,
            token_id=token_id,
        )
        return _fetch_effects(
            self.w3,
            safe=self.safe,
            sender=self.sender,
            multicall=self.multicall,
            block=self.block,
            batch=batch,
        )

    def result(
        self,
        calls: Sequence[InnerCall],
        *,
        revert_reason: str | None,
        gas_used: int,
        keeps: int | None = None,
    ) -> DryRunResult:
        """The dry-run's result: ``calls``' effects (none when ``revert_reason`` says the
        batch fails), at the node's gas price; ``keeps``: a kept position (a withdraw's),
        whose liquidity and tokens owed after the calls are read."""
        tokens, n = self.tokens, len(self.tokens)
        router_calls = {i for i, c in enumerate(calls) if c.to.lower() == self.router.lower()}
        # first the calls with their reads, then again with the minted (or increased)
        # position's owner and range after them: the same block, so the same answers
        effects = self._fetch(calls, router_calls)
        decreased, collected = (0, 0), (0, 0)
        minted, new_liquidity = (0, 0), 0
        token_id: int | None = None
        swap: tuple[int, int] | None = None
        i = n
        for k, c in enumerate(calls):
            if k in router_calls:
                pool_before = [_uint(effects[i + j][1]) for j in range(n)]
                i += n
            _ok, ret_k = effects[i]
            i += 1
            if k in router_calls:
                pool_after = [_uint(effects[i + j][1]) for j in range(n)]
                i += n
                deltas = tuple(a - b for a, b in zip(pool_after, pool_before, strict=True))
                if any(deltas):
                    if swap is not None:
                        raise Halt("a rebalance made more than one swap in the pool")
                    swap = (deltas[0], deltas[1])
            if c.to.lower() != self.npm.lower():
                continue
            for data, ret in _inner(c.data, ret_k):
                sel = data[:4]
                if sel == SEL_DECREASE:
                    decreased = _pair(ret)
                elif sel == SEL_COLLECT:
                    collected = _pair(ret)
                elif sel == SEL_MINT:
                    if token_id is not None:
                        raise Halt("a rebalance made more than one mint in the pool")
                    new_id, liq, a0, a1 = decode(["uint256", "uint128", "uint256", "uint256"], ret)
                    token_id, new_liquidity, minted = int(new_id), int(liq), (int(a0), int(a1))
                elif sel == SEL_INCREASE:
                    (increased_id,) = decode(["uint256"], data[4:36])
                    liq, a0, a1 = decode(["uint128", "uint256", "uint256"], ret)
                    token_id, new_liquidity = int(increased_id), int(liq)
                    minted = (int(a0), int(a1))
        before = {t: _uint(effects[j][1]) for j, t in enumerate(tokens)}
        after = {t: _uint(effects[i + j][1]) for j, t in enumerate(tokens)}
        slot0 = decode(["uint160", "int24"], effects[i + n][1][:64])
        owner: str | None = None
        ticks: tuple[int, int] | None = None
        if token_id is not None:
            again = self._fetch(calls, router_calls, token_id)
            owned, owner_ret = again[-2]
            listed, position_ret = again[-1]
            if owned:
                (raw_owner,) = decode(["address"], owner_ret)
                owner = to_checksum_address(raw_owner)
            if listed:
                fields = decode(
                    ["uint96", "address", "address", "address", "uint24", "int24", "int24"],
                    position_ret[: 7 * 32],
                )
                ticks = (int(fields[5]), int(fields[6]))
        kept: tuple[int, int, int] | None = None
        if keeps is not None and revert_reason is None:
            # the same replay, with the kept position read after the calls (same block)
            listed, position_ret = self._fetch(calls, router_calls, keeps)[-1]
            if listed:
                fields = decode(
                    ["uint96", "address", "address", "address", "uint24", "int24", "int24",
                     "uint128", "uint256", "uint256", "uint128", "uint128"],
                    position_ret[: 12 * 32],
                )  # fmt: skip
                kept = (int(fields[7]), int(fields[10]), int(fields[11]))
        return DryRunResult(
            success=revert_reason is None,
            revert_reason=revert_reason,
            block=self.block,
            gas_used=gas_used,
            effective_gas_price=int(self.w3.eth.gas_price),
            balance_before=before,
            balance_after=after,
            decreased=decreased,
            collected=collected,
            swap=swap,
            sqrt_price_after_x96=int(slot0[0]),
            tick_after=int(slot0[1]),
            # as the fork's: the IncreaseLiquidity event's id (a compound's is not new)
            new_token_id=token_id,
            new_liquidity=new_liquidity,
            minted=minted,
            nft_owner_after=owner,
            # as the fork's: the range of the pool's Mint event, which an increase has too
            new_ticks=ticks,
            position_after=kept,
        )


def _uint(data: bytes) -> int:
    return int.from_bytes(data[:32], "big")


def _pair(ret: bytes) -> tuple[int, int]:
    a, b = decode(["uint256", "uint256"], ret[:64])
    return int(a), int(b)


def _traced(w3: Web3, tx: SafeTransaction, sender: str) -> str:
    """The inner call's reason (MultiSendCallOnly drops it) from ``debug_traceCall`` where
    the node serves it."""
    call = _encode(_contract("SafeL2", tx.safe), "simulateAndRevert", tx.to, tx.data)
    failed = pf.fetch_inner_reason(w3, sender, tx.safe, call)
    if failed is None:
        return "an inner call reverted (the node gives no trace of which)"
    return f"{failed.reason} in a call to {failed.to}"
