"""A local stand-in for the OKX v5 REST API (USDT-margined swaps), backed by ``PaperExchange``.

It serves, on 127.0.0.1, what ccxt's ``okx`` calls for lpbot's hedge, with OKX's JSON shapes
(``{"code": "0", "msg": "", "data": [...]}``) and error codes (okx.com/docs-v5):

public   GET  /api/v5/public/instruments, time, mark-price, funding-rate, funding-rate-history,
              position-tiers
private  GET  /api/v5/account/config, leverage-info, balance, positions, bills;
              /api/v5/trade/order, orders-pending, orders-history, fills
         POST /api/v5/account/set-position-mode, set-leverage, position/margin-balance;
              /api/v5/trade/order, cancel-order

Private requests are checked as OKX checks them: ``OK-ACCESS-KEY`` and ``OK-ACCESS-PASSPHRASE``
name the key, and ``OK-ACCESS-SIGN`` is the base64 HMAC-SHA256, under the secret, of
``OK-ACCESS-TIMESTAMP + method + request path (with its query) + body``. Sizes are contracts of
``CT_VAL`` base tokens; in net (one-way) mode a position's ``pos`` is signed. Orders must say
``tdMode=isolated`` and ``posSide=net`` (51000 otherwise). Errors: 51008 margin insufficient,
51016 duplicated clOrdId (among open orders), 51603 no such order, 50111/50113 key/signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, ClassVar

from lpbot.hedge.base import OrderRequest, OrderSide, OrderStatus, OrderType
from lpbot.hedge.paper import PaperOrder, RejectCode
from tests.hedge.standin import ApiError, Request, Route, VenueStandIn, dec

__all__ = ["API_KEY", "API_PASSPHRASE", "API_SECRET", "CT_VAL", "OkxStandIn"]

API_KEY = "okx-standin-key"
API_SECRET = "okx-standin-secret"
API_PASSPHRASE = "okx-standin-passphrase"
CT_VAL = Decimal("0.01")  # base tokens per contract (OKX BTC-USDT-SWAP)

_REJECTIONS: dict[RejectCode, tuple[int, str]] = {
    RejectCode.MARGIN_INSUFFICIENT: (51008, "Order failed. Insufficient USDT margin in account"),
    RejectCode.MIN_NOTIONAL: (51020, "Your order should meet or exceed the minimum order amount."),
    RejectCode.LOT_SIZE: (51121, "Order quantity must be a multiple of the lot size."),
    RejectCode.REDUCE_ONLY_REJECTED: (
        51169,
        "Order failed because you don't have any positions in this direction for this contract "
        "to reduce or close.",
    ),
    RejectCode.DUPLICATE_CLIENT_ID: (51016, "Duplicated client order ID"),
    RejectCode.UNKNOWN_ORDER: (51400, "Order cancellation failed as the order doesn't exist."),
    RejectCode.BAD_LEVERAGE: (59102, "Leverage exceeds the maximum leverage."),
    RejectCode.NO_LIQUIDITY: (51202, "Market order amount exceeds the maximum amount."),
    RejectCode.BAD_SYMBOL: (51001, "Instrument ID does not exist."),
}
_STATE = {
    OrderStatus.CLOSED: "filled",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.EXPIRED: "canceled",  # OKX reports an unfilled rest of an IOC market as canceled
    OrderStatus.REJECTED: "canceled",
}


def _ok(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


@dataclass
class OkxStandIn(VenueStandIn):
    """OKX on a paper venue (module docstring)."""

    api_key: str = API_KEY
    secret: str = API_SECRET
    passphrase: str = API_PASSPHRASE

    REJECTIONS: ClassVar[dict[RejectCode, tuple[int, str]]] = _REJECTIONS

    def api_urls(self) -> dict[str, str]:
        return {"rest": self.url}

    def authenticate(self, r: Request) -> tuple[str | None, bool | None]:
        key = r.headers.get("OK-ACCESS-KEY")
        sign = r.headers.get("OK-ACCESS-SIGN")
        if key is None and sign is None:
            return None, None
        path = r.path + (f"?{r.query}" if r.query else "")
        payload = r.headers.get("OK-ACCESS-TIMESTAMP", "") + r.method + path + r.body
        expected = base64.b64encode(
            hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).digest()
        ).decode()
        return key, sign is not None and hmac.compare_digest(expected, sign)

    def check_auth(self, r: Request, key: str | None, valid: bool | None) -> None:
        if key != self.api_key or r.headers.get("OK-ACCESS-PASSPHRASE") != self.passphrase:
            raise ApiError(401, 50111, "Invalid OK-ACCESS-KEY")
        if not valid:
            raise ApiError(401, 50113, "Invalid Sign")

    def error_body(self, status: int, code: int, msg: str) -> tuple[int, object]:
        if status == 429:
            return 429, {"code": "50011", "msg": "Too Many Requests", "data": []}
        if status in (401, 404):
            return status, {"code": str(code), "msg": msg, "data": []}
        # OKX answers refusals with HTTP 200; order endpoints carry sCode per order
        return 200, {
            "code": "1",
            "msg": "Operation failed.",
            "data": [{"sCode": str(code), "sMsg": msg, "ordId": "", "clOrdId": ""}],
        }

    # ----------------------------------------------------------------------------- venue

    @property
    def _inst(self) -> str:
        spec = self.paper.spec
        return f"{spec.base}-{spec.settle}-SWAP"

    def _check(self, params: dict[str, Any], key: str = "instId") -> str:
        if params.get(key) != self._inst:
            raise ApiError(400, 51001, "Instrument ID does not exist.")
        return self.paper.spec.symbol

    def _contracts(self, base: Decimal) -> str:
        return str((base / CT_VAL).normalize())

    def instruments(self, params: dict[str, Any]) -> object:
        if params.get("instType") != "SWAP":
            return _ok([])
        spec = self.paper.spec
        lot = str((spec.amount_step / CT_VAL).normalize())
        return _ok(
            [
                {
                    "instType": "SWAP",
                    "instId": self._inst,
                    "uly": f"{spec.base}-{spec.settle}",
                    "instFamily": f"{spec.base}-{spec.settle}",
                    "baseCcy": "",
                    "quoteCcy": "",
                    "settleCcy": spec.settle,
                    "ctVal": str(CT_VAL),
                    "ctMult": "1",
                    "ctValCcy": spec.base,
                    "ctType": "linear",
                    "lotSz": lot,
                    "minSz": str((spec.min_amount / CT_VAL).normalize()),
                    "tickSz": str(spec.price_tick),
                    "lever": str(spec.max_leverage),
                    "state": "live",
                    "listTime": "1611916828000",
                    "expTime": "",
                    "alias": "",
                    "optType": "",
                    "stk": "",
                    "maxLmtSz": "100000000",
                    "maxMktSz": "12000",
                    "ruleType": "normal",
                }
            ]
        )

    def time(self, _params: dict[str, Any]) -> object:
        return _ok([{"ts": str(self._now())}])

    def mark_price(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        mark = self.paper.fetch_mark_price(symbol)
        return _ok(
            [
                {
                    "instType": "SWAP",
                    "instId": self._inst,
                    "markPx": dec(mark),
                    "ts": str(self._now()),
                }
            ]
        )

    def funding_rate(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        r = self.paper.fetch_funding_rate(symbol)
        nxt = str(r.next_funding_ms)
        return _ok(
            [
                {
                    "instType": "SWAP",
                    "instId": self._inst,
                    "fundingRate": dec(r.rate),
                    "nextFundingRate": "",
                    "fundingTime": nxt,
                    "nextFundingTime": str((r.next_funding_ms or 0) + 8 * 3_600_000),
                    "method": "current_period",
                    "ts": str(self._now()),
                }
            ]
        )

    def funding_rate_history(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        rates = self.paper.fetch_funding_rate_history(symbol, self._now() - 100 * 8 * 3_600_000)
        before = int(params["before"]) if "before" in params else None
        rows = [
            {
                "instType": "SWAP",
                "instId": self._inst,
                "fundingRate": dec(r.rate),
                "realizedRate": dec(r.rate),
                "fundingTime": str(r.timestamp_ms),
                "method": "current_period",
            }
            for r in reversed(rates)  # newest first
            if before is None or r.timestamp_ms > before
        ]
        return _ok(rows[: int(params.get("limit", 100))])

    def position_tiers(self, params: dict[str, Any]) -> object:
        spec = self.paper.spec
        if params.get("instFamily", params.get("uly")) != f"{spec.base}-{spec.settle}":
            raise ApiError(400, 51001, "Instrument ID does not exist.")
        mark = self.paper.fetch_mark_price(spec.symbol)
        per_contract = CT_VAL * mark
        rows = []
        for i, t in enumerate(self.paper.fetch_margin_tiers(spec.symbol)):
            lo = (t.floor / per_contract).to_integral_value(rounding=ROUND_FLOOR)
            hi = (t.cap / per_contract).to_integral_value(rounding=ROUND_FLOOR)
            rows.append(
                {
                    "uly": f"{spec.base}-{spec.settle}",
                    "instFamily": f"{spec.base}-{spec.settle}",
                    "instId": "",
                    "tier": str(i + 1),
                    "minSz": str(lo),
                    "maxSz": str(hi),
                    "mmr": str(t.mmr),
                    "imr": str(1 / t.max_leverage),
                    "maxLever": str(t.max_leverage),
                    "optMgnFactor": "0",
                    "quoteMaxLoan": "",
                    "baseMaxLoan": "",
                }
            )
        return _ok(rows)

    def account_config(self, _params: dict[str, Any]) -> object:
        st = self.paper._state
        return _ok(
            [
                {
                    "uid": "44705892343619584",
                    "mainUid": "44705892343619584",
                    "acctLv": "2",
                    "posMode": "long_short_mode" if st.hedge_mode else "net_mode",
                    "autoLoan": False,
                    "greeksType": "PA",
                    "level": "Lv1",
                    "levelTmp": "",
                    "ctIsoMode": "automatic",
                    "mgnIsoMode": "automatic",
                    "label": "lpbot",
                    "roleType": "0",
                    "traderInsts": [],
                    "spotRoleType": "0",
                    "spotTraderInsts": [],
                    "opAuth": "0",
                    "kycLv": "2",
                    "ip": "",
                    "perm": "read_only,trade",
                    "liquidationGear": "-1",
                    "enableSpotBorrow": False,
                    "spotBorrowAutoRepay": False,
                    "type": "0",
                }
            ]
        )

    def set_position_mode(self, params: dict[str, Any]) -> object:
        st = self.paper._state
        if st.size != 0 or any(o.status is OrderStatus.OPEN for o in st.orders):
            raise ApiError(400, 59000, "Settings failed. Close positions and cancel orders first.")
        st.hedge_mode = params["posMode"] == "long_short_mode"
        return _ok([{"posMode": params["posMode"]}])

    def leverage_info(self, params: dict[str, Any]) -> object:
        self._check(params)
        lever = str(self.paper._state.leverage)
        return _ok(
            [{"instId": self._inst, "mgnMode": "isolated", "posSide": "net", "lever": lever}]
        )

    def set_leverage(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        if params.get("mgnMode") != "isolated" or params.get("posSide", "net") != "net":
            raise ApiError(400, 51000, "Parameter mgnMode/posSide error")
        self.paper.set_leverage(symbol, int(Decimal(params["lever"])))
        return _ok(
            [
                {
                    "instId": self._inst,
                    "lever": params["lever"],
                    "mgnMode": "isolated",
                    "posSide": "net",
                }
            ]
        )

    def balance(self, _params: dict[str, Any]) -> object:
        spec = self.paper.spec
        b = self.paper.fetch_balance(spec.settle)
        s = self.paper.state
        upl = b.total - s.cash - s.isolated_margin
        return _ok(
            [
                {
                    "totalEq": dec(b.total),
                    "adjEq": "",
                    "uTime": str(self._now()),
                    "details": [
                        {
                            "ccy": spec.settle,
                            "eq": dec(b.total),
                            "cashBal": dec(s.cash + s.isolated_margin),
                            "availBal": dec(b.free),
                            "availEq": dec(b.free),
                            "frozenBal": dec(b.used),
                            "ordFrozen": "0",
                            "isoEq": dec(s.isolated_margin + upl),
                            "upl": dec(upl),
                            "eqUsd": dec(b.total),
                            "uTime": str(self._now()),
                        }
                    ],
                }
            ]
        )

    def positions(self, params: dict[str, Any]) -> object:
        if "instId" in params:
            self._check(params)
        p = self.paper.fetch_position(self.paper.spec.symbol)
        if p.size == 0:
            return _ok([])
        return _ok(
            [
                {
                    "instType": "SWAP",
                    "instId": self._inst,
                    "mgnMode": "isolated",
                    "posSide": "net",
                    "pos": self._contracts(p.size),
                    "posCcy": "",
                    "ccy": self.paper.spec.settle,
                    "avgPx": dec(p.entry_price),
                    "markPx": dec(p.mark_price),
                    "upl": dec(p.unrealized_pnl),
                    "margin": dec(p.isolated_margin),
                    "imr": "",
                    "mmr": "",
                    "liqPx": dec(p.liquidation_price),
                    "lever": str(self.paper._state.leverage),
                    "notionalUsd": dec(p.notional),
                    "posId": "1",
                    "cTime": str(self._now()),
                    "uTime": str(self._now()),
                }
            ]
        )

    def margin_balance(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        if params.get("type") != "add" or params.get("posSide") != "net":
            raise ApiError(400, 51000, "Parameter type/posSide error")
        self.paper.add_margin(symbol, Decimal(str(params["amt"])))
        return _ok([{"instId": self._inst, "posSide": "net", "type": "add", "amt": params["amt"]}])

    def bills(self, params: dict[str, Any]) -> object:
        since = int(params.get("begin", 0))
        return _ok(
            [
                {
                    "billId": f.id,
                    "instId": self._inst,
                    "instType": "SWAP",
                    "ccy": self.paper.spec.settle,
                    "type": "8",
                    "subType": "173" if f.amount < 0 else "174",
                    "balChg": dec(f.amount),
                    "pnl": dec(f.amount),
                    "ts": str(f.timestamp_ms),
                }
                for f in reversed(self.paper.fetch_funding_payments(self.paper.spec.symbol, since))
            ]
        )

    def _order_json(self, o: PaperOrder) -> dict[str, Any]:
        if o.status is OrderStatus.OPEN:
            state = "partially_filled" if o.filled else "live"
        else:
            state = _STATE[o.status]
        return {
            "instType": "SWAP",
            "instId": self._inst,
            "ordId": o.id,
            "clOrdId": o.client_order_id,
            "px": str(o.price or ""),
            "sz": self._contracts(o.amount),
            "ordType": o.type.value,
            "side": o.side.value,
            "posSide": "net",
            "tdMode": "isolated",
            "accFillSz": self._contracts(o.filled),
            "fillPx": "",
            "avgPx": dec(o.average_price) if o.filled else "",
            "state": state,
            "lever": str(self.paper._state.leverage),
            "fee": dec(-o.fee),
            "feeCcy": self.paper.spec.settle,
            "reduceOnly": "true" if o.reduce_only else "false",
            "cTime": str(o.created_ms),
            "uTime": str(o.updated_ms),
        }

    def _find(self, params: dict[str, Any]) -> PaperOrder:
        oid, cid = params.get("ordId"), params.get("clOrdId")
        for o in reversed(self.paper.state.orders):
            if (oid is not None and o.id == oid) or (cid is not None and o.client_order_id == cid):
                return o
        raise ApiError(400, 51603, "Order does not exist")

    def new_order(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        if params.get("tdMode") != "isolated" or params.get("posSide", "net") != "net":
            raise ApiError(400, 51000, "Parameter tdMode/posSide error")
        if self.paper._state.hedge_mode:
            raise ApiError(400, 51000, "Parameter posSide error")
        kind = OrderType.LIMIT if params["ordType"] == "limit" else OrderType.MARKET
        request = OrderRequest(
            symbol=symbol,
            side=OrderSide(params["side"]),
            amount=Decimal(str(params["sz"])) * CT_VAL,
            client_order_id=params["clOrdId"],
            type=kind,
            price=Decimal(str(params["px"])) if kind is OrderType.LIMIT else None,
            reduce_only=str(params.get("reduceOnly", "false")).lower() == "true",
        )
        order = self.paper.create_order(request)
        return _ok(
            [{"ordId": order.id, "clOrdId": order.client_order_id, "sCode": "0", "sMsg": "",
              "tag": "", "ts": str(self._now())}]
        )  # fmt: skip

    def get_order(self, params: dict[str, Any]) -> object:
        self._check(params)
        self.paper.fetch_position(self.paper.spec.symbol)
        if "clOrdId" in params and self._miss_lookup():
            raise ApiError(400, 51603, "Order does not exist")
        return _ok([self._order_json(self._find(params))])

    def orders_pending(self, _params: dict[str, Any]) -> object:
        self.paper.fetch_position(self.paper.spec.symbol)
        orders = self.paper.state.orders
        return _ok([self._order_json(o) for o in orders if o.status is OrderStatus.OPEN])

    def orders_history(self, _params: dict[str, Any]) -> object:
        self.paper.fetch_position(self.paper.spec.symbol)
        orders = self.paper.state.orders
        return _ok(
            [self._order_json(o) for o in reversed(orders) if o.status is not OrderStatus.OPEN]
        )

    def fills(self, params: dict[str, Any]) -> object:
        oid = params.get("ordId")
        by_id = {o.id: o for o in self.paper.state.orders}
        return _ok(
            [
                {
                    "instType": "SWAP",
                    "instId": self._inst,
                    "tradeId": str(t.id),
                    "ordId": t.order_id,
                    "clOrdId": by_id[t.order_id].client_order_id,
                    "billId": str(t.id),
                    "fillPx": str(t.price),
                    "fillSz": self._contracts(t.amount),
                    "side": t.side.value,
                    "posSide": "net",
                    "execType": "M" if t.maker else "T",
                    "feeCcy": self.paper.spec.settle,
                    "fee": dec(-t.fee),
                    "ts": str(t.timestamp_ms),
                    "fillTime": str(t.timestamp_ms),
                }
                for t in reversed(self.paper.state.trades)
                if oid is None or t.order_id == oid
            ]
        )

    def cancel(self, params: dict[str, Any]) -> object:
        symbol = self._check(params)
        found = self._find(params)
        self.paper.cancel_order(symbol, found.id)
        return _ok([{"ordId": found.id, "clOrdId": found.client_order_id, "sCode": "0",
                     "sMsg": ""}])  # fmt: skip


_V5 = "/api/v5"
OkxStandIn.ROUTES = {
    ("GET", f"{_V5}/public/instruments"): OkxStandIn.instruments,
    ("GET", f"{_V5}/public/time"): OkxStandIn.time,
    ("GET", f"{_V5}/public/mark-price"): OkxStandIn.mark_price,
    ("GET", f"{_V5}/public/funding-rate"): OkxStandIn.funding_rate,
    ("GET", f"{_V5}/public/funding-rate-history"): OkxStandIn.funding_rate_history,
    ("GET", f"{_V5}/public/position-tiers"): OkxStandIn.position_tiers,
    ("GET", f"{_V5}/account/config"): OkxStandIn.account_config,
    ("POST", f"{_V5}/account/set-position-mode"): OkxStandIn.set_position_mode,
    ("GET", f"{_V5}/account/leverage-info"): OkxStandIn.leverage_info,
    ("POST", f"{_V5}/account/set-leverage"): OkxStandIn.set_leverage,
    ("GET", f"{_V5}/account/balance"): OkxStandIn.balance,
    ("GET", f"{_V5}/account/positions"): OkxStandIn.positions,
    ("POST", f"{_V5}/account/position/margin-balance"): OkxStandIn.margin_balance,
    ("GET", f"{_V5}/account/bills"): OkxStandIn.bills,
    ("GET", f"{_V5}/account/bills-archive"): OkxStandIn.bills,
    ("POST", f"{_V5}/trade/order"): OkxStandIn.new_order,
    ("GET", f"{_V5}/trade/order"): OkxStandIn.get_order,
    ("GET", f"{_V5}/trade/orders-pending"): OkxStandIn.orders_pending,
    ("GET", f"{_V5}/trade/orders-history"): OkxStandIn.orders_history,
    ("GET", f"{_V5}/trade/fills"): OkxStandIn.fills,
    ("GET", f"{_V5}/trade/fills-history"): OkxStandIn.fills,
    ("POST", f"{_V5}/trade/cancel-order"): OkxStandIn.cancel,
}
OkxStandIn.PUBLIC = frozenset(p for (_m, p) in OkxStandIn.ROUTES if p.startswith(f"{_V5}/public"))
_: dict[tuple[str, str], Route] = OkxStandIn.ROUTES
