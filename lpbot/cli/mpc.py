"""The MPC commands: ``lpbot mpc keygen|address|sign-test`` and ``lpbot cosigner serve``.

Thin: parse, call one function, print. Nothing printed here is secret: addresses, public keys,
identity keys, timings. ``--mpc-config`` is the MPC key's own JSON file (not lpbot.toml).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import click
from eth_account import Account
from eth_hash.auto import keccak

from lpbot.errors import ConfigError, NeedsAttention, Refused

DEFAULT_CONFIG = Path(".lpbot") / "mpc" / "mpc.json"


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.mpc_config) if args.mpc_config else Path.cwd() / DEFAULT_CONFIG


def _signers(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"--signers takes party indices like 1,3; got {text!r}") from exc


def _cmd_keygen(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.config import LocalParty, MpcConfig, local_parties
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
    else:
        config = local_parties(path.parent, args.parties, args.threshold)
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
    for p in config.parties:
        st = statuses[p.index]
        identity = st.get("identity") if isinstance(st, dict) else None
        where = p.dir if isinstance(p, LocalParty) else p.url
        print(f"party {p.index}     {where}  (identity {identity})")
    print(f"done in {time.monotonic() - t0:.1f} s; no machine ever held the whole key")
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


def _cmd_cosigner_serve(args: argparse.Namespace) -> int:
    from lpbot.signing.mpc.cosigner import serve

    with contextlib.suppress(KeyboardInterrupt):
        serve(Path(args.cosigner_config))
    return 0


def _set(ctx: click.Context, _p: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_root().meta["lpbot.mpc_config"] = value


def _ns(**kw: Any) -> argparse.Namespace:
    root = click.get_current_context().find_root().meta
    return argparse.Namespace(mpc_config=root.get("lpbot.mpc_config"), **kw)


def _mpc_config(f: Any) -> Any:
    return click.option(
        "--mpc-config",
        metavar="PATH",
        expose_value=False,
        callback=_set,
        help=f"the MPC key's config (default ./{DEFAULT_CONFIG})",
    )(f)


@click.group()
@_mpc_config
def mpc() -> None:
    """Threshold ECDSA key (no machine holds all of it)."""


@mpc.command()
@_mpc_config
@click.option("--parties", type=int, default=3, show_default=True, help="share count n")
@click.option("--threshold", type=int, default=2, show_default=True, help="parties to sign, t")
def keygen(parties: int, threshold: int) -> int:
    """Distributed key generation among the parties."""
    return _cmd_keygen(_ns(parties=parties, threshold=threshold))


@mpc.command()
@_mpc_config
@click.option("--check", is_flag=True, help="ask every party too")
def address(check: bool) -> int:
    """The key's Ethereum address."""
    return _cmd_address(_ns(check=check))


@mpc.command("sign-test")
@_mpc_config
@click.option("--signers", help="party indices, e.g. 1,3 (default: first available)")
def sign_test(signers: str | None) -> int:
    """Sign a throw-away digest and check it recovers."""
    return _cmd_sign_test(_ns(signers=signers))


@click.group()
def cosigner() -> None:
    """Run one MPC party behind its own policy."""


@cosigner.command()
@click.option("--cosigner-config", required=True, help="the co-signer's config (JSON)")
def serve(cosigner_config: str) -> int:
    """Serve the party on 127.0.0.1 until interrupted."""
    return _cmd_cosigner_serve(argparse.Namespace(cosigner_config=cosigner_config))
