"""A bar imported at tick t is seen at tick t: on import, in the snapshot and at range edges."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lpbot.backtest.bars import import_csv, load_bars, save_bars, tick_price
from lpbot.backtest.config import BacktestConfig, StrategyConfig
from lpbot.backtest.synthetic import DEMETER_HEADER
from lpbot.backtest.vector import _Engine, run_bars
from lpbot.uniswap.constants import Q96
from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio

START = 1_704_067_200  # 2024-01-01 00:00 UTC
# tick 200,000 +- 100: every one of these reads back one low through 1.0001 ** t
LOWER, MID, UPPER = 199_900, 200_000, 200_100


def _hourly_demeter_csv(path: Path, closes: list[int]) -> Path:
    """One minute row at the end of each hour closing at ``closes[h]`` (flat minutes between)."""
    lines = [DEMETER_HEADER]
    for h, tick in enumerate(closes):
        stamp = np.datetime64(START + 3600 * h + 3540, "s").astype(str).replace("T", " ")
        lines.append(f"{stamp},1000000,0,{tick},{tick},{tick},{tick},1000000,0,{10**18}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_old_float_price_reads_one_tick_low() -> None:
    """The defect: ``1.0001 ** t`` through a truncating square root lands on ``t - 1``."""
    for t in (LOWER, MID, UPPER):
        old = int(math.sqrt(1.0001**t) * Q96)
        assert get_tick_at_sqrt_ratio(old) == t - 1
        assert tick_price(t) == pytest.approx((get_sqrt_ratio_at_tick(t) / Q96) ** 2, rel=0)


def test_import_keeps_the_tick_and_the_store_round_trips_it(tmp_path: Path) -> None:
    csv = _hourly_demeter_csv(tmp_path / "p.minute.csv", [MID, LOWER, UPPER])
    bars = import_csv([csv], fee=500, decimals0=6, decimals1=18)
    assert bars.tick is not None
    hour_ends = np.flatnonzero((bars.end % 3600) == 0)
    assert bars.tick[hour_ends].tolist() == [MID, LOWER, UPPER]
    save_bars(bars, tmp_path / "b.sqlite")
    again = load_bars(tmp_path / "b.sqlite")
    assert again.tick is not None and np.array_equal(again.tick, bars.tick)


def test_a_bar_at_tick_t_is_seen_at_tick_t_including_at_range_edges(tmp_path: Path) -> None:
    # open at MID with a +-100-tick range [LOWER, UPPER); then an hour at the lower edge (in
    # range: no rebalance), an hour just below the upper edge, an hour at the upper edge (out of
    # range: rebalance around it)
    closes = [MID, LOWER, UPPER - 1, UPPER, UPPER]
    bars = import_csv(
        [_hourly_demeter_csv(tmp_path / "p.minute.csv", closes)],
        fee=500, decimals0=6, decimals1=18,
    )  # fmt: skip
    config = BacktestConfig(
        strategy=StrategyConfig(kind="fixed", params={"half_width_ticks": 100}),
        policy={"edge_pct": None, "vol_ratio_trigger": None, "min_gain_over_cost": 0.0,
            "rebalance_rule": "fees"},
        quote_token=0, history_step_seconds=60,
    )  # fmt: skip
    engine = _Engine(bars, config)
    for h, t in enumerate(closes):
        j = 60 * h  # the hour's last minute, closing at START + 3600 * (h + 1)
        snap, sqrt, tick = engine._snapshot(j)
        assert tick == t and snap.tick == t and get_tick_at_sqrt_ratio(sqrt) == t
    result = run_bars(bars, config)
    opened, *rest = result.actions
    assert (opened.tick_lower, opened.tick_upper) == (LOWER, UPPER)
    assert [(a.kind, a.timestamp, a.tick_lower, a.tick_upper) for a in rest] == [
        ("rebalance", START + 4 * 3600, UPPER - 100, UPPER + 100)
    ]
    # in range at the lower edge and one tick below the upper edge, out at the upper edge
    in_range = dict(zip(result.series.t.astype(int).tolist(), result.series.in_range, strict=True))
    assert [in_range[START + (h + 1) * 3600] for h in (1, 2)] == [1.0, 1.0]
