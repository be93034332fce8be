"""The dashboard through Starlette's test client: the token on every request, the CSRF token on
approve, the same numbers as the ledger and ``lpbot status --json``, and an approval that is
``lpbot rebalance approve``'s."""

from __future__ import annotations

import getpass
import hashlib
import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from lpbot.app import App
from lpbot.errors import ConfigError
from lpbot.jobs import ledger as ledger_store
from lpbot.store.models import AuditEntry
from lpbot.web.data import LEDGER_LINES, usd
from lpbot.web.server import COOKIE, create_app
from tests.web.conftest import DEMO_LABEL, Site

COOKIE_8765 = f"{COOKIE}_8765"  # the cookie of a dashboard on port 8765
TOKEN = "a-test-token-of-some-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[TestClient]:
    """A dashboard over a fresh database (no chain needed to read it)."""
    config = tmp_path / "lpbot.toml"
    config.write_text(
        'version = 1\ndata_dir = "data"\n[chains.devnet]\nmanifest = "manifest.json"\n'
    )
    a = App.load(config)
    with TestClient(create_app(a, TOKEN), base_url="http://127.0.0.1:8765") as client:
        yield client
    a.close()


def test_every_request_without_the_token_is_refused(empty: TestClient) -> None:
    for path in ("/", "/rebalances", "/hedge", "/api/status", "/api/version", "/static/app.js"):
        r = empty.get(path)
        assert r.status_code == 401, path
        assert "access token required" in r.text
    assert empty.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    empty.cookies.set(COOKIE_8765, "wrong")
    assert empty.get("/").status_code == 401
    empty.cookies.clear()
    assert empty.get("/?token=wrong", follow_redirects=False).status_code == 401
    r = empty.post("/rebalances/x/approve", data={"csrf": "x"})
    assert r.status_code == 401


def test_a_first_visit_with_the_token_sets_a_strict_cookie_and_drops_it_from_the_address(
    empty: TestClient,
) -> None:
    r = empty.get(f"/hedge?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/hedge"
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE_8765}={TOKEN}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    empty.cookies.set(COOKIE_8765, TOKEN)
    page = empty.get("/hedge")
    empty.cookies.clear()
    assert page.status_code == 200 and "<h1>Hedge</h1>" in page.text
    # the token is never written into a page; no inline script may run; no framing
    assert TOKEN not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert empty.get("/", headers={"X-Lpbot-Token": TOKEN}).status_code == 200
    # the redirect stays on this site, whatever the path
    r = empty.get(f"/%2Fevil.example/x?token={TOKEN}&a=1", follow_redirects=False)
    assert r.headers["location"] == "/evil.example/x?a=1"
    assert empty.get("/api/version", headers=AUTH).json() == {"version": "None:None:None:0:None"}
    # a database with nothing in it yet: every page answers, and says so
    for path, says in (
        ("/", "No position recorded yet"),
        ("/rebalances", "none yet"),
        ("/hedge", "no [hedge] configured"),
    ):
        r = empty.get(path, headers=AUTH)
        assert r.status_code == 200 and says in r.text, path
    r = empty.get("/position/nothing", headers=AUTH)
    assert r.status_code == 404 and "no position 'nothing'" in r.text


def test_a_token_from_the_environment_must_be_set_and_long(tmp_path: Path) -> None:
    from lpbot.config import DashboardConfig
    from lpbot.web.server import access_token

    cfg = DashboardConfig(token_env="LPBOT_T_DASH")
    with pytest.raises(ConfigError, match="LPBOT_T_DASH is not set"):
        access_token(cfg, {})
    with pytest.raises(ConfigError, match="shorter than 16"):
        access_token(cfg, {"LPBOT_T_DASH": "short"})
    assert access_token(cfg, {"LPBOT_T_DASH": TOKEN}) == (TOKEN, False)
    token, random = access_token(DashboardConfig(), {})
    assert random and len(token) >= 32


def test_a_host_other_than_loopback_is_refused_without_tls_and_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lpbot.cli import main

    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    config = tmp_path / "lpbot.toml"
    base = 'version = 1\ndata_dir = "data"\n[chains.devnet]\nmanifest = "manifest.json"\n'
    config.write_text(base)
    assert main(["--config", str(config), "dashboard", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "'0.0.0.0' is not loopback" in err and "tls_cert" in err
    config.write_text(base + '[dashboard]\nhost = "192.168.1.2"\ntoken_env = "LPBOT_T_DASH"\n')
    assert main(["--config", str(config), "config", "check"]) == 2
    assert "dashboard.host: '192.168.1.2' is not loopback" in capsys.readouterr().err
    config.write_text(base + "[dashboard]\nport = 70000\n")
    assert main(["--config", str(config), "config", "check"]) == 2
    assert "dashboard.port" in capsys.readouterr().err


# ------------------------------------------------------------------ over a demo run


def _client(site: Site) -> TestClient:
    return TestClient(create_app(site.app, TOKEN), base_url="http://127.0.0.1:8765")


def _fields(html: str) -> dict[str, str]:
    """Every ``data-field`` cell's text (the first of each name)."""
    out: dict[str, str] = {}
    for name, text in re.findall(r'data-field="([a-z_0-9]+)">([^<]*)<', html):
        out.setdefault(name, unescape(text).strip())
    return out


@pytest.mark.devnet
def test_the_pages_show_the_ledgers_numbers_and_status_json(site: Site, cli: Any) -> None:
    with site.app.sessions() as s:
        h = ledger_store.history(s, DEMO_LABEL)
        rows = ledger_store.export_rows(s)
    last = h.last
    assert last is not None
    u = last.usd
    with _client(site) as c:
        page = c.get("/", headers=AUTH)
        assert page.status_code == 200
        card = page.text[page.text.index(f'data-position="{DEMO_LABEL}"') :]
        shown = _fields(card)
        for key in ("value", "fees", "il", "hedge_pnl", "funding", "net"):
            assert shown[key] == usd(getattr(u, key)), key
        assert shown["in_range"] == ("in range" if h.points[-1].in_range else "OUT of range")

        position = c.get(f"/position/{DEMO_LABEL}", headers=AUTH)
        assert position.status_code == 200
        shown = _fields(position.text)
        for key, _label in LEDGER_LINES:
            assert shown[key] == usd(getattr(u, key)), key
        # the chart's series are the ledger's, point for point
        data = json.loads(
            unescape(re.search(r'id="chart-data">(.*?)</script>', position.text, re.S)[1])  # type: ignore[index]
        )
        assert [p["net"] for p in data["points"]] == [str(p.ledger.usd.net) for p in h.points]
        assert [p["value"] for p in data["points"]] == [str(p.ledger.usd.value) for p in h.points]
        assert [p["hold"] for p in data["points"]] == [str(p.ledger.usd.hold) for p in h.points]
        assert [p["hold_5050"] for p in data["points"]] == [
            str(p.ledger.usd.hold_5050) for p in h.points
        ]
        # the third series, the passive full range, opened at the demo's deposit
        assert u.full_range is not None and not h.full_range_late
        assert [p["full_range"] for p in data["points"]] == [
            str(p.ledger.usd.full_range) for p in h.points
        ]
        assert h.full_range_note in unescape(position.text)
        # its transactions are `lpbot export`'s, each with its hash
        exported = [r for r in rows if r["position"] == DEMO_LABEL and r["kind"] != "snapshot"]
        for r in exported:
            assert str(r["tx_hash"])[:8] in position.text
        table = position.text[position.text.index('id="transactions"') :].split("</table>")[0]
        assert table.count("</tr>") - 1 == len(exported)  # below its header row
        assert len(data["rebalances"]) == sum(
            1 for r in exported if r["kind"] in ("rebalance", "compound")
        )

        hedge = c.get("/hedge", headers=AUTH)
        shown = _fields(hedge.text[hedge.text.index(f'data-position="{DEMO_LABEL}"') :])
        assert (shown["hedge_pnl"], shown["funding"]) == (usd(u.hedge_pnl), usd(u.funding))

        # /api/status is `lpbot status --json`, bar the time it was asked
        api = c.get("/api/status", headers=AUTH).json()
    run = cli("--config", str(site.env.config), "status", "--json")
    assert run.code == 0, run.err
    status = json.loads(run.out)
    for key in ("positions", "ledger", "pending_approvals", "unfinished_rebalances", "jobs"):
        assert api[key] == status[key], key
    # the full-range figures of `lpbot status --json`, `lpbot export` and the pages are one
    [item] = [x for x in status["ledger"] if x["position"] == DEMO_LABEL]
    [row] = [r for r in rows if r["position"] == DEMO_LABEL and r["block"] == last.block
             and r["kind"] == "snapshot"]  # fmt: skip
    assert item["full_range_usd"] == row["full_range_usd"] == str(u.full_range)
    assert item["net_vs_full_range_usd"] == row["net_vs_full_range_usd"] == str(u.net_vs_full_range)
    assert item["full_range_fees_usd"] == row["full_range_fees_usd"] == str(u.full_range_fees)
    assert f"full range ${u.full_range:,.2f}" in item["line"]
    # and `lpbot report`'s table and value chart
    out = site.env.data / "performance.html"
    run = cli("--config", str(site.env.config), "report", "--out", str(out))
    assert run.code == 0, run.err
    report = out.read_text()
    section = report[report.index(f"<h2>{DEMO_LABEL} ") :].split("<h2>")[1]
    cells = re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td></tr>", section)
    assert ("passive full range", f"{u.full_range:,.2f}") in cells
    assert ("net vs full range", f"{u.net_vs_full_range:,.2f}") in cells
    assert "full range</text>" in section and unescape(h.full_range_note) in unescape(section)
    assert {"id": site.rebalance_id, "report_id": site.report_id} == {
        k: status["pending_approvals"][0][k] for k in ("id", "report_id")
    }


@pytest.mark.devnet
def test_approve_is_the_commands_approval_and_needs_the_csrf_token(site: Site) -> None:
    repo = site.app.rebalance_repo("test")
    url = f"/rebalances/{site.report_id}/approve"
    with _client(site) as c:
        page = c.get("/rebalances", headers=AUTH)
        assert f'action="{url}"' in page.text  # the waiting report has its button
        assert "Liquidity around the price" in page.text  # its report, rendered
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)[1]  # type: ignore[index]
        # without the CSRF token, with a wrong one, or from another origin: refused, unchanged
        for data, headers in (
            ({}, AUTH),
            ({"csrf": "0" * 64}, AUTH),
            ({"csrf": csrf}, {**AUTH, "Origin": "http://evil.example"}),
        ):
            r = c.post(url, data=data, headers=headers, follow_redirects=False)
            assert r.status_code == 403
            assert repo.get(site.rebalance_id).state.value == "SIMULATED"  # type: ignore[union-attr]
        r = c.post(url, data={"csrf": csrf}, headers=AUTH, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/rebalances?approved={site.rebalance_id}"
        record = repo.get(site.rebalance_id)
        assert record is not None and record.state.value == "APPROVED"
        # `lpbot rebalance approve` records the OS user; here the same user, then which
        # dashboard, from where and which token (its fingerprint: never the token itself)
        fingerprint = hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
        assert record.approved_by == (
            f"{getpass.getuser()} via dashboard 127.0.0.1:8765 from testclient, "
            f"token sha256:{fingerprint}"
        )
        assert TOKEN not in str(record.approved_by)
        # the same audit record as `lpbot rebalance approve`: the transition, with its actor
        with site.app.sessions() as s:
            entries = s.scalars(
                select(AuditEntry).where(AuditEntry.rebalance_id == site.rebalance_id)
            ).all()
        moved = [e for e in entries if "SIMULATED -> APPROVED" in json.dumps(e.reasons)]
        assert len(moved) == 1 and moved[0].actor == record.approved_by
        # a second approval is refused by the service, as on the command line
        again = c.post(url, data={"csrf": csrf}, headers=AUTH)
        assert again.status_code == 409
        assert "not awaiting approval" in again.text
        page = c.get(f"/rebalances?approved={site.rebalance_id}", headers=AUTH)
        assert f"rebalance {site.rebalance_id} approved" in page.text
        assert f'action="{url}"' not in page.text


@pytest.mark.devnet
def test_run_with_dashboard_serves_it_beside_the_daemon(env: Any, cli: Any) -> None:
    """`lpbot run --dashboard`: the jobs run, and the page answers (refusing a request without
    the token printed at start) until the daemon stops."""
    import socket
    import threading
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.config.write_text(env.config.read_text() + f"[dashboard]\nport = {port}\n")
    answers: list[int] = []

    def ask() -> None:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=1)
            except urllib.error.HTTPError as exc:
                answers.append(exc.code)
                return
            except OSError:
                threading.Event().wait(0.05)

    asker = threading.Thread(target=ask)
    asker.start()
    run = cli("--config", str(env.config), "run", "--dashboard", "--seconds", "4")
    asker.join()
    assert run.code == 0, run.err
    assert f"dashboard: http://127.0.0.1:{port}/?token=" in run.out
    assert answers == [401]


def test_a_page_under_another_name_is_refused_dns_rebinding(empty: TestClient) -> None:
    # a page on evil.example whose name now resolves to 127.0.0.1 reaches the loopback port
    for host in ("evil.example:8765", "evil.example", "127.0.0.1.evil.example:8765"):
        r = empty.get("/api/status", headers={**AUTH, "Host": host})
        assert r.status_code == 421, host
        assert "not this dashboard's address" in r.text
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "127.0.0.1"):
        assert empty.get("/api/version", headers={**AUTH, "Host": host}).status_code == 200, host


def test_a_port_already_taken_is_one_clear_error_and_no_token_is_printed(
    tmp_path: Path, cli: Any
) -> None:
    """Whoever holds the port would receive the printed address, token and all."""
    import socket

    config = tmp_path / "lpbot.toml"
    config.write_text(
        'version = 1\ndata_dir = "data"\n[chains.devnet]\nmanifest = "manifest.json"\n'
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli("--config", str(config), "dashboard", "--port", str(port))
    assert run.code != 0
    assert "token" not in run.out
    assert f"dashboard: cannot listen on 127.0.0.1:{port}" in run.err


def test_a_bad_tls_certificate_is_one_clear_error_naming_the_key(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    config = tmp_path / "lpbot.toml"
    config.write_text(
        'version = 1\ndata_dir = "data"\n[chains.devnet]\nmanifest = "manifest.json"\n'
        '[dashboard]\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n'
    )
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    for missing in (False, True):
        if missing:
            (tmp_path / "cert.pem").unlink()
        run = cli("--config", str(config), "dashboard", "--port", port)
        assert run.code != 0
        assert "dashboard:" not in run.out  # no address for a server that never starts
        assert "dashboard.tls_cert" in run.err and "Traceback" not in run.err


def test_two_dashboards_on_one_host_keep_their_own_cookies(tmp_path: Path) -> None:
    """Cookies are not kept apart by port: a browser sends 127.0.0.1's cookies to every port.
    Opening a second dashboard (the demo's, say) must not sign the first one out."""
    config = tmp_path / "lpbot.toml"
    config.write_text(
        'version = 1\ndata_dir = "data"\n[chains.devnet]\nmanifest = "manifest.json"\n'
    )
    a = App.load(config)
    other = "another-token-of-some-length"
    try:
        first = TestClient(create_app(a, TOKEN, port=8765), base_url="http://127.0.0.1:8765")
        second = TestClient(create_app(a, other, port=8766), base_url="http://127.0.0.1:8766")
        with first, second:
            assert first.get(f"/?token={TOKEN}").status_code == 200
            assert second.get(f"/?token={other}").status_code == 200
            # one browser: both cookies in one jar, keyed by host, name and path (not port)
            first.cookies.update(second.cookies)
            second.cookies.update(first.cookies)
            assert first.get("/").status_code == 200
            assert second.get("/").status_code == 200
    finally:
        a.close()


def test_an_oversized_approve_request_is_refused_unread(empty: TestClient) -> None:
    r = empty.post("/rebalances/x/approve", headers=AUTH, content=b"csrf=" + b"a" * 5_000_000)
    assert r.status_code == 413 and "too large" in r.text


@pytest.mark.devnet
def test_the_hedge_page_shows_a_position_without_a_hedge(site: Site) -> None:
    """A position with snapshots but no hedge (no [hedge], or before its first order)."""
    with site.app.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE position_snapshots SET hedge = NULL")
    with _client(site) as c:
        r = c.get("/hedge", headers=AUTH)
    assert r.status_code == 200
    row = r.text[r.text.index(f'data-position="{DEMO_LABEL}"') :].split("</tr>")[0]
    assert "hedge_pnl" in _fields(row)  # its ledger's line, the hedge's own figures blank
