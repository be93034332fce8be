"""The paper venue: book, fees, sizes, funding at the 8 h marks, isolated margin, liquidation."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpbot.errors import NeedsAttention, Refused
from lpbot.hedge import margin
from lpbot.hedge.base import (
    ManualClock,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    settlement_times,
)
from lpbot.hedge.paper import (
    BookModel,
    FundingSeries,
    PaperAccount,
    PaperExchange,
    PaperMarketSpec,
    PaperRejection,
    RejectCode,
)
from tests.hedge.fakes import BTC, T0, Price, paper

D = Decimal
HOUR = 3_600_000
MIDNIGHT = T0 + 6_400_000  # 2023-11-15 00:00 UTC


def order(side: OrderSide, amount: str, cid: str, **kw: object) -> OrderRequest:
    return OrderRequest(BTC, side, D(amount), cid, **kw)  # type: ignore[arg-type]


def test_market_buy_walks_the_book_hand_computed() -> None:
    ex, _, _ = paper()
    # levels at 60000 * (1 + (0.5 + k) bps), 2 BTC each: 60003.0, 60009.0, 60015.0
    o = ex.create_order(order(OrderSide.BUY, "5", "a1"))
    assert o.status is OrderStatus.CLOSED and o.filled == D(5)
    assert o.average_price == D("60007.8")  # (2*60003 + 2*60009 + 60015) / 5
    assert o.fee == D("150.0195")  # 5 * 60007.8 * 0.05 % taker


def test_slippage_grows_with_size() -> None:
    prices = []
    for amount in ("1", "3", "6", "20"):
        ex, _, _ = paper()
        prices.append(ex.create_order(order(OrderSide.SELL, amount, "s1")).average_price)
    assert prices == sorted(prices, reverse=True)
    # bid k at 60000 * (1 - (0.5 + k) bps) = 59997 - 6k, 2 BTC each
    assert prices == [D("59997.0"), D(59995), D(59991), D(59970)]


def test_market_order_beyond_the_book_is_a_partial_fill() -> None:
    ex, _, _ = paper(book=BookModel(levels=3, depth_per_level=D(2), depth_jitter=D(0)))
    o = ex.create_order(order(OrderSide.SELL, "10", "p1"))
    assert o.status is OrderStatus.EXPIRED
    assert (o.filled, o.remaining) == (D(6), D(4))
    assert ex.fetch_position(BTC).size == D(-6)


def test_resting_limit_order_fills_at_its_price_with_the_maker_fee() -> None:
    ex, price, _ = paper()
    o = ex.create_order(order(OrderSide.BUY, "1", "l1", type=OrderType.LIMIT, price=D(59_000)))
    assert o.status is OrderStatus.OPEN and o.filled == 0
    price.value = D(58_990)
    filled = ex.fetch_order(BTC, order_id=o.id)
    assert filled is not None and filled.status is OrderStatus.CLOSED
    assert filled.average_price == D(59_000)
    assert filled.fee == D("11.8")  # 59000 * 0.02 % maker


def test_sizes_must_be_steps_of_at_least_the_minimum() -> None:
    ex, _, _ = paper()
    for bad in ("0.0005", "0.0015"):
        with pytest.raises(PaperRejection) as err:
            ex.create_order(order(OrderSide.BUY, bad, "x" + bad.replace(".", "")))
        assert err.value.code is RejectCode.LOT_SIZE
    # 0.001 BTC is a valid size but 60 USDT is under the 100 USDT minimum notional ...
    with pytest.raises(Refused) as err2:
        ex.create_order(order(OrderSide.SELL, "0.001", "m1"))
    assert err2.value.code is RejectCode.MIN_NOTIONAL  # type: ignore[attr-defined]
    # ... which reduce-only orders are exempt from
    ex.create_order(order(OrderSide.SELL, "0.002", "m2"))
    closed = ex.create_order(order(OrderSide.BUY, "0.001", "m3", reduce_only=True))
    assert closed.filled == D("0.001")
    assert ex.fetch_position(BTC).size == D("-0.001")


def test_market_rounds_amounts_to_its_step() -> None:
    ex, _, _ = paper()
    market = ex.load_market(BTC)
    assert market.round_amount(D("0.0015")) == D("0.002")  # ties to even
    assert market.round_amount(D("0.0025")) == D("0.002")
    assert market.round_amount(D("1.23456")) == D("1.235")
    assert market.floor_amount(D("0.0019")) == D("0.001")
    assert market.round_amount(D("0.0004")) == 0


def test_reduce_only_never_increases_and_is_capped_at_the_position() -> None:
    ex, _, _ = paper()
    with pytest.raises(PaperRejection) as err:
        ex.create_order(order(OrderSide.SELL, "1", "r1", reduce_only=True))
    assert err.value.code is RejectCode.REDUCE_ONLY_REJECTED
    ex.create_order(order(OrderSide.SELL, "1", "r2"))
    o = ex.create_order(order(OrderSide.BUY, "3", "r3", reduce_only=True))
    assert o.filled == D(1) and ex.fetch_position(BTC).size == 0


def test_a_client_order_id_is_refused_again_only_while_its_order_is_open() -> None:
    # Binance (-4116) and OKX refuse a duplicate client id among *open* orders only: a filled
    # order's id can be sent again and becomes a second order
    ex, _, _ = paper()
    limit = {"type": OrderType.LIMIT, "price": D(59_000)}
    ex.create_order(order(OrderSide.BUY, "1", "dup", **limit))
    with pytest.raises(PaperRejection) as err:
        ex.create_order(order(OrderSide.BUY, "1", "dup", **limit))
    assert err.value.code is RejectCode.DUPLICATE_CLIENT_ID
    ex.create_order(order(OrderSide.SELL, "1", "done"))
    again = ex.create_order(order(OrderSide.SELL, "1", "done"))
    assert again.filled == D(1) and ex.fetch_position(BTC).size == D(-2)
    assert len(ex.state.orders) == 3


def test_isolated_margin_and_liquidation_price_hand_computed() -> None:
    ex, price, clock = paper()
    ex.prepare_isolated(BTC, 3)
    ex.create_order(order(OrderSide.SELL, "2", "i1"))  # 2 BTC at the best bid, 59997.0
    p = ex.fetch_position(BTC)
    assert (p.size, p.entry_price) == (D(-2), D("59997.0"))
    assert p.isolated_margin == D(39_998)  # 2 * 59997 / 3
    # LP = (39998 + 2 * 59997) / (2 * (1 + 0.004)) = 159992 / 2.008
    assert p.liquidation_price is not None
    assert p.liquidation_price.quantize(D("0.01")) == D("79677.29")
    fee = D("59.997")  # 2 * 59997 * 0.05 %
    b = ex.fetch_balance("USDT")
    assert b.free == D(1_000_000) - D(39_998) - fee
    assert b.used == D(39_998)
    assert b.total == b.free + b.used + 2 * (D("59997.0") - price.value)
    # the mark reaching the liquidation price closes the position and loses its margin
    price.value = D("79677.3")
    assert ex.fetch_position(BTC).size == 0
    state = ex.state
    assert len(state.liquidations) == 1 and state.liquidations[0].lost_margin == D(39_998)
    assert ex.fetch_balance("USDT").total == D(1_000_000) - D(39_998) - fee
    assert clock.now_ms() == T0


def test_margin_is_insufficient_beyond_the_free_balance() -> None:
    ex, _, _ = paper(balance=D(10_000))
    ex.prepare_isolated(BTC, 3)
    with pytest.raises(PaperRejection) as err:
        ex.create_order(order(OrderSide.SELL, "0.5", "big"))  # needs 9999.5 + 15 fee
    assert err.value.code is RejectCode.MARGIN_INSUFFICIENT
    assert ex.fetch_position(BTC).size == 0 and ex.state.orders == []


def test_settlements_are_at_00_08_16_utc() -> None:
    times = settlement_times(T0, T0 + 24 * HOUR)
    assert [(t // HOUR) % 24 for t in times] == [0, 8, 16]
    assert times[0] == MIDNIGHT
    assert settlement_times(MIDNIGHT, MIDNIGHT) == []  # (start, end]: not twice
    assert settlement_times(MIDNIGHT - 1, MIDNIGHT) == [MIDNIGHT]


def test_funding_accrues_at_the_marks_with_its_sign() -> None:
    # +0.01 % until just after midnight, then -0.02 %
    series = FundingSeries(points=((0, D("0.0001")), (MIDNIGHT + 1, D("-0.0002"))))
    ex, _, clock = paper(funding=series)
    ex.prepare_isolated(BTC, 3)
    ex.create_order(order(OrderSide.SELL, "2", "f1"))
    before = ex.fetch_position(BTC)
    clock.set(MIDNIGHT - 1)
    assert ex.fetch_funding_payments(BTC, 0) == []
    clock.set(MIDNIGHT)
    (first,) = ex.fetch_funding_payments(BTC, 0)
    assert first.amount == D(12)  # a short receives a positive rate: 2 * 60000 * 0.0001
    after = ex.fetch_position(BTC)
    assert after.isolated_margin == before.isolated_margin + 12  # into the isolated wallet
    assert after.liquidation_price is not None and before.liquidation_price is not None
    assert after.liquidation_price > before.liquidation_price
    clock.set(MIDNIGHT + 16 * HOUR)  # two settlements in one step, both at -0.02 %
    payments = ex.fetch_funding_payments(BTC, MIDNIGHT + 1)
    assert [p.amount for p in payments] == [D(-24), D(-24)]  # the short pays a negative rate
    assert [p.timestamp_ms for p in payments] == [MIDNIGHT + 8 * HOUR, MIDNIGHT + 16 * HOUR]
    rates = ex.fetch_funding_rate_history(BTC, MIDNIGHT - 24 * HOUR)
    assert [r.rate for r in rates][-3:] == [D("0.0001"), D("-0.0002"), D("-0.0002")]


def test_a_long_pays_positive_funding() -> None:
    ex, _, clock = paper()
    ex.create_order(order(OrderSide.BUY, "1", "lg"))
    clock.set(MIDNIGHT)
    assert [p.amount for p in ex.fetch_funding_payments(BTC, 0)] == [D(-6)]


def _run(seed: int, persist_between: bool = False) -> list[Decimal | None]:
    ex, price, clock = paper(book=BookModel(), seed=seed)  # default book: 25 % depth jitter
    fills = [ex.create_order(order(OrderSide.SELL, "7", "d1")).average_price]
    if persist_between:
        text = ex.account().model_dump_json()
        ex = PaperExchange.from_account(
            PaperAccount.model_validate_json(text), reference_price=price, clock=clock
        )
    clock.advance(HOUR)
    fills.append(ex.create_order(order(OrderSide.BUY, "9", "d2")).average_price)
    return fills


def test_deterministic_under_a_seed_and_across_persistence() -> None:
    assert _run(1) == _run(1)
    assert _run(1) != _run(2)
    assert _run(3, persist_between=True) == _run(3)


def test_the_paper_account_round_trips_through_json() -> None:
    ex, price, clock = paper()
    ex.create_order(order(OrderSide.SELL, "1.5", "j1"))
    clock.set(MIDNIGHT)
    ex.fetch_position(BTC)
    again = PaperExchange.from_account(
        PaperAccount.model_validate_json(ex.account().model_dump_json()),
        reference_price=price,
        clock=clock,
    )
    assert again.fetch_position(BTC) == ex.fetch_position(BTC)
    assert again.fetch_balance("USDT") == ex.fetch_balance("USDT")
    assert again.fetch_funding_payments(BTC, 0) == ex.fetch_funding_payments(BTC, 0)
    assert margin.liquidation_price(D(0), D(0), D(0), D("0.004"), D(0)) is None


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.booleans(),
            st.integers(1, 5_000).map(lambda n: D(n) / 1000),
            st.integers(-300, 300).map(lambda bps: D(1) + D(bps) / 10_000),
            st.integers(0, 12),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_every_dollar_of_equity_is_pnl_fees_or_funding(
    steps: list[tuple[bool, Decimal, Decimal, int]],
) -> None:
    ex, price, clock = paper(balance=D(500_000))
    for n, (buy, amount, move, hours) in enumerate(steps):
        price.value = (price.value * move).quantize(D("0.1"))
        clock.advance(hours * HOUR)
        side = OrderSide.BUY if buy else OrderSide.SELL
        with contextlib.suppress(PaperRejection):  # margin or minimum notional: nothing happens
            ex.create_order(order(side, str(amount), f"h{n}"))
    b = ex.fetch_balance("USDT")
    s = ex.state
    upnl = s.size * (price.value - s.entry_price)
    explained = D(500_000) + s.realized_pnl + upnl - s.fees_paid + s.funding_received
    assert abs(b.total - explained) < D("1e-12")  # Decimal's 28 digits: average entry prices
    assert b.free >= 0 and b.used == s.isolated_margin


def test_funding_is_settled_at_the_mark_of_the_settlement_not_of_the_next_touch() -> None:
    ex, price, clock = paper()
    ex.prepare_isolated(BTC, 3)
    ex.create_order(order(OrderSide.SELL, "2", "s1"))
    clock.set(MIDNIGHT - 1)
    ex.fetch_mark_price(BTC)  # last seen before midnight: 60,000
    price.value = D(70_000)
    clock.set(MIDNIGHT + HOUR)  # first touched after the rally, an hour after the settlement
    (payment,) = ex.fetch_funding_payments(BTC, 0)
    assert payment.amount == D(12)  # 2 * 60,000 * 0.01 %, not 2 * 70,000 * 0.01 % = 14


def test_funding_marks_from_a_price_history_when_given() -> None:
    price, clock = Price(), ManualClock(T0)
    history = {MIDNIGHT: D(65_000)}
    ex = PaperExchange(
        reference_price=price,
        clock=clock,
        book=BookModel(depth_jitter=D(0)),
        funding=FundingSeries.constant(D("0.0001")),
        initial_balance=D(1_000_000),
        price_at=lambda t: history[t],
    )
    ex.create_order(order(OrderSide.SELL, "2", "s2"))
    clock.set(MIDNIGHT + HOUR)
    (payment,) = ex.fetch_funding_payments(BTC, 0)
    assert payment.amount == D(13)  # at the history's 65,000


def test_maintenance_tiers_set_the_liquidation_price() -> None:
    # short 10 BTC at 60,000 with 200,000 isolated: at the liquidation price the notional is
    # ~790,000, the second tier (MMR 0.5 %, cum 300,000 * 0.001 = 300):
    # LP = (200,000 + 300 + 600,000) / (10 * 1.005) = 79,631.84
    ex, _, _ = paper()
    ex.prepare_isolated(BTC, 3)
    tiers = ex.fetch_margin_tiers(BTC)
    assert (tiers[1].mmr, tiers[1].cum) == (D("0.005"), D(300))
    lp = margin.liquidation_price_tiered(D(-10), D(60_000), D(200_000), tiers)
    assert lp is not None and lp.quantize(D("0.01")) == D("79631.84")
    assert margin.tier_for(10 * lp, tiers) is tiers[1]
    one_rate = margin.liquidation_price(D(-10), D(60_000), D(200_000), D("0.004"), D(0))
    assert one_rate is not None and one_rate > lp  # one flat rate understates the risk


def test_an_account_saved_with_one_maintenance_rate_still_loads() -> None:
    spec = PaperMarketSpec.model_validate(
        {"maintenance_margin_rate": "0.004", "maintenance_amount": "0"}
    )
    assert [(t.mmr, t.cum) for t in spec.tiers()] == [(D("0.004"), D(0))]


def test_set_up_changes_only_what_differs_and_refuses_hedge_mode_with_a_position() -> None:
    ex, _, _ = paper()
    assert ex.prepare_isolated(BTC, 3) == ("leverage: 3",)
    assert ex.prepare_isolated(BTC, 3) == ()  # a restart: nothing to change
    ex._state.hedge_mode = True
    assert ex.prepare_isolated(BTC, 3) == ("position mode: one-way",)  # flat: switched
    ex.create_order(order(OrderSide.SELL, "1", "hm"))
    ex._state.hedge_mode = True
    with pytest.raises(NeedsAttention):
        ex.prepare_isolated(BTC, 3)


def test_add_margin_moves_free_balance_into_the_isolated_wallet() -> None:
    ex, _, _ = paper()
    ex.prepare_isolated(BTC, 3)
    with pytest.raises(PaperRejection):
        ex.add_margin(BTC, D(100))  # no position
    ex.create_order(order(OrderSide.SELL, "2", "am"))
    before = ex.fetch_position(BTC)
    free = ex.fetch_balance("USDT").free
    ex.add_margin(BTC, D(10_000))
    after = ex.fetch_position(BTC)
    assert after.isolated_margin == before.isolated_margin + 10_000
    assert ex.fetch_balance("USDT").free == free - 10_000
    assert after.liquidation_price is not None and before.liquidation_price is not None
    assert after.liquidation_price > before.liquidation_price
    with pytest.raises(PaperRejection):
        ex.add_margin(BTC, D(10_000_000))
