"""From the application context (``lpbot.app``) to the live objects the daemon's jobs use.

``build_runtime`` refuses to start, saying why, when the configuration and the chain or the
store disagree: a ``pool`` that is not the NFT's pool, a ``token_id`` other than the one the
database manages (``lpbot position adopt`` switches), a ``[positions.open]`` capital in a token
that is not the pool's. A position with ``[positions.open]`` and no NFT yet becomes a
``PendingOpen``: its job opens it (``tasks.open_position``) and from then on it is managed
like any other; an open confirmed before a crash is found in the store and managed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from lpbot.chain.forksim import ForkSimulator
from lpbot.config import Config, HealthConfig, PositionConfig
from lpbot.devnet.manifest import Manifest
from lpbot.errors import ConfigError, NeedsAttention, Refused, RetryLater
from lpbot.execution import service
from lpbot.execution.service import ExecutionContext
from lpbot.execution.state import RebalanceRecord
from lpbot.jobs import tasks
from lpbot.jobs.alerts import Alert, Notifier, WebhookNotifier
from lpbot.jobs.regime import RegimeWatch
from lpbot.jobs.tasks import ManagedPosition, PendingOpen
from lpbot.store.rebalances import SqlRebalanceRepo

if TYPE_CHECKING:
    from lpbot.app import App
    from lpbot.signing.base import Signer
    from lpbot.store.lock import Lock

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    positions: dict[str, ManagedPosition] = field(default_factory=dict)
    notifier: Notifier = field(default_factory=WebhookNotifier)
    simulators: list[ForkSimulator] = field(default_factory=list)
    # the rebalances the start-up resumed against the chain: (position, record)
    resumed: list[tuple[str, RebalanceRecord]] = field(default_factory=list)
    guard: Any = None  # the scheduler's lpbot.jobs.guard.JobGuard, once started
    app: Any = None  # the lpbot.app.App it was built from
    opens: dict[str, PendingOpen] = field(default_factory=dict)  # [positions.open], no NFT yet
    # the chains whose node did not answer at start, each with that line: their positions are
    # built when it answers (``connect_chain``)
    deferred: dict[str, str] = field(default_factory=dict)
    lock: Any = None  # the instance lock whose fence every recorded step checks
    contexts: dict[str, ExecutionContext] = field(default_factory=dict)  # per position

    def close(self) -> None:
        for sim in self.simulators:
            sim.close()


def current_token(sessions: sessionmaker[Session], name: str) -> int | None:
    """The NFT the store manages under position ``name`` now (after rebalances, the newest)."""
    from lpbot.store import repo

    with sessions() as s:
        positions = repo.open_positions(s, label=name)
        return int(positions[-1].token_id) if positions else None


def withdrawn_token(sessions: sessionmaker[Session], name: str) -> int | None:
    """The NFT position ``name`` was withdrawn from (its newest NFT, closed by a confirmed
    withdraw: liquidity and fees in the Safe), or None while it is managed or never was."""
    from sqlalchemy import select

    from lpbot.store import repo
    from lpbot.store.models import Position

    with sessions() as s:
        newest = s.scalars(
            select(Position)
            .where(Position.label == name, Position.token_id != 0)
            .order_by(Position.id.desc())
        ).first()
        if newest is None or newest.closed_at is None:
            return None
        found = repo.withdrawal_of(s, newest.chain_id, int(newest.token_id))
        return None if found is None else int(newest.token_id)


def was_withdrawn(sessions: sessionmaker[Session], chain_id: int, token_id: int) -> bool:
    """Whether NFT ``token_id`` on ``chain_id`` was withdrawn (a confirmed withdraw)."""
    from lpbot.store import repo

    with sessions() as s:
        return repo.withdrawal_of(s, chain_id, token_id) is not None


def ledger_recorded(sessions: sessionmaker[Session], name: str) -> bool:
    """Whether position ``name``'s ledger has started (its deposit recorded)."""
    from lpbot.jobs import ledger as ledger_store

    with sessions() as s:
        return ledger_store.load(s, name) is not None


def known_tokens(sessions: sessionmaker[Session], name: str) -> set[int]:
    """Every NFT the store has managed under position ``name`` (the current one and those
    rebalances replaced)."""
    from sqlalchemy import select

    from lpbot.store.models import Position

    with sessions() as s:
        rows = list(s.scalars(select(Position).where(Position.label == name)))
        tokens = {int(r.token_id) for r in rows}
        # and the NFTs they replaced, whatever those rows are named
        todo = [r.replaces_id for r in rows if r.replaces_id is not None]
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            row = s.get(Position, pid)
            if row is not None:
                tokens.add(int(row.token_id))
                if row.replaces_id is not None:
                    todo.append(row.replaces_id)
        return tokens


def record_successor(
    sessions: sessionmaker[Session],
    name: str,
    *,
    chain_id: int,
    pool: str,
    owner: str,
    token_id: int,
    ticks: tuple[int, int],
    replaces: int | None,
) -> None:
    """From now on position ``name`` is NFT ``token_id``: the store's open NFTs under that
    name (and ``replaces``, whatever its label) are closed, the new one recorded after them."""
    from sqlalchemy import select

    from lpbot.store import repo
    from lpbot.store.models import Position

    with sessions() as s, s.begin():
        previous = None
        rows = repo.open_positions(s, label=name)
        if replaces is not None:  # open, or closed already with its rebalance's CONFIRMED
            rows += list(
                s.scalars(
                    select(Position).where(
                        Position.chain_id == chain_id, Position.token_id == replaces
                    )
                )
            )
        for row in rows:
            if int(row.token_id) == token_id:
                continue
            repo.close_position(s, row.id)
            row.label = name  # the replaced NFT is this position's past
            previous = row.id
        new = repo.record_position(
            s,
            label=name,
            chain_id=chain_id,
            pool_address=pool,
            token_id=token_id,
            owner_address=owner,
            tick_lower=ticks[0],
            tick_upper=ticks[1],
            replaces_id=previous,
        )
        new.label = name
        new.closed_at = None


def confirmed_successor(
    sessions: sessionmaker[Session], chain_id: int, token_id: int
) -> tuple[int, str, tuple[int, int]] | None:
    """The NFT a confirmed rebalance of ``token_id`` minted (with its pool and range), if the
    store has one."""
    from sqlalchemy import select

    from lpbot.store.models import Position, Rebalance, RebalanceState

    with sessions() as s:
        rows = s.execute(
            select(Rebalance, Position)
            .join(Position, Rebalance.position_id == Position.id)
            .where(
                Position.chain_id == chain_id,
                Position.token_id == token_id,
                Rebalance.state == RebalanceState.CONFIRMED,
            )
            .order_by(Rebalance.id.desc())
        ).all()
        for row, position in rows:
            if (row.decision or {}).get("kind", "rebalance") != "rebalance":
                continue  # a compound adds to the same NFT; it has no successor
            result = (row.plan or {}).get("result") or {}
            new = result.get("new_token_id")
            if new is not None and int(new) != token_id:
                ticks = result.get("new_range") or (position.tick_lower, position.tick_upper)
                return int(new), position.pool_address, (int(ticks[0]), int(ticks[1]))
    return None


def follow_chain(
    ctx: ExecutionContext,
    sessions: sessionmaker[Session],
    name: str,
    token_id: int,
    notifier: Notifier,
) -> int | None:
    """The NFT position ``name`` is on the chain, starting from ``token_id``: while the chain
    shows it burned, its successor (minted to the Safe in the same transaction) is recorded in
    its place and followed; None (the store's row closed) when it was closed without one."""
    while not service.nft_exists(ctx, token_id):
        found = service.fetch_successor(ctx, token_id)
        if found is None or found.token_id is None or found.ticks is None:
            with sessions() as s, s.begin():
                from lpbot.store import repo

                for row in repo.open_positions(s, label=name):
                    if int(row.token_id) == token_id:
                        repo.close_position(s, row.id)
            notifier.notify(
                Alert(
                    "position_closed",
                    f"{name}: NFT #{token_id} was burned with no successor; not managed",
                    f"burned in {found.burned_in}" if found else "no burn found on the chain",
                )
            )
            log.error("position %s: NFT #%d no longer exists and has no successor", name, token_id)
            return None
        pool_now, *_ = service.pool_of_position(ctx, found.token_id)
        record_successor(
            sessions,
            name,
            chain_id=ctx.chain_id,
            pool=pool_now,
            owner=ctx.safe,
            token_id=found.token_id,
            ticks=found.ticks,
            replaces=token_id,
        )
        notifier.notify(
            Alert(
                "position_reconciled",
                f"{name}: NFT #{token_id} was replaced by #{found.token_id} on the chain",
                f"in {found.burned_in} (block {found.block}), a transaction no rebalance of "
                "the store recorded as confirmed; the store follows the chain",
            )
        )
        token_id = found.token_id
    return token_id


def _pool_address(manifest: Manifest, pool: str) -> str:
    """The configured pool as an address: a devnet pool name, or an address."""
    from eth_utils.address import is_address, to_checksum_address

    if is_address(pool):
        return str(to_checksum_address(pool))
    try:
        return str(to_checksum_address(manifest.pool(pool).address))
    except KeyError:
        raise ConfigError(f"pool {pool!r} is not a pool of this chain's manifest") from None


def check_position(
    pos: PositionConfig, token_pool: str, token_id: int, db_token: int | None, known: set[int],
    manifest: Manifest,
) -> None:  # fmt: skip
    """Refuse to manage a position the configuration and the chain or store disagree on."""
    configured = _pool_address(manifest, pos.pool)
    if configured.lower() != token_pool.lower():
        raise ConfigError(
            f"positions.{pos.name}: pool is {pos.pool} ({configured}), but NFT #{token_id} is in "
            f"pool {token_pool}; fix pool in the configuration, or manage another NFT with "
            f"`lpbot position adopt TOKEN_ID --position {pos.name}`"
        )
    if pos.token_id is not None and db_token is not None and pos.token_id not in known:
        raise ConfigError(
            f"positions.{pos.name}: token_id is {pos.token_id}, but the database manages "
            f"#{db_token} under {pos.name!r}; to manage #{pos.token_id} instead run "
            f"`lpbot position adopt {pos.token_id} --position {pos.name}` (or set token_id = "
            f"{db_token})"
        )


def unreachable_chains(app: App) -> dict[str, str]:
    """The chains of enabled positions whose node does not answer now, each with the one
    line saying so; ``lpbot run`` defers them. When none answers, that line is raised
    (``RetryLater``): there is nothing to run. A node serving another chain id is raised at
    once (``NeedsAttention``): a wrong configuration, not a node away."""
    from lpbot.app import _no_answer_reason
    from lpbot.chain.rpc import redact_url
    from lpbot.jobs.guard import rpc_lost

    chains = list(dict.fromkeys(p.chain for p in app.config.positions if p.enabled))
    down: dict[str, RetryLater] = {}
    for name in chains:
        try:
            # asked now: a connection an earlier check made (a standby's, before it stood by)
            # may be to a node that has died since
            app.w3(name).eth.block_number  # noqa: B018
        except RetryLater as exc:
            down[name] = exc
        except OSError as exc:  # the node's loss is a deferral, anything else is raised
            if not rpc_lost(exc):
                raise
            where = redact_url(app.chain(name).rpc_url)
            down[name] = RetryLater(
                f"the RPC of chain {name} at {where} does not answer ({_no_answer_reason(exc)})"
            )
    if chains and len(down) == len(chains):
        raise down[chains[0]]
    return {name: str(exc) for name, exc in down.items()}


def check_start(app: App, deferred: Collection[str] | None = None) -> list[Signer]:
    """What ``lpbot run`` needs before it may act, checked without acting: the price source
    values every position, a sender is named, every key it signs with unlocks. A standby
    checks it before it stands by: a wrong password or a price source it cannot reach is
    found at once, not when the active one has died and the standby is the only one left.
    Each enabled position's chain is checked with its own Safe, module and sender; the
    positions of ``deferred`` chains (whose node does not answer; by default those of
    ``unreachable_chains``) are priced when their chain answers (``connect_chain``). Returns
    the Safe owners' signers it checked."""
    if deferred is None:
        deferred = unreachable_chains(app)
    answering = {p.chain for p in app.config.positions} - set(deferred)
    unpriced = app.pricing_problems(online=True, chains=answering)
    if unpriced:
        raise ConfigError("; ".join(unpriced))
    chains = list(dict.fromkeys(p.chain for p in app.config.positions if p.enabled))
    chains = chains or [app.chain_name()]
    for chain in chains:
        signers = app.chain_signer(chain)
        if signers.sender is None and not app.devnet_defaults:
            raise ConfigError(
                f"{signers.where['sender']}: name the keystore that sends transactions on "
                f"chain {chain}"
            )
    approver = app.config.auto_execute.approver
    policy_key = app.signer(approver) if approver is not None else None
    checked: list[Any] = [policy_key]
    owners: list[Signer] = []
    for chain in chains:
        chain_owners = app.owner_signers(chain=chain)
        owners += chain_owners
        checked += [app.sender(chain), app.operator(chain), *chain_owners]
    for signer in checked:
        if signer is None:
            continue
        if hasattr(signer, "unlock"):
            signer.unlock()
        elif hasattr(signer, "check"):
            signer.check()  # the MPC owner: this host's party can open (the co-signer later)
    return owners


def build_runtime(
    app: App, *, notifier: Notifier | None = None, lock: Lock | None = None
) -> Runtime:
    """Open the database (migrated), unlock the keys, and build every enabled position; refuse
    (``ConfigError``, naming both sides and the command that fixes it) when the configuration
    and the chain or the database disagree. A chain whose node does not answer while another
    does is deferred (``Runtime.deferred``): its positions are built when it answers
    (``connect_chain``); when no chain answers, the start is refused with that line."""
    config = app.config
    runtime = Runtime(config, app.engine, app.sessions, notifier=notifier or app.notifier)
    runtime.app, runtime.lock = app, lock
    runtime.deferred = unreachable_chains(app)
    # a position the price source cannot value is neither monitored nor hedged, and the keys
    # are unlocked now, so a missing or wrong password stops the start, not the first rebalance
    check_start(app, runtime.deferred)
    build_chains(runtime, {p.chain for p in config.positions} - set(runtime.deferred))
    return runtime


def connect_chain(runtime: Runtime, chain: str) -> None:
    """Deferred chain ``chain`` answers: check it as the start does (the configured chain id,
    its positions' prices), resume its unfinished work against it and build its positions.
    ``RetryLater`` (or a lost connection): it does not answer (yet); ``NeedsAttention``
    (``ConfigError``): a configuration a person must fix."""
    app = runtime.app
    app.w3(chain)
    unpriced = app.pricing_problems(online=True, chains={chain})
    if unpriced:
        raise ConfigError("; ".join(unpriced))
    build_chains(runtime, {chain})
    runtime.deferred.pop(chain, None)


def build_chains(runtime: Runtime, chains: Collection[str]) -> None:
    """Build the enabled positions of ``chains``: their unfinished rebalances resumed against
    the chain first, then each one managed, or to open (``runtime.opens``)."""
    app, config, sessions, lock = runtime.app, runtime.config, runtime.sessions, runtime.lock
    auto = config.auto_execute
    auto_max = auto.max_value_usd if auto.enabled else None
    mine = [p for p in config.positions if p.enabled and p.chain in chains]
    contexts = runtime.contexts
    # the chain's truth first: every unfinished rebalance is finished or abandoned against the
    # chain (its CONFIRMED recorded with the position it minted) before anything reads which
    # NFT a position is now
    for pos in mine:
        chain = app.chain(pos.chain)
        if chain.manifest is None and pos.token_id is None and pos.open is None:
            raise ConfigError(f"positions.{pos.name}.token_id: required on a live chain")
        if pos.name not in contexts:  # built once (a retried chain keeps its dry-run fork)
            ctx = app.execution_context(pos.name, actor=f"lpbot run ({pos.name})")
            if lock is not None and isinstance(ctx.repo, SqlRebalanceRepo):
                ctx.repo.fence = lock.fence  # every recorded step checks the lock is ours
            contexts[pos.name] = ctx
        # the runtime's and the app's: closing either stops the dry-run forks
        for sim in app._cache.get("simulators", []):
            if sim not in runtime.simulators:
                runtime.simulators.append(sim)
        for record in service.resume(contexts[pos.name]):
            # this context resumes every one of its chain and Safe: each is its NFT's position's
            runtime.resumed.append((_owner(sessions, mine, pos, record), record))
    for pos in mine:
        ctx = contexts[pos.name]
        manifest = app.manifest(pos.chain)
        gone = withdrawn_token(sessions, pos.name)
        if gone is not None:  # withdrawn to the Safe: neither managed nor opened again
            log.info("position %s: #%d was withdrawn to the Safe; not managed", pos.name, gone)
            if _hedged(config, pos.name):
                manage(runtime, pos.name, ctx)  # its hedge only, kept at the delta, zero
            continue
        if pos.open is not None and current_token(sessions, pos.name) is None:
            pending = pending_open(
                pos, ctx, manifest, app.policy(pos.name), runtime.notifier, sessions,
                config.health,
            )  # fmt: skip
            pending.owner_signers = app.owner_signers(chain=pos.chain)
            pending.auto_execute_max_usd = Decimal(auto_max) if auto_max is not None else None
            pending.allow_hot_quorum = config.signer.allow_hot_quorum
            opened = service.latest_open(ctx, pos.name)
            if opened is None or opened.state.value != "CONFIRMED":
                runtime.opens[pos.name] = pending
                continue
            adopt_opened(sessions, ctx, pos.name, opened)  # confirmed just before a crash
        manage(runtime, pos.name, ctx)


def _owner(
    sessions: sessionmaker[Session],
    positions: list[PositionConfig],
    first: PositionConfig,
    record: RebalanceRecord,
) -> str:
    """The position of ``positions`` (on ``first``'s chain) whose NFT resumed ``record`` is
    about (an open: its label), else ``first``."""
    if record.kind == "open" and record.label in {p.name for p in positions}:
        return str(record.label)
    for pos in positions:
        if pos.chain == first.chain and (
            record.token_id == pos.token_id or record.token_id in known_tokens(sessions, pos.name)
        ):
            return pos.name
    return first.name


def open_capital(
    pos: PositionConfig, symbols: tuple[str, str], decimals: tuple[int, int]
) -> tuple[int, int]:
    """``[positions.open]`` capital as raw (token0, token1) amounts of the pool's tokens; a
    token that is not the pool's, or more decimals than the token has, is a ConfigError."""
    assert pos.open is not None
    for symbol in pos.open.capital:
        if symbol not in symbols:
            raise ConfigError(
                f"positions.{pos.name}.open.capital.{symbol}: not a token of pool {pos.pool} "
                f"({symbols[0]}/{symbols[1]})"
            )
    try:
        raw = (
            pos.open.raw_amount(symbols[0], decimals[0]),
            pos.open.raw_amount(symbols[1], decimals[1]),
        )
    except ConfigError as exc:
        raise ConfigError(f"positions.{pos.name}.open.{exc}") from None
    if raw == (0, 0):
        raise ConfigError(f"positions.{pos.name}.open.capital: no amount above 0")
    return raw


def pending_open(
    pos: PositionConfig,
    ctx: service.ExecutionContext,
    manifest: Manifest,
    policy: Any,
    notifier: Notifier,
    sessions: sessionmaker[Session],
    health: HealthConfig | None = None,
) -> PendingOpen:
    """What opening ``pos`` needs: its pool (checked to be the chain's), its capital (raw);
    with ``health`` (``[health]``) the open waits while the pool is below its rule, unless the
    position is one it accepts."""
    pool = _pool_address(manifest, pos.pool)
    try:
        token0, token1, _fee = service.check_pool(ctx, pool)
    except Refused as exc:
        raise ConfigError(f"positions.{pos.name}.pool: {exc}") from None
    symbols = (ctx.symbols[token0][0], ctx.symbols[token1][0])
    decimals = (ctx.symbols[token0][1], ctx.symbols[token1][1])
    capital = open_capital(pos, symbols, decimals)
    from lpbot.position_commands import Chain, open_range_chooser

    assert pos.open is not None
    # the context's address book (``chain_context``): one cache of the chain's tokens and pools
    from lpbot.chain.book import AddressBook, BookSymbols

    known = ctx.symbols
    book = known.book if isinstance(known, BookSymbols) else AddressBook.of(ctx.w3, manifest)
    chain = Chain(ctx.w3, manifest, service.pool_reader(ctx), ctx.pricer, book)
    return PendingOpen(
        name=pos.name,
        ctx=ctx,
        sessions=sessions,
        pool=pool,
        capital=capital,
        symbols=symbols,
        decimals=decimals,
        strategy=policy.strategy,
        notifier=notifier,
        choose_range=open_range_chooser(
            chain,
            pos.pool,
            policy,
            capital,
            accept_expected_loss=pos.open.accept_expected_loss,
            label=pos.name,
            health_rule=None if health is None else health.rule(),
            accept_unhealthy=health is not None and pos.name in health.accept_unhealthy,
        ),
    )


def adopt_opened(
    sessions: sessionmaker[Session],
    ctx: service.ExecutionContext,
    name: str,
    record: Any,
) -> int:
    """From a confirmed open's receipt (its reconciled result), record the new NFT as the one
    position ``name`` manages; returns its token id."""
    from lpbot.store import repo

    token_id = int(record.result["new_token_id"])
    npm = ctx.contract("NonfungiblePositionManager").functions.positions(token_id).call()
    pool, *_ = service.pool_of_position(ctx, token_id)
    record_successor(
        sessions,
        name,
        chain_id=ctx.chain_id,
        pool=pool,
        owner=ctx.safe,
        token_id=token_id,
        ticks=(int(npm[5]), int(npm[6])),
        replaces=None,
    )
    with sessions() as s, s.begin():
        repo.append_audit(
            s,
            "position_opened",
            [f"#{token_id} opened by open {record.id} (tx {record.result.get('tx_hash')})"],
            subject=f"position:{name}:{token_id}",
            decision="open",
        )
    return token_id


def opening_transactions(ctx: service.ExecutionContext, name: str, mine: set[int]) -> list[str]:
    """The hashes of the mined transactions (confirmed or reverted) of the confirmed open that
    minted one of position ``name``'s NFTs (``mine``), oldest first; empty when lpbot did not
    open it."""
    record = service.latest_open(ctx, name)
    if record is None or record.state.value != "CONFIRMED" or not record.result:
        return []
    if int(record.result.get("new_token_id", -1)) not in mine:
        return []
    mined = ("CONFIRMED", "REVERTED")
    return [t.tx_hash for t in ctx.repo.transactions(record.id) if t.status in mined]


def manage(runtime: Runtime, name: str, ctx: service.ExecutionContext) -> ManagedPosition | None:
    """Build position ``name``'s ``ManagedPosition`` on the NFT the store (or the config)
    names, following confirmed rebalances to their NFTs; refused when they disagree."""
    app, config, sessions = runtime.app, runtime.config, runtime.sessions
    pos = app.position(name)
    manifest = app.manifest(pos.chain)
    auto = config.auto_execute
    auto_max = auto.max_value_usd if auto.enabled else None
    # after a rebalance the position lives on in a new NFT: the store knows which (and a
    # rebalance confirmed just before a crash is followed to its NFT here)
    db_token = current_token(sessions, pos.name)
    # the devnet's demo position is the default on the devnet alone: a chain configured by its
    # RPC URL manages the NFT the configuration or the store names, nothing else
    devnet = app.chain(pos.chain).manifest is not None
    token_id = db_token or pos.token_id or (manifest.safe_position if devnet else None)
    if token_id is None:
        where = "and the devnet has none" if devnet else f"required on chain {pos.chain}"
        raise ConfigError(f"positions.{pos.name}.token_id: none given, {where}")
    gone = withdrawn_token(sessions, pos.name)
    withdrawn = gone is not None or was_withdrawn(sessions, ctx.chain_id, token_id)
    if withdrawn and not _hedged(config, pos.name):
        log.info("position %s: #%d was withdrawn to the Safe; not managed", pos.name, token_id)
        return None  # withdrawn to the Safe: nothing left to manage
    if withdrawn:
        # withdrawn, but its hedge may still be open (a sync that failed before a stop): the
        # hedge job alone runs, to the emptied NFT's delta, zero; nothing else is planned
        token_id = gone if gone is not None else token_id
        pool, token0, token1, _fee = service.pool_of_position(ctx, token_id)
        return _hedge_only(runtime, name, ctx, token_id, pool, token0, token1)
    while (found := confirmed_successor(sessions, ctx.chain_id, token_id)) is not None:
        new, pool_now, ticks = found
        record_successor(
            sessions,
            pos.name,
            chain_id=ctx.chain_id,
            pool=pool_now,
            owner=ctx.safe,
            token_id=new,
            ticks=ticks,
            replaces=token_id,
        )
        db_token = token_id = new
    # an NFT the chain burned in a transaction the store never recorded (a crash, another
    # tool): the chain's burn and the NFT minted with it say what the position is now
    followed = follow_chain(ctx, sessions, pos.name, token_id, runtime.notifier)
    if followed is None:
        return None  # closed on chain without a successor: nothing left to manage
    known = known_tokens(sessions, pos.name)
    if followed != token_id:
        known.add(token_id)  # the burned NFT is this position's past, row or not
        db_token = token_id = followed
    pool, token0, token1, _fee = service.pool_of_position(ctx, token_id)
    check_position(pos, pool, token_id, db_token, known, manifest)
    mp = ManagedPosition(
        name=pos.name,
        ctx=ctx,
        sessions=sessions,
        policy=app.policy(pos.name),
        token_id=token_id,
        pool=pool,
        token0=token0,
        token1=token1,
        notifier=runtime.notifier,
        owner_signers=app.owner_signers(chain=pos.chain),
        auto_execute_max_usd=Decimal(auto_max) if auto_max is not None else None,
        auto_via=auto.via,
        allow_hot_quorum=config.signer.allow_hot_quorum,
        ledger_from_first_snapshot=True,
        on_expected_loss=pos.policy.on_expected_loss,
        health_rule=config.health.rule(),
        accept_unhealthy=pos.name in config.health.accept_unhealthy,
    )
    if config.risk.enabled:
        mp.regime = RegimeWatch(
            config.risk.regime_config(),
            config.risk.actions(),
            config.risk.stress_monitor_seconds,
        )
    runtime.positions[pos.name] = mp
    mine = known_tokens(sessions, pos.name)
    if not ledger_recorded(sessions, pos.name):
        # lpbot opened it and its ledger starts at the first snapshot: the opening's mined
        # transactions (a reverted attempt pays too) are its first cost
        mined = opening_transactions(ctx, pos.name, mine)
        if mined:
            mp.opened_by(mined)
    for resumed_name, record in runtime.resumed:
        # a rebalance this start found confirmed: its flows and gas join the ledger too
        if (
            resumed_name == pos.name
            and record.kind == "rebalance"
            and record.state.value == "CONFIRMED"
            and record.result
            and record.token_id in mine
            and ledger_recorded(sessions, pos.name)
        ):
            tasks.record_confirmed(mp, record.result)
    if config.hedge is not None and (
        not config.hedge.positions or pos.name in config.hedge.positions
    ):
        _attach_hedge(config, mp, ctx.w3, manifest.chain_id)
    return mp

    return runtime


def _hedged(config: Config, name: str) -> bool:
    """Whether ``[hedge]`` hedges position ``name``."""
    return config.hedge is not None and (
        not config.hedge.positions or name in config.hedge.positions
    )


def _hedge_only(
    runtime: Runtime,
    name: str,
    ctx: service.ExecutionContext,
    token_id: int,
    pool: str,
    token0: str,
    token1: str,
) -> ManagedPosition:
    """Withdrawn position ``name``'s ``ManagedPosition`` on its emptied NFT, for its hedge:
    marked withdrawn (the monitor and the rebalance check do nothing), the hedge attached."""
    app, config = runtime.app, runtime.config
    pos = app.position(name)
    mp = ManagedPosition(
        name=pos.name,
        ctx=ctx,
        sessions=runtime.sessions,
        policy=app.policy(pos.name),
        token_id=token_id,
        pool=pool,
        token0=token0,
        token1=token1,
        notifier=runtime.notifier,
        on_expected_loss=pos.policy.on_expected_loss,
    )
    mp.withdrawn = True
    runtime.positions[pos.name] = mp
    _attach_hedge(config, mp, ctx.w3, app.manifest(pos.chain).chain_id)
    return mp


def _attach_hedge(config: Config, mp: ManagedPosition, w3: Web3, chain_id: int) -> None:
    """The ``[hedge]`` job of this position (``lpbot.hedge.wiring``)."""
    from lpbot.hedge.delta import check_perp_symbol, risky_index
    from lpbot.hedge.wiring import build_hedge_runner
    from lpbot.jobs.hedge_orders import StoreOrderJournal
    from lpbot.store.models import Position

    assert config.hedge is not None
    risky = risky_index(*mp.symbols)
    try:
        check_perp_symbol(config.hedge.symbol, mp.symbols[risky])
    except ConfigError as exc:
        raise ConfigError(f"positions.{mp.name}: {exc}") from None
    npm = mp.ctx.contracts["NonfungiblePositionManager"]
    runner = build_hedge_runner(
        config.hedge,
        data_dir=config.data_dir,
        position_id=f"{chain_id}:{npm}:{mp.token_id}",
        token_id=mp.token_id,
        decimals=mp.decimals,
        risky=risky,
        now_ms=int(w3.eth.get_block("latest")["timestamp"]) * 1000,
        # every order recorded in the store, in a transaction fenced by the instance lock
        journal=StoreOrderJournal(
            mp.sessions,
            exchange=config.hedge.exchange,
            fence=mp.ctx.repo.fence if isinstance(mp.ctx.repo, SqlRebalanceRepo) else None,
            checkpoint=mp.ctx.checkpoint,
        ),
    )
    # the position's earlier NFTs (rebalanced away while no hedge followed them, or a kill
    # before or during the move): the newest one's hedge comes to this NFT, or a move
    # killed after writing this NFT's state is finished
    with mp.sessions() as s:
        earlier = s.scalars(
            select(Position.token_id)
            .where(Position.label == mp.name, Position.token_id != mp.token_id)
            .order_by(Position.id.desc())
        ).all()
    for token in earlier:
        if runner.follow(mp.token_id, from_token=int(token)):
            break
    _check_hedge_state(mp, runner.files.state, f"{chain_id}:{npm}", config.hedge.exchange)
    mp.hedge, mp.hedge_runner, mp.hedge_risky = runner.controller, runner, risky


def _check_hedge_state(mp: ManagedPosition, state: Path, npm_id: str, exchange: str) -> None:
    """Refuse to hedge from an empty state when the store has this position's orders: the
    state (its step counter, its order in flight) lives in ``data_dir/hedge`` on the host
    that ran the hedge, and starting afresh would reuse client order ids (a standby on
    another machine needs that directory on shared storage)."""
    from lpbot.store.models import HedgeOrder

    if state.exists():
        return
    prefixes = [f"{npm_id}:{token} step " for token in known_tokens(mp.sessions, mp.name)]
    with mp.sessions() as s:
        reasons = s.scalars(select(HedgeOrder.reason).where(HedgeOrder.exchange == exchange)).all()
    recorded = sum(1 for r in reasons if r and r.startswith(tuple(prefixes)))
    if recorded:
        raise NeedsAttention(
            f"positions.{mp.name}: the store has {recorded} order(s) of this position's hedge "
            f"on {exchange}, but there is no hedge state at {state}: another host ran the "
            "hedge, or its state was removed. lpbot run does not hedge from an empty state "
            "(it would reuse client order ids); give this host the data_dir/hedge directory "
            "the hedge ran with (a standby on another machine: shared storage)"
        )
