"""``lpbot cosigner serve`` in MPC mode as its own process: party 2 of the 2-of-3 key, behind its
policy (signed approvals), its authenticated API, its identity pins and its bans."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from lpbot.devnet.anvil import free_port
from lpbot.errors import Halt, Refused
from lpbot.report.dryrun import canonical_hash
from lpbot.signing.local import LocalKeySigner
from lpbot.signing.mpc import (
    Coordinator,
    CosignerRefused,
    LocalParty,
    MpcAborted,
    MpcConfig,
    MpcSigner,
    RemoteParty,
    commands,
)
from lpbot.signing.mpc.approval import SignedApproval, sign_approval
from lpbot.signing.mpc.config import fingerprint
from lpbot.signing.mpc.cosigner import Cosigner, CosignerConfig
from lpbot.signing.mpc.links import HttpLink, SidecarLink
from lpbot.signing.mpc.signer import tx_digest
from tests.conftest import Devnet
from tests.signing.conftest import (
    API_KEY_ENV,
    APPROVER_KEY,
    MpcKey,
    needs_backend,
    running_cosigner,
)
from tests.signing.test_mpc_devnet import eip1559, fund

pytestmark = needs_backend

RECIPIENT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # Anvil account 3
EVIL_PARTY = Path(__file__).with_name("evil_party.js")
APPROVER = LocalKeySigner.from_key(APPROVER_KEY)


@dataclass(frozen=True)
class CosignerProcess:
    url: str
    home: Path
    config: MpcConfig  # party 1 and 3 local, party 2 this co-signer (required in every quorum)


def _policy() -> dict[str, Any]:
    return {
        "approvers": [APPROVER.address],
        "max_value_wei": 10**16,
        "allowed_calls": {RECIPIENT: ["0x"]},
        "max_signatures_per_day": 50,
        "chain_ids": [31337],
    }


@pytest.fixture(scope="module")
def cosigner(key3: MpcKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CosignerProcess]:
    home = tmp_path_factory.mktemp("cosigner")
    party2 = key3.config.party(2)
    config = {
        "mode": "mpc",
        "index": 2,
        "party_dir": str(party2.dir),  # type: ignore[union-attr]
        "passphrase_env": "LPBOT_TEST_MPC3_2",
        "port": free_port(),
        "ledger": str(home / "cosigner.sqlite"),
        "policy": _policy(),
    }
    with running_cosigner(config, home) as url:
        parties = tuple(
            RemoteParty(index=2, url=url, api_key_env=API_KEY_ENV) if p.index == 2 else p
            for p in key3.config.parties
        )
        mpc = key3.config.model_copy(
            update={"parties": parties, "signers": (1, 2), "cosigner": None}
        )
        assert mpc.required_party == 2  # the one remote party is the co-signer
        yield CosignerProcess(url=url, home=home, config=mpc)


@pytest.fixture(scope="module")
def cosigned(cosigner: CosignerProcess) -> Iterator[MpcSigner]:
    """Parties 1 (local) and 2 (the co-signer) sign."""
    with MpcSigner.open(cosigner.config) as signer:
        yield signer


def _tx(value: int = 10**15, nonce: int = 0) -> dict[str, Any]:
    return {
        "type": 2,
        "chainId": 31337,
        "nonce": nonce,
        "to": RECIPIENT,
        "value": value,
        "data": b"",
        "gas": 21000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }


def _approved(tx: dict[str, Any]) -> tuple[dict[str, Any], SignedApproval]:
    body = {
        "chain_id": 31337,
        "calls": [{"label": "pay", "to": tx["to"], "data": "0x", "value": tx["value"]}],
    }
    report = {**body, "report_hash": canonical_hash(body)}
    approval = sign_approval(
        APPROVER,
        report_hash=report["report_hash"],
        digest="0x" + tx_digest(tx).hex(),
        chain_id=31337,
        expires_at=int(time.time()) + 600,
    )
    return report, approval


def test_cosigner_refuses_an_unapproved_transaction(cosigned: MpcSigner) -> None:
    with pytest.raises(CosignerRefused, match=r"party 2.*no valid signed approval"):
        cosigned.sign_transaction(_tx(nonce=900))


def test_cosigner_refuses_beyond_its_limits(cosigned: MpcSigner) -> None:
    tx = _tx(value=10**17, nonce=901)
    report, approval = _approved(tx)
    with pytest.raises(CosignerRefused, match="exceeds the limit"):
        cosigned.sign_transaction(tx, report=report, approval=approval)


def test_cosigner_refuses_a_bare_digest(cosigned: MpcSigner) -> None:
    with pytest.raises(CosignerRefused, match="carries no transaction"):
        cosigned.sign_digest(bytes(range(32)))


def test_a_quorum_without_the_cosigner_is_refused(cosigner: CosignerProcess) -> None:
    with (
        MpcSigner.open(cosigner.config, signers=(1, 3)) as signer,
        pytest.raises(Refused, match="leave out the co-signer"),
    ):
        signer.sign_digest(os.urandom(32))


def test_cosigner_takes_no_unlock_or_init_from_the_network(cosigner: CosignerProcess) -> None:
    link = HttpLink(2, cosigner.url, bytes.fromhex(os.environ[API_KEY_ENV]))
    for op in ("unlock", "init", "shutdown"):
        with pytest.raises(Halt, match="is not served"):
            link.request(op, 5)
    # nor a step or abort of a session it is not in
    with pytest.raises(Halt, match="not the session"):
        link.request("abort", 5, session="00" * 32)
    assert link.request("status", 5)["fingerprint"].count(":") == 9
    link.close()


@pytest.mark.devnet
def test_cosigner_signs_an_approved_transaction(
    chain: Devnet, cosigner: CosignerProcess, cosigned: MpcSigner
) -> None:
    w3 = chain.w3
    address = cosigner.config.address
    assert address is not None
    fund(chain, address, 10**17)
    tx = eip1559(w3, address, RECIPIENT, 10**15)
    report, approval = _approved(tx)
    signed = cosigned.sign_transaction(tx, report=report, approval=approval)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw))
    assert receipt["status"] == 1 and receipt["from"] == address


def test_a_cheating_peer_is_banned_until_cleared(cosigner: CosignerProcess) -> None:
    tx = _tx(nonce=950)
    report, approval = _approved(tx)
    with (
        MpcSigner.open(cosigner.config, scripts={1: EVIL_PARTY}) as cheat,
        pytest.raises(MpcAborted, match="Party 1"),
    ):
        cheat.sign_transaction(tx, report=report, approval=approval)
    tx = _tx(nonce=951)
    report, approval = _approved(tx)
    with MpcSigner.open(cosigner.config) as honest:
        with pytest.raises(CosignerRefused, match="party 1 is banned"):
            honest.sign_transaction(tx, report=report, approval=approval)
        config = cosigner.home / "cosigner.json"
        assert commands.main(["cosigner", "unban", "--config", str(config), "--party", "1"]) == 0
        honest.sign_transaction(tx, report=report, approval=approval)


def test_substituted_identity_at_keygen_is_detected(
    key3: MpcKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coordinator that plays party 1 to the co-signer (its own identity key in place of
    party 1's) is refused before any protocol message: the co-signer pins party 1's fingerprint."""
    monkeypatch.setenv("LPBOT_TEST_KEYGEN_COSIGNER", "passphrase of a fresh co-signer party")
    # party 1's identity key, as party 1 shows it (its public file)
    identity_1 = json.loads((key3.home / "party-1" / "party.json").read_text())["identity"]
    config = CosignerConfig(
        mode="mpc",
        index=2,
        party_dir=tmp_path / "party-2",
        passphrase_env="LPBOT_TEST_KEYGEN_COSIGNER",
        port=free_port(),
        api_key_env=API_KEY_ENV,
        ledger=tmp_path / "cosigner.sqlite",
        allow_keygen=True,
        peer_identities={1: fingerprint(identity_1)},
        policy=_policy(),  # type: ignore[arg-type]
    )
    cosigner = Cosigner.start(config)
    try:
        assert cosigner.fingerprint == fingerprint(str(cosigner.identity))
        forged = "A" * 43  # the coordinator's own X25519 key in place of party 1's
        start = {
            "op": "start",
            "session": secrets.token_hex(32),
            "kind": "keygen",
            "threshold": 2,
            "share_count": 2,
        }
        reply = cosigner.handle({**start, "identities": {"1": forged, "2": cosigner.identity}})
        assert reply["ok"] is False and "substituted" in reply["error"]["message"]
        reply = cosigner.handle({**start, "identities": {"1": identity_1, "2": "B" * 43}})
        assert reply["ok"] is False and "not its own" in reply["error"]["message"]
        reply = cosigner.handle({**start, "identities": {"1": identity_1, "2": cosigner.identity}})
        assert reply["ok"] is True, reply  # the pinned identities: the session starts
        # one session at a time: another start waits until this one ends or goes idle
        other = {**start, "session": secrets.token_hex(32)}
        busy = cosigner.handle({**other, "identities": {"1": identity_1, "2": cosigner.identity}})
        assert busy["ok"] is False and busy["error"]["code"] == "busy"
        assert cosigner.handle({"op": "abort", "session": other["session"]})["ok"] is False
        assert cosigner.handle({"op": "abort", "session": start["session"]})["ok"] is True
        again = cosigner.handle({**other, "identities": {"1": identity_1, "2": cosigner.identity}})
        assert again["ok"] is True, again
        cosigner.handle({"op": "abort", "session": other["session"]})
    finally:
        cosigner.close()


def test_keygen_across_hosts_with_pinned_identities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The topology of the README: the bot's party here, the co-signer a process of its own. Each
    pins the other's identity fingerprint, which each party shows itself."""
    monkeypatch.setenv("LPBOT_TEST_KG_1", "passphrase of the bot's party")
    monkeypatch.setenv("LPBOT_TEST_KG_2", "passphrase of the co-signer's party")
    bot_party = SidecarLink(1, tmp_path / "party-1", "LPBOT_TEST_KG_1")
    try:
        identity_1 = bot_party.request("init", 60, index=1)["identity"]
    finally:
        bot_party.close()
    config = {
        "mode": "mpc",
        "index": 2,
        "party_dir": str(tmp_path / "party-2"),
        "passphrase_env": "LPBOT_TEST_KG_2",
        "port": free_port(),
        "ledger": str(tmp_path / "cosigner.sqlite"),
        "allow_keygen": True,
        "peer_identities": {"1": fingerprint(identity_1)},
        "policy": _policy(),
    }
    with running_cosigner(config, tmp_path) as url:
        shown = HttpLink(2, url, bytes.fromhex(os.environ[API_KEY_ENV])).request("status", 5)
        parties = (
            LocalParty(index=1, dir=tmp_path / "party-1", passphrase_env="LPBOT_TEST_KG_1"),
            RemoteParty(index=2, url=url, api_key_env=API_KEY_ENV, identity="0000:" * 9 + "0000"),
        )
        mpc = MpcConfig(threshold=2, share_count=2, parties=parties)
        assert mpc.required_party == 2 and mpc.local_count() == 1
        with Coordinator.open(mpc) as coordinator, pytest.raises(Refused, match="not the pinned"):
            coordinator.keygen()  # a co-signer that is not the one pinned on the bot's side
        pinned = (parties[0], parties[1].model_copy(update={"identity": shown["fingerprint"]}))
        mpc = mpc.model_copy(update={"parties": pinned})
        with Coordinator.open(mpc) as coordinator:
            info = coordinator.keygen()
        assert shown["fingerprint"] == fingerprint(str(shown["identity"]))
        mpc = mpc.model_copy(update={"address": info.address})
        tx = _tx(nonce=0)
        report, approval = _approved(tx)
        with MpcSigner.open(mpc) as signer:
            signed = signer.sign_transaction(tx, report=report, approval=approval)
        assert Account.recover_transaction(signed.raw) == info.address
