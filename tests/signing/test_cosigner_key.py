"""The default policy co-signer: ``lpbot cosigner serve`` holding its own Safe owner key (no MPC),
as its own process, behind signed approvals, the decoded report and an authenticated API."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_account import Account

from lpbot.devnet.anvil import free_port
from lpbot.errors import Refused
from lpbot.signing.local import LocalKeySigner, write_keystore
from lpbot.signing.mpc.approval import SignedApproval, sign_approval
from lpbot.signing.mpc.auth import HEADER, sign_request
from lpbot.signing.mpc.errors import CosignerRefused
from lpbot.signing.mpc.owner import CosignerOwner
from tests.signing.conftest import API_KEY_ENV, APPROVER_KEY, running_cosigner
from tests.signing.test_policy import (
    ATTACKER,
    MULTISEND,
    NPM,
    ROUTER,
    _calls,
    _encode_calls_with,
    _report,
    _safe_tx,
)

OWNER_KEY = "0x" + "b2" * 32
APPROVER = LocalKeySigner.from_key(APPROVER_KEY)


@pytest.fixture(scope="module")
def cosigner_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("cosigner-key")
    os.environ["LPBOT_TEST_COSIGNER_KEYSTORE_PASSWORD"] = "keystore password of the co-signer"
    write_keystore(
        home / "owner.json",
        bytes.fromhex(OWNER_KEY[2:]),
        os.environ["LPBOT_TEST_COSIGNER_KEYSTORE_PASSWORD"],
    )
    config = {
        "mode": "key",
        "port": free_port(),
        "keystore": str(home / "owner.json"),
        "keystore_password_env": "LPBOT_TEST_COSIGNER_KEYSTORE_PASSWORD",
        "ledger": str(home / "cosigner.sqlite"),
        "policy": {
            "approvers": [APPROVER.address],
            "position_manager": NPM,
            "swap_router": ROUTER,
            "multisend_call_only": MULTISEND,
            "max_deadline_s": 10**9,  # the report's fixed deadline is in the past
            "chain_ids": [31337],
        },
    }
    with running_cosigner(config, home) as url:
        yield url


@pytest.fixture(scope="module")
def owner(cosigner_url: str) -> Iterator[CosignerOwner]:
    o = CosignerOwner(cosigner_url, API_KEY_ENV)
    yield o
    o.close()


def _approval(report: dict[str, object], digest: bytes) -> SignedApproval:
    return sign_approval(
        APPROVER,
        report_hash=str(report["report_hash"]),
        digest="0x" + digest.hex(),
        chain_id=31337,
        expires_at=int(time.time()) + 600,
    )


def test_cosigner_owner_signs_an_approved_rebalance(owner: CosignerOwner) -> None:
    assert owner.address == Account.from_key(OWNER_KEY).address
    calls = _calls()
    st = _safe_tx(calls, nonce=10)
    report = _report(calls)
    sig = owner.sign_safe_tx(st, report=report, approval=_approval(report, st.hash()))
    assert Account._recover_hash(st.hash(), vrs=(sig.v, sig.r, sig.s)) == owner.address


def test_cosigner_owner_refuses_a_tampered_batch_even_when_approved(owner: CosignerOwner) -> None:
    calls = _calls()
    report = _report(calls)
    calls[-1] = _encode_calls_with(safe_for_mint=ATTACKER)[-1]  # the mint now pays someone else
    st = _safe_tx(calls, nonce=11)
    with pytest.raises(CosignerRefused, match=r"\(mint\): recipient is " + ATTACKER):
        owner.sign_safe_tx(st, report=report, approval=_approval(report, st.hash()))


def test_cosigner_owner_signs_nothing_without_an_approval(owner: CosignerOwner) -> None:
    with pytest.raises(Refused, match="signed approval"):
        owner.sign_digest(bytes(32))
    calls = _calls()
    st = _safe_tx(calls, nonce=12)
    forged = _approval(_report(calls), st.hash())
    other = LocalKeySigner.from_key("0x" + "c3" * 32)
    forged = forged.model_copy(
        update={
            "signature": sign_approval(
                other,
                report_hash=forged.report_hash,
                digest=forged.digest,
                chain_id=31337,
                expires_at=forged.expires_at,
            ).signature
        }
    )
    with pytest.raises(CosignerRefused, match="recovers to"):
        owner.sign_safe_tx(st, report=_report(calls), approval=forged)


def _post(url: str, body: bytes, header: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[HEADER] = header
    return requests.post(f"{url}/v1/sign", data=body, headers=headers, timeout=5)


def test_unauthenticated_and_replayed_requests_are_refused(cosigner_url: str) -> None:
    body = json.dumps({"op": "status"}).encode()
    assert _post(cosigner_url, body, None).status_code == 401
    wrong = sign_request(b"\x01" * 32, "POST", "/v1/sign", body)
    reply = _post(cosigner_url, body, wrong)
    assert reply.status_code == 401 and "bad request signature" in reply.text
    key = bytes.fromhex(os.environ[API_KEY_ENV])
    header = sign_request(key, "POST", "/v1/sign", body)
    assert _post(cosigner_url, body, header).status_code == 200
    replay = _post(cosigner_url, body, header)
    assert replay.status_code == 401 and "replayed" in replay.text
    stale = sign_request(key, "POST", "/v1/sign", body, now=1_000_000_000)
    assert "more than 30 s" in _post(cosigner_url, body, stale).text
    # a signed header does not carry over to another body
    other = json.dumps({"op": "sign", "digest": "0x" + "00" * 32}).encode()
    assert (
        _post(cosigner_url, other, sign_request(key, "POST", "/v1/sign", body)).status_code == 401
    )


def test_an_idle_connection_blocks_nothing(cosigner_url: str, owner: CosignerOwner) -> None:
    host, port = cosigner_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as idle:
        idle.sendall(b"POST /v1/sign HTTP/1.1\r\nContent-Length: 100\r\n\r\n")  # and then nothing
        assert CosignerOwner(cosigner_url, API_KEY_ENV).address == owner.address
    big = b"x" * (4 * 1024 * 1024 + 1)
    assert _post(cosigner_url, big, None).status_code == 413


def test_keystore_and_config_are_checked(tmp_path: Path) -> None:
    from lpbot.errors import ConfigError
    from lpbot.signing.mpc.cosigner import CosignerConfig

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"mode": "key", "port": 4000, "ledger": "x.sqlite"}))
    with pytest.raises(ConfigError, match="needs keystore"):
        CosignerConfig.read(path)


def test_cli_approve_then_cosign_gives_a_signature_rebalance_execute_reads(
    cosigner_url: str, owner: CosignerOwner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lpbot.report.dryrun import canonical_hash
    from lpbot.signing.mpc import commands
    from lpbot.signing.safe import InnerCall, build_safe_transaction, read_signature_file

    calls = _calls()
    safe_tx = build_safe_transaction(
        chain_id=31337,
        safe=_report(calls)["safe"],
        nonce=13,
        calls=[InnerCall(c.to, c.data) for c in calls],
        multisend_call_only=MULTISEND,
    )
    body = {k: v for k, v in _report(calls).items() if k != "report_hash"}
    body["safe_tx"] = safe_tx.to_json()
    report = {**body, "report_hash": canonical_hash(body), "report_id": "r13"}
    (tmp_path / "r13.json").write_text(json.dumps(report))
    monkeypatch.setenv("LPBOT_TEST_APPROVER_PASSWORD", "approver keystore password")
    write_keystore(
        tmp_path / "approver.json", bytes.fromhex(APPROVER_KEY[2:]), "approver keystore password"
    )

    approve = ["cosigner", "approve", "--report", str(tmp_path / "r13.json")]
    approve += ["--keystore", str(tmp_path / "approver.json")]
    approve += ["--password-env", "LPBOT_TEST_APPROVER_PASSWORD", "--ttl", "300"]
    assert commands.main(approve) == 0
    sign = ["cosigner", "sign", "--url", cosigner_url, "--api-key-env", API_KEY_ENV]
    sign += [
        "--report",
        str(tmp_path / "r13.json"),
        "--approval",
        str(tmp_path / "r13.approval.json"),
    ]
    sign += ["--out", str(tmp_path / "sig.json")]
    assert commands.main(sign) == 0
    sig = read_signature_file(tmp_path / "sig.json", safe_tx, [owner.address])
    assert sig.owner == owner.address

    # the report edited after approval: nothing is signed
    report["deadline"] -= 1
    (tmp_path / "r13.json").write_text(json.dumps(report))
    assert commands.main(sign) == 2
    assert commands.main(approve) == 2
    # through lpbot's own entry point too: one line, no traceback
    from lpbot.cli import main as lpbot_main

    assert lpbot_main(sign) == 2
