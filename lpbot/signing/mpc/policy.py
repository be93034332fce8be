"""The co-signer's policy: sign only what an approved dry-run report covers, within limits.

Approvals are files in a directory, one per approved dry-run report, read with ``ApprovalRecord``
(JSON, pydantic v2, frozen, extra keys forbidden)::

    {
      "version": 1,
      "report_hash": "0x<64 hex>",         # the dry-run report's hash (binds report and calldata)
      "approved": true,                    # false or missing: the report is not approved
      "chain_id": 31337,                   # optional: the chain the digests are for
      "tx_digests": ["0x<64 hex>", ...],   # EIP-1559 signing digests the report covers
      "safe_tx_hashes": ["0x<64 hex>", ...],  # SafeTx EIP-712 hashes the report covers
      "approved_by": "alice",              # optional, informational
      "approved_at": "2025-01-01T00:00:00Z",  # optional
      "expires_at": "2025-01-02T00:00:00Z"    # optional: not valid after this instant
    }

The execution code writes one such file next to each report it approves; the co-signer never
writes there. Before its party sends any protocol message, ``check`` requires: the digest is the
hash of the transaction (or SafeTx) sent with it; an approved, unexpired record lists it; the call
is to an allowed contract and selector, moves no more than ``max_value_wei``, is not a
delegatecall (unless allowed); and today's count is under ``max_signatures_per_day``. Any miss is
a ``Refused`` that names the reason.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from eth_utils.address import to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from lpbot.errors import ConfigError, Refused
from lpbot.signing.mpc.safe_tx import DELEGATECALL, SafeTx
from lpbot.signing.mpc.signer import tx_digest

log = logging.getLogger(__name__)


def _hash32(v: str) -> str:
    v = v.lower()
    if len(v) != 66 or not v.startswith("0x") or any(c not in "0123456789abcdef" for c in v[2:]):
        raise ValueError("expected 0x and 64 hex digits")
    return v


def _selector(v: str) -> str:
    v = v.lower()
    if v != "0x" and (len(v) != 10 or not v.startswith("0x")):
        raise ValueError('a selector is 0x and 8 hex digits, or "0x" for no calldata')
    return v


Hash32 = Annotated[str, AfterValidator(_hash32)]
Selector = Annotated[str, AfterValidator(_selector)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApprovalRecord(_Frozen):
    """An approved dry-run report, as far as the co-signer needs to know it."""

    version: Literal[1] = 1
    report_hash: Hash32
    approved: bool = False
    chain_id: int | None = None
    tx_digests: tuple[Hash32, ...] = ()
    safe_tx_hashes: tuple[Hash32, ...] = ()
    approved_by: str | None = None
    approved_at: datetime | None = None
    expires_at: datetime | None = None


class CosignerPolicy(_Frozen):
    """Limits the co-signer applies on top of the approvals."""

    max_value_wei: Annotated[int, Field(ge=0)] = 0
    # contract address -> the selectors it may be called with ("0x" = plain transfer, no data)
    allowed_calls: dict[str, tuple[Selector, ...]] = Field(default_factory=dict)
    max_signatures_per_day: Annotated[int, Field(ge=0)] = 20
    chain_ids: tuple[int, ...] = ()  # empty: any chain
    allow_delegatecall: bool = False

    def allowed(self, to: str) -> tuple[str, ...] | None:
        for contract, selectors in self.allowed_calls.items():
            if contract.lower() == to.lower():
                return selectors
        return None


def load_approvals(directory: Path) -> list[ApprovalRecord]:
    """Every valid record in ``directory`` (``*.json``); invalid files are skipped (warning)."""
    records: list[ApprovalRecord] = []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(ApprovalRecord.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError) as exc:
            log.warning("approval file %s skipped: %s", path.name, str(exc).splitlines()[0])
    return records


class Ledger:
    """Signatures the co-signer agreed to, per UTC day (a small JSON file, mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
            return data
        except FileNotFoundError:
            return {"days": {}}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"co-signer ledger {self.path} is unreadable: {exc}") from exc

    def count(self, day: str) -> int:
        return int(self._read()["days"].get(day, 0))

    def record(self, day: str) -> None:
        data = self._read()
        data["days"][day] = int(data["days"].get(day, 0)) + 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        tmp.replace(self.path)


@dataclass(frozen=True, slots=True)
class Approved:
    """What the policy let through: the digest, its kind and the report that covers it."""

    digest: str
    kind: str
    report_hash: str


@dataclass(frozen=True, slots=True)
class _Call:
    chain_id: int
    to: str | None
    value: int
    data: bytes
    delegatecall: bool


def _hexbytes(v: Any) -> bytes:
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    s = str(v or "0x")
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _call_of(digest: str, context: Mapping[str, Any]) -> tuple[str, _Call]:
    """Recompute the digest from the context; return the kind and the call it makes."""
    kind = context.get("kind")
    if kind == "transaction":
        tx = dict(context.get("tx") or {})
        try:
            recomputed = "0x" + tx_digest(tx).hex()
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            raise Refused(f"the transaction sent with the digest is malformed: {exc}") from exc
        if recomputed != digest:
            raise Refused("the digest is not the hash of the transaction sent with it")
        to = tx.get("to")
        call = _Call(
            chain_id=int(tx["chainId"]),
            to=str(to) if to else None,
            value=int(tx.get("value", 0)),
            data=_hexbytes(tx.get("data")),
            delegatecall=False,
        )
        return "transaction", call
    if kind == "safe_tx":
        try:
            safe_tx = SafeTx.from_json(dict(context.get("safe_tx") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise Refused(f"the SafeTx sent with the digest is malformed: {exc}") from exc
        if "0x" + safe_tx.hash().hex() != digest:
            raise Refused("the digest is not the hash of the SafeTx sent with it")
        call = _Call(
            chain_id=safe_tx.chain_id,
            to=safe_tx.to,
            value=safe_tx.value,
            data=safe_tx.data,
            delegatecall=safe_tx.operation == DELEGATECALL,
        )
        return "safe_tx", call
    raise Refused(
        f"a {kind or 'bare'} digest carries no transaction to check limits against; "
        "send the transaction or SafeTx with it"
    )


def check(
    policy: CosignerPolicy,
    approvals: list[ApprovalRecord],
    ledger: Ledger,
    digest: str,
    context: Mapping[str, Any],
    now: datetime | None = None,
) -> Approved:
    """Decide whether the co-signer takes part in signing ``digest``; raise ``Refused`` if not.

    On success the signature is counted in the ledger (an aborted run still counts).
    """
    now = now or datetime.now(UTC)
    try:
        digest = _hash32(digest)
    except ValueError as exc:
        raise Refused(f"malformed digest: {exc}") from exc
    kind, call = _call_of(digest, context)

    if policy.chain_ids and call.chain_id not in policy.chain_ids:
        raise Refused(f"chain {call.chain_id} is not one this co-signer signs for")
    if call.delegatecall and not policy.allow_delegatecall:
        raise Refused("delegatecall is not allowed")
    if call.to is None:
        raise Refused("contract creation is not allowed")
    selectors = policy.allowed(call.to)
    if selectors is None:
        raise Refused(f"calls to {to_checksum_address(call.to)} are not allowed")
    if 0 < len(call.data) < 4:
        raise Refused("calldata shorter than a selector")
    selector = "0x" + call.data[:4].hex()
    if selector not in selectors:
        raise Refused(f"selector {selector} is not allowed on {to_checksum_address(call.to)}")
    if call.value > policy.max_value_wei:
        raise Refused(f"value {call.value} wei exceeds the limit of {policy.max_value_wei} wei")

    field = "tx_digests" if kind == "transaction" else "safe_tx_hashes"
    covering = [r for r in approvals if digest in getattr(r, field)]
    if not covering:
        raise Refused(f"no dry-run report covers {field[:-1].replace('_', ' ')} {digest}")
    reasons: list[str] = []
    record: ApprovalRecord | None = None
    for r in covering:
        if not r.approved:
            reasons.append(f"report {r.report_hash} is not approved")
        elif r.expires_at is not None and r.expires_at <= now:
            reasons.append(f"approval of report {r.report_hash} expired at {r.expires_at}")
        elif r.chain_id is not None and r.chain_id != call.chain_id:
            reasons.append(f"report {r.report_hash} is for chain {r.chain_id}")
        else:
            record = r
            break
    if record is None:
        raise Refused("; ".join(reasons))

    day = now.date().isoformat()
    if ledger.count(day) >= policy.max_signatures_per_day:
        raise Refused(f"daily limit of {policy.max_signatures_per_day} signatures reached")
    ledger.record(day)
    log.info("co-signing %s %s (report %s)", kind, digest, record.report_hash)
    return Approved(digest=digest, kind=kind, report_hash=record.report_hash)
