"""Shared fixtures: one devnet (Anvil with the official contracts) per test session.

The chain is started and stopped by the fixture itself, so ``make test`` needs nothing running.
Tests that change the chain use ``chain``, which reverts to a snapshot after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

from lpbot.chain.artifacts import project_root
from lpbot.chain.rpc import connect
from lpbot.devnet import anvil
from lpbot.devnet.manifest import Manifest
from lpbot.devnet.service import anvil_chain_id, load_or_deploy


@dataclass(frozen=True)
class Devnet:
    w3: Web3
    manifest: Manifest
    url: str
    pid: int | None = None  # its Anvil's process (a test that kills the node)

    def snapshot(self) -> str:
        result: str = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        return result

    def revert(self, snapshot_id: str) -> None:
        ok = self.w3.provider.make_request("evm_revert", [snapshot_id])["result"]  # type: ignore[arg-type]
        assert ok, f"evm_revert({snapshot_id}) failed"

    def increase_time(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def devnet() -> Iterator[Devnet]:
    """A seeded devnet for the whole session (its deployed state is cached between runs)."""
    home = project_root() / ".lpbot" / "test-devnet"
    home.mkdir(parents=True, exist_ok=True)
    proc = anvil.start(log_path=home / "anvil.log")
    try:
        w3 = connect(proc.url)
        manifest, _cached = load_or_deploy(w3, proc.url, home)
        yield Devnet(w3=w3, manifest=manifest, url=proc.url)
    finally:
        proc.stop()


@contextmanager
def shaped_devnet(shape: str) -> Iterator[Devnet]:
    """A devnet shaped like a real chain (``lpbot devnet up --shape``), seeded from the cache
    the test devnet keeps (one state per shape)."""
    home = project_root() / ".lpbot" / "test-devnet"
    home.mkdir(parents=True, exist_ok=True)
    proc = anvil.start(log_path=home / f"anvil-{shape}.log", chain_id=anvil_chain_id(shape))
    try:
        w3 = connect(proc.url)
        manifest, _cached = load_or_deploy(w3, proc.url, home, shape)
        yield Devnet(w3=w3, manifest=manifest, url=proc.url, pid=proc.process.pid)
    finally:
        proc.stop()


@pytest.fixture
def chain(devnet: Devnet) -> Iterator[Devnet]:
    """The session devnet, reverted to its state before the test when the test ends."""
    snap = devnet.snapshot()
    try:
        yield devnet
    finally:
        devnet.revert(snap)


@pytest.fixture
def tmp_home(tmp_path: Path) -> Path:
    return tmp_path / "lpbot-home"
