"""A JSON-RPC node stand-in on 127.0.0.1: answers each method from a table, records every call.

Answers are written in the real wire format (hex quantities, ABI-encoded ``eth_call`` results);
a method it was not given answers JSON-RPC's "Method not found" (-32601), as a node does, or,
with ``forward_to``, is passed on to that node (a provider in front of Anvil). An ``RpcError``
can carry the HTTP status, headers and body a provider sends with it (QuickNode's 413, a 429
with ``Retry-After``, an HTML 502 from a load balancer).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

Handler = Callable[[list[Any]], Any]


class RpcError(Exception):
    """Raised by a handler: answered as a JSON-RPC error object, with HTTP ``status`` (200 by
    default), extra ``headers``, and ``body`` in place of the JSON answer when given."""

    def __init__(
        self,
        code: int,
        message: str,
        data: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data
        self.status = status
        self.headers = headers or {}
        self.body = body


@dataclass
class RpcStandIn:
    url: str = ""
    chain_id: int = 1
    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)
    forward_to: str | None = None
    batches: bool = True  # False: a JSON-RPC batch is answered with one error, as some nodes do
    # the HTTP answer of the request being served, set by a failing handler
    _http: list[RpcError] = field(default_factory=list)

    def answer(self, method: str, result: Any) -> None:
        """Answer ``method`` with ``result`` (a callable gets the params and returns the result)."""
        self.handlers[method] = result if callable(result) else (lambda _params: result)

    def params_of(self, method: str) -> list[list[Any]]:
        return [params for m, params in self.calls if m == method]

    def _respond(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params", [])
        self.calls.append((method, params))
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        if method == "eth_chainId" and method not in self.handlers and not self.forward_to:
            reply["result"] = hex(self.chain_id)
            return reply
        handler = self.handlers.get(method)
        if handler is None and self.forward_to:
            handler = functools.partial(self.forward, method)
        if handler is None:
            reply["error"] = {"code": -32601, "message": "Method not found"}
            return reply
        try:
            reply["result"] = handler(params)
        except RpcError as exc:
            reply["error"] = exc.error
            if exc.status != 200 or exc.body is not None or exc.headers:
                self._http.append(exc)
        return reply

    def forward(self, method: str, params: list[Any]) -> Any:
        """Ask the node behind (``forward_to``) and return its result (its error, raised)."""
        assert self.forward_to is not None
        answer = requests.post(
            self.forward_to,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=30,
        ).json()
        if "error" in answer:
            error = answer["error"]
            raise RpcError(error["code"], error["message"], error.get("data"))
        return answer["result"]


@contextmanager
def serve(standin: RpcStandIn) -> Iterator[RpcStandIn]:
    """Serve ``standin`` on a free loopback port for the duration of the block."""

    class _Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                standin._http.clear()
                if isinstance(body, list) and not standin.batches:
                    out: Any = {
                        "jsonrpc": "2.0", "id": None,
                        "error": {"code": -32600, "message": "batch requests are not supported"},
                    }  # fmt: skip
                elif isinstance(body, list):
                    out = [standin._respond(r) for r in body]
                else:
                    out = standin._respond(body)
                http = standin._http[0] if standin._http else None
            payload = json.dumps(out).encode()
            status, headers = 200, {"Content-Type": "application/json"}
            if http is not None:
                status = http.status
                headers.update(http.headers)
                if http.body is not None:
                    payload = http.body.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    lock = threading.Lock()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
