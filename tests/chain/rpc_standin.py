"""A JSON-RPC node stand-in on 127.0.0.1: answers each method from a table, records every call.

Answers are written in the real wire format (hex quantities, ABI-encoded ``eth_call`` results);
a method it was not given answers JSON-RPC's "Method not found" (-32601), as a node does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[list[Any]], Any]


class RpcError(Exception):
    """Raised by a handler: answered as a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data


@dataclass
class RpcStandIn:
    url: str = ""
    chain_id: int = 1
    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)

    def answer(self, method: str, result: Any) -> None:
        """Answer ``method`` with ``result`` (a callable gets the params and returns the result)."""
        self.handlers[method] = result if callable(result) else (lambda _params: result)

    def params_of(self, method: str) -> list[list[Any]]:
        return [params for m, params in self.calls if m == method]

    def _respond(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params", [])
        self.calls.append((method, params))
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        if method == "eth_chainId" and method not in self.handlers:
            reply["result"] = hex(self.chain_id)
            return reply
        handler = self.handlers.get(method)
        if handler is None:
            reply["error"] = {"code": -32601, "message": "Method not found"}
            return reply
        try:
            reply["result"] = handler(params)
        except RpcError as exc:
            reply["error"] = exc.error
        return reply


@contextmanager
def serve(standin: RpcStandIn) -> Iterator[RpcStandIn]:
    """Serve ``standin`` on a free loopback port for the duration of the block."""

    class _Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if isinstance(body, list):
                out: Any = [standin._respond(r) for r in body]
            else:
                out = standin._respond(body)
            payload = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

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
