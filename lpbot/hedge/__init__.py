"""Delta hedge of an LP position with a USD-margined perpetual short.

``base``: the ``Exchange`` protocol and its values (amounts in base tokens, ``Decimal``), clocks.
``paper``: the default venue, a simulated book with fees, funding and isolated margin.
``ccxt_exchange``: Binance USD-M, OKX and Bybit through ccxt. ``dry``: reads real, orders simulated.
``margin``: Binance's isolated margin, liquidation price and funding formulas.
``plan``: the pure decision, ``plan_hedge``. ``controller``: the executor (idempotent orders,
bounded retries) and the controller (reconcile, sync, kill switch). ``state``: what is persisted.
``delta``: the LP position's delta from a chain snapshot. ``commands``: ``lpbot hedge ...``.
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
    HedgeAction,
    HedgeConfig,
    HedgeInputs,
    NoAction,
    RetryPolicy,
    client_order_id,
    plan_hedge,
)
from lpbot.hedge.state import Alert, AlertKind, HedgePnl, HedgeState, JsonStateStore

__all__ = [
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
    "RetryPolicy",
    "SyncResult",
    "SystemClock",
    "client_order_id",
    "plan_hedge",
]
