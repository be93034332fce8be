"""Rebalancing through LPRebalanceModule: one operator transaction, no owner signatures.

The module (``contracts/src/LPRebalanceModule.sol``) lets the operator key make the Safe call
only the position manager and the router, on allow-listed pools, within the Safe's limits and
within a loss budget the owners set: every call is valued at the pool's TWAP, and what the Safe
gives up beyond what it gets is charged to a per-call and a rolling 24-hour budget. A plan
becomes one ``execute(bytes[])`` call whose items are the module's own entry points; the module
builds the target calls itself, so the operator cannot name other targets. The dry-run runs the
same call on a snapshot; a call the module refuses fails there, by its named error decoded from
the module's ABI (``CallLossBudgetExceeded(loss=..., budget=...)``), before anything is signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.chain import artifacts
from lpbot.errors import Refused
from lpbot.execution.plan import MAX_UINT128, RebalancePlan


@dataclass(frozen=True, slots=True)
class ModuleTransaction:
    """The operator's call to the module; its hash binds the dry-run report to the calldata."""

    chain_id: int
    module: str
    operator: str
    data: bytes

    @property
    def tx_hash(self) -> bytes:
        """keccak256(chainId ++ module ++ operator ++ keccak256(calldata))."""
        return keccak(
            self.chain_id.to_bytes(32, "big")
            + bytes.fromhex(self.module[2:])
            + bytes.fromhex(self.operator[2:])
            + keccak(self.data)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "module": self.module,
            "operator": self.operator,
            "data": "0x" + self.data.hex(),
            "module_tx_hash": "0x" + self.tx_hash.hex(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModuleTransaction:
        tx = cls(int(d["chain_id"]), str(d["module"]), str(d["operator"]),
                 bytes.fromhex(str(d["data"])[2:]))  # fmt: skip
        if "0x" + tx.tx_hash.hex() != d.get("module_tx_hash"):
            raise Refused("the module transaction does not hash to the recorded hash")
        return tx


def module_calls(plan: RebalancePlan) -> list[bytes]:
    """The plan as the module's entry points: decrease, collect, burn, approvals, swap, mint;
    for a compound: collect, approvals, swap, increaseLiquidity; for a withdraw: decrease and
    collect. An open is refused here: new
    capital goes in through the owners' Safe transaction."""
    if plan.kind == "open":
        raise Refused("opening a position goes through the owners' Safe, not the module")
    module = Web3().eth.contract(abi=artifacts.abi("LPRebalanceModule"))
    a = plan.amounts

    def call(fn: str, *args: Any) -> bytes:
        return bytes.fromhex(module.encode_abi(fn_name=fn, args=list(args))[2:])

    calls = [call("collect", (plan.token_id, plan.safe, MAX_UINT128, MAX_UINT128))]
    if plan.kind == "withdraw":
        # decrease all (counted as a rebalance, its minimums checked, its loss charged at the
        # reference price) and collect to the Safe; the emptied NFT is kept
        decrease = (plan.token_id, plan.old_liquidity, a.decrease_min0, a.decrease_min1)
        return [call("decreaseLiquidity", (*decrease, plan.deadline)), *calls]
    if plan.kind == "rebalance":
        calls = [
            call(
                "decreaseLiquidity",
                (
                    plan.token_id,
                    plan.old_liquidity,
                    a.decrease_min0,
                    a.decrease_min1,
                    plan.deadline,
                ),
            ),
            *calls,
            call("burn", plan.token_id),
        ]
    if a.swap_zero_for_one is not None:
        token_in, token_out = (
            (plan.token0, plan.token1) if a.swap_zero_for_one else (plan.token1, plan.token0)
        )
        calls.append(call("approve", token_in, plan.router, a.swap_in))
        calls.append(
            call(
                "swapExactInputSingle",
                (
                    token_in,
                    token_out,
                    plan.fee,
                    plan.safe,
                    a.swap_in,
                    a.swap_out_min,
                    a.swap_sqrt_price_limit_x96,
                ),
                plan.deadline,  # the router's params carry none; the module checks this one
            )
        )
    calls.append(call("approve", plan.token0, plan.position_manager, a.mint0))
    calls.append(call("approve", plan.token1, plan.position_manager, a.mint1))
    if plan.kind == "compound":
        increase = (plan.token_id, a.mint0, a.mint1, a.mint_min0, a.mint_min1, plan.deadline)
        calls.append(call("increaseLiquidity", increase))
        return calls
    calls.append(
        call(
            "mint",
            (
                plan.token0,
                plan.token1,
                plan.fee,
                plan.new_range[0],
                plan.new_range[1],
                a.mint0,
                a.mint1,
                a.mint_min0,
                a.mint_min1,
                plan.safe,
                plan.deadline,
            ),
        )
    )
    return calls


def build_module_transaction(
    plan: RebalancePlan, *, module: str, operator: str
) -> ModuleTransaction:
    c = Web3().eth.contract(abi=artifacts.abi("LPRebalanceModule"))
    data = bytes.fromhex(c.encode_abi(fn_name="execute", args=[module_calls(plan)])[2:])
    return ModuleTransaction(
        plan.chain_id, to_checksum_address(module), to_checksum_address(operator), data
    )


# ------------------------------------------------------------------ refusals and budgets --

# the module's loss is counted in units of 1e-8 of the Safe's value in the pool: 1 bp = 10_000
LOSS_UNITS_PER_BPS = 10_000


def _error_signatures() -> dict[bytes, tuple[str, list[str], list[str]]]:
    out: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for item in artifacts.abi("LPRebalanceModule"):
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        names = [i["name"] for i in item["inputs"]]
        selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
        out[selector] = (item["name"], types, names)
    return out


def decode_module_error(data: bytes) -> str | None:
    """The module's named error in ``data`` as ``Name(arg=value, ...)``; None if it is not one.
    Addresses are shown checksummed (``AnchorDeviates(pool=0x1B8d…, anchorTick=…)``).

    ``CallFailed`` carries the inner call's revert data; an ``Error(string)`` in it is shown
    as its text (the position manager's ``Price slippage check``, the router's ``Too little
    received``)."""
    sig = _error_signatures().get(bytes(data[:4]))
    if sig is None:
        return None
    name, types, names = sig
    try:
        values = abi_decode(types, bytes(data[4:]))
    except Exception:  # malformed arguments: still say which error it was
        return name
    shown = []
    for n, t, v in zip(names, types, values, strict=True):
        if t == "bytes":
            v = _inner_reason(v)
        elif t == "address":
            v = to_checksum_address(v)
        shown.append(f"{n}={v}")
    return f"{name}({', '.join(shown)})"


def _inner_reason(data: bytes) -> str:
    if data[:4] == bytes.fromhex("08c379a0"):
        try:
            (text,) = abi_decode(["string"], data[4:])
            return repr(text)
        except Exception:
            pass
    return "0x" + data.hex()


def module_revert_reason(w3: Web3, module_tx: ModuleTransaction) -> str:
    """Replay the operator's call (eth_call) and name the module's refusal, decoded."""
    try:
        w3.eth.call(
            {"from": module_tx.operator, "to": module_tx.module, "data": module_tx.data},
            block_identifier="latest",
        )
    except Exception as exc:  # web3 raises several exception types for a revert
        data = _revert_data(exc)
        decoded = decode_module_error(data) if data else None
        return f"the module refused: {decoded}" if decoded else str(exc)
    return "reverted"


def _revert_data(exc: Exception) -> bytes | None:
    for candidate in (getattr(exc, "data", None), *exc.args):
        if isinstance(candidate, bytes):
            return candidate
        if isinstance(candidate, str) and candidate.startswith("0x"):
            try:
                return bytes.fromhex(candidate[2:])
            except ValueError:
                continue
    return None


@dataclass(frozen=True, slots=True)
class ModuleBounds:
    """What the owners set on the module (read from chain); budgets in bps of the Safe's value."""

    loss_budget_per_call_bps: int
    loss_budget_per_day_bps: int
    slippage_bps: int
    min_range_width: int
    max_deadline_horizon: int
    twap_window: int
    max_price_deviation_bps: int
    max_observation_age: int
    max_rebalances_per_day: int
    min_rebalance_interval: int
    max_swap_share_bps: int
    paused: bool
    rebalances_in_window: int
    loss_in_window_bps: float  # analytics: units / 10_000, shown to two decimals

    def lines(self) -> list[str]:
        return [
            f"loss budget: {self.loss_budget_per_call_bps} bps per call, "
            f"{self.loss_budget_per_day_bps} bps per 24 h "
            f"(used: {self.loss_in_window_bps:.2f} bps by {self.rebalances_in_window} rebalances)",
            f"minimums: within {self.slippage_bps} bps of the TWAP amounts; ranges >= "
            f"{self.min_range_width} ticks around the TWAP; deadlines <= "
            f"{self.max_deadline_horizon} s ahead",
            f"price: spot within {self.max_price_deviation_bps} ticks of a "
            f"{self.twap_window} s TWAP (spot valued too after {self.max_observation_age} s "
            "without an observation)",
            f"rate: {self.max_rebalances_per_day} per 24 h, {self.min_rebalance_interval} s apart, "
            f"swaps <= {self.max_swap_share_bps} bps of holdings"
            + ("; PAUSED by an owner" if self.paused else ""),
        ]


def fetch_module_bounds(w3: Web3, module: str) -> ModuleBounds:
    c = w3.eth.contract(address=to_checksum_address(module), abi=artifacts.abi("LPRebalanceModule"))
    f = c.functions
    count, loss = f.window().call()
    return ModuleBounds(
        loss_budget_per_call_bps=f.lossBudgetPerCallBps().call(),
        loss_budget_per_day_bps=f.lossBudgetPerDayBps().call(),
        slippage_bps=f.slippageBps().call(),
        min_range_width=f.minRangeWidth().call(),
        max_deadline_horizon=f.maxDeadlineHorizon().call(),
        twap_window=f.twapWindow().call(),
        max_price_deviation_bps=f.maxPriceDeviationBps().call(),
        max_observation_age=f.maxObservationAge().call(),
        max_rebalances_per_day=f.maxRebalancesPerDay().call(),
        min_rebalance_interval=f.minRebalanceInterval().call(),
        max_swap_share_bps=f.maxSwapShareBps().call(),
        paused=f.paused().call(),
        rebalances_in_window=count,
        loss_in_window_bps=loss / LOSS_UNITS_PER_BPS,
    )


def budget_mismatches(
    bounds: ModuleBounds,
    *,
    per_call_bps: int | None,
    per_day_bps: int | None,
    where: str = "signer.module",
) -> list[str]:
    """Where lpbot.toml's module budgets (``where``: [signer.module], or a chain's own
    [chains.NAME.module]) differ from what the owners set on chain."""
    out = []
    if per_call_bps is not None and per_call_bps != bounds.loss_budget_per_call_bps:
        out.append(
            f"{where}.loss_budget_per_call_bps = {per_call_bps}, but the module's owners "
            f"set {bounds.loss_budget_per_call_bps}"
        )
    if per_day_bps is not None and per_day_bps != bounds.loss_budget_per_day_bps:
        out.append(
            f"{where}.loss_budget_per_day_bps = {per_day_bps}, but the module's owners "
            f"set {bounds.loss_budget_per_day_bps}"
        )
    return out
