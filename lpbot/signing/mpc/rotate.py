"""Rotating the MPC Safe owner: a new key, and the Safe's owner swapped from the old one to it.

The DKLs23 build lpbot runs exports no share refresh (its ``re_key`` re-shares a key someone
holds whole, which the custody model forbids), and no permissively licensed threshold-ECDSA
library on npm or PyPI refreshes either. So a share that may have leaked is retired by rotation:

1. ``plan``: generate a new key among the new parties (``lpbot mpc keygen``'s rules: one share per
   host unless ``insecure_single_host``); build the Safe transaction
   ``swapOwner(prevOwner, old, new)`` (Safe 1.4.1 ``OwnerManager``, a CALL from the Safe to
   itself); dry-run it in the Safe's context (``simulateAndRevert``) and write its report
   (kind ``owner_rotation``), bound to the SafeTx hash.
2. ``execute``: the report unchanged and the Safe's nonce and owners as planned; the owners'
   signatures (the old MPC owner through its co-signer, with a signed approval of this report;
   keystores; signature files) up to the threshold; ``execTransaction`` sent, its receipt waited
   for, and the owners read back: the new address in, the old one out. Run again once its
   swap is mined (after a kill or a lost reply), it reports that swap and sends nothing; while
   a transaction of the sender is pending, it signs nothing.

After it, a signature by the old key recovers to an address that is no owner, and the Safe
refuses it (``GS026``): the old shares are useless for the Safe.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3

from lpbot.chain import artifacts
from lpbot.errors import ConfigError, NeedsAttention, Refused
from lpbot.report.dryrun import canonical_hash, verify
from lpbot.signing.base import Signer
from lpbot.signing.safe import (
    CALL,
    OwnerSignature,
    ReportSigner,
    SafeTransaction,
    combine,
    exec_transaction_data,
    read_signature_file,
    sign,
)

SENTINEL_OWNERS = "0x0000000000000000000000000000000000000001"
SWAP_OWNER_SELECTOR = "0xe318b52b"  # swapOwner(address,address,address)
KIND = "owner_rotation"


def prev_owner(owners: Sequence[str], owner: str) -> str:
    """The owner before ``owner`` in the Safe's linked list (``swapOwner``'s ``prevOwner``);
    the sentinel for the first."""
    lowered = [o.lower() for o in owners]
    if owner.lower() not in lowered:
        raise Refused(f"{owner} is not an owner of the Safe")
    i = lowered.index(owner.lower())
    return SENTINEL_OWNERS if i == 0 else to_checksum_address(owners[i - 1])


def _safe(w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=to_checksum_address(address), abi=artifacts.abi("SafeL2"))


def plan_rotation(
    w3: Web3, *, chain_id: int, safe: str, old: str, new: str, reports_dir: Path
) -> dict[str, Any]:
    """The swap of owner ``old`` for ``new`` as a Safe transaction, dry-run; its report written
    (``<reports_dir>/<report_id>.json``) and returned."""
    from lpbot.execution.preflight import simulate_safe_calls

    old, new = to_checksum_address(old), to_checksum_address(new)
    contract = _safe(w3, safe)
    owners = [to_checksum_address(o) for o in contract.functions.getOwners().call()]
    threshold = int(contract.functions.getThreshold().call())
    if new in owners:
        raise Refused(f"{new} is already an owner of the Safe {safe}")
    prev = prev_owner(owners, old)
    data = bytes.fromhex(contract.encode_abi(fn_name="swapOwner", args=[prev, old, new])[2:])
    tx = SafeTransaction(
        chain_id, safe, safe, 0, data, CALL, int(contract.functions.nonce().call())
    )
    # swapOwner is `authorized` (msg.sender == the Safe): run in the Safe's context, from it
    outcome = simulate_safe_calls(w3, safe, safe, data, safe)
    after = [new if o == old else o for o in owners]
    block = w3.eth.get_block("latest")
    body: dict[str, Any] = {
        "kind": KIND,
        "chain_id": chain_id,
        "safe": to_checksum_address(safe),
        "created_at": time.time(),
        "block": int(block["number"]),
        "old_owner": old,
        "new_owner": new,
        "owners_before": owners,
        "owners_after": after,
        "threshold": threshold,
        "safe_tx": tx.to_json(),
        "calls": [
            {
                "label": "swapOwner",
                "to": to_checksum_address(safe),
                "data": "0x" + data.hex(),
                "value": 0,
            }
        ],
        "checks": [
            {
                "name": "simulation",
                "ok": outcome.ok,
                "detail": "swapOwner runs in the Safe's context"
                if outcome.ok
                else f"swapOwner would revert: {outcome.reason}",
            }
        ],
    }
    report_hash = canonical_hash(body)
    report = {**body, "report_hash": report_hash, "report_id": f"rotate-{report_hash[2:14]}"}
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"{report['report_id']}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if not outcome.ok:
        raise Refused(f"the owner swap would revert: {outcome.reason}; report {path}")
    return report


def read_rotation(reports_dir: Path, report_id: str) -> dict[str, Any]:
    path = reports_dir / f"{report_id}.json"
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"rotation report {path}: {exc}") from None
    verify(report)
    if report.get("kind") != KIND:
        raise Refused(f"report {report_id} is not an owner rotation")
    return report


def execute_rotation(
    w3: Web3,
    report: dict[str, Any],
    *,
    sender: Signer,
    signers: Sequence[Signer] = (),
    signature_files: Sequence[Path] = (),
    send: Callable[[str, bytes], Any] | None = None,
) -> dict[str, Any]:
    """Sign (the old MPC owner first, through its co-signer), send ``execTransaction`` and
    check the owners. Refused when the Safe moved since the report (nonce or owners).

    ``send(to, data)`` sends and returns the receipt: the CLI's records the transaction and
    takes its nonce from the store's nonce manager (``service.send_recorded_call``)."""
    tx = SafeTransaction.from_json(report["safe_tx"])
    contract = _safe(w3, tx.safe)
    owners = [to_checksum_address(o) for o in contract.functions.getOwners().call()]
    nonce = int(contract.functions.nonce().call())
    if nonce > tx.nonce and owners == report["owners_after"]:
        # run again after the swap was sent (a kill, a lost reply): it took effect
        receipt = _executed(w3, contract, tx, int(report["block"]))
        if receipt is not None:
            return {**_swapped(contract, report, receipt, []), "already_done": True}
    if nonce != tx.nonce or owners != report["owners_before"]:
        raise Refused("the Safe changed since the rotation was planned: plan it again")
    executor = to_checksum_address(sender.address)
    if w3.eth.get_transaction_count(executor, "pending") > w3.eth.get_transaction_count(
        executor, "latest"
    ):
        # the swap sent by a run that was killed may be among them: no second signature
        raise NeedsAttention(
            f"a transaction from {executor} is pending (the owner swap sent before?): wait "
            "until it is mined, then run this again"
        )
    threshold = int(contract.functions.getThreshold().call())
    ordered = sorted(signers, key=lambda s: not isinstance(s, ReportSigner))
    collected: list[OwnerSignature] = [sign(tx, s, report) for s in ordered if s.address in owners]
    collected += [read_signature_file(p, tx, owners) for p in signature_files]
    signatures = combine(collected, threshold)
    data = exec_transaction_data(tx, signatures)
    if send is not None:
        receipt = send(tx.safe, data)
        return _swapped(contract, report, receipt, collected)
    call = {"from": sender.address, "to": tx.safe, "data": "0x" + data.hex()}
    gas = int(w3.eth.estimate_gas(call))  # type: ignore[arg-type]
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tip = int(w3.eth.max_priority_fee)
    signed = sender.sign_transaction(
        {
            "type": 2,
            "chainId": tx.chain_id,
            "nonce": w3.eth.get_transaction_count(to_checksum_address(sender.address), "pending"),
            "to": to_checksum_address(tx.safe),
            "value": 0,
            "data": data,
            "gas": gas * 12 // 10,
            "maxFeePerGas": 2 * base + tip,
            "maxPriorityFeePerGas": tip,
        }
    )
    tx_hash = w3.eth.send_raw_transaction(signed.raw)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=300)
    return _swapped(contract, report, receipt, collected)


def _executed(w3: Web3, contract: Any, tx: SafeTransaction, since_block: int) -> Any | None:
    """The receipt of the Safe's execution of ``tx`` (its ``ExecutionSuccess``), if mined."""
    want = tx.safe_tx_hash
    for entry in contract.events.ExecutionSuccess().get_logs(fromBlock=since_block):
        if bytes(entry["args"]["txHash"]) == want:
            return w3.eth.get_transaction_receipt(entry["transactionHash"])
    return None


def _swapped(
    contract: Any, report: dict[str, Any], receipt: Any, collected: list[OwnerSignature]
) -> dict[str, Any]:
    """The swap's outcome, checked against the Safe's owners now."""
    tx_hash = bytes(receipt["transactionHash"])
    now = [to_checksum_address(o) for o in contract.functions.getOwners().call()]
    if receipt["status"] != 1 or report["new_owner"] not in now or report["old_owner"] in now:
        raise NeedsAttention(
            f"the owner swap {tx_hash.hex()} did not take effect (status {receipt['status']}); "
            f"the Safe's owners are {now}"
        )
    return {
        "tx_hash": "0x" + bytes(tx_hash).hex(),
        "block": int(receipt["blockNumber"]),
        "owners": now,
        "signed_by": sorted(s.owner for s in collected),
    }
