"""A position's page, the chain's part: the pool's liquidity around the price, the greeks and
VaR as ``lpbot position show`` computes them, and a clear state when the chain does not answer;
the risk-regime slot."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from lpbot.app import App, Overrides
from lpbot.chain.artifacts import abi
from lpbot.web.server import create_app
from tests.web.conftest import DEMO_LABEL, Site

pytestmark = pytest.mark.devnet

TOKEN = "a-test-token-of-some-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _client(a: App) -> TestClient:
    return TestClient(create_app(a, TOKEN), base_url="http://127.0.0.1:8765")


def _cell(html: str, scope: str, field: str) -> str:
    part = html[html.index(scope) :]
    found = re.search(rf'data-field="{field}">([^<]*)<', part)
    assert found is not None, (scope, field)
    return unescape(found[1]).strip()


def test_greeks_var_and_liquidity_are_the_commands_and_the_pools(
    site: Site, live: str, cli: Any
) -> None:
    token = site.env.values["token_id"]
    with _client(site.app) as c:
        page = c.get(f"/position/{live}", headers=AUTH)
        assert page.status_code == 200
        # the chain's part is loaded after the page
        assert f'data-src="/position/{quote(live)}/market"' in page.text
        market = c.get(f"/position/{live}/market", headers=AUTH)
        assert c.get(f"/position/{live}/market").status_code == 401
        assert c.get("/position/nothing/market", headers=AUTH).status_code == 404
    assert market.status_code == 200, market.text
    html = market.text
    run = cli("--config", str(site.env.config), "position", "show", str(token), "--json")
    assert run.code == 0, run.err
    shown = json.loads(run.out)
    g = shown["greeks"]
    assert _cell(html, 'id="greeks"', "delta") == f"{g['delta']:,.6f} {g['risky']}"
    assert _cell(html, 'id="greeks"', "delta_usd") == f"{g['delta_usd']:,.2f}"
    assert _cell(html, 'id="greeks"', "gamma") == f"{g['gamma']:.6g} {g['risky']} per {g['quote']}"
    assert _cell(html, 'id="greeks"', "dollar_gamma") == f"{g['dollar_gamma_usd_per_pct']:,.2f}"
    assert shown["var"] or shown["var_note"]
    for v in shown["var"]:
        row = f'data-horizon="{v["horizon_seconds"] / 60:g}"'
        hist = v["historical_usd"]
        assert _cell(html, row, "historical") == ("not enough" if hist is None else f"{hist:,.2f}")
        assert _cell(html, row, "parametric") == f"{v['parametric_usd']:,.2f}"
        assert _cell(html, row, "delta_normal") == f"{v['delta_normal_usd']:,.2f}"
    if shown["var_note"]:
        assert _cell(html, "<", "var_note") == f"VaR: {shown['var_note']}"

    # the liquidity: the pool's own, read here tick by tick from the contract
    data = json.loads(
        unescape(re.search(r'id="liquidity-data">(.*?)</script>', html, re.S)[1])  # type: ignore[index]
    )
    w3 = site.env.chain.w3
    info = site.env.chain.manifest.pool(site.env.values["pool"])
    pool = w3.eth.contract(address=info.address, abi=abi("UniswapV3Pool"))
    active, tick = pool.functions.liquidity().call(), pool.functions.slot0().call()[1]
    assert _cell(html, "active liquidity", "active_liquidity") == str(active)
    assert data["tick"] == tick
    assert (data["tick_lower"], data["tick_upper"]) == (
        shown["range"]["tick_lower"],
        shown["range"]["tick_upper"],
    )
    spacing = pool.functions.tickSpacing().call()
    bars = data["bars"]
    assert 10 <= len(bars) <= 120
    lo, hi = bars[0]["tick"], bars[-1]["end"]
    assert lo <= data["tick_lower"] and data["tick_upper"] <= hi  # the whole range is shown
    net = {
        t: pool.functions.ticks(t).call()[1] for t in range(lo // spacing * spacing, hi, spacing)
    }
    current = tick // spacing * spacing  # ticks are initialized only at spacing multiples

    def liquidity_at(x: int) -> int:
        if x > tick:
            return active + sum(n for t, n in net.items() if tick < t <= x)
        return active - sum(n for t, n in net.items() if x < t <= tick)

    for b in bars:
        assert int(b["liquidity"]) == liquidity_at(b["tick"]), b
        assert b["in_range"] == (data["tick_lower"] <= b["tick"] < data["tick_upper"])
    here = [b for b in bars if b["tick"] <= tick < b["end"]]
    assert len(here) == 1
    if here[0]["end"] - here[0]["tick"] == spacing:  # one spacing a bar: the active liquidity
        assert here[0]["tick"] == current and int(here[0]["liquidity"]) == active
    assert any(int(b["liquidity"]) > 0 for b in bars)


def test_a_chain_that_does_not_answer_is_said_and_the_page_stands(site: Site, live: str) -> None:
    dead = App.load(site.env.config, overrides=Overrides(rpc_url="http://127.0.0.1:9"))
    try:
        with _client(dead) as c:
            page = c.get(f"/position/{live}", headers=AUTH)
            assert page.status_code == 200 and 'id="ledger"' in page.text
            market = c.get(f"/position/{live}/market", headers=AUTH)
    finally:
        dead.close()
    assert market.status_code == 200
    problem = _cell(market.text, "<", "market_problem")
    assert problem.startswith("chain unreachable: the RPC of chain devnet at ")
    assert "does not answer" in problem and 'id="greeks"' not in market.text


def test_the_regime_slot_says_not_evaluated_until_the_store_has_one(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _client(site.app) as c:
        for path in ("/", f"/position/{DEMO_LABEL}"):
            page = c.get(path, headers=AUTH)
            assert _cell(page.text, 'class="regime', "regime") == "risk regime: not evaluated"
        # the pages read it through one function: wired there, it shows everywhere
        import lpbot.web.data as data

        regime = {"regime": "high volatility", "at": "2026-12-02T19:00:00+00:00", "reasons": []}
        monkeypatch.setattr(data, "regime_of", lambda a, label=None: regime)
        for path in ("/", f"/position/{DEMO_LABEL}"):
            page = c.get(path, headers=AUTH)
            assert "risk regime: <strong>high volatility</strong>" in page.text, path
