"""The co-signer's policy: sign only what a signed approval of a dry-run report covers.

Each signing request carries, besides the digest, the transaction or SafeTx it is the hash of,
the dry-run report (its JSON, which must hash to its ``report_hash``) and a ``SignedApproval``
(EIP-712, ``lpbot.signing.mpc.approval``) by one of the approver addresses in this co-signer's
own config. Before its party sends any protocol message (or its key signs), ``check`` requires:

- the digest is the hash of the transaction (or SafeTx) sent with it;
- the approval is signed by a configured approver, is for this digest and chain, has not expired
  and is not valid for longer than ``max_approval_ttl_s``;
- the report hashes to the approved ``report_hash`` and is for the same chain (and Safe);
- every call the transaction makes is one the report lists: MultiSendCallOnly's packed calls and
  each NonfungiblePositionManager, SwapRouter02, ERC-20 and rebalance-module call are decoded and
  compared field by field (``lpbot.signing.mpc.decode``); a call to any other contract must be
  in ``allowed_calls`` and move no more than ``max_value_wei``;
- today's count, kept in the co-signer's own SQLite store, is under its limits (approvals by an
  ``auto_approvers`` key, the bot's policy key, have their own lower limit).

Any miss is a ``Refused`` that names the reason (the call and the field, for a decoded call).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from lpbot.errors import ConfigError, Refused
from lpbot.report.dryrun import canonical_hash
from lpbot.signing.mpc.approval import Address, SignedApproval, verify
from lpbot.signing.mpc.decode import CALL, DELEGATECALL, InnerCall, calls_of_safe_tx, check_calls
from lpbot.signing.mpc.safe_tx import ZERO_ADDRESS, SafeTx
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


Selector = Annotated[str, AfterValidator(_selector)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PoolKey(_Frozen):
    """One Uniswap V3 pool the co-signer signs for: its two tokens (either order) and fee."""

    token0: Address
    token1: Address
    fee: Annotated[int, Field(ge=1)]

    def matches(self, token0: str, token1: str, fee: int) -> bool:
        mine = {self.token0.lower(), self.token1.lower()}
        return fee == self.fee and mine == {token0.lower(), token1.lower()}


class CosignerPolicy(_Frozen):
    """The co-signer's own limits and the addresses it trusts (never taken from a request)."""

    # who may approve: EIP-712 approval signers (people's keys, and the bot's policy key)
    approvers: tuple[Address, ...] = ()
    # approvers whose approvals are automatic (the bot's policy key): their own daily limit
    auto_approvers: tuple[Address, ...] = ()
    max_auto_signatures_per_day: Annotated[int, Field(ge=0)] = 4
    max_approval_ttl_s: Annotated[int, Field(ge=1)] = 24 * 3600
    max_deadline_s: Annotated[int, Field(ge=1)] = 3600
    max_value_wei: Annotated[int, Field(ge=0)] = 0
    # the contracts whose calls are decoded and checked against the report
    position_manager: Address | None = None
    swap_router: Address | None = None
    multisend_call_only: Address | None = None
    rebalance_module: Address | None = None
    # the pools whose positions and swaps it signs for (its own list, never the report's):
    # required for automatic approvals, enforced on every decoded call when set
    pools: tuple[PoolKey, ...] = ()
    # the environment variable holding an RPC URL of the chain (the co-signer's own node): it
    # reads who owns an NFT before adding liquidity to it; required for automatic approvals
    rpc_url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    # any other contract -> the selectors it may be called with ("0x" = plain transfer, no data)
    allowed_calls: dict[str, tuple[Selector, ...]] = Field(default_factory=dict)
    max_signatures_per_day: Annotated[int, Field(ge=0)] = 20
    chain_ids: tuple[int, ...] = ()  # empty: any chain

    def allowed(self, to: str) -> tuple[str, ...] | None:
        for contract, selectors in self.allowed_calls.items():
            if contract.lower() == to.lower():
                return selectors
        return None

    def decoded(self) -> set[str]:
        return {
            to_checksum_address(a)
            for a in (
                self.position_manager,
                self.swap_router,
                self.multisend_call_only,
                self.rebalance_module,
            )
            if a
        }


class Ledger:
    """Signatures the co-signer agreed to: a SQLite file of its own (mode 0600), counted per UTC
    day and kind, each with its digest, report and approver."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        db = self._db()
        try:
            with db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS signatures (day TEXT NOT NULL, kind TEXT NOT NULL,"
                    " at TEXT NOT NULL, digest TEXT NOT NULL, report_hash TEXT NOT NULL,"
                    " approver TEXT NOT NULL)"
                )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS bans (party INTEGER PRIMARY KEY,"
                    " since TEXT NOT NULL, reason TEXT NOT NULL)"
                )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, at REAL NOT NULL)"
                )
        except sqlite3.Error as exc:
            raise ConfigError(f"co-signer ledger {path} is unusable: {exc}") from exc
        finally:
            db.close()

    def remember_nonce(self, nonce: str, now: float, horizon: float) -> bool:
        """Record an API request's nonce; ``False`` if it was seen within ``horizon`` seconds
        (kept here, not in memory, so a restarted co-signer still refuses a replay)."""
        db = self._db()
        try:
            with db:
                db.execute("DELETE FROM nonces WHERE at < ?", (now - horizon,))
                try:
                    db.execute("INSERT INTO nonces VALUES (?, ?)", (nonce, now))
                except sqlite3.IntegrityError:
                    return False
        finally:
            db.close()
        return True

    def ban(self, party: int, reason: str) -> None:
        """Ban ``party`` (its message failed a check) until a person clears it."""
        db = self._db()
        try:
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO bans VALUES (?, ?, ?)",
                    (party, datetime.now(UTC).isoformat(timespec="seconds"), reason[:500]),
                )
        finally:
            db.close()

    def bans(self) -> dict[int, tuple[str, str]]:
        db = self._db()
        try:
            rows = db.execute("SELECT party, since, reason FROM bans").fetchall()
        finally:
            db.close()
        return {int(p): (str(since), str(reason)) for p, since, reason in rows}

    def unban(self, party: int) -> bool:
        db = self._db()
        try:
            with db:
                n = db.execute("DELETE FROM bans WHERE party = ?", (party,)).rowcount
        finally:
            db.close()
        return bool(n)

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level="IMMEDIATE")

    def count(self, day: str, kind: str | None = None) -> int:
        db = self._db()
        try:
            if kind is None:
                row = db.execute("SELECT COUNT(*) FROM signatures WHERE day = ?", (day,)).fetchone()
            else:
                row = db.execute(
                    "SELECT COUNT(*) FROM signatures WHERE day = ? AND kind = ?", (day, kind)
                ).fetchone()
        finally:
            db.close()
        return int(row[0])

    def admit(
        self,
        now: datetime,
        *,
        kind: str,
        digest: str,
        report_hash: str,
        approver: str,
        limits: Mapping[str | None, int],
    ) -> None:
        """Record one signature if every limit (``None``: all kinds) leaves room, atomically."""
        day = now.date().isoformat()
        db = self._db()
        try:
            with db:
                for k, limit in limits.items():
                    if k is None:
                        q = "SELECT COUNT(*) FROM signatures WHERE day = ?"
                        n = db.execute(q, (day,)).fetchone()[0]
                    else:
                        q = "SELECT COUNT(*) FROM signatures WHERE day = ? AND kind = ?"
                        n = db.execute(q, (day, k)).fetchone()[0]
                    if n >= limit:
                        what = "signatures" if k is None else f"{k} signatures"
                        raise Refused(f"daily limit of {limit} {what} reached")
                db.execute(
                    "INSERT INTO signatures VALUES (?, ?, ?, ?, ?, ?)",
                    (day, kind, now.isoformat(), digest, report_hash, approver),
                )
        finally:
            db.close()


@dataclass(frozen=True, slots=True)
class Approved:
    """What the policy let through: the digest, its kind, the report and who approved it."""

    digest: str
    kind: str
    report_hash: str
    approver: str
    calls: int


@dataclass(frozen=True, slots=True)
class _Call:
    chain_id: int
    to: str | None
    value: int
    data: bytes
    delegatecall: bool
    sender: str | None = None  # the Safe, for a SafeTx


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
        # lpbot's SafeTxs pay no refund (the sender pays the gas): a gasPrice, baseGas or gas
        # token would have the Safe pay (gasUsed + baseGas) * gasPrice to refundReceiver
        for field, value in (
            ("safe_tx_gas", safe_tx.safe_tx_gas),
            ("base_gas", safe_tx.base_gas),
            ("gas_price", safe_tx.gas_price),
            ("gas_token", safe_tx.gas_token),
            ("refund_receiver", safe_tx.refund_receiver),
        ):
            if str(value).lower() not in ("0", ZERO_ADDRESS):
                raise Refused(f"SafeTx: {field} is {value}; this co-signer signs no refunds")
        call = _Call(
            chain_id=safe_tx.chain_id,
            to=safe_tx.to,
            value=safe_tx.value,
            data=safe_tx.data,
            delegatecall=safe_tx.operation == DELEGATECALL,
            sender=safe_tx.safe,
        )
        return "safe_tx", call
    raise Refused(
        f"a {kind or 'bare'} digest carries no transaction to check limits against; "
        "send the transaction or SafeTx with it"
    )


def check(
    policy: CosignerPolicy,
    ledger: Ledger,
    digest: str,
    context: Mapping[str, Any],
    now: datetime | None = None,
    *,
    owner_of: Callable[[int], str] | None = None,
) -> Approved:
    """Decide whether the co-signer signs ``digest``; raise ``Refused`` if not.

    ``owner_of`` reads an NFT's owner (default: through ``policy.rpc_url_env``, when set).
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

    if not policy.approvers:
        raise Refused("this co-signer has no approvers configured")
    try:
        approval = SignedApproval.model_validate(context.get("approval") or {})
    except ValidationError as exc:
        raise Refused(
            f"no valid signed approval came with the digest: {exc.errors()[0]['msg']}"
        ) from exc
    approver = verify(
        approval,
        approvers=policy.approvers,
        digest=digest,
        chain_id=call.chain_id,
        now=int(now.timestamp()),
        max_ttl_s=policy.max_approval_ttl_s,
    )
    report = context.get("report")
    if not isinstance(report, dict):
        raise Refused("the dry-run report did not come with the digest")
    body = {k: v for k, v in report.items() if k not in ("report_hash", "report_id")}
    if canonical_hash(body) != approval.report_hash:
        raise Refused(f"the report sent does not hash to the approved {approval.report_hash}")
    if report.get("chain_id") != call.chain_id:
        raise Refused(f"the report is for chain {report.get('chain_id')}, not {call.chain_id}")
    if kind == "safe_tx" and str(report.get("safe", "")).lower() != str(call.sender).lower():
        raise Refused(f"the report is for Safe {report.get('safe')}, not {call.sender}")

    auto = approver.lower() in {a.lower() for a in policy.auto_approvers}
    if owner_of is None and policy.rpc_url_env and policy.position_manager:
        owner_of = _chain_owner_of(policy.rpc_url_env, policy.position_manager)
    calls = _check_calls(policy, call, report, now, auto=auto, owner_of=owner_of)

    limits: dict[str | None, int] = {None: policy.max_signatures_per_day}
    if auto:
        limits["auto"] = policy.max_auto_signatures_per_day
    ledger.admit(
        now,
        kind="auto" if auto else "approved",
        digest=digest,
        report_hash=approval.report_hash,
        approver=approver,
        limits=limits,
    )
    log.info(
        "co-signing %s %s (report %s, approver %s)", kind, digest, approval.report_hash, approver
    )
    return Approved(digest, kind, approval.report_hash, approver, calls)


def _check_pool(policy: CosignerPolicy, report: Mapping[str, Any], *, auto: bool) -> None:
    """The report's pool must be one of the co-signer's own: a report can name any tokens and
    fee, and the calls are checked against the report."""
    if not policy.pools:
        if auto:
            raise Refused(
                "an automatic approval needs this co-signer's own list of pools (policy.pools)"
            )
        return
    try:
        tokens = report["tokens"]
        token0, token1 = str(tokens[0]["address"]), str(tokens[1]["address"])
        fee = int(report["fee"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise Refused(f"the report names no pool: {exc!r}") from exc
    if not any(p.matches(token0, token1, fee) for p in policy.pools):
        raise Refused(
            f"pool {to_checksum_address(token0)}/{to_checksum_address(token1)} fee {fee} is not "
            "one this co-signer signs for (policy.pools)"
        )


def _chain_owner_of(env_name: str, position_manager: str) -> Callable[[int], str]:
    """``ownerOf(tokenId)`` of the position manager, read through the RPC URL in ``env_name``."""
    from web3 import HTTPProvider, Web3
    from web3.exceptions import Web3Exception

    url = os.environ.get(env_name)
    if not url:
        raise Refused(f"set {env_name} to the co-signer's RPC URL (policy.rpc_url_env)")
    abi = [
        {
            "type": "function",
            "name": "ownerOf",
            "stateMutability": "view",
            "inputs": [{"name": "tokenId", "type": "uint256"}],
            "outputs": [{"name": "", "type": "address"}],
        }
    ]
    npm = Web3(HTTPProvider(url, request_kwargs={"timeout": 10})).eth.contract(
        address=to_checksum_address(position_manager), abi=abi
    )

    def owner_of(token_id: int) -> str:
        try:
            return str(npm.functions.ownerOf(token_id).call())
        except (Web3Exception, OSError, ValueError) as exc:
            raise Refused(f"cannot read the owner of NFT {token_id}: {exc}") from exc

    return owner_of


def _check_calls(
    policy: CosignerPolicy,
    call: _Call,
    report: Mapping[str, Any],
    now: datetime,
    *,
    auto: bool,
    owner_of: Callable[[int], str] | None,
) -> int:
    """Every call the transaction makes against the report (decoded) or the allow-list."""
    if call.to is None:
        raise Refused("contract creation is not allowed")
    if call.delegatecall:
        inner = calls_of_safe_tx(
            call.to, call.data, call.value, DELEGATECALL, policy.multisend_call_only
        )
    else:
        inner = [InnerCall(CALL, call.to, call.value, call.data)]
    decoded = policy.decoded()
    tokens = {
        to_checksum_address(str(t.get("address")))
        for t in report.get("tokens", [])
        if isinstance(t, dict) and t.get("address")
    }
    module = to_checksum_address(policy.rebalance_module) if policy.rebalance_module else None
    if any(to_checksum_address(c.to) in decoded | tokens for c in inner):
        if not (policy.position_manager and policy.swap_router):
            raise Refused("this co-signer has no position_manager / swap_router configured")
        _check_pool(policy, report, auto=auto)
        is_module = module is not None and [to_checksum_address(c.to) for c in inner] == [module]
        listed = report.get("calls")
        if not is_module and not isinstance(listed, list):
            raise Refused("the report lists no calls")
        return check_calls(
            inner,
            report,
            position_manager=policy.position_manager,
            router=policy.swap_router,
            module=policy.rebalance_module,
            max_deadline=int(now.timestamp()) + policy.max_deadline_s,
            listed=None if is_module else listed,
            owner_of=owner_of,
            auto=auto,
        )
    for i, c in enumerate(inner, 1):
        selectors = policy.allowed(c.to)
        if selectors is None:
            raise Refused(f"call {i}: calls to {to_checksum_address(c.to)} are not allowed")
        if auto:
            # the bot's policy key approves the rebalances and compounds read above; an
            # allow-listed call (an owner swap, a transfer) is a person's to approve
            raise Refused(
                f"call {i}: an automatic approval signs only the calls it decodes; a call to "
                f"{to_checksum_address(c.to)} needs a person's approval"
            )
        if 0 < len(c.data) < 4:
            raise Refused(f"call {i}: calldata shorter than a selector")
        selector = "0x" + c.data[:4].hex()
        if selector not in selectors:
            raise Refused(
                f"call {i}: selector {selector} is not allowed on {to_checksum_address(c.to)}"
            )
        if c.value > policy.max_value_wei:
            raise Refused(
                f"call {i}: value {c.value} wei exceeds the limit of {policy.max_value_wei} wei"
            )
    listed = report.get("calls")
    if not isinstance(listed, list) or len(listed) != len(inner):
        raise Refused(f"the transaction makes {len(inner)} calls, the report lists another set")
    for i, (c, want) in enumerate(zip(inner, listed, strict=True), 1):
        data = str(want.get("data", "0x"))
        if (
            to_checksum_address(c.to) != to_checksum_address(str(want.get("to")))
            or c.data != bytes.fromhex(data[2:] if data.startswith("0x") else data)
            or c.value != int(want.get("value", 0))
        ):
            raise Refused(f"call {i}: differs from the report's call {i}")
    return len(inner)
