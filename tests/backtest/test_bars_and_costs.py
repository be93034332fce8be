"""Bars from CSV (demeter-fetch minute, subgraph poolHourData), the vectorised helpers, costs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lpbot.backtest.bars import Bars, import_csv, load_bars, save_bars
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.costs import GasModel, HedgeBook, HedgeModel, StepSeries
from lpbot.backtest.vector import ewma_sum, run_bars
from lpbot.errors import ConfigError

DEMETER_HEADER = (
    "timestamp,netAmount0,netAmount1,closeTick,openTick,lowestTick,highestTick,"
    "inAmount0,inAmount1,currentLiquidity"
)
SUBGRAPH_HEADER = (
    "periodStartUnix,liquidity,sqrtPrice,token0Price,token1Price,tick,tvlUSD,volumeToken0,"
    "volumeToken1,volumeUSD,feesUSD,txCount,open,high,low,close"
)


def test_demeter_minute_bars(tmp_path: Path) -> None:
    path = tmp_path / "polygon-pool-2024-03-01.minute.csv"
    path.write_text(
        DEMETER_HEADER + "\n"
        "2024-03-01 00:00:00,-5000000,1500000000000000,200010,200000,199990,200020,"
        "2000000,3000000000000000,1000000000000000000\n"
        "2024-03-01 00:01:00,0,0,200010,200010,200010,200010,0,0,1000000000000000000\n"
        "2024-03-01 00:03:00,7000000,-2100000000000000,199995,200010,199990,200010,"
        "7000000,0,1100000000000000000\n"
    )
    bars = import_csv([path], fee=500, decimals0=6, decimals1=18)
    assert bars.interval == 60 and len(bars) == 4  # the missing minute is filled
    assert int(bars.ts[0]) == 1709251200
    assert bars.close[0] == pytest.approx(1.0001**200010)
    assert bars.high[0] == pytest.approx(1.0001**200020)
    assert bars.fee0[0] == pytest.approx(2_000_000 * 500 / 1e6)
    assert bars.fee1[0] == pytest.approx(3e15 * 500 / 1e6)
    assert bars.fee0[2] == 0 and bars.close[2] == bars.close[1]  # filled flat, no volume
    assert bars.liquidity[3] == 1.1e18


def test_subgraph_hour_bars_invert_token0_prices(tmp_path: Path) -> None:
    sqrt = int(math.sqrt(4e8) * 2**96)  # token0 USDC (6), token1 WETH (18): 2500 USDC a WETH
    path = tmp_path / "poolHourData.csv"
    path.write_text(
        SUBGRAPH_HEADER + "\n"
        f"1700000000,5000000000000000000,{sqrt},2500,0.0004,-198000,1e7,1000000,400,2e6,1000,"
        "120,2480,2520,2450,2500\n"
        f"1700007200,5100000000000000000,{sqrt},2500,0.0004,-198000,1e7,200000,80,4e5,200,"
        "30,2500,2510,2490,2500\n"
    )
    bars = import_csv([path], fee=500, decimals0=6, decimals1=18, fee_protocol=4)
    assert bars.interval == 3600 and len(bars) == 3
    assert bars.close[0] == pytest.approx(1 / 2500 * 1e12, rel=1e-9)  # raw WETH per USDC unit
    # token0Price high/low trade places when inverted into token1 per token0
    assert bars.high[0] == pytest.approx(1e12 / 2450)
    assert bars.low[0] == pytest.approx(1e12 / 2520)
    lp_rate = 500 / 1e6 * (1 - 1 / 4)
    assert bars.fee0[0] == pytest.approx(1_000_000 * 1e6 / 2 * lp_rate)
    assert bars.fee1[0] == pytest.approx(400 * 1e18 / 2 * lp_rate)
    assert bars.fee0[1] == 0.0


def test_unknown_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError):
        import_csv([path], fee=500, decimals0=6, decimals1=18)


def _synthetic_bars(n: int, seed: int = 1) -> Bars:
    """A GBM WETH/USDC-like pool (token0 WETH 18, token1 USDC 6) with lognormal volume."""
    rng = np.random.default_rng(seed)
    sigma = 0.7 * math.sqrt(60 / (365 * 86_400))
    close = 3000e-12 * np.exp(np.cumsum(rng.normal(-0.5 * sigma**2, sigma, n)))
    opened = np.concatenate(([close[0]], close[:-1]))
    wiggle = np.exp(np.abs(rng.normal(0.0, sigma / 2, n)))
    volume_usd = rng.lognormal(math.log(20_000), 1.0, n)
    v0, v1 = volume_usd / 2 / 3000 * 1e18, volume_usd / 2 * 1e6
    ts = 1_700_000_040 + 60 * np.arange(n, dtype=np.int64)
    return Bars(
        ts, 60, opened, np.maximum(opened, close) * wiggle, np.minimum(opened, close) / wiggle,
        close, np.full(n, 2e18), v0 * 5e-4, v1 * 5e-4, v0, v1, 500, 10, 18, 6, "WETH", "USDC",
        "synthetic",
    )  # fmt: skip


def test_bars_round_trip_through_the_store_and_a_week_runs(tmp_path: Path) -> None:
    bars = _synthetic_bars(7 * 1440)
    save_bars(bars, tmp_path / "b.sqlite")
    again = load_bars(tmp_path / "b.sqlite")
    assert np.array_equal(again.ts, bars.ts) and np.allclose(again.fee1, bars.fee1)
    config = BacktestConfig(
        strategy=StrategyConfig(kind="vol_band", params={"k": 2.0}), capital_usd=50_000.0,
        hedge_ratio=1.0, funding_rate_8h=0.0001,
    )  # fmt: skip
    result = run_bars(again, config)
    b = result.breakdown
    assert b.final_usd - b.initial_usd == pytest.approx(b.total, abs=1e-6)
    assert result.metrics.decisions >= 1 and b.fees > 0
    assert b.funding > 0  # shorts receive a positive funding rate


def test_ewma_sum_matches_the_direct_sum() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(1, 120, 3000))
    x = rng.normal(size=3000)
    h = 500.0
    fast = ewma_sum(t, x, h)
    direct = [float(np.sum(x[: i + 1] * np.exp2(-(t[i] - t[: i + 1]) / h))) for i in (0, 10, 2999)]
    assert fast[[0, 10, 2999]] == pytest.approx(direct, rel=1e-9, abs=1e-12)


def test_gas_per_action_per_chain() -> None:
    eth = GasModel("ethereum")
    assert eth.units_for("rebalance", True) == 160_000 + 130_000 + 450_000 + 150_000
    assert eth.cost_usd("compound", False, 0, 3000.0) == pytest.approx(310_000 * 10e-9 * 3000)
    assert GasModel("arbitrum").cost_usd("rebalance", True, 0, 3000.0) < 0.2
    series = GasModel("ethereum", gas_price_series=StepSeries((0.0, 100.0), (5.0, 50.0)))
    assert series.price_gwei(99) == 5.0 and series.price_gwei(100) == 50.0
    with pytest.raises(ValueError):
        GasModel("solana")


def test_hedge_marks_funds_and_pays_fees() -> None:
    book = HedgeBook(HedgeModel(ratio=1.0, band=0.05, fee_bps=5, slippage_bps=0, rate_per_8h=0.001))
    book.step(0, 2000.0, 2.0)  # short 2 at 2000: pays 5 bps of 4000
    assert book.size == -2.0 and book.fees_usd == pytest.approx(2.0)
    book.step(28_800, 1900.0, 2.05)  # price fell 100: +200; 8 h of 0.1% on 4000 received
    assert book.pnl_usd == pytest.approx(200.0)
    assert book.funding_usd == pytest.approx(4.0)
    assert book.trades == 1  # 2.05 is inside the 5% band
