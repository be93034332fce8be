"""RPC URLs carry API keys: none reaches a log line, an error message or a dataset, whatever
fails; and the defaults a fetch uses come from the chain's registry entry."""

from __future__ import annotations

import logging
import socket
import time
import traceback
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from lpbot.backtest.fetch import Web3Source, _multicall_at, _Retry, fetch_pool_events
from lpbot.chain import registry
from lpbot.chain.rpc import _retry_after, connect, redact_text, redact_url
from lpbot.devnet.market import run_market
from lpbot.errors import LpbotError
from tests.chain.rpc_standin import RpcError, RpcStandIn, serve
from tests.conftest import Devnet

KEY = "sk_live_3f9a7c1e5b2d4a6f8e0c"
QUERY_KEY = "Qk7d2b9e4a1c6f3"


def test_redaction_keeps_scheme_and_host_only() -> None:
    url = f"https://user:pa55word@arb-mainnet.g.alchemy.com:8443/v2/{KEY}?key={QUERY_KEY}"
    assert redact_url(url) == "https://arb-mainnet.g.alchemy.com:8443"
    text = (
        f"HTTPSConnectionPool(host='arb-mainnet.g.alchemy.com', port=8443): Max retries exceeded "
        f"with url: /v2/{KEY}?key={QUERY_KEY} (Caused by ...) for url: {url}"
    )
    cleaned = redact_text(text, url)
    for secret in (KEY, QUERY_KEY, "pa55word"):
        assert secret not in cleaned
    assert "arb-mainnet.g.alchemy.com" in cleaned


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text and QUERY_KEY not in text, text


@pytest.mark.devnet
@pytest.mark.parametrize("failure", ["unauthorized", "rate", "quota", "dead"])
def test_a_key_in_the_url_never_reaches_logs_errors_or_the_dataset(
    chain: Devnet, tmp_path: Path, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    m = chain.manifest
    info = m.pool("USDC/WBTC-3000")
    run_market(chain.w3, m, info, steps=2, vol=0.8, seed=4)
    to_block = chain.w3.eth.block_number
    served = iter(range(10**6))

    def get_logs(params: list[Any]) -> Any:
        if next(served) < 3:  # a few ranges get stored before the provider turns
            return standin.forward("eth_getLogs", params)
        if failure == "unauthorized":  # a gateway that quotes the request back
            raise RpcError(
                -32600, f"invalid API key for {standin.url}/v2/{KEY}?key={QUERY_KEY}", status=401
            )
        if failure == "rate":
            raise RpcError(429, "Too Many Requests", status=429, headers={"Retry-After": "0"})
        raise RpcError(
            -32600,
            "Monthly capacity limit exceeded. Visit https://dashboard.alchemyapi.io/settings/"
            f"billing?key={KEY} to upgrade your scaling policy for continued service.",
            status=403,
        )

    standin = RpcStandIn(forward_to=chain.url)
    standin.answer("eth_getLogs", get_logs)
    path = tmp_path / "pool.sqlite"
    caplog.set_level(logging.DEBUG)
    with serve(standin):
        port = _free_port() if failure == "dead" else int(standin.url.rsplit(":", 1)[1])
        url = f"http://127.0.0.1:{port}/v2/{KEY}?key={QUERY_KEY}"
        with pytest.raises(LpbotError) as raised:
            fetch_pool_events(
                connect(url, timeout=2), info.address, 0, to_block, path,
                multicall=m.contracts["Multicall3"], max_range=16, retries=1,
                sleep=lambda _s: None,
            )  # fmt: skip
    error = raised.value
    _no_key(str(error), repr(error), "".join(traceback.format_exception(error)))
    _no_key(*(r.getMessage() for r in caplog.records), caplog.text)
    if path.exists():
        _no_key(path.read_bytes().decode("latin-1"))
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # its lines were seen


def test_the_default_multicall_is_the_registrys_for_the_chain() -> None:
    """zkSync Era's Multicall3 is not at the canonical address, where there is no code."""
    zksync = registry.CHAINS[324].contracts["Multicall3"]
    assert zksync.lower() != "0xca11bde05977b3631167028862be2a173976ca11"
    standin = RpcStandIn(chain_id=324)
    standin.answer("eth_getCode", lambda p: "0x6080" if p[0].lower() == zksync.lower() else "0x")
    with serve(standin):
        src = Web3Source(connect(standin.url))
        retry = _Retry(0, 0.0, lambda _s: None)
        assert _multicall_at(src, retry, None, 100, src.chain_id()) == zksync
        assert _multicall_at(src, retry, None, 100, 31337) is None  # the devnet: none known


def test_a_refused_key_is_one_clear_error(tmp_path: Path) -> None:
    """Alchemy's answer to a wrong key: HTTP 401, nothing retried, no traceback of web3's."""
    standin = RpcStandIn()

    def refuse(_params: list[Any]) -> Any:
        raise RpcError(-32600, "Must be authenticated!", status=401)

    standin.answer("eth_chainId", refuse)
    with serve(standin):
        url = f"{standin.url}/v2/{KEY}"
        with pytest.raises(LpbotError, match=r"bad request.*Must be authenticated") as raised:
            fetch_pool_events(
                connect(url), "0x" + "ab" * 20, 0, 10, tmp_path / "x.sqlite", sleep=_no_sleep
            )
        assert len(standin.calls) == 1
    _no_key(str(raised.value))


def _no_sleep(_seconds: float) -> None:
    raise AssertionError("a refused key is not retried")


def test_retry_after_is_read_in_seconds_or_as_a_date() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    later = formatdate(time.time() + 120, usegmt=True)
    wait = _retry_after(later)
    assert wait is not None and 100 < wait <= 120
