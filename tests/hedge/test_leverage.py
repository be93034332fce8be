"""The position's own leverage kept under the cap: margin added, or the hedge reduced."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lpbot.hedge.base import ManualClock, PerpPosition
from lpbot.hedge.controller import HedgeController
from lpbot.hedge.paper import PAPER_MARKETS, FundingSeries, PaperExchange
from lpbot.hedge.plan import AddMargin, HedgeConfig, ReduceForMargin, plan_margin
from lpbot.hedge.state import AlertKind, MemoryStateStore
from tests.hedge.fakes import T0, Price, Sleeps

D = Decimal
ETH = "ETH/USDT:USDT"
CONFIG = HedgeConfig(symbol=ETH, band_abs=D("0.5"), band_pct=D(2))


def eth_venue(balance: Decimal) -> tuple[PaperExchange, Price, ManualClock]:
    spec, book = PAPER_MARKETS[ETH]
    price, clock = Price(D(3_000)), ManualClock(T0)
    ex = PaperExchange(
        reference_price=price,
        clock=clock,
        spec=spec,
        book=book.model_copy(update={"depth_jitter": D(0)}),
        funding=FundingSeries.constant(D(0)),
        initial_balance=balance,
    )
    return ex, price, clock


def test_a_short_against_a_30_percent_rally_stays_under_3x_and_is_never_liquidated() -> None:
    # the case: 100 ETH short at 3,000 with 200,000 USDT. Unmanaged, its own leverage
    # is 4.7x at +10 %, 9x at +20 %, and it is liquidated near 3,990
    ex, price, _ = eth_venue(D(200_000))
    c = HedgeController(
        ex, CONFIG, MemoryStateStore(), position_id="1:npm:1", clock=ex.clock, sleep=Sleeps()
    )
    c.sync(D(100))
    assert ex.fetch_position(ETH).size == D(-100)
    seen: list[tuple[Decimal, Decimal]] = []
    kinds: list[AlertKind] = []
    for move in ("1.10", "1.20", "1.30"):
        price.value = D(3_000) * D(move)
        result = c.sync(D(100))
        kinds += [a.kind for a in result.alerts]
        p = ex.fetch_position(ETH)
        lev = p.margin_leverage
        assert lev is not None and lev <= CONFIG.max_leverage, (move, lev)
        assert result.leverage == lev
        assert p.liquidation_price is not None and p.liquidation_price > price.value * D("1.2")
        seen.append((p.size, lev))
    assert ex.state.liquidations == []
    # +10 % and +20 %: margin added from the free balance, the hedge whole
    assert [size for size, _ in seen[:2]] == [D(-100), D(-100)]
    # +30 %: the equity (200,000 - 90,000 - fees) holds 110,000 * 2.7 / 3,900 = ~76 ETH at the
    # 2.7x target: the hedge is reduced to that, and the alert says it is partial
    assert D(-77) < seen[2][0] < D(-75)
    assert AlertKind.HEDGE_PARTIAL in kinds
    assert AlertKind.LIQUIDATION_NEAR not in kinds


def _short(size: str, entry: str, mark: str, wallet: str) -> PerpPosition:
    s, e, m, w = D(size), D(entry), D(mark), D(wallet)
    return PerpPosition(ETH, s, e, m, s * (m - e), w, None)


def test_plan_margin_adds_what_brings_the_position_to_the_target_leverage() -> None:
    # 100 short at 3,000, wallet 100,000, mark 3,300: notional 330,000, margin balance 70,000
    # (4.71x); the target 2.7x needs 330,000 / 2.7 - 70,000 = 52,222.23 (rounded up to a cent)
    action = plan_margin(_short("-100", "3000", "3300", "100000"), D(60_000), CONFIG, D(0), D(1))
    assert isinstance(action, AddMargin)
    assert action.amount == D("52222.23")
    assert action.leverage_before.quantize(D("0.01")) == D("4.71")


def test_plan_margin_reduces_when_the_free_balance_cannot_hold_the_position() -> None:
    # mark 3,900: notional 390,000, margin balance 10,000, free 100,000, 20 bps for the fee and
    # slippage: f = (390,000 - 2.7 * 110,000) / (390,000 * (1 - 2.7 * 0.002)) = 0.239758...,
    # 23.9758 ETH rounded up to the 0.01 step: 23.98
    action = plan_margin(
        _short("-100", "3000", "3900", "100000"), D(100_000), CONFIG, D(0), D("0.01")
    )
    assert isinstance(action, ReduceForMargin) and action.amount == D("23.98")
    # under the cap: nothing
    assert plan_margin(_short("-1", "3000", "3000", "1000"), D(0), CONFIG, D(0), D(1)) is None


@pytest.mark.parametrize("leverage", [D(2), D("2.5"), D(3)])
def test_an_opened_hedge_starts_under_its_cap(leverage: Decimal) -> None:
    ex, _, _ = eth_venue(D(1_000_000))
    config = CONFIG.model_copy(update={"max_leverage": leverage})
    c = HedgeController(
        ex, config, MemoryStateStore(), position_id="1:npm:1", clock=ex.clock, sleep=Sleeps()
    )
    result = c.sync(D(50))
    assert result.leverage is not None and result.leverage <= leverage


def test_with_the_kill_switch_engaged_a_position_left_open_keeps_its_margin() -> None:
    # the flatten was refused (the venue down for orders): the short stays open, syncing is off,
    # and a rally must still not run it into liquidation
    from lpbot.errors import Refused
    from tests.hedge.fakes import FlakyExchange

    ex, price, _ = eth_venue(D(200_000))
    flaky = FlakyExchange(ex)
    c = HedgeController(
        flaky, CONFIG, MemoryStateStore(), position_id="1:npm:1", clock=ex.clock, sleep=Sleeps()
    )
    c.sync(D(100))
    flaky.fail("create_order", Refused("trading halted"), times=10)
    c.flatten()
    assert c.state.killed and ex.fetch_position(ETH).size == D(-100)
    price.value = D(3_600)  # +20 %: 9x unmanaged
    result = c.sync(D(100))
    assert result.orders == () and result.margin_added > 0
    lev = ex.fetch_position(ETH).margin_leverage
    assert lev is not None and lev <= 3
