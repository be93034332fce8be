"""``lpbot devnet up|down|status|reset|market|fund``: the local chain."""

from __future__ import annotations

import argparse
from pathlib import Path

import click

# the shapes of ``lpbot.devnet.shapes.SHAPES`` (named here so that --help imports no web3)
SHAPE_NAMES = ("arbitrum", "ethereum")


def _devnet_home(args: argparse.Namespace) -> Path:
    return Path(args.home) if args.home else Path.cwd() / ".lpbot" / "devnet"


def _cmd_devnet_up(args: argparse.Namespace) -> int:
    from lpbot.chain.rpc import connect
    from lpbot.devnet import service
    from lpbot.devnet.summary import pool_lines

    record, manifest, seconds = service.up(
        _devnet_home(args),
        fork_url=args.fork_url,
        fork_block=args.fork_block,
        fresh=args.fresh,
        shape=args.shape,
    )
    print(f"devnet up in {seconds:.1f} s: {record.rpc_url} (pid {record.pid})")
    shaped = f", shaped like {manifest.shape} (its real addresses)" if manifest.shape else ""
    print(f"chain id {manifest.chain_id}, block {manifest.block}{shaped}")
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


def _cmd_devnet_fund(args: argparse.Namespace) -> int:
    from lpbot.chain.rpc import connect
    from lpbot.devnet import service

    record, _manifest = service.require_running(_devnet_home(args))
    w3 = connect(record.rpc_url)
    address = w3.to_checksum_address(args.address)
    wei = int(args.eth * 10**18)
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
    print(f"{address} now holds {args.eth} ETH on the devnet")
    return 0


def _ns(ctx: click.Context, **kw: object) -> argparse.Namespace:
    return argparse.Namespace(home=ctx.find_root().meta.get("lpbot.devnet_home"), **kw)


def _set_home(ctx: click.Context, _p: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_root().meta["lpbot.devnet_home"] = value


@click.group()
@click.option(
    "--home",
    metavar="DIR",
    expose_value=False,
    callback=_set_home,
    help="the devnet's data directory (default ./.lpbot/devnet)",
)
def devnet() -> None:
    """The local chain (Anvil with Uniswap V3 and Safe)."""


@devnet.command()
@click.option("--fork-url", help="fork a real chain instead (its RPC URL)")
@click.option("--fork-block", type=int, help="block to fork at")
@click.option("--fresh", is_flag=True, help="deploy again instead of loading")
@click.option(
    "--shape",
    type=click.Choice(SHAPE_NAMES),
    help="shape it like a real chain: its chain id, the official contracts at their real "
    "addresses (default: Anvil's chain id, fresh addresses)",
)
@click.pass_context
def up(
    ctx: click.Context,
    fork_url: str | None,
    fork_block: int | None,
    fresh: bool,
    shape: str | None,
) -> int:
    """Start Anvil, deploy and seed (or load the seeded state)."""
    from lpbot.cli.common import progress

    with progress("starting the devnet"):
        return _cmd_devnet_up(
            _ns(ctx, fork_url=fork_url, fork_block=fork_block, fresh=fresh, shape=shape)
        )


@devnet.command()
@click.pass_context
def down(ctx: click.Context) -> int:
    """Stop the devnet started here (its pid, and only it)."""
    return _cmd_devnet_down(_ns(ctx))


@devnet.command()
@click.pass_context
def status(ctx: click.Context) -> int:
    """Is it running; block, pools, prices."""
    return _cmd_devnet_status(_ns(ctx))


@devnet.command()
@click.pass_context
def reset(ctx: click.Context) -> int:
    """Restart from the seeded state."""
    return _cmd_devnet_reset(_ns(ctx))


@devnet.command()
@click.option("--pool", required=True, help='address, "USDC/WETH-500" or the pool name')
@click.option("--steps", type=int, default=24, show_default=True)
@click.option("--vol", type=float, default=0.8, show_default=True, help="annualised volatility")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--step-seconds", type=int, default=3600, show_default=True)
@click.pass_context
def market(
    ctx: click.Context, pool: str, steps: int, vol: float, seed: int, step_seconds: int
) -> int:
    """Trade a pool along a seeded random price path."""
    from lpbot.cli.common import progress

    with progress(f"trading {pool} for {steps} steps"):
        return _cmd_devnet_market(
            _ns(ctx, pool=pool, steps=steps, vol=vol, seed=seed, step_seconds=step_seconds)
        )


@devnet.command()
@click.argument("address")
@click.option("--eth", type=float, default=100.0, show_default=True, help="ETH to hold")
@click.pass_context
def fund(ctx: click.Context, address: str, eth: float) -> int:
    """Give an account ETH for gas (e.g. a key made with `lpbot keys new`)."""
    return _cmd_devnet_fund(_ns(ctx, address=address, eth=eth))
