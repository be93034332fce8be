"""A signer whose key is in an encrypted keystore file (eth-account, scrypt or pbkdf2)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from lpbot.errors import ConfigError, NeedsAttention
from lpbot.signing.base import Signature, SignedTransaction


class LocalKeySigner:
    """Signs with a key held in memory, loaded from a keystore. The key is never printed."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    def __repr__(self) -> str:
        return f"LocalKeySigner({self.address})"

    @classmethod
    def from_keystore(cls, path: Path, password_env: str) -> LocalKeySigner:
        """Decrypt ``path`` with the password in the environment variable ``password_env``."""
        password = os.environ.get(password_env)
        if not password:  # lpbot never writes a keystore with an empty password
            empty = " (it is empty)" if password == "" else ""
            raise NeedsAttention(f"set {password_env} to the password of keystore {path}{empty}")
        try:
            keystore = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"keystore {path} cannot be read: {exc}") from exc
        try:
            key = Account.decrypt(keystore, password)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise NeedsAttention(f"keystore {path}: wrong password ({password_env})") from exc
        return cls(Account.from_key(key))

    @classmethod
    def from_key(cls, key: bytes | str) -> LocalKeySigner:
        """For development accounts only (Anvil's); production keys come from a keystore."""
        return cls(Account.from_key(key))

    @property
    def address(self) -> str:
        address: str = self._account.address
        return address

    def sign_digest(self, digest: bytes) -> Signature:
        if len(digest) != 32:
            raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
        if hasattr(self._account, "unsafe_sign_hash"):  # eth-account >= 0.13
            signed = self._account.unsafe_sign_hash(digest)
        else:  # eth-account 0.11/0.12 (web3 6): the same function under its old name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                signed = self._account.signHash(digest)  # type: ignore[no-untyped-call]
        return Signature(r=signed.r, s=signed.s, v=signed.v)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        signed = self._account.sign_transaction(tx)  # type: ignore[no-untyped-call]
        return SignedTransaction(raw=bytes(signed.rawTransaction), hash=bytes(signed.hash))


def write_keystore(path: Path, key: bytes, password: str) -> str:
    """Encrypt ``key`` into a keystore at ``path`` (mode 0600); return its address."""
    keystore = Account.encrypt(key, password)  # type: ignore[no-untyped-call]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keystore, f)
    return str(Account.from_key(key).address)
