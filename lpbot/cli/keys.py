"""``lpbot keys new|import|list|address``: the encrypted keystores the configuration names.

Keystores are eth-account V3 JSON (scrypt), written with mode 0600, never overwritten. The
password comes from the environment variable the configuration names for that keystore
(``password_env``) when it is set, else from a prompt that does not echo (asked twice). A private
key to import is read from a prompt that does not echo, or from stdin when it is not a terminal.
A key that is not the account the configuration names for NAME (a Safe owner, the keystore's
``address``) is refused before anything is written. No key or password is ever printed or logged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lpbot.cli.common import app, config_option, emit_json, json_option, table

if TYPE_CHECKING:
    from lpbot.app import App

__all__ = ["keys"]


@click.group()
@config_option
def keys() -> None:
    """Encrypted keystores: new, import, list, address."""


def _target(a: App, name: str) -> tuple[Path, str | None]:
    """The keystore's path and password variable from the configuration, else the default
    place in the data directory."""
    ref = a.config.signer.keystores.get(name)
    if ref is not None:
        return ref.path, ref.password_env
    from lpbot.config import _name

    try:
        _name(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    return a.config.data_dir / "keys" / f"{name}.json", None


def _password(env_name: str | None, *, confirm: bool) -> str:
    if env_name and os.environ.get(env_name):
        return os.environ[env_name]
    if not sys.stdin.isatty():
        from lpbot.errors import NeedsAttention

        where = f"set {env_name} or " if env_name else ""
        raise NeedsAttention(f"a keystore password is needed: {where}run this in a terminal")
    password: str = click.prompt("keystore password", hide_input=True, confirmation_prompt=confirm)
    if not password:
        raise click.UsageError("an empty password is refused")
    return password


def _write(a: App, name: str, key: bytes) -> None:
    from eth_account import Account

    from lpbot.errors import Refused
    from lpbot.signing.local import write_keystore

    path, env_name = _target(a, name)
    if path.exists():
        raise Refused(f"{path} exists; lpbot never overwrites a keystore (move it away first)")
    # a key that is not the account the configuration names (a Safe owner, a keystore's
    # address) could never sign for it: refused before anything is written
    expected = a.expected_addresses().get(name)
    found = str(Account.from_key(key).address)
    if expected is not None and expected.lower() != found.lower():
        raise Refused(
            f"keystore {name}: this key is {found}, but the configuration expects {expected}; "
            f"nothing written (`lpbot keys import {name}` with {expected}'s key, or change the "
            "configuration first)"
        )
    password = _password(env_name, confirm=True)
    address = write_keystore(path, key, password)
    click.echo(f"keystore {name}: {address} written to {path} (mode 0600)")
    if name not in a.config.signer.keystores:
        click.echo(
            f'add it to the configuration:\n  [signer.keystores.{name}]\n  path = "{path}"\n'
            f'  password_env = "LPBOT_{name.upper().replace("-", "_").replace(".", "_")}_PASSWORD"'
        )


@keys.command("new")
@config_option
@click.argument("name")
def new(name: str) -> int:
    """Make a new random key and write it encrypted to keystore NAME."""
    import secrets

    _write(app(), name, secrets.token_bytes(32))
    return 0


@keys.command("import")
@config_option
@click.argument("name")
def import_(name: str) -> int:
    """Encrypt an existing private key (prompted, not echoed; or on stdin) into keystore NAME."""
    if sys.stdin.isatty():
        text = click.prompt("private key (hex)", hide_input=True)
    else:
        text = sys.stdin.readline().strip()
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise click.UsageError("the private key must be 64 hex digits") from None
    if len(key) != 32:
        raise click.UsageError("the private key must be 64 hex digits")
    _write(app(), name, key)
    return 0


@keys.command("list")
@config_option
@json_option
def list_(as_json: bool) -> int:
    """The configured keystores: path, address, and whether they are ready."""
    from lpbot.cli.config import check_keystores

    a = app()
    roles: dict[str, list[str]] = {}

    def role(name: str, what: str) -> None:
        if what not in roles.setdefault(name, []):
            roles[name].append(what)

    s = a.config.signer
    if s.sender:
        role(s.sender, "sender")
    if s.module is not None:
        role(s.module.operator, "module operator")
    if s.safe is not None:
        for o in s.safe.owners:
            if o.keystore:
                role(o.keystore, "Safe owner")
    for chain, c in a.config.chains.items():  # a chain's own: the role names its chain
        if c.sender:
            role(c.sender, f"sender on {chain}")
        if c.module is not None:
            role(c.module.operator, f"module operator on {chain}")
        for o in c.safe.owners if c.safe is not None else ():
            if o.keystore:
                role(o.keystore, f"Safe owner on {chain}")
    rows = check_keystores(a)
    if as_json:
        emit_json(
            [
                {
                    "name": n,
                    "path": p,
                    "address": f if ok else None,
                    "problem": None if ok else f,
                    "password_env": a.config.signer.keystores[n].password_env,
                    "roles": roles.get(n, []),
                }
                for n, p, f, ok in rows
            ]
        )
        return 0
    table(
        f"keystores in {a.source}",
        ["name", "role", "address", "password from", "path"],
        [
            (
                n,
                ", ".join(roles.get(n, [])) or "-",
                f if ok else f"[not ready] {f}",
                "$" + a.config.signer.keystores[n].password_env,
                p,
            )
            for n, p, f, ok in rows
        ],
        empty="none configured ([signer.keystores])",
    )
    return 0


@keys.command()
@config_option
@click.argument("name")
def address(name: str) -> int:
    """The address of keystore NAME (read from the file; nothing is decrypted)."""
    from lpbot.app import keystore_address

    path, _env = _target(app(), name)
    click.echo(keystore_address(path))
    return 0
