"""``MpcSigner``: a ``Signer`` whose key exists only as shares held by separate parties."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_account import Account
from eth_account._utils.legacy_transactions import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account._utils.typed_transactions.typed_transaction import TypedTransaction
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from lpbot.errors import ConfigError, Halt, NeedsAttention
from lpbot.signing.base import Signature, SignedTransaction
from lpbot.signing.mpc.approval import SignedApproval
from lpbot.signing.mpc.config import MpcConfig
from lpbot.signing.mpc.coordinator import Coordinator, RelayHook
from lpbot.signing.mpc.safe_tx import SafeTx

log = logging.getLogger(__name__)


def unsigned_eip1559(tx: Mapping[str, Any]) -> TypedTransaction:
    """The unsigned EIP-1559 transaction for ``tx`` (eth-account's typed transaction); its
    ``hash()`` is keccak256(0x02 || rlp(fields)), the digest an EIP-1559 signature covers."""
    fields = {k: v for k, v in tx.items() if k != "from"}
    fields.setdefault("type", 2)
    if int(fields["type"]) != 2 or "gasPrice" in fields:
        raise ConfigError("MpcSigner signs EIP-1559 (type 2) transactions only")
    for key in ("chainId", "nonce", "gas", "maxFeePerGas", "maxPriorityFeePerGas"):
        if key not in fields:
            raise ConfigError(f"transaction lacks {key!r}")
    unsigned = serializable_unsigned_transaction_from_dict(fields)  # type: ignore[no-untyped-call]
    if not isinstance(unsigned, TypedTransaction):
        raise ConfigError("not a typed transaction")
    return unsigned


def tx_digest(tx: Mapping[str, Any]) -> bytes:
    """The EIP-1559 signing digest of ``tx``."""
    return bytes(unsigned_eip1559(tx).hash())


def jsonable_tx(tx: Mapping[str, Any]) -> dict[str, Any]:
    """``tx`` with bytes as 0x-hex, for a co-signer to recompute the digest from."""
    out: dict[str, Any] = {}
    for k, v in tx.items():
        if isinstance(v, bytes | bytearray):
            out[k] = "0x" + bytes(v).hex()
        elif isinstance(v, list | tuple):
            out[k] = [dict(x) if isinstance(x, Mapping) else x for x in v]
        else:
            out[k] = v
    return out


class MpcSigner:
    """Signs EIP-1559 transactions and EIP-712 digests with a t-of-n MPC key.

    Each signature is one DKLs23 run among ``threshold`` parties, relayed by ``coordinator``. The
    transaction's digest is computed here; the parties return (r, s, y-parity); the raw transaction
    is assembled here and checked by recovering its sender. Fewer than t reachable parties, a
    locked or foreign share, a co-signer's refusal or a tampered message raise before anything is
    returned; there is no partial signature.
    """

    def __init__(self, coordinator: Coordinator, *, signers: Sequence[int] = ()) -> None:
        address = coordinator.config.address
        if address is None:
            raise NeedsAttention("the MPC config has no address yet (run key generation)")
        self._coordinator = coordinator
        self._address = to_checksum_address(address)
        self._signers = tuple(signers)

    @classmethod
    def open(
        cls,
        config: MpcConfig,
        *,
        signers: Sequence[int] = (),
        relay_hook: RelayHook | None = None,
        scripts: Mapping[int, Path] | None = None,
    ) -> MpcSigner:
        """Start or reach the parties and open their shares. With ``signers`` given, each of them
        must open; otherwise parties that cannot are skipped (with a warning) when signing."""
        coordinator = Coordinator.open(config, relay_hook=relay_hook, scripts=scripts)
        try:
            coordinator.unlock(signers or None, strict=bool(signers))
            return cls(coordinator, signers=signers)
        except BaseException:
            coordinator.close()
            raise

    def __repr__(self) -> str:
        return f"MpcSigner({self._address}, {self._coordinator.config.threshold}-of-n)"

    def __enter__(self) -> MpcSigner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._coordinator.close()

    @property
    def address(self) -> str:
        return self._address

    def _signers_now(self) -> list[int]:
        return list(self._signers) or self._coordinator.available_signers()

    def sign_digest(self, digest: bytes, *, context: Mapping[str, Any] | None = None) -> Signature:
        """Sign a 32-byte digest as is. ``context`` tells a co-signer what the digest is of (a
        ``{"kind": "safe_tx", ...}`` or ``{"kind": "transaction", ...}``); without it a co-signer
        can only check the digest against its approvals."""
        if len(digest) != 32:
            raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
        return self._coordinator.sign(digest, self._signers_now(), context=context)

    def sign_safe_tx(
        self,
        safe_tx: SafeTx,
        *,
        report: Mapping[str, Any] | None = None,
        approval: SignedApproval | None = None,
    ) -> Signature:
        """Sign a SafeTx's EIP-712 hash, with the SafeTx, the dry-run report and its signed
        approval as the co-signer's context."""
        return self.sign_digest(
            safe_tx.hash(), context=_context("safe_tx", safe_tx.to_json(), report, approval)
        )

    def sign_transaction(
        self,
        tx: dict[str, Any],
        *,
        report: Mapping[str, Any] | None = None,
        approval: SignedApproval | None = None,
    ) -> SignedTransaction:
        if "from" in tx and str(tx["from"]).lower() != self._address.lower():
            raise ConfigError(f"transaction is from {tx['from']}, this signer is {self._address}")
        unsigned = unsigned_eip1559(tx)
        digest = bytes(unsigned.hash())
        sig = self.sign_digest(
            digest, context=_context("transaction", jsonable_tx(tx), report, approval)
        )
        # typed transactions carry the y-parity (0/1), not 27/28
        raw = bytes(encode_transaction(unsigned, vrs=(sig.v - 27, sig.r, sig.s)))  # type: ignore[no-untyped-call]
        sender = Account.recover_transaction(raw)
        if sender.lower() != self._address.lower():
            raise Halt(f"MPC-signed transaction recovers to {sender}, not {self._address}")
        return SignedTransaction(raw=raw, hash=keccak(raw))


def _context(
    kind: str,
    body: Mapping[str, Any],
    report: Mapping[str, Any] | None,
    approval: SignedApproval | None,
) -> dict[str, Any]:
    key = "safe_tx" if kind == "safe_tx" else "tx"
    context: dict[str, Any] = {"kind": kind, key: dict(body)}
    if report is not None:
        context["report"] = dict(report)
    if approval is not None:
        context["approval"] = approval.model_dump()
    return context
