"""``lpbot init`` and ``lpbot config check``: write an example configuration, validate one.

``register(subparsers)`` adds both commands to lpbot's argument parser.
"""

from __future__ import annotations

import argparse

from lpbot.config import load_config, resolve_config_path, write_example
from lpbot.store.session import redact_url

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init`` and ``config check`` to ``subparsers``."""
    init = subparsers.add_parser("init", help="write an example lpbot.toml for the devnet")
    init.add_argument("--config", help="where to write it (default $LPBOT_CONFIG or ./lpbot.toml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=_cmd_init)

    config = subparsers.add_parser("config", help="the configuration file")
    config.add_argument("--config", help="config file (default $LPBOT_CONFIG or ./lpbot.toml)")
    sub = config.add_subparsers(dest="config_command", required=True)
    sub.add_parser("check", help="validate the configuration and summarise it").set_defaults(
        func=_cmd_check
    )


def _cmd_init(args: argparse.Namespace) -> int:
    path = write_example(resolve_config_path(args.config), force=args.force)
    print(f"wrote {path}: the devnet, one position, paper hedging")
    print("next: `lpbot devnet up`, then `lpbot config check` and `lpbot db upgrade`")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    config = load_config(path)
    print(f"{path}: valid")
    print(f"  chains: {', '.join(config.chains)}")
    for p in config.positions:
        what = f"token {p.token_id}" if p.token_id is not None else "open new"
        print(f"  position {p.name}: {p.chain} {p.pool}, {what}, strategy {p.strategy.kind}")
    if config.hedge is not None:
        print(f"  hedge: {config.hedge.exchange} {config.hedge.symbol}")
    auto = config.auto_execute
    if auto.enabled:
        print(f"  auto-execute: up to ${auto.max_value_usd} per rebalance via {auto.via}")
    else:
        print("  auto-execute: off (every rebalance waits for a person)")
    if config.database_url_env is not None:
        print(f"  database: from ${config.database_url_env}")
    else:
        print(f"  database: {redact_url(config.resolve_database_url())}")
    print(f"  data: {config.data_dir}, reports: {config.reports_path}")
    return 0
