"""``lpbot rebalance plan|approve|sign|execute|resume|replan|show|list`` for a Safe-owned
position.

Everything comes from the one application context (``lpbot.app``): the chain, the Safe, the
sender, the database (migrated on first use), the reports directory and the position's policy
(its slippage). ``sign`` refuses to run without a password, to sign with a wrong one, or to
overwrite a signature file.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click

from lpbot.cli.common import app, config_option, emit_json, json_option, resume_hint, table
from lpbot.errors import ConfigError, NeedsAttention, Refused

RESUME = (
    "The rebalance's state is saved in the database; `lpbot rebalance resume` checks the chain "
    "and finishes or abandons it."
)


def _app(args: argparse.Namespace) -> Any:
    from lpbot.app import Overrides
    from lpbot.execution.plan import BPS, MAX_SLIPPAGE_BPS

    slippage = args.slippage_bps
    if slippage is not None and not 0 <= slippage < BPS:
        raise click.UsageError(f"--slippage-bps must be in [0, {BPS}), got {slippage:g}")
    if slippage is not None and slippage > MAX_SLIPPAGE_BPS and not getattr(args, "force", False):
        raise click.UsageError(
            f"--slippage-bps {slippage:g} is above {MAX_SLIPPAGE_BPS} bps: minimums that loose "
            "let a sandwich take that much of the swap; add --force to plan with it anyway"
        )

    return app(
        Overrides(
            rpc_url=args.rpc,
            report_dir=Path(args.reports) if args.reports else None,
            slippage_bps=args.slippage_bps,
        )
    )


def _record_position(a: Any, args: argparse.Namespace) -> str | None:
    """The configured position of the rebalance a command names (``report_id`` or ``id``)."""
    key = getattr(args, "report_id", None) or getattr(args, "id", None)
    return None if key is None else a.rebalance_position(key)


def _context(args: argparse.Namespace) -> Any:
    a = _app(args)
    if not args.position:
        # a rebalance named by its report or id: its own chain's Safe, keys and node
        args.position = _record_position(a, args)
    position = args.position if args.position or a.config.positions else None
    ctx = a.execution_context(position, actor=getpass.getuser())
    if getattr(args, "force", False):
        from lpbot.execution.plan import BPS

        ctx.max_slippage_bps = BPS - 1
    # the waiting is shown as it happens; a refusal is printed once, as the error
    ctx.progress = lambda line: print(line, flush=True)
    ctx.alert = lambda _kind, _text: None
    return ctx, a.manifest(a.chain_name(position))


def decide(ctx: Any, reader: Any, pool: str, token_id: int, policy: Any) -> tuple[Any, Any]:
    """The policy's decision on ``token_id``, every USD figure (token values, gas) from the
    context's price source at the block the pool is read at; (view, marks)."""
    from lpbot.execution import service
    from lpbot.execution.decide import decide_at_marks

    _pool, token0, token1, _fee = service.pool_of_position(ctx, token_id)
    if ctx.pricer is None:
        raise Refused("no price source configured: the decision's USD figures need marks")
    return decide_at_marks(
        ctx.w3,
        reader,
        pool,
        token_id,
        policy,
        pricer=ctx.pricer,
        symbols=(ctx.symbols[token0][0], ctx.symbols[token1][0]),
        decimals=(ctx.symbols[token0][1], ctx.symbols[token1][1]),
    )


def _cmd_plan(args: argparse.Namespace) -> int:
    from lpbot.execution import service
    from lpbot.strategy.base import Range
    from lpbot.strategy.decision import Rebalance
    from lpbot.strategy.rebalance import RebalancePolicy
    from lpbot.strategy.vol_band import VolatilityBand

    a = _app(args)
    if args.position is None and a.config.positions:
        # the configured position managing the NFT (or in its pool): its policy, chain and
        # slippage, not the first position's
        args.position = a.position_for(token_id=args.token_id)
    ctx, _manifest = _context(args)
    if args.position is None and a.config.positions:
        in_pool = a.position_for(pool=service.pool_of_position(ctx, args.token_id)[0])
        if in_pool is not None:
            args.position = in_pool
            ctx, _manifest = _context(args)
    as_json = bool(getattr(args, "json", False))
    say: Any = (lambda _text: None) if as_json else print
    if as_json:  # stdout is the one JSON document; the waiting goes to stderr
        ctx.progress = lambda line: print(line, file=sys.stderr, flush=True)
    decided: dict[str, Any] | None = None
    pool, t0, t1, _fee = service.pool_of_position(ctx, args.token_id)
    from lpbot.chain.reader import PoolReader

    reader = PoolReader(
        ctx.w3,
        multicall=ctx.contracts["Multicall3"],
        tick_lens=ctx.contracts["TickLens"],
        position_manager=ctx.contracts["NonfungiblePositionManager"],
    )
    if args.width_ticks:
        snap = reader.fetch_pool_state(pool, twap_seconds=(0,))
        if ctx.pricer is None:
            raise Refused("no price source configured: the pool's health needs marks")
        gate_marks = ctx.pricer.fetch_marks(
            [ctx.symbols[t0][0], ctx.symbols[t1][0]], snap.block_number
        )
        spacing = snap.tick_spacing
        centre = snap.slot0.tick // spacing * spacing
        half = -(-args.width_ticks // spacing) * spacing
        new_range = Range(centre - half, centre + half, spacing)
        reason = f"manual: +-{half} ticks around the price"
    else:
        if args.k is not None:
            policy = RebalancePolicy(
                strategy=VolatilityBand(k=args.k), slippage_bps=float(ctx.slippage_bps)
            )
        else:
            policy = _app(args).policy(args.position)
        view, marks = decide(ctx, reader, pool, args.token_id, policy)
        decision = view.decision
        sources = "; ".join(f"{t} ${m.usd:,.6g} ({m.source})" for t, m in marks.marks.items())
        say(f"marks at block {marks.block}: {sources}")
        for alert in marks.alerts:
            say(f"  price alert ({alert.kind}): {alert.message}")
        say(f"decision: {type(decision).__name__}: {decision.reason}")
        for r in decision.reasons:
            say(f"  - {r}")
        decided = {
            "kind": type(decision).__name__,
            "reason": decision.reason,
            "reasons": list(decision.reasons),
            "marks": {"block": marks.block, "sources": sources},
        }
        if not isinstance(decision, Rebalance):
            if as_json:
                emit_json({"decision": decided, "rebalance": None})
            return 0
        new_range, reason = decision.new_range, decision.reason
        snap, gate_marks = view.snapshot, marks
    _health_gate(args, ctx, snap, gate_marks, (t0, t1), say)
    from lpbot.cli.common import progress

    resume_hint(
        "Nothing was signed or sent; a plan left half made is closed by `lpbot rebalance "
        "resume`, and `lpbot rebalance plan` makes a fresh one."
    )
    with progress("planning and dry-running the rebalance"):
        record, report, paths = service.plan_rebalance(ctx, args.token_id, new_range, reason)
    if as_json:
        ok = all(c["ok"] for c in report["checks"])
        emit_json(
            {
                "decision": decided,
                "rebalance": {
                    "id": record.id,
                    "state": record.state.value,
                    "report_id": report["report_id"],
                    "files": {kind: str(path) for kind, path in paths.items()},
                    "checks_passed": ok,
                },
            }
        )
        return 0 if ok else 1
    print(f"rebalance {record.id}: {record.state.value}; report {report['report_id']}")
    return _print_planned(report, paths)


def _health_gate(
    args: argparse.Namespace, ctx: Any, snap: Any, marks: Any, tokens: tuple[str, str], say: Any
) -> None:
    """Refuse (``UnhealthyPool``) a rebalance into a pool below the [health] rule at the
    decision's snapshot, unless --accept-unhealthy-pool or health.accept_unhealthy names the
    position; say the pool's health either way."""
    from lpbot.execution.health import ACCEPT_FLAG, health_at, refuse_unhealthy

    a = _app(args)
    health_cfg = a.config.health
    label = args.position or (a.config.positions[0].name if a.config.positions else "")
    health = health_at(
        snap,
        marks,
        symbols=(ctx.symbols[tokens[0]][0], ctx.symbols[tokens[1]][0]),
        decimals=(ctx.symbols[tokens[0]][1], ctx.symbols[tokens[1]][1]),
        rule=health_cfg.rule(),
    )
    say(f"pool health: {health.line()}")
    refuse_unhealthy(
        health,
        what="rebalance",
        label=label or f"#{args.token_id}",
        accepted=bool(getattr(args, "accept_unhealthy_pool", False))
        or (bool(label) and label in health_cfg.accept_unhealthy),
        hints=(
            *([f"set health.accept_unhealthy = [{label!r}]"] if label else []),
            f"give {ACCEPT_FLAG}",
        ),
    )


def _print_planned(report: dict[str, Any], paths: dict[str, Any]) -> int:
    """The report's files, its checks and the next step; 1 when a check failed."""
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    source = report.get("slippage_source")
    print(f"slippage: {report['slippage_bps']} bps" + (f" ({source})" if source else ""))
    if "submission" in report:
        from lpbot.chain.submit import SubmissionRoute

        print(f"sent: {SubmissionRoute.from_json(report['submission']).text()}")
    ok = all(c["ok"] for c in report["checks"])
    print(f"checks: {'all passed' if ok else 'FAILED - do not approve'}")
    print(f"next: lpbot rebalance approve {report['report_id']}")
    return 0 if ok else 1


def _cmd_approve(args: argparse.Namespace) -> int:
    from lpbot.execution import service
    from lpbot.report.dryrun import read_report, render_markdown

    ctx, _ = _context(args)
    report = read_report(ctx.reports_dir, args.report_id)
    if not args.yes:
        print(render_markdown(report))
        if not sys.stdin.isatty():
            raise Refused("approval needs a person: run in a terminal, or pass --yes")
        answer = input(f"Approve rebalance report {args.report_id}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not approved")
            return 1
    record = service.approve(ctx, args.report_id, approver=args.approver or getpass.getuser())
    print(f"rebalance {record.id}: {record.state.value} by {record.approved_by}")
    return 0


def _unlock(path: Path, env_name: str | None, label: str) -> Any:
    """Decrypt keystore ``path``: the password from ``env_name``, else a prompt in a terminal;
    loud when there is none or it is wrong."""
    import os

    from eth_account import Account

    from lpbot.signing.local import LocalKeySigner

    if env_name is not None:
        if not os.environ.get(env_name):
            raise NeedsAttention(f"keystore {label}: set {env_name} to its password")
        return LocalKeySigner.from_keystore(path, env_name)
    if not sys.stdin.isatty():
        raise NeedsAttention(
            f"keystore {label}: no password; pass --password-env VAR (the variable that holds "
            "it) or run in a terminal to be asked"
        )
    try:
        keystore = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"keystore {path} cannot be read: {exc}") from None
    password = click.prompt(f"password of keystore {label}", hide_input=True)
    try:
        key = Account.decrypt(keystore, password)  # type: ignore[no-untyped-call]
    except ValueError:
        raise NeedsAttention(f"keystore {label}: wrong password") from None
    return LocalKeySigner.from_key(key)


def _signers(args: argparse.Namespace) -> list[Any]:
    """The owners' signers: ``--keystore NAME`` (from the configuration, its password_env) or
    ``--keystore PATH`` (with the matching ``--password-env``, else a prompt), and
    ``--dev-owner N`` on the devnet."""
    from lpbot.devnet.keys import dev_signer

    signers: list[Any] = [dev_signer(i) for i in args.dev_owner or []]
    if getattr(args, "mpc", False):
        signers.append(_mpc_owner(args))
    elif getattr(args, "approval", None):
        raise ConfigError("--approval is the MPC owner's: pass it with --mpc")
    envs = list(args.password_env or [])
    for i, given in enumerate(args.keystore or []):
        env_name = envs[i] if i < len(envs) else None
        path = Path(given)
        label = given
        if not path.exists() and "/" not in given and not given.endswith(".json"):
            a = _app(args)
            ref = a.keystore(given)  # a name from [signer.keystores]
            path, env_name, label = ref.path, env_name or ref.password_env, given
        if not path.exists():
            raise ConfigError(f"keystore {given}: {path} does not exist")
        signers.append(_unlock(path, env_name, label))
    return signers


def _mpc_owner(args: argparse.Namespace) -> Any:
    """The MPC Safe owner of [signer.mpc]: this host's party and the co-signer, which signs
    only with the report and the signed approval in ``--approval`` (``lpbot cosigner
    approve``)."""
    from lpbot.signing.mpc.approval import SignedApproval

    approval = None
    if args.approval:
        try:
            approval = SignedApproval.model_validate_json(Path(args.approval).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--approval {args.approval}: {exc}") from None
    # a person at the command line: their approval, never the bot's policy key
    return _app(args).mpc_owner(approval, policy=False)


def _record_successor(args: argparse.Namespace, ctx: Any, record: Any) -> None:
    """After a confirmed rebalance, the configured position lives on in the new NFT: record
    it under the position's name, so the daemon and `status` follow it."""
    from lpbot.jobs.runtime import known_tokens, record_successor

    if record.state.value != "CONFIRMED" or not record.result:
        return
    new = record.result.get("new_token_id")
    if new is None:
        return
    a = _app(args)
    if record.kind == "open" and record.label is not None:
        from lpbot.jobs.runtime import adopt_opened

        token = adopt_opened(a.sessions, ctx, record.label, record)
        print(f"position {record.label} is now NFT #{token}")
        return
    if record.kind != "rebalance":
        return
    old = int(record.token_id)
    names = [args.position] if args.position else [
        p.name for p in a.config.positions if a.chain(p.chain).chain_id == ctx.chain_id
    ]  # fmt: skip
    for name in names:
        pos = a.position(name)
        if old == pos.token_id or old in known_tokens(a.sessions, name):
            npm = ctx.contract("NonfungiblePositionManager").functions.positions(int(new)).call()
            pool = ctx.contract("UniswapV3Factory").functions.getPool(npm[2], npm[3], npm[4]).call()
            record_successor(
                a.sessions,
                name,
                chain_id=ctx.chain_id,
                pool=pool,
                owner=ctx.safe,
                token_id=int(new),
                ticks=(int(npm[5]), int(npm[6])),
                replaces=old,
            )
            print(f"position {name} is now NFT #{new}")
            return


def _cmd_execute(args: argparse.Namespace) -> int:
    from lpbot.execution import service

    ctx, _ = _context(args)
    resume_hint(RESUME)
    from lpbot.cli.common import progress

    signers = _signers(args)
    with progress("signing, sending and waiting for the receipt"):
        record = service.execute(
            ctx,
            args.report_id,
            signers=signers,
            signature_files=[Path(p) for p in args.signature or []],
        )
    print(f"rebalance {record.id}: {record.state.value}")
    if record.result:
        print(json.dumps(record.result, indent=2))
    _record_successor(args, ctx, record)
    return 0 if record.state.value == "CONFIRMED" else 1


def _cmd_sign(args: argparse.Namespace) -> int:
    from lpbot.execution.service import _record_for, _safe_tx_of
    from lpbot.signing.safe import sign

    ctx, _ = _context(args)
    record = _record_for(ctx, args.report_id)
    if record.state.value != "APPROVED":
        raise Refused(f"rebalance {record.id} is {record.state.value}: sign approved reports only")
    tx, report = _safe_tx_of(ctx, record)
    out = Path(args.out)
    signers = _signers(args)
    if not signers:
        raise ConfigError("nothing to sign with: pass --keystore NAME, --mpc (or --dev-owner N)")
    if len(signers) > 1:
        raise ConfigError(
            "one owner per signature file: give one --keystore, --mpc (or --dev-owner)"
        )
    if out.exists():
        raise Refused(f"{out} exists; lpbot never overwrites a signature: choose another --out")
    owners = {o.lower() for o in ctx.safe_contract.functions.getOwners().call()}
    if signers[0].address.lower() not in owners:
        raise Refused(f"{signers[0].address} is not an owner of the Safe {ctx.safe}: not signing")
    sig = sign(tx, signers[0], report)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("x") as f:
        f.write(sig.to_json(tx.safe_tx_hash) + "\n")
    print(f"signature of {sig.owner} for SafeTx 0x{tx.safe_tx_hash.hex()} written to {out}")
    return 0


def _resume_positions(args: argparse.Namespace) -> list[str | None]:
    """The positions whose contexts ``resume`` runs in: ``--position``'s, else the first
    position of each configured chain with an unfinished rebalance (else the default)."""
    a = _app(args)
    if args.position or not a.config.positions:
        return [args.position]
    from lpbot.report.chains import configured_chains

    waiting = {r.chain_id for r in a.rebalance_repo(getpass.getuser()).unfinished()}
    out: list[str | None] = []
    for ref in configured_chains(a.config, a.environ):
        on_chain = [p.name for p in a.config.positions if p.chain == ref.name]
        if ref.chain_id in waiting and on_chain:
            out.append(on_chain[0])
    return out or [None]


def _cmd_resume(args: argparse.Namespace) -> int:
    from lpbot.errors import RetryLater
    from lpbot.execution import service

    firsts = _resume_positions(args)  # every chain with unfinished work, each its context
    resume_hint(RESUME)
    records, waiting = [], []
    for first in firsts:
        try:
            ctx, _ = _context(argparse.Namespace(**{**vars(args), "position": first}))
        except RetryLater as exc:  # this chain's node does not answer: the others go on
            if len(firsts) == 1:
                raise
            waiting.append(str(exc))
            continue
        for record in service.resume(ctx):
            records.append(record)
            print(f"rebalance {record.id}: {record.state.value}")
            _record_successor(args, ctx, record)
    for line in waiting:
        print(f"not resumed: {line}")
    if not records and not waiting:
        print("nothing to resume")
    return 1 if waiting else 0


def _cmd_replan(args: argparse.Namespace) -> int:
    from lpbot.execution import service

    ctx, _ = _context(args)
    record, report, paths = service.replan(ctx, args.id)
    print(f"rebalance {args.id} re-planned as {record.id}: {record.state.value}")
    return _print_planned(report, paths)


def _cmd_show(args: argparse.Namespace) -> int:
    repo = _app(args).rebalance_repo(getpass.getuser())
    key = args.id
    record = repo.get(int(key)) if key.isdigit() else repo.by_report(key)
    if record is None:
        raise Refused(f"no rebalance {key}; `lpbot rebalance list` shows them all")
    from lpbot.execution.state import wasted_gas_wei

    txs = repo.transactions(record.id)
    shown = {k: v for k, v in vars(record).items()}
    shown["transactions"] = [t.to_json() for t in txs]
    shown["gas_lost_wei"] = str(wasted_gas_wei(txs))  # reverted or cancelled: a cost
    if args.json:
        emit_json(shown)
        return 0
    table(
        f"rebalance {record.id}: {record.state.value}",
        ["field", "value"],
        [(k, v) for k, v in vars(record).items() if k not in ("history", "signatures") and v]
        + [("gas lost (reverted or cancelled)", f"{shown['gas_lost_wei']} wei")],
    )
    if txs:
        table(
            "transactions",
            ["transaction", "details"],
            [(i + 1, json.dumps(t.to_json(), default=str)) for i, t in enumerate(txs)],
        )
    if record.history:
        from datetime import UTC, datetime

        table(
            "history",
            ["state", "at (UTC)"],
            [
                (st, f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S}")
                for st, t in record.history
            ],
        )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from lpbot.store.rebalances import rebalance_rows

    with _app(args).sessions() as s:
        items = rebalance_rows(s)
    if args.json:
        emit_json(items)
        return 0
    table(
        "rebalances",
        ["id", "kind", "state", "position", "report", "updated (UTC)", "reason"],
        [
            (
                i["id"],
                i["kind"],
                i["state"],
                f"#{i['token_id']}" if i["token_id"] is not None else i["position"],
                i["report_id"] or "-",
                i["updated_at"][:19].replace("T", " "),
                (i["reason"] or "")[:60],
            )
            for i in items
        ],
        empty="none yet (`lpbot rebalance plan TOKEN_ID`)",
    )
    return 0


def _ns(**kw: Any) -> argparse.Namespace:
    root = click.get_current_context().find_root().meta
    opts = root.get("lpbot.rebalance", {})
    return argparse.Namespace(**{**opts, **kw})


def _group_options(ctx: click.Context, _p: click.Parameter, value: Any) -> None:
    if value is not None:
        ctx.find_root().meta.setdefault("lpbot.rebalance", {})[_p.name] = value


def _group_flag(ctx: click.Context, _p: click.Parameter, value: bool) -> None:
    if value:  # given before or after the command name; absent never clears it
        ctx.find_root().meta.setdefault("lpbot.rebalance", {})[_p.name] = True


def _common(f: Any) -> Any:
    """Options every rebalance command takes, before or after its name."""
    for option in reversed(
        [
            config_option,
            click.option(
                "--position",
                expose_value=False,
                callback=_group_options,
                help="the configured position whose policy and chain apply (default: the first)",
            ),
            click.option(
                "--rpc",
                expose_value=False,
                callback=_group_options,
                help="RPC URL (overrides the chain's rpc_url / manifest)",
            ),
            click.option(
                "--reports",
                expose_value=False,
                callback=_group_options,
                help="dry-run report directory (overrides report_dir)",
            ),
            click.option(
                "--slippage-bps",
                type=float,
                expose_value=False,
                callback=_group_options,
                help="slippage bound (overrides positions.policy.slippage_bps); at most 300 "
                "bps without --force",
            ),
            click.option(
                "--force",
                is_flag=True,
                expose_value=False,
                callback=_group_flag,
                help="plan with a --slippage-bps above 300",
            ),
        ]
    ):
        f = option(f)
    return f


def _defaults(**kw: Any) -> argparse.Namespace:
    base = {"position": None, "rpc": None, "reports": None, "slippage_bps": None, "force": False}
    ns = _ns(**kw)
    for k, v in base.items():
        if not hasattr(ns, k):
            setattr(ns, k, v)
    return ns


@click.group()
@_common
def rebalance() -> None:
    """Plan, approve, sign and execute a Safe-owned rebalance; resume, show, list."""


@rebalance.command()
@_common
@click.argument("token_id", type=int)
@click.option("--width-ticks", type=int, help="a manual range: +-N ticks around the price")
@click.option("--k", type=float, help="a volatility band of k sigmas (overrides the strategy)")
@click.option(
    "--accept-unhealthy-pool",
    is_flag=True,
    help="plan even where the pool is below the [health] rule (`lpbot pools health` says)",
)
@json_option
def plan(
    token_id: int,
    width_ticks: int | None,
    k: float | None,
    accept_unhealthy_pool: bool,
    as_json: bool,
) -> int:
    """Decide, plan and dry-run; write the report. Refused where the pool is below the
    [health] rule, unless --accept-unhealthy-pool."""
    return _cmd_plan(
        _defaults(
            token_id=token_id,
            width_ticks=width_ticks,
            k=k,
            json=as_json,
            accept_unhealthy_pool=accept_unhealthy_pool,
        )
    )


@rebalance.command()
@_common
@click.argument("report_id")
@click.option("--yes", is_flag=True, help="approve without the prompt")
@click.option("--approver", help="name recorded with the approval")
def approve(report_id: str, yes: bool, approver: str | None) -> int:
    """Approve a dry-run report you have read."""
    return _cmd_approve(_defaults(report_id=report_id, yes=yes, approver=approver))


def _signing(f: Any) -> Any:
    f = click.option(
        "--password-env",
        multiple=True,
        help="environment variable holding the password of the --keystore at the same place",
    )(f)
    f = click.option(
        "--keystore",
        multiple=True,
        help="an owner's keystore: a name in [signer.keystores] or a file",
    )(f)
    f = click.option("--dev-owner", type=int, multiple=True, help="devnet owner account index")(f)
    f = click.option(
        "--mpc",
        is_flag=True,
        help="sign as the MPC owner of [signer.mpc] (this host's party and the co-signer)",
    )(f)
    f = click.option(
        "--approval",
        help="--mpc: the report's signed approval for the co-signer (lpbot cosigner approve)",
    )(f)
    return f


@rebalance.command()
@_common
@click.argument("report_id")
@_signing
@click.option("--signature", multiple=True, help="a signature file from `rebalance sign`")
def execute(
    report_id: str,
    dev_owner: tuple[int, ...],
    mpc: bool,
    approval: str | None,
    keystore: tuple[str, ...],
    password_env: tuple[str, ...],
    signature: tuple[str, ...],
) -> int:
    """Sign with the owners given, add signature files, and execute."""
    return _cmd_execute(
        _defaults(
            report_id=report_id,
            dev_owner=list(dev_owner),
            mpc=mpc,
            approval=approval,
            keystore=list(keystore),
            password_env=list(password_env),
            signature=list(signature),
        )
    )


@rebalance.command()
@_common
@click.argument("report_id")
@_signing
@click.option("--out", required=True, help="the signature file to write (never overwritten)")
def sign(
    report_id: str,
    dev_owner: tuple[int, ...],
    mpc: bool,
    approval: str | None,
    keystore: tuple[str, ...],
    password_env: tuple[str, ...],
    out: str,
) -> int:
    """Write one owner's signature to a file (an owner on another machine)."""
    return _cmd_sign(
        _defaults(
            report_id=report_id,
            dev_owner=list(dev_owner),
            mpc=mpc,
            approval=approval,
            keystore=list(keystore),
            password_env=list(password_env),
            out=out,
        )
    )


@rebalance.command()
@_common
def resume() -> int:
    """Finish or abandon unfinished rebalances (checked against the chain first)."""
    return _cmd_resume(_defaults())


@rebalance.command()
@_common
@click.argument("id", type=int)
def replan(id: int) -> int:
    """Plan a stale or cancelled rebalance again from the latest block (a new report)."""
    return _cmd_replan(_defaults(id=id))


@rebalance.command()
@_common
@click.argument("id")
@json_option
def show(id: str, as_json: bool) -> int:
    """A rebalance by id or report id."""
    return _cmd_show(_defaults(id=id, json=as_json))


@rebalance.command("list")
@_common
@json_option
def list_(as_json: bool) -> int:
    """Every rebalance with its state."""
    return _cmd_list(_defaults(json=as_json))
