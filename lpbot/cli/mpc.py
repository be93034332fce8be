"""``lpbot mpc ...`` and ``lpbot cosigner ...``: the threshold key and the policy co-signer.

Their commands and options are ``lpbot.signing.mpc.commands`` (the co-signer runs as its own
process, on its own host, from that module alone); here they join the one command line, with
lpbot's error handling. ``--config`` after ``mpc`` or ``cosigner serve`` is that component's own
JSON file, not lpbot.toml.
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
    """Threshold ECDSA key (no machine holds all of it): keygen, address, sign-test, identity."""
    return _run("mpc", list(args))


@click.command(context_settings=_SETTINGS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def cosigner(args: tuple[str, ...], **_: Any) -> int:
    """The policy co-signer: serve, new-key, approve, sign, unban."""
    return _run("cosigner", list(args))
