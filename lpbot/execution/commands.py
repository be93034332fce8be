"""``lpbot rebalance plan|approve|execute|sign|resume|replan|show`` for a Safe-owned position.

The chain, the Safe and the executor come from the running devnet (``lpbot devnet up``); the
rebalances live in the database (``--db``, default ``.lpbot/lpbot.db``, migrated on first use)
and the dry-run reports in ``--reports`` (default ``reports/``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from lpbot.errors import Refused


def _repo(args: argparse.Namespace) -> Any:
    from lpbot.store import migrate
    from lpbot.store.rebalances import SqlRebalanceRepo
    from lpbot.store.session import make_engine, session_factory

    url = args.db or f"sqlite:///{Path.cwd() / '.lpbot' / 'lpbot.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    return SqlRebalanceRepo(session_factory(engine), actor=getpass.getuser())


def _context(args: argparse.Namespace) -> Any:
    from lpbot.chain.rpc import connect
    from lpbot.devnet import service
    from lpbot.devnet.context import devnet_context

    record, manifest = service.require_running(Path(args.home) if args.home else None)
    return devnet_context(
        connect(record.rpc_url),
        manifest,
        _repo(args),
        Path(args.reports),
        slippage_bps=args.slippage_bps,
        # the waiting is shown as it happens; a refusal is printed once, as the error
        progress=lambda line: print(line, flush=True),
        alert=lambda _kind, _text: None,
    ), manifest


def _cmd_plan(args: argparse.Namespace) -> int:
    from lpbot.execution import service
    from lpbot.execution.decide import decide_position
    from lpbot.strategy.base import Range
    from lpbot.strategy.decision import Rebalance
    from lpbot.strategy.rebalance import RebalancePolicy
    from lpbot.strategy.vol_band import VolatilityBand

    ctx, _manifest = _context(args)
    pool, token0, token1, _fee = service.pool_of_position(ctx, args.token_id)
    from lpbot.chain.reader import PoolReader

    reader = PoolReader(
        ctx.w3,
        multicall=ctx.contracts["Multicall3"],
        tick_lens=ctx.contracts["TickLens"],
        position_manager=ctx.contracts["NonfungiblePositionManager"],
    )
    if args.width_ticks:
        snap = reader.fetch_pool_state(pool, twap_seconds=(0,))
        spacing = snap.tick_spacing
        centre = snap.slot0.tick // spacing * spacing
        half = -(-args.width_ticks // spacing) * spacing
        new_range = Range(centre - half, centre + half, spacing)
        reason = f"manual: +-{half} ticks around the price"
    else:
        policy = RebalancePolicy(strategy=VolatilityBand(k=args.k))
        view = decide_position(
            ctx.w3,
            reader,
            pool,
            args.token_id,
            policy,
            decimals=(ctx.symbols[token0][1], ctx.symbols[token1][1]),
            usd=(ctx.usd_price(token0), ctx.usd_price(token1)),
            native_usd=ctx.native_usd,
        )
        decision = view.decision
        print(f"decision: {type(decision).__name__}: {decision.reason}")
        for r in decision.reasons:
            print(f"  - {r}")
        if not isinstance(decision, Rebalance):
            return 0
        new_range, reason = decision.new_range, decision.reason
    record, report, paths = service.plan_rebalance(ctx, args.token_id, new_range, reason)
    print(f"rebalance {record.id}: {record.state.value}; report {report['report_id']}")
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    ok = all(c["ok"] for c in report["checks"])
    print(f"checks: {'all passed' if ok else 'FAILED - do not approve'}")
    print(f"next: lpbot rebalance approve {report['report_id']}")
    return 0 if ok else 1


def _cmd_approve(args: argparse.Namespace) -> int:
    from lpbot.execution import service
    from lpbot.report.dryrun import read_report, render_markdown

    ctx, _ = _context(args)
    report = read_report(Path(args.reports), args.report_id)
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


def _signers(args: argparse.Namespace) -> list[Any]:
    from lpbot.devnet.keys import dev_signer
    from lpbot.signing.local import LocalKeySigner

    signers: list[Any] = [dev_signer(i) for i in args.dev_owner or []]
    for path, env in zip(args.keystore or [], args.password_env or [], strict=False):
        signers.append(LocalKeySigner.from_keystore(Path(path), env))
    return signers


def _cmd_execute(args: argparse.Namespace) -> int:
    from lpbot.execution import service

    ctx, _ = _context(args)
    record = service.execute(
        ctx,
        args.report_id,
        signers=_signers(args),
        signature_files=[Path(p) for p in args.signature or []],
    )
    print(f"rebalance {record.id}: {record.state.value}")
    if record.result:
        print(json.dumps(record.result, indent=2))
    return 0 if record.state.value == "CONFIRMED" else 1


def _cmd_sign(args: argparse.Namespace) -> int:
    from lpbot.execution.service import _record_for, _safe_tx_of
    from lpbot.signing.safe import sign

    ctx, _ = _context(args)
    record = _record_for(ctx, args.report_id)
    if record.state.value != "APPROVED":
        raise Refused(f"rebalance {record.id} is {record.state.value}: sign approved reports only")
    tx, _report = _safe_tx_of(ctx, record)
    out = Path(args.out)
    for signer in _signers(args):
        sig = sign(tx, signer)
        out.write_text(sig.to_json(tx.safe_tx_hash) + "\n")
        print(f"signature of {sig.owner} for SafeTx 0x{tx.safe_tx_hash.hex()} written to {out}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from lpbot.execution import service

    ctx, _ = _context(args)
    for record in service.resume(ctx):
        print(f"rebalance {record.id}: {record.state.value}")
    return 0


def _cmd_replan(args: argparse.Namespace) -> int:
    from lpbot.execution import service

    ctx, _ = _context(args)
    record, report, paths = service.replan(ctx, args.id)
    print(f"rebalance {args.id} re-planned as {record.id}: {record.state.value}")
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    ok = all(c["ok"] for c in report["checks"])
    print(f"checks: {'all passed' if ok else 'FAILED - do not approve'}")
    print(f"next: lpbot rebalance approve {report['report_id']}")
    return 0 if ok else 1


def _cmd_show(args: argparse.Namespace) -> int:
    from lpbot.execution.state import wasted_gas_wei

    ctx, _ = _context(args)
    key = args.id
    record = ctx.repo.get(int(key)) if key.isdigit() else ctx.repo.by_report(key)
    if record is None:
        raise Refused(f"no rebalance {key}")
    shown = {k: v for k, v in vars(record).items() if k != "history"}
    txs = ctx.repo.transactions(record.id)
    shown["transactions"] = [t.to_json() for t in txs]
    shown["gas_lost_wei"] = str(wasted_gas_wei(txs))  # reverted or cancelled: a cost
    print(json.dumps(shown, indent=2, default=str))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("rebalance", help="plan, approve and execute a Safe-owned rebalance")
    p.add_argument("--home", help="devnet data directory (default ./.lpbot/devnet)")
    p.add_argument("--db", help="database URL (default sqlite:///.lpbot/lpbot.db)")
    p.add_argument("--reports", default="reports", help="dry-run report directory")
    p.add_argument("--slippage-bps", type=int, default=50)
    rs = p.add_subparsers(dest="rebalance_command", required=True)

    plan = rs.add_parser("plan", help="decide, plan and dry-run; write the report")
    plan.add_argument("token_id", type=int)
    plan.add_argument("--width-ticks", type=int, help="a manual range: +-N ticks around the price")
    plan.add_argument("--k", type=float, default=2.0, help="volatility band width in sigmas")
    plan.set_defaults(func=_cmd_plan)

    approve = rs.add_parser("approve", help="approve a dry-run report you have read")
    approve.add_argument("report_id")
    approve.add_argument("--yes", action="store_true", help="approve without the prompt")
    approve.add_argument("--approver", help="name recorded with the approval")
    approve.set_defaults(func=_cmd_approve)

    for name, func, text in (
        ("execute", _cmd_execute, "sign with the owners given and execute"),
        ("sign", _cmd_sign, "write an owner's signature to a file (owner on another machine)"),
    ):
        c = rs.add_parser(name, help=text)
        c.add_argument("report_id")
        c.add_argument("--dev-owner", type=int, action="append", help="devnet owner account index")
        c.add_argument("--keystore", action="append", help="an owner's keystore file")
        c.add_argument("--password-env", action="append", help="env var with its password")
        if name == "execute":
            c.add_argument("--signature", action="append", help="a signature file from `sign`")
        else:
            c.add_argument("--out", required=True)
        c.set_defaults(func=func)

    rs.add_parser("resume", help="finish or abandon unfinished rebalances").set_defaults(
        func=_cmd_resume
    )
    replan = rs.add_parser("replan", help="plan a stale or cancelled rebalance again (new report)")
    replan.add_argument("id", type=int)
    replan.set_defaults(func=_cmd_replan)
    show = rs.add_parser("show", help="a rebalance by id or report id")
    show.add_argument("id")
    show.set_defaults(func=_cmd_show)
