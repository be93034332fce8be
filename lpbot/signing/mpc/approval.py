"""Signed approvals: a person (or the bot's policy key) approves one dry-run report's digest.

An approval is an EIP-712 message signed by an approver key::

    domain  {name: "lpbot co-signer", version: "1", chainId}
    Approval(bytes32 reportHash, bytes32 digest, uint256 chainId, uint256 expiresAt)

``reportHash`` is the dry-run report's hash (``lpbot.report.dryrun.canonical_hash``), ``digest``
the SafeTx hash or the EIP-1559 transaction digest the report covers, ``expiresAt`` a UNIX time.
The co-signer verifies it against its own list of approver addresses (``verify``); nothing in a
file the bot's user can write is trusted without such a signature.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.address import is_address, to_checksum_address
from eth_utils.exceptions import ValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lpbot.errors import Refused
from lpbot.signing.base import Signature, Signer

DOMAIN_NAME = "lpbot co-signer"
DOMAIN_VERSION = "1"


def _hash32(v: str) -> str:
    v = v.lower()
    if len(v) != 66 or not v.startswith("0x") or any(c not in "0123456789abcdef" for c in v[2:]):
        raise ValueError("expected 0x and 64 hex digits")
    return v


def _address(v: str) -> str:
    if not is_address(v):
        raise ValueError(f"{v!r} is not an address")
    return to_checksum_address(v)


def _signature(v: str) -> str:
    v = v.lower()
    if len(v) != 132 or not v.startswith("0x") or any(c not in "0123456789abcdef" for c in v[2:]):
        raise ValueError("a signature is 0x and 130 hex digits (r, s, v)")
    return v


Hash32 = Annotated[str, AfterValidator(_hash32)]
Address = Annotated[str, AfterValidator(_address)]


class SignedApproval(BaseModel):
    """One approver's signature over (report hash, digest, chain, expiry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[2] = 2
    report_hash: Hash32
    digest: Hash32
    chain_id: Annotated[int, Field(ge=1)]
    expires_at: Annotated[int, Field(ge=0)]  # UNIX seconds
    approver: Address
    signature: Annotated[str, AfterValidator(_signature)]

    def typed_data(self) -> dict[str, Any]:
        return typed_data(self.report_hash, self.digest, self.chain_id, self.expires_at)


def typed_data(report_hash: str, digest: str, chain_id: int, expires_at: int) -> dict[str, Any]:
    """The EIP-712 message an approver signs."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "Approval": [
                {"name": "reportHash", "type": "bytes32"},
                {"name": "digest", "type": "bytes32"},
                {"name": "chainId", "type": "uint256"},
                {"name": "expiresAt", "type": "uint256"},
            ],
        },
        "primaryType": "Approval",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id},
        "message": {
            "reportHash": bytes.fromhex(report_hash[2:]),
            "digest": bytes.fromhex(digest[2:]),
            "chainId": chain_id,
            "expiresAt": expires_at,
        },
    }


def approval_digest(report_hash: str, digest: str, chain_id: int, expires_at: int) -> bytes:
    """The 32-byte EIP-712 digest of an approval."""
    signable = encode_typed_data(full_message=typed_data(report_hash, digest, chain_id, expires_at))
    return bytes(_hash_eip191_message(signable))


def sign_approval(
    signer: Signer, *, report_hash: str, digest: str, chain_id: int, expires_at: int
) -> SignedApproval:
    """Approve ``digest`` of the report ``report_hash`` until ``expires_at`` with ``signer``."""
    report_hash, digest = _hash32(report_hash), _hash32(digest)
    sig: Signature = signer.sign_digest(approval_digest(report_hash, digest, chain_id, expires_at))
    return SignedApproval(
        report_hash=report_hash,
        digest=digest,
        chain_id=chain_id,
        expires_at=expires_at,
        approver=signer.address,
        signature="0x" + sig.to_bytes().hex(),
    )


def verify(
    approval: SignedApproval,
    *,
    approvers: tuple[str, ...],
    digest: str,
    chain_id: int,
    now: int,
    max_ttl_s: int,
) -> str:
    """Check ``approval`` covers ``digest`` on ``chain_id`` now, signed by a configured approver;
    return the approver's address or raise ``Refused`` naming what is wrong."""
    allowed = {a.lower() for a in approvers}
    if approval.approver.lower() not in allowed:
        raise Refused(
            f"approval signer {approval.approver} is not one of this co-signer's approvers"
        )
    raw = bytes.fromhex(approval.signature[2:])
    try:
        recovered = Account._recover_hash(
            approval_digest(
                approval.report_hash, approval.digest, approval.chain_id, approval.expires_at
            ),
            vrs=(raw[64], int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")),
        )
    except (BadSignature, ValidationError, ValueError) as exc:
        raise Refused(f"approval signature is malformed: {exc}") from exc
    if recovered.lower() != approval.approver.lower():
        raise Refused(
            f"approval signature recovers to {recovered}, not to the approver {approval.approver}"
        )
    if approval.digest != digest.lower():
        raise Refused(f"the approval is for digest {approval.digest}, not {digest}")
    if approval.chain_id != chain_id:
        raise Refused(f"the approval is for chain {approval.chain_id}, not {chain_id}")
    if approval.expires_at <= now:
        raise Refused(f"the approval expired at {approval.expires_at} (now {now})")
    if approval.expires_at - now > max_ttl_s:
        raise Refused(
            f"the approval is valid for {approval.expires_at - now} s, more than this co-signer's "
            f"limit of {max_ttl_s} s"
        )
    return approval.approver
