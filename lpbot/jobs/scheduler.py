"""``lpbot run``: APScheduler runs the jobs on a schedule that survives restarts.

Jobs live in APScheduler's SQLAlchemy job store in lpbot's own database; misfires are coalesced
and one instance of a job runs at a time. One ``lpbot run`` per database: it holds the store's
instance lock (renewed by a job; lost lock -> stop). On start, unfinished rebalances (and opens)
are resumed (checked against the chain first). A configured position still to open has an
``open`` job (process-local) until its NFT is minted; then its own jobs are scheduled.
SIGINT/SIGTERM stop the scheduler after the running job finishes; a rebalance interrupted
harder is resumed on the next start.

Several chains: each chain's jobs run on its own executor (``chain:NAME``, one at a time), so a
slow or hanging node delays its own chain only; the guard keeps each chain's node state
apart. A chain whose node does not answer at start, while another does, is deferred
(``defer_chain``): alerted and audited once, tried again with a backoff by its process-local
``connect:NAME`` job, and, once it answers, resumed and scheduled as a start would
(``reconnect``); a configuration error found then is alerted and not tried again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import STATE_RUNNING, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from lpbot.errors import NeedsAttention, Refused, RetryLater
from lpbot.jobs import tasks
from lpbot.jobs.alerts import Alert
from lpbot.jobs.guard import (
    RPC_BACKOFF_FIRST,
    RPC_BACKOFF_MAX,
    JobGuard,
    close_interrupted,
    error_key,
    rpc_lost,
)
from lpbot.jobs.runtime import Runtime
from lpbot.store import instances
from lpbot.store.lock import (
    LOCK_NAME,
    Lock,
    LockLost,
    acquire_instance_lock,
    end_holder_session,
    lease_seconds,
    lock_holder,
    lock_interval,
)

log = logging.getLogger(__name__)

_RUNTIME: Runtime | None = None  # the process's runtime, for the job store's function refs
_SCHEDULER: BlockingScheduler | None = None  # to schedule a position's jobs once it is opened


def _line(job: str, position: str, message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} {job:<16} {position:<16} {message}", flush=True)


def run_job(kind: str, name: str) -> None:
    """A job as the job store records it: ``kind`` on position ``name``."""
    runtime = _RUNTIME
    if runtime is None or runtime.guard is None:
        raise RuntimeError("lpbot run is not started")
    if kind == "open":
        _run_open(runtime, name)
        return
    mp = runtime.positions.get(name)
    if mp is None:  # a job an earlier run stored, of a chain deferred now (``run_connect``)
        return
    bodies: dict[str, Callable[[], Any]] = {
        "monitor": lambda: tasks.withdrawn_note(mp) or tasks.monitor(mp),
        "rebalance_check": lambda: tasks.rebalance_check(mp),
        "hedge_sync": lambda: tasks.hedge_sync(mp),
    }
    guard = runtime.guard
    chain = runtime.config.position(name).chain
    rpc_was_down = guard.chain_down(chain)
    result = guard.run(f"{kind}:{name}", bodies[kind], chain=chain)
    if kind == "monitor" and _SCHEDULER is not None:
        monitor_interval(_SCHEDULER, runtime, name)
    if result is None:
        if guard.chain_down(chain) and not rpc_was_down:
            _line(kind, name, "the node cannot be reached: retrying with a backoff")
        return
    if isinstance(result, tasks.PositionState):
        fees = (
            mp.prices(result.marks).usd((result.fees0, result.fees1), mp.decimals)
            if result.marks is not None
            else Decimal(0)
        )
        message = (
            f"tick {result.tick} {'in range' if result.in_range else 'OUT OF RANGE'} "
            f"value ${result.value_usd:,.2f} fees ${fees:,.2f} "
            f"delta {result.delta:.4f}"
        )
    else:
        message = str(result)
    _line(kind, name, message)


def monitor_interval(scheduler: BaseScheduler, runtime: Runtime, name: str) -> int | None:
    """Re-schedule position ``name``'s monitor to the interval its market regime asks for:
    ``[risk] stress_monitor_seconds`` while not normal, ``[schedule] monitor_seconds`` when
    normal (``lpbot.jobs.regime.next_interval``). Returns the new interval when it changed."""
    from lpbot.jobs.regime import next_interval

    mp = runtime.positions.get(name)
    normal = runtime.config.schedule.monitor_seconds
    want = next_interval(mp.regime if mp is not None else None, normal)
    job = scheduler.get_job(f"monitor:{name}")
    if job is None or not isinstance(job.trigger, IntervalTrigger):
        return None
    if int(job.trigger.interval.total_seconds()) == want:
        return None
    scheduler.reschedule_job(job.id, trigger="interval", seconds=want)
    level = mp.regime.level.label if mp is not None and mp.regime is not None else "normal"
    _line("monitor", name, f"now every {want} s (market regime {level})")
    return want


def _run_open(runtime: Runtime, name: str) -> None:
    """The open job: open the configured position; once its NFT is minted, manage it."""
    from lpbot.jobs.runtime import manage

    po = runtime.opens.get(name)
    if po is None or runtime.guard is None:
        return
    chain = runtime.config.position(name).chain
    result = runtime.guard.run(f"open:{name}", lambda: tasks.open_position(po), chain=chain)
    if result is not None:
        _line("open", name, str(result))
    if po.token_id is None:
        return
    del runtime.opens[name]
    if manage(runtime, name, po.ctx) is None:
        return
    if _SCHEDULER is not None:
        with contextlib.suppress(Exception):  # the job is removed at most once
            _SCHEDULER.remove_job(f"open:{name}", jobstore="local")
        _schedule_position(_SCHEDULER, runtime, name, datetime.now(UTC))


@dataclass
class _Waiting:
    """A deferred chain's connect job: its backoff, and whether its failure was alerted."""

    delay: float = RPC_BACKOFF_FIRST
    alerted: set[str] = field(default_factory=set)
    cleared: bool = False  # its positions' jobs an earlier run stored are removed


_WAITING: dict[str, _Waiting] = {}


def _chain_audit(runtime: Runtime, chain: str, kind: str, decision: str, lines: list[str]) -> None:
    from lpbot.store import repo

    with runtime.sessions() as s, s.begin():
        repo.append_audit(
            s, kind, lines, subject=f"chain:{chain}", decision=decision, data={"chain": chain}
        )


def defer_chain(scheduler: BaseScheduler, runtime: Runtime, chain: str, reason: str) -> None:
    """Chain ``chain`` did not answer at start: alert (and audit) once, and try it again with
    a backoff (its ``connect:NAME`` job, process-local) while the other chains run."""
    names = [p.name for p in runtime.config.positions if p.enabled and p.chain == chain]
    title = f"chain {chain} does not answer: its positions wait, the other chains run"
    body = f"{reason}; positions {', '.join(names)}; tried again with a backoff"
    _chain_audit(runtime, chain, "chain_deferred", "deferred", [title, reason])
    runtime.notifier.notify(Alert("chain_deferred", title, body))
    _line("connect", chain, f"deferred: {reason}")
    _WAITING[chain] = _Waiting()
    _connect_later(scheduler, runtime, chain, RPC_BACKOFF_FIRST)


def _connect_later(scheduler: BaseScheduler, runtime: Runtime, chain: str, delay: float) -> None:
    scheduler.add_job(
        run_connect,
        "date",
        run_date=datetime.now(UTC) + timedelta(seconds=delay),
        args=[chain],
        id=f"connect:{chain}",
        name=f"connect {chain}",
        jobstore="local",
        executor=f"chain:{chain}",
        replace_existing=True,
    )


def run_connect(chain: str) -> None:
    """The connect job of deferred chain ``chain`` (``reconnect``)."""
    if _RUNTIME is not None and _SCHEDULER is not None:
        reconnect(_SCHEDULER, _RUNTIME, chain)


def reconnect(scheduler: BaseScheduler, runtime: Runtime, chain: str) -> str:
    """Try deferred chain ``chain`` again: when it answers, resume its unfinished work
    against it, build and schedule its positions ("connected"); while it does not, try again
    after a backoff (5 s doubling to 5 min, "waiting"); a configuration error (a node serving
    another chain id, a pool that is not the chain's...) is alerted as needing attention and
    not tried again ("failed"): the other chains run on."""
    from lpbot.jobs.runtime import connect_chain

    guard = runtime.guard
    if chain not in runtime.deferred or (
        guard is not None and (guard.fatal is not None or guard.stopping)
    ):
        return "stopped"
    waiting = _WAITING.setdefault(chain, _Waiting())
    if not waiting.cleared:  # until it answers its positions have no jobs (status says so)
        waiting.cleared = True
        for pos in runtime.config.positions:
            for kind in ("hedge_sync", "monitor", "rebalance_check"):
                if pos.chain == chain:
                    with contextlib.suppress(JobLookupError):
                        scheduler.remove_job(f"{kind}:{pos.name}")
    try:
        connect_chain(runtime, chain)
    except LockLost as exc:
        if guard is not None:
            guard.lock_lost(exc)
        return "stopped"
    except SQLAlchemyError as exc:
        if guard is not None:
            guard.database_failed(exc)
        return "stopped"
    except NeedsAttention as exc:
        return _chain_failed(scheduler, runtime, chain, exc)
    except Exception as exc:  # not answering (yet), or a library's error: tried again later
        if not isinstance(exc, RetryLater) and not rpc_lost(exc):
            key = error_key(f"connect:{chain}", exc)
            if key not in waiting.alerted:
                waiting.alerted.add(key)
                log.error("chain %s: connecting failed: %s", chain, exc, exc_info=exc)
                runtime.notifier.notify(
                    Alert("failure", f"chain {chain}: connecting failed", f"{exc}"[:500])
                )
        waiting.delay = min(waiting.delay * 2, RPC_BACKOFF_MAX)
        log.warning("chain %s still does not answer; next try in %.0f s", chain, waiting.delay)
        _connect_later(scheduler, runtime, chain, waiting.delay)
        return "waiting"
    _WAITING.pop(chain, None)
    for name, record in runtime.resumed:
        if runtime.config.position(name).chain == chain:
            _line("resume", name, f"{record.kind} {record.id}: {record.state.value}")
    first = datetime.now(UTC)
    names = [n for n in list(runtime.positions) if runtime.config.position(n).chain == chain]
    for name in names:
        _schedule_position(scheduler, runtime, name, first)
    opens = [n for n in list(runtime.opens) if runtime.config.position(n).chain == chain]
    for name in opens:
        _schedule_open(scheduler, runtime, name, first)
    title = f"chain {chain} answers: its positions are managed"
    body = f"{len(names)} position(s) scheduled" + (f", {len(opens)} to open" if opens else "")
    _chain_audit(runtime, chain, "chain_connected", "connected", [title, body])
    runtime.notifier.notify(Alert("chain_connected", title, body))
    _line("connect", chain, f"connected: {body}")
    return "connected"


def _chain_failed(
    scheduler: BaseScheduler, runtime: Runtime, chain: str, exc: NeedsAttention
) -> str:
    """A configuration error found when deferred chain ``chain`` answered: alerted, not
    tried again; its positions stay unmanaged until a person fixes it and restarts."""
    for name in [p.name for p in runtime.config.positions if p.chain == chain]:
        runtime.positions.pop(name, None)
        runtime.opens.pop(name, None)
    runtime.deferred.pop(chain, None)
    _WAITING.pop(chain, None)
    with contextlib.suppress(JobLookupError):  # not tried again
        scheduler.remove_job(f"connect:{chain}", jobstore="local")
    title = f"chain {chain} needs attention: its positions are not managed"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    body = f"{text}; fix the configuration and restart `lpbot run` (the other chains run on)"
    log.error("chain %s: %s", chain, text)
    _chain_audit(runtime, chain, "chain_failed", "needs_attention", [title, text])
    runtime.notifier.notify(Alert("chain_failed", title, body))
    _line("connect", chain, f"needs attention, not tried again: {text}")
    return "failed"


def _schedule_open(scheduler: BaseScheduler, runtime: Runtime, name: str, first: datetime) -> None:
    """Position ``name``'s open job: process-local (a restart finds the open in the store, not
    in the job store), until its NFT is minted."""
    scheduler.add_job(
        run_job,
        "interval",
        seconds=runtime.config.schedule.rebalance_check_seconds,
        args=["open", name],
        id=f"open:{name}",
        name=f"open {name}",
        jobstore="local",
        executor=executor_of(runtime, name),
        replace_existing=True,
        next_run_time=first,
    )


def _schedule_position(
    scheduler: BaseScheduler, runtime: Runtime, name: str, first: datetime
) -> None:
    """Position ``name``'s jobs: the hedge first (the monitor's ledger reads the hedge, whose
    paper venue is priced by its sync), then the monitor, then the rebalance check."""
    sched = runtime.config.schedule
    for order, (kind, seconds) in enumerate(
        (
            ("hedge_sync", sched.hedge_sync_seconds),
            ("monitor", sched.monitor_seconds),
            ("rebalance_check", sched.rebalance_check_seconds),
        )
    ):
        if kind == "hedge_sync" and runtime.positions[name].hedge is None:
            continue
        scheduler.add_job(
            run_job,
            "interval",
            seconds=seconds,
            args=[kind, name],
            id=f"{kind}:{name}",
            name=f"{kind} {name}",
            executor=executor_of(runtime, name),
            replace_existing=True,
            next_run_time=first + timedelta(milliseconds=order),
        )


def executor_of(runtime: Runtime, name: str) -> str:
    """The executor of position ``name``'s jobs: its chain's (``chain:NAME``)."""
    return f"chain:{runtime.config.position(name).chain}"


def chain_executors(runtime: Runtime) -> dict[str, ThreadPoolExecutor]:
    """One executor per chain with an enabled position, one worker each: a chain's jobs share
    its reader (which caches ticks and hints between reads), its nonce manager and its dry-run
    fork, so they run one at a time; another chain's jobs run beside them, so a slow or hanging
    node delays its own chain only."""
    chains = sorted({p.chain for p in runtime.config.positions if p.enabled})
    return {f"chain:{c}": ThreadPoolExecutor(max_workers=1) for c in chains}


def _instance() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def take_lock(engine: Engine, *, takeover_seconds: float = 30.0) -> Lock:
    """This database's instance lock, or Refused: one ``lpbot run`` per database. On SQLite
    its lease lasts two thirds of ``takeover_seconds`` (renewed every third)."""
    lock = acquire_instance_lock(engine, LOCK_NAME, lease_seconds=lease_seconds(takeover_seconds))
    if lock is None:
        holder = lock_holder(engine, LOCK_NAME)
        by = f" ({holder})" if holder else ""
        raise Refused(
            f"another `lpbot run`{by} holds this database's instance lock; not starting "
            "(`lpbot run --standby` waits for it and takes over when it ends)"
        )
    return lock


@dataclass(frozen=True, slots=True)
class Takeover:
    """What a standby saw before it took the lock: the active it waited on, how long."""

    previous: str | None  # the last holder seen (pid@hostname), None if it never saw one
    waited_seconds: float
    started_at: datetime  # when it began to stand by
    locked_at: datetime  # when it took the lock


def wait_for_lock(
    engine: Engine,
    *,
    takeover_seconds: float,
    say: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Lock, Takeover]:
    """Stand by: try to take the instance lock every ``lock_interval``, recording this
    instance's heartbeat as a standby meanwhile, until it is free; then hold it. A database
    that does not answer is waited out too (the active may be just as cut off)."""
    say = say or (lambda message: _line("standby", "-", message))
    me = _instance()
    started = datetime.now(UTC)
    try:
        return _stand_by(engine, me, started, takeover_seconds, say, sleep)
    except BaseException:  # Ctrl-C while standing by: no longer listed as a standby
        with contextlib.suppress(SQLAlchemyError):
            instances.forget(engine, me)
        raise


def _stand_by(
    engine: Engine,
    me: str,
    started: datetime,
    takeover_seconds: float,
    say: Callable[[str], None],
    sleep: Callable[[float], None],
) -> tuple[Lock, Takeover]:
    clock = time.monotonic()
    interval = lock_interval(takeover_seconds)
    seen: str | None = None  # the last holder seen
    said: object = object()  # the holder last announced (none announced yet)
    down = False
    beat: tuple[str, datetime] | None = None  # the holder's last heartbeat seen
    beat_seen = time.monotonic()  # when it last changed (this host's clock: no skew)
    while True:
        try:
            lock = acquire_instance_lock(
                engine, LOCK_NAME, lease_seconds=lease_seconds(takeover_seconds)
            )
            if lock is not None:
                took = Takeover(seen, time.monotonic() - clock, started, datetime.now(UTC))
                return lock, took
            holder = lock_holder(engine, LOCK_NAME)
            instances.heartbeat(engine, me, "standby", started_at=started)
            last = instances.heartbeat_of(engine, holder) if holder is not None else None
            if holder is not None and last is not None:
                if beat != (holder, last):
                    beat, beat_seen = (holder, last), time.monotonic()
                elif time.monotonic() - beat_seen >= takeover_seconds and end_holder_session(
                    engine, LOCK_NAME, owner=holder
                ):
                    # alive to the server (its connection open) but not renewing: paused or
                    # hung; its session ended, so its lock is free and its fence refuses
                    say(
                        f"the active instance {holder} has not renewed its heartbeat for "
                        f"{time.monotonic() - beat_seen:.0f} s: its database session ended"
                    )
                    seen, beat = holder, None
                    sleep(min(interval, 0.5))  # the server frees it as its backend exits
                    continue  # take the lock now
        except SQLAlchemyError as exc:
            if not down:
                say(f"the database does not answer ({type(exc).__name__}); still standing by")
                log.warning("standby: the database does not answer", exc_info=True)
            down = True
            sleep(interval)
            continue
        down = False
        if holder is not None:
            seen = holder
        if holder != said:
            active = holder or "none (the lock is being released)"
            say(
                f"standing by ({me}): active instance {active}; takeover within "
                f"{takeover_seconds:g} s of its end"
            )
            said = holder
        sleep(interval)


@contextlib.contextmanager
def active_heartbeat(
    engine: Engine, takeover_seconds: float, *, started_at: datetime | None = None
) -> Iterator[None]:
    """While the lock is held: this instance's row (role active) renewed every
    ``lock_interval`` by a thread of its own, from the lock's taking (the start-up's resumes
    too) to its release; the row goes at the end. A standby ends the lock's session of an
    active whose heartbeat stops (a paused process, a suspended VM: ``_stand_by``)."""
    me, since = _instance(), datetime.now(UTC)
    done = threading.Event()

    def beat() -> None:
        while True:
            try:
                instances.heartbeat(
                    engine, me, "active", started_at=started_at or since, active_since=since
                )
            except SQLAlchemyError:
                log.warning("could not record this instance's heartbeat", exc_info=True)
            if done.wait(lock_interval(takeover_seconds)):
                return

    thread = threading.Thread(target=beat, name="lpbot-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)
        with contextlib.suppress(SQLAlchemyError):  # else its heartbeat goes stale by itself
            instances.forget(engine, me)


def announce_takeover(runtime: Runtime, takeover: Takeover) -> None:
    """The alert (and audit entry) that this instance is now the active one, naming the one
    it took over from."""
    from lpbot.store import repo

    me = _instance()
    title = f"lpbot run: {me} is now active (took over from {takeover.previous})"
    body = (
        f"standby since {takeover.started_at:%Y-%m-%d %H:%M:%S} UTC, waited "
        f"{takeover.waited_seconds:.1f} s; unfinished rebalances resumed: {len(runtime.resumed)}"
    )
    with runtime.sessions() as s, s.begin():
        repo.append_audit(
            s,
            "instance_takeover",
            [title, body],
            subject=f"instance:{me}",
            decision="takeover",
            data={
                "active": me,
                "previous": takeover.previous,
                "waited_seconds": takeover.waited_seconds,
                "locked_at": takeover.locked_at.isoformat(),
            },
        )
    runtime.notifier.notify(Alert("takeover", title, body))
    _line("takeover", "-", f"{title}; {body}")


class _Scheduler(BlockingScheduler):  # type: ignore[misc]
    """APScheduler's blocking scheduler, whose loop makes no pass once it is paused or stopped:
    its loop wakes from shutdown and would otherwise submit due jobs to stopped executors."""

    guard: JobGuard | None = None

    def _process_jobs(self) -> float | None:
        if self.state != STATE_RUNNING:
            return None
        try:
            return super()._process_jobs()  # type: ignore[no-any-return]
        except SQLAlchemyError as exc:  # the job store's own write (its next run time)
            if self.guard is None:
                raise
            self.guard.database_failed(exc)
            return None


def _stop(scheduler: BlockingScheduler) -> None:
    """Stop the scheduler's loop. Paused first, so the loop submits nothing more to the executor
    being shut down (APScheduler would log an error for it). The running job is not waited for
    here but by ``start`` (its ``finally``), outside the scheduler's locks: APScheduler's
    ``shutdown(wait=True)`` waits for it while holding the job stores' lock, which a job that
    adds or removes jobs as it finishes (an open scheduling its new position's jobs) waits for,
    so the two would wait for each other forever."""
    guard = getattr(scheduler, "guard", None)
    if guard is not None:  # a job queued behind a chain's running one starts no more
        guard.stopping = True
    with contextlib.suppress(SchedulerNotRunningError):  # stopped already, or not started
        scheduler.pause()
        # a pass of the scheduler's loop that began before the pause submits its due jobs while
        # holding the job stores' lock: wait it out, later passes see the pause and submit
        # nothing, so no job reaches an executor that is shutting down
        with scheduler._jobstores_lock:
            pass
        scheduler.shutdown(wait=False)


def shutdown_executors(scheduler: BaseScheduler) -> None:
    """Wait for every chain's running job to finish (the scheduler stopped)."""
    for executor in list(getattr(scheduler, "_executors", {}).values()):
        with contextlib.suppress(Exception):  # an executor never started
            executor.shutdown(wait=True)


def start(
    runtime: Runtime,
    lock: Lock,
    *,
    run_for_seconds: float | None = None,
    takeover: Takeover | None = None,
) -> None:
    """With the lock held: resume unfinished work, schedule the jobs and run until stopped.
    ``takeover``: this instance stood by and took the lock over (alerted). A lock that cannot
    be renewed (lost, or its database connection dropped) stops the jobs and raises
    ``LockLost``: ``lpbot run`` exits non-zero rather than act beside another instance."""
    global _RUNTIME, _SCHEDULER
    _RUNTIME = runtime
    _WAITING.clear()
    sched = runtime.config.schedule
    stopping = threading.Event()
    scheduler = _Scheduler(
        # the jobs in lpbot's database (they survive restarts); process-local ones in memory
        jobstores={"default": SQLAlchemyJobStore(engine=runtime.engine), "local": MemoryJobStore()},
        # one job at a time per chain (``chain_executors``); "default" runs a job stored by an
        # older version until the start replaces it
        executors={
            "default": ThreadPoolExecutor(max_workers=1),
            "lock": ThreadPoolExecutor(1),
            **chain_executors(runtime),
        },
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone=sched.timezone,
    )
    _SCHEDULER = scheduler

    def stop_soon() -> None:
        # from the thread that noticed (a job's, the scheduler's): another thread stops it
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=_stop, args=(scheduler,)).start()

    follow = getattr(runtime.app, "follow_manifests", None)  # a devnet that changed its port
    guard = JobGuard(
        runtime.sessions,
        runtime.notifier,
        _instance(),
        stop=stop_soon,
        follow=follow if follow is not None else list,
    )
    runtime.guard = scheduler.guard = guard
    try:
        closed = close_interrupted(runtime.sessions, _instance())
        if closed:
            _line("start", "-", f"{closed} job run(s) of a stopped process marked interrupted")
        for name, record in runtime.resumed:  # resumed against the chain by build_runtime
            _line("resume", name, f"{record.kind} {record.id}: {record.state.value}")
        if takeover is not None and takeover.previous is not None:
            announce_takeover(runtime, takeover)
        first = datetime.now(UTC)
        for name in runtime.positions:
            # one at a time: a position's jobs share its chain reader and execution context
            _schedule_position(scheduler, runtime, name, first)
        for name in runtime.opens:
            _schedule_open(scheduler, runtime, name, first)
        for chain, reason in runtime.deferred.items():
            defer_chain(scheduler, runtime, chain, reason)

        def refresh_lock() -> None:
            try:
                held = lock.refresh()
            except SQLAlchemyError as exc:
                guard.database_failed(exc)
                return
            if not held:
                _line("lock", "-", "instance lock lost: stopping")
                # stops the scheduler from another thread (this job's executor is not waited
                # for); the running job records nothing more (the fence), and run exits 2
                guard.lock_lost(
                    LockLost(
                        f"instance lock {lock.name!r} could not be renewed (lost, or its "
                        "database connection dropped)"
                    )
                )
                return

        scheduler.add_job(
            refresh_lock,
            "interval",
            seconds=lock_interval(sched.standby_takeover_seconds),
            id="lock",
            jobstore="local",
            executor="lock",
        )
        if run_for_seconds is not None:
            timer = threading.Timer(run_for_seconds, lambda: _stop(scheduler))
            timer.daemon = True
            timer.start()

        def stop(signum: int, _frame: object) -> None:
            _line("signal", "-", f"{signal.Signals(signum).name}: finishing the current job")
            # not inline: the handler runs on the scheduler's own thread, possibly in the middle
            # of a pass that submits jobs; a stopping thread waits that pass out first
            threading.Thread(target=_stop, args=(scheduler,), daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        opening = f", {len(runtime.opens)} to open" if runtime.opens else ""
        _line("start", "-", f"{len(runtime.positions)} position(s){opening}; jobs scheduled")
        scheduler.start()
    except SQLAlchemyError as exc:  # writing the jobs or closing old runs: no database
        guard.database_failed(exc)
    finally:
        # the scheduler's loop ends as soon as it is told to stop, the running job may not have:
        # the lock is held until it has finished (released under it, the job would record its
        # step for nobody, and the fence refuses exactly that)
        shutdown_executors(scheduler)
        runtime.close()
        with contextlib.suppress(SQLAlchemyError):  # an unwritable database: the lease expires
            lock.release()
        _RUNTIME = None
        _SCHEDULER = None
    if guard.fatal is not None:
        raise guard.fatal_error(guard.fatal)
