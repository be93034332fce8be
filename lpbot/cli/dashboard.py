"""``lpbot dashboard``: the local web dashboard over the store and the ledger (``lpbot.web``)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lpbot.cli.common import app, config_option

if TYPE_CHECKING:
    from lpbot.app import App
    from lpbot.config import DashboardConfig


def settings(a: App, host: str | None = None, port: int | None = None) -> DashboardConfig:
    """``[dashboard]`` with ``--host``/``--port`` applied, validated as the file is: a host
    other than loopback is refused without TLS and a configured token."""
    from pydantic import ValidationError

    from lpbot.config import DashboardConfig
    from lpbot.errors import ConfigError

    cfg = a.config.dashboard
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if not changes:
        return cfg
    try:
        return DashboardConfig.model_validate({**cfg.model_dump(), **changes})
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"dashboard: {problems}") from None


def _url(cfg: DashboardConfig) -> str:
    scheme = "https" if cfg.tls_cert else "http"
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    return f"{scheme}://{host}:{cfg.port}/"


def _listen(cfg: DashboardConfig) -> socket.socket:
    """The dashboard's socket, bound before its address (and token) is printed: a port taken by
    another program is one clear error, and that program never receives the token."""
    from lpbot.errors import ConfigError

    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((cfg.host, cfg.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"dashboard: cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc} "
            "(another program holds the port? choose one with --port or dashboard.port)"
        ) from None
    return sock


def server(a: App, cfg: DashboardConfig) -> tuple[Any, str]:
    """The uvicorn server of ``a``'s dashboard (its socket bound, not started) and the address
    to open: with ``?token=`` when the token is the random one made now (never a configured
    one)."""
    import uvicorn

    from lpbot.web.server import access_token, create_app

    class Bound(uvicorn.Server):
        def run(self, sockets: list[socket.socket] | None = None) -> None:
            super().run(sockets=sockets or [sock])

    token, random = access_token(cfg, a.environ)
    web = create_app(a, token, secure=cfg.tls_cert is not None, host=cfg.host, port=cfg.port)
    config = uvicorn.Config(
        web,
        host=cfg.host,
        port=cfg.port,
        ssl_certfile=str(cfg.tls_cert) if cfg.tls_cert else None,
        ssl_keyfile=str(cfg.tls_key) if cfg.tls_key else None,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    try:
        config.load()  # the TLS certificate and key, read now: a bad one is not a dead thread
    except OSError as exc:  # ssl.SSLError included
        from lpbot.errors import ConfigError

        raise ConfigError(
            f"dashboard.tls_cert, dashboard.tls_key: cannot use {cfg.tls_cert} and "
            f"{cfg.tls_key} as a certificate and its key: {exc.strerror or exc}"
        ) from None
    url = _url(cfg)
    sock = _listen(cfg)
    return Bound(config), (f"{url}?token={token}" if random else url)


def announce(url: str, cfg: DashboardConfig) -> None:
    click.echo(f"dashboard: {url}")
    if cfg.token_env:
        click.echo(f"  the access token is ${cfg.token_env} (add ?token=… once, or send it)")
    else:
        click.echo("  (a new access token each start; the address carries it once, then a cookie)")


def start_in_background(a: App, cfg: DashboardConfig) -> Any:
    """Serve the dashboard from a thread beside the daemon (``lpbot run --dashboard``)."""
    srv, url = server(a, cfg)
    thread = threading.Thread(target=srv.run, name="lpbot-dashboard", daemon=True)
    thread.start()
    announce(url, cfg)
    return srv


def _demo_app(days: int, workdir: Path | None) -> tuple[App, Path]:
    from lpbot import demo
    from lpbot.app import App

    result = demo.run(days=days, workdir=workdir)
    config = result.database.parent / "lpbot.toml"
    return App.load(config), config


@click.command()
@config_option
@click.option("--host", help="address to bind (overrides dashboard.host; loopback by default)")
@click.option("--port", type=int, help="port (overrides dashboard.port)")
@click.option(
    "--demo",
    "demo_days",
    type=int,
    metavar="[DAYS]",
    is_flag=False,
    flag_value=2,
    default=None,
    help="run `lpbot demo` first (DAYS simulated days, default 2), then serve its run",
)
def dashboard(host: str | None, port: int | None, demo_days: int | None) -> int:
    """The local web dashboard: positions, ledger, rebalances (approve a report), hedge."""
    if demo_days is not None:
        a, path = _demo_app(demo_days, None)
        click.echo(f"\nthe demo's configuration: {path}")
        ctx = click.get_current_context()
        ctx.meta["lpbot.app"] = a
        ctx.call_on_close(a.close)
    else:
        a = app()
    cfg = settings(a, host, port)
    srv, url = server(a, cfg)
    announce(url, cfg)
    click.echo("  Ctrl-C stops it")
    srv.run()
    return 0
