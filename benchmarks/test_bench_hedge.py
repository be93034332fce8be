"""Speed of the hedge: one decision, one paper order, one whole sync on paper.

Targets (2-core machine): ``plan_hedge`` well under 1 ms; a paper market order walking ten
levels under 1 ms; a ``sync`` step on paper (reads, decision, order, booking) under 5 ms.
Run with ``make bench``.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import count

from pytest_benchmark.fixture import BenchmarkFixture

from lpbot.hedge.base import ManualClock, OrderRequest, OrderSide, PerpPosition
from lpbot.hedge.controller import HedgeController
from lpbot.hedge.paper import BookModel, PaperExchange, PaperMarketSpec
from lpbot.hedge.plan import HedgeConfig, HedgeInputs, plan_hedge
from lpbot.hedge.state import MemoryStateStore

D = Decimal
BTC = "BTC/USDT:USDT"
T0 = 1_700_000_000_000
CONFIG = HedgeConfig(symbol=BTC, band_abs=D("0.05"), band_pct=D(2))


def _paper() -> tuple[PaperExchange, ManualClock]:
    clock = ManualClock(T0)
    ex = PaperExchange(
        reference_price=lambda: D(60_000),
        clock=clock,
        spec=PaperMarketSpec(),
        book=BookModel(),
        initial_balance=D(10_000_000),
    )
    return ex, clock


def test_plan_hedge(benchmark: BenchmarkFixture) -> None:
    position = PerpPosition(BTC, D("-9.4"), D(60_000), D(60_000), D(0), D(0), None)
    inputs = HedgeInputs(
        lp_delta=D("10.123456"),
        position=position,
        market=PaperMarketSpec().market_info(),
        mark_price=D(60_000),
        equity=D(1_000_000),
        funding_rates=(D("0.0001"),) * 3,
        position_id="31337:npm:7",
        step=1,
    )
    benchmark(plan_hedge, inputs, CONFIG)


def test_paper_market_order_of_ten_levels(benchmark: BenchmarkFixture) -> None:
    ex, _ = _paper()
    ids = count()

    def order() -> None:
        n = next(ids)
        side = OrderSide.SELL if n % 2 == 0 else OrderSide.BUY
        ex.create_order(OrderRequest(BTC, side, D(20), f"b{n}"))

    benchmark(order)


def test_sync_step_on_paper(benchmark: BenchmarkFixture) -> None:
    ex, clock = _paper()
    c = HedgeController(ex, CONFIG, MemoryStateStore(), position_id="p", clock=clock)
    deltas = count()

    def step() -> None:
        clock.advance(60_000)
        c.sync(D(10) + D(next(deltas) % 2))  # out of the band every time

    benchmark(step)
