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

Set-up is idempotent (``prepare_isolated``): each venue's position mode, margin mode and leverage
are read first and changed only when they differ; the venues' "already set" answers (Binance
-4046 with ccxt's ``throwMarginModeAlreadySet: False``, Bybit 110025/110026/110043) count as no
change. Binance: ``GET /fapi/v1/positionSide/dual`` and ``/fapi/v1/symbolConfig``; OKX:
``GET /api/v5/account/config`` (``posMode``) and ``/api/v5/account/leverage-info``; Bybit:
``GET /v5/account/info`` (``marginMode``, unified account) and ``/v5/position/list``
(``positionIdx``, ``leverage``). A two-sided (hedge) position mode is switched to one-way only
while the account is flat; otherwise ``NeedsAttention``. Orders carry the one-way position side:
``positionSide=BOTH`` (Binance), ``posSide=net`` with ``tdMode=isolated`` (OKX), ``positionIdx=0``
(Bybit).

Venue truth: equity is the margin balance including unrealised PnL on every venue (Binance
``marginBalance``, OKX ``eq``, Bybit ``equity``; Bybit's ``walletBalance``, which ccxt reports as
the total, leaves unrealised PnL out); the mark price is required (no fall-back to the last
trade); maintenance tiers come from ccxt's leverage tiers (OKX counts its tiers in contracts:
they are converted to notional at the mark when read). ``sandbox`` uses the venue's testnet
through ccxt's ``set_sandbox_mode``.

ccxt's errors are translated here and nowhere else: network errors, timeouts, downtime, DDoS
protection and rate limits -> ``RetryLater``; insufficient funds and invalid orders ->
``Refused``; authentication and permission errors -> ``NeedsAttention``. API keys are read from the
environment variables the config names, handed to ccxt, and never logged or shown in ``repr``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
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
    MarginTier,
    MarketInfo,
    Order,
    OrderExists,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    PerpPosition,
)
from lpbot.hedge.margin import tiers_from_rates
from lpbot.hedge.stress import Liquidation, OpenInterest

__all__ = ["CcxtConfig", "CcxtExchange", "ExchangeId", "translate_ccxt_errors"]

log = logging.getLogger(__name__)

ExchangeId = Literal["binanceusdm", "okx", "bybit"]

_ENV_PREFIX: dict[str, str] = {"binanceusdm": "BINANCE", "okx": "OKX", "bybit": "BYBIT"}
_OPTIONS: dict[str, dict[str, Any]] = {
    # fetchCurrencies would call Binance's spot wallet API (sapi) on every load_markets;
    # "No need to change margin type" (-4046) is an answer, not an error
    "binanceusdm": {
        "fetchCurrencies": False,
        "setMarginMode": {"throwMarginModeAlreadySet": False},
    },
    "okx": {
        "defaultType": "swap",
        "fetchMarkets": {"types": ["swap"]},
        "createOrder": "privatePostTradeOrder",  # one order: POST /api/v5/trade/order
    },
    "bybit": {
        "defaultType": "swap",
        "defaultSubType": "linear",
        "fetchMarkets": {"types": ["linear"]},
    },
}
# one-way position side, per venue
# "an order with this client id exists": OKX and Bybit (in ccxt's tables as InvalidOrder) and
# Binance USD-M (not in them) answer a duplicate this way; the order is looked up again
_ORDER_EXISTS = {
    "binanceusdm": re.compile(r"(?<![\w-])-4116(?!\d)"),
    "okx": re.compile(r"(?<![\w-])51016(?!\d)"),
    "bybit": re.compile(r"(?<![\w-])110072(?!\d)"),
}

_POSITION_SIDE: dict[str, dict[str, Any]] = {
    "binanceusdm": {"positionSide": "BOTH"},
    "okx": {"posSide": "net"},
    "bybit": {"positionIdx": 0},
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
    sandbox: bool = False  # the venue's testnet (ccxt ``set_sandbox_mode``)
    # replaces entries of ccxt's ``urls['api']`` (a local stand-in)
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


def funding_interval_hours(interval: Any) -> float | None:
    """A ccxt funding rate's ``interval`` (``"1h"``, ``"4h"``, ``"8h"``) in hours; None when the
    venue does not give it (Binance's current rate) or it is not in hours."""
    text = str(interval) if interval is not None else ""
    if not text.endswith("h"):
        return None
    try:
        hours = float(text[:-1])
    except ValueError:
        return None
    return hours if hours > 0 and math.isfinite(hours) else None


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
        # the hedge needs markets, not the wallet's currency list (a private asset API call on
        # Binance and OKX on every load_markets)
        self._client.has["fetchCurrencies"] = False
        if config.sandbox:
            self._client.set_sandbox_mode(True)
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
        for p in self._raw_positions(symbol):
            contracts = _dec0(p.get("contracts"))
            if p.get("symbol") != symbol or contracts == 0:
                continue
            info = p.get("info") or {}
            sign = -1 if p.get("side") == "short" else 1
            mark = _dec(p.get("markPrice"))
            if mark is None or not mark > 0:
                mark = self.fetch_mark_price(symbol)
            return PerpPosition(
                symbol=symbol,
                size=sign * contracts * market.contract_size,
                entry_price=_dec0(p.get("entryPrice")),
                mark_price=mark,
                unrealized_pnl=_dec0(p.get("unrealizedPnl")),
                isolated_margin=self._isolated_wallet(p, info),
                liquidation_price=_dec(p.get("liquidationPrice")),
                leverage=_dec(p.get("leverage")),
            )
        return PerpPosition.flat(symbol, self.fetch_mark_price(symbol))

    def _raw_positions(self, symbol: str) -> list[dict[str, Any]]:
        with translate_ccxt_errors(f"{self._id} fetch positions"):
            raw: list[dict[str, Any]] = self._client.fetch_positions([symbol])
        return raw

    def _isolated_wallet(self, p: dict[str, Any], info: dict[str, Any]) -> Decimal:
        """The position's isolated wallet (margin posted plus funding, before unrealised PnL):
        Binance ``isolatedWallet``, OKX ``margin``, Bybit ``positionBalance``."""
        key = {"binanceusdm": "isolatedWallet", "okx": "margin", "bybit": "positionBalance"}
        wallet = _dec(info.get(key[self._id]) or None)
        if wallet is not None:
            return wallet
        return _dec0(p.get("collateral") or p.get("initialMargin"))

    def fetch_balance(self, currency: str) -> Balance:
        with translate_ccxt_errors(f"{self._id} fetch balance"):
            raw = self._client.fetch_balance()
        entry = raw.get(currency) or {}
        info = raw.get("info") or {}
        equity = self._equity(info, currency)
        total = equity if equity is not None else _dec0(entry.get("total"))
        free, used = _dec0(entry.get("free")), _dec0(entry.get("used"))
        return Balance(currency, total, free, used)

    def _equity(self, info: Any, currency: str) -> Decimal | None:
        """The margin balance with unrealised PnL from the venue's own fields (module)."""
        try:
            if self._id == "binanceusdm":
                rows, key, name = info["assets"], "asset", "marginBalance"
            elif self._id == "okx":
                rows, key, name = info["data"][0]["details"], "ccy", "eq"
            else:
                rows, key, name = info["result"]["list"][0]["coin"], "coin", "equity"
        except (KeyError, IndexError, TypeError):
            return None
        for row in rows:
            if row.get(key) == currency:
                return _dec(row.get(name) or None)
        return Decimal(0)

    def fetch_mark_price(self, symbol: str) -> Decimal:
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch mark price"):
            if self._client.has.get("fetchMarkPrice"):
                ticker = self._client.fetch_mark_price(symbol)
            else:  # Bybit: the linear ticker carries the mark
                ticker = self._client.fetch_ticker(symbol)
        price = _dec(ticker.get("markPrice"))
        if price is None or not price > 0:
            raise RetryLater(f"{self._id}: the venue gave no mark price for {symbol}")
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
            interval_hours=funding_interval_hours(raw.get("interval")),
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

    # ---------------------------------------------------------- market stress (the regime)

    def fetch_open_interest(self, symbol: str) -> OpenInterest | None:
        """The perp's open interest now in USD (``hedge.stress``); None when the venue does not
        serve it (``has['fetchOpenInterest']``). A venue that gives only the base amount
        (Binance) is valued at the mark."""
        if not self._client.has.get("fetchOpenInterest"):
            return None
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch open interest"):
            raw = self._client.fetch_open_interest(symbol)
        rows = self._open_interest(symbol, [raw])
        return rows[0] if rows else None

    def fetch_open_interest_history(self, symbol: str, since_ms: int) -> list[OpenInterest] | None:
        """The perp's open interest every 5 minutes since ``since_ms``, oldest first; None when
        the venue does not serve it (``has['fetchOpenInterestHistory']``)."""
        if not self._client.has.get("fetchOpenInterestHistory"):
            return None
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch open interest history"):
            raw = self._client.fetch_open_interest_history(symbol, "5m", since_ms)
        return sorted(self._open_interest(symbol, raw), key=lambda r: r.timestamp_ms)

    def fetch_liquidations(self, symbol: str, since_ms: int) -> list[Liquidation] | None:
        """The market's public liquidations since ``since_ms`` in USD; None when the venue does
        not serve them over REST (``has['fetchLiquidations']``; Binance gives them only as a
        websocket stream)."""
        if not self._client.has.get("fetchLiquidations"):
            return None
        self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch liquidations"):
            raw = self._client.fetch_liquidations(symbol, since_ms)
        out = []
        for r in raw:
            usd = r.get("quoteValue")
            if usd is None and r.get("baseValue") is not None and r.get("price") is not None:
                usd = float(r["baseValue"]) * float(r["price"])
            if usd is not None and r.get("timestamp") is not None:
                out.append(Liquidation(symbol, float(usd), int(r["timestamp"])))
        return sorted(out, key=lambda r: r.timestamp_ms)

    def _open_interest(self, symbol: str, raw: list[dict[str, Any]]) -> list[OpenInterest]:
        mark: float | None = None
        out = []
        for r in raw:
            value = r.get("openInterestValue")
            amount = r.get("openInterestAmount")  # base tokens (Binance, Bybit), contracts (OKX)
            if value is None:
                if amount is None:
                    continue
                if mark is None:
                    mark = float(self.fetch_mark_price(symbol))
                value = float(amount) * mark
            t = int(r.get("timestamp") or self._client.milliseconds())
            base = None if amount is None else float(amount)
            out.append(OpenInterest(symbol, float(value), t, base))
        return out

    # ----------------------------------------------------------------------------- writes

    def fetch_margin_tiers(self, symbol: str) -> tuple[MarginTier, ...]:
        market = self.load_market(symbol)
        with translate_ccxt_errors(f"{self._id} fetch leverage tiers"):
            if self._id == "binanceusdm":
                raw = self._client.fetch_leverage_tiers([symbol])[symbol]
            else:
                raw = self._client.fetch_market_leverage_tiers(symbol)
        scale = Decimal(1)
        if self._id == "okx":  # tiers in contracts: to notional at the mark
            scale = market.contract_size * self.fetch_mark_price(symbol)
        rows = [
            (
                _dec0(t.get("minNotional")) * scale,
                _dec0(t.get("maxNotional")) * scale,
                _dec0(t.get("maintenanceMarginRate")),
                _dec0(t.get("maxLeverage")),
            )
            for t in raw
        ]
        if not rows:
            raise RetryLater(f"{self._id}: no leverage tiers for {symbol}")
        return tiers_from_rates(rows)

    def prepare_isolated(self, symbol: str, leverage: int) -> tuple[str, ...]:
        market = self._market(symbol)
        self.load_market(symbol)
        changed: list[str] = []
        with translate_ccxt_errors(f"{self._id} prepare {symbol}"):
            hedged, busy = self._position_mode(symbol, market)
            if hedged:
                if busy:
                    raise NeedsAttention(
                        f"{self._id}: the account is in hedge (two-sided) position mode with "
                        f"positions or orders open; lpbot needs one-way mode: close them, or "
                        f"switch the mode by hand"
                    )
                self._set_one_way(symbol)
                changed.append("position mode: one-way")
            mode, current = self._margin_setup(symbol, market)
            if mode != "isolated":
                self._set_isolated(symbol, leverage)
                changed.append("margin mode: isolated")
                mode, current = self._margin_setup(symbol, market)
            if current is None or current != leverage:
                self._set_leverage(symbol, leverage)
                changed.append(f"leverage: {leverage}")
        return tuple(changed)

    def _position_mode(self, symbol: str, market: dict[str, Any]) -> tuple[bool, bool]:
        """(hedge mode?, positions or open orders?) as the venue reports them."""
        c = self._client
        if self._id == "binanceusdm":
            hedged = bool(c.fetch_position_mode(symbol).get("hedged"))
        elif self._id == "okx":
            config = c.privateGetAccountConfig()["data"][0]
            hedged = config.get("posMode") == "long_short_mode"
        else:
            raw = c.privateGetV5PositionList({"category": "linear", "symbol": market["id"]})
            rows = raw["result"]["list"]
            hedged = any(str(r.get("positionIdx", "0")) != "0" for r in rows)
        if not hedged:
            return False, False
        busy = any(_dec0(p.get("contracts")) != 0 for p in c.fetch_positions([symbol]))
        busy = busy or bool(c.fetch_open_orders(symbol))
        return True, busy

    def _set_one_way(self, symbol: str) -> None:
        c = self._client
        if self._id == "bybit":
            with suppress(ccxt.NoChange):  # 110025 "Position mode is not modified"
                c.set_position_mode(False, symbol)
        else:
            c.set_position_mode(False, symbol)

    def _margin_setup(self, symbol: str, market: dict[str, Any]) -> tuple[str, int | None]:
        """(margin mode, leverage) of ``symbol`` as the venue reports them."""
        c = self._client
        if self._id == "binanceusdm":
            rows = c.fapiPrivateGetSymbolConfig({"symbol": market["id"]})
            row = rows[0] if rows else {}
            mode = "isolated" if row.get("marginType") == "ISOLATED" else "cross"
            lev = row.get("leverage")
        elif self._id == "okx":
            rows = c.privateGetAccountLeverageInfo({"instId": market["id"], "mgnMode": "isolated"})
            data = rows.get("data") or []
            mode = "isolated"  # OKX: per order (tdMode); the isolated leverage is what matters
            lev = data[0].get("lever") if data else None
        else:
            info = c.privateGetV5AccountInfo()["result"]
            mode = "isolated" if info.get("marginMode") == "ISOLATED_MARGIN" else "cross"
            raw = c.privateGetV5PositionList({"category": "linear", "symbol": market["id"]})
            rows = raw["result"]["list"]
            lev = rows[0].get("leverage") if rows else None
        value = _dec(lev or None)
        return mode, (int(value) if value is not None and value == int(value) else None)

    def _set_isolated(self, symbol: str, leverage: int) -> None:
        c = self._client
        if self._id == "binanceusdm":
            c.set_margin_mode("isolated", symbol)  # -4046: ccxt answers it, no error
        elif self._id == "bybit":
            # unified account: account-wide; 110026 "margin mode is not modified"
            with suppress(ccxt.MarginModeAlreadySet):
                c.set_margin_mode("isolated", symbol)

    def _set_leverage(self, symbol: str, leverage: int) -> None:
        c = self._client
        if self._id == "okx":
            c.set_leverage(leverage, symbol, {"marginMode": "isolated", "posSide": "net"})
            return
        try:
            c.set_leverage(leverage, symbol)
        except ccxt.BadRequest as exc:
            if self._id == "bybit" and "110043" in str(exc):
                return  # "Set leverage not modified"
            raise

    def add_margin(self, symbol: str, amount: Decimal) -> None:
        market = self._market(symbol)
        with translate_ccxt_errors(f"{self._id} add margin {amount}"):
            if self._id == "bybit":
                self._client.privatePostV5PositionAddMargin(
                    {
                        "category": "linear",
                        "symbol": market["id"],
                        "margin": str(amount),
                        "positionIdx": 0,
                    }
                )
            elif self._id == "okx":
                # POST /api/v5/account/position/margin-balance; ccxt 4.5.90's okx.add_margin
                # sends it, then fails parsing the answer (``type['type']`` on a string)
                self._client.privatePostAccountPositionMarginBalance(
                    {"instId": market["id"], "posSide": "net", "type": "add", "amt": str(amount)}
                )
            else:
                self._client.add_margin(symbol, float(amount))

    def create_order(self, request: OrderRequest) -> Order:
        market = self.load_market(request.symbol)
        contracts = request.amount / market.contract_size
        if contracts % (market.amount_step / market.contract_size) != 0:
            raise Refused(f"{request.amount} is not a multiple of {market.amount_step}")
        params: dict[str, Any] = {
            "clientOrderId": request.client_order_id,
            **_POSITION_SIDE[self._id],
        }
        if request.reduce_only:
            params["reduceOnly"] = True
        if self._id == "okx":
            params["marginMode"] = "isolated"  # OKX tdMode
        price = float(request.price) if request.price is not None else None
        what = f"{self._id} create order {request.client_order_id}"
        with translate_ccxt_errors(what):
            try:
                raw = self._client.create_order(
                    request.symbol,
                    request.type.value,
                    request.side.value,
                    float(contracts),
                    price,
                    params,
                )
            except ccxt.ExchangeError as exc:
                if isinstance(exc, ccxt.DuplicateOrderId) or _ORDER_EXISTS[self._id].search(
                    str(exc)
                ):
                    raise OrderExists(f"{what}: the order exists: {exc}") from exc
                raise
        if raw.get("status") is None and raw.get("id"):
            # OKX and Bybit acknowledge an order with its ids only: read it back once. The
            # venue has the order now: a read-back that fails or lags leaves it open (the
            # caller polls it by id), never an error that would send it again
            fetched = None
            try:
                with translate_ccxt_errors(f"{self._id} fetch order {request.client_order_id}"):
                    fetched = self._fetch_raw_order(request.symbol, str(raw["id"]), None)
            except (Refused, RetryLater) as exc:
                log.warning("order %s acknowledged; reading it back: %s", raw["id"], exc)
            if fetched is not None:
                raw = fetched
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
        raw: dict[str, Any] | None
        try:
            with translate_ccxt_errors(what):
                raw = self._fetch_raw_order(symbol, order_id, client_order_id)
        except Refused as exc:
            if not isinstance(exc.__cause__, ccxt.OrderNotFound):
                raise
            raw = None
        if raw is None and client_order_id is not None:
            with translate_ccxt_errors(what):
                raw = self._scan_for_client_id(symbol, client_order_id)
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

    def _scan_for_client_id(self, symbol: str, cid: str) -> dict[str, Any] | None:
        """The order with client id ``cid`` among the open and recent closed orders, then among
        the recent trades (OKX ``clOrdId``, Bybit ``orderLinkId``; Binance's trades carry none):
        a venue's look-up by client id can miss an order its other lists already show."""
        c = self._client
        bybit = self._id == "bybit"
        closed = c.fetch_canceled_and_closed_orders if bybit else c.fetch_closed_orders
        for fetch in (c.fetch_open_orders, closed):
            for o in fetch(symbol):
                if o.get("clientOrderId") == cid:
                    found: dict[str, Any] = o
                    return found
        key = {"okx": "clOrdId", "bybit": "orderLinkId"}.get(self._id)
        if key is None:
            return None
        for t in c.fetch_my_trades(symbol):
            if (t.get("info") or {}).get(key) == cid and t.get("order"):
                return self._fetch_raw_order(symbol, str(t["order"]), None)
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
