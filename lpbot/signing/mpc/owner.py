"""``CosignerOwner``: a Safe owner whose key the co-signer process holds (``mode = "key"``).

The default way to get a policy co-signer without MPC: the co-signer has its own owner key, and
signs a SafeTx hash (or a transaction) only with the dry-run report and a signed approval that
its policy accepts. This class is the bot's side: it sends the request, authenticated with the
deployment's API key, and checks that the signature recovers to the co-signer's address.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account import Account

from lpbot.errors import ConfigError, Halt, Refused
from lpbot.signing.base import Signature
from lpbot.signing.mpc.approval import SignedApproval
from lpbot.signing.mpc.auth import load_key
from lpbot.signing.mpc.errors import CosignerRefused
from lpbot.signing.mpc.links import HttpLink
from lpbot.signing.mpc.safe_tx import SafeTx

COSIGNER_INDEX = 0  # in error messages: the co-signer is not an MPC party here


class CosignerOwner:
    """Signs through ``lpbot cosigner serve`` in key mode; never without report and approval."""

    def __init__(self, url: str, api_key_env: str = "LPBOT_COSIGNER_API_KEY") -> None:
        self._link = HttpLink(COSIGNER_INDEX, url, load_key(api_key_env), path="/v1/sign")
        status = self._link.request("status", 10.0)
        self._address = str(status["address"])

    def __repr__(self) -> str:
        return f"CosignerOwner({self._address})"

    @property
    def address(self) -> str:
        return self._address

    def close(self) -> None:
        self._link.close()

    def sign_digest(self, digest: bytes) -> Signature:
        raise Refused(
            "the co-signer signs a SafeTx or transaction only with its dry-run report and a "
            "signed approval: use sign_safe_tx"
        )

    def sign_safe_tx(
        self, safe_tx: SafeTx, *, report: Mapping[str, Any], approval: SignedApproval
    ) -> Signature:
        digest = safe_tx.hash()
        context = {
            "kind": "safe_tx",
            "safe_tx": safe_tx.to_json(),
            "report": dict(report),
            "approval": approval.model_dump(),
        }
        try:
            result = self._link.request("sign", 60.0, digest="0x" + digest.hex(), context=context)
        except CosignerRefused:
            raise
        sig = Signature(r=int(result["r"], 16), s=int(result["s"], 16), v=int(result["v"]))
        recovered = Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s))
        if recovered.lower() != self._address.lower():
            raise Halt(f"the co-signer's signature recovers to {recovered}, not {self._address}")
        return sig


def cosign_report_file(
    url: str, api_key_env: str, report_path: Path, approval_path: Path, out: Path
) -> tuple[str, str]:
    """Ask the co-signer to sign the report's SafeTx with the approval in ``approval_path``;
    write the owner signature file that ``lpbot rebalance execute --signature`` reads. Returns
    (owner, SafeTx hash)."""
    from lpbot.report.dryrun import verify as verify_report

    try:
        report = json.loads(report_path.read_text())
        approval = SignedApproval.model_validate_json(approval_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"report or approval unreadable: {exc}") from exc
    try:
        verify_report(report)
    except Halt as exc:  # an edited report is refused, not a crash
        raise Refused(f"{report_path}: {exc}; nothing is signed") from exc
    if "safe_tx" not in report:
        raise ConfigError(f"report {report_path} has no SafeTx to sign")
    safe_tx = SafeTx.from_json(report["safe_tx"])
    digest = "0x" + safe_tx.hash().hex()
    if report["safe_tx"].get("safe_tx_hash", digest) != digest:
        raise Halt("the report's SafeTx fields do not hash to its recorded safe_tx_hash")
    owner = CosignerOwner(url, api_key_env)
    try:
        sig = owner.sign_safe_tx(safe_tx, report=report, approval=approval)
    finally:
        owner.close()
    body = {
        "owner": owner.address,
        "safe_tx_hash": digest,
        "signature": "0x" + sig.to_bytes().hex(),
    }
    out.write_text(json.dumps(body) + "\n")
    return owner.address, digest
