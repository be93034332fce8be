"""Start-up of the command line, as a person waits for it: a new process each round.

Targets (2-core machine): ``lpbot --help`` and ``lpbot status`` (a configuration with one
position, a migrated database with a few rows) under 0.5 s, wall clock from ``exec`` to exit.
A command's family is imported only when it runs, so neither loads web3, Alembic or the
exact core. Run with ``make bench``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

TARGET_SECONDS = 0.5

CONFIG = """
version = 1
data_dir = "{data}"
[chains.devnet]
manifest = "{data}/manifest.json"
[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = 21
[positions.strategy]
kind = "vol_band"
[hedge]
exchange = "paper"
symbol = "ETH/USDT:USDT"
band_pct = 5.0
"""


def _lpbot(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "lpbot", *argv], check=True, capture_output=True)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    from lpbot.store import migrate
    from lpbot.store.session import make_engine

    path = tmp_path / "lpbot.toml"
    path.write_text(CONFIG.format(data=tmp_path))
    migrate.upgrade(make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}"))
    return path


def test_help_starts_fast(benchmark: BenchmarkFixture) -> None:
    benchmark.pedantic(_lpbot, args=("--help",), rounds=10, warmup_rounds=1)
    assert benchmark.stats.stats.median < TARGET_SECONDS


def test_status_starts_fast(benchmark: BenchmarkFixture, config: Path) -> None:
    benchmark.pedantic(_lpbot, args=("--config", str(config), "status"), rounds=10, warmup_rounds=1)
    assert benchmark.stats.stats.median < TARGET_SECONDS
