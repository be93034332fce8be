"""The crash harness in ``make test``: one ``lpbot run`` SIGKILLed at each state the issue names
(PLANNED during the dry-run, SIMULATED, SIGNED, SUBMITTED with its transaction mined),
restarted each time, then the chain and the store compared: nonce, executions, NFTs, the Safe's
balances to the wei, the hedge against its fills (``scripts/chaos.py``; ``make chaos`` runs 30
rounds with random kills too). On SQLite, and on PostgreSQL when ``LPBOT_TEST_POSTGRES_URL``
names a server (``scripts/ci-postgres.sh``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lpbot.chain.artifacts import project_root
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_one_kill_per_state_leaves_chain_and_store_in_agreement(
    devnet: Devnet, tmp_path: Path, database: str
) -> None:
    del devnet  # its deployed state is cached: the harness's own devnet loads it
    if database == "postgresql" and not os.environ.get("LPBOT_TEST_POSTGRES_URL"):
        pytest.skip("LPBOT_TEST_POSTGRES_URL is not set (scripts/ci-postgres.sh starts a server)")
    done = subprocess.run(
        [
            sys.executable,
            str(project_root() / "scripts" / "chaos.py"),
            "--rounds",
            "4",
            "--states",
            "dry-run,simulated,signed,mined",
            "--work",
            str(tmp_path / "chaos"),
            "--timeout",
            "40",
            "--database",
            database,
        ],
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for i, state in enumerate(("dry-run", "simulated", "signed", "mined"), start=1):
        assert f"round {i}: {state}: killed at {state} (exit -9)" in lines, done.stdout
    assert "chain and store agree" in lines
    # the balances and the hedge were compared on something: rebalances' flows, the hedge's fills
    summary = re.search(
        r"(\d+) recorded flows over (\d+) snapshots; (\d+) hedge orders", done.stdout
    )
    assert summary is not None, done.stdout
    flows, snapshots, orders = (int(x) for x in summary.groups())
    assert flows >= 1 and snapshots >= 2 and orders >= 1, done.stdout
