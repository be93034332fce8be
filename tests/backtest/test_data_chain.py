"""Costs are those of the chain the data comes from, unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.backtest.events import PoolMeta
from lpbot.backtest.store import EventStore
from lpbot.backtest.synthetic import synthetic_minutes, write_demeter_csv
from lpbot.cli import main

POOL = "0xC6962004f452bE9203591991D15f6b388e09E8D0"


def _import(tmp_path: Path, chain: str) -> Path:
    history = synthetic_minutes(2, seed=5)
    paths = write_demeter_csv(history, tmp_path / chain, chain=chain, pool=POOL)
    out = tmp_path / f"{chain}.sqlite"
    argv = ["data", "import-csv", *map(str, paths), "--out", str(out), "--fee", "500"]
    assert main([*argv, "--decimals0", "6", "--decimals1", "18", "--symbol0", "USDC",
                 "--symbol1", "WETH"]) == 0  # fmt: skip
    return out


def test_bars_from_arbitrum_files_pay_arbitrum_gas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _import(tmp_path, "arbitrum")
    capsys.readouterr()
    assert main(["backtest", "run", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "0.02 gwei, typical for arbitrum" in out  # was Ethereum's 10 gwei, 500x the cost


def test_a_chain_other_than_the_datas_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _import(tmp_path, "arbitrum")
    capsys.readouterr()
    assert main(["backtest", "run", "--data", str(data), "--chain", "ethereum"]) == 2
    err = capsys.readouterr().err
    assert "is from arbitrum" in err and len(err.strip().splitlines()) == 1


def test_a_fetched_dataset_of_an_unknown_chain_needs_the_chain_and_gas_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _import(tmp_path, "ethereum")
    with EventStore(data) as store:  # as `lpbot data fetch` records a Base pool
        store.set_meta(PoolMeta(8453, POOL, "0x" + "11" * 20, "0x" + "22" * 20, 6, 18, 500, 10, 1))
    capsys.readouterr()
    assert main(["backtest", "run", "--data", str(data)]) == 2
    assert "chain 8453" in capsys.readouterr().err
    argv = ["backtest", "run", "--data", str(data), "--chain", "ethereum"]
    assert main([*argv, "--gas-price-gwei", "0.01"]) == 0
