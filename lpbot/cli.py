"""The command line. Thin: parse, call one function, print."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_demo(args: argparse.Namespace) -> int:
    from lpbot import core_demo

    print("lpbot demo: one USDC/WETH 0.05% position, exact Uniswap V3 math, seeded price path\n")
    print(core_demo.render(core_demo.run(hours=args.hours, seed=args.seed)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpbot", description="Uniswap V3 LP management")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run lpbot's main job on a local chain and show the result")
    demo.add_argument("--hours", type=int, default=24)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
