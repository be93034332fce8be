"""``lpbot mpc ...`` and ``lpbot cosigner ...``: the threshold key and the policy co-signer.

Their commands and options are ``lpbot.signing.mpc.commands`` (the co-signer runs as its own
process, on its own host, from that module alone); here they join the one command line, with
lpbot's error handling. ``--config`` after ``mpc`` or ``cosigner serve`` is that component's own
JSON file, not lpbot.toml.

``lpbot mpc rotate plan|execute`` works on the Safe, so it reads lpbot.toml (``lpbot --config
lpbot.toml mpc rotate ...``, else ``$LPBOT_CONFIG`` or ``./lpbot.toml``): its ``[signer.mpc]``
is the key being retired (``lpbot.signing.mpc.rotate``).
"""

from __future__ import annotations

from typing import Any

import click

__all__ = ["cosigner", "mpc"]

_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _run(family: str, args: list[str]) -> int:
    import argparse

    from lpbot.signing.mpc import commands

    parser = argparse.ArgumentParser(prog="lpbot")
    commands.register(parser.add_subparsers(dest="command", required=True))
    try:
        parsed = parser.parse_args([family, *args])
    except SystemExit as exc:  # argparse printed the usage or the help
        return int(exc.code or 0)
    result: int = parsed.func(parsed)
    return result


@click.command(context_settings=_SETTINGS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def mpc(args: tuple[str, ...], **_: Any) -> int:
    """Threshold ECDSA key (no machine holds all of it): keygen, address, sign-test, identity,
    rotate (a new key and the Safe's owner swapped to it)."""
    if args and args[0] == "rotate":
        return _rotate(list(args[1:]))
    return _run("mpc", list(args))


def _rotate_parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="lpbot mpc rotate",
        description="Retire the MPC key of [signer.mpc]: generate a new key and swap the Safe's "
        "owner from the old address to the new one (a Safe transaction with its own dry-run "
        "report, approval and signatures). The DKLs23 build has no share refresh.",
    )
    sub = parser.add_subparsers(dest="step", required=True)
    plan = sub.add_parser("plan", help="generate the new key; dry-run the owner swap; report")
    plan.add_argument("--new-key", required=True, help="the new key's mpc.json (its parties)")
    plan.add_argument(
        "--chain",
        metavar="NAME",
        help="the chain whose Safe swaps the owner (its name in [chains]; default: the first "
        "position's); each chain's Safe is rotated by its own plan",
    )
    plan.add_argument(
        "--insecure-single-host",
        action="store_true",
        help="no --new-key file yet: put every new share on this host (demo and tests only)",
    )
    execute = sub.add_parser("execute", help="sign the approved swap, send it, check the owners")
    execute.add_argument("report_id")
    execute.add_argument("--mpc", action="store_true", help="sign as the old MPC owner")
    execute.add_argument("--approval", help="--mpc: the report's approval (cosigner approve)")
    execute.add_argument("--keystore", action="append", default=[], help="an owner's keystore")
    execute.add_argument("--password-env", action="append", default=[], help="its password")
    execute.add_argument("--dev-owner", type=int, action="append", default=[], help="devnet")
    execute.add_argument("--signature", action="append", default=[], help="a signature file")
    return parser


def _rotate(argv: list[str]) -> int:
    import getpass
    from pathlib import Path

    from lpbot.cli.common import app
    from lpbot.errors import ConfigError
    from lpbot.signing.mpc import rotate

    parser = _rotate_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    a = app()
    mpc = a.config.signer.mpc
    if mpc is None or mpc.address is None:
        raise ConfigError(f"no [signer.mpc] key with an address in {a.source} to rotate")
    if args.step == "plan":
        ctx = a.execution_context(_chain_position(a, args.chain), actor=getpass.getuser())
        new = _new_key(Path(args.new_key), args.insecure_single_host, mpc.threshold)
        report = rotate.plan_rotation(
            ctx.w3,
            chain_id=ctx.chain_id,
            safe=ctx.safe,
            old=mpc.address,
            new=new,
            reports_dir=a.reports_dir,
        )
        print(f"owner swap {report['old_owner']} -> {report['new_owner']} on Safe {ctx.safe}")
        print(f"dry-run: {report['checks'][0]['detail']}")
        print(f"report  {report['report_id']} ({a.reports_dir / report['report_id']}.json)")
        print(f"SafeTx  {report['safe_tx']['safe_tx_hash']}")
        print(
            "next: approve it (lpbot cosigner approve --report ...), then "
            f"lpbot mpc rotate execute {report['report_id']} --mpc --approval ... (and owners)"
        )
        return 0
    from lpbot.cli.rebalance import _defaults, _signers

    report = rotate.read_rotation(a.reports_dir, args.report_id)
    # the report's own chain: its Safe, sender and node
    ctx = a.execution_context(_chain_id_position(a, report["chain_id"]), actor=getpass.getuser())
    if report["old_owner"].lower() != mpc.address.lower():
        raise ConfigError(
            f"report {args.report_id} retires {report['old_owner']}, not {mpc.address}"
        )
    signers = _signers(
        _defaults(
            dev_owner=args.dev_owner,
            mpc=args.mpc,
            approval=args.approval,
            keystore=args.keystore,
            password_env=args.password_env,
        )
    )
    from lpbot.execution.service import send_recorded_call
    from lpbot.store.rebalances import SqlTransactionLog

    log = SqlTransactionLog(a.sessions, ctx.chain_id)
    done = rotate.execute_rotation(
        ctx.w3,
        report,
        sender=ctx.executor,
        signers=signers,
        signature_files=[Path(p) for p in args.signature],
        send=lambda to, data: send_recorded_call(ctx, log, ctx.executor, to, data),
    )
    if done.get("already_done"):
        print(f"owner swap already done in {done['tx_hash']} (block {done['block']})")
    else:
        print(f"owner swap sent in {done['tx_hash']} (block {done['block']})")
        print(f"signed by {', '.join(done['signed_by'])}")
    print(f"the Safe's owners: {', '.join(done['owners'])}")
    print(
        f"the old key {report['old_owner']} is no owner: its signatures are refused (GS026). "
        f"Now set [signer.mpc] to the new key {report['new_owner']} (its parties and address) "
        "and mark that owner mpc = true"
    )
    return 0


def _chain_position(a: Any, chain: str | None) -> str | None:
    """A position on ``chain`` (a name in [chains]), whose context holds the chain's Safe,
    sender and node; None: the default (the first position's chain)."""
    from lpbot.errors import Refused

    if chain is None:
        return None
    if chain not in a.config.chains:
        raise Refused(
            f"--chain {chain}: no such chain in [chains] (have: {', '.join(a.config.chains)})"
        )
    on_chain = [p.name for p in a.config.positions if p.chain == chain]
    if not on_chain and a.config.positions:
        raise Refused(f"--chain {chain}: no position on it names the Safe to rotate there")
    return on_chain[0] if on_chain else None


def _chain_id_position(a: Any, chain_id: int) -> str | None:
    """A position on the configured chain of id ``chain_id`` (None: the default)."""
    from lpbot.report.chains import configured_chains

    names = [c.name for c in configured_chains(a.config, a.environ) if c.chain_id == chain_id]
    on_chain = [p.name for p in a.config.positions if p.chain in names]
    return on_chain[0] if on_chain else None


def _new_key(path: Any, insecure_single_host: bool, threshold: int) -> str:
    """The new key's address: generated now (``lpbot mpc keygen``'s rules) unless the file
    already names one."""
    import argparse

    from lpbot.signing.mpc import commands
    from lpbot.signing.mpc.config import MpcConfig

    if path.exists():
        config = MpcConfig.read(path)
        if config.address:
            return config.address
        parties, threshold = config.share_count, config.threshold
    else:
        parties = 3
    commands._cmd_keygen(
        argparse.Namespace(
            config=str(path),
            parties=parties,
            threshold=threshold,
            insecure_single_host=insecure_single_host,
        )
    )
    address = MpcConfig.read(path).address
    assert address is not None
    return address


@click.command(context_settings=_SETTINGS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def cosigner(args: tuple[str, ...], **_: Any) -> int:
    """The policy co-signer: serve, new-key, approve, sign, unban."""
    return _run("cosigner", list(args))
