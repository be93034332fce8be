"""The dashboard's web application (Starlette, Jinja2 templates, a little plain JavaScript).

Pages read the store and the ledger through ``lpbot.web.data``; the one write, approving a
rebalance's dry-run report, calls ``lpbot.execution.service.approve`` with the context
``lpbot rebalance approve`` builds (the same checks, the same audit record). Nothing is signed
here.

Every request needs the access token: an ``Authorization: Bearer`` or ``X-Lpbot-Token`` header,
or the cookie a first visit with ``?token=`` sets (HttpOnly, SameSite=Strict; the token is then
dropped from the address). The approve form carries a CSRF token derived from the access token,
and a cross-origin POST is refused. Responses forbid framing, caching and inline scripts.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from lpbot.errors import ConfigError, LpbotError

if TYPE_CHECKING:
    from jinja2 import Environment
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from lpbot.app import App
    from lpbot.config import DashboardConfig

__all__ = ["COOKIE", "Dashboard", "access_token", "create_app", "echarts_file"]

log = logging.getLogger(__name__)

COOKIE = "lpbot_dashboard"  # + "_PORT": a browser sends a host's cookies to all its ports
FRAGMENT_HEADER = "x-lpbot-fragment"
HERE = Path(__file__).parent
MIN_TOKEN_LENGTH = 16
MAX_FORM_BYTES = 4096  # the approve form: its CSRF token
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


def access_token(cfg: DashboardConfig, environ: Any) -> tuple[str, bool]:
    """The access token: the value of ``dashboard.token_env`` when configured, else a random
    one; (token, True when random)."""
    if cfg.token_env is None:
        return secrets.token_urlsafe(24), True
    value = environ.get(cfg.token_env)
    if not value:
        raise ConfigError(f"dashboard.token_env: environment variable {cfg.token_env} is not set")
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"dashboard.token_env: the token in {cfg.token_env} is shorter than "
            f"{MIN_TOKEN_LENGTH} characters; use a random one (`openssl rand -hex 24`)"
        )
    return value, False


def echarts_file() -> Path | None:
    """Apache ECharts' minified build: copied into the package by ``make setup``, else the
    project's own ``node_modules`` (npm package ``echarts``, pinned in package.json)."""
    vendored = HERE / "static" / "vendor" / "echarts.min.js"
    if vendored.exists():
        return vendored
    from lpbot.chain.artifacts import project_root

    installed = project_root() / "node_modules" / "echarts" / "dist" / "echarts.min.js"
    return installed if installed.exists() else None


def _templates() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from lpbot.web.data import LEDGER_LINES, usd

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )
    env.filters["usd"] = usd
    env.filters["num"] = lambda v, digits=2: "" if v is None else f"{float(v):,.{digits}f}"
    env.filters["short"] = lambda v: f"{v[:8]}…{v[-6:]}" if v and len(v) > 16 else (v or "")
    env.globals["LEDGER_LINES"] = LEDGER_LINES
    return env


class Dashboard:
    """The application with its token and the one ``App`` it reads."""

    def __init__(
        self,
        a: App,
        token: str,
        *,
        secure: bool = False,
        host: str = "127.0.0.1",
        port: int = 8765,
    ) -> None:
        from lpbot.config import LOOPBACK_HOSTS

        self.a, self.token, self.secure = a, token, secure
        self.host, self.port = host, port
        # who approves here, in the audit record: never the token, only a fingerprint of it
        self.fingerprint = hashlib.sha256(token.encode()).hexdigest()[:8]
        self.cookie = f"{COOKIE}_{port}"  # two dashboards on one host keep their own
        # bound to loopback: only loopback names (a page whose own name was made to resolve to
        # 127.0.0.1, DNS rebinding, is refused); elsewhere TLS's certificate names the host
        self.names = frozenset(LOOPBACK_HOSTS) if host in LOOPBACK_HOSTS else None
        self.csrf = hmac.new(token.encode(), b"lpbot-dashboard-csrf", hashlib.sha256).hexdigest()
        self.templates = _templates()
        self._approve_lock = threading.Lock()
        a.engine  # noqa: B018 - opened (and migrated) once, before the first page

    # ------------------------------------------------------------------------------ auth

    def _given_token(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.headers.get("x-lpbot-token") or request.cookies.get(self.cookie)

    def _valid(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def guard(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        from starlette.responses import PlainTextResponse, RedirectResponse

        if self.names is not None:
            name = urlsplit("//" + request.headers.get("host", "")).hostname
            if name not in self.names:
                return self._headers(
                    PlainTextResponse(
                        "not this dashboard's address: open it as 127.0.0.1, localhost or [::1]",
                        status_code=421,
                    )
                )
        query_token = request.query_params.get("token")
        if query_token is not None:
            if not self._valid(query_token):
                return self._headers(PlainTextResponse("wrong access token", status_code=401))
            # the token leaves the address bar (and the history) at once: a cookie holds it
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            # one leading slash: "//host" would send the browser to another site
            path = "/" + request.url.path.lstrip("/")
            target = path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                self.cookie,
                self.token,
                httponly=True,
                samesite="strict",
                secure=self.secure,
                path="/",
            )
            return self._headers(response)
        if not self._valid(self._given_token(request)):
            return self._headers(
                PlainTextResponse(
                    "access token required: open the address `lpbot dashboard` printed "
                    "(…/?token=…) or send the header Authorization: Bearer TOKEN",
                    status_code=401,
                )
            )
        return self._headers(await call_next(request))

    @staticmethod
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # the Origin of a form post stays
        response.headers["Cache-Control"] = "no-store"
        return response

    # ----------------------------------------------------------------------------- pages

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        from starlette.responses import HTMLResponse

        fragment = request.headers.get(FRAGMENT_HEADER) == "1"
        html = self.templates.get_template(template).render(
            fragment=fragment,
            path=request.url.path,
            csrf=self.csrf,
            poll_seconds=self.a.config.dashboard.poll_seconds,
            charts=echarts_file() is not None,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def overview(self, request: Request) -> Response:
        from lpbot.web.data import overview

        return self.render(request, "overview.html", page="overview", data=overview(self.a))

    def position(self, request: Request) -> Response:
        from starlette.responses import PlainTextResponse

        from lpbot.errors import Refused
        from lpbot.web.data import position_page

        try:
            data = position_page(self.a, request.path_params["label"])
        except Refused as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return self.render(request, "position.html", page="position", data=data)

    def position_market(self, request: Request) -> Response:
        """The chain's part of a position's page (liquidity, greeks, VaR), loaded after it: a
        slow or dead RPC never holds the page."""
        from starlette.responses import PlainTextResponse

        from lpbot.errors import Refused
        from lpbot.web.data import fetch_position_market

        try:
            data = fetch_position_market(self.a, request.path_params["label"])
        except Refused as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return self.render(request, "position_market.html", page="position", data=data)

    def rebalances(self, request: Request, *, message: str = "", status: int = 200) -> Response:
        from lpbot.web.data import rebalances_page

        approved = request.query_params.get("approved", "")
        if approved.isdigit() and not message:
            message = f"rebalance {approved} approved"
        return self.render(
            request,
            "rebalances.html",
            status=status,
            page="rebalances",
            data=rebalances_page(self.a),
            message=message,
            error=status >= 400,
        )

    def backtests(self, request: Request) -> Response:
        from lpbot.web.data import backtests_page

        return self.render(request, "backtests.html", page="backtests", data=backtests_page(self.a))

    def backtest(self, request: Request) -> Response:
        from starlette.responses import PlainTextResponse

        from lpbot.errors import Refused
        from lpbot.web.data import backtest_page

        try:
            data = backtest_page(self.a, request.path_params["backtest_id"])
        except Refused as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return self.render(request, "backtest.html", page="backtests", data=data)

    def backtest_report(self, request: Request) -> Response:
        """A run's HTML report, the page ``lpbot backtest run --html`` writes."""
        from starlette.responses import HTMLResponse, PlainTextResponse

        from lpbot.backtest.saved import FOLDER, report_page
        from lpbot.errors import Refused

        try:
            page = report_page(self.a.reports_dir / FOLDER, request.path_params["backtest_id"])
        except Refused as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return HTMLResponse(page)

    def hedge(self, request: Request) -> Response:
        from lpbot.web.data import hedge_page

        return self.render(request, "hedge.html", page="hedge", data=hedge_page(self.a))

    def api_status(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        from lpbot.cli.daemon import status_data

        # what `lpbot status --json` prints (its JSON: times and decimals as text)
        return JSONResponse(json.loads(json.dumps(status_data(self.a), default=str)))

    def api_version(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        from lpbot.web.data import version

        return JSONResponse({"version": version(self.a)})

    def echarts(self, request: Request) -> Response:
        from starlette.responses import FileResponse, PlainTextResponse

        path = echarts_file()
        if path is None:
            return PlainTextResponse("echarts is not installed: run `make setup`", status_code=404)
        return FileResponse(path, media_type="text/javascript")

    # ---------------------------------------------------------------------------- approve

    async def approve(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import PlainTextResponse, RedirectResponse

        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return self.rebalances(request, message="cross-origin request refused", status=403)
        raw = b""
        async for chunk in request.stream():  # the form is one short field: never read more
            raw += chunk
            if len(raw) > MAX_FORM_BYTES:
                return PlainTextResponse("request too large", status_code=413)
        body = raw.decode("utf-8", errors="replace")
        form = {k: v[0] for k, v in parse_qs(body).items()}
        given = form.get("csrf") or request.headers.get("x-csrf-token") or ""
        if not hmac.compare_digest(given.encode(), self.csrf.encode()):
            return self.rebalances(request, message="missing or wrong CSRF token", status=403)
        report_id = request.path_params["report_id"]
        client = request.client.host if request.client else "unknown"
        try:
            record = await run_in_threadpool(self._approve, report_id, client)
        except LpbotError as exc:
            return self.rebalances(request, message=f"not approved: {exc}", status=409)
        return RedirectResponse(f"/rebalances?approved={record.id}", status_code=303)

    def approver(self, client: str) -> str:
        """Who approves through this dashboard: the user running it, as ``lpbot rebalance
        approve`` records (``alice``), then the dashboard's address, the client's and the access
        token's fingerprint (``alice via dashboard 127.0.0.1:8765 from 127.0.0.1, token
        sha256:1a2b3c4d``); never the token."""
        return (
            f"{getpass.getuser()} via dashboard {self.host}:{self.port} from {client}, "
            f"token sha256:{self.fingerprint}"
        )

    def _approve(self, report_id: str, client: str) -> Any:
        """``lpbot rebalance approve REPORT_ID --yes``: the same context, the same service."""
        from lpbot.execution import service

        approver = self.approver(client)
        with self._approve_lock:
            # as the command: the rebalance's own chain (else the first position's)
            position = self.a.rebalance_position(report_id)
            ctx = self.a.execution_context(position, actor=approver)
            return service.approve(ctx, report_id, approver=approver)


def create_app(
    a: App, token: str, *, secure: bool = False, host: str = "127.0.0.1", port: int = 8765
) -> Starlette:
    """The dashboard over ``a``'s store bound to ``host`` and ``port``, requiring ``token`` on every
    request."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    d = Dashboard(a, token, secure=secure, host=host, port=port)
    app = Starlette(
        routes=[
            Route("/", d.overview),
            Route("/position/{label}", d.position),
            Route("/position/{label}/market", d.position_market),
            Route("/rebalances", d.rebalances),
            Route("/rebalances/{report_id}/approve", d.approve, methods=["POST"]),
            Route("/hedge", d.hedge),
            Route("/backtests", d.backtests),
            Route("/backtests/{backtest_id}", d.backtest),
            Route("/backtests/{backtest_id}/report.html", d.backtest_report),
            Route("/api/status", d.api_status),
            Route("/api/version", d.api_version),
            Route("/static/vendor/echarts.min.js", d.echarts),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=d.guard)],
    )
    app.state.dashboard = d
    return app
