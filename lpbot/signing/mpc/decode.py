"""The co-signer reads what it signs: every inner call of a Safe transaction, against the report.

A rebalance's SafeTx is a DELEGATECALL to MultiSendCallOnly whose ``multiSend(bytes)`` packs the
calls (``uint8 operation, address to, uint256 value, uint256 dataLength, bytes data`` each); a
module rebalance is the operator's call of ``LPRebalanceModule.execute(bytes[])``. ``check_calls``
unpacks them, decodes each NonfungiblePositionManager, SwapRouter02, ERC-20 and module call
(``multicall`` batches included) and compares every field that moves value with the approved
dry-run report: the token id, the tokens and fee of the pool, recipients (the Safe), ticks,
amounts not above the report's and minimums not below the report's minimums, spenders, and a
deadline within the report's and the co-signer's own limit. Finally the calls must be the ones the
report lists, in order. A refusal names the call (1-based, ``2.1`` inside a multicall) and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from lpbot.errors import Refused

CALL, DELEGATECALL = 0, 1

_MINT = "(address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256)"
_DECREASE = "(uint256,uint128,uint256,uint256,uint256)"
_INCREASE = "(uint256,uint256,uint256,uint256,uint256,uint256)"
_COLLECT = "(uint256,address,uint128,uint128)"
_SWAP = "(address,address,uint24,address,uint256,uint256,uint160)"


def _sel(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


# name -> (signature, argument types) per contract role
_FUNCTIONS: dict[str, dict[str, str]] = {
    "position_manager": {
        "decreaseLiquidity": f"decreaseLiquidity({_DECREASE})",
        "collect": f"collect({_COLLECT})",
        "burn": "burn(uint256)",
        "mint": f"mint({_MINT})",
        "increaseLiquidity": f"increaseLiquidity({_INCREASE})",
        "multicall": "multicall(bytes[])",
    },
    "router": {
        "exactInputSingle": f"exactInputSingle({_SWAP})",
        "multicall": "multicall(uint256,bytes[])",
        "multicall_nodeadline": "multicall(bytes[])",
    },
    "token": {
        "approve": "approve(address,uint256)",
        "transfer": "transfer(address,uint256)",
        "transferFrom": "transferFrom(address,address,uint256)",
        "increaseAllowance": "increaseAllowance(address,uint256)",
    },
    "module": {
        "decreaseLiquidity": f"decreaseLiquidity({_DECREASE})",
        "collect": f"collect({_COLLECT})",
        "burn": "burn(uint256)",
        "mint": f"mint({_MINT})",
        "increaseLiquidity": f"increaseLiquidity({_INCREASE})",
        "swapExactInputSingle": f"swapExactInputSingle({_SWAP},uint256)",
        "approve": "approve(address,address,uint256)",
        "execute": "execute(bytes[])",
    },
    "multisend": {"multiSend": "multiSend(bytes)"},
}
# each signature is checked against the compiled ABIs by tests/signing/test_policy.py
_BY_SELECTOR: dict[str, dict[bytes, tuple[str, list[str]]]] = {}
for _role, _fns in _FUNCTIONS.items():
    for _name, _sig in _fns.items():
        _args = _sig[_sig.index("(") + 1 : -1]
        # split top-level argument types (tuples stay whole)
        _types: list[str] = []
        depth, start = 0, 0
        for k, ch in enumerate(_args):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 0:
                _types.append(_args[start:k])
                start = k + 1
        if _args:
            _types.append(_args[start:])
        _BY_SELECTOR.setdefault(_role, {})[_sel(_sig)] = (_name, _types)


@dataclass(frozen=True, slots=True)
class InnerCall:
    operation: int
    to: str
    value: int
    data: bytes


def unpack_multisend(payload: bytes) -> list[InnerCall]:
    """The calls packed in ``multiSend(bytes transactions)``'s argument."""
    calls: list[InnerCall] = []
    i = 0
    while i < len(payload):
        if len(payload) - i < 85:
            raise Refused(f"multiSend: call {len(calls) + 1} is truncated")
        op = payload[i]
        to = to_checksum_address(payload[i + 1 : i + 21])
        value = int.from_bytes(payload[i + 21 : i + 53], "big")
        length = int.from_bytes(payload[i + 53 : i + 85], "big")
        if length > len(payload) - i - 85:
            raise Refused(f"multiSend: call {len(calls) + 1} claims more data than there is")
        calls.append(InnerCall(op, to, value, bytes(payload[i + 85 : i + 85 + length])))
        i += 85 + length
    return calls


def _decode(role: str, data: bytes, label: str) -> tuple[str, tuple[Any, ...]]:
    if len(data) < 4:
        raise Refused(f"call {label}: calldata shorter than a selector")
    entry = _BY_SELECTOR[role].get(bytes(data[:4]))
    if entry is None:
        raise Refused(
            f"call {label}: selector 0x{data[:4].hex()} is not a {role} call a report makes"
        )
    name, types = entry
    try:
        return name, tuple(decode(types, bytes(data[4:])))
    except (DecodingError, ValueError, OverflowError) as exc:
        raise Refused(f"call {label} ({name}): arguments do not decode: {exc}") from exc


@dataclass(frozen=True)
class Expectations:
    """What the approved report allows, read from the report itself (hashed, approved)."""

    safe: str
    token0: str
    token1: str
    fee: int
    token_id: int
    old_liquidity: int
    new_range: tuple[int, int]
    plan: Mapping[str, Any]
    deadline: int
    max_deadline: int  # now + the co-signer's own limit
    position_manager: str
    router: str

    @classmethod
    def of(
        cls, report: Mapping[str, Any], *, position_manager: str, router: str, max_deadline: int
    ) -> Expectations:
        try:
            tokens = report["tokens"]
            pos = report["position"]
            return cls(
                safe=to_checksum_address(report["safe"]),
                token0=to_checksum_address(tokens[0]["address"]),
                token1=to_checksum_address(tokens[1]["address"]),
                fee=int(report["fee"]),
                token_id=int(pos["token_id"]),
                old_liquidity=int(pos["old_liquidity"]),
                new_range=(int(pos["new_range"][0]), int(pos["new_range"][1])),
                plan=dict(report["plan"]),
                deadline=int(report["deadline"]),
                max_deadline=max_deadline,
                position_manager=to_checksum_address(position_manager),
                router=to_checksum_address(router),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise Refused(f"the report lacks what the co-signer checks: {exc!r}") from exc

    def amount(self, key: str) -> int:
        v = self.plan.get(key)
        if v is None:
            raise Refused(f"the report's plan has no {key}")
        return int(v)


def _fail(label: str, name: str, field: str, detail: str) -> Refused:
    return Refused(f"call {label} ({name}): {field} {detail}")


class _Checker:
    def __init__(
        self, x: Expectations, owner_of: Callable[[int], str] | None = None, auto: bool = False
    ) -> None:
        self.x = x
        self.owner_of = owner_of
        self.auto = auto

    def owned_by_the_safe(self, label: str, name: str, token_id: int) -> None:
        """The position manager adds liquidity to any NFT (it checks no owner): the co-signer
        reads who owns it, and without a chain to read refuses automatic approvals."""
        if self.owner_of is None:
            if self.auto:
                raise _fail(
                    label,
                    name,
                    "tokenId",
                    f"{token_id}: this co-signer has no chain to read its owner from "
                    "(policy.rpc_url_env); an automatic approval adds to no NFT it cannot check",
                )
            return
        owner = to_checksum_address(self.owner_of(token_id))
        if owner != self.x.safe:
            raise _fail(label, name, "tokenId", f"{token_id} is owned by {owner}, not the Safe")

    def eq(self, label: str, name: str, field: str, got: Any, want: Any) -> None:
        g = to_checksum_address(got) if isinstance(got, str) and got.startswith("0x") else got
        if g != want:
            raise _fail(label, name, field, f"is {g}, the report says {want}")

    def at_least(self, label: str, name: str, field: str, got: int, key: str) -> None:
        want = self.x.amount(key)
        if got < want:
            raise _fail(label, name, field, f"{got} is below the report's minimum {want}")

    def at_most(self, label: str, name: str, field: str, got: int, want: int) -> None:
        if got > want:
            raise _fail(label, name, field, f"{got} exceeds the report's {want}")

    def deadline(self, label: str, name: str, got: int) -> None:
        if got > self.x.deadline:
            raise _fail(
                label, name, "deadline", f"{got} is later than the report's {self.x.deadline}"
            )
        if got > self.x.max_deadline:
            raise _fail(
                label,
                name,
                "deadline",
                f"{got} is beyond this co-signer's limit {self.x.max_deadline}",
            )

    # ---- one decoded call ---------------------------------------------------------------

    def liquidity_call(self, label: str, name: str, args: tuple[Any, ...]) -> None:
        x = self.x
        if name == "decreaseLiquidity":
            token_id, liquidity, min0, min1, deadline = args[0]
            self.eq(label, name, "tokenId", token_id, x.token_id)
            self.eq(label, name, "liquidity", liquidity, x.old_liquidity)
            self.at_least(label, name, "amount0Min", min0, "decrease_min0")
            self.at_least(label, name, "amount1Min", min1, "decrease_min1")
            self.deadline(label, name, deadline)
        elif name == "collect":
            token_id, recipient, _max0, _max1 = args[0]
            self.eq(label, name, "tokenId", token_id, x.token_id)
            self.eq(label, name, "recipient", recipient, x.safe)
        elif name == "burn":
            self.eq(label, name, "tokenId", args[0], x.token_id)
        elif name == "mint":
            t0, t1, fee, lower, upper, d0, d1, min0, min1, recipient, deadline = args[0]
            self.eq(label, name, "token0", t0, x.token0)
            self.eq(label, name, "token1", t1, x.token1)
            self.eq(label, name, "fee", fee, x.fee)
            self.eq(label, name, "tickLower", lower, x.new_range[0])
            self.eq(label, name, "tickUpper", upper, x.new_range[1])
            self.at_most(label, name, "amount0Desired", d0, x.amount("mint0"))
            self.at_most(label, name, "amount1Desired", d1, x.amount("mint1"))
            self.at_least(label, name, "amount0Min", min0, "mint_min0")
            self.at_least(label, name, "amount1Min", min1, "mint_min1")
            self.eq(label, name, "recipient", recipient, x.safe)
            self.deadline(label, name, deadline)
        elif name == "increaseLiquidity":
            token_id, d0, d1, min0, min1, deadline = args[0]
            self.eq(label, name, "tokenId", token_id, x.token_id)
            self.owned_by_the_safe(label, name, token_id)
            self.at_most(label, name, "amount0Desired", d0, x.amount("mint0"))
            self.at_most(label, name, "amount1Desired", d1, x.amount("mint1"))
            self.at_least(label, name, "amount0Min", min0, "mint_min0")
            self.at_least(label, name, "amount1Min", min1, "mint_min1")
            self.deadline(label, name, deadline)
        else:
            raise _fail(label, name, "function", "is not one a report makes")

    def swap(self, label: str, name: str, params: tuple[Any, ...]) -> None:
        x = self.x
        token_in, token_out, fee, recipient, amount_in, out_min, _limit = params
        zero_for_one = x.plan.get("swap_zero_for_one")
        if zero_for_one is None:
            raise _fail(label, name, "swap", "is not in the report")
        want_in, want_out = (x.token0, x.token1) if zero_for_one else (x.token1, x.token0)
        self.eq(label, name, "tokenIn", token_in, want_in)
        self.eq(label, name, "tokenOut", token_out, want_out)
        self.eq(label, name, "fee", fee, x.fee)
        self.eq(label, name, "recipient", recipient, x.safe)
        self.at_most(label, name, "amountIn", amount_in, x.amount("swap_in"))
        self.at_least(label, name, "amountOutMinimum", out_min, "swap_out_min")

    def approve(self, label: str, token: str, spender: str, amount: int) -> None:
        x = self.x
        name = "approve"
        token, spender = to_checksum_address(token), to_checksum_address(spender)
        if token not in (x.token0, x.token1):
            raise _fail(label, name, "token", f"{token} is not one of the pool's tokens")
        if spender == x.router:
            zero_for_one = x.plan.get("swap_zero_for_one")
            token_in = None if zero_for_one is None else (x.token0 if zero_for_one else x.token1)
            if token != token_in:
                raise _fail(label, name, "token", f"{token} is not what the report swaps in")
            self.at_most(label, name, "amount", amount, x.amount("swap_in"))
        elif spender == x.position_manager:
            need = x.amount("mint0") if token == x.token0 else x.amount("mint1")
            self.at_most(label, name, "amount", amount, need)
        else:
            raise _fail(
                label, name, "spender", f"{spender} is neither the position manager nor the router"
            )


def check_calls(
    calls: Sequence[InnerCall],
    report: Mapping[str, Any],
    *,
    position_manager: str,
    router: str,
    module: str | None,
    max_deadline: int,
    listed: Sequence[Mapping[str, Any]] | None,
    owner_of: Callable[[int], str] | None = None,
    auto: bool = False,
) -> int:
    """Check every call against the report; return how many calls were checked.

    ``listed`` is the report's own call list (``{"to", "data"}`` each) that ``calls`` must equal
    in order; ``None`` skips that last comparison (a module call, checked field by field)."""
    x = Expectations.of(
        report, position_manager=position_manager, router=router, max_deadline=max_deadline
    )
    checker = _Checker(x, owner_of, auto)
    pm = x.position_manager
    rt = x.router
    mod = to_checksum_address(module) if module else None

    def one(label: str, call: InnerCall) -> None:
        if call.operation != CALL:
            raise _fail(label, "call", "operation", "is a delegatecall")
        if call.value != 0:
            raise _fail(label, "call", "value", f"{call.value} wei; a rebalance moves no ETH")
        to = to_checksum_address(call.to)
        if to == pm:
            name, args = _decode("position_manager", call.data, label)
            if name == "multicall":
                for k, inner in enumerate(args[0], 1):
                    one(f"{label}.{k}", InnerCall(CALL, to, 0, inner))
            else:
                checker.liquidity_call(label, name, args)
        elif to == rt:
            name, args = _decode("router", call.data, label)
            if name != "multicall":
                # SwapRouter02's exactInputSingle and multicall(bytes[]) carry no deadline: such
                # a swap, once signed, can be sent at any later time and price
                raise _fail(
                    label,
                    name,
                    "deadline",
                    "is missing: a swap goes through multicall(deadline, ...)",
                )
            checker.deadline(label, name, args[0])
            inner_calls = args[-1]
            for k, inner in enumerate(inner_calls, 1):
                sub = f"{label}.{k}"
                iname, iargs = _decode("router", inner, sub)
                if iname != "exactInputSingle":
                    raise _fail(sub, iname, "function", "is not a swap the report makes")
                checker.swap(sub, iname, iargs[0])
        elif to in (x.token0, x.token1):
            name, args = _decode("token", call.data, label)
            if name != "approve":
                raise _fail(
                    label,
                    f"{name} on {to}",
                    "function",
                    "is not in the report (a rebalance "
                    "only approves the position manager or the router)",
                )
            checker.approve(label, to, args[0], args[1])
        elif mod is not None and to == mod:
            name, args = _decode("module", call.data, label)
            module_call(label, name, args)
        else:
            raise _fail(label, "call", "to", f"{to} is no contract of the report")

    def module_call(label: str, name: str, args: tuple[Any, ...]) -> None:
        if name == "execute":
            for k, inner in enumerate(args[0], 1):
                sub = f"{label}.{k}"
                iname, iargs = _decode("module", inner, sub)
                if iname == "execute":
                    raise _fail(sub, iname, "function", "nests execute")
                module_call(sub, iname, iargs)
        elif name == "swapExactInputSingle":
            checker.swap(label, name, args[0])
            checker.deadline(label, name, args[1])
        elif name == "approve":
            checker.approve(label, args[0], args[1], args[2])
        else:
            checker.liquidity_call(label, name, args)

    for i, call in enumerate(calls, 1):
        one(str(i), call)
    if listed is not None:
        if len(listed) != len(calls):
            raise Refused(
                f"the transaction makes {len(calls)} calls, the report lists {len(listed)}"
            )
        for i, (call, want) in enumerate(zip(calls, listed, strict=True), 1):
            data = str(want.get("data", "0x"))
            same = (
                to_checksum_address(call.to) == to_checksum_address(str(want.get("to")))
                and call.data == bytes.fromhex(data[2:] if data.startswith("0x") else data)
                and call.value == int(want.get("value", 0))
            )
            if not same:
                raise Refused(
                    f"call {i} ({want.get('label', 'call')}): differs from the report's call {i}"
                )
    return len(calls)


def calls_of_safe_tx(
    to: str, data: bytes, value: int, operation: int, multisend: str | None
) -> list[InnerCall]:
    """A SafeTx's calls: MultiSendCallOnly's packed calls, or the one call it makes."""
    if operation == DELEGATECALL:
        if multisend is None or to_checksum_address(to) != to_checksum_address(multisend):
            raise Refused(f"SafeTx: delegatecall to {to}, which is not MultiSendCallOnly")
        if value != 0:
            raise Refused("SafeTx: a MultiSend with value")
        name, args = _decode("multisend", data, "0")
        del name
        return unpack_multisend(args[0])
    return [InnerCall(CALL, to, value, data)]
