"""The same adapter suite against the stand-ins of Binance USD-M, OKX and Bybit.

ccxt's own venue code runs unpatched, pointed at 127.0.0.1 through ``urls['api']``; each stand-in
checks its venue's request signing, takes orders with the venue's parameter names and answers
with its JSON and error codes, over one paper venue (``PaperExchange``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from lpbot.errors import NeedsAttention, RetryLater
from lpbot.hedge.base import OrderExists, OrderRequest, OrderSide, OrderType
from lpbot.hedge.ccxt_exchange import CcxtConfig, CcxtExchange, ExchangeId
from lpbot.hedge.controller import HedgeController, HedgeExecutor
from lpbot.hedge.plan import HedgeConfig, RetryPolicy
from lpbot.hedge.state import MemoryStateStore
from tests.hedge import binance_standin, bybit_standin, okx_standin
from tests.hedge.fakes import BTC, Price, Sleeps, paper
from tests.hedge.standin import Fault, VenueStandIn

D = Decimal


@dataclass(frozen=True)
class Venue:
    id: ExchangeId
    standin: type[VenueStandIn]
    env: dict[str, str]
    order_path: str  # where orders are posted
    lookup_path: str  # where an order is looked up by client id
    position_side: dict[str, Any]  # what one-way orders must carry
    # the venue's "already set" answer to a set-up call: (method, path, code, message)
    already_set: tuple[str, str, int, str] | None


VENUES = [
    Venue(
        "binanceusdm",
        binance_standin.BinanceStandIn,
        {
            "LPBOT_BINANCE_KEY": binance_standin.API_KEY,
            "LPBOT_BINANCE_SECRET": binance_standin.API_SECRET,
        },
        "/fapi/v1/order",
        "/fapi/v1/order",
        {"positionSide": "BOTH"},
        ("POST", "/fapi/v1/marginType", -4046, "No need to change margin type."),
    ),
    Venue(
        "okx",
        okx_standin.OkxStandIn,
        {
            "LPBOT_OKX_KEY": okx_standin.API_KEY,
            "LPBOT_OKX_SECRET": okx_standin.API_SECRET,
            "LPBOT_OKX_PASSWORD": okx_standin.API_PASSPHRASE,
        },
        "/api/v5/trade/order",
        "/api/v5/trade/order",
        {"posSide": "net", "tdMode": "isolated"},
        None,  # OKX answers a same-value change with success
    ),
    Venue(
        "bybit",
        bybit_standin.BybitStandIn,
        {
            "LPBOT_BYBIT_KEY": bybit_standin.API_KEY,
            "LPBOT_BYBIT_SECRET": bybit_standin.API_SECRET,
        },
        "/v5/order/create",
        "/v5/order/realtime",
        {"positionIdx": 0},
        ("POST", "/v5/position/set-leverage", 110043, "Set leverage not modified"),
    ),
]


@pytest.fixture(params=VENUES, ids=[v.id for v in VENUES])
def venue(request: pytest.FixtureRequest) -> Iterator[tuple[Venue, VenueStandIn]]:
    v: Venue = request.param
    ex, _price, clock = paper()
    with v.standin(ex, clock).running() as server:
        yield v, server


def client(v: Venue, server: VenueStandIn, *, timeout_ms: int = 2000, **kw: Any) -> CcxtExchange:
    config = CcxtConfig.for_exchange(
        v.id,
        api_urls=server.api_urls(),  # type: ignore[attr-defined]
        enable_rate_limit=False,
        timeout_ms=timeout_ms,
    )
    return CcxtExchange(config, env=kw.get("env", v.env))


def price_of(server: VenueStandIn) -> Price:
    reference = server.paper._reference
    assert isinstance(reference, Price)
    return reference


def test_reads_in_base_tokens_with_equity_including_unrealised_pnl(
    venue: tuple[Venue, VenueStandIn],
) -> None:
    v, server = venue
    ex = client(v, server)
    m = ex.load_market(BTC)
    assert (m.base, m.settle, m.amount_step, m.min_amount) == (
        "BTC",
        "USDT",
        D("0.001"),
        D("0.001"),
    )
    assert ex.fetch_position(BTC).size == 0
    assert ex.fetch_balance("USDT").total == D(1_000_000)
    assert ex.fetch_mark_price(BTC) == D(60_000)
    funding = ex.fetch_funding_rate(BTC)
    assert funding.rate == D("0.0001")
    # the interval where the venue's rate says it (Bybit's market, OKX's settlement times;
    # Binance's premium index does not: the regime then takes 8 h)
    assert funding.interval_hours == (None if v.id == "binanceusdm" else 8.0)
    tiers = ex.fetch_margin_tiers(BTC)
    assert [t.mmr for t in tiers] == [t.mmr for t in server.paper.fetch_margin_tiers(BTC)]
    ex.prepare_isolated(BTC, 3)
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(2), "lpbequity1"))
    price_of(server).value = D(61_000)  # the short loses 2 * (61,000 - 59,997) = 2,006
    b = ex.fetch_balance("USDT")
    assert b.total == server.paper.fetch_balance("USDT").total
    s = server.paper.state
    assert b.total == s.cash + s.isolated_margin - 2 * (D(61_000) - D(59_997))
    p = ex.fetch_position(BTC)
    assert (p.size, p.entry_price, p.mark_price) == (D(-2), D(59_997), D(61_000))
    assert p.isolated_margin == s.isolated_margin == D(39_998)


def test_set_up_is_idempotent_and_a_restart_while_flat_changes_nothing(
    venue: tuple[Venue, VenueStandIn],
) -> None:
    v, server = venue
    ex = client(v, server)
    first = ex.prepare_isolated(BTC, 3)
    assert "leverage: 3" in first and server.paper._state.leverage == 3
    assert server.paper._state.margin_mode == "isolated"
    posts = len([r for r in server.requests if r.method == "POST"])
    assert client(v, server).prepare_isolated(BTC, 3) == ()  # a restart
    assert len([r for r in server.requests if r.method == "POST"]) == posts


def test_the_venues_already_set_answer_is_no_change(venue: tuple[Venue, VenueStandIn]) -> None:
    v, server = venue
    if v.already_set is None:
        pytest.skip(f"{v.id} has no 'not modified' answer")
    method, path, code, msg = v.already_set
    server.paper._state.margin_mode = "cross"
    server.paper._state.leverage = 20
    server.inject(Fault(method, path, "error", status=400, code=code, msg=msg))
    ex = client(v, server)
    ex.prepare_isolated(BTC, 3)  # does not raise
    assert server.calls(method, path)


def test_hedge_position_mode_is_switched_when_flat_and_refused_with_a_position(
    venue: tuple[Venue, VenueStandIn],
) -> None:
    v, server = venue
    server.paper._state.hedge_mode = True
    ex = client(v, server)
    assert "position mode: one-way" in ex.prepare_isolated(BTC, 3)
    assert server.paper._state.hedge_mode is False
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(1), "lpbmode1"))
    server.paper._state.hedge_mode = True
    with pytest.raises(NeedsAttention, match="one-way"):
        client(v, server).prepare_isolated(BTC, 3)


def test_orders_are_signed_and_carry_client_id_and_position_side(
    venue: tuple[Venue, VenueStandIn],
) -> None:
    v, server = venue
    ex = client(v, server)
    ex.prepare_isolated(BTC, 3)
    order = ex.create_order(OrderRequest(BTC, OrderSide.SELL, D("1.5"), "lpbsigned1"))
    assert (order.filled, order.average_price, order.client_order_id) == (
        D("1.5"),
        D(59_997),
        "lpbsigned1",
    )
    assert order.fee == D("44.99775")  # 1.5 * 59,997 * 0.05 %
    (post,) = server.calls("POST", v.order_path)
    for key, value in v.position_side.items():
        assert str(post.params[key]) == str(value), key
    private = [r for r in server.requests if r.signature_valid is not None]
    assert private and all(r.signature_valid for r in private)
    assert server.paper.fetch_position(BTC).size == D("-1.5")


def test_add_margin_reaches_the_isolated_wallet(venue: tuple[Venue, VenueStandIn]) -> None:
    v, server = venue
    ex = client(v, server)
    ex.prepare_isolated(BTC, 3)
    ex.create_order(OrderRequest(BTC, OrderSide.SELL, D(2), "lpbmargin1"))
    ex.add_margin(BTC, D("1234.5"))
    assert ex.fetch_position(BTC).isolated_margin == D(39_998) + D("1234.5")


def test_a_timeout_and_a_lagging_look_up_do_not_send_twice(
    venue: tuple[Venue, VenueStandIn],
) -> None:
    v, server = venue
    ex = client(v, server, timeout_ms=400)
    ex.load_market(BTC)
    server.inject(Fault("POST", v.order_path, "delay_after", delay_s=1.0))
    server.lookup_misses = 1  # the venue's index has not caught up at the first look-up
    executor = HedgeExecutor(ex, retry=RetryPolicy(max_attempts=3), clock=server.clock,
                             sleep=Sleeps())  # fmt: skip
    result = executor.submit(OrderRequest(BTC, OrderSide.SELL, D(2), "lpbtimeout1"))
    assert result.order is not None and result.order.filled == D(2)
    assert len(server.calls("POST", v.order_path)) == 1
    assert len(server.paper.state.orders) == 1 and server.paper.fetch_position(BTC).size == D(-2)
    assert ex.fetch_order(BTC, client_order_id="lpbnothere") is None


def test_a_wrong_secret_needs_attention(venue: tuple[Venue, VenueStandIn]) -> None:
    v, server = venue
    env = {k: ("wrong" if "SECRET" in k else val) for k, val in v.env.items()}
    ex = client(v, server, env=env)
    with pytest.raises(NeedsAttention) as err:
        ex.fetch_balance("USDT")
    assert "wrong" not in str(err.value) and "wrong" not in repr(ex)


def test_a_rate_limit_is_retry_later(venue: tuple[Venue, VenueStandIn]) -> None:
    v, server = venue
    ex = client(v, server)
    ex.load_market(BTC)
    server.inject(Fault("GET", v.lookup_path, "status", status=429))
    with pytest.raises(RetryLater):
        ex.fetch_order(BTC, order_id="1")


def test_the_controller_hedges_restarts_flat_and_hedges_again(
    venue: tuple[Venue, VenueStandIn],
) -> None:
    # the reproduction: sync, flatten, restart -> it used to be refused for good
    v, server = venue
    config = HedgeConfig(symbol=BTC, band_abs=D("0.05"), band_pct=D(2))
    store = MemoryStateStore()

    def start() -> HedgeController:
        return HedgeController(client(v, server), config, store, position_id="1:npm:9",
                               clock=server.clock, sleep=Sleeps())  # fmt: skip

    result = start().sync(D("2.5"))
    assert not result.alerts and server.paper.fetch_position(BTC).size == D("-2.5")
    c = start()
    c.flatten()
    assert server.paper.fetch_position(BTC).size == 0
    c.resume()
    again = start().sync(D("1.5"))
    assert not again.alerts and server.paper.fetch_position(BTC).size == D("-1.5")
    assert again.leverage is not None and again.leverage <= 3


def test_no_mark_price_is_retry_later_not_the_last_trade() -> None:
    v = next(v for v in VENUES if v.id == "bybit")  # its ticker carries a last price as well
    ex_paper, _price, clock = paper()
    standin = v.standin(ex_paper, clock, omit_mark=True)
    with standin.running() as server, pytest.raises(RetryLater, match="mark price"):
        client(v, server).fetch_mark_price(BTC)


@pytest.mark.parametrize(
    ("exchange_id", "marker"),
    [("binanceusdm", "testnet"), ("bybit", "testnet"), ("okx", "x-simulated-trading")],
)
def test_sandbox_uses_the_venues_testnet(exchange_id: ExchangeId, marker: str) -> None:
    config = CcxtConfig.for_exchange(exchange_id, sandbox=True)
    env = {config.key_env: "k", config.secret_env: "s"}
    if config.password_env:
        env[config.password_env] = "p"
    ex = CcxtExchange(config, env=env)
    urls = str(ex._client.urls["api"]) + str(ex._client.headers)
    assert marker in urls
    live = CcxtExchange(CcxtConfig.for_exchange(exchange_id), env=env)
    assert marker not in str(live._client.urls["api"]) + str(live._client.headers)


@pytest.mark.parametrize(
    ("exchange_id", "path", "code"),
    [("okx", "/api/v5/trade/order", 51603), ("bybit", "/v5/order/realtime", 110001)],
)
def test_an_acknowledged_order_whose_read_back_misses_is_not_sent_again(
    exchange_id: ExchangeId, path: str, code: int
) -> None:
    # the venue acknowledged the order (its id came back), then its look-up lagged once:
    # the order exists, so sending it again would open a second position
    v = next(v for v in VENUES if v.id == exchange_id)
    ex_paper, _price, clock = paper()
    with v.standin(ex_paper, clock).running() as server:
        ex = client(v, server)
        ex.load_market(BTC)
        server.inject(Fault("GET", path, "error", status=400, code=code, msg="no such order"))
        executor = HedgeExecutor(ex, retry=RetryPolicy(max_attempts=3), clock=server.clock,
                                 sleep=Sleeps())  # fmt: skip
        result = executor.submit(OrderRequest(BTC, OrderSide.SELL, D(2), "lpbackmiss1"))
        assert len(server.calls("POST", v.order_path)) == 1
        assert server.paper.fetch_position(BTC).size == D(-2)
        assert result.order is not None and result.order.filled == D(2)


def test_a_duplicate_client_id_is_the_order_looked_up_again_not_a_rejection(
    venue: tuple[Venue, VenueStandIn],
) -> None:
    """Binance -4116, OKX 51016, Bybit 110072: an order with this client id is open."""
    v, server = venue
    ex = client(v, server)
    ex.prepare_isolated(BTC, 3)
    resting = OrderRequest(BTC, OrderSide.SELL, D(1), "lpbdup1", OrderType.LIMIT, D(70_000))
    first = ex.create_order(resting)  # above the market: it rests
    with pytest.raises(OrderExists):
        ex.create_order(resting)
    executor = HedgeExecutor(ex, retry=RetryPolicy(max_attempts=3), clock=server.clock,
                             sleep=Sleeps())  # fmt: skip
    result = executor.submit(resting)  # e.g. sent again after a lost answer
    assert result.alert is None and result.order is not None
    assert result.order.id == first.id and result.order.filled == 0  # found, then cancelled
    assert [o.client_order_id for o in server.paper.state.orders] == ["lpbdup1"]
    assert len(server.calls("POST", v.order_path)) == 3  # first, duplicate, executor: no more
