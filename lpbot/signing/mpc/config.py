"""Configuration of an MPC key and its parties. Frozen; no secrets, only their names.

An ``MpcConfig`` lists the parties of one threshold key: a local party is a directory that a
sidecar process on this machine opens with the passphrase in the environment variable
``passphrase_env``; a remote party is a co-signer reached over HTTP on 127.0.0.1 (or a tunnel
ending there). The address is public and is written after key generation. The one schema is
used twice: ``mpc.json`` (the ``lpbot mpc`` commands) and ``[signer.mpc]`` in lpbot.toml (the
MPC Safe owner of ``lpbot run``, ``rebalance`` and ``mpc rotate``); there, a relative ``dir``
is relative to lpbot.toml's directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lpbot.errors import ConfigError

MAX_PARTIES = 16


def _loopback_url(url: str) -> str:
    if not url.startswith(("http://127.0.0.1:", "http://[::1]:", "http://localhost:")):
        raise ValueError(
            "a remote party is reached on the loopback interface (http://127.0.0.1:PORT)"
        )
    return url.rstrip("/")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocalParty(_Frozen):
    """A party whose sidecar runs on this machine, with its share in ``dir``."""

    kind: Literal["local"] = "local"
    index: Annotated[int, Field(ge=1, le=MAX_PARTIES)]
    dir: Path
    passphrase_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]

    @field_validator("dir")
    @classmethod
    def _relative_to_config(cls, value: Path, info: ValidationInfo) -> Path:
        """``~`` expanded; relative to the configuration file's directory when it is known."""
        value = value.expanduser()
        base = (info.context or {}).get("base_dir")
        return value if value.is_absolute() or base is None else Path(base) / value


class RemoteParty(_Frozen):
    """A party served by ``lpbot cosigner serve``, which applies its own policy before signing.

    Requests are signed with the API key in ``api_key_env``; ``identity`` pins the party's
    identity key (or its fingerprint, as the party shows it) for key generation."""

    kind: Literal["remote"] = "remote"
    index: Annotated[int, Field(ge=1, le=MAX_PARTIES)]
    url: Annotated[str, AfterValidator(_loopback_url)]
    api_key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "LPBOT_COSIGNER_API_KEY"
    identity: str | None = None
    # kept offline (the recovery party after key generation): never contacted
    offline: bool = False


def fingerprint(identity: str) -> str:
    """A party identity key's fingerprint to compare out of band: SHA-256, 20 bytes, grouped."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:40]
    return ":".join(digest[i : i + 4] for i in range(0, 40, 4))


Party = Annotated[LocalParty | RemoteParty, Field(discriminator="kind")]


class MpcConfig(_Frozen):
    """One threshold key: ``threshold`` of ``share_count`` parties sign."""

    threshold: Annotated[int, Field(ge=2, le=MAX_PARTIES)]
    share_count: Annotated[int, Field(ge=2, le=MAX_PARTIES)]
    parties: tuple[Party, ...]
    address: str | None = None
    # the parties asked to sign, in order of preference; empty: the first reachable ones
    signers: tuple[int, ...] = ()
    # the co-signer: the party every signature must include (its policy is never skipped). Unset,
    # it is the one remote party if there is exactly one; 0 says explicitly that there is none
    # (an all-local key on one host: the demo and the tests)
    cosigner: Annotated[int, Field(ge=0, le=MAX_PARTIES)] | None = None
    # more than one party's share on this host: anyone who reads this host's files and
    # environment holds a quorum. Only for the demo and the tests (`--insecure-single-host`).
    insecure_single_host: bool = False

    @model_validator(mode="after")
    def _check(self) -> MpcConfig:
        if self.threshold > self.share_count:
            raise ValueError("threshold exceeds share_count")
        indices = sorted(p.index for p in self.parties)
        if indices != list(range(1, self.share_count + 1)):
            raise ValueError(f"parties must be numbered 1..{self.share_count} once each")
        if any(s not in indices for s in self.signers) or len(set(self.signers)) != len(
            self.signers
        ):
            raise ValueError("signers must be distinct party indices")
        if self.cosigner and self.cosigner not in indices:
            raise ValueError(f"cosigner {self.cosigner} is not one of the parties")
        return self

    @property
    def required_party(self) -> int | None:
        """The party without which nothing is signed (the co-signer), or ``None``."""
        if self.cosigner is not None:
            return self.cosigner or None
        remote = [p.index for p in self.parties if isinstance(p, RemoteParty) and not p.offline]
        return remote[0] if len(remote) == 1 else None

    def local_count(self) -> int:
        """How many parties' shares this host would hold."""
        return sum(1 for p in self.parties if isinstance(p, LocalParty))

    def party(self, index: int) -> LocalParty | RemoteParty:
        for p in self.parties:
            if p.index == index:
                return p
        raise KeyError(index)

    @classmethod
    def read(cls, path: Path) -> MpcConfig:
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"MPC config {path}: {exc}") from exc

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.model_dump(mode="json"), indent=2) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)


SINGLE_HOST_WARNING = (
    "INSECURE: every share of this key is on this one host; whoever can read this host's files "
    "and processes as this user can sign anything. For the demo and tests only."
)


def local_parties(
    home: Path,
    count: int,
    threshold: int,
    env_prefix: str = "LPBOT_MPC_PASSPHRASE_",
    *,
    insecure_single_host: bool = False,
) -> MpcConfig:
    """``count`` local parties in ``home/party-<i>``, passphrases in ``<env_prefix><i>``: all on
    one host, hence ``insecure_single_host`` (the demo and the tests)."""
    return MpcConfig(
        threshold=threshold,
        share_count=count,
        cosigner=0,
        insecure_single_host=insecure_single_host,
        parties=tuple(
            LocalParty(index=i, dir=home / f"party-{i}", passphrase_env=f"{env_prefix}{i}")
            for i in range(1, count + 1)
        ),
    )
