"""The pre-flight: right before a rebalance is signed and again right before it is sent, check it
against the chain's latest block; one that would revert is never sent.

Three checks, cheapest first:

1. The staleness bound (policy): the report recorded the pool state it assumed (sqrt price,
   tick, TWAP); if the price has moved since by more than a configured share of the slippage
   tolerance, the report is stale before anything is simulated.
2. Before signing: the exact calls the Safe will make run by ``eth_call`` at ``latest``. For a
   Safe transaction, Safe's ``simulateAndRevert`` (StorageAccessible, Safe 1.4.1) delegatecalls
   MultiSendCallOnly in the Safe's own context, so every inner call has the Safe as sender, as it
   will when executed; the module call runs from the operator.
3. Before sending: the exact transaction (``from`` the real sender, the signatures in its data)
   by ``eth_call`` and ``eth_estimateGas`` at ``latest``; the estimate is the gas limit's base.

A revert is decoded (``decode_revert``: Uniswap's reason strings, Safe's GS0xx codes, the
module's custom errors, Solidity panics). MultiSendCallOnly drops an inner call's revert data,
so the inner reason is looked up with ``debug_traceCall`` (callTracer) where the node serves it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.types import RPCEndpoint

from lpbot.chain import artifacts
from lpbot.errors import Refused, RetryLater

log = logging.getLogger(__name__)

ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)

# Safe 1.4.1 docs/error_codes.md
SAFE_ERRORS = {
    "GS000": "could not finish initialization",
    "GS001": "threshold needs to be defined",
    "GS010": "not enough gas to execute the Safe transaction",
    "GS011": "could not pay gas costs with ether",
    "GS012": "could not pay gas costs with token",
    "GS013": "the Safe transaction failed (an inner call reverted; safeTxGas and gasPrice are 0)",
    "GS020": "signatures data too short",
    "GS021": "invalid contract signature location: inside static part",
    "GS022": "invalid contract signature location: length not present",
    "GS023": "invalid contract signature location: data not complete",
    "GS024": "invalid contract signature provided",
    "GS025": "hash has not been approved",
    "GS026": "invalid owner provided (a signature of a non-owner, or out of order)",
    "GS030": "only owners can approve a hash",
    "GS031": "method can only be called from this contract",
    "GS100": "modules have already been initialized",
    "GS101": "invalid module address provided",
    "GS102": "module has already been added",
    "GS103": "invalid prevModule, module pair provided",
    "GS104": "method can only be called from an enabled module",
    "GS200": "owners have already been set up",
    "GS201": "threshold cannot exceed owner count",
    "GS202": "threshold needs to be greater than 0",
    "GS203": "invalid owner address provided",
    "GS204": "address is already an owner",
    "GS205": "invalid prevOwner, owner pair provided",
}

# v3-core and v3-periphery reason strings
UNISWAP_REASONS = {
    "Price slippage check": "a liquidity change's minimum amounts were not met (decrease, mint "
    "or increase)",
    "Too little received": "the swap's minimum output was not met",
    "Too much requested": "the swap's maximum input was exceeded",
    "Transaction too old": "the deadline has passed",
    "STF": "a token transferFrom failed (balance or allowance)",
    "ST": "a token transfer failed",
    "SA": "a token approve failed",
    "Not approved": "the caller may not manage this position",
    "Not cleared": "the position still has liquidity or tokens owed",
    "Invalid token ID": "no such position",
    "LOK": "the pool is locked (reentrancy)",
    "TLU": "tickLower >= tickUpper",
    "TLM": "tickLower below the minimum tick",
    "TUM": "tickUpper above the maximum tick",
    "AS": "a swap of zero",
    "SPL": "the swap's sqrt price limit is on the wrong side of the price",
    "M0": "the pool did not receive token0",
    "M1": "the pool did not receive token1",
    "IIA": "insufficient input amount",
    "LS": "liquidity would underflow",
    "LA": "liquidity would exceed the maximum per tick",
    "T": "a tick out of range",
}

PANICS = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialised function",
}


def _module_errors() -> dict[bytes, tuple[str, list[str]]]:
    errors: dict[bytes, tuple[str, list[str]]] = {}
    for entry in artifacts.abi("LPRebalanceModule"):
        if entry["type"] == "error":
            types = [i["type"] for i in entry["inputs"]]
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            errors[selector] = (entry["name"], types)
    return errors


_MODULE_ERRORS: dict[bytes, tuple[str, list[str]]] | None = None


def _explain(reason: str) -> str:
    known = SAFE_ERRORS.get(reason) or UNISWAP_REASONS.get(reason)
    return f"'{reason}' ({known})" if known else f"'{reason}'"


def decode_revert(data: bytes) -> str:
    """A revert's return data as a sentence that keeps the contract's own code.

    ``Error(string)`` (Uniswap's strings, Safe's GS0xx codes), ``Panic(uint256)``, and the
    rebalance module's custom errors (``CallFailed(bytes)`` is decoded down to the inner revert).
    """
    global _MODULE_ERRORS
    if not data:
        return "reverted without a reason"
    selector, body = data[:4], data[4:]
    try:
        if selector == ERROR_STRING:
            (reason,) = decode(["string"], body)
            return _explain(str(reason))
        if selector == PANIC:
            (code,) = decode(["uint256"], body)
            return f"panic 0x{code:02x} ({PANICS.get(code, 'unknown panic')})"
        if _MODULE_ERRORS is None:
            _MODULE_ERRORS = _module_errors()
        if selector in _MODULE_ERRORS:
            name, types = _MODULE_ERRORS[selector]
            args = decode(types, body) if types else ()
            if name == "CallFailed":
                return f"module CallFailed: {decode_revert(bytes(args[0]))}"
            shown = ", ".join("0x" + a.hex() if isinstance(a, bytes) else str(a) for a in args)
            return f"module {name}({shown})"
    except DecodingError:
        pass
    return f"reverted with data 0x{data.hex()}"


def _hex(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value or "")
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What ``eth_call`` (and ``eth_estimateGas``) said of one call at ``latest``."""

    ok: bool
    revert_data: bytes = b""
    message: str = ""
    gas_estimate: int | None = None
    output: bytes = b""

    @property
    def reason(self) -> str:
        if self.revert_data:
            return decode_revert(self.revert_data)
        return self.message or "reverted without a reason"


def _call_object(sender: str, to: str, data: bytes, gas: int | None = None) -> dict[str, str]:
    call = {
        "from": to_checksum_address(sender),
        "to": to_checksum_address(to),
        "data": "0x" + data.hex(),
    }
    if gas is not None:
        call["gas"] = hex(gas)
    return call


def _request(w3: Web3, method: str, params: list[Any]) -> dict[str, Any]:
    try:
        response: Any = w3.provider.make_request(RPCEndpoint(method), params)
    except (OSError, Web3Exception) as exc:  # the type only: the text may hold the RPC URL
        raise RetryLater(f"{method} failed ({type(exc).__name__}); retry later") from exc
    return dict(response)


def _is_revert(error: dict[str, Any]) -> bool:
    message = str(error.get("message", "")).lower()
    return error.get("code") == 3 or "revert" in message or "out of gas" in message


def fetch_call_outcome(
    w3: Web3,
    sender: str,
    to: str,
    data: bytes,
    *,
    gas: int | None = None,
    estimate: bool = True,
    block: int | None = None,
) -> CallOutcome:
    """``eth_call`` at ``latest`` (or ``block``) from ``sender``, then ``eth_estimateGas`` if it
    succeeded."""
    call = _call_object(sender, to, data, gas)
    at = "latest" if block is None else hex(block)
    response = _request(w3, "eth_call", [call, at])
    error = response.get("error")
    if error:
        if not _is_revert(error):
            raise RetryLater(f"eth_call failed: {error}")
        return CallOutcome(False, _hex(error.get("data")), str(error.get("message", "")))
    output = _hex(response.get("result"))
    if not estimate:
        return CallOutcome(True, output=output)
    # at ``latest`` too: a node's default (``pending``) would include our own pending one
    estimate_call = {k: v for k, v in call.items() if k != "gas"}
    response = _request(w3, "eth_estimateGas", [estimate_call, at])
    error = response.get("error")
    if error:
        if not _is_revert(error):
            raise RetryLater(f"eth_estimateGas failed: {error}")
        return CallOutcome(False, _hex(error.get("data")), str(error.get("message", "")))
    return CallOutcome(True, gas_estimate=int(str(response["result"]), 16), output=output)


@dataclass(frozen=True, slots=True)
class FailedCall:
    """The innermost call that reverted with a reason, from a trace."""

    to: str
    input: bytes
    reason: str


def fetch_inner_reason(w3: Web3, sender: str, to: str, data: bytes) -> FailedCall | None:
    """The deepest reverting call's reason from ``debug_traceCall`` (callTracer), or None when
    the node does not serve it. MultiSendCallOnly reverts with no data; the call inside it that
    failed kept its reason in the trace."""
    response = _request(
        w3, "debug_traceCall", [_call_object(sender, to, data), "latest", {"tracer": "callTracer"}]
    )
    if response.get("error") or not isinstance(response.get("result"), dict):
        return None

    def deepest(frame: dict[str, Any]) -> dict[str, Any] | None:
        for child in frame.get("calls") or []:
            found = deepest(child)
            if found is not None:
                return found
        if frame.get("error") and _hex(frame.get("output")):
            return frame
        return None

    frame = deepest(response["result"])
    if frame is None:
        return None
    return FailedCall(
        str(frame.get("to", "")), _hex(frame.get("input")), decode_revert(_hex(frame["output"]))
    )


def simulate_safe_calls(
    w3: Web3, safe: str, to: str, data: bytes, sender: str, *, operation: int = 1
) -> CallOutcome:
    """The Safe transaction's inner calls, run in the Safe's context by ``simulateAndRevert``.

    StorageAccessible.simulateAndRevert(target, payload) delegatecalls ``target`` and always
    reverts with ``abi.encode(success, returndatasize) ++ returndata`` (Safe 1.4.1). A SafeTx
    with ``operation`` CALL (0: one call, no MultiSend) is the Safe calling ``to``: an
    ``eth_call`` from the Safe's address, never a delegatecall of it.
    """
    if operation == 0:
        return fetch_call_outcome(w3, safe, to, data, estimate=False)
    safe_c = w3.eth.contract(address=to_checksum_address(safe), abi=artifacts.abi("SafeL2"))
    call = bytes.fromhex(
        safe_c.encode_abi(fn_name="simulateAndRevert", args=[to_checksum_address(to), data])[2:]
    )
    outcome = fetch_call_outcome(w3, sender, safe, call, estimate=False)
    raw = outcome.revert_data if not outcome.ok else outcome.output
    if len(raw) < 64:
        return CallOutcome(False, raw, outcome.message or "simulateAndRevert answered nothing")
    success = int.from_bytes(raw[:32], "big") == 1
    inner = raw[64:]
    if success:
        return CallOutcome(True, output=inner)
    return CallOutcome(False, inner, "an inner call reverted")


@dataclass(frozen=True, slots=True)
class PoolNow:
    """The pool as it is at ``latest``."""

    block: int
    sqrt_price_x96: int
    tick: int
    twap_tick: int | None
    liquidity: int


def fetch_pool_now(w3: Web3, pool: str, twap_seconds: int) -> PoolNow:
    """slot0, the in-range liquidity and the TWAP tick over ``twap_seconds`` (None when the
    pool's oracle cannot answer that far back)."""
    c = w3.eth.contract(address=to_checksum_address(pool), abi=artifacts.abi("UniswapV3Pool"))
    block = w3.eth.block_number
    slot0 = c.functions.slot0().call(block_identifier=block)
    liquidity = c.functions.liquidity().call(block_identifier=block)
    twap: int | None = None
    try:
        cumulatives = c.functions.observe([twap_seconds, 0]).call(block_identifier=block)[0]
        twap = (cumulatives[1] - cumulatives[0]) // twap_seconds  # floor, as OracleLibrary
    except Web3Exception:
        twap = None
    return PoolNow(block, int(slot0[0]), int(slot0[1]), twap, int(liquidity))


def price_move_bps(sqrt_then_x96: int, sqrt_now_x96: int) -> Fraction:
    """|price now / price then - 1| in basis points, exact (price = sqrt price squared)."""
    then, now = sqrt_then_x96**2, sqrt_now_x96**2
    return Fraction(abs(now - then) * 10_000, then)


@dataclass(frozen=True, slots=True)
class Drift:
    """What changed between the report and ``latest``: shown with every pre-flight refusal."""

    report_block: int
    block: int
    price_move_bps: Fraction
    bound_bps: Fraction
    tick_then: int
    tick_now: int
    twap_deviation_then_bps: float | None  # analytics float, labelled
    twap_deviation_now_bps: float | None
    liquidity_then: int | None
    liquidity_now: int
    balances_then: dict[str, int] = field(default_factory=dict)
    balances_now: dict[str, int] = field(default_factory=dict)
    nonce_then: int | None = None
    nonce_now: int | None = None

    def lines(self, symbols: dict[str, str] | None = None) -> list[str]:
        symbols = symbols or {}
        out = [
            f"price moved {float(self.price_move_bps):.2f} bps since the report "
            f"(block {self.report_block} -> {self.block}; the policy allows "
            f"{float(self.bound_bps):.2f} bps)",
            f"tick {self.tick_then} -> {self.tick_now}",
        ]
        if self.twap_deviation_now_bps is not None:
            then = (
                "?"
                if self.twap_deviation_then_bps is None
                else f"{self.twap_deviation_then_bps:.1f}"
            )
            out.append(f"spot vs TWAP {then} -> {self.twap_deviation_now_bps:.1f} bps")
        then_l = "?" if self.liquidity_then is None else f"{self.liquidity_then:,}"
        out.append(f"pool liquidity {then_l} -> {self.liquidity_now:,}")
        for token, now in self.balances_now.items():
            then_b = self.balances_then.get(token)
            name = symbols.get(token, token)
            out.append(f"Safe {name} balance {'?' if then_b is None else f'{then_b:,}'} -> {now:,}")
        if self.nonce_now is not None:
            out.append(f"Safe nonce {self.nonce_then} -> {self.nonce_now}")
        return out


def twap_deviation_bps(tick: int, twap_tick: int | None) -> float | None:
    """Spot vs TWAP in bps (analytics float): 1.0001 ** (tick - twap_tick) - 1."""
    if twap_tick is None:
        return None
    return float(abs(1.0001 ** (tick - twap_tick) - 1) * 10_000)


class PreflightRefused(Refused):
    """The pre-flight found that the rebalance would revert now, or that its report is stale;
    nothing was sent. ``lpbot rebalance replan ID`` writes a new report."""

    def __init__(self, reason: str, drift: Drift | None, lines: list[str] | None = None) -> None:
        self.reason = reason
        self.drift = drift
        detail = lines if lines is not None else (drift.lines() if drift else [])
        super().__init__("\n  ".join([reason, *detail]))


def gas_limit(estimate: int, fork_gas_used: int, margin_bps: int) -> int:
    """The gas limit to sign: the larger of the live estimate and the dry-run's gas used, plus
    ``margin_bps`` (rounded up). Never a constant."""
    if margin_bps < 0:
        raise Refused(f"gas margin must be >= 0 bps, got {margin_bps}")
    base = max(estimate, fork_gas_used)
    return -(-base * (10_000 + margin_bps) // 10_000)
