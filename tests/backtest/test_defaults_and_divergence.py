"""Honest defaults (quote token, gas, ETH price, slippage from the data) and engines that agree
or say why, failing the run when they disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpbot.backtest.config import BacktestConfig
from lpbot.backtest.costs import TYPICAL_NATIVE_USD
from lpbot.backtest.dataset import Dataset
from lpbot.backtest.store import data_series
from lpbot.backtest.validate import compare_engines
from lpbot.backtest.vector import run_bars
from lpbot.cli import backtest as commands
from lpbot.cli import main
from lpbot.errors import ConfigError
from tests.backtest.test_bars_and_costs import _synthetic_bars

SIGMA = 1e-4  # per sqrt(second): ~0.35 bps over a 12 s block


def test_the_quote_token_is_the_stablecoin_whichever_side_it_is() -> None:
    c = BacktestConfig().resolve(symbol0="USDC", symbol1="WETH", sigma_per_sqrt_second=SIGMA)
    assert c.quote_token == 0 and "USDC" in c.sources["quote_token"]
    c = BacktestConfig().resolve(symbol0="WETH", symbol1="USDT", sigma_per_sqrt_second=SIGMA)
    assert c.quote_token == 1
    with pytest.raises(ConfigError, match="--quote-token"):
        BacktestConfig().resolve(symbol0="WBTC", symbol1="WETH", sigma_per_sqrt_second=SIGMA)
    given = BacktestConfig(quote_token=1, quote_usd=3000.0)
    assert given.resolve(symbol0="WBTC", symbol1="WETH", sigma_per_sqrt_second=SIGMA).quote_token


def test_no_cost_is_zero_unless_asked() -> None:
    c = BacktestConfig().resolve(symbol0="WETH", symbol1="USDC", sigma_per_sqrt_second=SIGMA)
    assert c.gas_price_gwei == 10.0 and "typical for ethereum" in c.sources["gas_price"]
    assert c.native_usd is None and "WETH" in c.sources["native_usd"]  # priced by the pool
    assert c.slippage_bps is not None and c.slippage_bps >= 0.5
    assert "12 s block" in c.sources["slippage"]
    with pytest.raises(ConfigError, match="--no-costs"):
        BacktestConfig(gas_price_gwei=0.0).resolve(
            symbol0="WETH", symbol1="USDC", sigma_per_sqrt_second=SIGMA
        )
    off = BacktestConfig(no_costs=True).resolve(
        symbol0="WETH", symbol1="USDC", sigma_per_sqrt_second=SIGMA
    )
    assert (off.gas_price_gwei, off.slippage_bps, off.hedge_fee_bps) == (0.0, 0.0, 0.0)
    assert "--no-costs" in off.sources["costs"]
    # no WETH in the pool: gas is priced at a typical ETH price, said so
    btc = BacktestConfig(chain="arbitrum").resolve(
        symbol0="WBTC", symbol1="USDC", sigma_per_sqrt_second=SIGMA
    )
    assert btc.native_usd == TYPICAL_NATIVE_USD and "typical ETH" in btc.sources["native_usd"]
    assert btc.gas_price_gwei == 0.02


def test_a_default_run_pays_gas_and_slippage_and_says_where_they_came_from() -> None:
    result = run_bars(_synthetic_bars(3 * 1440), BacktestConfig())
    b = result.breakdown
    assert b.gas > 0 and b.slippage > 0  # were 0 by default
    assert set(result.notes["defaults"]) == {"quote_token", "gas_price", "native_usd", "slippage"}


def test_series_kept_with_imported_bars_price_the_gas(tmp_path: Path) -> None:
    from tests.backtest.test_exact_ticks import MID, _hourly_demeter_csv

    csv = _hourly_demeter_csv(tmp_path / "p.minute.csv", [MID] * 30)
    gas = tmp_path / "gas.csv"
    gas.write_text("timestamp,gwei\n1704067200,25\n1704100000,40\n")
    out = tmp_path / "bars.sqlite"
    code = main(["data", "import-csv", str(csv), "--out", str(out), "--fee", "500",
                 "--decimals0", "6", "--decimals1", "18", "--symbol0", "USDC", "--symbol1",
                 "WETH", "--gas-price-csv", str(gas)])  # fmt: skip
    assert code == 0
    assert data_series(out)["gas_price_series"] == ((1704067200.0, 25.0), (1704100000.0, 40.0))
    config = commands._config(commands.parse(commands.run, ["--data", str(out)]))
    assert config.gas_price_series == ((1704067200.0, 25.0), (1704100000.0, 40.0))


@pytest.mark.devnet
def test_the_default_configuration_agrees_on_devnet_data(market: Dataset) -> None:
    """The devnet gap: USDC is token0 there, and the old default priced token1 (WETH) at $1,
    so $10,000 became 10,000 WETH, many times the pool's liquidity; bars $8.49 of fees against
    $21.34 exact."""
    exact, _bars, diff = compare_engines(market, BacktestConfig())
    assert exact.config["quote_token"] == 0
    assert diff.position_share < 0.01
    assert diff.within_tolerance and diff.why == ""


@pytest.mark.devnet
def test_disagreeing_engines_say_why_and_fail_the_run(
    market: Dataset, market_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = BacktestConfig(capital_usd=50_000_000.0)
    _exact, _bars, diff = compare_engines(market, big)
    assert not diff.within_tolerance
    assert diff.position_share > 0.1 and "in-range liquidity" in diff.why
    argv = ["backtest", "run", "--data", str(market_path), "--engine", "both",
            "--capital-usd", "50000000", "--json-out", str(tmp_path / "r.json")]  # fmt: skip
    assert main(argv) == 2  # refused, after writing the report
    err = capsys.readouterr()
    assert "why: the position reaches" in err.out and "--allow-divergence" in err.err
    assert (tmp_path / "r.json").exists()
    assert main([*argv, "--allow-divergence"]) == 0


def test_bad_input_gets_one_line_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.sqlite"
    assert main(["backtest", "run", "--data", str(missing)]) == 2
    assert "no such dataset" in capsys.readouterr().err and not missing.exists()
    data = tmp_path / "b.sqlite"
    from lpbot.backtest.bars import save_bars

    save_bars(_synthetic_bars(1440), data)
    argv = ["backtest", "run", "--data", str(data)]
    assert main([*argv, "--slippage-bps", "-1", "--capital-usd", "-5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "capital_usd: must be > 0" in err and "slippage_bps" in err
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    assert main([*argv, "--backtest-config", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"lpbot: --backtest-config {bad}")
    bad.write_text('{"capital_usd": 5000, "nonsense": 1}')
    assert main([*argv, "--backtest-config", str(bad)]) == 2
    assert "unknown setting 'nonsense'" in capsys.readouterr().err


def test_a_resolved_configuration_resolves_again_after_an_override() -> None:
    """A sweep over chains from a resolved base must not keep the first chain's gas price."""
    eth = BacktestConfig().resolve(symbol0="WETH", symbol1="USDC", sigma_per_sqrt_second=SIGMA)
    arb = eth.with_overrides({"chain": "arbitrum"})
    assert arb.sources == {} and arb.gas_price_gwei is None
    again = arb.resolve(symbol0="WETH", symbol1="USDC", sigma_per_sqrt_second=SIGMA)
    assert again.gas_price_gwei == 0.02
    off = BacktestConfig(no_costs=True, gas_price_series=((0.0, 5.0),)).resolve(
        symbol0="WETH", symbol1="USDC", sigma_per_sqrt_second=SIGMA
    )
    on = off.with_overrides({"no_costs": False})
    assert on.gas_price_series == ((0.0, 5.0),) and on.hedge_fee_bps == 5.0


def test_a_bad_series_file_stops_the_import_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.backtest.test_exact_ticks import MID, _hourly_demeter_csv

    csv = _hourly_demeter_csv(tmp_path / "p.minute.csv", [MID] * 3)
    out = tmp_path / "bars.sqlite"
    base = ["data", "import-csv", str(csv), "--out", str(out), "--fee", "500",
            "--decimals0", "6", "--decimals1", "18"]  # fmt: skip
    assert main([*base, "--gas-price-csv", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err and not out.exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,gwei\n")
    assert main([*base, "--native-usd-csv", str(empty)]) == 2
    assert "no (timestamp, value) rows" in capsys.readouterr().err and not out.exists()
