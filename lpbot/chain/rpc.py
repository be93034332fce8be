"""Connecting to a JSON-RPC node, with every round trip counted and logged."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from web3 import HTTPProvider, Web3
from web3.middleware.cache import construct_simple_cache_middleware
from web3.types import RPCEndpoint, RPCResponse

log = logging.getLogger(__name__)


class CountingHTTPProvider(HTTPProvider):
    """An HTTP provider that counts JSON-RPC round trips (one HTTP request each)."""

    def __init__(self, endpoint_uri: str, timeout: float = 30.0) -> None:
        super().__init__(endpoint_uri, request_kwargs={"timeout": timeout})
        self.round_trips = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.round_trips += 1
        log.debug("rpc #%d %s", self.round_trips, method)
        return super().make_request(method, params)


def connect(url: str, timeout: float = 30.0) -> Web3:
    """A Web3 client for ``url`` whose provider counts round trips (``round_trips(w3)``).

    Answers that cannot change while connected (``eth_chainId``, ``net_version``) are cached,
    so that a read is one round trip rather than two.
    """
    w3 = Web3(CountingHTTPProvider(url, timeout=timeout))
    w3.middleware_onion.add(construct_simple_cache_middleware(), name="static_answers_cache")
    return w3


def redact_url(url: str) -> str:
    """An RPC URL without its path, query or credentials: providers put API keys there."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def round_trips(w3: Web3) -> int:
    provider = w3.provider
    return provider.round_trips if isinstance(provider, CountingHTTPProvider) else -1
