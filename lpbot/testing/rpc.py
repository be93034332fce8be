"""JSON-RPC stand-ins for tests: a provider that records every request it makes, and a local
submit endpoint (Flashbots Protect-like) that records what it receives and forwards the raw
transaction to a chain, as a protected RPC forwards it to builders."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rlp
from eth_account import Account
from web3 import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse


class RecordingProvider(HTTPProvider):
    """An HTTP provider that keeps every (method, params) it sends, in order, and the answers."""

    def __init__(self, endpoint_uri: str) -> None:
        super().__init__(endpoint_uri, request_kwargs={"timeout": 30})
        self.requests: list[tuple[str, Any]] = []
        self.responses: list[Any] = []

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.requests.append((str(method), params))
        self.responses.append(None)
        response = super().make_request(method, params)
        self.responses[len(self.requests) - 1] = response
        return response

    def methods(self) -> list[str]:
        return [m for m, _ in self.requests]


@dataclass(frozen=True)
class RawTx:
    """The fields of a signed EIP-1559 transaction (type 2), decoded."""

    sender: str
    nonce: int
    to: str
    data: bytes
    gas: int
    max_fee_per_gas: int


def decode_raw(raw: str | bytes) -> RawTx:
    """EIP-2718 type 2: 0x02 || rlp([chainId, nonce, maxPriorityFee, maxFee, gas, to, value,
    data, accessList, yParity, r, s])."""
    b = bytes.fromhex(raw[2:]) if isinstance(raw, str) else raw
    if b[0] != 2:
        raise ValueError("not an EIP-1559 transaction")
    f = rlp.decode(b[1:])
    sender = Account.recover_transaction(b)
    return RawTx(
        sender=sender,
        nonce=int.from_bytes(f[1], "big"),
        to="0x" + bytes(f[5]).hex(),
        data=bytes(f[7]),
        gas=int.from_bytes(f[4], "big"),
        max_fee_per_gas=int.from_bytes(f[3], "big"),
    )


class SubmitEndpoint:
    """A local protected-RPC stand-in on 127.0.0.1: ``eth_sendRawTransaction`` is recorded and
    forwarded to ``upstream`` (the chain); any other method is answered by ``upstream`` too."""

    def __init__(self, upstream: str) -> None:
        self.upstream = HTTPProvider(upstream)
        self.received: list[tuple[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SubmitEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def raw_transactions(self) -> list[str]:
        return [p[0] for m, p in self.received if m == "eth_sendRawTransaction"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.received.append((body["method"], body.get("params", [])))
                reply = dict(endpoint.upstream.make_request(body["method"], body["params"]))
                reply["id"] = body.get("id")
                out = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
