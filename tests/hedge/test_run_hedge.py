"""``lpbot run`` with a ``[hedge]`` section runs the hedge job: a real process on the devnet."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.chain.reader import PoolReader
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.market import run_market
from lpbot.hedge.delta import lp_delta
from lpbot.signing.local import write_keystore
from tests.conftest import Devnet
from tests.jobs.conftest import CONFIG, HOT_QUORUM_SIGNERS

pytestmark = pytest.mark.devnet

HEDGE = """
[hedge]
exchange = "paper"
symbol = "ETH/USDT:USDT"
band_abs = "0.05"
band_pct = 5.0
"""


def test_lpbot_run_hedges_the_configured_position(chain: Devnet, tmp_path: Path) -> None:
    m = chain.manifest
    data = tmp_path / "data"
    env = dict(os.environ)
    for name, index in (("bot", 8), ("owner1", 9), ("owner2", 10)):
        write_keystore(data / "keys" / f"{name}.json", bytes(dev_signer(index)._account.key),
                       f"pw-{name}")  # fmt: skip
        env[f"LPBOT_TEST_{name.upper()}_PW"] = f"pw-{name}"
    manifest_path = tmp_path / "manifest.json"
    m.write(manifest_path)
    owners = [dev_signer(i).address for i in (9, 10, 11)]
    config = tmp_path / "lpbot.toml"
    signers = HOT_QUORUM_SIGNERS.format(keys=data / "keys", o1=owners[0], o2=owners[1],
                                        o3=owners[2])  # fmt: skip
    text = CONFIG.format(data=data, manifest=manifest_path, token_id=m.safe_position,
                         signers=signers)  # fmt: skip
    config.write_text(text.replace("[schedule]", HEDGE + "[schedule]"))
    env["LPBOT_CONFIG"] = str(config)
    run_market(chain.w3, m, m.pool("USDC/WETH-500"), steps=2, vol=0.5, seed=3)  # fees to count
    run = subprocess.run(
        [sys.executable, "-m", "lpbot", "run", "--seconds", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "hedge_sync" in run.stdout, run.stdout
    (state_file,) = (data / "hedge").glob("hedge-paper-*.json")
    (paper_file,) = (data / "hedge").glob("paper-*.json")
    state = json.loads(state_file.read_text())
    paper = json.loads(paper_file.read_text())
    assert Decimal(state["ledger"]["size"]) < 0  # a short against the position's WETH
    assert Decimal(state["ledger"]["size"]) == Decimal(paper["state"]["size"])
    assert state["step"] == 1 and state["pending"] is None
    # the monitor (and so `lpbot status`) shows the LP delta the hedge trades on: with fees
    with sqlite3.connect(data / "lpbot.db") as db:
        block, delta = db.execute(
            "SELECT block_number, delta FROM position_snapshots ORDER BY id DESC LIMIT 1"
        ).fetchone()
    reader = PoolReader(
        chain.w3,
        multicall=m.contracts["Multicall3"],
        tick_lens=m.contracts["TickLens"],
        position_manager=m.contracts["NonfungiblePositionManager"],
    )
    assert m.safe_position is not None
    snap = reader.fetch_pool_state(
        m.pool("USDC/WETH-500").address, token_ids=[m.safe_position], block=block
    )
    assert snap.uncollected_fees(m.safe_position)[1] > 0
    with_fees, without = (
        lp_delta(snap, m.safe_position, decimals0=6, decimals1=18, risky=1, include_fees=fees)
        for fees in (True, False)
    )
    assert delta == float(with_fees) != float(without)
