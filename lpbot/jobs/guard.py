"""Every job of ``lpbot run`` runs under one ``JobGuard``: what happens on each way a job can end.

- The run's ``job_runs`` row is opened before the body and closed on every exit path: SUCCEEDED,
  FAILED with the error, or FAILED "interrupted" when the process is being stopped under it.
  Rows a killed process left RUNNING are closed as interrupted on the next start
  (``close_interrupted``).
- Any exception of a job, lpbot's or a library's, is recorded on its row and alerted once per
  distinct error (the same job, type and message, digits aside); while it repeats, a reminder
  goes out after 10 minutes, then 20, 40... (at most daily). The job runs again at its next
  time; a success clears its errors.
- The RPC lost (the node refuses or drops connections, times out, or its provider's gateway
  answers 502, 503 or 504): one ``rpc_down`` alert, then
  the jobs wait an exponential backoff (5 s doubling to 5 min) before trying the node again
  (the HTTP client reconnects by itself); the first success after that sends one
  ``rpc_recovered`` alert. This state is kept per chain (``run(..., chain=NAME)``, the alerts
  name it): a chain whose node is down holds back its own jobs only, the other chains' jobs
  run on. A devnet's node that moved (``lpbot devnet up`` found its port taken and started on
  another) is followed through its manifest (``follow``): seen at the first failed request,
  one ``rpc_moved`` alert and no backoff; seen while the node is down, the backoff ends and
  the one ``rpc_recovered`` alert names the new address.
- Stopping (SIGTERM, Ctrl-C): each chain's running job finishes; a job queued behind it on
  its chain's executor does not start (``stopping``).
- The database cannot be written (a write fails, and a probe write fails too): an alert is
  attempted, ``stop`` is called once and ``fatal`` holds the one line ``lpbot run`` exits with
  (non-zero, so a supervisor restarts it once the database is back).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from lpbot.errors import LpbotError, NeedsAttention, Refused
from lpbot.jobs.alerts import Alert, Notifier
from lpbot.store import repo
from lpbot.store.lock import LockLost
from lpbot.store.models import JobRun, JobStatus

log = logging.getLogger(__name__)

REMIND_FIRST = 600.0  # seconds until a still-repeating error is alerted again
REMIND_MAX = 86_400.0
RPC_BACKOFF_FIRST = 5.0
RPC_BACKOFF_MAX = 300.0
GATEWAY_DOWN = (502, 503, 504)  # a provider's gateway answering for a node that is not there


class DatabaseUnwritable(NeedsAttention):
    """The database refuses writes: the daemon stops (a person frees disk, fixes permissions)."""


def rpc_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the node could not be reached or timed out,
    or, behind a provider's gateway, is not there (HTTP 502, 503, 504)."""
    import requests

    from lpbot.chain.rpc import RpcTransportError

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, requests.ConnectionError | requests.Timeout | ConnectionError):
            return True
        if isinstance(e, RpcTransportError) and e.status in GATEWAY_DOWN:
            return True
        if isinstance(e, TimeoutError):
            return True
        e = e.__cause__ or e.__context__
    return False


def error_key(job: str, exc: BaseException) -> str:
    """What makes two errors the same one: the job, the type, the message with digits masked."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{job}|{type(exc).__name__}|{re.sub(r'[0-9]+', '#', text)[:200]}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500]


@dataclass
class _Seen:
    count: int
    remind_at: float
    delay: float


@dataclass
class _Rpc:
    """One chain's node as the jobs see it: down since a lost request, and its backoff."""

    down: bool = False
    retry_at: float = 0.0
    delay: float = RPC_BACKOFF_FIRST
    moved: list[str] = field(default_factory=list)  # where the node went while it was down


def _of_chain(line: str) -> str | None:
    """The chain a ``follow`` line is about (``chain NAME: ...``), or None."""
    m = re.match(r"chain ([^:]+):", line)
    return m.group(1) if m else None


def _node(chain: str | None) -> str:
    return "the node" if chain is None else f"the node of chain {chain}"


@dataclass
class JobGuard:
    """Runs job bodies with their ``job_runs`` row, alerts and backoffs (module docstring)."""

    sessions: sessionmaker[Session]
    notifier: Notifier
    instance: str
    stop: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    fatal: str | None = None
    fatal_error: type[LpbotError] = NeedsAttention  # what ``lpbot run`` raises with ``fatal``
    # ``lpbot run`` is stopping (SIGTERM): the running jobs finish, none starts after
    stopping: bool = False
    # re-point the clients at the RPC URL a devnet's manifest names now; what moved (one line
    # per chain), empty when nothing did (``App.follow_manifests``)
    follow: Callable[[], list[str]] = lambda: []
    _errors: dict[str, _Seen] = field(default_factory=dict)
    # per chain (None: a job that names no chain, as a single-chain caller's)
    _rpc: dict[str | None, _Rpc] = field(default_factory=dict)
    # the chains' jobs run on their own threads: their shared state is changed under it
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _outbox: list[Alert] = field(default_factory=list)

    @property
    def rpc_down(self) -> bool:
        """Whether any chain's node is down."""
        with self._lock:
            return any(r.down for r in self._rpc.values())

    def chain_down(self, chain: str | None) -> bool:
        """Whether chain ``chain``'s node is down (its jobs wait their backoff)."""
        with self._lock:
            state = self._rpc.get(chain)
        return state is not None and state.down

    def _state(self, chain: str | None) -> _Rpc:
        return self._rpc.setdefault(chain, _Rpc())

    def _followed(self, moved: list[str], chain: str | None) -> list[str]:
        """Of the nodes ``follow`` re-pointed, those of ``chain`` (every one when the job names
        none); another chain's node that is down is tried again at its next job."""
        mine = []
        for line in moved:
            of = _of_chain(line)
            if chain is None or of is None or of == chain:
                mine.append(line)
            elif (other := self._rpc.get(of)) is not None and other.down:
                other.moved, other.retry_at = [*other.moved, line], 0.0
        return mine

    def run(self, job: str, body: Callable[[], Any], *, chain: str | None = None) -> Any:
        """Run ``body`` as job ``job`` of chain ``chain``; its result, or None when it failed
        or did not run (``chain``'s node down: the backoff is waited out, nothing recorded;
        the process stopping: a job queued behind a chain's running one does not start)."""
        if self.fatal is not None or self.stopping:
            return None
        with self._lock:
            rpc = self._state(chain)
            if rpc.down:
                moved = self._followed(self.follow(), chain)
                if moved:  # the node is back at another address: try it now
                    rpc.moved, rpc.retry_at = moved, 0.0
            if rpc.down and self.clock() < rpc.retry_at:
                return None  # the node is down: wait the backoff out, record nothing
        try:
            with self.sessions() as s, s.begin():
                run_id = repo.start_job_run(s, job, instance=self.instance).id
        except SQLAlchemyError as exc:
            self.database_failed(exc)
            return None
        status, result = JobStatus.FAILED, None
        error: str | None = "interrupted: the process was stopped"
        try:
            result = body()
            status, error = JobStatus.SUCCEEDED, None
            self._succeeded(job, chain)
        except LockLost as exc:  # another instance took over: record nothing more, stop
            error = _one_line(exc)
            self.lock_lost(exc)
        except Refused as exc:  # a guard or a policy said no: expected, nothing was changed
            log.warning("job %s: refused: %s", job, exc)
            result = f"refused: {exc}"
            status, error = JobStatus.SUCCEEDED, None
            self._succeeded(job, chain)
        except SQLAlchemyError as exc:
            error = _one_line(exc)
            if not self._writable():
                self.database_failed(exc)
                return None
            self._failed(job, exc, chain)
        except Exception as exc:  # a library's error as much as lpbot's: recorded, alerted
            error = _one_line(exc)
            self._failed(job, exc, chain)
        finally:
            self._close(run_id, status, error, result)
        return result

    def _close(self, run_id: int, status: JobStatus, error: str | None, result: Any) -> None:
        if self.fatal is not None and self.fatal_error is DatabaseUnwritable:
            return
        try:
            with self.sessions() as s, s.begin():
                details = {"result": str(result)[:500]} if result is not None else None
                repo.finish_job_run(s, run_id, status, error=error, details=details)
        except SQLAlchemyError as exc:
            self.database_failed(exc)

    def _succeeded(self, job: str, chain: str | None) -> None:
        with self._lock:
            self._succeeded_locked(job, chain)
        self._send()

    def _succeeded_locked(self, job: str, chain: str | None) -> None:
        for key in [k for k in self._errors if k.startswith(f"{job}|")]:
            del self._errors[key]
        rpc = self._state(chain)
        if rpc.down:
            down_for = rpc.delay
            rpc.down, rpc.delay = False, RPC_BACKOFF_FIRST
            where = f"; {'; '.join(rpc.moved)}" if rpc.moved else ""
            rpc.moved = []
            self._outbox.append(
                Alert(
                    "rpc_recovered", f"{_node(chain)} answers again", f"job {job} succeeded{where}"
                )
            )
            log.warning("%s answers again (last backoff %.0f s)", _node(chain), down_for)

    def _failed(self, job: str, exc: Exception, chain: str | None) -> None:
        with self._lock:
            self._failed_locked(job, exc, chain)
        self._send()

    def _send(self) -> None:
        """The alerts decided under the lock, sent outside it (a slow webhook holds back no
        other chain's job)."""
        with self._lock:
            alerts, self._outbox = self._outbox, []
        for alert in alerts:
            self.notifier.notify(alert)

    def _failed_locked(self, job: str, exc: Exception, chain: str | None) -> None:
        if rpc_lost(exc):
            moved = [] if self.chain_down(chain) else self.follow()
            if moved:  # not down: moved; the job runs again at its next time, at the new URL
                log.warning("job %s: a node moved: %s", job, "; ".join(moved))
                self._outbox.append(
                    Alert("rpc_moved", "the node moved; following its manifest", "; ".join(moved))
                )
                if self._followed(moved, chain):
                    return
            self._rpc_failed(job, exc, chain)
            return
        now = self.clock()
        key = error_key(job, exc)
        seen = self._errors.get(key)
        if seen is None:
            log.error("job %s failed: %s", job, exc, exc_info=exc)
            self._errors[key] = _Seen(1, now + REMIND_FIRST, REMIND_FIRST)
            self._outbox.append(Alert("failure", f"job {job} failed", _one_line(exc)))
            return
        seen.count += 1
        log.warning("job %s failed again (%d times): %s", job, seen.count, _one_line(exc))
        if now >= seen.remind_at:
            seen.delay = min(seen.delay * 2, REMIND_MAX)
            seen.remind_at = now + seen.delay
            self._outbox.append(
                Alert(
                    "failure",
                    f"job {job} still fails ({seen.count} times)",
                    _one_line(exc),
                )
            )

    def _rpc_failed(self, job: str, exc: Exception, chain: str | None) -> None:
        now = self.clock()
        rpc = self._state(chain)
        if not rpc.down:
            rpc.down, rpc.delay = True, RPC_BACKOFF_FIRST
            log.error("job %s: %s cannot be reached: %s", job, _node(chain), type(exc).__name__)
            whose = "the jobs" if chain is None else f"chain {chain}'s jobs"
            others = "" if chain is None else "; the other chains' jobs go on"
            self._outbox.append(
                Alert(
                    "rpc_down",
                    f"{_node(chain)} cannot be reached",
                    f"job {job}: {type(exc).__name__}; {whose} retry with a backoff{others}",
                )
            )
        else:
            rpc.delay = min(rpc.delay * 2, RPC_BACKOFF_MAX)
        rpc.retry_at = now + rpc.delay

    def _writable(self) -> bool:
        """A probe write (rolled back): whether the database still takes writes."""
        try:
            with self.sessions() as s:
                s.execute(update(JobRun).where(JobRun.id == -1).values(error=None))
                s.rollback()
        except SQLAlchemyError:
            return False
        return True

    def database_failed(self, exc: BaseException) -> None:
        """The database refused a write: alert (attempted), stop once, keep the one line."""
        if self.fatal is not None:
            return
        reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        text = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
        self.fatal_error = DatabaseUnwritable
        self.fatal = (
            f"the database cannot be written ({text}): lpbot run stops; free the disk or fix "
            "the database, then start it again"
        )
        log.error("%s", self.fatal)
        try:
            self.notifier.notify(Alert("database_unwritable", "lpbot run stops", self.fatal))
        except Exception:  # the alert is an attempt; the stop must happen regardless
            log.exception("the database alert could not be sent")
        self.stop()

    def lock_lost(self, exc: BaseException) -> None:
        """Another instance holds the lock now: alert once and stop; nothing more is recorded."""
        if self.fatal is not None:
            return
        self.fatal_error = LockLost
        self.fatal = f"{exc}: lpbot run stops (another instance acts for this database now)"
        log.error("%s", self.fatal)
        try:
            self.notifier.notify(
                Alert("lock_lost", f"lpbot run {self.instance} stops: instance lock lost", str(exc))
            )
        except Exception:  # the alert is an attempt; the stop must happen regardless
            log.exception("the lost lock's alert could not be sent")
        self.stop()


def close_interrupted(sessions: sessionmaker[Session], instance: str) -> int:
    """Close the job runs a dead process left RUNNING (with the instance lock held, every
    RUNNING row is such); how many."""
    with sessions() as s, s.begin():
        result = s.execute(
            update(JobRun)
            .where(JobRun.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.FAILED,
                finished_at=datetime.now(UTC),
                error=f"interrupted: its process ended without closing it (noticed by {instance})",
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
