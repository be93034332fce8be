"""A local stand-in for the Binance USD-M futures REST API, backed by ``PaperExchange``.

It serves, on 127.0.0.1, the endpoints ccxt's ``binanceusdm`` calls for lpbot's hedge, with
Binance's JSON shapes and error codes (developers.binance.com, "USDⓈ-M Futures"):

public   GET  /fapi/v1/exchangeInfo, /fapi/v1/time, /fapi/v1/premiumIndex, /fapi/v1/fundingRate
signed   GET  /fapi/v1/leverageBracket, /fapi/v3/positionRisk, /fapi/v3/account, /fapi/v2/balance,
              /fapi/v1/income, /fapi/v1/userTrades, /fapi/v1/order
         POST /fapi/v1/order, /fapi/v1/leverage, /fapi/v1/marginType
         DELETE /fapi/v1/order

Signed requests are checked as Binance checks them: the ``X-MBX-APIKEY`` header names the key,
and ``signature`` is the hex HMAC-SHA256, under the secret, of the query string (GET, DELETE) or
form body (POST) that precedes it. Every request is recorded. Faults can be queued per endpoint:
an HTTP status (429, 418, 503), a Binance error code, or a delay before or after the request is
executed (the client times out; with "after", the order exists nonetheless).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from lpbot.hedge.base import ManualClock, OrderRequest, OrderSide, OrderStatus, OrderType
from lpbot.hedge.paper import PaperExchange, PaperOrder, PaperRejection, RejectCode

API_KEY = "standin-test-key"
API_SECRET = "standin-test-secret"

_REJECTIONS: dict[RejectCode, tuple[int, str]] = {
    RejectCode.MARGIN_INSUFFICIENT: (-2019, "Margin is insufficient."),
    RejectCode.MIN_NOTIONAL: (
        -4164,
        "Order's notional must be no smaller than 100 (unless you choose reduce only).",
    ),
    RejectCode.LOT_SIZE: (-1111, "Precision is over the maximum defined for this asset."),
    RejectCode.REDUCE_ONLY_REJECTED: (-2022, "ReduceOnly Order is rejected."),
    RejectCode.DUPLICATE_CLIENT_ID: (-4116, "ClientOrderId is duplicated."),
    RejectCode.UNKNOWN_ORDER: (-2011, "Unknown order sent."),
    RejectCode.BAD_LEVERAGE: (-4028, "Leverage is not valid"),
    RejectCode.NO_LIQUIDITY: (-2020, "Unable to fill."),
    RejectCode.BAD_SYMBOL: (-1121, "Invalid symbol."),
}
_STATUS = {
    OrderStatus.CLOSED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
}

FaultKind = Literal["status", "error", "delay_before", "delay_after"]


@dataclass
class Fault:
    """What to do instead of (or around) the next matching request."""

    method: str
    path: str
    kind: FaultKind
    status: int = 503
    code: int = 0
    msg: str = ""
    delay_s: float = 0.0
    times: int = 1


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    api_key: str | None
    signature_valid: bool | None  # None: an unsigned (public) endpoint


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _s(value: Decimal | None, places: int = 8) -> str:
    if value is None:
        return "0"
    return f"{value:.{places}f}"


@dataclass
class BinanceStandIn:
    """The server and its paper venue; ``url`` is its base (``http://127.0.0.1:<port>``)."""

    paper: PaperExchange
    clock: ManualClock
    api_key: str = API_KEY
    secret: str = API_SECRET
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    margin_type: str = "CROSSED"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # ----------------------------------------------------------------------------- control

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def api_urls(self) -> dict[str, str]:
        """What to put in ccxt's ``urls['api']`` for the USD-M endpoints."""
        base = self.url
        return {
            "fapiPublic": f"{base}/fapi/v1",
            "fapiPublicV2": f"{base}/fapi/v2",
            "fapiPublicV3": f"{base}/fapi/v3",
            "fapiPrivate": f"{base}/fapi/v1",
            "fapiPrivateV2": f"{base}/fapi/v2",
            "fapiPrivateV3": f"{base}/fapi/v3",
            "fapiData": f"{base}/futures/data",
        }

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    @contextmanager
    def running(self) -> Iterator[BinanceStandIn]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def do_DELETE(self) -> None:
                standin._handle(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._server = None

    # ----------------------------------------------------------------------------- plumbing

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (fault.method, fault.path) == (method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        raw = parts.query
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            raw = h.rfile.read(length).decode()
        params = dict(parse_qsl(raw, keep_blank_values=True))
        path = parts.path
        signed = "signature" in params
        valid: bool | None = None
        if signed:
            payload = raw.rsplit("&signature=", 1)[0]
            expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(expected, params["signature"])
        key = h.headers.get("X-MBX-APIKEY")
        with self._lock:
            self.requests.append(Recorded(method, path, params, key, valid))
        fault = self._take_fault(method, path)
        status, body = 200, None
        try:
            if fault is not None and fault.kind == "status":
                if fault.status >= 500:  # a gateway's page, not Binance's JSON
                    self._reply(h, fault.status, b"<html>Service Unavailable</html>", "text/html")
                    return
                raise _ApiError(fault.status, -1003, "Too many requests; IP banned until later.")
            if fault is not None and fault.kind == "error":
                raise _ApiError(fault.status if fault.status < 500 else 400, fault.code, fault.msg)
            if fault is not None and fault.kind == "delay_before":
                time.sleep(fault.delay_s)
            if signed or path in _PRIVATE:
                if key != self.api_key:
                    raise _ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
                if not valid:
                    raise _ApiError(400, -1022, "Signature for this request is not valid.")
                if "timestamp" not in params:
                    raise _ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent.")
            route = _ROUTES.get((method, path))
            if route is None:
                raise _ApiError(404, -5000, f"Path {path} not found")
            with self._lock:
                body = route(self, params)
        except _ApiError as exc:
            status, body = exc.status, {"code": exc.code, "msg": exc.msg}
        except PaperRejection as exc:
            code, msg = _REJECTIONS[exc.code]
            status, body = 400, {"code": code, "msg": msg}
        if fault is not None and fault.kind == "delay_after":
            time.sleep(fault.delay_s)
        self._reply(h, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass  # the client gave up (timed out) before the answer

    # ----------------------------------------------------------------------------- venue

    @property
    def _spec_id(self) -> str:
        spec = self.paper.spec
        return f"{spec.base}{spec.settle}"

    def _symbol(self, params: dict[str, str]) -> str:
        if params.get("symbol") != self._spec_id:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return self.paper.spec.symbol

    def _now(self) -> int:
        return self.clock.now_ms()

    def exchange_info(self, _params: dict[str, str]) -> object:
        spec = self.paper.spec
        places = max(0, -spec.amount_step.as_tuple().exponent)  # type: ignore[operator]
        price_places = max(0, -spec.price_tick.as_tuple().exponent)  # type: ignore[operator]
        return {
            "timezone": "UTC",
            "serverTime": self._now(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": spec.settle, "marginAvailable": True, "autoAssetExchange": "0"}],
            "symbols": [
                {
                    "symbol": self._spec_id,
                    "pair": self._spec_id,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": spec.base,
                    "quoteAsset": spec.settle,
                    "marginAsset": spec.settle,
                    "pricePrecision": price_places,
                    "quantityPrecision": places,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": ["PoW"],
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": "556.80",
                            "maxPrice": "4529764",
                            "tickSize": str(spec.price_tick),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": str(spec.min_amount),
                            "maxQty": "1000",
                            "stepSize": str(spec.amount_step),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": str(spec.min_amount),
                            "maxQty": "120",
                            "stepSize": str(spec.amount_step),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": str(spec.min_notional)},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": [
                        "LIMIT",
                        "MARKET",
                        "STOP",
                        "STOP_MARKET",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_MARKET",
                        "TRAILING_STOP_MARKET",
                    ],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                }
            ],
        }

    def server_time(self, _params: dict[str, str]) -> object:
        return {"serverTime": self._now()}

    def premium_index(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        rate = self.paper.fetch_funding_rate(symbol)
        mark = rate.mark_price
        return {
            "symbol": self._spec_id,
            "markPrice": _s(mark),
            "indexPrice": _s(mark),
            "estimatedSettlePrice": _s(mark),
            "lastFundingRate": _s(rate.rate),
            "interestRate": "0.00010000",
            "nextFundingTime": rate.next_funding_ms,
            "time": rate.timestamp_ms,
        }

    def funding_rate(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        since = int(params.get("startTime", self._now() - 100 * 8 * 3_600_000))
        rates = self.paper.fetch_funding_rate_history(symbol, since)
        limit = int(params.get("limit", 100))
        return [
            {
                "symbol": self._spec_id,
                "fundingTime": r.timestamp_ms,
                "fundingRate": _s(r.rate),
                "markPrice": "0",
            }
            for r in rates[:limit]
        ]

    def leverage_bracket(self, _params: dict[str, str]) -> object:
        spec = self.paper.spec
        return [
            {
                "symbol": self._spec_id,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": spec.max_leverage,
                        "notionalCap": 50_000_000,
                        "notionalFloor": 0,
                        "maintMarginRatio": float(spec.maintenance_margin_rate),
                        "cum": float(spec.maintenance_amount),
                    },
                ],
            }
        ]

    def _position_json(self) -> dict[str, Any] | None:
        symbol = self.paper.spec.symbol
        p = self.paper.fetch_position(symbol)
        if p.size == 0:
            return None
        notional = p.size * p.mark_price
        return {
            "symbol": self._spec_id,
            "positionSide": "BOTH",
            "positionAmt": str(p.size),
            "entryPrice": _s(p.entry_price),
            "breakEvenPrice": _s(p.entry_price),
            "markPrice": _s(p.mark_price),
            "unRealizedProfit": _s(p.unrealized_pnl),
            "liquidationPrice": _s(p.liquidation_price),
            "isolatedMargin": _s(p.isolated_margin + p.unrealized_pnl),
            "notional": _s(notional),
            "marginAsset": self.paper.spec.settle,
            "isolatedWallet": _s(p.isolated_margin),
            "initialMargin": _s(abs(notional) / (p.leverage or 1)),
            "maintMargin": _s(abs(notional) * self.paper.spec.maintenance_margin_rate),
            "positionInitialMargin": _s(abs(notional) / (p.leverage or 1)),
            "openOrderInitialMargin": "0",
            "adl": 1,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": self._now(),
        }

    def position_risk(self, params: dict[str, str]) -> object:
        if "symbol" in params:
            self._symbol(params)
        p = self._position_json()
        return [p] if p is not None else []

    def _asset(self) -> dict[str, Any]:
        spec = self.paper.spec
        s = self.paper.state
        b = self.paper.fetch_balance(spec.settle)
        upnl = b.total - s.cash - s.isolated_margin
        wallet = s.cash + s.isolated_margin
        return {
            "asset": spec.settle,
            "walletBalance": _s(wallet),
            "unrealizedProfit": _s(upnl),
            "marginBalance": _s(b.total),
            "maintMargin": "0",
            "initialMargin": _s(b.used),
            "positionInitialMargin": _s(b.used),
            "openOrderInitialMargin": "0",
            "crossWalletBalance": _s(s.cash),
            "crossUnPnl": "0",
            "availableBalance": _s(b.free),
            "maxWithdrawAmount": _s(b.free),
            "updateTime": self._now(),
        }

    def account_v3(self, _params: dict[str, str]) -> object:
        a = self._asset()
        p = self._position_json()
        return {
            "totalInitialMargin": a["initialMargin"],
            "totalMaintMargin": a["maintMargin"],
            "totalWalletBalance": a["walletBalance"],
            "totalUnrealizedProfit": a["unrealizedProfit"],
            "totalMarginBalance": a["marginBalance"],
            "totalPositionInitialMargin": a["positionInitialMargin"],
            "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": a["crossWalletBalance"],
            "totalCrossUnPnl": "0",
            "availableBalance": a["availableBalance"],
            "maxWithdrawAmount": a["maxWithdrawAmount"],
            "assets": [a],
            "positions": [p] if p is not None else [],
        }

    def balance_v2(self, _params: dict[str, str]) -> object:
        a = self._asset()
        return [
            {
                "accountAlias": "SgsR",
                "asset": a["asset"],
                "balance": a["walletBalance"],
                "crossWalletBalance": a["crossWalletBalance"],
                "crossUnPnl": "0",
                "availableBalance": a["availableBalance"],
                "maxWithdrawAmount": a["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": a["updateTime"],
            }
        ]

    def income(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        if params.get("incomeType", "FUNDING_FEE") != "FUNDING_FEE":
            return []
        since = int(params.get("startTime", 0))
        return [
            {
                "symbol": self._spec_id,
                "incomeType": "FUNDING_FEE",
                "income": _s(f.amount),
                "asset": self.paper.spec.settle,
                "info": "FUNDING_FEE",
                "time": f.timestamp_ms,
                "tranId": f.timestamp_ms // 1000,
                "tradeId": "",
            }
            for f in self.paper.fetch_funding_payments(symbol, since)
        ]

    def user_trades(self, params: dict[str, str]) -> object:
        self._symbol(params)
        order_id = params.get("orderId")
        return [
            {
                "symbol": self._spec_id,
                "id": t.id,
                "orderId": int(t.order_id),
                "side": t.side.value.upper(),
                "price": str(t.price),
                "qty": str(t.amount),
                "realizedPnl": _s(t.realized_pnl),
                "quoteQty": _s(t.price * t.amount),
                "commission": _s(t.fee),
                "commissionAsset": self.paper.spec.settle,
                "time": t.timestamp_ms,
                "positionSide": "BOTH",
                "buyer": t.side is OrderSide.BUY,
                "maker": t.maker,
            }
            for t in self.paper.state.trades
            if order_id is None or t.order_id == order_id
        ]

    def _order_json(self, o: PaperOrder) -> dict[str, Any]:
        if o.status is OrderStatus.OPEN:
            status = "PARTIALLY_FILLED" if o.filled else "NEW"
        else:
            status = _STATUS[o.status]
        kind = o.type.value.upper()
        return {
            "orderId": int(o.id),
            "symbol": self._spec_id,
            "status": status,
            "clientOrderId": o.client_order_id,
            "price": str(o.price or 0),
            "avgPrice": _s(o.average_price or Decimal(0), 5),
            "origQty": str(o.amount),
            "executedQty": str(o.filled),
            "cumQty": str(o.filled),
            "cumQuote": _s(o.cost),
            "timeInForce": "GTC",
            "type": kind,
            "reduceOnly": o.reduce_only,
            "closePosition": False,
            "side": o.side.value.upper(),
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": kind,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": o.created_ms,
            "updateTime": o.updated_ms,
        }

    def _find(self, params: dict[str, str]) -> PaperOrder:
        order_id, cid = params.get("orderId"), params.get("origClientOrderId")
        for o in self.paper.state.orders:
            if (order_id is not None and o.id == order_id) or (
                cid is not None and o.client_order_id == cid
            ):
                return o
        raise _ApiError(400, -2013, "Order does not exist.")

    def new_order(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        kind = OrderType(params["type"].lower())
        request = OrderRequest(
            symbol=symbol,
            side=OrderSide(params["side"].lower()),
            amount=Decimal(params["quantity"]),
            client_order_id=params["newClientOrderId"],
            type=kind,
            price=Decimal(params["price"]) if "price" in params else None,
            reduce_only=params.get("reduceOnly") == "true",
        )
        order = self.paper.create_order(request)
        return self._order_json(self._find({"orderId": order.id}))

    def get_order(self, params: dict[str, str]) -> object:
        self._symbol(params)
        self.paper.fetch_position(self.paper.spec.symbol)  # bring the account up to date
        return self._order_json(self._find(params))

    def cancel(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        found = self._find(params)
        self.paper.cancel_order(symbol, found.id)
        return self._order_json(self._find({"orderId": found.id}))

    def leverage(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        self.paper.set_isolated_leverage(symbol, int(params["leverage"]))
        return {
            "leverage": int(params["leverage"]),
            "maxNotionalValue": "50000000",
            "symbol": self._spec_id,
        }

    def set_margin_type(self, params: dict[str, str]) -> object:
        self._symbol(params)
        if params["marginType"] == self.margin_type:
            raise _ApiError(400, -4046, "No need to change margin type.")
        self.margin_type = params["marginType"]
        return {"code": 200, "msg": "success"}


Route = Callable[[BinanceStandIn, dict[str, str]], object]
_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/fapi/v1/exchangeInfo"): BinanceStandIn.exchange_info,
    ("GET", "/fapi/v1/time"): BinanceStandIn.server_time,
    ("GET", "/fapi/v1/premiumIndex"): BinanceStandIn.premium_index,
    ("GET", "/fapi/v1/fundingRate"): BinanceStandIn.funding_rate,
    ("GET", "/fapi/v1/leverageBracket"): BinanceStandIn.leverage_bracket,
    ("GET", "/fapi/v3/positionRisk"): BinanceStandIn.position_risk,
    ("GET", "/fapi/v2/positionRisk"): BinanceStandIn.position_risk,
    ("GET", "/fapi/v3/account"): BinanceStandIn.account_v3,
    ("GET", "/fapi/v2/balance"): BinanceStandIn.balance_v2,
    ("GET", "/fapi/v1/income"): BinanceStandIn.income,
    ("GET", "/fapi/v1/userTrades"): BinanceStandIn.user_trades,
    ("GET", "/fapi/v1/order"): BinanceStandIn.get_order,
    ("POST", "/fapi/v1/order"): BinanceStandIn.new_order,
    ("DELETE", "/fapi/v1/order"): BinanceStandIn.cancel,
    ("POST", "/fapi/v1/leverage"): BinanceStandIn.leverage,
    ("POST", "/fapi/v1/marginType"): BinanceStandIn.set_margin_type,
}
_PRIVATE = {path for (_m, path) in _ROUTES} - {
    "/fapi/v1/exchangeInfo",
    "/fapi/v1/time",
    "/fapi/v1/premiumIndex",
    "/fapi/v1/fundingRate",
}
