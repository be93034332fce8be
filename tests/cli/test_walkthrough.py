"""The README's path from the demo to one's own position, run as the script the README quotes
(``scripts/walkthrough.sh``): if a step in the README stops working, this test fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lpbot.chain.artifacts import project_root
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet


def test_readme_walkthrough_runs(devnet: Devnet, tmp_path: Path) -> None:
    root = project_root()
    # the devnet's deployed state, as the session's devnet cached it: `devnet up` loads it
    shutil.copytree(root / ".lpbot" / "test-devnet" / "cache", tmp_path / ".lpbot/devnet/cache")
    script = root / "scripts" / "walkthrough.sh"
    readme = (root / "README.md").read_text()
    assert "scripts/walkthrough.sh" in readme
    lpbot = Path(sys.executable).with_name("lpbot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LPBOT_")}
    env["LPBOT"] = str(lpbot) if lpbot.exists() else f"{sys.executable} -m lpbot"
    proc = subprocess.run(
        ["bash", str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "rebalance 1: CONFIRMED" in out
    assert "position eth-usdc is now NFT #" in out
    assert "monitor          eth-usdc" in out
    assert "hedge_sync       eth-usdc" in out  # [hedge] runs as a job of `lpbot run`
    # the new bot key is named as not the module's operator (the owners' setOperator fixes it)
    assert "the module's operator is" in out and "holds" in out
    status = out[out.index("lpbot status at") :]
    # `lpbot run --seconds 8` has stopped: every configured job is listed, none scheduled
    assert "daemon: not running (`lpbot run`)" in status
    for job in ("monitor", "rebalance_check", "hedge_sync"):
        line = next(x for x in status.splitlines() if x.startswith(f"{job}:eth-usdc"))
        assert "not started (`lpbot run`)" in line, line
    assert proc.stdout.rstrip().endswith("== done")
    assert "Traceback" not in out and "Error" not in proc.stderr
