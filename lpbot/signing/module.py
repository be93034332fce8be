"""Rebalancing through LPRebalanceModule: one operator transaction, no owner signatures.

The module (``contracts/src/LPRebalanceModule.sol``) lets the operator key make the Safe call
only the position manager and the router, on allow-listed pools, within the Safe's limits. A plan
becomes one ``execute(bytes[])`` call whose items are the module's own entry points; the module
builds the target calls itself, so the operator cannot name other targets. The dry-run runs the
same call on a snapshot; a call the module refuses fails there, by its named error, before
anything is signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    """The plan as the module's entry points: decrease, collect, burn, approvals, swap, mint."""
    module = Web3().eth.contract(abi=artifacts.abi("LPRebalanceModule"))
    a = plan.amounts

    def call(fn: str, *args: Any) -> bytes:
        return bytes.fromhex(module.encode_abi(fn_name=fn, args=list(args))[2:])

    calls = [
        call(
            "decreaseLiquidity",
            (plan.token_id, plan.old_liquidity, a.decrease_min0, a.decrease_min1, plan.deadline),
        ),
        call("collect", (plan.token_id, plan.safe, MAX_UINT128, MAX_UINT128)),
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
                (token_in, token_out, plan.fee, plan.safe, a.swap_in, a.swap_out_min, 0),
            )
        )
    calls.append(call("approve", plan.token0, plan.position_manager, a.mint0))
    calls.append(call("approve", plan.token1, plan.position_manager, a.mint1))
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
