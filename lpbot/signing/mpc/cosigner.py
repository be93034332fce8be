"""``lpbot cosigner serve``: one MPC party in its own process, behind its own policy.

The co-signer owns a party sidecar (its share, its passphrase, its directory) and serves the party
protocol over HTTP on 127.0.0.1 (``POST /v1/party``, the same JSON as the sidecar's stdin/stdout,
without ``id``). It forwards ``status``, ``step`` and ``abort`` as they are, and ``start`` only
after a check: a signing session must pass ``policy.check`` (approved dry-run report, limits,
daily count), key generation must be enabled in its config. A refusal is answered with
``{"ok": false, "error": {"code": "refused", "message": <reason>}}`` before its party has sent a
single protocol message; ``init``, ``unlock`` and ``shutdown`` are never taken from the network.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from lpbot.errors import ConfigError, LpbotError, NeedsAttention, Refused
from lpbot.signing.mpc.config import MAX_PARTIES
from lpbot.signing.mpc.links import SidecarLink
from lpbot.signing.mpc.policy import CosignerPolicy, Ledger, check, load_approvals

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
FORWARD_TIMEOUT_S = 300.0
MAX_BODY = 64 * 1024 * 1024


class CosignerConfig(BaseModel):
    """The co-signer's own configuration (``cosigner.json``); it names secrets, holds none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: Annotated[int, Field(ge=1, le=MAX_PARTIES)]
    party_dir: Path
    passphrase_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
    port: Annotated[int, Field(ge=1024, le=65535)]
    approvals_dir: Path
    ledger: Path
    policy: CosignerPolicy = CosignerPolicy()
    allow_keygen: bool = False

    @classmethod
    def read(cls, path: Path) -> CosignerConfig:
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"co-signer config {path}: {exc}") from exc


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


class Cosigner:
    """The gate between the network and the co-signer's party."""

    def __init__(self, config: CosignerConfig, link: SidecarLink) -> None:
        self.config = config
        self._link = link
        self._ledger = Ledger(config.ledger)
        self._lock = threading.Lock()

    @classmethod
    def start(cls, config: CosignerConfig, *, env: dict[str, str] | None = None) -> Cosigner:
        """Start the party sidecar and open its share (initialise it if keygen is allowed)."""
        link = SidecarLink(config.index, config.party_dir, config.passphrase_env, env=env)
        try:
            status = link.request("status", 30.0)
            if not status.get("initialized") and config.allow_keygen:
                link.request("init", 60.0, index=config.index)
            else:
                link.request("unlock", 60.0, index=config.index)
        except BaseException:
            link.close()
            raise
        return cls(config, link)

    def close(self) -> None:
        self._link.close()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one request from the coordinator (a reply dict, never an exception)."""
        op = request.get("op")
        fields = {k: v for k, v in request.items() if k not in ("op", "id")}
        with self._lock:
            if op in ("status", "step", "abort"):
                return self._link.call(str(op), FORWARD_TIMEOUT_S, **fields)
            if op != "start":
                return _error("bad_request", f"op {op!r} is not served to the network")
            try:
                self._admit(fields)
            except Refused as exc:
                log.warning("refused %s session: %s", fields.get("kind"), exc)
                return _error("refused", str(exc))
            except LpbotError as exc:
                return _error("refused", f"policy could not be evaluated: {exc}")
            return self._link.call("start", FORWARD_TIMEOUT_S, **fields)

    def _admit(self, fields: dict[str, Any]) -> None:
        kind = fields.get("kind")
        if kind == "keygen":
            if not self.config.allow_keygen:
                raise Refused("key generation is not enabled on this co-signer")
            return
        if kind != "sign":
            raise Refused(f"unknown session kind {kind!r}")
        context = fields.get("context")
        digest = str(fields.get("digest", ""))  # the party protocol's digest: hex without 0x
        check(
            self.config.policy,
            load_approvals(self.config.approvals_dir),
            self._ledger,
            digest if digest.startswith("0x") else "0x" + digest,
            context if isinstance(context, dict) else {},
        )

    def serve(self, ready: threading.Event | None = None) -> None:
        """Serve until interrupted."""
        server = HTTPServer((HOST, self.config.port), _handler(self))
        log.info(
            "co-signer (party %d) on http://%s:%d", self.config.index, HOST, server.server_port
        )
        if ready is not None:
            ready.set()
        try:
            server.serve_forever()
        finally:
            server.server_close()


def _handler(cosigner: Cosigner) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/v1/party":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self.send_error(413)
                return
            try:
                request = json.loads(self.rfile.read(length))
                reply = (
                    cosigner.handle(request)
                    if isinstance(request, dict)
                    else _error("bad_request", "expected a JSON object")
                )
            except ValueError:
                reply = _error("bad_request", "not JSON")
            except LpbotError as exc:
                # the party sidecar is gone or hung; say so, and keep serving
                reply = _error("unavailable", str(exc))
            body = json.dumps(reply, separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler


def serve(config_path: Path) -> None:
    """Run the co-signer described by ``config_path`` until interrupted."""
    config = CosignerConfig.read(config_path)
    if not config.approvals_dir.is_dir():
        raise NeedsAttention(f"approvals directory {config.approvals_dir} does not exist")
    cosigner = Cosigner.start(config)
    try:
        cosigner.serve()
    finally:
        cosigner.close()
