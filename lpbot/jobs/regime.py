"""The market regime in the daemon: measured on every monitor tick, persisted, alerted.

``evaluate`` runs ``lpbot.risk.regime.RegimeTracker`` (the code the backtester runs) for one
managed position after its monitor has read the pool, with inputs measured as the backtest
measures them, from what the daemon has:

- the price history: the position's stored snapshots (every NFT of its name) over the last
  ``BASELINE_SECONDS``, and the price now: realised volatility over 5 and 30 minutes against its
  baseline, and the price's distance from its ``TWAP_SECONDS`` geometric mean (the backtest's
  TWAP of its bars);
- the position's 99% VaR over 1, 5 and 30 minutes (``analytics.var.position_var`` on that
  history, as a percent of its value) against the ``[risk]`` VaR limits;
- the perp's funding, open-interest change and liquidations (``hedge.stress.fetch_perp_stress``
  on the configured venue; the paper venue simulates them) and the hedge's distance to its
  liquidation price, when the position is hedged.

The tracker's state is persisted in the append-only audit log (kind ``"risk_regime"``, subject
``regime:<name>``; ``data``: ``{"state": RegimeState.to_dict(), "inputs": {signal: value}}``)
whenever it changes, so that a restart or the standby resumes it (``load_state``). Every level
change raises one ``risk_regime`` alert with its reasons. A pool below the ``[health]`` rule
with ``on_unhealthy = "stressed"`` holds the regime at stressed (``evaluate``).

While stressed, ``act`` carries out ``[risk.stressed] action = "withdraw"`` through
``tasks.plan_withdraw``; the scheduler runs the monitor every ``stress_monitor_seconds`` while
the regime is not normal (``next_interval``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lpbot.errors import LpbotError, Refused
from lpbot.jobs.alerts import Alert
from lpbot.jobs.regime_view import regime_view
from lpbot.risk.actions import LevelActions, RegimeActions
from lpbot.risk.regime import Level, RegimeConfig, RegimeInputs, RegimeState, RegimeTracker
from lpbot.store import repo
from lpbot.store.models import AuditEntry, Position, PositionSnapshot

if TYPE_CHECKING:
    from lpbot.chain.reader import PoolSnapshot
    from lpbot.jobs.tasks import ManagedPosition, PositionState
    from lpbot.risk.health import PoolHealth

log = logging.getLogger(__name__)

KIND = "risk_regime"
BASELINE_SECONDS = 86_400
TWAP_SECONDS = 1_800
VAR_HORIZONS = (60.0, 300.0, 1800.0)


def subject(name: str) -> str:
    return f"regime:{name}"


@dataclass
class RegimeWatch:
    """One position's regime in the daemon: the ``[risk]`` thresholds and actions, and the
    tracker (resumed from the store on first use)."""

    config: RegimeConfig
    actions: RegimeActions
    stress_monitor_seconds: int = 60
    tracker: RegimeTracker | None = None
    saved: dict[str, Any] | None = None  # the state last written (without its updated_at)
    inputs: dict[str, float] | None = None  # the last evaluation's signals
    refused_since: float | None = None  # the stressed spell whose withdraw was refused
    hedge_band: tuple[Decimal, Decimal] | None = None  # the configured (band_abs, band_pct)
    withdrawn_for_stress: bool = False  # ``act`` withdrew it: it waits in the Safe

    @property
    def level(self) -> Level:
        return self.tracker.state.level if self.tracker is not None else Level.NORMAL

    def for_level(self) -> LevelActions:
        return self.actions.for_level(self.level)


def load_state(sessions: sessionmaker[Session], name: str) -> RegimeState | None:
    """The regime state last persisted for position ``name``; None when there is none."""
    with sessions() as s:
        entry = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject == subject(name), AuditEntry.kind == KIND)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        ).first()
    if entry is None or not isinstance(entry.data, dict):
        return None
    try:
        return RegimeState.from_dict(entry.data["state"])
    except (KeyError, ValueError) as exc:
        log.warning("position %s: the stored regime state is unreadable (%s): normal", name, exc)
        return None


def stored_regime(session: Session, name: str | None) -> dict[str, Any] | None:
    """The regime last stored for position ``name`` (None: for any position):
    ``{"regime", "at", "since", "reasons", "inputs"}`` (``at``, ``since`` ISO times); None when
    never evaluated."""
    query = select(AuditEntry).where(AuditEntry.kind == KIND)
    if name is not None:
        query = query.where(AuditEntry.subject == subject(name))
    entry = session.scalars(query.order_by(AuditEntry.id.desc()).limit(1)).first()
    if entry is None:
        return None
    return regime_view(entry.data, entry.at)


def price_history(
    sessions: sessionmaker[Session], name: str, now: int, decimals: tuple[int, int]
) -> tuple[list[float], list[float]]:
    """The position's stored prices (token1 per token0, whole units) over the last
    ``BASELINE_SECONDS`` up to ``now`` (unix seconds), oldest first, one per timestamp."""
    from lpbot.analytics.value import price_from_sqrt_x96

    since = datetime.fromtimestamp(now - BASELINE_SECONDS, UTC)
    with sessions() as s:
        rows = s.execute(
            select(PositionSnapshot.taken_at, PositionSnapshot.sqrt_price_x96)
            .join(Position, Position.id == PositionSnapshot.position_id)
            .where(Position.label == name, PositionSnapshot.taken_at >= since)
            .order_by(PositionSnapshot.taken_at, PositionSnapshot.id)
        ).all()
    by_time: dict[float, float] = {}
    for taken_at, sqrt_price in rows:
        at = taken_at if taken_at.tzinfo else taken_at.replace(tzinfo=UTC)
        by_time[at.timestamp()] = price_from_sqrt_x96(int(sqrt_price), *decimals)
    times = sorted(by_time)
    return times, [by_time[t] for t in times]


def measure(mp: ManagedPosition, snap: PoolSnapshot, state: PositionState) -> RegimeInputs:
    """The regime's inputs for ``mp`` at ``snap`` (module docstring)."""
    import numpy as np

    from lpbot.analytics.types import PriceHistory
    from lpbot.analytics.var import VarEstimate, position_var
    from lpbot.execution.snapshots import pool_snapshot, position_snapshot
    from lpbot.hedge.stress import StressSource, fetch_perp_stress
    from lpbot.risk.regime import measure_inputs

    now = snap.block_timestamp
    times, prices = price_history(mp.sessions, mp.name, now, mp.decimals)
    history = PriceHistory(np.asarray(times, dtype=float), np.asarray(prices, dtype=float))
    price = prices[-1] if prices else None
    twap: float | None = None
    recent = [p for t, p in zip(times, prices, strict=True) if t >= now - TWAP_SECONDS]
    if recent:
        twap = math.exp(sum(math.log(p) for p in recent) / len(recent))
    var: tuple[VarEstimate, ...] = ()
    value = float(state.value_usd)
    if len(times) >= 3 and value > 0:
        quote = 1 - mp.hedge_risky
        assert state.marks is not None
        quote_usd = float(state.marks.usd(mp.symbols[quote]))
        try:
            var = position_var(
                pool_snapshot(snap, *mp.decimals),
                position_snapshot(snap.positions[mp.token_id]),
                history,
                quote=quote,  # type: ignore[arg-type]
                quote_usd=quote_usd,
                horizons=VAR_HORIZONS,
            )
        except ValueError as exc:  # too few prices for a volatility yet
            log.debug("position %s: no VaR yet: %s", mp.name, exc)
    perp = None
    distance: float | None = None
    if mp.hedge is not None:
        symbol = mp.hedge.config.symbol
        try:
            if mp.hedge_runner is not None:
                with mp.hedge_runner.session() as controller:
                    venue = controller.exchange
                    if isinstance(venue, StressSource):  # the paper venue's, as the files hold
                        perp = fetch_perp_stress(venue, symbol, now * 1000)
            elif isinstance(mp.hedge.exchange, StressSource):
                perp = fetch_perp_stress(mp.hedge.exchange, symbol, now * 1000)
            status = (
                mp.hedge_runner.status(state.delta)
                if mp.hedge_runner is not None
                else mp.hedge.status(state.delta)
            )
            if status.liquidation_distance is not None:
                distance = float(status.liquidation_distance * Decimal(100))
        except LpbotError as exc:  # the venue down: the regime goes on with the pool's signals
            log.warning("position %s: the perp's stress signals unavailable: %s", mp.name, exc)
    return measure_inputs(
        history,
        float(now),
        baseline_seconds=float(BASELINE_SECONDS),
        var=var,
        position_usd=value,
        price=price,
        twap=twap,
        perp=perp,
        hedge_liquidation_distance_pct=distance,
    )


def evaluate(
    mp: ManagedPosition,
    snap: PoolSnapshot,
    state: PositionState,
    *,
    health: PoolHealth | None = None,
) -> RegimeState | None:
    """Evaluate ``mp``'s regime after its monitor read ``snap`` (module docstring): the new
    state persisted when it changed, one alert on a level change. A pool below the health rule
    with ``[health] on_unhealthy = "stressed"`` (``health.wants_stress``) holds the regime at
    stressed, its problems among the reasons; once healthy the regime leaves stressed by the
    tracker's own hysteresis. None without ``[risk]``."""
    watch = mp.regime
    if watch is None:
        return None
    if watch.tracker is None:
        stored = load_state(mp.sessions, mp.name)
        watch.tracker = RegimeTracker(watch.config, stored)
        # nothing stored yet: the first evaluation is, normal or not
        watch.saved = None if stored is None else _persisted(stored.to_dict())
    before = watch.tracker.state
    inputs = measure(mp, snap, state)
    signals = inputs.signals()
    now = float(snap.block_timestamp)
    if before.updated_at is not None and now < before.updated_at:
        now = before.updated_at  # a block time before the last evaluation's: a standby's view
    after = watch.tracker.update(inputs, now)
    if health is not None and health.wants_stress:
        line = "pool below the health rule ([health] on_unhealthy = stressed): " + "; ".join(
            health.problems
        )
        since = after.since if after.level is Level.STRESSED else now
        reasons = tuple(r for r in after.reasons if not r.startswith("every signal below"))
        after = RegimeState(Level.STRESSED, since, (*reasons, line), None, None, now)
        watch.tracker.state = after
    watch.inputs = signals
    data = after.to_dict()
    if _persisted(data) != watch.saved:
        with mp.sessions() as s, s.begin():
            repo.append_audit(
                s,
                KIND,
                list(after.reasons),
                subject=subject(mp.name),
                decision=after.level.label,
                data={"state": data, "inputs": signals},
            )
        watch.saved = _persisted(data)
    if after.level != before.level:
        worse = after.level > before.level
        mp.notifier.notify(
            Alert(
                KIND,
                f"{mp.name}: market regime {before.level.label} -> {after.level.label}",
                "; ".join(after.reasons)
                or (
                    f"every signal below its {before.level.label} exit threshold for "
                    f"{watch.config.min_dwell_seconds:.0f} s"
                    if not worse
                    else "no reason recorded"
                ),
            )
        )
    return after


def _persisted(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "updated_at"}


def next_interval(watch: RegimeWatch | None, normal_seconds: int) -> int:
    """The monitor's interval: ``stress_monitor_seconds`` while the regime is not normal."""
    if watch is None or watch.level is Level.NORMAL:
        return normal_seconds
    return watch.stress_monitor_seconds


def act(mp: ManagedPosition, state: RegimeState) -> str | None:
    """What the level asks of the position now (``lpbot.risk.actions``): stressed with
    ``[risk.stressed] action = "withdraw"``: ``tasks.plan_withdraw`` (executed where the
    auto-execute policy or the module allows it, else the first thing the owners are asked;
    the hedge then goes to the new delta, zero). ``"widest"`` is carried out by the rebalance
    check (``policy``). None when nothing is asked."""
    from lpbot.jobs import tasks

    watch = mp.regime
    if watch is None or state.level is not Level.STRESSED or mp.withdrawn:
        return None
    todo = watch.actions.for_level(state.level)
    if todo.liquidity != "withdraw":
        return None
    reason = (
        f"market regime stressed: {'; '.join(state.reasons)} "
        f"([risk.stressed] action = withdraw, hedge = {todo.hedge})"
    )
    try:
        record = tasks.plan_withdraw(mp, reason)
    except Refused as exc:
        # a pre-flight guard says no for now (in a crash most often the spot's distance from
        # the pool's TWAP, the manipulation guard): said once per stressed spell, tried again
        # on every monitor tick until it passes
        if watch.refused_since != state.since:
            watch.refused_since = state.since
            mp.notifier.notify(
                Alert(
                    "risk_action_refused",
                    f"{mp.name}: the stressed withdraw is refused for now; retried every "
                    f"{watch.stress_monitor_seconds} s",
                    str(exc),
                )
            )
        return f"withdraw refused for now: {exc}"
    if record.state.value == "CONFIRMED":
        # re-entry is not automatic: the position waits withdrawn, and the owners are told
        watch.withdrawn_for_stress = True
        mp.notifier.notify(
            Alert(
                "risk_withdrawn",
                f"{mp.name}: withdrawn to the Safe for the stressed market; it waits there",
                "lpbot does not re-enter on its own: when the market is calm again, open it "
                "anew with the Safe's tokens (`lpbot position open`, or [positions.open] "
                "under `lpbot run`), through the EV and pool health gates",
            )
        )
    return f"withdraw {record.id} ({record.state.value}): {reason}"
