"""The MPC commands: ``lpbot mpc keygen|identity|address|sign-test`` and ``lpbot cosigner ...``.

``register(subparsers)`` adds them to lpbot's parser; ``main`` runs them alone
(``python -m lpbot.signing.mpc.commands ...``). Thin: parse, call one function, print. Nothing
printed here is secret: addresses, public keys, identity keys, timings. ``lpbot mpc rotate``
reads lpbot.toml and so runs from lpbot's command line only (``lpbot.cli.mpc``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak

from lpbot.errors import ConfigError, Halt, LpbotError, NeedsAttention, Refused

DEFAULT_CONFIG = Path(".lpbot") / "mpc" / "mpc.json"


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config else Path.cwd() / DEFAULT_CONFIG


def _signers(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"--signers takes party indices like 1,3; got {text!r}") from exc


def _cmd_keygen(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.config import (
        SINGLE_HOST_WARNING,
        LocalParty,
        MpcConfig,
        fingerprint,
        local_parties,
    )
    from lpbot.signing.mpc.coordinator import Coordinator

    path = _config_path(args)
    if path.exists():
        config = MpcConfig.read(path)
        if config.address:
            raise Refused(f"{path} already describes key {config.address}; use another --config")
        if (config.share_count, config.threshold) != (args.parties, args.threshold):
            raise ConfigError(
                f"{path} is {config.threshold}-of-{config.share_count}; "
                f"--threshold {args.threshold} --parties {args.parties} disagree"
            )
        if args.insecure_single_host and not config.insecure_single_host:
            config = config.model_copy(update={"insecure_single_host": True})
    elif args.insecure_single_host:
        config = local_parties(path.parent, args.parties, args.threshold, insecure_single_host=True)
    else:
        raise NeedsAttention(
            f"no MPC config at {path}: write one that places each party on its own host (this "
            "host's party local, the co-signer and the recovery party remote; README, Custody), "
            "or pass --insecure-single-host for a demo key whose shares all stay here"
        )
    if config.insecure_single_host:
        print(f"WARNING: {SINGLE_HOST_WARNING}", file=sys.stderr)
    missing = [
        p.passphrase_env
        for p in config.parties
        if isinstance(p, LocalParty) and not os.environ.get(p.passphrase_env)
    ]
    if missing:
        raise NeedsAttention(
            "set a passphrase (12+ characters) for each local party: " + ", ".join(missing)
        )
    print(f"generating a {config.threshold}-of-{config.share_count} key ...")
    t0 = time.monotonic()
    with Coordinator.open(config) as coordinator:
        info = coordinator.keygen()
        statuses = coordinator.statuses()
    config = config.model_copy(update={"address": info.address})
    config.write(path)
    print(f"address     {info.address}")
    print(f"public key  {info.public_key}")
    print(f"key id      {info.key_id}")
    print(f"config      {path}")
    print("compare each fingerprint with the one that party shows itself (out of band):")
    for p in config.parties:
        st = statuses[p.index]
        identity = st.get("identity") if isinstance(st, dict) else None
        where = p.dir if isinstance(p, LocalParty) else p.url
        shown = fingerprint(identity) if identity else "unknown"
        print(f"party {p.index}     {where}  (identity fingerprint {shown})")
    where = (
        "every share is on this host (insecure: demo only)"
        if config.insecure_single_host
        else f"this host holds {config.local_count()} share; no machine ever held the whole key"
    )
    print(f"done in {time.monotonic() - t0:.1f} s; {where}")
    return 0


def _cmd_identity(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.config import LocalParty, MpcConfig, fingerprint
    from lpbot.signing.mpc.coordinator import check_placement
    from lpbot.signing.mpc.links import SidecarLink

    config = MpcConfig.read(_config_path(args))
    check_placement(config)
    for p in config.parties:
        if not isinstance(p, LocalParty):
            continue
        if not os.environ.get(p.passphrase_env):
            raise NeedsAttention(f"set {p.passphrase_env} to party {p.index}'s passphrase")
        link = SidecarLink(p.index, p.dir, p.passphrase_env)
        try:
            status = link.request("status", 30.0)
            if not status.get("initialized"):
                status = link.request("init", 60.0, index=p.index)
        finally:
            link.close()
        identity = status.get("identity")
        if not identity:
            raise NeedsAttention(f"party {p.index} shows no identity key")
        print(f"party {p.index} identity fingerprint {fingerprint(str(identity))}")
    return 0


def _cmd_address(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.config import MpcConfig
    from lpbot.signing.mpc.coordinator import Coordinator

    config = MpcConfig.read(_config_path(args))
    if not config.address:
        raise NeedsAttention("no key yet: run `lpbot mpc keygen`")
    print(config.address)
    if args.check:
        with Coordinator.open(config) as coordinator:
            for i, st in coordinator.statuses().items():
                line: Any = st if not isinstance(st, dict) else st.get("address")
                print(f"party {i}: {line}")
    return 0


def _cmd_sign_test(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.config import MpcConfig
    from lpbot.signing.mpc.signer import MpcSigner

    config = MpcConfig.read(_config_path(args))
    digest = keccak(f"lpbot mpc sign-test {time.time_ns()}".encode())
    with MpcSigner.open(config, signers=_signers(args.signers)) as signer:
        t0 = time.monotonic()
        sig = signer.sign_digest(digest)
        seconds = time.monotonic() - t0
    recovered = Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s))
    print(f"digest    0x{digest.hex()}")
    print(f"signature 0x{sig.to_bytes().hex()}")
    print(f"recovers  {recovered} ({'ok' if recovered == config.address else 'MISMATCH'})")
    print(f"signed in {seconds:.2f} s")
    return 0 if recovered == config.address else 1


def _cmd_rotate_elsewhere(args: argparse.Namespace) -> int:
    raise ConfigError(
        "lpbot mpc rotate works on the Safe of lpbot.toml: run it as `lpbot mpc rotate ...`"
    )


def _cmd_cosigner_serve(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.cosigner import serve

    with contextlib.suppress(KeyboardInterrupt):
        serve(Path(args.config), out=sys.stdout)
    return 0


def _cmd_cosigner_unban(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.cosigner import read_for_unban

    ledger = read_for_unban(Path(args.config))
    if not ledger.unban(args.party):
        print(f"party {args.party} was not banned")
        return 1
    print(f"party {args.party} may take part again")
    return 0


def _cmd_cosigner_sign(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.owner import cosign_report_file

    out = Path(args.out)
    owner, digest = cosign_report_file(
        args.url, args.api_key_env, Path(args.report), Path(args.approval), out
    )
    print(f"co-signer {owner} signed SafeTx {digest}; signature written to {out}")
    print("next: lpbot rebalance execute REPORT_ID --signature " + str(out) + " ...")
    return 0


def _cmd_cosigner_new_key(args: argparse.Namespace) -> int:
    from lpbot.signing.local import write_keystore

    path = Path(args.keystore)
    if path.exists():
        raise Refused(f"{path} exists; a key is never overwritten")
    password = os.environ.get(args.password_env, "")
    if len(password) < 12:
        raise NeedsAttention(f"set {args.password_env} to the keystore's password (12+ characters)")
    address = write_keystore(path, secrets.token_bytes(32), password)
    print(f"new key {address} in {path}")
    return 0


def _cmd_cosigner_approve(args: argparse.Namespace) -> int:
    import json

    from lpbot.report.dryrun import verify
    from lpbot.signing.local import LocalKeySigner
    from lpbot.signing.mpc.approval import sign_approval

    try:
        report = json.loads(Path(args.report).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"report {args.report}: {exc}") from exc
    try:
        verify(report)
    except Halt as exc:  # an edited report is refused, not a crash
        raise Refused(f"{args.report}: {exc}; not approved") from exc
    digest = args.digest
    if digest is None:
        safe_tx = report.get("safe_tx") or {}
        digest = safe_tx.get("safe_tx_hash")
        if not digest:
            raise ConfigError("the report names no SafeTx hash; pass --digest")
    if args.ttl <= 0:
        raise ConfigError("--ttl must be positive seconds")
    signer = LocalKeySigner.from_keystore(Path(args.keystore), args.password_env)
    approval = sign_approval(
        signer,
        report_hash=report["report_hash"],
        digest=digest,
        chain_id=int(report["chain_id"]),
        expires_at=int(time.time()) + args.ttl,
    )
    out = Path(args.out) if args.out else Path(args.report).with_suffix(".approval.json")
    out.write_text(approval.model_dump_json(indent=2) + "\n")
    print(f"approved report {report['report_hash']} digest {digest} as {approval.approver}")
    print(f"approval    {out} (valid {args.ttl} s)")
    return 0


def register(subparsers: Any) -> None:
    """Add ``mpc`` and ``cosigner`` to lpbot's sub-commands (``argparse`` subparsers)."""
    mpc = subparsers.add_parser("mpc", help="threshold ECDSA key (no machine holds all of it)")
    mpc.add_argument("--config", help=f"MPC config (default ./{DEFAULT_CONFIG})")
    msub = mpc.add_subparsers(dest="mpc_command", required=True)
    keygen = msub.add_parser("keygen", help="distributed key generation among the parties")
    keygen.add_argument("--parties", type=int, default=3, help="share count n")
    keygen.add_argument("--threshold", type=int, default=2, help="parties needed to sign, t")
    keygen.add_argument(
        "--insecure-single-host",
        action="store_true",
        help="put every party's share on this host (demo and tests only: this host can sign alone)",
    )
    keygen.set_defaults(func=_cmd_keygen)
    identity = msub.add_parser(
        "identity", help="this host's party: create its identity key, show its fingerprint"
    )
    identity.set_defaults(func=_cmd_identity)
    address = msub.add_parser("address", help="the key's Ethereum address")
    address.add_argument("--check", action="store_true", help="ask every party too")
    address.set_defaults(func=_cmd_address)
    rotate = msub.add_parser(
        "rotate",
        help="plan|execute: a new key, and the Safe's owner swapped to it (reads lpbot.toml; "
        "`lpbot mpc rotate --help`)",
    )
    rotate.add_argument("rest", nargs=argparse.REMAINDER)
    rotate.set_defaults(func=_cmd_rotate_elsewhere)
    test = msub.add_parser("sign-test", help="sign a throw-away digest and check it recovers")
    test.add_argument("--signers", help="party indices, e.g. 1,3 (default: first available)")
    test.set_defaults(func=_cmd_sign_test)

    cosigner = subparsers.add_parser("cosigner", help="run one MPC party behind its own policy")
    csub = cosigner.add_subparsers(dest="cosigner_command", required=True)
    serve = csub.add_parser("serve", help="serve the party on 127.0.0.1 until interrupted")
    serve.add_argument("--config", required=True, help="the co-signer's config (JSON)")
    serve.set_defaults(func=_cmd_cosigner_serve)
    unban = csub.add_parser("unban", help="let a banned party take part again")
    unban.add_argument("--config", required=True, help="the co-signer's config (JSON)")
    unban.add_argument("--party", type=int, required=True, help="the banned party's index")
    unban.set_defaults(func=_cmd_cosigner_unban)
    new_key = csub.add_parser("new-key", help="create a key in a keystore (co-signer, approver)")
    new_key.add_argument("--keystore", required=True, help="the keystore file to create")
    new_key.add_argument("--password-env", required=True, help="env var with its password")
    new_key.set_defaults(func=_cmd_cosigner_new_key)
    approve = csub.add_parser("approve", help="sign an approval of a dry-run report (EIP-712)")
    approve.add_argument("--report", required=True, help="the dry-run report (JSON)")
    approve.add_argument("--digest", help="the SafeTx hash or tx digest (default: the report's)")
    approve.add_argument("--keystore", required=True, help="the approver's keystore")
    approve.add_argument(
        "--password-env", default="LPBOT_APPROVER_PASSWORD", help="env var with its password"
    )
    approve.add_argument("--ttl", type=int, default=3600, help="valid for this many seconds")
    approve.add_argument("--out", help="where to write the approval (default: next to the report)")
    approve.set_defaults(func=_cmd_cosigner_approve)
    csign = csub.add_parser("sign", help="have the co-signer sign an approved report's SafeTx")
    csign.add_argument("--url", required=True, help="the co-signer, e.g. http://127.0.0.1:7410")
    csign.add_argument("--report", required=True, help="the dry-run report (JSON)")
    csign.add_argument("--approval", required=True, help="its signed approval (JSON)")
    csign.add_argument("--out", required=True, help="where to write the owner signature")
    csign.add_argument(
        "--api-key-env", default="LPBOT_COSIGNER_API_KEY", help="env var with the API key"
    )
    csign.set_defaults(func=_cmd_cosigner_sign)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lpbot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LPBOT_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
    except LpbotError as exc:
        print(f"lpbot: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
