"""What the venue stand-ins share: a local HTTP server backed by ``PaperExchange``, faults,
and a record of every request with whether its signature checked out.

A venue's stand-in (``binance_standin``, ``okx_standin``, ``bybit_standin``) subclasses
``VenueStandIn`` with its routes, its request signing check (``authenticate``) and its error
envelope (``error_body``). Faults can be queued per endpoint: an HTTP status (429, 418, 503), a
venue error code, or a delay before or after the request is executed (the client times out;
with "after", the order exists nonetheless).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl, urlsplit

from lpbot.hedge.base import ManualClock
from lpbot.hedge.paper import PaperExchange, PaperRejection, RejectCode

FaultKind = Literal["status", "error", "delay_before", "delay_after"]


@dataclass
class Fault:
    """What to do instead of (or around) the next matching request."""

    method: str
    path: str
    kind: FaultKind
    status: int = 503
    code: int = 0
    msg: str = ""
    delay_s: float = 0.0
    times: int = 1


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    api_key: str | None
    signature_valid: bool | None  # None: an unsigned (public) endpoint


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str  # the raw query string
    body: str  # the raw body
    params: dict[str, Any]  # query and body (form or JSON) together
    headers: dict[str, str]


def dec(value: Decimal | None, places: int = 8) -> str:
    if value is None:
        return "0"
    return f"{value:.{places}f}"


Route = Callable[[Any, dict[str, Any]], object]


@dataclass
class VenueStandIn:
    """The server and its paper venue; ``url`` is its base (``http://127.0.0.1:<port>``)."""

    paper: PaperExchange
    clock: ManualClock
    api_key: str = "standin-test-key"
    secret: str = "standin-test-secret"
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # a lag of the venue's look-up by client id: it answers "no such order" this many times
    lookup_misses: int = 0
    omit_mark: bool = False  # answer tickers without a mark price (last price only)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    ROUTES: ClassVar[dict[tuple[str, str], Route]] = {}
    PUBLIC: ClassVar[frozenset[str]] = frozenset()
    REJECTIONS: ClassVar[dict[RejectCode, tuple[int, str]]] = {}

    # ----------------------------------------------------------------------------- venue hooks

    def authenticate(self, r: Request) -> tuple[str | None, bool | None]:
        """(API key, signature valid?) of a request; (None, None) when it is not signed."""
        raise NotImplementedError

    def check_auth(self, r: Request, key: str | None, valid: bool | None) -> None:
        """Raise ``ApiError`` as the venue does for a bad key or signature."""
        raise NotImplementedError

    def error_body(self, status: int, code: int, msg: str) -> tuple[int, object]:
        raise NotImplementedError

    # ----------------------------------------------------------------------------- control

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    @contextmanager
    def running(self) -> Iterator[Self]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def do_DELETE(self) -> None:
                standin._handle(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._server = None

    # ----------------------------------------------------------------------------- plumbing

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (fault.method, fault.path) == (method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode() if length else ""
        params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        if body:
            if body.lstrip().startswith("{"):
                params.update(json.loads(body))
            else:
                params.update(dict(parse_qsl(body, keep_blank_values=True)))
        r = Request(method, parts.path, parts.query, body, params, dict(h.headers.items()))
        key, valid = self.authenticate(r)
        with self._lock:
            self.requests.append(Recorded(method, r.path, params, key, valid))
        fault = self._take_fault(method, r.path)
        status: int
        reply: object
        try:
            if fault is not None and fault.kind == "status":
                if fault.status >= 500:  # a gateway's page, not the venue's JSON
                    self._reply(h, fault.status, b"<html>Service Unavailable</html>", "text/html")
                    return
                raise ApiError(fault.status, fault.code or -1003, fault.msg or "Too many requests")
            if fault is not None and fault.kind == "error":
                raise ApiError(fault.status if fault.status < 500 else 400, fault.code, fault.msg)
            if fault is not None and fault.kind == "delay_before":
                time.sleep(fault.delay_s)
            if r.path not in self.PUBLIC:
                self.check_auth(r, key, valid)
            route = self.ROUTES.get((method, r.path))
            if route is None:
                raise ApiError(404, 404, f"Path {method} {r.path} not found")
            with self._lock:
                status, reply = 200, route(self, params)
        except ApiError as exc:
            status, reply = self.error_body(exc.status, exc.code, exc.msg)
        except PaperRejection as exc:
            code, msg = self.REJECTIONS[exc.code]
            status, reply = self.error_body(400, code, msg)
        if fault is not None and fault.kind == "delay_after":
            time.sleep(fault.delay_s)
        self._reply(h, status, json.dumps(reply).encode(), "application/json")

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass  # the client gave up (timed out) before the answer

    def _now(self) -> int:
        return self.clock.now_ms()

    def _miss_lookup(self) -> bool:
        """True while the configured look-up lag lasts (one miss per call)."""
        if self.lookup_misses > 0:
            self.lookup_misses -= 1
            return True
        return False
