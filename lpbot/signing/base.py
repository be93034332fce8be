"""The ``Signer`` protocol: an Ethereum account that signs transactions and 32-byte digests.

Implementations: ``LocalKeySigner`` (an encrypted keystore), the MPC signer (threshold ECDSA,
``lpbot.signing.mpc``), a remote signer (Web3Signer-compatible JSON-RPC). A Safe is not a
signer: its owners are, and ``lpbot.signing.safe`` collects their signatures.

What is signed is a value whose hash is derived from its fields; a signer never decides whether
to sign, the approval step does (``lpbot.execution``), and a co-signer may refuse by its own
policy. Keys and shares never reach logs, reports, the database or git.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True, slots=True)
class Signature:
    """An ECDSA signature over secp256k1 with Ethereum's recovery id (v = 27 or 28), low-s."""

    r: int
    s: int
    v: int

    def __post_init__(self) -> None:
        if not (0 < self.r < SECP256K1_N and 0 < self.s <= SECP256K1_N // 2):
            raise ValueError("signature r/s out of range or s not low (EIP-2)")
        if self.v not in (27, 28):
            raise ValueError(f"v must be 27 or 28, got {self.v}")

    def to_bytes(self) -> bytes:
        """r ++ s ++ v, 65 bytes: the form Safe's checkSignatures and ecrecover expect."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.v])


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    raw: bytes
    hash: bytes


@runtime_checkable
class Signer(Protocol):
    """An Ethereum account that can sign."""

    @property
    def address(self) -> str:
        """The checksummed address the signatures recover to."""
        ...

    def sign_digest(self, digest: bytes) -> Signature:
        """Sign a 32-byte digest as is (an EIP-712 hash, e.g. a SafeTx hash); no prefix added."""
        ...

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        """Sign an EIP-1559 transaction dict (chainId, nonce, to, value, data, gas, maxFeePerGas,
        maxPriorityFeePerGas)."""
        ...
