"""lpbot's bars engine beside zelos-demeter on one synthetic dataset in demeter-fetch's layout.

``make compare-demeter`` (``python -m lpbot.backtest.compare_demeter``) writes a synthetic pool
history (``backtest.synthetic``) as demeter-fetch minute CSVs, then runs two strategies in both
backtesters, each run in its own process (wall time and peak memory are that process's):

- ``fixed``: one range (+-20% by default) around the first hour's price, held to the end;
- ``recentre``: checked every hour; when the last close is out of range, the position is
  withdrawn and reopened (+-5% by default) around it.

lpbot reads the CSVs with ``lpbot data import-csv``'s reader and runs ``run_bars`` with a
negligible gas price and no slippage allowance (demeter charges neither) and no compounding
(demeter does not compound). demeter
is given the very amounts lpbot minted at the opening (its own opening swap differs, see the
README) and uses the same range rule (``strategy.base.range_around``) on the tick it sees: the
previous minute's close, which is the price lpbot's decision sees. Fees and final value are in
USD at the last close; IL is the position's value without fees less holding the tokens it was
opened with. Requires the ``compare`` extra (``pip install -e ".[compare]"``).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from lpbot.backtest.synthetic import synthetic_minutes, write_demeter_csv

CHAIN = "ethereum"
FEE = 500
DECIMALS0, DECIMALS1 = 6, 18  # USDC / WETH
SPACING = 10
CAPITAL_USD = 10_000.0
WIDTHS = {"fixed": 20.0, "recentre": 5.0}  # each strategy's half-width, %


@dataclass
class Side:
    """One engine's run of one strategy."""

    engine: str
    mode: str
    fees0: float = 0.0  # whole tokens
    fees1: float = 0.0
    fees_usd: float = 0.0
    final_usd: float = 0.0
    il_usd: float = 0.0
    rebalances: list[tuple[int, int, int]] = field(default_factory=list)  # (time, lower, upper)
    wall_s: float = 0.0
    peak_mib: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Dataset:
    directory: str
    pool: str
    start: int  # first minute, unix
    days: int


def _usd_per_weth(tick: int) -> float:
    """USD a whole WETH at ``tick`` (USDC is token0, at $1)."""
    from lpbot.backtest.bars import tick_price

    return 1.0 / (tick_price(tick) * 10.0 ** (DECIMALS0 - DECIMALS1))


def build_dataset(directory: str | Path, *, days: int, seed: int) -> Dataset:
    """Synthetic minutes written as demeter-fetch CSVs; the last minute is quiet (no swaps,
    the previous close), so that demeter's valuation at the previous close is the last close."""
    h = synthetic_minutes(days, seed=seed)
    h.close_tick[-1] = h.close_tick[-2]
    h.open_tick[-1] = h.low_tick[-1] = h.high_tick[-1] = h.close_tick[-2]
    h.in0[-1] = h.in1[-1] = 0
    digest = hashlib.sha256(f"{days}:{seed}:{h.close_tick.sum()}".encode()).hexdigest()
    pool = "0x" + digest[:40]  # demeter caches by address: one per dataset
    write_demeter_csv(h, directory, chain=CHAIN, pool=pool)
    return Dataset(str(directory), pool, int(h.ts[0]), days)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _range(tick: int, width_pct: float) -> tuple[int, int]:
    from lpbot.strategy.base import range_around

    down = -math.log1p(-width_pct / 100)
    up = math.log1p(width_pct / 100)
    r = range_around(tick, down, up, SPACING)
    return r.tick_lower, r.tick_upper


# ------------------------------------------------------------------------------------ lpbot


def run_lpbot(ds: Dataset, mode: str, width_pct: float) -> tuple[Side, dict[str, Any]]:
    """lpbot's bars engine; returns its side and the opening (ticks, amounts) for demeter."""
    t0 = time.perf_counter()
    from lpbot.backtest.bars import import_csv
    from lpbot.backtest.config import BacktestConfig, StrategyConfig
    from lpbot.backtest.vector import run_bars

    paths = sorted(Path(ds.directory).glob(f"{CHAIN}-{ds.pool}-*.minute.csv"))
    bars = import_csv(paths, fee=FEE, decimals0=DECIMALS0, decimals1=DECIMALS1,
                      symbol0="USDC", symbol1="WETH")  # fmt: skip
    policy: dict[str, float | str | None] = {
        "edge_pct": None, "vol_ratio_trigger": None, "compound_margin": 1e18,
        "min_gain_over_cost": 0.0, "rebalance_rule": "fees",  # re-centre whatever the LVR
    }  # fmt: skip
    if mode == "fixed":
        policy["min_gain_over_cost"] = 1e18  # never rebalance
    config = BacktestConfig(
        strategy=StrategyConfig(kind="fixed", params={"half_width_pct": width_pct}),
        policy=policy, capital_usd=CAPITAL_USD, start_timestamp=ds.start + 3600 - 60,
        # demeter charges no gas and does not compound: a gas price too small to matter, and
        # compounding that can never pay for it
        gas_price_gwei=1e-12, slippage_bps=0.0,
    )  # fmt: skip
    result = run_bars(bars, config)
    wall = time.perf_counter() - t0
    b = result.breakdown
    opened = result.actions[0]
    wallet = result.notes["opening_wallet"]
    eth_usd = _usd_per_weth(int(bars.tick[-1])) if bars.tick is not None else math.nan
    side = Side(
        engine="lpbot",
        mode=mode,
        fees0=b.fees0_raw / 10**DECIMALS0,
        fees1=b.fees1_raw / 10**DECIMALS1,
        fees_usd=b.fees,
        final_usd=b.final_usd,
        il_usd=math.nan,
        rebalances=[
            (a.timestamp, a.tick_lower, a.tick_upper)
            for a in result.actions
            if a.kind == "rebalance"
        ],
        wall_s=wall,
        peak_mib=_peak_mib(),
    )
    # lpbot minted at the price its own opening swap left in its quote pool; demeter mints at
    # the bar's price: it gets the amounts that buy the same liquidity there, and the same idle
    # rest, so that both hold the same position
    from lpbot.analytics.value import position_amounts
    from lpbot.uniswap.tick_math import get_sqrt_ratio_at_tick

    assert bars.tick is not None
    at = int(np.searchsorted(bars.end, opened.timestamp))
    sqrt = get_sqrt_ratio_at_tick(int(bars.tick[at]))
    need = position_amounts(sqrt, opened.tick_lower, opened.tick_upper, opened.liquidity)
    rest0, rest1 = wallet[0] - opened.amount0, wallet[1] - opened.amount1
    opening = {
        "time": opened.timestamp,
        "tick_lower": opened.tick_lower,
        "tick_upper": opened.tick_upper,
        "liquidity": opened.liquidity,
        "amount0": need.amount0 + 1,
        "amount1": need.amount1 + 1,
        "wallet0": need.amount0 + 1 + rest0,
        "wallet1": need.amount1 + 1 + rest1,
    }
    held_usd = opening["wallet0"] / 10**DECIMALS0 + opening["wallet1"] / 10**DECIMALS1 * eth_usd
    side.il_usd = b.final_usd - b.fees - held_usd
    return side, opening


# ---------------------------------------------------------------------------------- demeter


def run_demeter(ds: Dataset, mode: str, opening: dict[str, Any], width_pct: float) -> Side:
    """zelos-demeter on the same CSVs (module docstring)."""
    t0 = time.perf_counter()
    import logging
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")

    import pandas as pd
    from demeter import Actuator, MarketInfo, Strategy, TokenInfo
    from demeter.uniswap import UniLpMarket, UniV3Pool

    logging.getLogger().setLevel(logging.WARNING)
    usdc = TokenInfo(name="usdc", decimal=DECIMALS0)
    weth = TokenInfo(name="weth", decimal=DECIMALS1)
    pool = UniV3Pool(usdc, weth, FEE / 10_000, usdc)
    market = UniLpMarket(MarketInfo("uni"), pool, data_path=ds.directory)
    start = datetime.fromtimestamp(ds.start, tz=UTC).date()
    market.load_data(CHAIN, ds.pool, start, start + timedelta(days=ds.days - 1))
    ticks = ["closeTick", "openTick", "lowestTick", "highestTick"]
    market.data[ticks] = market.data[ticks].astype(float)  # README: demeter's quirks
    # the tick each row's price comes from: the previous minute's close (demeter's "price")
    prev_tick = market.data["closeTick"].shift(1).bfill().astype(float).astype(int)
    open_at = pd.Timestamp(opening["time"], unit="s")
    rebalances: list[tuple[int, int, int]] = []
    collected = [0.0, 0.0]
    width = width_pct

    class Recentre(Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.range: tuple[int, int] | None = None

        def on_bar(self, snapshot: Any) -> None:
            ts = snapshot.timestamp
            stamp = pd.Timestamp(ts).tz_localize(None) if getattr(ts, "tzinfo", None) else ts
            if stamp < open_at or pd.Timestamp(stamp).minute != 0:
                return
            tick = int(prev_tick.loc[stamp])
            lp = self.broker.markets[MarketInfo("uni")]
            if self.range is None:
                lo, hi = opening["tick_lower"], opening["tick_upper"]
                lp.add_liquidity_by_tick(  # base (WETH) first, then quote (USDC)
                    lo, hi, Decimal(opening["amount1"]) / 10**DECIMALS1,
                    Decimal(opening["amount0"]) / 10**DECIMALS0, tick=tick, trim_tick=False,
                )  # fmt: skip
                self.range = (lo, hi)
                return
            if mode == "fixed" or self.range[0] <= tick < self.range[1]:
                return
            for position in lp.positions.values():  # fees owed, before they join the balance
                collected[0] += float(position.pending_amount0)
                collected[1] += float(position.pending_amount1)
            lp.remove_all_liquidity()
            lp.even_rebalance()
            lo, hi = _range(tick, width)
            lp.add_liquidity_by_tick(lo, hi, tick=tick, trim_tick=False)
            self.range = (lo, hi)
            rebalances.append((int(pd.Timestamp(stamp).timestamp()), lo, hi))

    actuator = Actuator()
    actuator.broker.add_market(market)
    actuator.broker.set_balance(usdc, Decimal(opening["wallet0"]) / 10**DECIMALS0)
    actuator.broker.set_balance(weth, Decimal(opening["wallet1"]) / 10**DECIMALS1)
    actuator.strategy = Recentre()
    actuator.set_price(market.get_price_from_data())
    actuator.run(print_result=False)
    wall = time.perf_counter() - t0
    final = actuator.final_status
    last_tick = int(market.data["closeTick"].iloc[-1])
    eth_usd = _usd_per_weth(last_tick)
    f0, f1 = collected
    for position in market.positions.values():
        f0 += float(position.pending_amount0)
        f1 += float(position.pending_amount1)
    fees_usd = f0 + f1 * eth_usd
    held_usd = (opening["wallet0"] / 10**DECIMALS0) + (opening["wallet1"] / 10**DECIMALS1) * eth_usd
    value = float(final.net_value)
    return Side(
        engine="demeter",
        mode=mode,
        fees0=f0,
        fees1=f1,
        fees_usd=fees_usd,
        final_usd=value,
        il_usd=value - fees_usd - held_usd,
        rebalances=rebalances,
        wall_s=wall,
        peak_mib=_peak_mib(),
    )


# -------------------------------------------------------------------------------- the table


def _in_child(fn: Any, *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def compare(
    ds: Dataset, widths: dict[str, float] | None = None, *, isolate: bool = True
) -> list[Side]:
    """Both engines on ``ds`` for each mode and its half-width in % (default: a fixed +-20%
    range, which the price stays inside, and an hourly re-centre of +-5%); ``isolate`` runs each
    in its own process."""
    out: list[Side] = []
    for mode, width in (widths or WIDTHS).items():
        if isolate:
            ours, opening = _in_child(run_lpbot, ds, mode, width)
            theirs = _in_child(run_demeter, ds, mode, opening, width)
        else:
            ours, opening = run_lpbot(ds, mode, width)
            theirs = run_demeter(ds, mode, opening, width)
        out += [ours, theirs]
    return out


def table(sides: list[Side]) -> str:
    rows = [
        "| strategy | engine | fees (USD) | final value (USD) | IL (USD) | rebalances | wall (s) "
        "| peak memory (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sides:
        rows.append(
            f"| {s.mode} | {s.engine} | {s.fees_usd:,.4f} | {s.final_usd:,.4f} | "
            f"{s.il_usd:,.4f} | {len(s.rebalances)} | {s.wall_s:.2f} | {s.peak_mib:,.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--fixed-width-pct", dest="fixed", type=float, default=WIDTHS["fixed"])
    p.add_argument("--recentre-width-pct", dest="recentre", type=float,
                   default=WIDTHS["recentre"])  # fmt: skip
    p.add_argument("--dir", default=".lpbot/compare-demeter", help="where the CSVs are written")
    p.add_argument("--json", help="write both sides here")
    args = p.parse_args(argv)
    try:
        import demeter  # noqa: F401
    except ImportError:
        print('zelos-demeter is not installed: pip install -e ".[compare]"', file=sys.stderr)
        return 2
    ds = build_dataset(Path(args.dir), days=args.days, seed=args.seed)
    print(f"{args.days} days of synthetic USDC/WETH 0.05% minutes in {args.dir}")
    sides = compare(ds, {"fixed": args.fixed, "recentre": args.recentre})
    print(table(sides))
    for a, b in zip(sides[::2], sides[1::2], strict=True):
        same = a.rebalances == b.rebalances
        print(
            f"{a.mode}: fees {b.fees_usd / a.fees_usd - 1:+.2e}, final value "
            f"{b.final_usd / a.final_usd - 1:+.2e} (demeter / lpbot - 1); rebalance times and "
            f"ranges {'the same' if same else 'DIFFER'}"
        )
    if args.json:
        import json

        Path(args.json).write_text(json.dumps([asdict(s) for s in sides], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
