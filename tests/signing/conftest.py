"""MPC keys for the signing tests: one 2-of-3 and one 2-of-2 key per session (DKG is slow).

Each key lives in a temporary directory; the parties' passphrases are set in this process's
environment (the sidecars inherit it) under names unique to the key.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lpbot.chain.artifacts import project_root
from lpbot.signing.mpc import Coordinator, KeyInfo, MpcConfig, MpcSigner
from lpbot.signing.mpc.config import local_parties
from lpbot.signing.mpc.coordinator import Envelope
from lpbot.signing.mpc.errors import PartyUnavailable
from lpbot.signing.mpc.links import HttpLink, backend_missing

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


API_KEY_ENV = "LPBOT_TEST_COSIGNER_API_KEY"
os.environ.setdefault(API_KEY_ENV, "5a" * 32)
APPROVER_KEY = "0x" + "a1" * 32  # a development approver key (never a real one)


@contextlib.contextmanager
def running_cosigner(config: dict[str, Any], home: Path) -> Iterator[str]:
    """``lpbot cosigner serve`` as its own process; yields its URL once it answers."""
    path = home / "cosigner.json"
    path.write_text(json.dumps({"api_key_env": API_KEY_ENV, **config}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lpbot.signing.mpc.commands",
            "cosigner",
            "serve",
            "--config",
            str(path),
        ],
        cwd=project_root(),
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{config['port']}"
    route = "/v1/party" if config.get("mode") == "mpc" else "/v1/sign"
    link = HttpLink(0, url, bytes.fromhex(os.environ[API_KEY_ENV]), path=route)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                link.request("status", 5)
                break
            except PartyUnavailable:
                assert proc.poll() is None, "co-signer exited"
                assert time.monotonic() < deadline, "co-signer did not start"
                time.sleep(0.2)
        yield url
    finally:
        link.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
