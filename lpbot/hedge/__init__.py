"""Delta hedge of an LP position with a USD-margined perpetual short.

``base``: the ``Exchange`` protocol and its values (amounts in base tokens, ``Decimal``), clocks.
``paper``: the default venue, a simulated book with fees, funding and isolated margin.
``ccxt_exchange``: Binance USD-M, OKX and Bybit through ccxt. ``dry``: reads real, orders simulated.
``margin``: isolated margin with the venue's maintenance tiers, liquidation price, a position's
own leverage, funding. ``plan``: the pure decisions, ``plan_hedge`` (the order) and
``plan_margin`` (keep the position's leverage under the cap). ``controller``: the executor
(idempotent orders, look-ups with backoff, bounded retries) and the controller (idempotent venue
set-up, reconcile, sync, kill switch). ``state``: what is persisted. ``delta``: the LP position's
delta from a chain snapshot. ``wiring``: the hedge job of ``lpbot run``. ``commands``:
``lpbot hedge ...``.
"""

from lpbot.hedge.base import (
    Balance,
    Clock,
    Exchange,
    FundingPayment,
    FundingRate,
    ManualClock,
    MarketInfo,
    Order,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    PerpPosition,
    SystemClock,
)
from lpbot.hedge.controller import HedgeController, HedgeExecutor, HedgeStatus, SyncResult
from lpbot.hedge.dry import DryRunExchange
from lpbot.hedge.paper import BookModel, FundingSeries, PaperExchange, PaperMarketSpec
from lpbot.hedge.plan import (
    AddMargin,
    HedgeAction,
    HedgeConfig,
    HedgeInputs,
    NoAction,
    ReduceForMargin,
    RetryPolicy,
    client_order_id,
    plan_hedge,
    plan_margin,
)
from lpbot.hedge.state import Alert, AlertKind, HedgePnl, HedgeState, JsonStateStore

__all__ = [
    "AddMargin",
    "Alert",
    "AlertKind",
    "Balance",
    "BookModel",
    "Clock",
    "DryRunExchange",
    "Exchange",
    "FundingPayment",
    "FundingRate",
    "FundingSeries",
    "HedgeAction",
    "HedgeConfig",
    "HedgeController",
    "HedgeExecutor",
    "HedgeInputs",
    "HedgePnl",
    "HedgeState",
    "HedgeStatus",
    "JsonStateStore",
    "ManualClock",
    "MarketInfo",
    "NoAction",
    "Order",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PaperExchange",
    "PaperMarketSpec",
    "PerpPosition",
    "ReduceForMargin",
    "RetryPolicy",
    "SyncResult",
    "SystemClock",
    "client_order_id",
    "plan_hedge",
    "plan_margin",
]
