"""A local stand-in for the Bybit v5 REST API (USDT linear perpetuals, unified trading account),
backed by ``PaperExchange``.

It serves, on 127.0.0.1, what ccxt's ``bybit`` calls for lpbot's hedge, with Bybit's JSON shapes
(``{"retCode": 0, "retMsg": "OK", "result": {...}}``) and error codes (bybit-exchange.github.io
/docs/v5):

public   GET  /v5/market/instruments-info, time, tickers, funding/history, risk-limit
private  GET  /v5/user/query-api, /v5/account/info, /v5/account/wallet-balance,
              /v5/position/list, /v5/order/realtime, /v5/order/history, /v5/execution/list
         POST /v5/account/set-margin-mode, /v5/position/set-leverage, /v5/position/switch-mode,
              /v5/position/add-margin, /v5/order/create, /v5/order/cancel

Private requests are checked as Bybit checks them: ``X-BAPI-API-KEY`` names the key and
``X-BAPI-SIGN`` is the hex HMAC-SHA256, under the secret, of ``timestamp + key + recv window +
(query string | JSON body)``. Margin mode is account-wide (unified account). One-way orders say
``positionIdx=0`` (10001 otherwise). "Not modified" answers: 110043 leverage, 110025 position
mode, 110026 margin mode. Funding settlements are executions of type ``Funding``; the account's
``equity`` includes unrealised PnL, its ``walletBalance`` does not.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from lpbot.hedge.base import OrderRequest, OrderSide, OrderStatus, OrderType
from lpbot.hedge.paper import PaperOrder, RejectCode
from tests.hedge.standin import ApiError, Request, VenueStandIn, dec

__all__ = ["API_KEY", "API_SECRET", "BybitStandIn"]

API_KEY = "bybit-standin-key"
API_SECRET = "bybit-standin-secret"

_REJECTIONS: dict[RejectCode, tuple[int, str]] = {
    RejectCode.MARGIN_INSUFFICIENT: (110007, "ab not enough for new order"),
    RejectCode.MIN_NOTIONAL: (110094, "Order notional value below the lower limit"),
    RejectCode.LOT_SIZE: (10001, "Qty invalid"),
    RejectCode.REDUCE_ONLY_REJECTED: (110017, "Reduce-only rule not satisfied"),
    RejectCode.DUPLICATE_CLIENT_ID: (110072, "OrderLinkedID is duplicate"),
    RejectCode.UNKNOWN_ORDER: (110001, "Order does not exist"),
    RejectCode.BAD_LEVERAGE: (110013, "Cannot set leverage"),
    RejectCode.NO_LIQUIDITY: (170140, "Transaction amount lower than the minimum."),
    RejectCode.BAD_SYMBOL: (10001, "params error: symbol invalid"),
}
_STATUS = {
    OrderStatus.CLOSED: "Filled",
    OrderStatus.CANCELED: "Cancelled",
    OrderStatus.EXPIRED: "PartiallyFilledCanceled",
    OrderStatus.REJECTED: "Rejected",
}


@dataclass
class BybitStandIn(VenueStandIn):
    """Bybit on a paper venue (module docstring)."""

    api_key: str = API_KEY
    secret: str = API_SECRET

    REJECTIONS: ClassVar[dict[RejectCode, tuple[int, str]]] = _REJECTIONS

    def __post_init__(self) -> None:
        self.paper._state.margin_mode = "cross"  # a new unified account's default
        self.paper._state.leverage = 10

    def api_urls(self) -> dict[str, str]:
        return {k: self.url for k in ("spot", "futures", "v2", "public", "private")}

    def authenticate(self, r: Request) -> tuple[str | None, bool | None]:
        key = r.headers.get("X-BAPI-API-KEY")
        sign = r.headers.get("X-BAPI-SIGN")
        if key is None:
            return None, None
        h = r.headers
        payload = (
            h.get("X-BAPI-TIMESTAMP", "")
            + key
            + h.get("X-BAPI-RECV-WINDOW", "")
            + (r.body if r.method == "POST" else r.query)
        )
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return key, sign is not None and hmac.compare_digest(expected, sign)

    def check_auth(self, r: Request, key: str | None, valid: bool | None) -> None:
        if key != self.api_key:
            raise ApiError(401, 10003, "API key is invalid.")
        if not valid:
            raise ApiError(401, 10004, "error sign! origin_string[...]")

    def error_body(self, status: int, code: int, msg: str) -> tuple[int, object]:
        if status == 429:
            code, msg = 10006, "Too many visits!"
        if status == 404:
            return 404, {"retCode": 404, "retMsg": msg}
        return 200, {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {},
                     "time": self._now()}  # fmt: skip

    def _ok(self, result: object) -> dict[str, Any]:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                "time": self._now()}  # fmt: skip

    # ----------------------------------------------------------------------------- venue

    @property
    def _sym(self) -> str:
        spec = self.paper.spec
        return f"{spec.base}{spec.settle}"

    def _check(self, params: dict[str, Any]) -> str:
        if params.get("category", "linear") != "linear" or params.get("symbol") != self._sym:
            raise ApiError(400, 10001, "params error: symbol invalid")
        return self.paper.spec.symbol

    def instruments(self, params: dict[str, Any]) -> object:
        if params.get("category") != "linear":
            return self._ok({"category": params.get("category"), "list": [], "nextPageCursor": ""})
        spec = self.paper.spec
        return self._ok(
            {
                "category": "linear",
                "nextPageCursor": "",
                "list": [
                    {
                        "symbol": self._sym,
                        "contractType": "LinearPerpetual",
                        "status": "Trading",
                        "baseCoin": spec.base,
                        "quoteCoin": spec.settle,
                        "settleCoin": spec.settle,
                        "launchTime": "1584230400000",
                        "deliveryTime": "0",
                        "deliveryFeeRate": "",
                        "priceScale": "2",
                        "leverageFilter": {
                            "minLeverage": "1",
                            "maxLeverage": str(spec.max_leverage),
                            "leverageStep": "0.01",
                        },
                        "priceFilter": {
                            "minPrice": "0.10",
                            "maxPrice": "1999999.80",
                            "tickSize": str(spec.price_tick),
                        },
                        "lotSizeFilter": {
                            "maxOrderQty": "1190",
                            "minOrderQty": str(spec.min_amount),
                            "qtyStep": str(spec.amount_step),
                            "postOnlyMaxOrderQty": "1190",
                            "maxMktOrderQty": "500",
                            "minNotionalValue": str(spec.min_notional),
                        },
                        "unifiedMarginTrade": True,
                        "fundingInterval": 480,
                        "copyTrading": "both",
                        "upperFundingRate": "0.005",
                        "lowerFundingRate": "-0.005",
                    }
                ],
            }
        )

    def time(self, _params: dict[str, Any]) -> object:
        now = self._now()
        return self._ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    def tickers(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        r = self.paper.fetch_funding_rate(symbol)
        mark = dec(r.mark_price)
        return self._ok(
            {
                "category": "linear",
                "list": [
                    {
                        "symbol": self._sym,
                        "lastPrice": dec((r.mark_price or Decimal(0)) + 1),  # not the mark
                        "indexPrice": mark,
                        "markPrice": "" if self.omit_mark else mark,
                        "prevPrice24h": mark,
                        "price24hPcnt": "0",
                        "highPrice24h": mark,
                        "lowPrice24h": mark,
                        "openInterest": "0",
                        "openInterestValue": "0",
                        "turnover24h": "0",
                        "volume24h": "0",
                        "fundingRate": dec(r.rate),
                        "nextFundingTime": str(r.next_funding_ms),
                        "bid1Price": mark,
                        "bid1Size": "1",
                        "ask1Price": mark,
                        "ask1Size": "1",
                    }
                ],
            }
        )

    def funding_history(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        since = int(params.get("startTime", self._now() - 100 * 8 * 3_600_000))
        rates = self.paper.fetch_funding_rate_history(symbol, since)
        return self._ok(
            {
                "category": "linear",
                "list": [
                    {
                        "symbol": self._sym,
                        "fundingRate": dec(r.rate),
                        "fundingRateTimestamp": str(r.timestamp_ms),
                    }
                    for r in reversed(rates)
                ],
            }
        )

    def risk_limit(self, params: dict[str, Any]) -> object:
        self._check(params)
        tiers = self.paper.fetch_margin_tiers(self.paper.spec.symbol)
        return self._ok(
            {
                "category": "linear",
                "list": [
                    {
                        "id": i + 1,
                        "symbol": self._sym,
                        "riskLimitValue": str(t.cap),
                        "maintenanceMargin": str(t.mmr),
                        "initialMargin": str(1 / t.max_leverage),
                        "isLowestRisk": 1 if i == 0 else 0,
                        "maxLeverage": str(t.max_leverage),
                        "mmDeduction": str(t.cum),
                    }
                    for i, t in enumerate(tiers)
                ],
            }
        )

    def query_api(self, _params: dict[str, Any]) -> object:
        return self._ok({"id": "1", "readOnly": 0, "unified": 1, "uta": 1, "type": 1,
                         "permissions": {"ContractTrade": ["Order", "Position"]}})  # fmt: skip

    def account_info(self, _params: dict[str, Any]) -> object:
        mode = self.paper._state.margin_mode
        return self._ok(
            {
                "unifiedMarginStatus": 6,
                "marginMode": "ISOLATED_MARGIN" if mode == "isolated" else "REGULAR_MARGIN",
                "isMasterTrader": False,
                "spotHedgingStatus": "OFF",
                "updatedTime": str(self._now()),
                "dcpStatus": "OFF",
                "timeWindow": 10,
                "smpGroup": 0,
            }
        )

    def set_margin_mode(self, params: dict[str, Any]) -> object:
        st = self.paper._state
        wanted = "isolated" if params.get("setMarginMode") == "ISOLATED_MARGIN" else "cross"
        if wanted == st.margin_mode:
            raise ApiError(400, 110026, "Cross/isolated margin mode is not modified")
        if st.size != 0:
            raise ApiError(400, 3400045, "Set margin mode failed: positions open")
        st.margin_mode = wanted
        return self._ok({"reasons": []})

    def wallet_balance(self, _params: dict[str, Any]) -> object:
        spec = self.paper.spec
        b = self.paper.fetch_balance(spec.settle)
        s = self.paper.state
        wallet = s.cash + s.isolated_margin
        upnl = b.total - wallet
        return self._ok(
            {
                "list": [
                    {
                        "accountType": "UNIFIED",
                        "totalEquity": dec(b.total),
                        "totalWalletBalance": dec(wallet),
                        "totalMarginBalance": dec(b.total),
                        "totalAvailableBalance": dec(b.free),
                        "totalPerpUPL": dec(upnl),
                        "totalInitialMargin": dec(b.used),
                        "totalMaintenanceMargin": "0",
                        "accountIMRate": "0",
                        "accountMMRate": "0",
                        "accountLTV": "0",
                        "coin": [
                            {
                                "coin": spec.settle,
                                "equity": dec(b.total),
                                "usdValue": dec(b.total),
                                "walletBalance": dec(wallet),
                                "unrealisedPnl": dec(upnl),
                                "locked": "0",
                                "borrowAmount": "0",
                                "availableToWithdraw": dec(b.free),
                                "availableToBorrow": "",
                                "accruedInterest": "0",
                                "totalOrderIM": "0",
                                "totalPositionIM": dec(b.used),
                                "totalPositionMM": "0",
                                "cumRealisedPnl": dec(s.realized_pnl),
                                "bonus": "0",
                                "marginCollateral": True,
                                "collateralSwitch": True,
                                "spotHedgingQty": "0",
                            }
                        ],
                    }
                ]
            }
        )

    def position_list(self, params: dict[str, Any]) -> object:
        self._check(params)
        st = self.paper._state
        p = self.paper.fetch_position(self.paper.spec.symbol)
        side = "" if p.size == 0 else ("Sell" if p.size < 0 else "Buy")
        idx = 0 if not st.hedge_mode else 1
        rows = [
            {
                "positionIdx": idx,
                "riskId": 1,
                "riskLimitValue": "2000000",
                "symbol": self._sym,
                "side": side,
                "size": str(abs(p.size)),
                "avgPrice": dec(p.entry_price),
                "positionValue": dec(abs(p.size) * p.entry_price),
                "tradeMode": 1 if st.margin_mode == "isolated" else 0,
                "autoAddMargin": 0,
                "positionStatus": "Normal",
                "leverage": str(st.leverage),
                "markPrice": dec(p.mark_price),
                "liqPrice": dec(p.liquidation_price) if p.liquidation_price else "",
                "bustPrice": "",
                "positionIM": dec(p.isolated_margin),
                "positionMM": "0",
                "positionBalance": dec(p.isolated_margin),
                "takeProfit": "0",
                "stopLoss": "0",
                "trailingStop": "0",
                "unrealisedPnl": dec(p.unrealized_pnl),
                "curRealisedPnl": "0",
                "cumRealisedPnl": dec(st.realized_pnl),
                "adlRankIndicator": 2,
                "createdTime": str(self._now()),
                "updatedTime": str(self._now()),
                "seq": 1,
                "isReduceOnly": False,
            }
        ]
        if st.hedge_mode:  # two rows, one per side
            rows.append({**rows[0], "positionIdx": 2, "side": "", "size": "0"})
        return self._ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def set_leverage(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        lev = Decimal(str(params["buyLeverage"]))
        if lev != Decimal(str(params["sellLeverage"])):
            raise ApiError(400, 10001, "buy and sell leverage must match in one-way mode")
        if lev == self.paper._state.leverage:
            raise ApiError(400, 110043, "Set leverage not modified")
        self.paper.set_leverage(symbol, int(lev))
        return self._ok({})

    def switch_mode(self, params: dict[str, Any]) -> object:
        st = self.paper._state
        hedged = str(params.get("mode")) == "3"
        if hedged == st.hedge_mode:
            raise ApiError(400, 110025, "Position mode is not modified")
        if st.size != 0 or any(o.status is OrderStatus.OPEN for o in st.orders):
            raise ApiError(400, 110024, "You have an existing position: mode cannot be switched")
        st.hedge_mode = hedged
        return self._ok({})

    def add_margin(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        if int(params.get("positionIdx", 0)) != 0:
            raise ApiError(400, 10001, "position idx not match position mode")
        self.paper.add_margin(symbol, Decimal(str(params["margin"])))
        return self._ok({"category": "linear", "symbol": self._sym, "positionIdx": 0})

    def _order_json(self, o: PaperOrder) -> dict[str, Any]:
        if o.status is OrderStatus.OPEN:
            status = "PartiallyFilled" if o.filled else "New"
        elif o.status is OrderStatus.EXPIRED and o.filled == 0:
            status = "Cancelled"
        else:
            status = _STATUS[o.status]
        return {
            "orderId": o.id,
            "orderLinkId": o.client_order_id,
            "blockTradeId": "",
            "symbol": self._sym,
            "price": str(o.price or 0),
            "qty": str(o.amount),
            "side": "Buy" if o.side is OrderSide.BUY else "Sell",
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": status,
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": dec(o.average_price) if o.filled else "0",
            "leavesQty": str(o.amount - o.filled if o.status is OrderStatus.OPEN else 0),
            "leavesValue": "0",
            "cumExecQty": str(o.filled),
            "cumExecValue": dec(o.cost),
            "cumExecFee": dec(o.fee),
            "timeInForce": "GTC" if o.type is OrderType.LIMIT else "IOC",
            "orderType": "Limit" if o.type is OrderType.LIMIT else "Market",
            "stopOrderType": "",
            "orderIv": "",
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": "",
            "reduceOnly": o.reduce_only,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": str(o.created_ms),
            "updatedTime": str(o.updated_ms),
        }

    def _orders(self, params: dict[str, Any], *, open_only: bool | None) -> object:
        self._check(params)
        self.paper.fetch_position(self.paper.spec.symbol)
        oid, link = params.get("orderId"), params.get("orderLinkId")
        if link is not None and self._miss_lookup():
            return self._ok({"category": "linear", "list": [], "nextPageCursor": ""})
        rows = [
            self._order_json(o)
            for o in reversed(self.paper.state.orders)
            if (oid is None or o.id == oid)
            and (link is None or o.client_order_id == link)
            and (open_only is None or (o.status is OrderStatus.OPEN) == open_only)
        ]
        return self._ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def realtime(self, params: dict[str, Any]) -> object:
        # the unified account's "realtime" also lists recent closed orders
        open_only = None if ("orderId" in params or "orderLinkId" in params) else True
        if str(params.get("openOnly", "0")) != "0":
            open_only = None
        return self._orders(params, open_only=open_only)

    def history(self, params: dict[str, Any]) -> object:
        return self._orders(params, open_only=False)

    def executions(self, params: dict[str, Any]) -> object:
        self._check(params)
        oid = params.get("orderId")
        by_id = {o.id: o for o in self.paper.state.orders}
        if params.get("execType") == "Funding":
            since = int(params.get("startTime", 0))
            rows = [
                {
                    "symbol": self._sym,
                    "orderId": "",
                    "orderLinkId": "",
                    "side": "Sell",
                    "execFee": dec(-f.amount),  # a fee paid is positive
                    "execId": f.id,
                    "execPrice": "0",
                    "execQty": "0",
                    "execType": "Funding",
                    "execValue": "0",
                    "execTime": str(f.timestamp_ms),
                    "isMaker": False,
                    "feeRate": "0",
                    "markPrice": "0",
                }
                for f in reversed(self.paper.fetch_funding_payments(self.paper.spec.symbol, since))
            ]
            return self._ok({"category": "linear", "list": rows, "nextPageCursor": ""})
        rows = [
            {
                "symbol": self._sym,
                "orderId": t.order_id,
                "orderLinkId": by_id[t.order_id].client_order_id,
                "side": "Buy" if t.side is OrderSide.BUY else "Sell",
                "orderPrice": "0",
                "orderQty": str(by_id[t.order_id].amount),
                "leavesQty": "0",
                "orderType": "Market",
                "stopOrderType": "",
                "execFee": dec(t.fee),
                "execId": str(t.id),
                "execPrice": str(t.price),
                "execQty": str(t.amount),
                "execType": "Trade",
                "execValue": dec(t.price * t.amount),
                "execTime": str(t.timestamp_ms),
                "isMaker": t.maker,
                "feeRate": "0.0005",
                "tradeIv": "",
                "markIv": "",
                "markPrice": "0",
                "indexPrice": "",
                "underlyingPrice": "",
                "blockTradeId": "",
                "closedSize": "0",
                "seq": t.id,
            }
            for t in reversed(self.paper.state.trades)
            if oid is None or t.order_id == oid
        ]
        return self._ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def create(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        if int(params.get("positionIdx", 0)) != 0 or self.paper._state.hedge_mode:
            raise ApiError(400, 10001, "position idx not match position mode")
        kind = OrderType.LIMIT if params["orderType"] == "Limit" else OrderType.MARKET
        request = OrderRequest(
            symbol=symbol,
            side=OrderSide.BUY if params["side"] == "Buy" else OrderSide.SELL,
            amount=Decimal(str(params["qty"])),
            client_order_id=params["orderLinkId"],
            type=kind,
            price=Decimal(str(params["price"])) if kind is OrderType.LIMIT else None,
            reduce_only=bool(params.get("reduceOnly", False)),
        )
        order = self.paper.create_order(request)
        return self._ok({"orderId": order.id, "orderLinkId": order.client_order_id})

    def cancel(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        oid = params.get("orderId")
        found = next((o for o in self.paper.state.orders if o.id == oid), None)
        if found is None or found.status is not OrderStatus.OPEN:
            raise ApiError(400, 110001, "Order does not exist")
        self.paper.cancel_order(symbol, found.id)
        return self._ok({"orderId": found.id, "orderLinkId": found.client_order_id})


BybitStandIn.ROUTES = {
    ("GET", "/v5/market/instruments-info"): BybitStandIn.instruments,
    ("GET", "/v5/market/time"): BybitStandIn.time,
    ("GET", "/v5/market/tickers"): BybitStandIn.tickers,
    ("GET", "/v5/market/funding/history"): BybitStandIn.funding_history,
    ("GET", "/v5/market/risk-limit"): BybitStandIn.risk_limit,
    ("GET", "/v5/user/query-api"): BybitStandIn.query_api,
    ("GET", "/v5/account/info"): BybitStandIn.account_info,
    ("POST", "/v5/account/set-margin-mode"): BybitStandIn.set_margin_mode,
    ("GET", "/v5/account/wallet-balance"): BybitStandIn.wallet_balance,
    ("GET", "/v5/position/list"): BybitStandIn.position_list,
    ("POST", "/v5/position/set-leverage"): BybitStandIn.set_leverage,
    ("POST", "/v5/position/switch-mode"): BybitStandIn.switch_mode,
    ("POST", "/v5/position/add-margin"): BybitStandIn.add_margin,
    ("GET", "/v5/order/realtime"): BybitStandIn.realtime,
    ("GET", "/v5/order/history"): BybitStandIn.history,
    ("GET", "/v5/execution/list"): BybitStandIn.executions,
    ("POST", "/v5/order/create"): BybitStandIn.create,
    ("POST", "/v5/order/cancel"): BybitStandIn.cancel,
}
BybitStandIn.PUBLIC = frozenset(p for (_m, p) in BybitStandIn.ROUTES if p.startswith("/v5/market"))
