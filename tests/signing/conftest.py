"""MPC keys for the signing tests: one 2-of-3 and one 2-of-2 key per session (DKG is slow).

Each key lives in a temporary directory; the parties' passphrases are set in this process's
environment (the sidecars inherit it) under names unique to the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lpbot.signing.mpc import Coordinator, KeyInfo, MpcConfig, MpcSigner
from lpbot.signing.mpc.config import local_parties
from lpbot.signing.mpc.coordinator import Envelope
from lpbot.signing.mpc.links import backend_missing

_MISSING = backend_missing()
if _MISSING and os.environ.get("LPBOT_REQUIRE_MPC"):
    raise RuntimeError(f"LPBOT_REQUIRE_MPC is set but {_MISSING}")
# the tests that run the parties need the optional backend (`make mpc`; `make test` installs it)
needs_backend = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


@dataclass(frozen=True)
class MpcKey:
    config: MpcConfig
    info: KeyInfo
    home: Path
    relayed: tuple[Envelope, ...]  # every envelope the coordinator relayed during key generation


def _keygen(home: Path, count: int, threshold: int, prefix: str) -> MpcKey:
    for i in range(1, count + 1):
        os.environ[f"{prefix}{i}"] = f"test passphrase of party {i} ({prefix})"
    config = local_parties(home, count, threshold, env_prefix=prefix, insecure_single_host=True)
    relayed: list[Envelope] = []

    def record(env: Envelope) -> Envelope:
        relayed.append(env)
        return env

    with Coordinator.open(config, relay_hook=record) as coordinator:
        info = coordinator.keygen()
    config = config.model_copy(update={"address": info.address})
    config.write(home / "mpc.json")
    return MpcKey(config=config, info=info, home=home, relayed=tuple(relayed))


@pytest.fixture(scope="session")
def key3(tmp_path_factory: pytest.TempPathFactory) -> MpcKey:
    return _keygen(tmp_path_factory.mktemp("mpc3"), 3, 2, "LPBOT_TEST_MPC3_")


@pytest.fixture(scope="session")
def key2(tmp_path_factory: pytest.TempPathFactory) -> MpcKey:
    return _keygen(tmp_path_factory.mktemp("mpc2"), 2, 2, "LPBOT_TEST_MPC2_")


@pytest.fixture(scope="session")
def signer3(key3: MpcKey) -> Iterator[MpcSigner]:
    """The 2-of-3 key with all three parties running for the whole session."""
    with MpcSigner.open(key3.config) as signer:
        yield signer
