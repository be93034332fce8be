"""The command line. Thin: parse, call one function, print."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lpbot.errors import NeedsAttention, Refused, RetryLater


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.offline:
        from lpbot import core_demo

        print("lpbot demo (exact core only): one USDC/WETH 0.05% position, seeded price path\n")
        print(core_demo.render(core_demo.run(hours=args.hours, seed=7)))
        return 0
    from lpbot import demo

    print("lpbot demo: a Safe-owned USDC/WETH position managed on a local chain\n")
    demo.run(days=args.days, seed=args.seed, via=args.via)
    return 0


def _devnet_home(args: argparse.Namespace) -> Path:
    return Path(args.home) if args.home else Path.cwd() / ".lpbot" / "devnet"


def _cmd_devnet_up(args: argparse.Namespace) -> int:
    from lpbot.chain.rpc import connect
    from lpbot.devnet import service
    from lpbot.devnet.summary import pool_lines

    record, manifest, seconds = service.up(
        _devnet_home(args), fork_url=args.fork_url, fork_block=args.fork_block, fresh=args.fresh
    )
    print(f"devnet up in {seconds:.1f} s: {record.rpc_url} (pid {record.pid})")
    print(f"chain id {manifest.chain_id}, block {manifest.block}")
    print(f"manifest: {record.manifest}")
    if manifest.fork_url is None:
        print(f"Safe (2 of 3): {manifest.safe}")
    print("pools:")
    for line in pool_lines(connect(record.rpc_url), manifest):
        print(line)
    return 0


def _cmd_devnet_down(args: argparse.Namespace) -> int:
    from lpbot.devnet import service

    print("devnet stopped" if service.down(_devnet_home(args)) else "no devnet was running")
    return 0


def _cmd_devnet_status(args: argparse.Namespace) -> int:
    from lpbot.chain.rpc import connect
    from lpbot.devnet import service
    from lpbot.devnet.summary import pool_lines

    found = service.status(_devnet_home(args))
    if found is None:
        print("no devnet is running (start one with `lpbot devnet up`)")
        return 1
    record, manifest, block = found
    print(f"devnet {record.rpc_url} (pid {record.pid}), chain {manifest.chain_id}, block {block}")
    print(f"manifest: {record.manifest}")
    for line in pool_lines(connect(record.rpc_url), manifest):
        print(line)
    return 0


def _cmd_devnet_reset(args: argparse.Namespace) -> int:
    from lpbot.devnet import service

    record, _manifest, seconds = service.reset(_devnet_home(args))
    print(f"devnet reset in {seconds:.1f} s: {record.rpc_url} (pid {record.pid})")
    return 0


def _cmd_devnet_market(args: argparse.Namespace) -> int:
    from lpbot.chain.rpc import connect
    from lpbot.devnet import service
    from lpbot.devnet.market import run_market
    from lpbot.devnet.summary import quote

    record, manifest = service.require_running(_devnet_home(args))
    w3 = connect(record.rpc_url)
    pool = manifest.pool(args.pool)
    result = run_market(
        w3, manifest, pool, steps=args.steps, vol=args.vol, seed=args.seed,
        step_seconds=args.step_seconds,
    )  # fmt: skip
    from lpbot.analytics.prices import sqrt_price_x96_from_price

    d0, d1 = manifest.token(pool.token0).decimals, manifest.token(pool.token1).decimals
    before = quote(pool, sqrt_price_x96_from_price(result.start_price, d0, d1), manifest)
    after = quote(pool, sqrt_price_x96_from_price(result.end_price, d0, d1), manifest)
    print(
        f"{pool.name}: {result.steps} steps of {args.step_seconds} s, {result.trades} trades, "
        f"volume ${result.volume_usd:,.0f}; blocks {result.start_block}..{result.end_block}"
    )
    print(f"  price {before}  ->  {after}")
    return 0


# each module adds its own top-level commands with register(subparsers)
COMMAND_MODULES = (
    "lpbot.config_commands",
    "lpbot.store.commands",
    "lpbot.execution.commands",
    "lpbot.backtest.commands",
    "lpbot.hedge.commands",
    "lpbot.signing.mpc.commands",
    "lpbot.jobs.commands",
    "lpbot.position_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpbot", description="Uniswap V3 LP management")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run lpbot's main job on a local chain and show the result")
    demo.add_argument("--days", type=int, default=3, help="simulated days of market")
    demo.add_argument("--hours", type=int, default=24, help="with --offline: hours to simulate")
    demo.add_argument("--seed", type=int, default=11)
    demo.add_argument(
        "--via",
        choices=("multisig", "module"),
        default="multisig",
        help="rebalance with 2 of 3 owner signatures, or through the module's operator key",
    )
    demo.add_argument(
        "--offline", action="store_true", help="the exact core alone, without a local chain"
    )
    demo.set_defaults(func=_cmd_demo)

    devnet = sub.add_parser("devnet", help="the local chain (Anvil with Uniswap V3 and Safe)")
    devnet.add_argument("--home", help="data directory (default ./.lpbot/devnet)")
    dsub = devnet.add_subparsers(dest="devnet_command", required=True)
    d_up = dsub.add_parser("up", help="start Anvil, deploy and seed (or load the seeded state)")
    d_up.add_argument("--fork-url", help="fork a real chain instead (its RPC URL)")
    d_up.add_argument("--fork-block", type=int, help="block to fork at")
    d_up.add_argument("--fresh", action="store_true", help="deploy again instead of loading")
    d_up.set_defaults(func=_cmd_devnet_up)
    dsub.add_parser("down", help="stop the devnet started here").set_defaults(func=_cmd_devnet_down)
    dsub.add_parser("status", help="is it running; pools").set_defaults(func=_cmd_devnet_status)
    dsub.add_parser("reset", help="restart from the seeded state").set_defaults(
        func=_cmd_devnet_reset
    )
    d_mk = dsub.add_parser("market", help="trade a pool along a seeded random price path")
    d_mk.add_argument("--pool", required=True, help='address, "USDC/WETH-500" or the pool name')
    d_mk.add_argument("--steps", type=int, default=24)
    d_mk.add_argument("--vol", type=float, default=0.8, help="annualised volatility")
    d_mk.add_argument("--seed", type=int, default=1)
    d_mk.add_argument("--step-seconds", type=int, default=3600)
    d_mk.set_defaults(func=_cmd_devnet_market)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LPBOT_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
    except (NeedsAttention, Refused, RetryLater) as exc:
        print(f"lpbot: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"lpbot: {exc.args[0]}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
