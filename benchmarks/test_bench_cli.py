"""Start-up of the command line, as a person waits for it: a new process each round.

Targets (2-core machine): ``lpbot --help`` and ``lpbot status`` (a configuration with one
position, a migrated database) under 0.5 s from ``exec`` to exit. The benchmark reports wall
time; the assertion is on the process's CPU time (user + system), which is what the wall time
is on an idle machine and what it stays when other jobs share the cores. A command's family is
imported only when it runs, so neither loads web3, Alembic, numpy or the exact core. Run with
``make bench``.
"""

from __future__ import annotations

import resource
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


CPU: list[float] = []


def _lpbot(*argv: str) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "lpbot", *argv], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def _median_cpu() -> float:
    runs = sorted(CPU)
    CPU.clear()
    return runs[len(runs) // 2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    from lpbot.store import migrate
    from lpbot.store.session import make_engine

    path = tmp_path / "lpbot.toml"
    path.write_text(CONFIG.format(data=tmp_path))
    migrate.upgrade(make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}"))
    return path


def test_help_starts_fast(benchmark: BenchmarkFixture) -> None:
    CPU.clear()
    benchmark.pedantic(_lpbot, args=("--help",), rounds=10, warmup_rounds=0)
    cpu = _median_cpu()
    benchmark.extra_info["cpu_seconds_median"] = cpu
    assert cpu < TARGET_SECONDS


def test_status_starts_fast(benchmark: BenchmarkFixture, config: Path) -> None:
    CPU.clear()
    benchmark.pedantic(_lpbot, args=("--config", str(config), "status"), rounds=10, warmup_rounds=0)
    cpu = _median_cpu()
    benchmark.extra_info["cpu_seconds_median"] = cpu
    assert cpu < TARGET_SECONDS
