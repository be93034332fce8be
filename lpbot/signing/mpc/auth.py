"""Authentication of the co-signer's API: HMAC-SHA256 over each request, with replay protection.

Every request carries ``X-Lpbot-Auth: t=<unix seconds>,n=<nonce, 32 hex>,mac=<64 hex>`` where
``mac = HMAC-SHA256(key, "lpbot-cosigner/1" | method | path | t | n | SHA-256(body))``. The key is
a per-deployment secret (32 bytes or more, hex) that the co-signer and the bot read from their own
environment. The co-signer accepts a request only within ``MAX_SKEW_S`` of its clock and with a
nonce it has not seen in that window, so a captured request cannot be sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable

from lpbot.errors import NeedsAttention

HEADER = "X-Lpbot-Auth"
MAX_SKEW_S = 30
_LABEL = b"lpbot-cosigner/1"


def load_key(env_name: str) -> bytes:
    """The API key from the environment variable ``env_name`` (hex, 32 bytes or more)."""
    raw = os.environ.get(env_name, "")
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        key = b""
    if len(key) < 32:
        raise NeedsAttention(
            f"set {env_name} to the co-signer's API key: 64 or more hex digits "
            "(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


def _mac(key: bytes, method: str, path: str, t: str, nonce: str, body: bytes) -> str:
    msg = b"|".join(
        [
            _LABEL,
            method.encode(),
            path.encode(),
            t.encode(),
            nonce.encode(),
            hashlib.sha256(body).digest(),
        ]
    )
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign_request(key: bytes, method: str, path: str, body: bytes, now: float | None = None) -> str:
    """The ``X-Lpbot-Auth`` header value for one request."""
    t = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(16)
    return f"t={t},n={nonce},mac={_mac(key, method, path, t, nonce, body)}"


class Verifier:
    """Checks request headers; remembers nonces for the skew window: in ``remember`` (the
    co-signer's own store, so a restart opens no window for a replay) or else in memory.
    ``remember(nonce, now, horizon)`` records a nonce and says whether it was new."""

    def __init__(
        self, key: bytes, remember: Callable[[str, float, float], bool] | None = None
    ) -> None:
        self._key = key
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._remember = remember

    def check(self, header: str | None, method: str, path: str, body: bytes) -> str | None:
        """``None`` if the request is authentic and fresh, else why not."""
        if not header:
            return "no authentication header"
        try:
            fields = dict(part.split("=", 1) for part in header.split(","))
            t, nonce, mac = fields["t"], fields["n"], fields["mac"]
            sent = int(t)
        except (KeyError, ValueError):
            return "malformed authentication header"
        if len(nonce) != 32 or len(mac) != 64:
            return "malformed authentication header"
        if not hmac.compare_digest(mac, _mac(self._key, method, path, t, nonce, body)):
            return "bad request signature"
        now = time.time()
        if abs(now - sent) > MAX_SKEW_S:
            return f"request time {sent} is more than {MAX_SKEW_S} s from this clock"
        if self._remember is not None:
            if not self._remember(nonce, now, 2 * MAX_SKEW_S):
                return "replayed request (nonce seen before)"
            return None
        with self._lock:
            for n, at in list(self._seen.items()):
                if at < now - 2 * MAX_SKEW_S:
                    del self._seen[n]
            if nonce in self._seen:
                return "replayed request (nonce seen before)"
            self._seen[nonce] = now
        return None
