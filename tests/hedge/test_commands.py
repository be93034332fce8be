"""``lpbot hedge status|sync|flatten`` against a devnet of its own, with the paper venue."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.chain.artifacts import project_root
from lpbot.chain.reader import PoolReader
from lpbot.chain.rpc import connect
from lpbot.devnet import service
from lpbot.devnet.market import run_market
from lpbot.devnet.positions import open_position
from lpbot.hedge.commands import register
from lpbot.hedge.paper import PaperAccount
from lpbot.hedge.state import HedgeState
from tests.conftest import Devnet

pytestmark = pytest.mark.devnet

POOL = "USDC/WETH-500"


@pytest.fixture
def devnet_home(devnet: Devnet, tmp_path: Path) -> Iterator[Path]:
    """A second devnet under ``tmp_path``, started from the session's cached state."""
    home = tmp_path / "devnet"
    shutil.copytree(project_root() / ".lpbot" / "test-devnet" / "cache", home / "cache")
    service.up(home)
    try:
        yield home
    finally:
        service.down(home)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lpbot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_status_sync_dry_run_flatten_resume(devnet_home: Path, tmp_path: Path) -> None:
    record, manifest = service.require_running(devnet_home)
    w3 = connect(record.rpc_url)
    reader = PoolReader(
        w3,
        multicall=manifest.contracts["Multicall3"],
        tick_lens=manifest.contracts["TickLens"],
        position_manager=manifest.contracts["NonfungiblePositionManager"],
    )
    token_id, *_ = open_position(w3, manifest, reader, usdc=30_000, half_width_ticks=1000)
    home = tmp_path / "hedge"
    common = (
        "--pool",
        POOL,
        "--token-id",
        str(token_id),
        "--home",
        str(home),
        "--devnet-home",
        str(devnet_home),
        "--band",
        "0.2",
    )
    paper_file = home / "paper-ETH-USDT.json"
    state_file = home / f"hedge-paper-{manifest.chain_id}-{token_id}.json"

    def account() -> PaperAccount:
        return PaperAccount.model_validate_json(paper_file.read_text())

    def state() -> HedgeState:
        return HedgeState.model_validate_json(state_file.read_text())

    assert run("hedge", "status", *common) == 0
    assert account().state.orders == [] and account().spec.symbol == "ETH/USDT:USDT"

    assert run("hedge", "sync", "--dry-run", *common) == 0
    assert account().state.orders == [] and not state_file.exists()

    assert run("hedge", "sync", *common) == 0
    first = account().state
    assert len(first.orders) == 1 and first.size < -5  # about 10 WETH of delta, hedged
    assert state().step == 1 and state().ledger.size == first.size

    run_market(w3, manifest, manifest.pool(POOL), steps=3, vol=2.0, seed=5)
    assert run("hedge", "sync", *common) == 0
    again = account().state  # the same paper account, continued
    assert len(again.orders) == 2 and again.orders[0] == first.orders[0]
    assert again.settled_until_ms > first.settled_until_ms  # on the chain's clock

    assert run("hedge", "flatten", *common) == 0
    assert account().state.size == 0 and state().killed
    assert account().state.orders[-1].reduce_only

    assert run("hedge", "sync", *common) == 0  # the kill switch holds
    assert account().state.size == 0
    assert run("hedge", "sync", "--resume", *common) == 0
    assert account().state.size < 0 and not state().killed
    assert Decimal(0) < state().ledger.fees == account().state.fees_paid


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--max-leverage", "0"), ("--max-leverage", "200"), ("--band", "-1"), ("--band-pct", "-5")],
)
def test_a_bad_number_is_one_usage_line_before_anything_is_read(
    flag: str, value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["hedge", "sync", "--pool", POOL, "--token-id", "1", "--home", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        run(*argv, "--devnet-home", str(tmp_path / "none"), flag, value)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "must be" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
