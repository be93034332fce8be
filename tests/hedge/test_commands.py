"""``lpbot hedge status|sync|flatten`` against a devnet of its own, with the paper venue."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from lpbot.chain.artifacts import project_root
from lpbot.chain.reader import PoolReader, PoolSnapshot
from lpbot.chain.rpc import connect
from lpbot.cli import main
from lpbot.config import HedgeConfig as HedgeSection
from lpbot.devnet import service
from lpbot.devnet.market import run_market
from lpbot.devnet.positions import open_position
from lpbot.hedge.delta import lp_delta
from lpbot.hedge.paper import PaperAccount
from lpbot.hedge.state import HedgeState
from lpbot.hedge.wiring import build_hedge_runner, hedge_files
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
    """``lpbot ARGV``; ``--devnet-home D`` stands for a configuration of that devnet's chain."""
    args = list(argv)
    if "--devnet-home" in args:
        i = args.index("--devnet-home")
        manifest = Path(args[i + 1]) / "manifest.json"
        config = Path(tempfile.mkdtemp()) / "lpbot.toml"
        config.write_text(f'version = 1\n[chains.devnet]\nmanifest = "{manifest}"\n')
        args[i : i + 2] = ["--config", str(config)]
    args = ["--state-dir" if a == "--home" else a for a in args]
    return main(args)


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
        "--state-dir",
        str(home),
        "--devnet-home",
        str(devnet_home),
        "--band",
        "0.2",
    )
    npm = manifest.contracts["NonfungiblePositionManager"]
    files = hedge_files(home, "paper", f"{manifest.chain_id}:{npm}:{token_id}")
    paper_file, state_file = files.paper, files.state

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
    argv = ["hedge", "sync", "--pool", POOL, "--token-id", "1", "--state-dir", str(tmp_path)]
    assert run(*argv, "--config", str(tmp_path / "none.toml"), flag, value) == 2
    err = capsys.readouterr().err
    assert flag in err and "must be" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_flatten_from_the_cli_stops_the_daemon_s_hedge_and_is_not_overwritten(
    devnet_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LPBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no lpbot.toml here: the CLI's defaults
    record, manifest = service.require_running(devnet_home)
    w3 = connect(record.rpc_url)
    npm = manifest.contracts["NonfungiblePositionManager"]
    reader = PoolReader(
        w3,
        multicall=manifest.contracts["Multicall3"],
        tick_lens=manifest.contracts["TickLens"],
        position_manager=npm,
    )
    token_id, *_ = open_position(w3, manifest, reader, usdc=30_000, half_width_ticks=1000)
    pool = manifest.pool(POOL)
    data = tmp_path / "data"
    # the daemon's hedge job, as `lpbot run` builds it
    daemon = build_hedge_runner(
        HedgeSection(exchange="paper", symbol="ETH/USDT:USDT", band_abs=Decimal("0.2")),
        data_dir=data,
        position_id=f"{manifest.chain_id}:{npm}:{token_id}",
        token_id=token_id,
        decimals=(6, 18),
        risky=1,
        now_ms=int(w3.eth.get_block("latest")["timestamp"]) * 1000,
    )
    cli = ("--pool", POOL, "--token-id", str(token_id), "--home", str(data / "hedge"),
           "--devnet-home", str(devnet_home), "--band", "0.2")  # fmt: skip

    def snapshot() -> PoolSnapshot:
        return reader.fetch_pool_state(pool.address, token_ids=[token_id])

    def account() -> PaperAccount:
        return PaperAccount.model_validate_json(daemon.files.paper.read_text())

    def state() -> HedgeState:
        return HedgeState.model_validate_json(daemon.files.state.read_text())

    assert daemon.sync(snapshot()).orders
    short = account().state.size
    assert short < -5 and state().ledger.size == short
    capsys.readouterr()
    assert run("hedge", "status", *cli) == 0  # the daemon's hedge, not a new one
    assert f"{short:.4f}" in capsys.readouterr().out
    assert sorted(p.name for p in (data / "hedge").glob("*.json")) == sorted(
        [daemon.files.paper.name, daemon.files.state.name]
    )

    # a flatten asked while the daemon's sync holds the hedge waits for it, then wins
    run_market(w3, manifest, pool, steps=3, vol=2.0, seed=5)
    flattened: list[int] = []
    with daemon.session() as controller:
        flatten = threading.Thread(target=lambda: flattened.append(run("hedge", "flatten", *cli)))
        flatten.start()
        flatten.join(timeout=1.0)
        assert flatten.is_alive()  # blocked on the hedge's lock
        delta = lp_delta(
            snapshot(), token_id, decimals0=6, decimals1=18, risky=1, include_fees=True
        )
        assert controller.sync(delta).orders  # the daemon re-hedges after the market moved
    flatten.join(timeout=60)
    assert flattened == [0]
    assert account().state.size == 0 and state().killed and state().ledger.size == 0

    # the daemon's next runs see the kill switch: nothing re-opened, nothing overwritten
    for _ in range(2):
        result = daemon.sync(snapshot())
        assert result.orders == () and "kill switch" in str(result.decision)
    assert account().state.size == 0 and state().killed
    assert run("hedge", "sync", "--resume", *cli) == 0  # resumed from the CLI: the daemon hedges
    assert not state().killed and account().state.size < 0
    assert daemon.sync(snapshot()).hedge == account().state.size
