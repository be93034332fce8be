"""The hedge job of ``lpbot run``: one controller per position, built from the ``[hedge]``
configuration, with its state and (on paper) its venue account kept under ``data_dir/hedge``.

``build_hedge_runner`` is called by the runtime for each position the hedge covers; it does not
reach the venue (an unreachable venue is an alert of the first sync, retried at the next, not a
daemon that cannot start). ``HedgeRunner.sync(snapshot)`` is the job body: it marks the paper
venue at the pool price and clock of the snapshot, computes the LP delta (with uncollected fees
unless configured otherwise), syncs, and saves the paper account. Live venues (``binanceusdm``,
``okx``, ``bybit``) take their keys from the environment variables the configuration names, use
the wall clock, and their testnet with ``sandbox = true``.

One hedge, one set of files (``hedge_files``), whoever runs it: ``lpbot run`` and
``lpbot hedge status|sync|flatten`` name them by venue and position id
(``<chain>:<position manager>:<token id>``): ``hedge-<venue>-<chain>-<npm>-<token>.json`` (the
controller's state, with the kill switch) and ``paper-<chain>-<npm>-<token>.json`` (the paper
account). Every use holds the hedge's lock file (``hedge-<venue>-...lock``, an OS file lock
through ``filelock``, released by the OS if the process dies) from reading those files to
writing them back, and re-reads them under it: a flatten from the CLI while the daemon runs is
seen by the daemon's next sync and never overwritten by it. A rebalance takes the hedge to the
NFT it minted (``HedgeRunner.follow``): its files move to the new NFT's names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from filelock import FileLock, Timeout

from lpbot.errors import ConfigError, RetryLater
from lpbot.hedge.base import Clock, Exchange, ManualClock, OrderJournal, SystemClock
from lpbot.hedge.controller import HedgeController, HedgeStatus, SyncResult
from lpbot.hedge.delta import lp_delta, risky_price
from lpbot.hedge.paper import PAPER_MARKETS, PaperAccount, PaperExchange
from lpbot.hedge.plan import HedgeConfig
from lpbot.hedge.state import HedgePnl, JsonStateStore, write_json_atomic

if TYPE_CHECKING:
    from lpbot.chain.reader import PoolSnapshot
    from lpbot.config import HedgeConfig as HedgeSection

__all__ = [
    "HedgeFiles",
    "HedgeRunner",
    "build_hedge_runner",
    "default_setting",
    "delta_includes_fees",
    "hedge_files",
    "hedge_lock",
]

LOCK_TIMEOUT_S = 60.0  # the longest a sync or flatten with its retries is expected to hold it
MONITOR_LOCK_TIMEOUT_S = 2.0  # the monitor does not wait for a sync: it uses the last figures
log = logging.getLogger(__name__)


def default_setting(name: str) -> Any:
    """The default of a ``[hedge]`` setting (``lpbot.config.HedgeConfig``): the one place the
    daemon, the monitor and ``lpbot hedge`` take it from."""
    from lpbot.config import HedgeConfig as HedgeSection

    return HedgeSection.model_fields[name].default


def delta_includes_fees(runner: HedgeRunner | None) -> bool:
    """Whether a position's LP delta counts its uncollected fees: as its hedge does, else the
    configuration's default; the monitor, ``lpbot status`` and the hedge show one figure."""
    if runner is not None:
        return runner.include_fees
    return bool(default_setting("include_uncollected_fees"))


@dataclass(frozen=True, slots=True)
class HedgeFiles:
    """Where one hedge lives (module docstring)."""

    state: Path
    paper: Path
    lock: Path


def hedge_files(home: Path, venue: str, position_id: str) -> HedgeFiles:
    """The files of the hedge of ``position_id`` (``chain:npm:token``) on ``venue``."""
    key = position_id.replace(":", "-")
    return HedgeFiles(
        state=home / f"hedge-{venue}-{key}.json",
        paper=home / f"paper-{key}.json",
        lock=home / f"hedge-{venue}-{key}.lock",
    )


@contextmanager
def hedge_lock(files: HedgeFiles, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the hedge's lock; ``RetryLater`` if another process holds it for ``timeout_s``."""
    files.lock.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(files.lock, timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout:
        raise RetryLater(
            f"the hedge is busy in another process (lock {files.lock} held for {timeout_s} s)"
        ) from None
    try:
        yield
    finally:
        lock.release()


@dataclass
class _Price:
    value: Decimal = Decimal(0)

    def __call__(self) -> Decimal:
        if not self.value > 0:
            raise ConfigError("the paper venue has no pool price yet")
        return self.value


@dataclass
class HedgeRunner:
    """One position's hedge job (module docstring)."""

    controller: HedgeController
    token_id: int
    decimals: tuple[int, int]
    risky: Literal[0, 1]
    include_fees: bool
    files: HedgeFiles
    price: _Price | None = None  # paper: the pool price the venue marks at
    clock: ManualClock | None = None  # paper: the chain's clock
    paper: PaperExchange | None = None
    last_mark: Decimal | None = None  # the venue's mark at the last status read

    @contextmanager
    def session(self, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[HedgeController]:
        """The controller, under the hedge's lock, with its state and paper account as the
        files hold them now; the paper account is written back on the way out."""
        with hedge_lock(self.files, timeout_s):
            self.controller.reload()
            if self.paper is not None and self.files.paper.exists():
                account = PaperAccount.model_validate_json(self.files.paper.read_text())
                self.paper.restore(account)
            try:
                yield self.controller
            finally:
                if self.paper is not None:
                    write_json_atomic(
                        self.files.paper, self.paper.account().model_dump(mode="json")
                    )

    def follow(self, token_id: int, *, from_token: int | None = None) -> bool:
        """The position now is NFT ``token_id`` (a rebalance burned this one and minted it): its
        hedge goes with it. The hedge of ``from_token`` (default: this runner's) moves to the
        new NFT's files: the paper account first (one rename), then the state under the new
        position id, then the old state goes; killed in between, the next ``follow`` (the
        daemon's start) finishes the move. A new NFT that has a hedge already keeps it, and the
        old one stays where it is. True when a hedge moved."""
        old_token = self.token_id if from_token is None else from_token
        base = self.controller.position_id.rpartition(":")[0]
        old_id, new_id = f"{base}:{old_token}", f"{base}:{token_id}"
        old_key, new_key = old_id.replace(":", "-"), new_id.replace(":", "-")

        def renamed(path: Path, key: str) -> Path:
            current = self.controller.position_id.replace(":", "-")
            return path.with_name(path.name.replace(current, key))

        paths = (self.files.state, self.files.paper, self.files.lock)
        old = HedgeFiles(*(renamed(p, old_key) for p in paths))
        new = HedgeFiles(*(renamed(p, new_key) for p in paths))
        moved = False
        if old_id != new_id and old.state.exists():
            with hedge_lock(old), hedge_lock(new):
                state = JsonStateStore(old.state).load()
                if state is not None and not new.state.exists():
                    if self.paper is not None and old.paper.exists() and not new.paper.exists():
                        old.paper.replace(new.paper)
                    JsonStateStore(new.state).save(state.model_copy(update={"position_id": new_id}))
                    old.state.unlink()
                    moved = True
                elif state is not None and JsonStateStore(new.state).load() == state.model_copy(
                    update={"position_id": new_id}
                ):  # killed after the new state was written: the old one is this move's
                    old.state.unlink()
                    moved = True
        if moved:
            log.info("hedge of NFT %d moved to NFT %d", old_token, token_id)
        self.token_id, self.files = token_id, new
        self.controller.retarget(new_id, JsonStateStore(new.state))
        if self.paper is not None:
            account_file = new.paper
            self.paper.on_change = lambda account: write_json_atomic(
                account_file, account.model_dump(mode="json")
            )
        return moved

    def sync(self, snapshot: PoolSnapshot) -> SyncResult:
        d0, d1 = self.decimals
        if self.price is not None and self.clock is not None:
            self.price.value = risky_price(snapshot, decimals0=d0, decimals1=d1, risky=self.risky)
            self.clock.set(max(self.clock.now_ms(), snapshot.block_timestamp * 1000))
        delta = lp_delta(
            snapshot,
            self.token_id,
            decimals0=d0,
            decimals1=d1,
            risky=self.risky,
            include_fees=self.include_fees,
        )
        with self.session() as controller:
            return controller.sync(delta)

    def status(self, lp_delta: Decimal, *, timeout_s: float = LOCK_TIMEOUT_S) -> HedgeStatus:
        """``HedgeController.status`` under the lock, from the state as it is now."""
        with self.session(timeout_s) as controller:
            status = controller.status(lp_delta)
        self.last_mark = status.mark_price
        return status

    def pnl(self, lp_delta: Decimal) -> HedgePnl:
        """The hedge's PnL for the monitor, which must go on while the venue is down or the
        hedge busy: at the venue's mark, else the booked ledger at the last mark read (its
        unrealised part 0 before any), with a warning."""
        try:
            return self.status(lp_delta, timeout_s=MONITOR_LOCK_TIMEOUT_S).pnl
        except (RetryLater, ConfigError) as exc:  # down, busy, or paper before its first price
            ledger = self.controller.state.ledger
            log.warning("hedge PnL from the ledger at the last mark %s: %s", self.last_mark, exc)
            return ledger.pnl(self.last_mark if self.last_mark is not None else ledger.entry_price)


def plan_config(section: HedgeSection) -> HedgeConfig:
    """The controller's configuration from a ``[hedge]`` section (the CLI builds one from its
    flags, whose defaults are the section's): ``band_abs`` 0 is the venue's narrowest band, set
    when its market is first loaded (``HedgeController.market``)."""
    return HedgeConfig(
        symbol=section.symbol,
        band_abs=section.band_abs,
        band_pct=Decimal(repr(section.band_pct)),
        max_leverage=Decimal(repr(section.max_leverage)),
        max_funding_cost_apr=Decimal(repr(section.max_funding_apr_pct)) / 100,
    )


def build_hedge_runner(
    section: HedgeSection,
    *,
    data_dir: Path,
    position_id: str,
    token_id: int,
    decimals: tuple[int, int],
    risky: Literal[0, 1],
    now_ms: int,
    api_urls: dict[str, str] | None = None,
    journal: OrderJournal | None = None,
) -> HedgeRunner:
    """The runner of one position's hedge (module docstring); nothing is sent or read from the
    venue. ``now_ms``: the chain's time; ``api_urls``: a local stand-in in place of the venue's
    hosts (``CcxtConfig.api_urls``); ``journal``: where its orders are recorded (``lpbot run``:
    the store, fenced by the instance lock)."""
    files = hedge_files(data_dir / "hedge", section.exchange, position_id)
    price: _Price | None = None
    manual: ManualClock | None = None
    paper: PaperExchange | None = None
    clock: Clock
    exchange: Exchange
    if section.exchange == "paper":
        if section.symbol not in PAPER_MARKETS:
            known = ", ".join(PAPER_MARKETS)
            raise ConfigError(f"hedge.symbol: no paper market for {section.symbol}; known: {known}")
        price, manual = _Price(), ManualClock(now_ms)
        clock = manual
        spec, book = PAPER_MARKETS[section.symbol]
        paper = PaperExchange(reference_price=price, clock=manual, spec=spec, book=book)
        exchange = paper  # its account is read from ``files.paper`` at each use
        # and written as soon as it trades: like a real venue, it never forgets a fill because
        # the process that sent the order was killed before the sync ended
        account_file = files.paper
        paper.on_change = lambda account: write_json_atomic(
            account_file, account.model_dump(mode="json")
        )
    else:
        from lpbot.hedge.ccxt_exchange import CcxtConfig, CcxtExchange

        assert section.api_key_env is not None and section.api_secret_env is not None
        clock = SystemClock()
        exchange = CcxtExchange(
            CcxtConfig(
                exchange_id=section.exchange,
                key_env=section.api_key_env,
                secret_env=section.api_secret_env,
                password_env=section.api_password_env,
                sandbox=section.sandbox,
                api_urls=api_urls,
            )
        )
    controller = HedgeController(
        exchange,
        plan_config(section),
        JsonStateStore(files.state),
        position_id=position_id,
        clock=clock,
        journal=journal,
    )
    return HedgeRunner(
        controller,
        token_id,
        decimals,
        risky,
        section.include_uncollected_fees,
        files,
        price,
        manual,
        paper,
    )
