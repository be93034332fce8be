"""``lpbot cosigner serve`` as its own process: party 2 of the 2-of-3 key, behind its policy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from lpbot.chain.artifacts import project_root
from lpbot.devnet.anvil import free_port
from lpbot.signing.mpc import CosignerRefused, MpcConfig, MpcSigner, RemoteParty
from lpbot.signing.mpc.signer import tx_digest
from tests.conftest import Devnet
from tests.signing.conftest import MpcKey, needs_backend
from tests.signing.test_mpc_devnet import eip1559, fund

pytestmark = needs_backend

RECIPIENT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # Anvil account 3


@dataclass(frozen=True)
class Cosigner:
    url: str
    approvals: Path
    ledger: Path
    config: MpcConfig  # party 1 and 3 local, party 2 this co-signer


@pytest.fixture(scope="module")
def cosigner(key3: MpcKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cosigner]:
    home = tmp_path_factory.mktemp("cosigner")
    approvals = home / "approvals"
    approvals.mkdir()
    port = free_port()
    party2 = key3.config.party(2)
    config = {
        "index": 2,
        "party_dir": str(party2.dir),  # type: ignore[union-attr]
        "passphrase_env": "LPBOT_TEST_MPC3_2",
        "port": port,
        "approvals_dir": str(approvals),
        "ledger": str(home / "ledger.json"),
        "policy": {
            "max_value_wei": 10**16,
            "allowed_calls": {RECIPIENT: ["0x"]},
            "max_signatures_per_day": 5,
            "chain_ids": [31337],
        },
    }
    path = home / "cosigner.json"
    path.write_text(json.dumps(config))
    command = ["cosigner", "serve", "--config", str(path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lpbot.signing.mpc.commands", *command], cwd=project_root()
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = requests.post(f"{url}/v1/party", json={"op": "status"}, timeout=5).json()
                assert reply["result"]["unlocked"], reply
                break
            except requests.ConnectionError:
                assert proc.poll() is None, "co-signer exited"
                assert time.monotonic() < deadline, "co-signer did not start"
                time.sleep(0.2)
        parties = tuple(
            RemoteParty(index=2, url=url) if p.index == 2 else p for p in key3.config.parties
        )
        mpc = key3.config.model_copy(update={"parties": parties, "signers": (1, 2)})
        yield Cosigner(url=url, approvals=approvals, ledger=home / "ledger.json", config=mpc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def cosigned(cosigner: Cosigner) -> Iterator[MpcSigner]:
    """Parties 1 (local) and 2 (the co-signer) sign."""
    with MpcSigner.open(cosigner.config) as signer:
        yield signer


def _approve(cosigner: Cosigner, name: str, **record: Any) -> None:
    body = {"report_hash": "0x" + "cd" * 32, "approved": True, **record}
    (cosigner.approvals / f"{name}.json").write_text(json.dumps(body))


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


def test_cosigner_refuses_an_unapproved_transaction(cosigned: MpcSigner) -> None:
    with pytest.raises(CosignerRefused, match=r"party 2.*no dry-run report covers tx digest"):
        cosigned.sign_transaction(_tx(nonce=900))


def test_cosigner_refuses_beyond_its_limits(cosigner: Cosigner, cosigned: MpcSigner) -> None:
    tx = _tx(value=10**17, nonce=901)
    _approve(cosigner, "too-much", tx_digests=["0x" + tx_digest(tx).hex()])
    with pytest.raises(CosignerRefused, match="exceeds the limit"):
        cosigned.sign_transaction(tx)


def test_cosigner_refuses_a_bare_digest(cosigner: Cosigner, cosigned: MpcSigner) -> None:
    digest = bytes(range(32))
    _approve(cosigner, "bare", safe_tx_hashes=["0x" + digest.hex()])
    with pytest.raises(CosignerRefused, match="carries no transaction"):
        cosigned.sign_digest(digest)


def test_cosigner_takes_no_unlock_or_init_from_the_network(cosigner: Cosigner) -> None:
    for op in ("unlock", "init", "shutdown"):
        reply = requests.post(f"{cosigner.url}/v1/party", json={"op": op}, timeout=5).json()
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request"


@pytest.mark.devnet
def test_cosigner_signs_an_approved_transaction(
    chain: Devnet, cosigner: Cosigner, cosigned: MpcSigner
) -> None:
    w3 = chain.w3
    address = cosigner.config.address
    assert address is not None
    fund(chain, address, 10**17)
    tx = eip1559(w3, address, RECIPIENT, 10**15)
    _approve(cosigner, "approved", tx_digests=["0x" + tx_digest(tx).hex()], chain_id=31337)

    signed = cosigned.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw))
    assert receipt["status"] == 1 and receipt["from"] == address
    ledger = json.loads(cosigner.ledger.read_text())
    assert sum(ledger["days"].values()) >= 1
