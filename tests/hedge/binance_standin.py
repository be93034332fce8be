"""A local stand-in for the Binance USD-M futures REST API, backed by ``PaperExchange``.

It serves, on 127.0.0.1, the endpoints ccxt's ``binanceusdm`` calls for lpbot's hedge, with
Binance's JSON shapes and error codes (developers.binance.com, "USDⓈ-M Futures"):

public   GET  /fapi/v1/exchangeInfo, /fapi/v1/time, /fapi/v1/premiumIndex, /fapi/v1/fundingRate,
              /fapi/v1/openInterest, /futures/data/openInterestHist
signed   GET  /fapi/v1/leverageBracket, /fapi/v3/positionRisk, /fapi/v3/account, /fapi/v2/balance,
              /fapi/v1/income, /fapi/v1/userTrades, /fapi/v1/order, /fapi/v1/openOrders,
              /fapi/v1/allOrders, /fapi/v1/symbolConfig, /fapi/v1/positionSide/dual
         POST /fapi/v1/order, /fapi/v1/leverage, /fapi/v1/marginType, /fapi/v1/positionMargin,
              /fapi/v1/positionSide/dual
         DELETE /fapi/v1/order

Signed requests are checked as Binance checks them: the ``X-MBX-APIKEY`` header names the key,
and ``signature`` is the hex HMAC-SHA256, under the secret, of the query string (GET, DELETE) or
form body (POST) that precedes it. "No need to change margin type" is -4046, a margin type
change with a position open -4048, a position mode change with a position open -4068; orders
in one-way mode must say ``positionSide=BOTH`` if they name a side (-4061 otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from lpbot.hedge.base import OrderRequest, OrderSide, OrderStatus, OrderType
from lpbot.hedge.paper import PaperOrder, RejectCode
from tests.hedge.standin import ApiError, Fault, Recorded, Request, VenueStandIn
from tests.hedge.standin import dec as _s

__all__ = ["API_KEY", "API_SECRET", "BinanceStandIn", "Fault", "Recorded"]

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
_ApiError = ApiError


@dataclass
class BinanceStandIn(VenueStandIn):
    """Binance USD-M on a paper venue (module docstring)."""

    api_key: str = API_KEY
    secret: str = API_SECRET

    REJECTIONS: ClassVar[dict[RejectCode, tuple[int, str]]] = _REJECTIONS

    def __post_init__(self) -> None:
        self.paper._state.margin_mode = "cross"  # a new Binance account's default

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

    def authenticate(self, r: Request) -> tuple[str | None, bool | None]:
        raw = r.body if r.method == "POST" else r.query
        key = r.headers.get("X-MBX-APIKEY")
        if "signature" not in r.params:
            return key, None
        payload = raw.rsplit("&signature=", 1)[0]
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return key, hmac.compare_digest(expected, str(r.params["signature"]))

    def check_auth(self, r: Request, key: str | None, valid: bool | None) -> None:
        if key != self.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if not valid:
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        if "timestamp" not in r.params:
            raise ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent.")

    def error_body(self, status: int, code: int, msg: str) -> tuple[int, object]:
        if status == 400 and code == -1003:
            status = 429
        return status, {"code": code, "msg": msg}

    # ----------------------------------------------------------------------------- venue

    @property
    def _spec_id(self) -> str:
        spec = self.paper.spec
        return f"{spec.base}{spec.settle}"

    def _symbol(self, params: dict[str, str]) -> str:
        if params.get("symbol") != self._spec_id:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return self.paper.spec.symbol

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

    def open_interest(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        oi = self.paper.fetch_open_interest(symbol)
        assert oi is not None
        mark = self.paper.fetch_mark_price(symbol)
        amount = Decimal(repr(oi.usd)) / mark
        return {"openInterest": _s(amount, 3), "symbol": self._spec_id, "time": oi.timestamp_ms}

    def open_interest_hist(self, params: dict[str, str]) -> object:
        """``/futures/data/openInterestHist``: at each ``period`` boundary from ``startTime`` to
        ``endTime``, the last reading at or before it (the paper venue keeps one per price it
        saw), the first ``limit`` of them; values in USDT."""
        symbol = self._symbol(params)
        periods = {"5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "1d": 1440}
        if params.get("period") not in periods:
            raise _ApiError(400, -1120, "Invalid period.")
        step = periods[params["period"]] * 60_000
        start = int(params.get("startTime", self._now() - 30 * step))
        end = min(int(params.get("endTime", self._now())), self._now())
        rows = self.paper.fetch_open_interest_history(symbol, start) or []
        mark = self.paper.fetch_mark_price(symbol)
        out: list[dict[str, str]] = []
        t = -(-start // step) * step
        while t <= end and len(out) < int(params.get("limit", 30)):
            seen = [r for r in rows if r.timestamp_ms <= t]
            if seen:
                usd = Decimal(repr(seen[-1].usd))
                amount = seen[-1].amount
                base = usd / mark if amount is None else Decimal(repr(amount))
                out.append({"symbol": self._spec_id, "sumOpenInterest": _s(base),
                            "sumOpenInterestValue": _s(usd), "timestamp": str(t)})  # fmt: skip
            t += step
        return out

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
        tiers = self.paper.fetch_margin_tiers(self.paper.spec.symbol)
        return [
            {
                "symbol": self._spec_id,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": i + 1,
                        "initialLeverage": int(t.max_leverage),
                        "notionalCap": float(t.cap),
                        "notionalFloor": float(t.floor),
                        "maintMarginRatio": float(t.mmr),
                        "cum": float(t.cum),
                    }
                    for i, t in enumerate(tiers)
                ],
            }
        ]

    def symbol_config(self, params: dict[str, str]) -> object:
        self._symbol(params)
        st = self.paper._state
        return [
            {
                "symbol": self._spec_id,
                "marginType": "ISOLATED" if st.margin_mode == "isolated" else "CROSSED",
                "isAutoAddMargin": False,
                "leverage": st.leverage,
                "maxNotionalValue": "50000000",
            }
        ]

    def get_dual(self, _params: dict[str, str]) -> object:
        return {"dualSidePosition": self.paper._state.hedge_mode}

    def set_dual(self, params: dict[str, str]) -> object:
        st = self.paper._state
        wanted = params["dualSidePosition"] == "true"
        if wanted == st.hedge_mode:
            raise _ApiError(400, -4059, "No need to change position side.")
        if st.size != 0 or any(o.status is OrderStatus.OPEN for o in st.orders):
            raise _ApiError(400, -4068, "Position side cannot be changed if there exists position.")
        st.hedge_mode = wanted
        return {"code": 200, "msg": "success"}

    def position_margin(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        if params.get("type") != "1":
            raise _ApiError(400, -1102, "only adding margin (type 1) is served here")
        if params.get("positionSide", "BOTH") != "BOTH":
            raise _ApiError(400, -4061, "Order's position side does not match user's setting.")
        amount = Decimal(params["amount"])
        self.paper.add_margin(symbol, amount)
        return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.",
                "type": 1}  # fmt: skip

    def open_orders(self, params: dict[str, str]) -> object:
        self._symbol(params)
        self.paper.fetch_position(self.paper.spec.symbol)
        return [
            self._order_json(o) for o in self.paper.state.orders if o.status is OrderStatus.OPEN
        ]

    def all_orders(self, params: dict[str, str]) -> object:
        self._symbol(params)
        self.paper.fetch_position(self.paper.spec.symbol)
        return [self._order_json(o) for o in self.paper.state.orders]

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
            "maintMargin": _s(self._maint(p.size, p.mark_price)),
            "positionInitialMargin": _s(abs(notional) / (p.leverage or 1)),
            "openOrderInitialMargin": "0",
            "adl": 1,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": self._now(),
        }

    def _maint(self, size: Decimal, mark: Decimal) -> Decimal:
        from lpbot.hedge import margin

        return margin.maintenance_margin_tiered(size, mark, self.paper.fetch_margin_tiers(
            self.paper.spec.symbol))  # fmt: skip

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
        side = params.get("positionSide", "BOTH")
        if (side == "BOTH") == self.paper._state.hedge_mode:
            raise _ApiError(400, -4061, "Order's position side does not match user's setting.")
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
        if "origClientOrderId" in params and self._miss_lookup():
            raise _ApiError(400, -2013, "Order does not exist.")
        self.paper.fetch_position(self.paper.spec.symbol)  # bring the account up to date
        return self._order_json(self._find(params))

    def cancel(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        found = self._find(params)
        self.paper.cancel_order(symbol, found.id)
        return self._order_json(self._find({"orderId": found.id}))

    def leverage(self, params: dict[str, str]) -> object:
        symbol = self._symbol(params)
        self.paper.set_leverage(symbol, int(params["leverage"]))
        return {
            "leverage": int(params["leverage"]),
            "maxNotionalValue": "50000000",
            "symbol": self._spec_id,
        }

    def set_margin_type(self, params: dict[str, str]) -> object:
        self._symbol(params)
        st = self.paper._state
        wanted = "isolated" if params["marginType"] == "ISOLATED" else "cross"
        if wanted == st.margin_mode:
            raise _ApiError(400, -4046, "No need to change margin type.")
        if st.size != 0:
            raise _ApiError(400, -4048, "Margin type cannot be changed if there exists position.")
        st.margin_mode = wanted
        return {"code": 200, "msg": "success"}


BinanceStandIn.ROUTES = {
    ("GET", "/fapi/v1/exchangeInfo"): BinanceStandIn.exchange_info,
    ("GET", "/fapi/v1/time"): BinanceStandIn.server_time,
    ("GET", "/fapi/v1/premiumIndex"): BinanceStandIn.premium_index,
    ("GET", "/fapi/v1/fundingRate"): BinanceStandIn.funding_rate,
    ("GET", "/fapi/v1/openInterest"): BinanceStandIn.open_interest,
    ("GET", "/futures/data/openInterestHist"): BinanceStandIn.open_interest_hist,
    ("GET", "/fapi/v1/leverageBracket"): BinanceStandIn.leverage_bracket,
    ("GET", "/fapi/v1/symbolConfig"): BinanceStandIn.symbol_config,
    ("GET", "/fapi/v1/positionSide/dual"): BinanceStandIn.get_dual,
    ("POST", "/fapi/v1/positionSide/dual"): BinanceStandIn.set_dual,
    ("GET", "/fapi/v3/positionRisk"): BinanceStandIn.position_risk,
    ("GET", "/fapi/v2/positionRisk"): BinanceStandIn.position_risk,
    ("GET", "/fapi/v3/account"): BinanceStandIn.account_v3,
    ("GET", "/fapi/v2/balance"): BinanceStandIn.balance_v2,
    ("GET", "/fapi/v1/income"): BinanceStandIn.income,
    ("GET", "/fapi/v1/userTrades"): BinanceStandIn.user_trades,
    ("GET", "/fapi/v1/order"): BinanceStandIn.get_order,
    ("GET", "/fapi/v1/openOrders"): BinanceStandIn.open_orders,
    ("GET", "/fapi/v1/allOrders"): BinanceStandIn.all_orders,
    ("POST", "/fapi/v1/order"): BinanceStandIn.new_order,
    ("DELETE", "/fapi/v1/order"): BinanceStandIn.cancel,
    ("POST", "/fapi/v1/leverage"): BinanceStandIn.leverage,
    ("POST", "/fapi/v1/marginType"): BinanceStandIn.set_margin_type,
    ("POST", "/fapi/v1/positionMargin"): BinanceStandIn.position_margin,
}
BinanceStandIn.PUBLIC = frozenset(
    {
        "/fapi/v1/exchangeInfo",
        "/fapi/v1/time",
        "/fapi/v1/premiumIndex",
        "/fapi/v1/fundingRate",
        "/fapi/v1/openInterest",
        "/futures/data/openInterestHist",
    }
)
