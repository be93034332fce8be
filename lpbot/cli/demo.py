"""``lpbot demo``: lpbot's main job on a local chain, or the exact core alone."""

from __future__ import annotations

import argparse

import click


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.offline:
        from lpbot import core_demo

        print("lpbot demo (exact core only): one USDC/WETH 0.05% position, seeded price path\n")
        print(core_demo.render(core_demo.run(hours=args.hours, seed=7)))
        return 0
    from lpbot import demo

    print("lpbot demo: a Safe-owned USDC/WETH position managed on a local chain\n")
    demo.run(
        days=args.days, seed=args.seed, via=args.via, signer=args.signer, scenario=args.scenario
    )
    return 0


@click.command()
@click.option("--days", type=int, default=3, show_default=True, help="simulated days of market")
@click.option("--hours", type=int, default=24, show_default=True, help="--offline: hours")
@click.option("--seed", type=int, default=11, show_default=True)
@click.option(
    "--via",
    type=click.Choice(["module", "multisig"]),
    default="module",
    show_default=True,
    help="rebalance through the module's operator key (on-chain limits), or with 2 of 3 owner "
    "keys held by the bot (a hot quorum, accepted for the demo only)",
)
@click.option(
    "--signer",
    type=click.Choice(["keys", "mpc"]),
    default="keys",
    show_default=True,
    help="--via multisig: the Safe's second signature, an owner key, or an MPC owner (this "
    "host's party and a co-signer process with its own policy; needs `make mpc`)",
)
@click.option("--offline", is_flag=True, help="the exact core alone, without a local chain")
@click.option(
    "--scenario",
    type=click.Choice(["hourly", "crash"]),
    default="hourly",
    show_default=True,
    help="crash: the market regime through a crash and a liquidation cascade (widen, withdraw "
    "and re-hedge, back to normal)",
)
def demo(
    days: int, hours: int, seed: int, via: str, signer: str, offline: bool, scenario: str
) -> int:
    """Run lpbot's main job on a local chain and show the result."""
    return _cmd_demo(
        argparse.Namespace(
            days=days,
            hours=hours,
            seed=seed,
            via=via,
            signer=signer,
            offline=offline,
            scenario=scenario,
        )
    )
