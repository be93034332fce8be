"""The command line: one module per command family, each thin (parse, call a service, render text
or ``--json``). A family's module is imported only when its command runs, so ``lpbot --help``
loads nothing but Click.

Errors reach a person as one line saying what failed and what to do (``lpbot: ...``), with exit
code 2 for lpbot's own errors and 1 for anything else; ``--debug`` shows the traceback. Ctrl-C
says what was saved and which command resumes; a closed pipe (``| head``) ends quietly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from lpbot.cli.common import CONFIG_HELP, set_config

__all__ = ["COMMANDS", "cli", "main"]

# name -> (module, attribute, one line for `lpbot --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("lpbot.cli.demo", "demo", "run lpbot's main job on a local chain and show the result"),
    "devnet": ("lpbot.cli.devnet", "devnet", "the local chain (Anvil with Uniswap V3 and Safe)"),
    "init": ("lpbot.cli.config", "init", "write a commented lpbot.toml"),
    "config": ("lpbot.cli.config", "config", "check the configuration (offline or --online)"),
    "keys": ("lpbot.cli.keys", "keys", "encrypted keystores: new, import, list, address"),
    "db": ("lpbot.cli.db", "db", "the database: migrate it, show its revision"),
    "position": ("lpbot.cli.position", "position", "quote, show, plan, adopt, withdraw a position"),
    "rebalance": ("lpbot.cli.rebalance", "rebalance", "plan, approve, sign, execute rebalances"),
    "pools": ("lpbot.cli.pools", "pools", "the configured pools ranked by health (depth, spread)"),
    "hedge": ("lpbot.cli.hedge", "hedge", "the perp hedge of a position: status, sync, flatten"),
    "run": ("lpbot.cli.daemon", "run", "the daemon: the configured jobs on their schedule"),
    "status": ("lpbot.cli.daemon", "status", "one screen: positions, approvals, jobs, decisions"),
    "report": ("lpbot.cli.daemon", "report", "an HTML performance report from the snapshots"),
    "export": ("lpbot.cli.daemon", "export", "every action and fill as CSV, for your accounts"),
    "dashboard": (
        "lpbot.cli.dashboard",
        "dashboard",
        "web page: positions, ledger, approvals",
    ),
    "data": ("lpbot.cli.backtest", "data", "pool history for backtests: fetch or import"),
    "backtest": ("lpbot.cli.backtest", "backtest", "replay history through the strategy code"),
    "mpc": ("lpbot.cli.mpc", "mpc", "threshold ECDSA key (no machine holds all of it)"),
    "cosigner": ("lpbot.cli.mpc", "cosigner", "run one MPC party behind its own policy"),
}


class LazyGroup(click.Group):
    """Top-level commands imported on use; ``--help`` lists them from ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        import importlib

        module, attr, _help = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_m, _a, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    expose_value=False,
    callback=set_config,
    help=CONFIG_HELP,
)
@click.option("--debug", is_flag=True, help="show tracebacks and debug logs")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """lpbot: Uniswap V3 LP management (exact pool math, dry-run reports, Safe execution,
    delta hedging). Every command reads one configuration: --config, else $LPBOT_CONFIG, else
    ./lpbot.toml, else the running devnet's."""
    import logging

    ctx.meta["lpbot.debug"] = debug
    logging.basicConfig(
        level="DEBUG" if debug else os.environ.get("LPBOT_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _err(message: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(f"lpbot: {message}", file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush is
    silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lpbot ARGV``; the exit code (0 ok, 1 failed, 2 lpbot refused or bad usage,
    130 interrupted)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    ctx_meta: dict[str, Any] = {}
    try:
        with cli.make_context("lpbot", args) as ctx:
            ctx_meta = ctx.meta
            result = cli.invoke(ctx)
        code = result if isinstance(result, int) else 0
        sys.stdout.flush()
        return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        hint = ctx_meta.get("lpbot.resume") or _resume_hint()
        _err(f"interrupted. {hint}".rstrip())
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Exception as exc:
        if debug:
            raise
        from lpbot.errors import LpbotError

        if isinstance(exc, LpbotError):
            _err(str(exc))
            return 2
        _err(_describe(exc))
        return 1


def _resume_hint() -> str:
    from lpbot.cli.common import RESUME

    return RESUME.get() or ""


def _describe(exc: BaseException) -> str:
    """One line for an error lpbot did not translate itself."""
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    text = str(exc).splitlines()[0][:200] if str(exc) else name
    if module.startswith(("requests", "urllib3", "aiohttp")) or name in (
        "ConnectionError",
        "ConnectionRefusedError",
        "Timeout",
    ):
        return (
            f"the RPC node does not answer ({text}); start the devnet (`lpbot devnet up`) or "
            "check the chain's RPC URL in the configuration"
        )
    if module.startswith("sqlalchemy"):
        return f"database error: {text}; check database_url and the file's permissions"
    if isinstance(exc, KeyError):
        return f"not found: {exc.args[0] if exc.args else text}"
    if isinstance(exc, OSError):
        return f"{text}"
    return f"{name}: {text} (run with --debug for the traceback)"
