"""ccxt's own ``binanceusdm`` code against a local stand-in of the Binance USD-M REST API.

Nothing of ccxt is patched: it is pointed at 127.0.0.1 through its ``urls['api']`` setting, signs
its requests (checked server-side with the test secret) and parses Binance-format JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from lpbot.errors import NeedsAttention, Refused, RetryLater
from lpbot.hedge.base import OrderRequest, OrderSide, OrderStatus, OrderType
from lpbot.hedge.ccxt_exchange import CcxtConfig, CcxtExchange
from lpbot.hedge.controller import HedgeController, HedgeExecutor
from lpbot.hedge.plan import HedgeConfig, RetryPolicy
from lpbot.hedge.state import MemoryStateStore
from tests.hedge.binance_standin import API_KEY, API_SECRET, BinanceStandIn, Fault
from tests.hedge.fakes import BTC, T0, Price, Sleeps, paper

D = Decimal
MIDNIGHT = T0 + 6_400_000
ENV = {"LPBOT_BINANCE_KEY": API_KEY, "LPBOT_BINANCE_SECRET": API_SECRET}


@pytest.fixture
def standin() -> Iterator[BinanceStandIn]:
    ex, _price, clock = paper()
    with BinanceStandIn(ex, clock).running() as server:
        yield server


def venue(
    standin: BinanceStandIn, *, env: dict[str, str] = ENV, timeout_ms: int = 2000
) -> CcxtExchange:
    config = CcxtConfig.for_exchange(
        "binanceusdm", api_urls=standin.api_urls(), enable_rate_limit=False, timeout_ms=timeout_ms
    )
    return CcxtExchange(config, env=env)


def price_of(standin: BinanceStandIn) -> Price:
    reference = standin.paper._reference
    assert isinstance(reference, Price)
    return reference


def test_markets_and_reads_parse_binance_json(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    m = ex.load_market(BTC)
    assert (m.base, m.settle, m.contract_size) == ("BTC", "USDT", D(1))
    assert (m.amount_step, m.min_amount, m.min_notional, m.price_tick) == (
        D("0.001"),
        D("0.001"),
        D(100),
        D("0.1"),
    )
    assert ex.fetch_position(BTC).size == 0
    b = ex.fetch_balance("USDT")
    assert (b.total, b.free, b.used) == (D(1_000_000), D(1_000_000), D(0))
    rate = ex.fetch_funding_rate(BTC)
    assert (rate.rate, rate.mark_price, rate.next_funding_ms) == (D("0.0001"), D(60_000), MIDNIGHT)
    history = ex.fetch_funding_rate_history(BTC, T0 - 24 * 3_600_000 + 1)
    assert [r.rate for r in history] == [D("0.0001")] * 3
    assert ex.fetch_mark_price(BTC) == D(60_000)


def test_orders_are_signed_and_carry_the_client_order_id(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    ex.prepare_isolated(BTC, 3)
    order = ex.create_order(OrderRequest(BTC, OrderSide.SELL, D("1.5"), "lpbsigned1"))
    assert (order.status, order.filled, order.average_price) == (
        OrderStatus.CLOSED,
        D("1.5"),
        D("59997.0"),
    )
    assert order.fee == D("44.99775")  # from /fapi/v1/userTrades: 1.5 * 59997 * 0.05 %
    (post,) = standin.calls("POST", "/fapi/v1/order")
    assert post.params["newClientOrderId"] == "lpbsigned1"
    assert (post.params["side"], post.params["type"], post.params["quantity"]) == (
        "SELL",
        "MARKET",
        "1.5",
    )
    private = [r for r in standin.requests if r.signature_valid is not None]
    assert private and all(r.signature_valid and r.api_key == API_KEY for r in private)
    assert all("timestamp" in r.params for r in private)
    assert standin.calls("POST", "/fapi/v1/marginType")[0].params["marginType"] == "ISOLATED"
    assert standin.calls("POST", "/fapi/v1/leverage")[0].params["leverage"] == "3"
    p = ex.fetch_position(BTC)
    assert (p.size, p.entry_price, p.isolated_margin) == (D("-1.5"), D("59997.0"), D("29998.5"))
    assert p.liquidation_price is not None
    assert p.liquidation_price.quantize(D("0.01")) == D("79677.29")  # (29998.5 + 89995.5) / 1.506


def test_a_wrong_secret_needs_attention_and_no_secret_is_shown(standin: BinanceStandIn) -> None:
    ex = venue(standin, env={"LPBOT_BINANCE_KEY": API_KEY, "LPBOT_BINANCE_SECRET": "wrong"})
    with pytest.raises(NeedsAttention) as err:
        ex.fetch_balance("USDT")
    assert isinstance(err.value.__cause__, ccxt.AuthenticationError)
    assert standin.requests[-1].signature_valid is False
    for text in (str(err.value), repr(ex)):
        assert API_KEY not in text and "wrong" not in text


def test_missing_keys_name_the_variables() -> None:
    with pytest.raises(NeedsAttention) as err:
        CcxtExchange(CcxtConfig.for_exchange("binanceusdm"), env={})
    assert "LPBOT_BINANCE_KEY" in str(err.value) and "LPBOT_BINANCE_SECRET" in str(err.value)


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limits_are_retry_later(standin: BinanceStandIn, status: int) -> None:
    ex = venue(standin)
    ex.load_market(BTC)
    standin.inject(Fault("GET", "/fapi/v3/account", "status", status=status))
    with pytest.raises(RetryLater) as err:
        ex.fetch_balance("USDT")
    assert isinstance(err.value.__cause__, ccxt.DDoSProtection)
    assert ex.fetch_balance("USDT").total == D(1_000_000)  # and the next call goes through


def test_a_5xx_is_retry_later(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    ex.load_market(BTC)
    standin.inject(Fault("GET", "/fapi/v3/positionRisk", "status", status=503))
    with pytest.raises(RetryLater) as err:
        ex.fetch_position(BTC)
    assert isinstance(err.value.__cause__, ccxt.ExchangeNotAvailable)


def test_a_timeout_is_retry_later(standin: BinanceStandIn) -> None:
    ex = venue(standin, timeout_ms=300)
    ex.load_market(BTC)
    standin.inject(Fault("GET", "/fapi/v1/premiumIndex", "delay_before", delay_s=0.8))
    with pytest.raises(RetryLater) as err:
        ex.fetch_funding_rate(BTC)
    assert isinstance(err.value.__cause__, ccxt.RequestTimeout)


def test_margin_insufficient_is_refused(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    ex.prepare_isolated(BTC, 3)
    with pytest.raises(Refused) as err:  # 100 BTC at 3x needs 2,000,000 USDT of margin
        ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(100), "lpbtoobig"))
    assert isinstance(err.value.__cause__, ccxt.InsufficientFunds)
    assert "-2019" in str(err.value.__cause__)
    assert ex.fetch_position(BTC).size == 0


def test_other_order_rejections_are_refused(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    with pytest.raises(Refused):  # 0.001 BTC is 60 USDT: under the minimum notional (-4164)
        ex.create_order(OrderRequest(BTC, OrderSide.SELL, D("0.001"), "lpbtiny"))
    with pytest.raises(Refused):  # reduce-only with nothing to reduce (-2022)
        ex.create_order(OrderRequest(BTC, OrderSide.BUY, D(1), "lpbreduce", reduce_only=True))


def test_timeout_on_create_then_retry_finds_the_order_exactly_one_position(
    standin: BinanceStandIn,
) -> None:
    ex = venue(standin, timeout_ms=400)
    ex.load_market(BTC)
    # the order is executed, then the answer comes too late: ccxt raises RequestTimeout
    standin.inject(Fault("POST", "/fapi/v1/order", "delay_after", delay_s=1.2))
    sleeps = Sleeps()
    executor = HedgeExecutor(
        ex, retry=RetryPolicy(max_attempts=3), clock=standin.clock, sleep=sleeps
    )
    result = executor.submit(OrderRequest(BTC, OrderSide.SELL, D(2), "lpbtimeout1"))
    assert result.order is not None and result.alert is None
    assert result.order.filled == D(2) and result.order.client_order_id == "lpbtimeout1"
    assert len(standin.calls("POST", "/fapi/v1/order")) == 1
    lookups = standin.calls("GET", "/fapi/v1/order")
    assert lookups[0].params["origClientOrderId"] == "lpbtimeout1"
    assert len(standin.paper.state.orders) == 1
    assert ex.fetch_position(BTC).size == D(-2)
    assert sleeps.delays == [0.5]


def test_an_unknown_client_order_id_is_none(standin: BinanceStandIn) -> None:
    assert venue(standin).fetch_order(BTC, client_order_id="lpbnothere") is None


def test_a_resting_limit_order_can_be_fetched_and_cancelled(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    order = ex.create_order(
        OrderRequest(BTC, OrderSide.BUY, D(1), "lpblimit1", type=OrderType.LIMIT, price=D(59_000))
    )
    assert order.status is OrderStatus.OPEN and order.filled == 0
    fetched = ex.fetch_order(BTC, order_id=order.id)
    assert fetched is not None and fetched.client_order_id == "lpblimit1"
    cancelled = ex.cancel_order(BTC, order.id)
    assert cancelled.status is OrderStatus.CANCELED
    with pytest.raises(Refused):  # -2011 unknown order
        ex.cancel_order(BTC, order.id)


def test_funding_payments_come_from_the_income_endpoint(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(2), "lpbfunding1"))
    standin.clock.set(MIDNIGHT)
    (payment,) = ex.fetch_funding_payments(BTC, T0)
    assert (payment.amount, payment.timestamp_ms) == (D(12), MIDNIGHT)  # a short receives


def test_the_controller_hedges_through_ccxt(standin: BinanceStandIn) -> None:
    ex = venue(standin)
    config = HedgeConfig(symbol=BTC, band_abs=D("0.05"), band_pct=D(2))
    c = HedgeController(
        ex, config, MemoryStateStore(), position_id="31337:npm:9", clock=standin.clock,
        sleep=Sleeps(),
    )  # fmt: skip
    result = c.sync(D("2.5"))
    assert not result.alerts and [o.filled for o in result.orders] == [D("2.5")]
    assert standin.paper.fetch_position(BTC).size == D("-2.5")
    price_of(standin).value = D(58_000)
    status = c.status(D("2.5"))
    assert status.hedge == D("-2.5") and status.pnl.unrealised > 0
    assert status.pnl.fees == standin.paper.state.fees_paid
    flat = c.flatten()
    assert flat.orders[0].reduce_only and standin.paper.fetch_position(BTC).size == 0
    assert standin.calls("POST", "/fapi/v1/order")[-1].params["reduceOnly"] == "true"


@pytest.mark.parametrize("exchange_id", ["okx", "bybit"])
def test_other_venues_read_their_own_variables_and_hide_them(exchange_id: str) -> None:
    config = CcxtConfig.for_exchange(exchange_id)  # type: ignore[arg-type]
    env = {config.key_env: "k-visible?", config.secret_env: "s-visible?"}
    if config.password_env:
        env[config.password_env] = "p-visible?"
    ex = CcxtExchange(config, env=env)
    assert repr(ex) == f"CcxtExchange({exchange_id})" and "visible" not in repr(ex)
    assert (config.key_env, config.password_env is not None) == (
        f"LPBOT_{exchange_id.upper()}_KEY",
        exchange_id == "okx",
    )
