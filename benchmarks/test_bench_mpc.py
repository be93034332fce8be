"""Speed of the MPC signer: distributed key generation and a 2-of-3 signature.

Each party is its own Node process (DKLs23 in wasm); the coordinator relays sealed envelopes.
Target (2-core machine): a 2-of-3 signature in under 2 s with the parties running. Key generation
is a one-off and CPU-bound (oblivious-transfer set-up between every pair). Run with ``make bench``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from lpbot.signing.mpc import Coordinator, MpcSigner
from lpbot.signing.mpc.config import local_parties
from lpbot.signing.mpc.links import backend_missing

# the optional backend (`make mpc`); all parties on one host, as a benchmark may
pytestmark = pytest.mark.skipif(backend_missing() is not None, reason=backend_missing() or "")

PREFIX = "LPBOT_BENCH_MPC_"
SIGN_TARGET_S = 2.0


@pytest.fixture(scope="module", autouse=True)
def passphrases() -> None:
    for i in (1, 2, 3):
        os.environ[f"{PREFIX}{i}"] = f"benchmark passphrase {i}"


def _keygen(home: Path) -> str:
    config = local_parties(home, 3, 2, env_prefix=PREFIX, insecure_single_host=True)
    with Coordinator.open(config) as coordinator:
        return coordinator.keygen().address


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MpcSigner]:
    home = tmp_path_factory.mktemp("bench-mpc")
    address = _keygen(home)
    config = local_parties(home, 3, 2, env_prefix=PREFIX, insecure_single_host=True).model_copy(
        update={"address": address}
    )
    with MpcSigner.open(config, signers=(1, 3)) as s:
        s.sign_digest(os.urandom(32))  # warm the wasm up in every party
        yield s


def test_dkg_2_of_3(benchmark: pytest.FixtureRequest, tmp_path: Path) -> None:
    homes = iter(tmp_path / f"k{i}" for i in range(10))
    benchmark.pedantic(lambda: _keygen(next(homes)), rounds=2, iterations=1)


def test_sign_2_of_3(benchmark: pytest.FixtureRequest, signer: MpcSigner) -> None:
    digest = os.urandom(32)
    sig = benchmark.pedantic(lambda: signer.sign_digest(digest), rounds=10, iterations=1)
    assert Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s)) == signer.address
    benchmark.extra_info["target_s"] = SIGN_TARGET_S
    assert benchmark.stats.stats.median < SIGN_TARGET_S
