"""The hedge controller on the paper venue: band, idempotent retries, partial fills, rejects,
downtime, reconcile on start, kill switch, PnL breakdown."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lpbot.errors import ConfigError, Refused, RetryLater
from lpbot.hedge.base import Exchange, OrderRequest, OrderSide, OrderStatus, OrderType
from lpbot.hedge.controller import HedgeController, HedgeExecutor
from lpbot.hedge.dry import DryRunExchange
from lpbot.hedge.paper import BookModel, FundingSeries, PaperExchange
from lpbot.hedge.plan import HedgeAction, HedgeConfig, NoAction, RetryPolicy, client_order_id
from lpbot.hedge.state import AlertKind, HedgeState, MemoryStateStore, PendingOrder
from tests.hedge.fakes import BTC, T0, FlakyExchange, Sleeps, paper

D = Decimal
HOUR = 3_600_000
MIDNIGHT = T0 + 6_400_000
RETRY = RetryPolicy(
    max_attempts=4, base_delay_s=0.5, max_delay_s=4, max_rejects=2, lookup_seconds=3
)
CONFIG = HedgeConfig(symbol=BTC, band_abs=D("0.05"), band_pct=D(2), retry=RETRY)
POSITION = "31337:npm:7"


def controller(
    venue: object, *, store: MemoryStateStore | None = None, config: HedgeConfig = CONFIG
) -> tuple[HedgeController, MemoryStateStore, Sleeps]:
    store = store if store is not None else MemoryStateStore()
    sleeps = Sleeps()
    inner = venue.inner if isinstance(venue, FlakyExchange) else venue
    assert isinstance(inner, PaperExchange)
    clock = inner.clock
    c = HedgeController(
        venue,  # type: ignore[arg-type]
        config,
        store,
        position_id=POSITION,
        clock=clock,
        sleep=sleeps,
    )
    return c, store, sleeps


def test_sync_opens_the_hedge_then_holds_while_inside_the_band() -> None:
    ex, _, _ = paper()
    c, store, _ = controller(ex)
    result = c.sync(D(5))
    assert isinstance(result.decision, HedgeAction)
    assert [o.filled for o in result.orders] == [D(5)]
    assert ex.fetch_position(BTC).size == D(-5) and result.net == 0
    assert store.load() is not None and store.load().step == 1  # type: ignore[union-attr]
    # band = max(0.05, 2 % of 5.05) = 0.101: a 0.05 move is absorbed
    assert isinstance(c.sync(D("5.05")).decision, NoAction)
    result = c.sync(D(6))
    assert [(o.side, o.filled) for o in result.orders] == [(OrderSide.SELL, D(1))]
    assert ex.fetch_position(BTC).size == D(-6)
    assert len(ex.state.orders) == 2 and c.state.step == 2


def test_a_timeout_after_the_order_landed_is_retried_without_a_second_position() -> None:
    ex, _, _ = paper()
    flaky = FlakyExchange(ex)
    flaky.fail("create_order", RetryLater("read timed out"), after=True)  # sent, answer lost
    c, _, sleeps = controller(flaky)
    result = c.sync(D(5))
    assert not result.alerts
    assert flaky.calls["create_order"] == 1  # never sent again: found by its client id
    assert len(ex.state.orders) == 1 and ex.fetch_position(BTC).size == D(-5)
    assert result.orders[0].client_order_id == ex.state.orders[0].client_order_id
    assert sleeps.delays == [0.5]
    assert c.state.pending is None and c.state.ledger.size == D(-5)


def test_a_timeout_before_the_order_landed_sends_it_once_more() -> None:
    ex, _, _ = paper()
    flaky = FlakyExchange(ex)
    flaky.fail("create_order", RetryLater("connect timeout"))  # never reached the venue
    c, _, _ = controller(flaky)
    c.sync(D(5))
    assert flaky.calls["create_order"] == 2
    assert len(ex.state.orders) == 1 and ex.fetch_position(BTC).size == D(-5)


def test_a_partial_fill_is_topped_up() -> None:
    ex, _, _ = paper(book=BookModel(levels=2, depth_per_level=D(2), depth_jitter=D(0)))
    c, _, _ = controller(ex)
    result = c.sync(D(7))  # the book holds 4 BTC a side: 4, then 3
    assert [(o.amount, o.filled) for o in result.orders] == [(D(7), D(4)), (D(3), D(3))]
    assert len({o.client_order_id for o in result.orders}) == 2
    assert ex.fetch_position(BTC).size == D(-7) and not result.alerts
    assert c.state.step == 1  # one hedge step, two orders


def test_a_partial_fill_inside_the_band_is_accepted() -> None:
    ex, _, _ = paper(book=BookModel(levels=2, depth_per_level=D(2), depth_jitter=D(0)))
    c, _, _ = controller(ex)
    result = c.sync(D("4.05"))  # fills 4; net 0.05 <= band max(0.05, 0.081)
    assert [(o.amount, o.filled) for o in result.orders] == [(D("4.05"), D(4))]
    assert result.net == D("0.05") and not result.alerts


def test_a_partial_fill_left_outside_the_band_raises_an_alert() -> None:
    ex, _, _ = paper(book=BookModel(levels=1, depth_per_level=D(1), depth_jitter=D(0)))
    c, _, _ = controller(ex, config=CONFIG.model_copy(update={"max_top_ups": 1}))
    result = c.sync(D(5))
    assert [o.filled for o in result.orders] == [D(1), D(1)]
    assert [a.kind for a in result.alerts] == [AlertKind.OUTSIDE_BAND]


def test_a_capped_hedge_is_a_smaller_order_the_venue_accepts() -> None:
    # 3x of 1,000 USDT would be 0.05 BTC, whose margin (1,000) plus the fee is more than the
    # free balance (and was refused whole): the order is capped at what the free balance holds
    # at the 2.7x target plus 20 bps, floor(1000 / (60000 * (1/2.7 + 0.002)) / 0.001) * 0.001
    # = 0.044 BTC, and it fills
    ex, _, _ = paper(balance=D(1_000))
    c, _, _ = controller(ex)
    result = c.sync(D(5))
    decision = result.decision
    assert isinstance(decision, HedgeAction) and decision.partial
    assert [o.filled for o in result.orders] == [D("0.044")]
    assert [a.kind for a in result.alerts] == [AlertKind.HEDGE_PARTIAL]
    assert ex.fetch_position(BTC).size == D("-0.044")
    assert result.leverage is not None and result.leverage <= 3
    assert ex.fetch_balance("USDT").free > 0


def test_a_refused_order_is_retried_then_alerts_and_leaves_nothing_in_flight() -> None:
    ex, _, _ = paper()
    flaky = FlakyExchange(ex)
    flaky.fail("create_order", Refused("Margin is insufficient."), times=2)
    c, _, sleeps = controller(flaky)
    result = c.sync(D(5))
    assert [a.kind for a in result.alerts] == [AlertKind.REJECTED]
    assert "insufficient" in result.alerts[0].message.lower()
    assert sleeps.delays == [0.5]  # two attempts (max_rejects), one wait
    assert ex.state.orders == [] and ex.fetch_position(BTC).size == 0
    assert c.state.pending is None and c.state.step == 0
    assert c.state.alerts[-1].kind is AlertKind.REJECTED


def test_downtime_backs_off_then_alerts_and_the_next_sync_resolves_the_order() -> None:
    ex, _, _ = paper()
    flaky = FlakyExchange(ex)
    flaky.fail("create_order", RetryLater("503 Service Unavailable"), times=10)
    c, store, sleeps = controller(flaky)
    result = c.sync(D(5))
    assert [a.kind for a in result.alerts] == [AlertKind.RETRIES_EXHAUSTED]
    # 4 attempts with exponential backoff; before each re-send the client id is looked up
    # for lookup_seconds (3 s: waits of 0.5 and 1)
    assert sleeps.delays == [0.5, 0.5, 1.0, 1.0, 0.5, 1.0, 2.0, 0.5, 1.0]
    assert flaky.calls["create_order"] == 4 and ex.state.orders == []
    # the outcome of the timeouts is unknown: the order stays in flight, in the stored state
    pending = store.load().pending  # type: ignore[union-attr]
    assert pending is not None and pending.client_order_id == result.alerts[0].client_order_id
    # the venue recovers: a restarted controller looks the order up first, then hedges once
    flaky._faults.clear()
    restarted, _, _ = controller(flaky, store=store)
    result = restarted.sync(D(5))
    assert not result.alerts and ex.fetch_position(BTC).size == D(-5)
    assert len(ex.state.orders) == 1 and restarted.state.pending is None


def test_read_downtime_alerts_without_acting() -> None:
    ex, _, _ = paper()
    flaky = FlakyExchange(ex)
    flaky.fail("fetch_position", RetryLater("502 Bad Gateway"), times=10)
    c, _, sleeps = controller(flaky)
    result = c.sync(D(5))
    assert isinstance(result.decision, NoAction) and result.orders == ()
    assert [a.kind for a in result.alerts] == [AlertKind.RETRIES_EXHAUSTED]
    assert sleeps.delays == [0.5, 1.0, 2.0] and ex.state.orders == []


def test_reconcile_on_start_adopts_the_venue_position() -> None:
    ex, _, _ = paper()
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(3), "manual1"))  # done by hand
    c, _, _ = controller(ex)
    result = c.sync(D(5))
    assert AlertKind.RECONCILE_MISMATCH in [a.kind for a in result.alerts]
    assert [o.filled for o in result.orders] == [D(2)]  # only the difference is traded
    assert ex.fetch_position(BTC).size == D(-5) and c.state.ledger.size == D(-5)


def test_reconcile_on_start_books_an_order_left_in_flight_by_a_crash() -> None:
    ex, _, _ = paper()
    cid = client_order_id(POSITION, 1, D(-5))
    ex.prepare_isolated(BTC, 3)
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(5), cid))  # it landed, then the crash
    crashed = HedgeState(
        position_id=POSITION,
        symbol=BTC,
        created_ms=T0,
        pending=PendingOrder(
            symbol=BTC,
            side=OrderSide.SELL,
            amount=D(5),
            client_order_id=cid,
            reduce_only=False,
            step=1,
            top_up=0,
            sent_ms=T0,
        ),
    )
    c, _, _ = controller(ex, store=MemoryStateStore(crashed))
    result = c.sync(D(5))
    assert not result.alerts and result.orders == ()  # booked, not re-sent; nothing to add
    assert c.state.pending is None and c.state.ledger.size == D(-5)
    assert len(ex.state.orders) == 1


def test_kill_switch_flattens_reduce_only_and_stops_syncing() -> None:
    ex, price, _ = paper()
    c, _, _ = controller(ex)
    c.sync(D(5))
    price.value = D(61_000)
    result = c.flatten()
    (close,) = result.orders
    assert close.reduce_only and close.side is OrderSide.BUY and close.filled == D(5)
    assert ex.fetch_position(BTC).size == 0 and c.state.killed
    assert [a.kind for a in result.alerts] == [AlertKind.KILL_SWITCH]
    blocked = c.sync(D(5))
    assert isinstance(blocked.decision, NoAction) and "kill switch" in blocked.decision.reason
    assert len(ex.state.orders) == 2
    c.resume()
    assert ex.fetch_position(BTC).size == 0
    c.sync(D(5))
    assert ex.fetch_position(BTC).size == D(-5)


def test_funding_gate_keeps_the_hedge_closed_when_shorts_pay() -> None:
    ex, _, _ = paper(funding=FundingSeries.constant(D("-0.0003")))  # shorts pay 32.85 % a year
    c, _, _ = controller(ex)
    result = c.sync(D(5))
    assert isinstance(result.decision, NoAction) and "funding" in result.decision.reason
    assert ex.state.orders == []


def test_pnl_breakdown_keeps_fees_and_funding_apart() -> None:
    ex, price, clock = paper()
    c, _, _ = controller(ex)
    c.sync(D(5))  # short 5 at the bids 59997, 59991, 59991 (2 BTC a level)
    clock.set(MIDNIGHT)
    c.sync(D(5))  # inside the band: no order, but the midnight funding is collected
    price.value = D(59_000)
    c.sync(D(4))  # buy back 1 BTC at 59003: realised PnL
    status = c.status(D(4))
    s = ex.state
    assert status.pnl.fees == s.fees_paid
    assert status.pnl.funding == s.funding_received == D(30)  # 5 * 60000 * 0.01 %, received
    assert status.pnl.realised == s.realized_pnl
    p = ex.fetch_position(BTC)
    assert status.pnl.unrealised == p.unrealized_pnl == p.size * (D(59_000) - p.entry_price)
    equity_change = ex.fetch_balance("USDT").total - D(1_000_000)
    assert status.pnl.total == equity_change  # every dollar is in exactly one column
    assert status.net == D(0) and status.funding_apr == D("-0.1095")


def test_executor_uses_an_existing_order_instead_of_sending() -> None:
    ex, _, _ = paper()
    request = OrderRequest(BTC, OrderSide.SELL, D(1), "lpbexisting")
    ex.create_order(request)
    executor = HedgeExecutor(ex, retry=RETRY, clock=ex.clock, sleep=Sleeps())
    result = executor.submit(request, may_exist=True)
    assert result.order is not None and result.order.filled == D(1)
    assert len(ex.state.orders) == 1


def test_state_for_another_position_is_refused() -> None:
    ex, _, _ = paper()
    other = HedgeState(position_id="1:npm:1", symbol=BTC, created_ms=T0)
    with pytest.raises(Refused):
        controller(ex, store=MemoryStateStore(other))


def test_the_venues_satisfy_the_exchange_protocol() -> None:
    ex = paper()[0]
    assert isinstance(ex, Exchange) and isinstance(FlakyExchange(ex), Exchange)


def test_an_open_order_is_polled_then_what_is_left_is_cancelled() -> None:
    ex, _, _ = paper()
    resting = ex.create_order(
        OrderRequest(BTC, OrderSide.BUY, D(1), "lpbrest", type=OrderType.LIMIT, price=D(59_000))
    )
    sleeps = Sleeps()
    final = HedgeExecutor(ex, retry=RETRY, clock=ex.clock, sleep=sleeps).settle(resting)
    assert final.status is OrderStatus.CANCELED and final.filled == 0
    assert sleeps.delays == [0.5, 1.0, 2.0]


def test_dry_run_decides_as_live_and_sends_nothing() -> None:
    ex, _, _ = paper()
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(2), "manual2"))
    dry = DryRunExchange(ex, ex.clock)
    c, store, _ = controller(ex)
    dry_controller = HedgeController(
        dry, CONFIG, MemoryStateStore(store.load()), position_id=POSITION, clock=ex.clock
    )
    result = dry_controller.sync(D(5))
    assert [(o.side, o.filled, o.average_price) for o in result.orders] == [
        (OrderSide.SELL, D(3), D(60_000))
    ]
    assert dry.fetch_position(BTC).size == D(-5)
    assert ex.fetch_position(BTC).size == D(-2) and len(ex.state.orders) == 1
    # the set-up and the margin the 20x manual position needs are simulated too
    assert dry.leverage == {BTC: 3} and dry.margin_added[BTC] > 0
    assert ex.state.leverage == 20 and ex.state.isolated_margin == D("5999.7")
    assert c.state.step == 0


def test_a_band_narrower_than_the_minimum_order_is_a_config_error() -> None:
    ex, _, _ = paper()
    c, _, _ = controller(ex, config=CONFIG.model_copy(update={"band_abs": D("0.0005")}))
    with pytest.raises(ConfigError):
        c.sync(D(5))
    assert ex.state.orders == []


def test_an_order_booked_at_start_up_advances_the_step_so_the_next_order_has_a_new_id() -> None:
    # the order in flight sold 5 of which the book held 3, then the process died; on restart it
    # is booked, and the top-up to -5 must not reuse its client id (Binance accepts a closed
    # order's id again, and a look-up by that id could then book the old order a second time)
    ex, _, _ = paper(book=BookModel(levels=1, depth_per_level=D(3), depth_jitter=D(0)))
    cid = client_order_id(POSITION, 1, D(-5))
    ex.prepare_isolated(BTC, 3)
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(5), cid))  # filled 3, then the crash
    crashed = HedgeState(
        position_id=POSITION,
        symbol=BTC,
        created_ms=T0,
        pending=PendingOrder(
            symbol=BTC,
            side=OrderSide.SELL,
            amount=D(5),
            client_order_id=cid,
            reduce_only=False,
            step=1,
            top_up=0,
            sent_ms=T0,
        ),
    )
    c, _, _ = controller(ex, store=MemoryStateStore(crashed))
    result = c.sync(D(5))
    assert [o.filled for o in result.orders] == [D(2)]
    assert result.orders[0].client_order_id != cid
    assert c.state.step == 2
    assert c.state.ledger.size == ex.fetch_position(BTC).size == D(-5)
    assert c.state.ledger.fees == ex.state.fees_paid
    assert len(ex.state.orders) == 2


def test_a_lagging_look_up_after_a_timeout_is_retried_not_taken_as_absent() -> None:
    # the market order filled, the answer was lost, and the venue's look-up by client id misses
    # it twice: one miss must not mean "send again" (a second short of 5)
    ex, _, _ = paper()
    flaky = FlakyExchange(ex, lookup_misses=2)
    flaky.fail("create_order", RetryLater("read timed out"), after=True)
    c, _, sleeps = controller(flaky)
    result = c.sync(D(5))
    assert flaky.calls["create_order"] == 1 and len(ex.state.orders) == 1
    assert ex.fetch_position(BTC).size == D(-5) and c.state.ledger.size == D(-5)
    assert not result.alerts and sleeps.delays == [0.5, 0.5, 1.0]


def test_when_the_venue_cannot_say_the_order_is_not_sent_again() -> None:
    ex, _, _ = paper()
    flaky = FlakyExchange(ex)
    flaky.fail("create_order", RetryLater("read timed out"))  # did it land? nobody knows
    flaky.fail("fetch_order", RetryLater("503"), times=100)
    c, store, _ = controller(flaky)
    result = c.sync(D(5))
    assert flaky.calls["create_order"] == 1
    assert [a.kind for a in result.alerts] == [AlertKind.ORDER_STATE_UNKNOWN]
    assert store.load().pending is not None  # type: ignore[union-attr]
    # a restart while the venue still cannot say: nothing is sent, the order stays in flight
    restarted, _, _ = controller(flaky, store=store)
    again = restarted.sync(D(5))
    assert [a.kind for a in again.alerts] == [AlertKind.ORDER_STATE_UNKNOWN]
    assert flaky.calls["create_order"] == 1 and restarted.state.pending is not None


def test_leverage_setting_rounds_down() -> None:
    ex, _, _ = paper()
    config = CONFIG.model_copy(update={"max_leverage": D("2.5")})
    assert config.venue_leverage == 2
    c, _, _ = controller(ex, config=config)
    c.sync(D(1))
    assert ex.state.leverage == 2  # ceil would post margin for 3x: above the 2.5x cap


def test_restarting_while_flat_keeps_hedging() -> None:
    ex, _, _ = paper()
    store = MemoryStateStore()
    for delta in (D(5), D(0), D(3)):  # open, flatten by the band logic, re-open: each a restart
        c, _, _ = controller(ex, store=store)
        result = c.sync(delta)
        assert not result.alerts
        assert ex.fetch_position(BTC).size == -delta


def test_a_refused_look_up_after_a_lost_answer_keeps_the_order_in_flight() -> None:
    # the order filled and its answer was lost; the look-ups by client id then fail with a
    # venue error (not a timeout): the order may exist, so it is neither forgotten nor re-sent
    ex, _, _ = paper()
    flaky = FlakyExchange(ex)
    flaky.fail("create_order", RetryLater("read timed out"), after=True)
    flaky.fail("fetch_order", Refused("unexpected answer"), times=2)
    c, store, _ = controller(flaky)
    result = c.sync(D(5))
    assert flaky.calls["create_order"] == 1 and ex.fetch_position(BTC).size == D(-5)
    assert result.alerts and store.load().pending is not None  # type: ignore[union-attr]
    restarted, _, _ = controller(flaky, store=store)
    restarted.sync(D(5))
    assert flaky.calls["create_order"] == 1 and len(ex.state.orders) == 1
    assert restarted.state.pending is None and restarted.state.ledger.size == D(-5)


def test_an_acknowledged_order_the_venue_cannot_find_yet_is_not_booked_as_unfilled() -> None:
    # Binance answers a market order with its acknowledgment (open, nothing filled); its order
    # index then lags: the polls find nothing and the cancel says "unknown order". The order
    # filled meanwhile, so booking it as unfilled would leave its fill and fee out of the ledger
    from dataclasses import replace

    ex, _, _ = paper()

    class Lagging(FlakyExchange):
        lagging = True

        def create_order(self, request: OrderRequest):  # type: ignore[no-untyped-def]
            order = super().create_order(request)
            return replace(order, status=OrderStatus.OPEN, filled=D(0), average_price=None)

        def fetch_order(self, symbol, *, order_id=None, client_order_id=None):  # type: ignore[no-untyped-def]
            if self.lagging:
                return None
            return super().fetch_order(symbol, order_id=order_id, client_order_id=client_order_id)

    lagging = Lagging(ex)
    lagging.fail("cancel_order", Refused("Unknown order sent."))
    c, store, _ = controller(lagging)
    result = c.sync(D(5))
    assert ex.fetch_position(BTC).size == D(-5) and len(ex.state.orders) == 1
    assert result.alerts and store.load().pending is not None  # type: ignore[union-attr]
    lagging.lagging = False  # the index caught up: the next sync books the fill
    again = c.sync(D(5))
    assert len(ex.state.orders) == 1 and not again.orders
    assert c.state.pending is None and c.state.ledger.size == D(-5)
    assert c.state.ledger.fees > 0


def test_a_refused_set_up_at_restart_still_keeps_the_open_hedges_margin() -> None:
    # Binance refuses to lower an isolated position's leverage while it is open (-4161): after
    # a restart with a lower cap, the set-up fails on every sync. The short must still get the
    # margin that keeps it under the cap as the price rises, not be left to liquidation
    ex, price, _ = paper(balance=D(400_000))
    store = MemoryStateStore()
    c, _, _ = controller(ex, store=store)
    c.sync(D(5))
    flaky = FlakyExchange(ex)
    flaky.fail(
        "prepare_isolated",
        Refused("-4161 Leverage reduction is not supported in Isolated Margin Mode"),
        times=100,
    )
    config = CONFIG.model_copy(update={"max_leverage": D(2)})
    restarted, _, _ = controller(flaky, store=store, config=config)
    price.value = D(66_000)  # +10 % against the short
    result = restarted.sync(D(5))
    assert any(a.kind is AlertKind.REJECTED for a in result.alerts)
    assert result.margin_added > 0 and not any(o for o in result.orders if not o.reduce_only)
    position = ex.fetch_position(BTC)
    assert position.size == D(-5) and position.margin_leverage <= 2  # type: ignore[operator]
