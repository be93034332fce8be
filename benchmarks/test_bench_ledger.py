"""Speed of the ledger: a year of hourly snapshots (8,760), each valued at its own marks,
with a rebalance every four days, in < 0.5 s on a 2-core machine. Run with ``make bench``."""

from __future__ import annotations

import random
from decimal import Decimal

from pytest_benchmark.fixture import BenchmarkFixture

from lpbot.analytics.ledger import (
    GasPaid,
    HedgeFigures,
    Ledger,
    PathSums,
    Prices,
    RebalanceFlow,
    ledger_at,
)

HOURS = 365 * 24
DEC = (6, 18)


def _year(seed: int = 1) -> tuple[list[Prices], list[tuple[int, RebalanceFlow, GasPaid]]]:
    rng = random.Random(seed)
    price = 3000.0
    marks = []
    for h in range(HOURS):
        price *= 1 + rng.gauss(0, 0.006)
        p = Decimal(f"{price:.6f}")
        marks.append(Prices(Decimal("0.9999"), p, p, Decimal(90000), block=h))
    flows = []
    for h in range(96, HOURS, 96):
        m = marks[h]
        flow = RebalanceFlow(
            (5_000 * 10**6, 10**18), (3 * 10**6, 10**15), (0, 10**17), (300 * 10**6, 0),
            (5_290 * 10**6, 9 * 10**17), m,
        )  # fmt: skip
        flows.append((h, flow, GasPaid(f"0x{h:064x}", 730_000 * 3 * 10**9, m.eth)))
    return marks, flows


def _series(marks: list[Prices], flows: list[tuple[int, RebalanceFlow, GasPaid]]) -> list[Ledger]:
    out = []
    deposit = (5_000 * 10**6, 10**18 * 5 // 3)
    sums = PathSums(start=deposit)
    k = 0
    for h, m in enumerate(marks):
        while k < len(flows) and flows[k][0] <= h:
            sums = sums.fold(flows[k][1], DEC).pay(flows[k][2])
            k += 1
        out.append(
            ledger_at(
                sums,
                decimals=DEC,
                deposit=deposit,
                entry=marks[0],
                principal=(5_100 * 10**6, 9 * 10**17),
                uncollected=(h * 10**4, h * 10**10),
                marks=m,
                hedge=HedgeFigures(Decimal(h), Decimal(-h) / 2, Decimal(h) / 100, Decimal(h) / 50),
            )
        )
    return out


def test_ledger_over_a_year_of_hourly_snapshots(benchmark: BenchmarkFixture) -> None:
    marks, flows = _year()
    series = benchmark(_series, marks, flows)
    assert len(series) == HOURS
    assert series[-1].usd.net == series[-1].usd.value + series[-1].usd.hedge_pnl + (
        series[-1].usd.funding - series[-1].usd.gas - series[-1].usd.hold
    )
    assert benchmark.stats is not None
    assert benchmark.stats.stats.median < 0.5
