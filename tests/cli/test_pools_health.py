"""``lpbot pools health``: the configured pools ranked by health on the devnet, in text and
JSON, against the rule in ``[health]``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lpbot.cli import main
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

CONFIG = """
version = 1
data_dir = "{data}"
[chains.devnet]
manifest = "{manifest}"
[[positions]]
name = "eth-usdc"
chain = "devnet"
pool = "USDC/WETH-500"
token_id = {token_id}
[positions.strategy]
kind = "fixed"
half_width_ticks = 600
{health}
"""


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    yield run


def write_config(chain: Devnet, tmp_path: Path, health: str = "") -> Path:
    manifest = tmp_path / "manifest.json"
    chain.manifest.write(manifest)
    path = tmp_path / "lpbot.toml"
    path.write_text(
        CONFIG.format(
            data=tmp_path / "data",
            manifest=manifest,
            token_id=chain.manifest.safe_position,
            health=health,
        )
    )
    return path


def test_pools_health_ranks_the_devnet_pools(chain: Devnet, tmp_path: Path, cli: Any) -> None:
    config = write_config(chain, tmp_path)
    run = cli("pools", "health", "--config", str(config), "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    pools = data["pools"]
    assert pools[0]["pool"] == "USDC/WETH-500"
    assert len(pools) == len(chain.manifest.pools)
