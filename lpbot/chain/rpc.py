"""Connecting to a JSON-RPC node: every round trip counted, no URL in any message, and the
providers' error answers sorted by what to do next.

Providers put API keys in the URL's path or query (Alchemy ``/v2/KEY``, Infura ``/v3/KEY``,
QuickNode ``/KEY/``), and ``requests``' and web3's messages quote the URL. ``redact_url`` and
``redact_text`` are the one place that removes it: the provider here raises ``RpcTransportError``
with redacted text only, and never logs the URL.

``classify_rpc_error`` reads an error the way each provider writes it (HTTP status, JSON-RPC code,
message, ``data``, ``Retry-After``) and says which ``Fault`` it is, with the block limit or the
suggested range where the message gives one. The messages are the providers' own, replayed in
``tests/chain/test_provider_errors.py``: Alchemy, Infura, QuickNode, Ankr, thirdweb, Chainstack,
BlockPI, Cloudflare, publicnode and other public endpoints; geth, reth, Nitro and zkSync nodes.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_typing import URI
from web3 import HTTPProvider, Web3
from web3._utils.request import get_response_from_post_request
from web3.middleware.cache import construct_simple_cache_middleware
from web3.types import RPCEndpoint, RPCResponse

from lpbot.errors import ConfigError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ redaction


def redact_url(url: str) -> str:
    """An RPC URL without its path, query or credentials: providers put API keys there."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{},]+")


def redact_text(text: str, url: str | None = None) -> str:
    """``text`` with every URL cut to its scheme and host, and the secret parts of ``url`` (its
    path segments, query values and credentials, however quoted) removed."""
    out = _URL.sub(lambda m: redact_url(m.group(0)), text)
    if url:
        parts = urlsplit(url)
        secrets = [s for s in parts.path.split("/") if len(s) >= 6]
        secrets += [v for kv in parts.query.split("&") for v in kv.split("=")[1:] if len(v) >= 6]
        secrets += [s for s in (parts.username, parts.password) if s]
        if parts.path.strip("/"):
            secrets.append(parts.path)
        for secret in sorted(set(secrets), key=len, reverse=True):
            out = out.replace(secret, "***")
    return out


def _scrub(text: str) -> str:
    """``text`` redacted, also of the secret parts of every URL connected to (a node's error
    message may quote the request's path)."""
    out = redact_text(text)
    for url in _REDACT.urls:
        out = redact_text(out, url)
    return out


class _RedactingFilter(logging.Filter):
    """Rewrites records of libraries that log request URLs (urllib3 logs each request's path,
    web3 its provider's URL at debug level) without the secret parts of the URLs in use."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls:
            text = record.getMessage()
            for url in self.urls:
                text = redact_text(text, url)
            record.msg, record.args = text, None
        return True


_REDACT = _RedactingFilter()
for _name in (
    "urllib3.connectionpool",
    "web3.providers.HTTPProvider",
    "web3.manager.RequestManager",
    "web3._utils.request",  # "Session cached: <url>"
):
    logging.getLogger(_name).addFilter(_REDACT)


# ------------------------------------------------------------------------------ transport


class RpcTransportError(OSError):
    """An HTTP failure or an HTTP error status from the node; its text never holds the URL.

    ``status`` is the HTTP status (None when no answer came), ``error`` the JSON-RPC error object
    of the body where there was one, ``retry_after`` the ``Retry-After`` header in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: dict[str, Any] | None = None,
        retry_after: float | None = None,
        timeout: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.retry_after = retry_after
        self.timeout = timeout


class RpcConnectionError(RpcTransportError, requests.ConnectionError):
    """No answer (refused, dropped, timed out): also a ``requests.ConnectionError``, so that
    web3's retry middleware retries it as before; an HTTP error status is not retried there."""


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_object(body: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return dict(parsed["error"])
    return None


class BatchRefused(ValueError):
    """The node answered a JSON-RPC batch with a single error: it does not take batches."""


class CountingHTTPProvider(HTTPProvider):
    """An HTTP provider that counts JSON-RPC round trips (one HTTP request each), never logs
    its URL and raises ``RpcTransportError`` (redacted) for HTTP failures."""

    def __init__(self, endpoint_uri: str, timeout: float = 30.0) -> None:
        super().__init__(endpoint_uri, request_kwargs={"timeout": timeout})
        self.round_trips = 0
        self.where = redact_url(endpoint_uri)
        _REDACT.urls.add(endpoint_uri)

    def __str__(self) -> str:
        return f"RPC connection {self.where}"

    def follow(self, endpoint_uri: str) -> None:
        """Send every later request to ``endpoint_uri`` (the node moved)."""
        self.endpoint_uri = URI(endpoint_uri)
        self.where = redact_url(endpoint_uri)
        _REDACT.urls.add(endpoint_uri)

    def _post(self, data: bytes, what: str) -> bytes:
        self.round_trips += 1
        log.debug("rpc #%d %s", self.round_trips, what)
        url = str(self.endpoint_uri)
        try:
            response = get_response_from_post_request(
                URI(url), data=data, **self.get_request_kwargs()
            )
        except requests.RequestException as exc:
            raise RpcConnectionError(
                f"{what} to {self.where}: {redact_text(str(exc), url)}",
                timeout=isinstance(exc, requests.Timeout),
            ) from None
        if response.status_code >= 400:
            body = response.text
            error = _error_object(body)
            detail = (
                str(error.get("message", "")) if error is not None else " ".join(body.split())[:200]
            )
            raise RpcTransportError(
                f"{what} to {self.where}: HTTP {response.status_code} "
                f"{redact_text(detail, url)}".rstrip(),
                status=response.status_code,
                error=error,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            ) from None
        return bytes(response.content)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        raw = self._post(self.encode_rpc_request(method, params), method)
        return self.decode_rpc_response(raw)

    def make_batch(self, calls: list[tuple[str, list[Any]]]) -> list[RPCResponse]:
        """Several calls in one JSON-RPC batch (one round trip); answers in the calls' order."""
        if not calls:
            return []
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)
        ]
        raw = self._post(json.dumps(payload).encode(), f"batch of {len(calls)} {calls[0][0]}")
        answers = json.loads(raw)
        if not isinstance(answers, list):  # a provider that refuses batches answers one error
            raise BatchRefused(answers.get("error", answers) if isinstance(answers, dict) else raw)
        by_id = {a.get("id"): a for a in answers}
        missing: RPCResponse = {"error": {"code": -32603, "message": "no answer in the batch"}}
        return [by_id.get(i, missing) for i in range(len(calls))]


def connect(url: str, timeout: float = 30.0) -> Web3:
    """A Web3 client for ``url`` whose provider counts round trips (``round_trips(w3)``).

    Answers that cannot change while connected (``eth_chainId``, ``net_version``) are cached,
    so that a read is one round trip rather than two.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(  # the URL itself is not shown: it may hold a key
            "the RPC URL must start with http:// or https:// and name a host"
        )
    w3 = Web3(CountingHTTPProvider(url, timeout=timeout))
    w3.middleware_onion.add(construct_simple_cache_middleware(), name="static_answers_cache")
    return w3


def round_trips(w3: Web3) -> int:
    provider = w3.provider
    return provider.round_trips if isinstance(provider, CountingHTTPProvider) else -1


# ------------------------------------------------------------------------- classification


class Fault(enum.Enum):
    """What a failed request means for the next one."""

    RANGE_TOO_LARGE = "range too large"  # ask for fewer blocks; the cap is the provider's
    TOO_MANY_RESULTS = "too many results"  # ask for fewer blocks here; density-dependent
    RATE_LIMITED = "rate limited"  # wait (Retry-After), then the same request again
    QUOTA_EXHAUSTED = "quota exhausted"  # stop: a person must raise the plan or wait a day
    TRANSIENT = "transient"  # timeout, dropped connection, 5xx: retry with backoff
    BAD_REQUEST = "bad request"  # a revert, a wrong parameter, a bad key: retrying won't help


@dataclass(frozen=True, slots=True)
class RpcFailure:
    fault: Fault
    message: str  # redacted
    code: int | None = None
    status: int | None = None
    limit: int | None = None  # blocks per request the provider allows, when it says
    suggested: tuple[int, int] | None = None  # a block range the provider says would work
    retry_after: float | None = None  # seconds


def _int(text: str) -> int:
    return int(re.sub(r"[,._\s]", "", text))


# (pattern, fault, group of the block limit or None); the first match wins
_RANGE_PATTERNS: tuple[tuple[str, int | None], ...] = (
    # Alchemy: "You can make eth_getLogs requests with up to a 500 block range. Based on your
    # parameters, this block range should work: [0x..., 0x...]"
    (r"up to a ([\d,]+) block range", 1),
    # Infura: "range 1000000 exceeds limit of 10000"
    (r"range \d+ exceeds limit of ([\d,]+)", 1),
    # Infura free tier: "ranges over 10000 blocks are not supported on freetier"
    (r"ranges over ([\d,]+) blocks are not supported", 1),
    # QuickNode (HTTP 413, -32614): "eth_getLogs is limited to a 10,000 range";
    # "eth_getLogs and eth_newFilter are limited to a 10,000 blocks range"
    (r"limited to a ([\d,]+)\s*(?:blocks? )?range", 1),
    # thirdweb: "Maximum allowed number of requested blocks is 1000"
    (r"maximum allowed number of requested blocks is ([\d,]+)", 1),
    # Ankr: "maximum [from, to] blocks distance: 10000"
    (r"blocks distance: ([\d,]+)", 1),
    # geth-based public endpoints (publicnode, BSC): "exceed maximum block range: 50000"
    (r"exceed maximum block range: ([\d,]+)", 1),
    # reth and hyperliquid: "query exceeds max block range 100000"
    (r"query exceeds max block range ([\d,]+)", 1),
    # Cloudflare: "... Max range: 800"; BlockPI "limited to 5000 block"
    (r"max range: ([\d,]+)", 1),
    (r"limited to ([\d,]+) blocks?", 1),
    # Frontier/Moonbeam "block range is too wide (maximum 1024)"; Ankr "block range is too wide"
    (r"block range is too wide \(maximum ([\d,]+)\)", 1),
    (r"block range is too wide", None),
    # Chainstack "Block range limit exceeded."; Base/Optimism "block range too large",
    # "Block range is too large"; others "block range too high"
    (r"block range limit exceeded", None),
    (r"block range (?:is )?too (?:large|high|big)", None),
    (r"range is too large", None),
    (r"block range is bigger than", None),
    (r"range \d+ is bigger than range limit ([\d,]+)", 1),
    (r"block range is larger than max block range, block range = \d+, max block range = (\d+)", 1),
)
_RESULTS_PATTERNS: tuple[str, ...] = (
    # geth, Infura, zkSync: "query returned more than 10000 results[. Try with this block
    # range [0x.., 0x..].]"
    r"query returned more than [\d,]+ results",
    # reth: "query exceeds max results 20000, retry with the range 25766988-25775072"
    r"query exceeds max results",
    # Nitro: "logs matched by query exceeds limit of 10000"
    r"logs matched by query exceeds limit",
    # Alchemy: "Log response size exceeded. You can make eth_getLogs requests with up to a 2K
    # block range and no limit on the response size, or ... a cap of 10K logs in the response."
    r"log response size exceeded",
    r"response size (?:should not|exceeded|too large)",
    r"backend response too large",
    r"too many logs",
)
_QUOTA_PATTERNS: tuple[str, ...] = (
    r"monthly capacity limit exceeded",  # Alchemy (HTTP 429/403, -32600)
    r"daily request count exceeded",  # Infura (-32005, HTTP 429)
    r"exceeded (?:your|the) (?:monthly|daily)",
    r"(?:credit|request|usage) (?:quota|limit) (?:exhausted|exceeded|reached) for",
    r"out of (?:credits|compute units)",
    r"quota (?:exceeded|exhausted)",
    r"upgrade your (?:plan|scaling policy)",
)
_RATE_PATTERNS: tuple[str, ...] = (
    r"rate limit",  # generic; Infura "project ID request rate exceeded"
    r"request rate exceeded",
    r"compute units per second",  # Alchemy (HTTP 429, code 429)
    r"credits limited to",  # QuickNode (-32012)
    r"request limit reached",  # QuickNode (-32007) "15/second request limit reached"
    r"too many requests",  # Ankr, public endpoints (HTTP 429)
    r"throttled",
    r"capacity exceeded",
)
_TRANSIENT_PATTERNS: tuple[str, ...] = (
    r"timeout",
    r"timed out",
    r"temporarily",
    r"try again",
    r"busy",
    r"header not found",  # a load-balanced node behind the head
    r"unknown block",
    r"no backend is currently healthy",
    r"service unavailable",
    r"bad gateway",
    r"internal error",
)
_SUGGESTED = (
    re.compile(r"\[0x([0-9a-f]+),\s*0x([0-9a-f]+)\]"),  # Alchemy, Infura, zkSync
    re.compile(r"retry with the range (\d+)-(\d+)"),  # reth
)


def _error_parts(exc: BaseException) -> tuple[int | None, int | None, str, Any, float | None]:
    """(HTTP status, JSON-RPC code, message, data, retry-after) of a failure, however raised."""
    status: int | None = None
    error: Any = None
    retry_after: float | None = None
    if isinstance(exc, RpcTransportError):
        status, error, retry_after = exc.status, exc.error, exc.retry_after
        if error is None:
            return status, None, str(exc), None, retry_after
    elif isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        error = _error_object(exc.response.text)
        retry_after = _retry_after(exc.response.headers.get("Retry-After"))
        if error is None:
            return status, None, f"HTTP {status}", None, retry_after
    elif exc.args and isinstance(exc.args[0], dict):  # web3 6: ValueError(error object)
        error = exc.args[0]
    else:
        return None, None, str(exc), None, None
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict):  # Infura: {"rate": {"backoff_seconds": 30, ...}}
        rate = data.get("rate", data)
        backoff = rate.get("backoff_seconds") if isinstance(rate, dict) else None
        if retry_after is None and isinstance(backoff, int | float) and backoff > 0:
            retry_after = float(backoff)
    elif isinstance(data, str) and data:
        message = f"{message}: {data}" if message else data
    return status, code if isinstance(code, int) else None, message, data, retry_after


def classify_rpc_error(exc: BaseException) -> RpcFailure:
    """What ``exc`` (from a web3 call or ``CountingHTTPProvider``) means: a ``Fault``, with the
    provider's block limit, suggested range and ``Retry-After`` where it gives them.

    ``-32005`` ("limit exceeded", EIP-1474) is used by providers both for too many results and
    for rate limits, so the message decides; alone, it is taken as a rate limit.
    """
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return RpcFailure(Fault.TRANSIENT, _scrub(str(exc)))
    if isinstance(exc, RpcTransportError) and exc.status is None:
        return RpcFailure(Fault.TRANSIENT, _scrub(str(exc)))
    status, code, message, _data, retry_after = _error_parts(exc)
    text = message.lower()
    safe = _scrub(message)

    def failure(fault: Fault, **kw: Any) -> RpcFailure:
        return RpcFailure(fault, safe, code, status, retry_after=retry_after, **kw)

    if status == 402 or any(re.search(p, text) for p in _QUOTA_PATTERNS):
        return failure(Fault.QUOTA_EXHAUSTED)
    suggested: tuple[int, int] | None = None
    for base, suggestion in zip((16, 10), _SUGGESTED, strict=True):
        match = suggestion.search(text)
        if match:
            suggested = (int(match.group(1), base), int(match.group(2), base))
            break
    if any(re.search(p, text) for p in _RESULTS_PATTERNS):
        return failure(Fault.TOO_MANY_RESULTS, suggested=suggested)
    for pattern, group in _RANGE_PATTERNS:
        found = re.search(pattern, text)
        if found:
            limit = _int(found.group(group)) if group is not None else None
            return failure(Fault.RANGE_TOO_LARGE, limit=limit, suggested=suggested)
    if status == 413:  # QuickNode answers its range limit with 413 Payload Too Large
        return failure(Fault.RANGE_TOO_LARGE, suggested=suggested)
    if (
        status == 429
        or code in (429, -32007, -32012, -32029)
        or any(re.search(p, text) for p in _RATE_PATTERNS)
    ):
        return failure(Fault.RATE_LIMITED)
    if code == -32005:  # EIP-1474 "limit exceeded" with no telling message
        return failure(Fault.RATE_LIMITED)
    if (status is not None and status >= 500) or any(
        re.search(p, text) for p in _TRANSIENT_PATTERNS
    ):
        return failure(Fault.TRANSIENT)
    return failure(Fault.BAD_REQUEST)
