"""``lpbot position quote|show|plan|open|adopt|withdraw``: quote, inspect, decide on, open,
adopt and withdraw a position.

Thin: the chain comes from the application context, the numbers from
``lpbot.position_commands`` (quote, show, plan), and each command prints text or ``--json``.
``open`` plans and dry-runs opening a configured position's ``[positions.open]`` capital
(``lpbot rebalance approve`` and ``execute`` take it on, as for a rebalance); ``adopt`` makes the
store manage another NFT under a configured position's name; ``withdraw`` plans and dry-runs
collecting all of a position's liquidity and fees to the Safe (approved and executed as a
rebalance is).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

import click

from lpbot.cli.common import app, config_option, emit_json, json_option

if TYPE_CHECKING:
    from lpbot.app import App
    from lpbot.position_commands import Chain
    from lpbot.strategy.base import RangeStrategy

STRATEGIES = ("fixed", "vol_band", "skewed", "full")

__all__ = ["position"]


def _app(args: argparse.Namespace) -> App:
    """The command's application context, with its ``--rpc`` (where it has one)."""
    from lpbot.app import Overrides

    return app(Overrides(rpc_url=getattr(args, "rpc", None)))


def _chain(args: argparse.Namespace) -> Chain:
    from lpbot.position_commands import Chain

    a = _app(args)
    return Chain.of(a, a.chain_name(args.position) if args.position else None)


def _print(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(payload, indent=2) if args.json else text)


def _strategy(args: argparse.Namespace) -> RangeStrategy:
    from lpbot.position_commands import build_strategy

    if args.strategy is None and not _app(args).config.positions:
        args.strategy = "vol_band"
    if args.strategy is None:  # the configured position's strategy
        pos = _app(args).position(args.position)
        args.strategy = {"full_range": "full"}.get(pos.strategy.kind, pos.strategy.kind)
        if args.width_pct is None and args.width_ticks is None and args.k is None:
            return pos.strategy.build()
    return build_strategy(
        args.strategy, width_pct=args.width_pct, width_ticks=args.width_ticks, k=args.k
    )


def _configured(args: argparse.Namespace, *, token_id: int | None = None) -> Any:
    """The configured position the command is about (``--position``, else the one managing
    ``token_id``, else the one in ``--pool``), set as ``args.position``; its rebalance policy
    (the strategy given on the command line in it), or None: the defaults apply."""
    import dataclasses

    a = _app(args)
    if not a.config.positions:
        return None
    if args.position is None:
        pool = getattr(args, "pool", None)
        args.position = a.position_for(token_id=token_id, pool=pool)
        if args.position is None and pool is None and token_id is None:
            args.position = a.position().name  # no pool named: the (first) position's
    if args.position is None:
        return None
    strategy = _strategy(args)
    return dataclasses.replace(a.policy(args.position), strategy=strategy)


def _cmd_quote(args: argparse.Namespace) -> int:
    """The quote of a configured position's pool is made with that position's policy (its
    horizon, costs, rule and strategy): the verdict and width are those its open takes."""
    from lpbot.position_commands import quote_json, quote_position, render_quote

    policy = _configured(args)
    strategy = policy.strategy if policy is not None else _strategy(args)
    pool = args.pool or _app(args).position(args.position).pool
    q = quote_position(
        _chain(args),
        pool,
        args.capital,
        args.strategy,
        strategy,
        policy=policy,
        health_rule=_app(args).config.health.rule(),
    )
    _print(args, quote_json(q), render_quote(q))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from lpbot.position_commands import render_report, report_json, show_position

    if not args.position:  # the NFT's position: its chain
        args.position = _app(args).position_for(token_id=args.token_id)
    r = show_position(_chain(args), args.token_id, from_block=args.from_block)
    _print(args, report_json(r), render_report(r))
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from lpbot.position_commands import decision_json, plan_position, render_decision

    policy = _configured(args, token_id=args.token_id)
    strategy = policy.strategy if policy is not None else _strategy(args)
    p = plan_position(
        _chain(args),
        args.token_id,
        args.strategy,
        strategy,
        from_block=args.from_block,
        policy=policy,
    )
    _print(args, decision_json(p), render_decision(p))
    return 0


def _cmd_adopt(args: argparse.Namespace) -> int:
    """Manage NFT ``token_id`` under a configured position's name from now on: checked to be
    the Safe's and in the configured pool; the store's current NFT for that name is closed."""
    from eth_utils.address import to_checksum_address

    from lpbot.errors import Refused
    from lpbot.execution import service
    from lpbot.jobs.runtime import _pool_address, current_token, record_successor
    from lpbot.store import repo

    a = _app(args)
    pos = a.position(args.position)
    ctx = a.execution_context(pos.name, actor="lpbot position adopt")
    try:
        owner = ctx.contract("NonfungiblePositionManager").functions.ownerOf(args.token_id).call()
    except Exception:
        raise Refused(f"NFT #{args.token_id} does not exist on chain {pos.chain}") from None
    if to_checksum_address(owner) != to_checksum_address(ctx.safe):
        raise Refused(f"NFT #{args.token_id} is owned by {owner}, not the Safe {ctx.safe}")
    pool, *_ = service.pool_of_position(ctx, args.token_id)
    configured = _pool_address(a.manifest(pos.chain), pos.pool)
    if pool.lower() != configured.lower():
        raise Refused(
            f"NFT #{args.token_id} is in pool {pool}, but positions.{pos.name}.pool is "
            f"{pos.pool} ({configured}); change pool in the configuration first"
        )
    npm = ctx.contract("NonfungiblePositionManager").functions.positions(args.token_id).call()
    tick_lower, tick_upper = int(npm[5]), int(npm[6])
    old = current_token(a.sessions, pos.name)
    if old == args.token_id:
        click.echo(f"{pos.name} already manages #{args.token_id}")
        return 0
    record_successor(
        a.sessions,
        pos.name,
        chain_id=ctx.chain_id,
        pool=pool,
        owner=ctx.safe,
        token_id=args.token_id,
        ticks=(tick_lower, tick_upper),
        replaces=old,
    )
    with a.sessions() as s, s.begin():
        repo.append_audit(
            s,
            "position_adopted",
            [f"#{args.token_id} replaces #{old}" if old else f"#{args.token_id} adopted"],
            subject=f"position:{pos.name}:{args.token_id}",
            decision="adopt",
        )
    was = f" (was #{old})" if old else ""
    click.echo(f"{pos.name} now manages #{args.token_id}{was}")
    if pos.token_id is not None and pos.token_id != args.token_id:
        click.echo(f"set token_id = {args.token_id} in [[positions]] {pos.name} to match")
    return 0


def _cmd_open(args: argparse.Namespace) -> int:
    """Plan and dry-run the opening of a configured position (``[positions.open]``)."""
    from lpbot.cli.common import progress
    from lpbot.cli.rebalance import _print_planned
    from lpbot.errors import Refused
    from lpbot.execution.service import plan_open
    from lpbot.jobs.runtime import current_token, pending_open
    from lpbot.position_commands import open_range_chooser

    a = _app(args)
    pos = a.position(args.position)
    if pos.open is None:
        raise Refused(f"positions.{pos.name} has no [positions.open]: nothing to open")
    held = current_token(a.sessions, pos.name)
    if held is not None:
        if args.json:
            emit_json({"position": pos.name, "token_id": held, "open": None})
            return 0
        click.echo(f"{pos.name} already manages #{held}: nothing to open")
        return 0
    ctx = a.execution_context(pos.name, actor="lpbot position open")
    po = pending_open(pos, ctx, a.manifest(pos.chain), a.policy(pos.name), a.notifier, a.sessions)
    choose = open_range_chooser(
        _chain(args),
        pos.pool,
        a.policy(pos.name),
        po.capital,
        accept_expected_loss=args.accept_expected_loss or pos.open.accept_expected_loss,
        label=pos.name,
        health_rule=a.config.health.rule(),
        accept_unhealthy=args.accept_unhealthy_pool or pos.name in a.config.health.accept_unhealthy,
        accept_hints=(
            f"set health.accept_unhealthy = [{pos.name!r}]",
            "give --accept-unhealthy-pool",
        ),
    )
    with progress("planning and dry-running the open"):
        record, report, paths = plan_open(
            ctx,
            po.name,
            po.pool,
            po.capital,
            choose,
            f"open {po.name} with {po.capital_text} ([positions.open])",
        )
    if args.json:
        ok = report is not None and all(c["ok"] for c in report["checks"])
        emit_json(
            {
                "position": pos.name,
                "token_id": None,
                "open": {
                    "id": record.id,
                    "state": record.state.value,
                    "report_id": None if report is None else report["report_id"],
                    "files": {kind: str(path) for kind, path in paths.items()},
                    "checks_passed": ok,
                },
            }
        )
        return 0 if ok or report is None else 1
    click.echo(f"open {record.id}: {record.state.value}")
    if report is None or record.state.value != "SIMULATED":
        if record.state.value == "CONFIRMED":
            click.echo("already opened: `lpbot rebalance execute` recorded it, or `lpbot run` will")
        return 0
    click.echo(f"report {report['report_id']}")
    return _print_planned(report, paths)


def _cmd_withdraw(args: argparse.Namespace) -> int:
    """Plan and dry-run withdrawing a position's liquidity and fees to the Safe."""
    from lpbot.cli.common import progress
    from lpbot.cli.rebalance import _context, _print_planned
    from lpbot.errors import Refused
    from lpbot.execution import service
    from lpbot.jobs.runtime import current_token, was_withdrawn, withdrawn_token

    a = _app(args)
    name = None
    token_id = args.token_id
    if token_id is None:  # the configured position's NFT now (after rebalances, the newest)
        pos = a.position(args.position)
        name = pos.name
        gone = withdrawn_token(a.sessions, pos.name)
        if gone is not None:
            raise Refused(f"position {pos.name} was withdrawn (#{gone}): nothing to withdraw")
        token_id = current_token(a.sessions, pos.name) or pos.token_id
        if token_id is None:
            raise Refused(f"position {pos.name} has no NFT yet (its open is not confirmed)")
    elif args.position is None:
        name = a.position_for(token_id=token_id)  # the NFT's position: its chain and Safe
    chain_id = a.manifest(a.chain_name(args.position or name)).chain_id
    if was_withdrawn(a.sessions, chain_id, token_id):
        raise Refused(f"position #{token_id} was withdrawn: nothing to withdraw")
    ctx, _manifest = _context(
        argparse.Namespace(
            position=args.position or name,
            rpc=args.rpc,
            reports=None,
            slippage_bps=None,
            force=False,
        )
    )
    ctx.via = args.via
    reason = args.reason or "manual: withdraw to the Safe (lpbot position withdraw)"
    if args.json:
        import sys

        ctx.progress = lambda line: print(line, file=sys.stderr, flush=True)
    with progress("planning and dry-running the withdraw"):
        record, report, paths = service.plan_withdraw(ctx, token_id, reason)
    ok = all(c["ok"] for c in report["checks"])
    if args.json:
        emit_json(
            {
                "position": name,
                "token_id": token_id,
                "withdraw": {
                    "id": record.id,
                    "state": record.state.value,
                    "report_id": report["report_id"],
                    "files": {kind: str(path) for kind, path in paths.items()},
                    "checks_passed": ok,
                    "receives": {
                        t["symbol"]: report["dry_run"]["balance_change"][t["address"]]
                        for t in report["tokens"]
                    },
                    "value_usd": report["dry_run"]["value_usd"],
                },
            }
        )
        return 0 if ok else 1
    click.echo(f"withdraw {record.id}: {record.state.value}; report {report['report_id']}")
    change = report["dry_run"]["balance_change"]
    received = " + ".join(
        f"{int(change[t['address']]) / 10 ** t['decimals']:,.6f} {t['symbol']}"
        for t in report["tokens"]
    )
    click.echo(
        f"the Safe receives {received} (${float(report['dry_run']['value_usd']):,.2f}); "
        f"#{token_id} will hold no liquidity"
    )
    if not paths:
        click.echo("(a withdraw of this position was already planned: its report)")
    return _print_planned(report, paths)


# ------------------------------------------------------------------------------- commands


def _common(f: Any) -> Any:
    f = json_option(f)
    f = click.option("--rpc", help="RPC URL (overrides the chain's rpc_url / manifest)")(f)
    f = click.option(
        "--position", help="the configured position (chain, pool, strategy); default the first"
    )(f)
    return config_option(f)


def _strategy_options(f: Any) -> Any:
    f = click.option(
        "--k",
        type=float,
        help="vol_band, skewed: half-width in sigmas (default: by expected value)",
    )(f)
    f = click.option("--width-ticks", type=int, help="fixed: current tick +- N")(f)
    f = click.option("--width-pct", type=float, help="fixed: price x (1 -+ P/100)")(f)
    return click.option(
        "--strategy",
        type=click.Choice(STRATEGIES),
        help="overrides the configured position's strategy",
    )(f)


@click.group()
@config_option
def position() -> None:
    """Quote a new position; show, plan, adopt or withdraw an NFT position."""


@position.command()
@_common
@_strategy_options
@click.option("--pool", help='"USDC/WETH-500" or an address (default: the position\'s pool)')
@click.option(
    "--capital", multiple=True, required=True, help='"AMOUNT SYMBOL", e.g. "5000 USDC"; per token'
)
def quote(**kw: Any) -> int:
    """What opening a position with this capital would deposit, swap and leave."""
    kw["capital"] = list(kw["capital"])
    kw["json"] = kw.pop("as_json")
    return _cmd_quote(argparse.Namespace(**kw))


@position.command()
@_common
@click.argument("token_id", type=int)
@click.option("--from-block", type=int, default=0, help="first block to search logs")
def show(**kw: Any) -> int:
    """Value, fees owed, IL, greeks, VaR and range of an NFT position."""
    kw["json"] = kw.pop("as_json")
    return _cmd_show(argparse.Namespace(**kw))


@position.command()
@_common
@_strategy_options
@click.argument("token_id", type=int)
@click.option("--from-block", type=int, default=0, help="first block to search logs")
def plan(**kw: Any) -> int:
    """The policy's decision on an NFT: hold, rebalance or compound."""
    kw["json"] = kw.pop("as_json")
    return _cmd_plan(argparse.Namespace(**kw))


@position.command("open")
@config_option
@json_option
@click.option("--position", help="the configured position to open (default the first)")
@click.option(
    "--accept-expected-loss",
    is_flag=True,
    help="open even where the model expects fees below LVR (`position quote` says)",
)
@click.option(
    "--accept-unhealthy-pool",
    is_flag=True,
    help="open even where the pool is below the [health] rule (`lpbot pools health` says)",
)
def open_(
    position: str | None, as_json: bool, accept_expected_loss: bool, accept_unhealthy_pool: bool
) -> int:
    """Plan and dry-run opening a configured position's [positions.open] capital; refused
    where the model expects a loss (its quote's verdict) unless --accept-expected-loss, and
    where the pool is below the [health] rule unless --accept-unhealthy-pool."""
    return _cmd_open(
        argparse.Namespace(
            position=position,
            json=as_json,
            accept_expected_loss=accept_expected_loss,
            accept_unhealthy_pool=accept_unhealthy_pool,
            rpc=None,
        )
    )


@position.command()
@config_option
@click.argument("token_id", type=int)
@click.option("--position", help="the configured position to move to it (default the first)")
def adopt(token_id: int, position: str | None) -> int:
    """Manage NFT TOKEN_ID under a configured position from now on (after checking it)."""
    return _cmd_adopt(argparse.Namespace(token_id=token_id, position=position))


@position.command()
@config_option
@json_option
@click.argument("token_id", type=int, required=False)
@click.option("--position", help="the configured position to withdraw (default the first)")
@click.option("--rpc", help="RPC URL (overrides the chain's rpc_url / manifest)")
@click.option(
    "--via",
    type=click.Choice(["multisig", "module"]),
    default="multisig",
    show_default=True,
    help="signed by the Safe's owners, or by the module's operator key within its limits",
)
@click.option("--reason", help="why, written in the report")
def withdraw(
    token_id: int | None,
    position: str | None,
    rpc: str | None,
    via: str,
    reason: str | None,
    as_json: bool,
) -> int:
    """Plan and dry-run withdrawing all of a position's liquidity and fees to the Safe (no
    swap, no mint, the NFT kept); approve and execute it with `lpbot rebalance`."""
    return _cmd_withdraw(
        argparse.Namespace(
            token_id=token_id, position=position, rpc=rpc, via=via, reason=reason, json=as_json
        )
    )
