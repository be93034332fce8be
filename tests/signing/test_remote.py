"""``RemoteSigner`` against a small Web3Signer stand-in on 127.0.0.1 that signs with a test key.

The stand-in serves the eth1 JSON-RPC calls as Web3Signer documents them: ``eth_accounts``,
``eth_sign`` (EIP-191), ``eth_signTransaction`` (hex quantities, no chainId: the service's own
chain id is used) and ``eth_signTypedData`` (address and the typed data as a JSON string).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data

from lpbot.errors import NeedsAttention, Refused, RetryLater
from lpbot.signing.base import Signer
from lpbot.signing.mpc import SafeTx
from lpbot.signing.remote import RemoteSigner
from tests.signing.test_mpc import MAIL

KEY = "0x" + "42" * 32
TEST_ACCOUNT = Account.from_key(KEY)


class StandIn:
    """A Web3Signer-compatible endpoint for one key, configured for one chain id."""

    def __init__(self, chain_id: int = 31337) -> None:
        self.chain_id = chain_id
        self.calls: list[str] = []
        self.server = HTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def dispatch(self, method: str, params: list[Any]) -> Any:
        self.calls.append(method)
        if method == "eth_accounts":
            return [TEST_ACCOUNT.address.lower()]
        if method in ("eth_sign", "eth_signTypedData", "eth_signTransaction"):
            sender = params[0]["from"] if method == "eth_signTransaction" else params[0]
            if sender.lower() != TEST_ACCOUNT.address.lower():
                raise LookupError("From address does not match unlocked account")
        if method == "eth_sign":
            signed = TEST_ACCOUNT.sign_message(encode_defunct(hexstr=params[1]))
            return "0x" + bytes(signed.signature).hex()
        if method == "eth_signTypedData":
            signed = TEST_ACCOUNT.sign_message(
                encode_typed_data(full_message=json.loads(params[1]))
            )
            return "0x" + bytes(signed.signature).hex()
        if method == "eth_signTransaction":
            p = params[0]
            tx = {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": int(p["nonce"], 16),
                "to": p.get("to"),
                "value": int(p.get("value", "0x0"), 16),
                "data": p.get("data", "0x"),
                "gas": int(p.get("gas", hex(90000)), 16),
                "maxFeePerGas": int(p["maxFeePerGas"], 16),
                "maxPriorityFeePerGas": int(p["maxPriorityFeePerGas"], 16),
            }
            return "0x" + bytes(TEST_ACCOUNT.sign_transaction(tx).rawTransaction).hex()
        raise NotImplementedError(method)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": req["id"]}
                try:
                    reply["result"] = standin.dispatch(req["method"], req["params"])
                except NotImplementedError:
                    reply["error"] = {"code": -32601, "message": "Method not found"}
                except LookupError as exc:
                    reply["error"] = {"code": -32000, "message": str(exc)}
                body = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def standin() -> Iterator[StandIn]:
    s = StandIn()
    yield s
    s.close()


def _tx(chain_id: int = 31337) -> dict[str, Any]:
    return {
        "type": 2,
        "chainId": chain_id,
        "nonce": 3,
        "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "value": 10**15,
        "data": b"\x01\x02",
        "gas": 50_000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }


def test_connect_finds_the_account(standin: StandIn) -> None:
    signer = RemoteSigner.connect(standin.url)
    assert isinstance(signer, Signer)
    assert signer.address == TEST_ACCOUNT.address
    with pytest.raises(NeedsAttention, match="does not hold"):
        RemoteSigner.connect(standin.url, "0x" + "11" * 20)


def test_sign_transaction_recovers(standin: StandIn) -> None:
    signer = RemoteSigner.connect(standin.url)
    signed = signer.sign_transaction(_tx())
    assert Account.recover_transaction(signed.raw) == TEST_ACCOUNT.address
    assert signed.raw == bytes(TEST_ACCOUNT.sign_transaction(_tx()).rawTransaction)


def test_transaction_for_another_chain_is_caught(standin: StandIn) -> None:
    signer = RemoteSigner.connect(standin.url)
    with pytest.raises(NeedsAttention, match="chain id 31337, asked 1"):
        signer.sign_transaction(_tx(chain_id=1))


def test_typed_data_and_safe_tx_recover(standin: StandIn) -> None:
    signer = RemoteSigner.connect(standin.url)
    sig = signer.sign_typed_data(MAIL)
    signable = encode_typed_data(full_message=MAIL)
    assert Account.recover_message(signable, vrs=(sig.v, sig.r, sig.s)) == TEST_ACCOUNT.address
    safe_tx = SafeTx(
        chain_id=31337,
        safe="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        to=TEST_ACCOUNT.address,
        value=1,
        data=b"",
        operation=0,
        nonce=0,
    )
    sig = signer.sign_safe_tx(safe_tx)
    assert Account._recover_hash(safe_tx.hash(), vrs=(sig.v, sig.r, sig.s)) == TEST_ACCOUNT.address


def test_personal_message_recovers(standin: StandIn) -> None:
    signer = RemoteSigner.connect(standin.url)
    sig = signer.sign_message(b"lpbot")
    digest = _hash_eip191_message(encode_defunct(primitive=b"lpbot"))
    assert Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s)) == TEST_ACCOUNT.address


def test_bare_digest_is_refused(standin: StandIn) -> None:
    signer = RemoteSigner.connect(standin.url)
    with pytest.raises(Refused, match="signs no bare digest"):
        signer.sign_digest(bytes(32))
    assert "eth_sign" not in standin.calls


def test_errors_say_what_happens_next(standin: StandIn) -> None:
    wrong = RemoteSigner(standin.url, "0x" + "11" * 20)
    with pytest.raises(Refused, match="does not match unlocked account"):
        wrong.sign_message(b"x")
    url = standin.url
    standin.close()
    with pytest.raises(RetryLater):
        RemoteSigner(url, TEST_ACCOUNT.address, timeout=2).sign_message(b"x")
    with pytest.raises(NeedsAttention, match="https"):
        RemoteSigner("http://signer.example:9000", TEST_ACCOUNT.address)
