"""The crash harness in ``make test``: one ``lpbot run`` SIGKILLed at each state the issue names
(PLANNED during the dry-run, SIMULATED, SIGNED, SUBMITTED with its transaction mined),
restarted each time, then the chain and the store compared (``scripts/chaos.py``; ``make
chaos`` runs 30 rounds with random kills too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lpbot.chain.artifacts import project_root
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def test_one_kill_per_state_leaves_chain_and_store_in_agreement(
    devnet: Devnet, tmp_path: Path
) -> None:
    del devnet  # its deployed state is cached: the harness's own devnet loads it
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
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for i, state in enumerate(("dry-run", "simulated", "signed", "mined"), start=1):
        assert f"round {i}: {state}: killed at {state} (exit -9)" in lines, done.stdout
    assert "chain and store agree" in lines
