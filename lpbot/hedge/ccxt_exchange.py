"""``Exchange`` on USD-margined perps of Binance USD-M, OKX and Bybit through ccxt's unified API.

Amounts cross this adapter in base tokens: ccxt counts contracts (``contractSize`` base tokens
each: 1 on Binance USD-M and Bybit linear, e.g. 0.01 BTC on OKX), and the conversion happens here.
ccxt returns floats; they become ``Decimal`` through their shortest repr.

Client order ids go through ccxt's unified ``clientOrderId`` param, which ccxt maps to Binance's
``newClientOrderId`` (``binance.create_order_request``), OKX's ``clOrdId``
(``okx.create_order_request``) and Bybit's ``orderLinkId`` (``bybit.create_order_request``). An
order is looked up by client id with ``origClientOrderId`` (Binance ``GET /fapi/v1/order``),
``clOrdId`` (OKX ``GET /api/v5/trade/order``) or by listing orders filtered on ``orderLinkId``
(Bybit: ccxt's ``fetch_order`` there takes only the venue id).

ccxt's errors are translated here and nowhere else: network errors, timeouts, downtime, DDoS
protection and rate limits -> ``RetryLater``; insufficient funds and invalid orders ->
``Refused``; authentication and permission errors -> ``NeedsAttention``. API keys are read from the
environment variables the config names, handed to ccxt, and never logged or shown in ``repr``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any, Literal

import ccxt
from pydantic import BaseModel, ConfigDict, Field

from lpbot.errors import ConfigError, NeedsAttention, Refused, RetryLater
from lpbot.hedge.base import (
    Balance,
    FundingPayment,
    FundingRate,
    MarketInfo,
    Order,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    PerpPosition,
)

__all__ = ["CcxtConfig", "CcxtExchange", "ExchangeId", "translate_ccxt_errors"]

log = logging.getLogger(__name__)

ExchangeId = Literal["binanceusdm", "okx", "bybit"]

_ENV_PREFIX: dict[str, str] = {"binanceusdm": "BINANCE", "okx": "OKX", "bybit": "BYBIT"}
_OPTIONS: dict[str, dict[str, Any]] = {
    # fetchCurrencies would call Binance's spot wallet API (sapi) on every load_markets
    "binanceusdm": {"fetchCurrencies": False},
    "okx": {"defaultType": "swap"},
    "bybit": {"defaultType": "swap", "defaultSubType": "linear"},
}
_STATUSES = {s.value: s for s in OrderStatus}


class CcxtConfig(BaseModel):
    """Which venue and where its keys are: environment variable *names*, never the keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange_id: ExchangeId
    key_env: str
    secret_env: str
    password_env: str | None = None  # OKX's API passphrase
    timeout_ms: int = Field(default=10_000, gt=0)
    enable_rate_limit: bool = True
    # replaces entries of ccxt's ``urls['api']`` (a testnet, a local stand-in)
    api_urls: dict[str, str] | None = None

    @classmethod
    def for_exchange(cls, exchange_id: ExchangeId, **overrides: Any) -> CcxtConfig:
        """Defaults: ``LPBOT_BINANCE_KEY``/``_SECRET``, ``LPBOT_OKX_KEY``/``_SECRET``/
        ``_PASSWORD``, ``LPBOT_BYBIT_KEY``/``_SECRET``."""
        prefix = f"LPBOT_{_ENV_PREFIX[exchange_id]}"
        fields: dict[str, Any] = {
            "exchange_id": exchange_id,
            "key_env": f"{prefix}_KEY",
            "secret_env": f"{prefix}_SECRET",
            "password_env": f"{prefix}_PASSWORD" if exchange_id == "okx" else None,
        }
        return cls(**(fields | overrides))


@contextmanager
def translate_ccxt_errors(what: str) -> Iterator[None]:
    """Raise ccxt's errors as lpbot's (module docstring); the ccxt error is the cause."""
    try:
        yield
    except ccxt.AuthenticationError as exc:  # includes PermissionDenied, AccountSuspended
        raise NeedsAttention(f"{what}: the venue refused the API key: {exc}") from exc
    except (ccxt.InsufficientFunds, ccxt.InvalidOrder) as exc:
        raise Refused(f"{what}: {exc}") from exc
    except ccxt.NetworkError as exc:  # RequestTimeout, ExchangeNotAvailable, DDoSProtection,
        raise RetryLater(f"{what}: {type(exc).__name__}: {exc}") from exc  # RateLimitExceeded
    except ccxt.OperationFailed as exc:  # "execution status unknown", bad responses
        raise RetryLater(f"{what}: {type(exc).__name__}: {exc}") from exc
    except (ccxt.BadSymbol, ccxt.NotSupported, ccxt.ArgumentsRequired) as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    except ccxt.ExchangeError as exc:  # BadRequest, OperationRejected and the rest
        raise Refused(f"{what}: {type(exc).__name__}: {exc}") from exc
    except ccxt.BaseError as exc:
        raise NeedsAttention(f"{what}: unexpected {type(exc).__name__}: {exc}") from exc


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _clean(value: Decimal) -> Decimal:
    """Without trailing zeros and without an exponent: ``1.0`` -> ``1``, ``100.0`` -> ``100``."""
    d = value.normalize()
    return d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d  # type: ignore[operator]


def _dec0(value: Any) -> Decimal:
    d = _dec(value)
    return d if d is not None else Decimal(0)


class CcxtExchange:
    """A venue reached through ccxt (module docstring)."""

    def __init__(self, config: CcxtConfig, *, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        names = {"apiKey": config.key_env, "secret": config.secret_env}
        if config.password_env is not None:
            names["password"] = config.password_env
        missing = [name for name in names.values() if not env.get(name)]
        if missing:
            raise NeedsAttention(
                f"{config.exchange_id}: set the environment variable(s) {', '.join(missing)}"
            )
        credentials: dict[str, Any] = {field: env[name] for field, name in names.items()}
        self.config = config
        self._id: str = config.exchange_id
        cls = getattr(ccxt, config.exchange_id)
        self._client: ccxt.Exchange = cls(
            {
                **credentials,
                "timeout": config.timeout_ms,
                "enableRateLimit": config.enable_rate_limit,
                "options": dict(_OPTIONS[config.exchange_id]),
            }
        )
        if config.api_urls:
            self._client.urls["api"] = {**self._client.urls["api"], **config.api_urls}
            if config.exchange_id == "binanceusdm":
                # ccxt chooses Binance's USD-M error table by the URL's host (fapi.binance.com);
                # at any other URL it would map -2019 and the like to a bare ExchangeError
                exceptions = self._client.exceptions
                exceptions["exact"] = {**exceptions["exact"], **exceptions["linear"]["exact"]}
        self._markets: dict[str, MarketInfo] = {}

    def __repr__(self) -> str:
        return f"CcxtExchange({self._id})"

    @property
    def name(self) -> str:
        return self._id

    # ----------------------------------------------------------------------------- markets

    def _market(self, symbol: str) -> dict[str, Any]:
        with translate_ccxt_errors(f"{self._id} load markets"):
            self._client.load_markets()
            market: dict[str, Any] = self._client.market(symbol)
        if not (market.get("swap") and market.get("linear")):
            raise ConfigError(f"{self._id}: {symbol} is not a linear perpetual")
        return market

    def _step(self, value: Any) -> Decimal:
        """A precision from ccxt as a step (ccxt gives steps in TICK_SIZE mode, else digits)."""
        d = _dec(value)
        if d is None:
            return Decimal(1)
        if self._client.precisionMode == ccxt.TICK_SIZE:
            return d
        return Decimal(1).scaleb(-int(d))

    def load_market(self, symbol: str) -> MarketInfo:
        if symbol in self._markets:
            return self._markets[symbol]
        m = self._market(symbol)
        size = _clean(_dec(m.get("contractSize")) or Decimal(1))
        step = self._step(m["precision"].get("amount"))
        limits = m.get("limits") or {}
        min_contracts = _dec((limits.get("amount") or {}).get("min")) or step
        info = MarketInfo(
            symbol=symbol,
            base=m["base"],
            settle=m["settle"],
            contract_size=size,
            amount_step=_clean(step * size),
            min_amount=_clean(min_contracts * size),
            min_notional=_clean(_dec0((limits.get("cost") or {}).get("min"))),
            price_tick=_clean(self._step(m["precision"].get("price"))),
            taker_fee=_dec0(m.get("taker")),
            maker_fee=_dec0(m.get("maker")),
        )
        self._markets[symbol] = info
        return info

    # ----------------------------------------------------------------------------- reads

    def fetch_position(self, symbol: str) -> PerpPosition:
        market = self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch positions"):
            raw = self._client.fetch_positions([symbol])
        for p in raw:
            contracts = _dec0(p.get("contracts"))
            if p.get("symbol") != symbol or contracts == 0:
                continue
            sign = -1 if p.get("side") == "short" else 1
            mark = _dec(p.get("markPrice")) or self.fetch_mark_price(symbol)
            margin = _dec(p.get("positionMargin")) or _dec(p.get("collateral"))
            return PerpPosition(
                symbol=symbol,
                size=sign * contracts * market.contract_size,
                entry_price=_dec0(p.get("entryPrice")),
                mark_price=mark,
                unrealized_pnl=_dec0(p.get("unrealizedPnl")),
                isolated_margin=margin if margin is not None else _dec0(p.get("initialMargin")),
                liquidation_price=_dec(p.get("liquidationPrice")),
                leverage=_dec(p.get("leverage")),
            )
        return PerpPosition.flat(symbol, self.fetch_mark_price(symbol))

    def fetch_balance(self, currency: str) -> Balance:
        with translate_ccxt_errors(f"{self._id} fetch balance"):
            raw = self._client.fetch_balance()
        entry = raw.get(currency) or {}
        return Balance(
            currency, _dec0(entry.get("total")), _dec0(entry.get("free")), _dec0(entry.get("used"))
        )

    def fetch_mark_price(self, symbol: str) -> Decimal:
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch mark price"):
            if self._client.has.get("fetchMarkPrice"):
                ticker = self._client.fetch_mark_price(symbol)
            else:
                ticker = self._client.fetch_ticker(symbol)
        price = _dec(ticker.get("markPrice")) or _dec(ticker.get("last"))
        if price is None or not price > 0:
            raise RetryLater(f"{self._id}: no mark price for {symbol}")
        return price

    def fetch_funding_rate(self, symbol: str) -> FundingRate:
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch funding rate"):
            raw = self._client.fetch_funding_rate(symbol)
        return FundingRate(
            symbol=symbol,
            rate=_dec0(raw.get("fundingRate")),
            timestamp_ms=int(raw.get("timestamp") or self._client.milliseconds()),
            mark_price=_dec(raw.get("markPrice")),
            next_funding_ms=raw.get("fundingTimestamp"),
        )

    def fetch_funding_rate_history(self, symbol: str, since_ms: int) -> list[FundingRate]:
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch funding rate history"):
            raw = self._client.fetch_funding_rate_history(symbol, since_ms)
        rates = [
            FundingRate(symbol, _dec0(r.get("fundingRate")), int(r["timestamp"]))
            for r in raw
            if r.get("timestamp") is not None and int(r["timestamp"]) >= since_ms
        ]
        return sorted(rates, key=lambda r: r.timestamp_ms)

    def fetch_funding_payments(self, symbol: str, since_ms: int) -> list[FundingPayment]:
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch funding payments"):
            raw = self._client.fetch_funding_history(symbol, since_ms)
        payments = [
            FundingPayment(
                symbol,
                _dec0(p.get("amount")),
                int(p["timestamp"]),
                str(p.get("id") or p["timestamp"]),
            )
            for p in raw
            if p.get("timestamp") is not None and int(p["timestamp"]) >= since_ms
        ]
        return sorted(payments, key=lambda p: p.timestamp_ms)

    # ----------------------------------------------------------------------------- writes

    def set_isolated_leverage(self, symbol: str, leverage: int) -> None:
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} set leverage"):
            if self._id == "binanceusdm":
                self._client.set_margin_mode("isolated", symbol)  # "no need to change" is fine
                self._client.set_leverage(leverage, symbol)
            elif self._id == "okx":
                self._client.set_leverage(leverage, symbol, {"marginMode": "isolated"})
            else:
                # Bybit's unified account sets isolated margin account-wide: left to a person
                self._client.set_leverage(leverage, symbol)

    def create_order(self, request: OrderRequest) -> Order:
        market = self.load_market(request.symbol)
        contracts = request.amount / market.contract_size
        if contracts % (market.amount_step / market.contract_size) != 0:
            raise Refused(f"{request.amount} is not a multiple of {market.amount_step}")
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.reduce_only:
            params["reduceOnly"] = True
        if self._id == "okx":
            params["marginMode"] = "isolated"  # OKX tdMode
        price = float(request.price) if request.price is not None else None
        with translate_ccxt_errors(f"{self._id} create order {request.client_order_id}"):
            raw = self._client.create_order(
                request.symbol,
                request.type.value,
                request.side.value,
                float(contracts),
                price,
                params,
            )
        return self._order(raw, market, request)

    def cancel_order(self, symbol: str, order_id: str) -> Order:
        market = self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} cancel order {order_id}"):
            raw = self._client.cancel_order(order_id, symbol)
        return self._order(raw, market)

    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None:
        if (order_id is None) == (client_order_id is None):
            raise ValueError("give exactly one of order_id and client_order_id")
        market = self.load_market(symbol)
        what = f"{self._id} fetch order {order_id or client_order_id}"
        try:
            with translate_ccxt_errors(what):
                raw = self._fetch_raw_order(symbol, order_id, client_order_id)
        except Refused as exc:
            if isinstance(exc.__cause__, ccxt.OrderNotFound):
                return None
            raise
        return None if raw is None else self._order(raw, market)

    def _fetch_raw_order(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> dict[str, Any] | None:
        c = self._client
        if order_id is not None:
            params = {"acknowledged": True} if self._id == "bybit" else {}
            result: dict[str, Any] = c.fetch_order(order_id, symbol, params)
            return result
        if self._id == "binanceusdm":
            result = c.fetch_order(None, symbol, {"origClientOrderId": client_order_id})
            return result
        if self._id == "okx":
            result = c.fetch_order(None, symbol, {"clOrdId": client_order_id})
            return result
        by_link = {"orderLinkId": client_order_id}
        for fetch in (c.fetch_open_orders, c.fetch_canceled_and_closed_orders):
            for o in fetch(symbol, None, None, by_link):
                if o.get("clientOrderId") == client_order_id:
                    found: dict[str, Any] = o
                    return found
        return None

    # ----------------------------------------------------------------------------- parsing

    def _order(
        self, raw: dict[str, Any], market: MarketInfo, request: OrderRequest | None = None
    ) -> Order:
        size = market.contract_size
        status = _STATUSES.get(str(raw.get("status")), OrderStatus.OPEN)
        side = OrderSide(raw["side"]) if raw.get("side") else request.side if request else None
        if side is None:
            raise RetryLater(f"{self._id}: order {raw.get('id')} came back without a side")
        amount = _dec(raw.get("amount"))
        order = Order(
            id=str(raw["id"]),
            client_order_id=raw.get("clientOrderId"),
            symbol=market.symbol,
            side=side,
            type=OrderType.LIMIT if raw.get("type") == "limit" else OrderType.MARKET,
            amount=amount * size if amount is not None else (request.amount if request else size),
            filled=_dec0(raw.get("filled")) * size,
            average_price=_dec(raw.get("average")),
            status=status,
            reduce_only=bool(raw.get("reduceOnly")) or bool(request and request.reduce_only),
            fee=self._fee(raw, market),
            timestamp_ms=raw.get("timestamp"),
        )
        if order.fee is None and order.status.is_final and order.filled > 0:
            order = self._with_trade_fees(order, market)
        return order

    @staticmethod
    def _fee(raw: dict[str, Any], market: MarketInfo) -> Decimal | None:
        fees = raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])
        costs = [_dec(f.get("cost")) for f in fees if f and f.get("currency") == market.settle]
        known = [c for c in costs if c is not None]
        return sum(known, Decimal(0)) if known else None

    def _with_trade_fees(self, order: Order, market: MarketInfo) -> Order:
        """Binance's order endpoints carry no commission: sum it from the order's trades
        (``GET /fapi/v1/userTrades?orderId=``)."""
        with translate_ccxt_errors(f"{self._id} fetch trades of order {order.id}"):
            if self._id == "binanceusdm":  # ccxt's fetch_order_trades is spot-only there
                trades = self._client.fetch_my_trades(
                    market.symbol, None, None, {"orderId": order.id}
                )
            else:
                trades = self._client.fetch_order_trades(order.id, market.symbol)
        fee = Decimal(0)
        for t in trades:
            f = t.get("fee") or {}
            if f.get("currency") == market.settle:
                fee += _dec0(f.get("cost"))
        return replace(order, fee=fee)
