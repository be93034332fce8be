"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, over the
server ``lpbot dashboard`` starts (uvicorn, its printed address with the token), after a short
demo run. Screenshots go to test-artifacts/dashboard/ (the README's come from here).

Skipped when /usr/bin/chromium is missing, unless LPBOT_REQUIRE_BROWSER is set (``make test``,
``.ci/run``): then a missing browser fails."""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lpbot import demo
from lpbot.app import App
from lpbot.chain.artifacts import project_root
from lpbot.jobs import ledger as ledger_store
from lpbot.store import repo
from lpbot.web.data import LEDGER_LINES, usd
from tests.web.conftest import DEMO_LABEL, Site

pytestmark = [pytest.mark.devnet, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = project_root() / "test-artifacts" / "dashboard"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (/usr/bin/chromium: scripts/ci-chromium.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        if os.environ.get("LPBOT_REQUIRE_BROWSER"):
            pytest.fail(f"LPBOT_REQUIRE_BROWSER is set but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(site: Site) -> Iterator[tuple[str, str]]:
    """``lpbot dashboard``'s server over the site; (the printed address, the bare one)."""
    with _serve(site.app) as addresses:
        yield addresses


@contextmanager
def _serve(app: App) -> Iterator[tuple[str, str]]:
    from lpbot.cli.dashboard import server, settings

    cfg = settings(app, port=_free_port())
    srv, url = server(app, cfg)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    try:
        yield url, url.split("?")[0]
    finally:
        srv.should_exit = True
        thread.join(10)


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _field(page: Any, scope: str, name: str) -> str:
    return str(page.locator(f'{scope} [data-field="{name}"]').first.inner_text()).strip()


def test_without_the_token_the_browser_gets_nothing(browser: Any, served: tuple[str, str]) -> None:
    _url, base = served
    context = browser.new_context()
    page = context.new_page()
    for path in ("", "rebalances", f"position/{DEMO_LABEL}", "api/status"):
        response = page.goto(base + path)
        assert response is not None and response.status == 401, path
        assert "access token required" in page.content()
    assert context.request.get(base + "api/version").status == 401
    context.close()


def test_each_page_shows_the_ledgers_numbers_and_updates_live(
    browser: Any, served: tuple[str, str], site: Site
) -> None:
    url, base = served
    with site.app.sessions() as s:
        h = ledger_store.history(s, DEMO_LABEL)
    last = h.last
    assert last is not None
    u = last.usd
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    assert page.url == base  # the token went into a cookie and left the address
    card = f'[data-position="{DEMO_LABEL}"]'
    for key in ("value", "fees", "il", "hedge_pnl", "funding", "net"):
        assert _field(page, card, key) == usd(getattr(u, key)), key
    assert page.locator(f"{card} .rangebar .marker").count() == 1
    _shot(page, "overview")

    # live: a decision stored while the page is open appears without a reload
    page.evaluate("window.__sameDocument = true")
    with site.app.sessions() as s, s.begin():
        repo.append_audit(s, "dashboard_check", ["stored while the page was open"], subject="t")
    page.locator("#alerts", has_text="stored while the page was open").wait_for(timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True

    page.click(f'a[href="/position/{DEMO_LABEL}"]')
    page.wait_for_url(f"{base}position/{DEMO_LABEL}")
    page.locator("#price-chart canvas").first.wait_for(timeout=15_000)
    assert page.locator("#value-chart canvas").count() >= 1
    for key, _label in LEDGER_LINES:
        assert _field(page, "#ledger", key) == usd(getattr(u, key)), key
    _shot(page, "position")

    page.goto(base + "hedge")
    row = f'#hedge-positions [data-position="{DEMO_LABEL}"]'
    assert _field(page, row, "hedge_pnl") == usd(u.hedge_pnl)
    assert _field(page, row, "funding") == usd(u.funding)
    _shot(page, "hedge")
    page.close()


def test_approve_in_the_browser_moves_the_rebalance_in_the_store(
    browser: Any, served: tuple[str, str], site: Site
) -> None:
    url, base = served
    rebalances = site.app.rebalance_repo("test")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.goto(base + "rebalances")
    state = f'#rebalance-list [data-rebalance="{site.rebalance_id}"] [data-field="state"]'
    assert page.locator(state).inner_text() == "SIMULATED"
    _shot(page, "rebalances")
    page.click(f"#approve-{site.rebalance_id}")
    page.wait_for_load_state()
    message = page.locator("#message")
    assert message.count() == 1, page.url
    assert "approved" in message.inner_text(), message.inner_text()
    page.wait_for_url(f"{base}rebalances?approved={site.rebalance_id}")
    assert page.locator("#message").inner_text() == f"rebalance {site.rebalance_id} approved"
    assert page.locator(state).inner_text() == "APPROVED"
    assert page.locator(f"#approve-{site.rebalance_id}").count() == 0
    record = rebalances.get(site.rebalance_id)
    assert record is not None and record.state.value == "APPROVED"
    assert str(record.approved_by).startswith(f"{getpass.getuser()} via dashboard 127.0.0.1:")
    assert " from 127.0.0.1, token sha256:" in str(record.approved_by)
    page.close()


def test_a_positions_liquidity_greeks_and_var_are_the_commands(
    browser: Any, served: tuple[str, str], site: Site, live: str, cli: Any
) -> None:
    """The chain's part of a position's page, loaded after it: the liquidity chart drawn, the
    greeks and VaR those of `lpbot position show --json`; the regime slot says not evaluated."""
    import json
    from urllib.parse import quote

    url, base = served
    token = site.env.values["token_id"]
    run = cli("--config", str(site.env.config), "position", "show", str(token), "--json")
    assert run.code == 0, run.err
    shown = json.loads(run.out)
    g = shown["greeks"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    assert _field(page, ".card", "regime") == "risk regime: not evaluated"
    page.goto(f"{base}position/{quote(live)}")
    page.locator("#liquidity-chart canvas").first.wait_for(timeout=30_000)
    assert _field(page, "main", "regime") == "risk regime: not evaluated"
    assert _field(page, "#greeks", "delta") == f"{g['delta']:,.6f} {g['risky']}"
    assert _field(page, "#greeks", "delta_usd") == f"{g['delta_usd']:,.2f}"
    assert _field(page, "#greeks", "gamma") == f"{g['gamma']:.6g} {g['risky']} per {g['quote']}"
    for v in shown["var"]:
        row = f'#var [data-horizon="{v["horizon_seconds"] / 60:g}"]'
        assert _field(page, row, "parametric") == f"{v['parametric_usd']:,.2f}"
        assert _field(page, row, "delta_normal") == f"{v['delta_normal_usd']:,.2f}"
    _shot(page, "position-live")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#market").screenshot(path=str(ARTIFACTS / "position-market.png"))

    # the demo's position: its chain is the demo's own, stopped; the page says so and stands
    page.goto(f"{base}position/{DEMO_LABEL}")
    page.locator("#market[data-loaded]").wait_for(timeout=30_000)
    assert page.locator("#market .warn").count() == 1
    assert _field(page, "#ledger", "net") != ""
    page.close()


def test_the_backtests_page_shows_each_runs_report(
    browser: Any, served: tuple[str, str], site: Site, tmp_path: Path
) -> None:
    import json

    from tests.web.test_backtests import backtest_with

    backtest_with(site.env.config, tmp_path)
    kept = site.app.reports_dir / "backtests"
    run_id = next(p.name for p in kept.iterdir() if "-run-" in p.name)
    summary = json.loads((kept / run_id / "summary.json").read_text())
    url, base = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.click('nav a[href="/backtests"]')
    page.wait_for_url(f"{base}backtests")
    row = f'#backtest-list [data-backtest="{run_id}"]'
    assert _field(page, row, "apr") == f"{summary['metrics']['apr']:+.2%}"
    assert page.locator("#backtest-list tr[data-backtest]").count() == 2
    _shot(page, "backtests")
    page.click(f"{row} a")
    page.wait_for_url(f"{base}backtests/{run_id}")
    report = page.locator("#backtest-report")
    assert report.locator("svg").count() >= 3  # price and range, value vs benchmarks, P&L
    assert f"{summary['metrics']['apr']:+.2%}" in report.inner_text()
    _shot(page, "backtest-run")
    page.close()


def test_the_demos_own_dashboard_reads_its_history_and_says_its_chain_is_stopped(
    browser: Any, demo_run: demo.DemoResult
) -> None:
    """What `make demo` ends with: ``lpbot dashboard --config`` over the demo's run, whose
    chain has stopped. The README's position screenshot."""
    config = demo_run.database.parent / "lpbot.toml"
    assert config.exists()
    a = App.load(config)
    try:
        with a.sessions() as s:
            last = ledger_store.history(s, DEMO_LABEL).last
        assert last is not None
        with _serve(a) as (url, base):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.goto(f"{base}position/{DEMO_LABEL}")
            page.locator("#price-chart canvas").first.wait_for(timeout=15_000)
            page.locator("#market[data-loaded]").wait_for(timeout=30_000)
            problem = _field(page, "#market", "market_problem")
            assert problem.startswith("chain unreachable: the RPC of chain devnet"), problem
            for key, _label in LEDGER_LINES:
                assert _field(page, "#ledger", key) == usd(getattr(last.usd, key)), key
            _shot(page, "demo-position")
            page.close()
    finally:
        a.close()
