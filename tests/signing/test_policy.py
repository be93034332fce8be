"""The co-signer's policy: approved dry-run reports, limits, daily count (no processes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lpbot.errors import Refused
from lpbot.signing.mpc.policy import (
    ApprovalRecord,
    CosignerPolicy,
    Ledger,
    check,
    load_approvals,
)
from lpbot.signing.mpc.safe_tx import DELEGATECALL, SafeTx
from lpbot.signing.mpc.signer import jsonable_tx, tx_digest

TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ROUTER = "0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45"
SAFE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
REPORT = "0x" + "ab" * 32
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

POLICY = CosignerPolicy(
    max_value_wei=10**16,
    allowed_calls={TO: ("0x",), ROUTER: ("0x04e45aaf",)},
    max_signatures_per_day=2,
    chain_ids=(31337,),
)


def _tx(**over: Any) -> dict[str, Any]:
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": 31337,
        "nonce": 0,
        "to": TO,
        "value": 10**15,
        "data": b"",
        "gas": 21000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    tx.update(over)
    return tx


def _ctx(tx: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "transaction", "tx": jsonable_tx(tx)}


def _digest(tx: dict[str, Any]) -> str:
    return "0x" + tx_digest(tx).hex()


def _approve(directory: Path, name: str = "r1", **record: Any) -> None:
    body = {"report_hash": REPORT, "approved": True, **record}
    (directory / f"{name}.json").write_text(json.dumps(body))


@pytest.fixture
def approvals(tmp_path: Path) -> Path:
    d = tmp_path / "approvals"
    d.mkdir()
    return d


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.json")


def _check(approvals: Path, ledger: Ledger, digest: str, ctx: dict[str, Any]) -> str:
    return check(POLICY, load_approvals(approvals), ledger, digest, ctx, now=NOW).report_hash


def test_approved_transaction_passes_and_is_counted(approvals: Path, ledger: Ledger) -> None:
    tx = _tx()
    _approve(approvals, tx_digests=[_digest(tx)])
    assert _check(approvals, ledger, _digest(tx), _ctx(tx)) == REPORT
    assert ledger.count("2025-06-01") == 1


def test_unapproved_digest_is_refused(approvals: Path, ledger: Ledger) -> None:
    tx = _tx()
    with pytest.raises(Refused, match="no dry-run report covers tx digest"):
        _check(approvals, ledger, _digest(tx), _ctx(tx))
    assert ledger.count("2025-06-01") == 0


def test_report_not_approved_or_expired_is_refused(approvals: Path, ledger: Ledger) -> None:
    tx = _tx()
    _approve(approvals, "a", approved=False, tx_digests=[_digest(tx)])
    _approve(
        approvals,
        "b",
        expires_at=(NOW - timedelta(minutes=1)).isoformat(),
        tx_digests=[_digest(tx)],
    )
    with pytest.raises(Refused, match=r"is not approved; approval of report .* expired"):
        _check(approvals, ledger, _digest(tx), _ctx(tx))


def test_digest_must_be_the_transactions_hash(approvals: Path, ledger: Ledger) -> None:
    tx, other = _tx(), _tx(nonce=1)
    _approve(approvals, tx_digests=[_digest(tx)])
    with pytest.raises(Refused, match="not the hash of the transaction"):
        _check(approvals, ledger, _digest(tx), _ctx(other))


@pytest.mark.parametrize(
    ("tx", "reason"),
    [
        (_tx(value=10**16 + 1), "exceeds the limit"),
        (_tx(to=SAFE), "calls to .* are not allowed"),
        (_tx(data=bytes.fromhex("a9059cbb") + bytes(64)), "selector 0xa9059cbb is not allowed"),
        (_tx(to=ROUTER, data=b"\x04\xe4"), "shorter than a selector"),
        (_tx(chainId=1), "chain 1 is not one"),
    ],
)
def test_limits(approvals: Path, ledger: Ledger, tx: dict[str, Any], reason: str) -> None:
    _approve(approvals, tx_digests=[_digest(tx)])
    with pytest.raises(Refused, match=reason):
        _check(approvals, ledger, _digest(tx), _ctx(tx))


def test_daily_limit(approvals: Path, ledger: Ledger) -> None:
    txs = [_tx(nonce=n) for n in range(3)]
    _approve(approvals, tx_digests=[_digest(t) for t in txs])
    _check(approvals, ledger, _digest(txs[0]), _ctx(txs[0]))
    _check(approvals, ledger, _digest(txs[1]), _ctx(txs[1]))
    with pytest.raises(Refused, match="daily limit of 2"):
        _check(approvals, ledger, _digest(txs[2]), _ctx(txs[2]))


def test_bare_digest_is_refused(approvals: Path, ledger: Ledger) -> None:
    digest = "0x" + "11" * 32
    _approve(approvals, tx_digests=[digest], safe_tx_hashes=[digest])
    with pytest.raises(Refused, match="carries no transaction"):
        _check(approvals, ledger, digest, {"kind": "digest"})


def _safe_tx(**over: Any) -> SafeTx:
    fields: dict[str, Any] = {
        "chain_id": 31337,
        "safe": SAFE,
        "to": ROUTER,
        "value": 0,
        "data": bytes.fromhex("04e45aaf") + bytes(32),
        "operation": 0,
        "nonce": 4,
    }
    fields.update(over)
    return SafeTx(**fields)


def test_approved_safe_tx_passes(approvals: Path, ledger: Ledger) -> None:
    st = _safe_tx()
    digest = "0x" + st.hash().hex()
    _approve(approvals, safe_tx_hashes=[digest], chain_id=31337)
    ctx = {"kind": "safe_tx", "safe_tx": st.to_json()}
    assert _check(approvals, ledger, digest, ctx) == REPORT
    # approved as a SafeTx is not approved as a transaction digest
    with pytest.raises(Refused, match="not the hash of the transaction"):
        _check(approvals, ledger, digest, _ctx(_tx()))


def test_delegatecall_is_refused(approvals: Path, ledger: Ledger) -> None:
    st = _safe_tx(operation=DELEGATECALL)
    digest = "0x" + st.hash().hex()
    _approve(approvals, safe_tx_hashes=[digest])
    with pytest.raises(Refused, match="delegatecall"):
        _check(approvals, ledger, digest, {"kind": "safe_tx", "safe_tx": st.to_json()})


def test_approval_schema_is_strict(approvals: Path) -> None:
    with pytest.raises(ValidationError):
        ApprovalRecord.model_validate({"report_hash": REPORT, "approved": True, "extra": 1})
    with pytest.raises(ValidationError):
        ApprovalRecord.model_validate({"report_hash": "0x1234", "approved": True})
    record = ApprovalRecord.model_validate({"report_hash": REPORT.upper().replace("0X", "0x")})
    assert record.report_hash == REPORT and record.approved is False
    (approvals / "broken.json").write_text('{"report_hash": "nope"}')
    _approve(approvals, "good")
    assert [r.report_hash for r in load_approvals(approvals)] == [REPORT]
