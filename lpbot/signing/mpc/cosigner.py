"""``lpbot cosigner serve``: the policy co-signer, in its own process (ideally host and user).

Two kinds, one policy (``lpbot.signing.mpc.policy``: signed approvals, the report's calls
decoded, its own limits and SQLite store):

- ``mode = "key"`` (the default): the co-signer holds its own Safe owner key (an encrypted
  keystore) and signs a SafeTx hash or transaction digest after the policy check
  (``POST /v1/sign``). No MPC library is needed.
- ``mode = "mpc"``: the co-signer is one MPC party; it owns the party's sidecar and serves the
  party protocol (``POST /v1/party``, the sidecar's JSON without ``id``). ``status``, ``step`` and
  ``abort`` are forwarded for the one session it is in; ``start`` only after the policy check (a
  signing session) or, for key generation, when enabled and every other party's identity key is
  the one pinned in its config. ``init``, ``unlock`` and ``shutdown`` never come from the network.
  A peer whose message fails a check is banned until a person clears it
  (``lpbot cosigner unban``).

Every request is authenticated (``lpbot.signing.mpc.auth``: HMAC-SHA256 with a per-deployment
key, a timestamp and a single-use nonce); bodies are bounded, each connection has a read timeout,
and requests are handled on their own threads, so an idle connection blocks nothing.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lpbot.errors import ConfigError, LpbotError, NeedsAttention, Refused
from lpbot.signing.local import LocalKeySigner
from lpbot.signing.mpc.auth import HEADER, Verifier, load_key
from lpbot.signing.mpc.config import MAX_PARTIES, fingerprint
from lpbot.signing.mpc.links import SidecarLink
from lpbot.signing.mpc.policy import CosignerPolicy, Ledger, check

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
FORWARD_TIMEOUT_S = 300.0
SESSION_IDLE_S = 60.0  # a session with no request for this long is dropped for a new one
READ_TIMEOUT_S = 10.0  # per connection: an idle or slow client is cut off
MAX_BODY = 4 * 1024 * 1024
_ENV = r"^[A-Z_][A-Z0-9_]*$"


class CosignerConfig(BaseModel):
    """The co-signer's own configuration (``cosigner.json``); it names secrets, holds none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["key", "mpc"] = "key"
    port: Annotated[int, Field(ge=1024, le=65535)]
    api_key_env: Annotated[str, Field(pattern=_ENV)] = "LPBOT_COSIGNER_API_KEY"
    ledger: Path  # the co-signer's own SQLite store (counts, bans)
    policy: CosignerPolicy = CosignerPolicy()
    # mode "key": its Safe owner key
    keystore: Path | None = None
    keystore_password_env: Annotated[str, Field(pattern=_ENV)] | None = None
    # mode "mpc": its party
    index: Annotated[int, Field(ge=1, le=MAX_PARTIES)] | None = None
    party_dir: Path | None = None
    passphrase_env: Annotated[str, Field(pattern=_ENV)] | None = None
    allow_keygen: bool = False
    # the other parties' identity keys or their fingerprints, compared out of band at key
    # generation (each party shows its own); required to generate a key
    peer_identities: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mode_fields(self) -> CosignerConfig:
        if self.mode == "key" and not (self.keystore and self.keystore_password_env):
            raise ValueError('mode "key" needs keystore and keystore_password_env')
        if self.mode == "mpc" and not (self.index and self.party_dir and self.passphrase_env):
            raise ValueError('mode "mpc" needs index, party_dir and passphrase_env')
        return self

    @classmethod
    def read(cls, path: Path) -> CosignerConfig:
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"co-signer config {path}: {exc}") from exc


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "result": result}


_CULPRIT = re.compile(r"\bparty (\d+)\b", re.IGNORECASE)


class Cosigner:
    """The gate between the network and the co-signer's key or party."""

    def __init__(
        self,
        config: CosignerConfig,
        *,
        key: LocalKeySigner | None = None,
        link: SidecarLink | None = None,
        api_key: bytes,
    ) -> None:
        self.config = config
        self._key = key
        self._link = link
        self._ledger = Ledger(config.ledger)
        self._lock = threading.Lock()
        self.verifier = Verifier(api_key, self._ledger.remember_nonce)
        self._session: tuple[str, float, tuple[int, ...]] | None = None
        self.identity: str | None = None

    @classmethod
    def start(cls, config: CosignerConfig, *, env: dict[str, str] | None = None) -> Cosigner:
        """Open the key, or start the party sidecar and open its share (initialise it if key
        generation is allowed)."""
        api_key = load_key(config.api_key_env)
        if config.mode == "key":
            assert config.keystore and config.keystore_password_env
            key = LocalKeySigner.from_keystore(config.keystore, config.keystore_password_env)
            return cls(config, key=key, api_key=api_key)
        assert config.index and config.party_dir and config.passphrase_env
        link = SidecarLink(config.index, config.party_dir, config.passphrase_env, env=env)
        try:
            status = link.request("status", 30.0)
            if not status.get("initialized") and config.allow_keygen:
                status = link.request("init", 60.0, index=config.index)
            else:
                status = link.request("unlock", 60.0, index=config.index)
        except BaseException:
            link.close()
            raise
        cosigner = cls(config, link=link, api_key=api_key)
        cosigner.identity = status.get("identity")
        return cosigner

    def close(self) -> None:
        if self._link is not None:
            self._link.close()

    @property
    def fingerprint(self) -> str | None:
        if self._key is not None:
            return None
        return fingerprint(self.identity) if self.identity else None

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    # ---- requests ------------------------------------------------------------------------

    def handle_sign(self, request: dict[str, Any]) -> dict[str, Any]:
        """``/v1/sign`` (mode "key"): the policy check, then its own key's signature."""
        if self._key is None:
            return _error("bad_request", "this co-signer is an MPC party: use /v1/party")
        op = request.get("op")
        if op == "status":
            return _ok({"mode": "key", "address": self._key.address})
        if op != "sign":
            return _error("bad_request", f"op {op!r} is not served")
        digest = str(request.get("digest", ""))
        context = request.get("context")
        with self._lock:
            try:
                check(
                    self.config.policy,
                    self._ledger,
                    digest,
                    context if isinstance(context, dict) else {},
                )
            except Refused as exc:
                log.warning("refused to sign %s: %s", digest, exc)
                return _error("refused", str(exc))
            sig = self._key.sign_digest(bytes.fromhex(digest[2:]))
        return _ok({"r": hex(sig.r), "s": hex(sig.s), "v": sig.v, "address": self._key.address})

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """``/v1/party`` (mode "mpc"): answer one request from the coordinator."""
        if self._link is None:
            return _error("bad_request", "this co-signer holds a key, not a party: use /v1/sign")
        op = request.get("op")
        fields = {k: v for k, v in request.items() if k not in ("op", "id")}
        with self._lock:
            if op == "status":
                reply = self._link.call("status", 30.0)
                if reply.get("ok") and self.identity:
                    reply["result"]["fingerprint"] = fingerprint(self.identity)
                return reply
            if op in ("step", "abort"):
                return self._forward(str(op), fields)
            if op != "start":
                return _error("bad_request", f"op {op!r} is not served to the network")
            if self._session is not None:
                session, last, _ = self._session
                if time.monotonic() - last < SESSION_IDLE_S:
                    return _error("busy", f"in session {session[:12]}; abort it first")
                self._link.call("abort", 10.0, session=session)
                self._session = None
            try:
                self._admit(fields)
            except Refused as exc:
                log.warning("refused %s session: %s", fields.get("kind"), exc)
                return _error("refused", str(exc))
            except LpbotError as exc:
                return _error("refused", f"policy could not be evaluated: {exc}")
            reply = self._link.call("start", FORWARD_TIMEOUT_S, **fields)
            if reply.get("ok"):
                parties = fields.get("signers") or [int(k) for k in fields.get("identities", {})]
                self._session = (str(fields.get("session")), time.monotonic(), tuple(parties))
            return reply

    def _forward(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        current = self._session
        if current is None or fields.get("session") != current[0]:
            return _error("bad_request", "not the session this co-signer is in")
        reply = self._link.call(op, FORWARD_TIMEOUT_S, **fields)  # type: ignore[union-attr]
        self._session = (current[0], time.monotonic(), current[2])
        if op == "abort" or not reply.get("ok") or (reply.get("result") or {}).get("done"):
            self._session = None
        if not reply.get("ok"):
            err = reply.get("error") or {}
            if err.get("code") in ("aborted", "auth_failed"):
                self._ban(current[2], str(err.get("message", "")))
        return reply

    def _ban(self, parties: tuple[int, ...], message: str) -> None:
        own = self.config.index
        named = {int(m) for m in _CULPRIT.findall(message)} - {own or 0}
        peers = [p for p in parties if p != own]
        culprits = sorted(named & set(peers)) or peers
        for p in culprits:
            self._ledger.ban(p, message)
            log.error("party %d banned: %s (clear with `lpbot cosigner unban`)", p, message)

    def _admit(self, fields: dict[str, Any]) -> None:
        kind = fields.get("kind")
        if kind == "keygen":
            self._admit_keygen(fields)
            return
        if kind != "sign":
            raise Refused(f"unknown session kind {kind!r}")
        signers = fields.get("signers")
        if not isinstance(signers, list):
            raise Refused("a signing session names its signers")
        banned = self._ledger.bans()
        for p in signers:
            if p in banned:
                raise Refused(
                    f"party {p} is banned since {banned[p][0]}: {banned[p][1]} "
                    f"(a person clears it: lpbot cosigner unban --party {p})"
                )
        context = fields.get("context")
        digest = str(fields.get("digest", ""))  # the party protocol's digest: hex without 0x
        check(
            self.config.policy,
            self._ledger,
            digest if digest.startswith("0x") else "0x" + digest,
            context if isinstance(context, dict) else {},
        )

    def _admit_keygen(self, fields: dict[str, Any]) -> None:
        if not self.config.allow_keygen:
            raise Refused("key generation is not enabled on this co-signer")
        identities = fields.get("identities")
        if not isinstance(identities, dict):
            raise Refused("key generation without identity keys")
        pins = self.config.peer_identities
        for k, identity in identities.items():
            try:
                index = int(k)
            except ValueError:
                raise Refused(f"identity for {k!r}, which is not a party index") from None
            if index == self.config.index:
                if identity != self.identity:
                    raise Refused("the identity given for this co-signer is not its own")
                continue
            pin = pins.get(index)
            if pin is None:
                raise Refused(
                    f"party {index}'s identity is not pinned in this co-signer's config "
                    "(peer_identities: compare the fingerprint that party shows)"
                )
            if pin not in (identity, fingerprint(str(identity))):
                raise Refused(
                    f"party {index}'s identity key {fingerprint(str(identity))} is not the pinned "
                    f"{pin}: the coordinator substituted it"
                )

    # ---- serving -------------------------------------------------------------------------

    def serve(self, ready: threading.Event | None = None) -> None:
        """Serve until interrupted."""
        try:
            server = ThreadingHTTPServer((HOST, self.config.port), _handler(self))
        except OSError as exc:
            raise NeedsAttention(
                f"co-signer cannot listen on {HOST}:{self.config.port}: {exc}"
            ) from exc
        server.daemon_threads = True
        log.info("co-signer (%s) on http://%s:%d", self.config.mode, HOST, server.server_port)
        if ready is not None:
            ready.set()
        try:
            server.serve_forever()
        finally:
            server.server_close()


def _handler(cosigner: Cosigner) -> type[BaseHTTPRequestHandler]:
    routes = {"/v1/party": cosigner.handle, "/v1/sign": cosigner.handle_sign}

    class Handler(BaseHTTPRequestHandler):
        timeout = READ_TIMEOUT_S  # socket timeout: an idle connection is dropped

        def _reply(self, status: int, reply: dict[str, Any]) -> None:
            body = json.dumps(reply, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            route = routes.get(self.path)
            if route is None:
                self._reply(404, _error("not_found", self.path))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                self._reply(413, _error("bad_request", f"body must be 1..{MAX_BODY} bytes"))
                return
            raw = self.rfile.read(length)
            why = cosigner.verifier.check(self.headers.get(HEADER), "POST", self.path, raw)
            if why is not None:
                log.warning("unauthenticated request from %s: %s", self.client_address[0], why)
                self._reply(401, _error("unauthenticated", why))
                return
            try:
                request = json.loads(raw)
                reply = (
                    route(request)
                    if isinstance(request, dict)
                    else _error("bad_request", "expected a JSON object")
                )
            except ValueError:
                reply = _error("bad_request", "not JSON")
            except LpbotError as exc:
                # the party sidecar is gone or hung; say so, and keep serving
                reply = _error("unavailable", str(exc))
            self._reply(200, reply)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler


def serve(config_path: Path, *, out: Any = None) -> None:
    """Run the co-signer described by ``config_path`` until interrupted."""
    config = CosignerConfig.read(config_path)
    cosigner = Cosigner.start(config)
    try:
        if out is not None:
            if cosigner.fingerprint:
                print(
                    f"co-signer party {config.index} identity fingerprint {cosigner.fingerprint}",
                    file=out,
                )
            elif cosigner._key is not None:
                print(f"co-signer Safe owner {cosigner._key.address}", file=out)
            out.flush()
        cosigner.serve()
    finally:
        cosigner.close()


def read_for_unban(config_path: Path) -> Ledger:
    config = CosignerConfig.read(config_path)
    if not config.ledger.exists():
        raise NeedsAttention(f"no co-signer store at {config.ledger}")
    return Ledger(config.ledger)
