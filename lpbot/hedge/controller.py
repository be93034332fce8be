"""Doing the hedge: the executor sends one order idempotently; the controller runs the steps.

``HedgeExecutor.submit`` sends an order under its deterministic client order id. Before any
re-send it looks the order up by that id (``find``): again and again with backoff, for up to
``RetryPolicy.lookup_seconds``, because a venue's order index can lag its matching engine and
Binance and OKX refuse a duplicate client id only while the first order is *open*: a filled
market order sent again would be a second position. Only when the venue has answered, for that
whole time, that it has no such order is the order sent again; when it could not answer, nothing
is sent and the result is an ``ORDER_STATE_UNKNOWN`` alert with the order kept in flight.
A send the venue refuses because an order with that client id exists (``OrderExists``) means
an earlier send landed: the order is looked up again, never booked as refused.
Transient failures (``RetryLater``: network, timeout, rate limit, downtime) are retried with
exponential backoff up to ``RetryPolicy.max_attempts``; refused orders up to ``max_rejects``; then
the result is an ``Alert``, never an exception.

``HedgeController`` owns the persisted ``HedgeState``. On start it reconciles: it resolves any
order left in flight (booking it advances the step counter, so the next order has a new client
id), compares the venue's position with its ledger (the venue wins, with an alert) and prepares
the venue: one-way mode, isolated margin, leverage ``HedgeConfig.venue_leverage``, each changed
only when the venue reports something else. ``sync(lp_delta)`` then keeps the position's own
leverage under the cap (``plan_margin``: add isolated margin, or reduce the hedge when the free
balance cannot), plans (``plan_hedge``), writes the order down, sends it, books the fill, and
tops up a partial fill (at most ``max_top_ups`` more orders) while net delta is outside the band.
``flatten`` is the kill switch: a reduce-only market order for the whole hedge; syncing stays off
until ``resume``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from lpbot.errors import ConfigError, Refused, RetryLater
from lpbot.hedge.base import (
    Clock,
    Exchange,
    MarketInfo,
    Order,
    OrderJournal,
    OrderRequest,
    OrderSide,
    OrderType,
    PerpPosition,
)
from lpbot.hedge.plan import (
    AddMargin,
    HedgeAction,
    HedgeConfig,
    HedgeInputs,
    NoAction,
    RetryPolicy,
    band_width,
    client_order_id,
    funding_cost_apr,
    min_band,
    plan_hedge,
    plan_margin,
)
from lpbot.hedge.state import (
    Alert,
    AlertKind,
    HedgePnl,
    HedgeState,
    PendingOrder,
    StateStore,
)

__all__ = [
    "HedgeController",
    "HedgeExecutor",
    "HedgeStatus",
    "SubmitResult",
    "SyncResult",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
HOUR_MS = 3_600_000
_ZERO = Decimal(0)
OPEN_ORDER_POLLS = 3


class _Unavailable(Exception):
    """Internal: retries of a read ran out; carries the alert."""

    def __init__(self, alert: Alert) -> None:
        super().__init__(alert.message)
        self.alert = alert


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """An order (final, possibly partly filled) or an alert. ``may_exist``: with an alert, an
    earlier attempt's outcome is unknown, so the order may exist at the venue."""

    order: Order | None
    alert: Alert | None = None
    may_exist: bool = False


class HedgeExecutor:
    """Sends orders idempotently with bounded retries (module docstring)."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        retry: RetryPolicy,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.exchange = exchange
        self.retry = retry
        self.clock = clock
        self.sleep = sleep

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` retried on ``RetryLater``; raises ``_Unavailable`` when retries run out."""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return fn()
            except RetryLater as exc:
                if attempt == self.retry.max_attempts:
                    log.error("%s: giving up after %d attempts", what, attempt, exc_info=True)
                    raise _Unavailable(
                        Alert(
                            kind=AlertKind.RETRIES_EXHAUSTED,
                            message=f"{what}: {attempt} attempts failed, last: {exc}",
                            at_ms=self.clock.now_ms(),
                        )
                    ) from exc
                delay = self.retry.delay(attempt)
                log.warning("%s failed (%s); retry %d in %.2f s", what, exc, attempt, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def find(self, symbol: str, cid: str) -> tuple[Order | None, bool]:
        """Look the client id ``cid`` up with backoff for up to ``lookup_seconds``: the order,
        settled, and True; or None and True when the venue answered "no such order" throughout
        (the last answer included); or None and False when the venue could not tell."""
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                found = self.exchange.fetch_order(symbol, client_order_id=cid)
                known = True
            except RetryLater as exc:
                log.warning("looking up order %s: %s", cid, exc)
                found, known = None, False
            if found is not None:
                return self.settle(found), True
            delay = self.retry.delay(attempt)
            if waited + delay > self.retry.lookup_seconds:
                return None, known
            log.info("order %s not found yet; looking again in %.2f s", cid, delay)
            self.sleep(delay)
            waited += delay

    def unknown(self, cid: str, why: str) -> Alert:
        return Alert(
            kind=AlertKind.ORDER_STATE_UNKNOWN,
            message=f"order {cid}: {why}; it may exist at the venue, so it is not sent again "
            f"until the venue can say",
            at_ms=self.clock.now_ms(),
            client_order_id=cid,
        )

    def settle(self, order: Order) -> Order:
        """A final order: poll an open one a few times, then cancel what is left of it."""
        symbol, order_id = order.symbol, order.id
        polls = 0
        while not order.status.is_final and polls < OPEN_ORDER_POLLS:
            polls += 1
            self.sleep(self.retry.delay(polls))
            current = self.call(
                f"fetch order {order_id}",
                lambda: self.exchange.fetch_order(symbol, order_id=order_id),
            )
            order = current or order
        if not order.status.is_final:
            try:
                order = self.call(
                    f"cancel order {order_id}",
                    lambda: self.exchange.cancel_order(symbol, order_id),
                )
            except Refused:
                # filled or gone meanwhile: its final state is what the venue now reports
                final = self.call(
                    f"fetch order {order_id}",
                    lambda: self.exchange.fetch_order(symbol, order_id=order_id),
                )
                order = final or order
        if not order.status.is_final:
            # neither found nor cancelled: it may have filled; it stays in flight until the
            # venue can say, never booked as unfilled
            raise _Unavailable(
                self.unknown(
                    order.client_order_id or order_id, "open, and the venue cannot find it"
                )
            )
        return order

    def submit(self, request: OrderRequest, *, may_exist: bool = False) -> SubmitResult:
        """Send ``request`` once (module docstring). ``may_exist``: an earlier send's outcome is
        unknown, so look the order up first."""
        cid = request.client_order_id
        uncertain = may_exist  # an earlier send may have landed
        attempts = rejects = 0
        while True:
            attempts += 1
            try:
                if uncertain:
                    found, known = self.find(request.symbol, cid)
                    if found is not None:
                        log.info("order %s found at the venue; not sending it again", cid)
                        return SubmitResult(found)
                    if not known:
                        alert = self.unknown(cid, "the venue could not be asked")
                        return SubmitResult(None, alert, may_exist=True)
                    uncertain = False  # the venue said, throughout, that it has none
                try:
                    order = self.exchange.create_order(request)
                except RetryLater:  # ``OrderExists`` too: look the order up before anything
                    uncertain = True
                    raise
                return SubmitResult(self.settle(order))
            except _Unavailable as exc:
                return SubmitResult(None, exc.alert, may_exist=True)
            except RetryLater as exc:
                if attempts >= self.retry.max_attempts:
                    log.error("order %s: %d attempts failed", cid, attempts, exc_info=True)
                    return SubmitResult(
                        None,
                        Alert(
                            kind=AlertKind.RETRIES_EXHAUSTED,
                            message=f"order {cid}: {attempts} attempts failed, last: {exc}",
                            at_ms=self.clock.now_ms(),
                            client_order_id=cid,
                        ),
                        may_exist=uncertain,
                    )
                delay = self.retry.delay(attempts)
                log.warning("order %s: %s; retry %d in %.2f s", cid, exc, attempts, delay)
                self.sleep(delay)
            except Refused as exc:
                rejects += 1
                if rejects >= self.retry.max_rejects or attempts >= self.retry.max_attempts:
                    log.error("order %s refused %d times", cid, rejects, exc_info=True)
                    if uncertain:  # the look-up was refused: an earlier send may have landed
                        alert = self.unknown(cid, f"looking it up was refused: {exc}")
                        return SubmitResult(None, alert, may_exist=True)
                    return SubmitResult(
                        None,
                        Alert(
                            kind=AlertKind.REJECTED,
                            message=f"order {cid} refused: {exc}",
                            at_ms=self.clock.now_ms(),
                            client_order_id=cid,
                        ),
                        may_exist=False,
                    )
                delay = self.retry.delay(attempts)
                log.warning("order %s refused (%s); retry in %.2f s", cid, exc, delay)
                self.sleep(delay)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one ``sync`` (or ``flatten``) did: the first decision, the orders sent (final), the
    alerts raised, and the deltas after it (base tokens)."""

    decision: HedgeAction | NoAction
    orders: tuple[Order, ...] = ()
    alerts: tuple[Alert, ...] = ()
    lp_delta: Decimal = _ZERO
    hedge: Decimal = _ZERO
    band: Decimal = _ZERO
    margin_added: Decimal = _ZERO  # isolated margin added to keep the leverage cap
    leverage: Decimal | None = None  # the position's own leverage at the mark, after the sync

    @property
    def net(self) -> Decimal:
        return self.lp_delta + self.hedge


@dataclass(frozen=True, slots=True)
class HedgeStatus:
    """The hedge at a glance. Deltas base tokens; money settle currency; ``funding_apr`` the cost
    per year of the current side at the last 24 h of funding (negative: income);
    ``liquidation_distance`` fraction of the mark (None when flat)."""

    lp_delta: Decimal
    hedge: Decimal
    band: Decimal
    mark_price: Decimal
    funding_rate: Decimal
    funding_apr: Decimal
    isolated_margin: Decimal
    equity: Decimal
    liquidation_price: Decimal | None
    liquidation_distance: Decimal | None
    pnl: HedgePnl
    killed: bool
    pending: PendingOrder | None
    alerts: tuple[Alert, ...] = field(default=())
    leverage: Decimal | None = None  # the position's own: notional / (margin + unrealised PnL)

    @property
    def net(self) -> Decimal:
        return self.lp_delta + self.hedge


class HedgeController:
    """Keeps a perp hedge of one LP position in its band (module docstring)."""

    def __init__(
        self,
        exchange: Exchange,
        config: HedgeConfig,
        store: StateStore,
        *,
        position_id: str,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        journal: OrderJournal | None = None,
    ) -> None:
        self.exchange = exchange
        self.config = config
        self.store = store
        # lpbot run: the store's record of every order, fenced by the instance lock
        self.journal = journal
        self.position_id = position_id
        self.clock = clock
        self.executor = HedgeExecutor(exchange, retry=config.retry, clock=clock, sleep=sleep)
        state = store.load()
        if state is None:
            state = HedgeState(
                position_id=position_id, symbol=config.symbol, created_ms=clock.now_ms()
            )
        elif (state.position_id, state.symbol) != (position_id, config.symbol):
            raise Refused(
                f"the hedge state is for position {state.position_id} on {state.symbol}, "
                f"not {position_id} on {config.symbol}"
            )
        self._state = state
        self._market: MarketInfo | None = None
        self._reconciled = False
        self._setup_refused = False  # the orders are resolved, only the venue's set-up failed

    # ----------------------------------------------------------------------------- state

    @property
    def state(self) -> HedgeState:
        return self._state

    def reload(self) -> None:
        """Read the state again (another process, e.g. ``lpbot hedge flatten``, may have
        changed it): call under the hedge's lock before each use."""
        state = self.store.load()
        if state is None:
            return
        if (state.position_id, state.symbol) != (self.position_id, self.config.symbol):
            raise Refused(
                f"the hedge state is for position {state.position_id} on {state.symbol}, "
                f"not {self.position_id} on {self.config.symbol}"
            )
        self._state = state

    def retarget(self, position_id: str, store: StateStore) -> None:
        """Hedge the position as ``position_id``, its state in ``store`` (the position's NFT
        changed and its hedge moved there: ``HedgeRunner.follow``); reconciled at next use."""
        self.position_id, self.store = position_id, store
        state = store.load()
        self._state = (
            state
            if state is not None
            else self._state.model_copy(update={"position_id": position_id})
        )
        self._reconciled = False

    def _save(self, state: HedgeState) -> None:
        self._state = state
        self.store.save(state)

    def _alert(self, alert: Alert) -> Alert:
        log.error("hedge alert %s: %s", alert.kind.value, alert.message)
        self._save(self._state.with_alerts(alert))
        return alert

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self.executor.call(what, fn)

    @property
    def market(self) -> MarketInfo:
        """The venue's rules, loaded once; the band must be holdable with its minimum order.
        Without an absolute band (``band_abs`` 0), the band is the narrowest the venue can hold
        (``min_band`` at the mark then)."""
        if self._market is None:
            symbol = self.config.symbol
            market = self._call("load market", lambda: self.exchange.load_market(symbol))
            if self.config.band_abs == 0:
                mark = self._call("fetch mark", lambda: self.exchange.fetch_mark_price(symbol))
                band = min_band(market, mark)
                log.info("hedge band: %s %s, the venue's minimum order", band, market.base)
                self.config = self.config.model_copy(update={"band_abs": band})
            if self.config.band_abs < market.min_amount:
                raise ConfigError(
                    f"band_abs {self.config.band_abs} is below the minimum order of "
                    f"{market.min_amount} {market.base} on {self.exchange.name}: the band could "
                    f"not be held"
                )
            self._market = market
        return self._market

    # ----------------------------------------------------------------------------- steps

    def reconcile(self) -> tuple[Alert, ...]:
        """Resolve the order in flight, adopt the venue's position, set leverage (on start)."""
        self._setup_refused = False
        try:
            alerts: list[Alert] = []
            self._resolve_pending()
            position = self._call(
                "fetch position", lambda: self.exchange.fetch_position(self.config.symbol)
            )
            ledger = self._state.ledger
            if position.size != ledger.size:
                alerts.append(
                    self._alert(
                        Alert(
                            kind=AlertKind.RECONCILE_MISMATCH,
                            message=f"venue position {position.size} differs from the ledger's "
                            f"{ledger.size}; adopting the venue's",
                            at_ms=self.clock.now_ms(),
                        )
                    )
                )
                self._save(
                    self._state.model_copy(
                        update={"ledger": ledger.adopt(position.size, position.entry_price)}
                    )
                )
            leverage = self.config.venue_leverage
            changed = self._call(
                "prepare the venue",
                lambda: self.exchange.prepare_isolated(self.config.symbol, leverage),
            )
            for change in changed:
                log.info("%s: %s", self.exchange.name, change)
        except _Unavailable as exc:
            return (self._alert(exc.alert),)
        except Refused as exc:  # e.g. margin mode cannot change with a position open
            self._setup_refused = self._state.pending is None
            alert = Alert(
                kind=AlertKind.REJECTED,
                message=f"{self.exchange.name} refused the set-up (one-way, isolated, "
                f"{self.config.venue_leverage}x): {exc}",
                at_ms=self.clock.now_ms(),
            )
            return (self._alert(alert),)
        self._reconciled = True
        return tuple(alerts)

    def _resolve_pending(self) -> None:
        """Look the order in flight up by client id (``HedgeExecutor.find``); book it if it
        exists, forget it if the venue says throughout that it has none; when the venue cannot
        say, stop here (``_Unavailable``): nothing else is done until it can."""
        pending = self._state.pending
        if pending is None:
            return
        cid = pending.client_order_id
        found, known = self.executor.find(pending.symbol, cid)
        if found is not None:
            self._book(found)
        elif known:
            log.info("order %s never reached the venue", cid)
            self._save(self._state.model_copy(update={"pending": None}))
        else:
            raise _Unavailable(self.executor.unknown(cid, "in flight, and the venue cannot say"))

    def _book(self, order: Order) -> None:
        """Book a final order into the ledger and clear it from flight (one save). The step
        counter moves past the order's step: the next order gets a new client id."""
        if self.journal is not None:
            self.journal.book(order)
        s = self._state
        step = max(s.step, s.pending.step) if s.pending is not None else s.step
        self._save(
            s.model_copy(
                update={"ledger": s.ledger.apply_fill(order), "pending": None, "step": step}
            )
        )

    def _collect_funding(self) -> None:
        """Add the venue's funding settlements not seen yet to the ledger."""
        s = self._state
        since = s.funding_cursor_ms if s.funding_cursor_ms is not None else s.created_ms
        payments = self._call(
            "fetch funding payments",
            lambda: self.exchange.fetch_funding_payments(self.config.symbol, since),
        )
        new = [p for p in payments if p.id not in s.seen_funding_ids]
        if not new:
            return
        cursor = max(p.timestamp_ms for p in payments)
        seen = tuple(p.id for p in payments if p.timestamp_ms == cursor)
        ledger = s.ledger.model_copy(
            update={"funding": s.ledger.funding + sum((p.amount for p in new), _ZERO)}
        )
        self._save(
            s.model_copy(
                update={"ledger": ledger, "funding_cursor_ms": cursor, "seen_funding_ids": seen}
            )
        )

    def _inputs(self, lp_delta: Decimal, top_up: int) -> HedgeInputs:
        symbol = self.config.symbol
        now = self.clock.now_ms()
        position = self._call("fetch position", lambda: self.exchange.fetch_position(symbol))
        market = self.market
        balance = self._call("fetch balance", lambda: self.exchange.fetch_balance(market.settle))
        history = self._call(
            "fetch funding history",
            lambda: self.exchange.fetch_funding_rate_history(
                symbol, now - self.config.funding_lookback_hours * HOUR_MS + 1
            ),
        )
        return HedgeInputs(
            lp_delta=lp_delta,
            position=position,
            market=market,
            mark_price=position.mark_price,
            equity=balance.total,
            funding_rates=tuple(r.rate for r in history),
            position_id=self.position_id,
            step=self._state.step + 1,
            top_up=top_up,
            free_balance=balance.free,
        )

    def _keep_leverage(
        self, step: int, tag: str = "margin"
    ) -> tuple[list[Order], list[Alert], Decimal]:
        """Bring the position's own leverage under the cap (``plan_margin``): add isolated
        margin, or reduce the hedge first when the free balance cannot. Returns the reduce
        orders, the alerts and the margin added."""
        symbol = self.config.symbol
        market = self.market
        orders: list[Order] = []
        alerts: list[Alert] = []
        added = _ZERO
        for attempt in range(2):  # at most: reduce, then add what the reduction freed
            position = self._call("fetch position", lambda: self.exchange.fetch_position(symbol))
            balance = self._call(
                "fetch balance", lambda: self.exchange.fetch_balance(market.settle)
            )
            action = plan_margin(
                position,
                balance.free,
                self.config,
                market.taker_fee,
                market.amount_step,
                allow_reduce=attempt == 0,
            )
            if action is None:
                break
            log.warning("hedge: %s", action.reason)
            if isinstance(action, AddMargin):
                amount = action.amount
                if self.journal is not None:
                    self.journal.check()  # a process that lost the instance lock adds none
                try:
                    self.exchange.add_margin(symbol, amount)
                except (RetryLater, Refused) as exc:
                    # not retried blind: the next sync reads the margin again and decides anew
                    alerts.append(
                        self._alert(
                            Alert(
                                kind=AlertKind.MARGIN_NOT_ADDED,
                                message=f"adding {amount} margin failed: {exc}",
                                at_ms=self.clock.now_ms(),
                            )
                        )
                    )
                    break
                added += amount
                break
            request = OrderRequest(
                symbol=symbol,
                side=OrderSide.of(-position.size),
                amount=action.amount,
                client_order_id=client_order_id(
                    f"{self.position_id}|{tag}", step, action.amount, 0
                ),
                type=OrderType.MARKET,
                reduce_only=True,
            )
            alerts.append(
                self._alert(
                    Alert(
                        kind=AlertKind.HEDGE_PARTIAL,
                        message=action.reason,
                        at_ms=self.clock.now_ms(),
                    )
                )
            )
            order, alert = self._send(request, step, 0)
            if alert is not None:
                alerts.append(alert)
                break
            assert order is not None
            orders.append(order)
        return orders, alerts, added

    def _send(
        self, request: OrderRequest, step: int, top_up: int
    ) -> tuple[Order | None, Alert | None]:
        """Write the order down (first in the journal, which refuses a process that lost the
        instance lock: then nothing is sent), send it, book the outcome."""
        if self.journal is not None:
            self.journal.reserve(request, f"{self.position_id} step {step}.{top_up}")
        self._save(
            self._state.model_copy(
                update={"pending": PendingOrder.of(request, step, top_up, self.clock.now_ms())}
            )
        )
        result = self.executor.submit(request)
        if result.order is not None:
            self._book(result.order)
            return result.order, None
        assert result.alert is not None
        if not result.may_exist:
            self._save(self._state.model_copy(update={"pending": None}))
        return None, self._alert(result.alert)

    def sync(self, lp_delta: Decimal) -> SyncResult:
        """One hedge step for an LP delta of ``lp_delta`` base tokens (module docstring)."""
        alerts: list[Alert] = []
        if not self._reconciled:
            alerts += self.reconcile()
            if not self._reconciled and not self._setup_refused:
                return SyncResult(NoAction("venue unavailable"), alerts=tuple(alerts))
        if self._state.killed or not self._reconciled:
            # no hedging, but a position the flatten could not close, or one open while the
            # venue refuses the set-up (e.g. a lower leverage with a position open), keeps its
            # margin
            reason = (
                "kill switch engaged: resume before hedging again"
                if self._state.killed
                else "the venue refused the set-up: only the margin is kept until it accepts it"
            )
            kept: list[Order] = []
            added = _ZERO
            try:
                self._resolve_pending()
                kept, kept_alerts, added = self._keep_leverage(self._state.step + 1)
                alerts += kept_alerts
                if kept:
                    self._save(self._state.model_copy(update={"step": self._state.step + 1}))
            except _Unavailable as exc:
                alerts.append(self._alert(exc.alert))
            return SyncResult(
                NoAction(reason),
                orders=tuple(kept),
                alerts=tuple(alerts),
                lp_delta=lp_delta,
                hedge=self._state.ledger.size,
                margin_added=added,
            )
        orders: list[Order] = []
        first: HedgeAction | NoAction | None = None
        try:
            self._resolve_pending()
            self._collect_funding()
            step = self._state.step + 1
            kept, kept_alerts, added = self._keep_leverage(step)
            orders += kept
            alerts += kept_alerts
            if kept:
                self._save(self._state.model_copy(update={"step": step}))
                step += 1
            for top_up in range(self.config.max_top_ups + 1):
                inputs = self._inputs(lp_delta, top_up)
                decision = plan_hedge(inputs, self.config)
                first = first or decision
                if isinstance(decision, NoAction):
                    break
                log.info("hedge step %d.%d: %s", step, top_up, "; ".join(decision.reasons))
                order, alert = self._send(decision.request, step, top_up)
                if alert is not None:
                    alerts.append(alert)
                    break
                assert order is not None
                orders.append(order)
                if order.filled == order.amount:
                    break
            if len(orders) > len(kept):
                # a fill below the mark posts a little less margin than the mark needs
                after, after_alerts, added_after = self._keep_leverage(step, "margin-after")
                kept += after
                orders += after
                alerts += after_alerts
                added += added_after
            if orders:
                self._save(self._state.model_copy(update={"step": step}))
            position = self._call(
                "fetch position", lambda: self.exchange.fetch_position(self.config.symbol)
            )
        except _Unavailable as exc:
            alerts.append(self._alert(exc.alert))
            return SyncResult(
                first or NoAction("venue unavailable"),
                tuple(orders),
                tuple(alerts),
                lp_delta,
                self._state.ledger.size,
            )
        hedge_orders = [o for o in orders if o not in kept]
        band = band_width(lp_delta, self.config)
        net = lp_delta + position.size
        if hedge_orders and abs(net) > band and not alerts:
            partial = isinstance(first, HedgeAction) and first.partial
            alerts.append(
                self._alert(
                    Alert(
                        kind=AlertKind.HEDGE_PARTIAL if partial else AlertKind.OUTSIDE_BAND,
                        message=f"net delta {net} still outside the band {band} after "
                        f"{len(hedge_orders)} order(s)",
                        at_ms=self.clock.now_ms(),
                    )
                )
            )
        alerts += self._check_liquidation(position)
        assert first is not None
        return SyncResult(
            first,
            tuple(orders),
            tuple(alerts),
            lp_delta,
            position.size,
            band,
            margin_added=added,
            leverage=position.margin_leverage,
        )

    def _check_liquidation(self, position: PerpPosition) -> list[Alert]:
        distance = _liquidation_distance(position)
        if distance is None or distance >= self.config.min_liquidation_distance:
            return []
        return [
            self._alert(
                Alert(
                    kind=AlertKind.LIQUIDATION_NEAR,
                    message=f"liquidation at {position.liquidation_price} is {distance:.2%} "
                    f"from the mark {position.mark_price}",
                    at_ms=self.clock.now_ms(),
                )
            )
        ]

    def flatten(self) -> SyncResult:
        """The kill switch: stop hedging and close the whole hedge with reduce-only orders."""
        self._save(self._state.model_copy(update={"killed": True}))
        alerts = [
            self._alert(
                Alert(
                    kind=AlertKind.KILL_SWITCH,
                    message="kill switch: flattening the hedge",
                    at_ms=self.clock.now_ms(),
                )
            )
        ]
        orders: list[Order] = []
        symbol = self.config.symbol
        decision: HedgeAction | NoAction = NoAction("already flat")
        try:
            self._resolve_pending()
            step = self._state.step + 1
            for top_up in range(self.config.max_top_ups + 1):
                position = self._call(
                    "fetch position", lambda: self.exchange.fetch_position(symbol)
                )
                if position.size == 0:
                    break
                request = OrderRequest(
                    symbol=symbol,
                    side=OrderSide.of(-position.size),
                    amount=abs(position.size),
                    client_order_id=client_order_id(
                        f"{self.position_id}|flatten", step, _ZERO, top_up
                    ),
                    type=OrderType.MARKET,
                    reduce_only=True,
                )
                if top_up == 0:
                    decision = HedgeAction(
                        request, _ZERO, position.size, position.size, _ZERO, ("kill switch",)
                    )
                order, alert = self._send(request, step, top_up)
                if alert is not None:
                    alerts.append(alert)
                    break
                assert order is not None
                orders.append(order)
            if orders:
                self._save(self._state.model_copy(update={"step": step}))
            position = self._call("fetch position", lambda: self.exchange.fetch_position(symbol))
        except _Unavailable as exc:
            alerts.append(self._alert(exc.alert))
            return SyncResult(
                decision, tuple(orders), tuple(alerts), _ZERO, self._state.ledger.size
            )
        return SyncResult(decision, tuple(orders), tuple(alerts), _ZERO, position.size)

    def resume(self) -> None:
        """Release the kill switch: the next ``sync`` hedges again."""
        self._save(self._state.model_copy(update={"killed": False}))

    def status(self, lp_delta: Decimal) -> HedgeStatus:
        """Read the venue and summarise the hedge (no orders)."""
        symbol = self.config.symbol
        now = self.clock.now_ms()
        try:
            position = self._call("fetch position", lambda: self.exchange.fetch_position(symbol))
            balance = self._call(
                "fetch balance", lambda: self.exchange.fetch_balance(self.market.settle)
            )
            rate = self._call("fetch funding", lambda: self.exchange.fetch_funding_rate(symbol))
            history = self._call(
                "fetch funding history",
                lambda: self.exchange.fetch_funding_rate_history(symbol, now - 24 * HOUR_MS + 1),
            )
        except _Unavailable as exc:
            self._alert(exc.alert)
            raise RetryLater(exc.alert.message) from exc
        side = -1 if position.size < 0 else 1
        return HedgeStatus(
            lp_delta=lp_delta,
            hedge=position.size,
            band=band_width(lp_delta, self.config),
            mark_price=position.mark_price,
            funding_rate=rate.rate,
            funding_apr=funding_cost_apr(side, [r.rate for r in history]),
            isolated_margin=position.isolated_margin,
            equity=balance.total,
            liquidation_price=position.liquidation_price,
            liquidation_distance=_liquidation_distance(position),
            pnl=self._state.ledger.pnl(position.mark_price),
            killed=self._state.killed,
            pending=self._state.pending,
            alerts=self._state.alerts[-5:],
            leverage=position.margin_leverage,
        )


def _liquidation_distance(position: PerpPosition) -> Decimal | None:
    """``|liquidation - mark| / mark``; None when flat or without a liquidation price."""
    if position.size == 0 or position.liquidation_price is None or position.mark_price <= 0:
        return None
    return abs(position.liquidation_price - position.mark_price) / position.mark_price
