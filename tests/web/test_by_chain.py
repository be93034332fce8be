"""The dashboard's overview grouped by chain: a section per chain with its subtotal, the total,
and a transaction linked to the chain's explorer only on a real chain; over the store of
``tests.cli.test_by_chain`` (positions on Ethereum, on Arbitrum through a node on this
machine, and on a chain no longer configured)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lpbot.analytics.ledger import GasPaid
from lpbot.jobs import ledger as ledger_store
from lpbot.web.server import create_app
from tests.cli.test_by_chain import GAS_TX, write_store

TOKEN = "a-test-token-of-some-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARB_TX = "0x" + "cd" * 32


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    a = write_store(tmp_path / "lpbot.toml")
    with a.sessions() as s, s.begin():  # a transaction on Arbitrum too (its node is local)
        ledger_store.record_gas(s, "arb-a", GasPaid(ARB_TX, 10**14, Decimal(3000), True), 26, 9)
    try:
        with TestClient(create_app(a, TOKEN), base_url="http://127.0.0.1:8765") as c:
            yield c
    finally:
        a.close()


def _section(html: str, chain_id: int) -> str:
    start = html.index(f'data-chain-id="{chain_id}"')
    end = html.find('<section class="chain"', start)
    return html[start : end if end != -1 else html.index('id="totals"')]


def _field(html: str, name: str) -> str:
    found = re.search(rf'data-field="{name}">([^<]*)<', html)
    assert found is not None, name
    return unescape(found.group(1))


def test_the_overview_shows_a_section_per_chain_with_its_subtotal_and_the_total(
    client: TestClient,
) -> None:
    page = client.get("/", headers=AUTH)
    assert page.status_code == 200
    html = page.text
    # the configuration's chains in its order, then the chain it no longer names, by id
    assert [int(x) for x in re.findall(r'data-chain-id="(\d+)"', html)] == [1, 42161, 10]
    eth, arb, old = _section(html, 1), _section(html, 42161), _section(html, 10)
    assert "ethereum (chain 1)" in eth and "chain 10 (not in this configuration)" in old
    assert re.findall(r'data-position="([^"]+)"', eth) == ["eth-a", "eth-b"]
    assert re.findall(r'data-position="([^"]+)"', arb) == ["arb-a", "arb-b"]
    assert re.findall(r'data-position="([^"]+)"', old) == ["op-old"]
    assert _field(eth, "chain_value") == "9,008.00"
    assert _field(eth, "chain_fees") == "8.00"
    assert _field(eth, "chain_hedge_pnl") == "-20.00"
    assert _field(eth, "chain_gas") == "3.00"
    assert _field(eth, "chain_net") == "-15.00"
    assert _field(arb, "chain_value") == "6,001.00"
    assert _field(arb, "chain_gas") == "0.30"  # 10^14 wei at $3,000
    assert "not counted: arb-b" in arb
    assert _field(old, "chain_value") == "600.00"
    totals = html[html.index('id="totals"') :]
    assert "of 3 chains" in totals
    assert _field(totals, "total_value") == "15,609.00"
    assert _field(totals, "total_gas") == "3.30"
    assert _field(totals, "total_net") == "-14.30"


def test_a_transaction_links_to_the_explorer_only_on_a_real_chain(client: TestClient) -> None:
    html = client.get("/", headers=AUTH).text
    eth, arb = _section(html, 1), _section(html, 42161)
    assert f'href="https://etherscan.io/tx/{GAS_TX}"' in eth
    # Arbitrum's id, but its node is on this machine (a fork): no explorer has the transaction
    assert "arbiscan" not in html and 'title="' + ARB_TX + '"' in arb
    position = client.get("/position/eth-a", headers=AUTH).text
    assert f'href="https://etherscan.io/tx/{GAS_TX}"' in position
    assert "arbiscan" not in client.get("/position/arb-a", headers=AUTH).text


def test_approving_in_the_dashboard_uses_the_rebalances_own_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Arbitrum report approved in the dashboard goes through Arbitrum's context (here its
    RPC variable is named as unset), as ``lpbot rebalance approve`` does, never the first
    position's chain."""
    from lpbot.app import App
    from lpbot.execution.state import RebalanceState as S
    from tests.cli.test_by_chain import TWO_LIVE_CHAINS

    monkeypatch.delenv("LPBOT_TEST_ETH_RPC", raising=False)
    monkeypatch.delenv("LPBOT_TEST_ARB_RPC", raising=False)
    config = tmp_path / "lpbot.toml"
    config.write_text(TWO_LIVE_CHAINS)
    a = App.load(config)
    repo = a.rebalance_repo("test")
    record = repo.create(idempotency_key="arb-8", chain_id=42161, safe="0x" + "22" * 20, token_id=8)
    repo.transition(record.id, S.PLANNED, S.SIMULATED, report_id="r-arb", report_hash="h")
    try:
        with TestClient(create_app(a, TOKEN), base_url="http://127.0.0.1:8765") as c:
            csrf = hmac.new(TOKEN.encode(), b"lpbot-dashboard-csrf", hashlib.sha256).hexdigest()
            r = c.post("/rebalances/r-arb/approve", data={"csrf": csrf}, headers=AUTH)
        assert r.status_code == 409
        assert "LPBOT_TEST_ARB_RPC" in r.text and "LPBOT_TEST_ETH_RPC" not in r.text
        assert repo.get(record.id).state == S.SIMULATED  # type: ignore[union-attr]
    finally:
        a.close()
