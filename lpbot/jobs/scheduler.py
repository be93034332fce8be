"""``lpbot run``: APScheduler runs the jobs on a schedule that survives restarts.

Jobs live in APScheduler's SQLAlchemy job store in lpbot's own database; misfires are coalesced
and one instance of a job runs at a time. One ``lpbot run`` per database: it holds the store's
instance lock (renewed by a job; lost lock -> stop). On start, unfinished rebalances (and opens)
are resumed (checked against the chain first). A configured position still to open has an
``open`` job (process-local) until its NFT is minted; then its own jobs are scheduled.
SIGINT/SIGTERM stop the scheduler after the running job finishes; a rebalance interrupted
harder is resumed on the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from lpbot.errors import Refused
from lpbot.jobs import tasks
from lpbot.jobs.guard import JobGuard, close_interrupted
from lpbot.jobs.runtime import Runtime
from lpbot.store.lock import Lock, acquire_instance_lock

log = logging.getLogger(__name__)

_RUNTIME: Runtime | None = None  # the process's runtime, for the job store's function refs
_SCHEDULER: BlockingScheduler | None = None  # to schedule a position's jobs once it is opened
LOCK_NAME = "lpbot-run"


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
    mp = runtime.positions[name]
    bodies: dict[str, Callable[[], Any]] = {
        "monitor": lambda: tasks.withdrawn_note(mp) or tasks.monitor(mp),
        "rebalance_check": lambda: tasks.rebalance_check(mp),
        "hedge_sync": lambda: tasks.hedge_sync(mp),
    }
    guard = runtime.guard
    rpc_was_down = guard.rpc_down
    result = guard.run(f"{kind}:{name}", bodies[kind])
    if result is None:
        if guard.rpc_down and not rpc_was_down:
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


def _run_open(runtime: Runtime, name: str) -> None:
    """The open job: open the configured position; once its NFT is minted, manage it."""
    from lpbot.jobs.runtime import manage

    po = runtime.opens.get(name)
    if po is None or runtime.guard is None:
        return
    result = runtime.guard.run(f"open:{name}", lambda: tasks.open_position(po))
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


def _schedule_position(
    scheduler: BlockingScheduler, runtime: Runtime, name: str, first: datetime
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
            replace_existing=True,
            next_run_time=first + timedelta(milliseconds=order),
        )


def _instance() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def take_lock(engine: Engine) -> Lock:
    """This database's instance lock, or Refused: one ``lpbot run`` per database."""
    lock = acquire_instance_lock(engine, LOCK_NAME)
    if lock is None:
        raise Refused("another `lpbot run` holds this database's instance lock; not starting")
    return lock


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
    with contextlib.suppress(SchedulerNotRunningError):  # stopped already, or not started
        scheduler.pause()
        # a pass of the scheduler's loop that began before the pause submits its due jobs while
        # holding the job stores' lock: wait it out, later passes see the pause and submit
        # nothing, so no job reaches an executor that is shutting down
        with scheduler._jobstores_lock:
            pass
        scheduler.shutdown(wait=False)


def start(runtime: Runtime, lock: Lock, *, run_for_seconds: float | None = None) -> None:
    """With the lock held: resume unfinished work, schedule the jobs and run until stopped."""
    global _RUNTIME, _SCHEDULER
    _RUNTIME = runtime
    sched = runtime.config.schedule
    stopping = threading.Event()
    scheduler = _Scheduler(
        # the jobs in lpbot's database (they survive restarts); process-local ones in memory
        jobstores={"default": SQLAlchemyJobStore(engine=runtime.engine), "local": MemoryJobStore()},
        # one job at a time: a position's jobs share its chain reader (which caches ticks and
        # hints between reads) and its execution context; run together they raced
        executors={"default": ThreadPoolExecutor(max_workers=1), "lock": ThreadPoolExecutor(1)},
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
        first = datetime.now(UTC)
        for name in runtime.positions:
            # one at a time: a position's jobs share its chain reader and execution context
            _schedule_position(scheduler, runtime, name, first)
        for name in runtime.opens:
            # process-local: a restart finds the open in the store, not in the job store
            scheduler.add_job(
                run_job,
                "interval",
                seconds=sched.rebalance_check_seconds,
                args=["open", name],
                id=f"open:{name}",
                name=f"open {name}",
                jobstore="local",
                replace_existing=True,
                next_run_time=first,
            )

        def refresh_lock() -> None:
            try:
                held = lock.refresh()
            except SQLAlchemyError as exc:
                guard.database_failed(exc)
                return
            if not held:
                _line("lock", "-", "instance lock lost: stopping")
                # from the lock's own executor: do not wait for it to finish this job
                _stop(scheduler)

        scheduler.add_job(
            refresh_lock, "interval", seconds=15, id="lock", jobstore="local", executor="lock"
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
        for executor in list(getattr(scheduler, "_executors", {}).values()):
            with contextlib.suppress(Exception):  # an executor never started
                executor.shutdown(wait=True)
        runtime.close()
        with contextlib.suppress(SQLAlchemyError):  # an unwritable database: the lease expires
            lock.release()
        _RUNTIME = None
        _SCHEDULER = None
    if guard.fatal is not None:
        raise guard.fatal_error(guard.fatal)
