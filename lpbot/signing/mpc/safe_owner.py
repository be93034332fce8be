"""``MpcSafeOwner``: the Safe owner whose key is this host's MPC party plus the co-signer.

It signs a Safe transaction only together with its dry-run report and a signed approval
(``approval.py``), which go to the co-signer as the signature's context: the co-signer checks
them against its own approvers, limits and decoding of every call before its party sends a
protocol message. Nothing else signs in its place: with the co-signer down or refusing, no
signature is made (the coordinator never replaces it by another party).

The approval comes from ``approvals``: a person's approval file (``lpbot cosigner approve``) for
``lpbot rebalance execute|sign --mpc``, or the bot's policy key for ``lpbot run``'s
auto-execution (``policy_approvals``), each bound to the report hash and the SafeTx hash.
The parties are opened for each signature and closed after it, so a daemon holds no share open
between rebalances and a co-signer that is down when the daemon starts delays nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from lpbot.errors import ConfigError, NeedsAttention, Refused
from lpbot.signing.base import Signature, SignedTransaction, Signer
from lpbot.signing.mpc.approval import SignedApproval, sign_approval
from lpbot.signing.mpc.config import LocalParty, MpcConfig
from lpbot.signing.mpc.safe_tx import SafeTx

# (report, SafeTx hash as 0x-hex, chain id) -> the approval the co-signer will verify
Approvals = Callable[[Mapping[str, Any], str, int], SignedApproval]


def policy_approvals(key: Signer, ttl_seconds: int) -> Approvals:
    """Approvals signed by the bot's policy key, valid ``ttl_seconds`` (the co-signer counts
    them against its own limit for automatic approvals)."""

    def approve(report: Mapping[str, Any], digest: str, chain_id: int) -> SignedApproval:
        return sign_approval(
            key,
            report_hash=str(report["report_hash"]),
            digest=digest,
            chain_id=chain_id,
            expires_at=int(time.time()) + ttl_seconds,
        )

    return approve


def given_approval(approval: SignedApproval) -> Approvals:
    """One approval a person signed; refused for any other report or SafeTx."""

    def approve(report: Mapping[str, Any], digest: str, chain_id: int) -> SignedApproval:
        if approval.report_hash != str(report["report_hash"]).lower():
            raise Refused(
                f"the approval is for report {approval.report_hash}, not {report['report_hash']}"
            )
        if approval.digest != digest.lower() or approval.chain_id != chain_id:
            raise Refused(f"the approval is for SafeTx {approval.digest}, not {digest}")
        return approval

    return approve


def no_approval(report: Mapping[str, Any], digest: str, chain_id: int) -> SignedApproval:
    raise NeedsAttention(
        "the MPC owner's co-signer signs only an approved report: pass --approval FILE (from "
        "`lpbot cosigner approve`), or set auto_execute.approver for the daemon"
    )


class MpcSafeOwner:
    """A Safe owner held as MPC shares: this host's party and the co-signer sign together."""

    def __init__(self, config: MpcConfig, approvals: Approvals = no_approval) -> None:
        if config.address is None:
            raise ConfigError("signer.mpc.address: no address yet (run `lpbot mpc keygen`)")
        self.config = config
        self._address = config.address
        self._approvals = approvals

    def __repr__(self) -> str:
        return f"MpcSafeOwner({self._address})"

    @property
    def address(self) -> str:
        return self._address

    def check(self) -> None:
        """Refuse to start without what signing needs on this host: the backend and this
        host's party's passphrase (the co-signer is asked only when a signature is due)."""
        import os

        from lpbot.signing.mpc.links import backend_missing

        missing = backend_missing()
        if missing is not None:
            raise NeedsAttention(missing)
        for p in self.config.parties:
            if isinstance(p, LocalParty) and not os.environ.get(p.passphrase_env):
                raise NeedsAttention(f"set {p.passphrase_env} to MPC party {p.index}'s passphrase")

    def sign_digest(self, digest: bytes) -> Signature:
        raise Refused(
            "the MPC owner signs a Safe transaction only with its dry-run report and approval"
        )

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        raise Refused("the MPC owner signs Safe transactions, not transactions of its own")

    def sign_safe_transaction(self, safe_tx: SafeTx, report: Mapping[str, Any]) -> Signature:
        """This owner's signature of ``safe_tx`` (its EIP-712 hash), made by this host's party
        and the co-signer, with the report and its approval as the co-signer's context."""
        from lpbot.signing.mpc.signer import MpcSigner

        digest = "0x" + safe_tx.hash().hex()
        approval = self._approvals(report, digest, safe_tx.chain_id)
        with MpcSigner.open(self.config) as signer:
            return signer.sign_safe_tx(safe_tx, report=report, approval=approval)
