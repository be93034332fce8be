"""Safe M-of-N multisig: the plan as one SafeTx, owners' signatures, ``execTransaction``.

A ``SafeTx`` is a value whose EIP-712 hash is derived from its fields (safe-eth-py computes it);
the dry-run report carries that hash, and nothing is signed unless they match. Several calls go
through MultiSendCallOnly by DELEGATECALL, so the Safe makes each call itself. Signatures are
collected from local owner keys (any ``Signer``) and from files for owners on other machines;
``execTransaction`` is sent once the threshold is met, with the signatures sorted by owner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from eth_account import Account
from eth_hash.auto import keccak
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from safe_eth.safe import SafeTx
from safe_eth.safe.multi_send import MultiSendOperation, MultiSendTx
from web3 import Web3

from lpbot.chain import artifacts
from lpbot.errors import NeedsAttention, Refused
from lpbot.signing.base import Signature, Signer
from lpbot.signing.mpc.safe_tx import SafeTx as SignedFields

SAFE_VERSION = "1.4.1"
ZERO = "0x0000000000000000000000000000000000000000"
CALL, DELEGATECALL = 0, 1


@dataclass(frozen=True, slots=True)
class InnerCall:
    to: str
    data: bytes
    value: int = 0


@dataclass(frozen=True, slots=True)
class SafeTransaction:
    """The fields of a SafeTx (no refunds: gas paid by the sender) and its EIP-712 hash."""

    chain_id: int
    safe: str
    to: str
    value: int
    data: bytes
    operation: int
    nonce: int

    @property
    def safe_tx_hash(self) -> bytes:
        tx = SafeTx(
            None,  # type: ignore[arg-type]  # hashing needs no client
            to_checksum_address(self.safe),
            to_checksum_address(self.to),
            self.value,
            self.data,
            self.operation,
            0,
            0,
            0,
            None,
            None,
            safe_nonce=self.nonce,
            safe_version=SAFE_VERSION,
            chain_id=self.chain_id,
        )
        return bytes(tx.safe_tx_hash)

    def to_json(self) -> dict[str, object]:
        return {
            "chain_id": self.chain_id,
            "safe": self.safe,
            "to": self.to,
            "value": str(self.value),
            "data": "0x" + self.data.hex(),
            "operation": self.operation,
            "nonce": self.nonce,
            "safe_tx_gas": 0,
            "base_gas": 0,
            "gas_price": 0,
            "gas_token": ZERO,
            "refund_receiver": ZERO,
            "safe_tx_hash": "0x" + self.safe_tx_hash.hex(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SafeTransaction:
        tx = cls(
            chain_id=int(d["chain_id"]),
            safe=str(d["safe"]),
            to=str(d["to"]),
            value=int(d["value"]),
            data=bytes.fromhex(str(d["data"])[2:]),
            operation=int(d["operation"]),
            nonce=int(d["nonce"]),
        )
        if "safe_tx_hash" in d and "0x" + tx.safe_tx_hash.hex() != d["safe_tx_hash"]:
            raise Refused("the SafeTx fields do not hash to the recorded safe_tx_hash")
        return tx


def build_safe_transaction(
    *, chain_id: int, safe: str, nonce: int, calls: Sequence[InnerCall], multisend_call_only: str
) -> SafeTransaction:
    """One SafeTx for ``calls``: a direct CALL for one, MultiSendCallOnly for several."""
    if not calls:
        raise Refused("nothing to do: a Safe transaction needs at least one call")
    if len(calls) == 1:
        c = calls[0]
        return SafeTransaction(chain_id, safe, c.to, c.value, c.data, CALL, nonce)
    packed = b"".join(
        MultiSendTx(
            MultiSendOperation.CALL, to_checksum_address(c.to), c.value, c.data
        ).encoded_data
        for c in calls
    )
    ms = Web3().eth.contract(abi=artifacts.abi("MultiSendCallOnly"))
    data = bytes.fromhex(ms.encode_abi(fn_name="multiSend", args=[packed])[2:])
    return SafeTransaction(chain_id, safe, multisend_call_only, 0, data, DELEGATECALL, nonce)


def _without_metadata(code: bytes) -> bytes:
    """Runtime code less solc's CBOR metadata (its last two bytes give its length), which
    differs between builds of the same source."""
    if len(code) < 2:
        return code
    n = int.from_bytes(code[-2:], "big") + 2
    return code[:-n] if n < len(code) else code


# MultiSendCallOnly deployments whose code is not the npm artifact's, by the keccak of the code
# the node serves (safe-deployments src/assets/v1.3.0/multi_send_call_only.json, "zksync":
# zkSync Era's EraVM build of v1.3.0)
PUBLISHED_MULTISEND_CODE_HASHES = {
    "0xf220D3b4DFb23C4ade8C88E526C1353AbAcbC38F": (
        "1.3.0 (zkSync Era)",
        "0x064ddbf252714bcd4cb79f679e8c12df96d998ce07bbb13b3118c1dbf4a31942",
    ),
}


def check_multisend_code(w3: Web3, address: str) -> None:
    """Refuse (``NeedsAttention``) unless ``address`` holds Safe 1.4.1's MultiSendCallOnly (or,
    at a published deployment of another build, that deployment's code).

    The Safe DELEGATECALLs it with the plan's calls: any other code there would run with the
    Safe's own storage and funds. Compared with the official artifact's runtime code, metadata
    aside; the manifest of a devnet or fork names the address, so it is checked, not trusted."""
    code = bytes(w3.eth.get_code(to_checksum_address(address)))
    published = PUBLISHED_MULTISEND_CODE_HASHES.get(to_checksum_address(address))
    if published is not None:
        version, code_hash = published
        if not code or "0x" + keccak(code).hex() != code_hash:
            raise NeedsAttention(
                f"MultiSendCallOnly at {address} is not Safe {version}'s published code "
                f"(keccak {code_hash}): the Safe would DELEGATECALL it; nothing is planned"
            )
        return
    expected = artifacts.load("MultiSendCallOnly").deployed_bytecode
    want = bytes.fromhex(expected.removeprefix("0x"))
    if not code or _without_metadata(code) != _without_metadata(want):
        raise NeedsAttention(
            f"MultiSendCallOnly at {address} is not Safe {SAFE_VERSION}'s "
            f"({'no code' if not code else f'{len(code)} bytes of other code'}): the Safe would "
            "DELEGATECALL it; nothing is planned until the address in the manifest is fixed"
        )


@dataclass(frozen=True, slots=True)
class OwnerSignature:
    owner: str
    signature: bytes  # 65 bytes r ++ s ++ v

    def to_json(self, safe_tx_hash: bytes) -> str:
        return json.dumps(
            {
                "owner": self.owner,
                "safe_tx_hash": "0x" + safe_tx_hash.hex(),
                "signature": "0x" + self.signature.hex(),
            }
        )


@runtime_checkable
class ReportSigner(Protocol):
    """A Safe owner that signs only with the transaction's dry-run report, which goes to a
    co-signer with its approval (``lpbot.signing.mpc.safe_owner.MpcSafeOwner``)."""

    @property
    def address(self) -> str: ...

    def sign_safe_transaction(self, safe_tx: SignedFields, report: Mapping[str, Any]) -> Signature:
        """The owner's signature of ``safe_tx``'s hash, or an error: nothing partial."""
        ...


def sign(
    tx: SafeTransaction, signer: Signer, report: Mapping[str, Any] | None = None
) -> OwnerSignature:
    """An owner's signature of the SafeTx hash (EIP-712, no prefix), checked by recovery. An
    owner that signs only with the report (``ReportSigner``) gets it; without it, refused."""
    digest = tx.safe_tx_hash
    if isinstance(signer, ReportSigner):
        if report is None:
            raise Refused(f"owner {signer.address} signs only with the dry-run report")
        fields = SignedFields.from_json(tx.to_json())
        if fields.hash() != digest:
            raise Refused("the SafeTx fields do not hash to the SafeTx hash")
        sig: Signature = signer.sign_safe_transaction(fields, report)
    else:
        sig = signer.sign_digest(digest)
    recovered = Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s))
    if recovered != signer.address:
        raise NeedsAttention(f"signature recovers to {recovered}, not the signer {signer.address}")
    return OwnerSignature(signer.address, sig.to_bytes())


def read_signature_file(path: Path, tx: SafeTransaction, owners: Sequence[str]) -> OwnerSignature:
    """A signature made on another machine: it must be for this SafeTx and by an owner."""
    try:
        d = json.loads(path.read_text())
        sig = bytes.fromhex(d["signature"].removeprefix("0x"))
        claimed = to_checksum_address(d["owner"])
    except (OSError, ValueError, KeyError) as exc:
        raise Refused(f"signature file {path} is not readable: {exc}") from exc
    if d.get("safe_tx_hash") != "0x" + tx.safe_tx_hash.hex():
        raise Refused(f"signature file {path} is for another Safe transaction")
    if len(sig) != 65:
        raise Refused(f"signature in {path} is not 65 bytes")
    v, r, s = sig[64], int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
    if v in (0, 1):
        # a bare recovery id (some wallets and libraries): Safe reads v = 0 as a contract
        # signature and v = 1 as an approved hash, and would revert (GS0xx); as an ECDSA
        # signature of the SafeTx hash it is v + 27
        v += 27
        sig = sig[:64] + bytes([v])
    if v not in (27, 28):
        raise Refused(
            f"signature in {path} has v = {v}: lpbot takes an owner's ECDSA signature of the "
            "SafeTx hash itself (v = 27 or 28), not eth_sign, contract or approved-hash forms"
        )
    try:
        Signature(r, s, v)  # r and s in range, s low (EIP-2), as Safe's ecrecover needs
        recovered = Account._recover_hash(tx.safe_tx_hash, vrs=(v, r, s))
    except (ValueError, BadSignature) as exc:
        raise Refused(f"signature in {path} is not a valid signature: {exc}") from exc
    if recovered != claimed or claimed not in owners:
        raise Refused(f"signature in {path} recovers to {recovered}, not an owner of the Safe")
    return OwnerSignature(claimed, sig)


def combine(signatures: Sequence[OwnerSignature], threshold: int) -> bytes:
    """Concatenate ``threshold`` signatures sorted by owner address, as checkSignatures wants."""
    unique = {s.owner: s for s in signatures}
    if len(unique) < threshold:
        signed = ", ".join(sorted(unique)) or "none"
        raise NeedsAttention(
            f"{len(unique)} of {threshold} required owner signatures collected (signed: "
            f"{signed}); another owner signs with `lpbot rebalance sign REPORT_ID --keystore "
            "NAME --out FILE` and execute takes each file with --signature FILE"
        )
    ordered = sorted(unique.values(), key=lambda s: int(s.owner, 16))[:threshold]
    return b"".join(s.signature for s in ordered)


def prevalidated_signatures(owners: Sequence[str]) -> bytes:
    """Safe's "approved hash" signatures (v = 1): valid after each owner called approveHash."""
    ordered = sorted((to_checksum_address(o) for o in owners), key=lambda o: int(o, 16))
    return b"".join(bytes(12) + bytes.fromhex(o[2:]) + bytes(32) + b"\x01" for o in ordered)


def exec_transaction_data(tx: SafeTransaction, signatures: bytes) -> bytes:
    """Calldata of ``Safe.execTransaction`` for ``tx`` with ``signatures``."""
    safe = Web3().eth.contract(abi=artifacts.abi("SafeL2"))
    encoded = safe.encode_abi(
        fn_name="execTransaction",
        args=[tx.to, tx.value, tx.data, tx.operation, 0, 0, 0, ZERO, ZERO, signatures],
    )
    return bytes.fromhex(encoded[2:])
