"""The jobs' bodies: monitor, rebalance check, hedge sync, and the opening of a configured
position (``[positions.open]``). The scheduler and the demo call these.

Each task reads the chain, calls the pure layers for numbers and decisions, and does what the
decision and the configured policy allow, writing what it did to the store's audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy.orm import Session, sessionmaker

from lpbot.analytics.full_range import FullRangeOpen, PoolFeeState, open_full_range, value_at
from lpbot.analytics.ledger import (
    GasPaid,
    HedgeFigures,
    Ledger,
    Prices,
    RebalanceFlow,
    compute_ledger,
    full_range_figures,
)
from lpbot.analytics.prices import price0_per_1
from lpbot.chain import artifacts
from lpbot.chain.reader import PoolReader, PoolSnapshot
from lpbot.errors import LpbotError, NeedsAttention, Refused, RetryLater
from lpbot.execution import service
from lpbot.execution.decide import PositionView, decide_position
from lpbot.execution.service import ExecutionContext
from lpbot.execution.snapshots import pool_snapshot
from lpbot.execution.state import RebalanceRecord
from lpbot.hedge.controller import HedgeController
from lpbot.hedge.delta import lp_delta
from lpbot.hedge.wiring import HedgeRunner, delta_includes_fees
from lpbot.jobs import ledger as ledger_store
from lpbot.jobs.alerts import Alert, Notifier
from lpbot.jobs.regime import RegimeWatch
from lpbot.pricing.base import Marks, NoPriceRoute
from lpbot.pricing.marks import Pricer
from lpbot.risk.health import HealthRule, PoolHealth
from lpbot.signing.base import Signer
from lpbot.signing.safe import ReportSigner
from lpbot.store import repo
from lpbot.strategy.base import Range, RangeStrategy
from lpbot.strategy.decision import Compound, Hold, Rebalance
from lpbot.strategy.rebalance import RebalancePolicy
from lpbot.uniswap.position_value import principal

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """What the position's management has cost and earned so far (raw amounts, and USD)."""

    fees_collected0: int = 0
    fees_collected1: int = 0
    gas_wei: int = 0
    rebalances: int = 0
    compounds: int = 0
    events: list[str] = field(default_factory=list)
    flows: list[RebalanceFlow] = field(default_factory=list)  # for the ledger
    gas: list[GasPaid] = field(default_factory=list)


@dataclass
class PendingOpen:
    """A configured position to open (``[positions.open]``): its capital from the Safe, raw."""

    name: str
    ctx: ExecutionContext
    sessions: sessionmaker[Session]
    pool: str
    capital: tuple[int, int]  # raw token0, token1
    symbols: tuple[str, str]
    decimals: tuple[int, int]
    strategy: RangeStrategy
    notifier: Notifier
    owner_signers: Sequence[Signer] = ()
    auto_execute_max_usd: Decimal | None = None
    allow_hot_quorum: bool = False  # signer.allow_hot_quorum (see ``bot_can_sign``)
    token_id: int | None = None  # once opened: the NFT minted to the Safe
    # the range on the snapshot the open is planned at: the model's width, as ``position
    # quote``'s; raises ``ExpectedLoss`` where the model expects a loss and it is not accepted
    choose_range: Callable[[Any], Range] | None = None
    # the refusal alerted once ("expected_loss" or "pool_unhealthy"); the open waits
    loss_alerted: str = ""

    @property
    def capital_text(self) -> str:
        return " + ".join(
            f"{Decimal(a).scaleb(-d)} {sym}"
            for a, d, sym in zip(self.capital, self.decimals, self.symbols, strict=True)
            if a
        )


@dataclass
class ManagedPosition:
    """One position the bot looks after, with everything its jobs need."""

    name: str
    ctx: ExecutionContext
    sessions: sessionmaker[Session]
    policy: RebalancePolicy
    token_id: int
    pool: str
    token0: str
    token1: str
    notifier: Notifier
    owner_signers: Sequence[Signer] = ()
    auto_execute_max_usd: Decimal | None = None
    auto_via: str = "module"  # small rebalances: "module" (operator key) or "multisig"
    # the multisig path runs on its own only when the configuration accepts that the bot holds
    # a threshold of owner keys (``signer.allow_hot_quorum``): its limits are then this process
    allow_hot_quorum: bool = False
    hedge: HedgeController | None = None
    hedge_risky: int = 1
    hedge_runner: HedgeRunner | None = None  # lpbot run: the configured hedge (lpbot.hedge.wiring)
    entry: tuple[int, int] | None = None  # token amounts when the position was opened
    opened_at: int = 0
    tally: Tally = field(default_factory=Tally)
    out: Callable[[str], None] = print
    was_in_range: bool = True
    pricer: Pricer | None = None  # marks from the chain's pools and feeds (``pricing``)
    entry_marks: Prices | None = None  # the marks when the position was opened
    # without ``entry``: start the ledger at the first snapshot (the principal then is the
    # deposit, its uncollected fees are held, not earned), or resume the one in the store
    ledger_from_first_snapshot: bool = False
    fees_at_start: tuple[int, int] = (0, 0)
    _reader: PoolReader | None = None
    deposit_recorded: bool = False
    # the opening's transactions (block, block time, gas) when lpbot opened the position: the
    # ledger's first costs, recorded with the deposit
    opening: list[tuple[int, int, GasPaid]] = field(default_factory=list)
    _alerted: set[str] = field(default_factory=set)
    loss_alerted: bool = False  # the pool's fees are below its LVR: alerted once until they are not
    # ``policy.on_expected_loss``: "alert" once, or "withdraw" to the Safe (``plan_withdraw``)
    on_expected_loss: str = "alert"
    withdraw_asked: bool = False  # the owners were asked to approve a withdraw: not again
    withdrawn: bool = False  # its liquidity and fees went to the Safe: no longer managed
    # the pool health rule ([health]; None: not checked) and whether this position may
    # rebalance into a pool below it (health.accept_unhealthy)
    health_rule: HealthRule | None = None
    accept_unhealthy: bool = False
    pool_healthy: bool | None = None  # the verdict at the last monitor tick (None: none yet)
    _health_recorded_at: int = 0  # block time of the last pool_health audit entry
    _gate_alerted: bool = False  # a rebalance refused for health: alerted once per spell
    # the market regime (``[risk]``, lpbot.jobs.regime): None when it is off
    regime: RegimeWatch | None = None
    # (token id, liquidity, fees owed) at the last snapshot: what only lpbot may change
    _last_seen: tuple[int, int, int, int] | None = None
    # the ledger's passive full-range benchmark (``jobs.ledger``): its opening, the marks it
    # opened at and whether that was after the deposit; the pool at the deposit's block (to
    # record with it); the gas of the real opening, which it pays too
    full_range: tuple[FullRangeOpen, Prices, bool] | None = None
    deposit_pool: PoolFeeState | None = None
    opening_gas_usd: Decimal = Decimal(0)

    @property
    def reader(self) -> PoolReader:
        if self._reader is None:
            self._reader = PoolReader(
                self.ctx.w3,
                multicall=self.ctx.contracts["Multicall3"],
                tick_lens=self.ctx.contracts["TickLens"],
                position_manager=self.ctx.contracts["NonfungiblePositionManager"],
            )
        return self._reader

    @property
    def decimals(self) -> tuple[int, int]:
        return self.ctx.symbols[self.token0][1], self.ctx.symbols[self.token1][1]

    @property
    def symbols(self) -> tuple[str, str]:
        return self.ctx.symbols[self.token0][0], self.ctx.symbols[self.token1][0]

    def fetch_marks(self, block: int) -> Marks:
        """The marks of the pool's tokens (and ETH, BTC) at ``block``; their alerts raised once
        per kind and token until they clear."""
        pricer: Pricer | None = self.pricer or self.ctx.pricer
        if pricer is None:
            raise LpbotError(f"{self.name}: no price source configured")
        s0, s1 = self.symbols
        marks = pricer.fetch_marks([s0, s1], block)
        now = {f"{a.kind}:{a.token}" for a in marks.alerts}
        for a in marks.alerts:
            key = f"{a.kind}:{a.token}"
            if key not in self._alerted:
                self.notifier.notify(Alert(f"price_{a.kind}", f"{self.name}: {a.message}"))
        self._alerted = now
        return marks

    def prices(self, marks: Marks) -> Prices:
        return ledger_store.ledger_prices(marks, self.symbols)

    def __post_init__(self) -> None:
        if self.ctx.on_reconciled is None:
            # a context not built by ``app`` (the demo's): its rebalances are this position's
            pricer = self.pricer or self.ctx.pricer
            if pricer is not None:
                self.ctx.on_reconciled = ledger_store.reconciled_recorder(
                    self.sessions, self.ctx.w3, pricer, lambda _token: [self.name]
                )

    def opened_by(self, tx_hashes: Sequence[str]) -> None:
        """lpbot opened this position with ``tx_hashes`` (approvals, the mint): their gas, from
        the receipts at the ETH mark of each one's block, is the ledger's first cost (recorded
        with the deposit at the first snapshot)."""
        self.opening = []
        for tx_hash in tx_hashes:
            receipt = self.ctx.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            block = int(receipt["blockNumber"])
            wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
            eth = self.prices(self.fetch_marks(block)).eth
            timestamp = int(self.ctx.w3.eth.get_block(block)["timestamp"])
            self.opening.append((block, timestamp, GasPaid(tx_hash, wei, eth)))
        self.tally.gas = [gas for *_, gas in self.opening]
        self.tally.gas_wei += sum(gas.wei for gas in self.tally.gas)
        self.opening_gas_usd = sum((gas.usd for gas in self.tally.gas), Decimal(0))

    def reload_ledger(self) -> None:
        """Take the rebalances and gas from the store's ledger (where every route records
        them, ``ExecutionContext.on_reconciled``)."""
        with self.sessions() as s:
            start = ledger_store.load(s, self.name)
        if start is not None:
            self.tally.flows = [f for _, f, _ in start.rebalances if f is not None]
            self.tally.gas = [g for _, _, g in start.rebalances]


@dataclass(frozen=True)
class PositionState:
    """The numbers the monitor shows and stores (raw ints; USD analytics)."""

    block: int
    timestamp: int
    tick: int
    in_range: bool
    tick_lower: int
    tick_upper: int
    amount0: int
    amount1: int
    fees0: int
    fees1: int
    value_usd: Decimal
    hold_usd: Decimal | None
    delta: Decimal
    price: Decimal  # token1 whole units... shown as the volatile token's price
    marks: Marks | None = None
    ledger: Ledger | None = None


def ledger_of(
    mp: ManagedPosition,
    state: PositionState,
    hedge: HedgeFigures,
    pool: PoolFeeState | None = None,
) -> Ledger:
    """The position's ledger at the state's block, from its marks (``analytics.ledger``), with
    the full-range benchmark valued on ``pool`` (the pool's fee growth at that block)."""
    if state.marks is None or mp.entry is None or mp.entry_marks is None:
        raise LpbotError(f"{mp.name}: no entry or marks to build a ledger from")
    benchmark = None
    if mp.full_range is not None and pool is not None and pool.block >= mp.full_range[0].at.block:
        fr, opened_at, late = mp.full_range
        benchmark = full_range_figures(
            value_at(fr, pool),
            marks=mp.prices(state.marks),
            opened_at=opened_at,
            decimals=mp.decimals,
            gas_usd=mp.opening_gas_usd,
            late=late,
        )
    return compute_ledger(
        decimals=mp.decimals,
        deposit=mp.entry,
        entry=mp.entry_marks,
        rebalances=mp.tally.flows,
        principal=(state.amount0, state.amount1),
        uncollected=(state.fees0, state.fees1),
        marks=mp.prices(state.marks),
        gas=mp.tally.gas,
        hedge=hedge,
        fees_at_start=mp.fees_at_start,
        full_range=benchmark,
    )


def _held(mp: ManagedPosition) -> tuple[int, int]:
    """What the hold and full-range benchmarks start with: the deposit and the fees held."""
    assert mp.entry is not None
    return mp.entry[0] + mp.fees_at_start[0], mp.entry[1] + mp.fees_at_start[1]


def _open_full_range(mp: ManagedPosition, snap: PoolSnapshot, prices: Prices) -> None:
    """Open the ledger's full-range benchmark as ``jobs.ledger.history`` does: at the pool's
    state at the deposit's block, else at the first snapshot with fee growth (this one)."""
    if mp.full_range is not None or mp.entry is None or mp.entry_marks is None:
        return
    held = _held(mp)
    if max(held) <= 0:
        return
    if not mp.deposit_recorded and mp.deposit_pool is None:
        mp.deposit_pool = fetch_deposit_pool(mp, snap, mp.entry_marks.block)
        if mp.deposit_pool is not None:
            mp.full_range = (open_full_range(held, mp.deposit_pool), mp.entry_marks, False)
            return
    now = snap.fee_state()
    if now is not None:
        late = snap.block_number > mp.entry_marks.block
        mp.full_range = (open_full_range(held, now), prices, late)


def _resume_ledger(mp: ManagedPosition) -> None:
    """Take the deposit, its marks and the recorded rebalances from the store (a restart)."""
    with mp.sessions() as s:
        start = ledger_store.load(s, mp.name)
    if start is None:
        return
    mp.entry, mp.fees_at_start, mp.entry_marks = start.deposit, start.fees_at_start, start.entry
    mp.tally.flows = [f for _, f, _ in start.rebalances if f is not None]
    mp.tally.gas = [g for _, _, g in start.rebalances]
    mp.deposit_recorded = True
    mp.opening_gas_usd = sum((g.usd for g in start.opening_gas), Decimal(0))
    if start.pool is not None and max(_held(mp)) > 0:
        mp.full_range = (open_full_range(_held(mp), start.pool), start.entry, False)
        return
    try:  # it opened at the first stored snapshot with fee growth, if there is one
        with mp.sessions() as s:
            h = ledger_store.history(s, mp.name)
    except NeedsAttention:
        return  # the stored ledger refuses (and says why): nothing to resume
    if h.full_range is not None and h.full_range_marks is not None:
        mp.full_range = (h.full_range, h.full_range_marks, h.full_range_late)


def hedge_figures(mp: ManagedPosition, delta: Decimal) -> HedgeFigures:
    if mp.hedge is None:
        return HedgeFigures()
    # the runner reads the hedge's files under its lock (another process may have changed
    # them), and keeps the monitor going while the venue is down
    pnl = mp.hedge_runner.pnl(delta) if mp.hedge_runner else mp.hedge.status(delta).pnl
    return HedgeFigures(pnl.realised, pnl.unrealised, pnl.fees, pnl.funding)


def _state(mp: ManagedPosition, snap: PoolSnapshot) -> PositionState:
    pos = snap.positions[mp.token_id]
    n = pos.npm
    a0, a1 = principal(n, snap.slot0.sqrt_price_x96)
    f0, f1 = snap.uncollected_fees(mp.token_id)
    d0, d1 = mp.decimals
    delta = lp_delta(
        snap,
        mp.token_id,
        decimals0=d0,
        decimals1=d1,
        risky=mp.hedge_risky,  # type: ignore[arg-type]
        include_fees=delta_includes_fees(mp.hedge_runner),
    )
    marks = mp.fetch_marks(snap.block_number)
    prices = mp.prices(marks)
    if mp.entry is None and mp.ledger_from_first_snapshot:
        mp.entry, mp.fees_at_start = (a0, a1), (f0, f1)
    if mp.entry is not None and mp.entry_marks is None:
        mp.entry_marks = prices
    _open_full_range(mp, snap, prices)
    # the native coin's mark for gas figures follows the market too
    mp.ctx.native_usd = prices.eth
    state = PositionState(
        block=snap.block_number,
        timestamp=snap.block_timestamp,
        tick=snap.slot0.tick,
        in_range=n.tick_lower <= snap.slot0.tick < n.tick_upper,
        tick_lower=n.tick_lower,
        tick_upper=n.tick_upper,
        amount0=a0,
        amount1=a1,
        fees0=f0,
        fees1=f1,
        value_usd=prices.usd((a0 + f0, a1 + f1), mp.decimals),
        hold_usd=prices.usd(mp.entry, mp.decimals) if mp.entry else None,
        delta=delta,
        price=price0_per_1(snap.slot0.sqrt_price_x96, d0, d1),
        marks=marks,
    )
    if mp.entry is None:
        return state
    led = ledger_of(mp, state, hedge_figures(mp, delta), snap.fee_state())
    # what the table shows is the ledger's: value with idle leftovers, hold at today's marks
    return PositionState(
        **{
            **{k: getattr(state, k) for k in state.__dataclass_fields__},
            "value_usd": led.usd.value,
            "hold_usd": led.usd.hold,
            "ledger": led,
        }
    )


def follow_nft(mp: ManagedPosition, token_id: int) -> None:
    """The position is NFT ``token_id`` now (a rebalance minted it): its hedge goes with it."""
    mp.token_id = token_id
    if mp.hedge_runner is not None:
        mp.hedge_runner.follow(token_id)


def fetch_owner_balances(mp: ManagedPosition, block: int) -> tuple[int, int]:
    """The raw token0, token1 the position's owner (the Safe) holds outside it at ``block``:
    with the ledger's flows they reconcile its balances to the wei."""
    erc20 = mp.ctx.w3.eth.contract(abi=artifacts.abi("TestERC20"))  # balanceOf is ERC-20's
    owner = to_checksum_address(mp.ctx.safe)
    b0, b1 = (
        int(
            erc20(address=to_checksum_address(t))
            .functions.balanceOf(owner)
            .call(block_identifier=block)
        )
        for t in (mp.token0, mp.token1)
    )
    return b0, b1


def fetch_deposit_pool(mp: ManagedPosition, snap: PoolSnapshot, block: int) -> PoolFeeState | None:
    """The pool's price and fee growth at the deposit's ``block`` (the snapshot's when it is
    that block): where the ledger's full-range benchmark opens. None when the node no longer
    serves that block's state: the benchmark then opens at the first snapshot."""
    if block == snap.block_number:
        return snap.fee_state()
    try:
        at = mp.reader.fetch_pool_state(mp.pool, twap_seconds=(0,), block=block, full_range=True)
    except RetryLater as exc:
        log.warning("%s: pool state at the deposit's block %d unreadable: %s", mp.name, block, exc)
        return None
    return at.fee_state()


def monitor(mp: ManagedPosition) -> PositionState:
    """Read the position, store a snapshot, alert on a range exit, and evaluate the market
    regime (``lpbot.jobs.regime``)."""
    if mp.entry is None and not mp.deposit_recorded:
        _resume_ledger(mp)
    snap = mp.reader.fetch_pool_state(
        mp.pool, token_ids=[mp.token_id], twap_seconds=(0,), full_range=True
    )
    state = _state(mp, snap)
    marks = state.marks
    assert marks is not None
    s0, s1 = mp.symbols
    owner_balances = fetch_owner_balances(mp, snap.block_number)
    # the venue is asked before the write transaction: a slow venue holds back no other chain
    hedge = ledger_store.hedge_json(hedge_figures(mp, state.delta))
    with mp.sessions() as s, s.begin():
        position = repo.record_position(
            s,
            label=mp.name,
            chain_id=mp.ctx.chain_id,
            pool_address=mp.pool,
            token_id=mp.token_id,
            owner_address=mp.ctx.safe,
            tick_lower=state.tick_lower,
            tick_upper=state.tick_upper,
        )
        if mp.entry is not None and mp.entry_marks is not None and not mp.deposit_recorded:
            ledger_store.record_deposit(
                s,
                mp.name,
                deposit=mp.entry,
                decimals=mp.decimals,
                symbols=mp.symbols,
                marks=mp.entry_marks,
                fees_at_start=mp.fees_at_start,
                opening=mp.opening,
                pool=mp.deposit_pool,
            )
            mp.deposit_recorded = True
        repo.save_snapshot(
            s,
            position.id,
            taken_at=datetime.fromtimestamp(state.timestamp, UTC),
            block_number=state.block,
            sqrt_price_x96=snap.slot0.sqrt_price_x96,
            tick=state.tick,
            liquidity=snap.positions[mp.token_id].npm.liquidity,
            amount0=state.amount0,
            amount1=state.amount1,
            fees0=state.fees0,
            fees1=state.fees1,
            token0_usd=float(marks.usd(s0)),
            token1_usd=float(marks.usd(s1)),
            eth_usd=float(marks.usd("WETH")),
            btc_usd=float(marks.marks["WBTC"].usd) if "WBTC" in marks.marks else None,
            mark_sources=ledger_store.mark_sources_json(mp.prices(marks), marks),
            hedge=hedge,
            value_usd=float(state.value_usd),
            il_usd=float(state.ledger.usd.il) if state.ledger is not None else None,
            delta=float(state.delta),
            owner_balances=owner_balances,
            pool_fees=snap.fee_state(),
        )
    liquidity = snap.positions[mp.token_id].npm.liquidity
    last = mp._last_seen
    if (
        last is not None
        and last[0] == mp.token_id
        and (last[1] != liquidity or state.fees0 < last[2] or state.fees1 < last[3])
    ):
        # lpbot never adds to, takes from or collects the NFT it keeps: someone else did, and
        # the ledger (status, report, export) refuses to explain value against holding past it
        mp.notifier.notify(
            Alert(
                "ledger_outside_change",
                f"{mp.name}: #{mp.token_id} changed outside lpbot",
                f"liquidity {last[1]} -> {liquidity}, fees owed {last[2]}/{last[3]} -> "
                f"{state.fees0}/{state.fees1} at block {state.block}",
            )
        )
    mp._last_seen = (mp.token_id, liquidity, state.fees0, state.fees1)
    if not state.in_range and mp.was_in_range:
        mp.notifier.notify(
            Alert("range_exit", f"{mp.name}: price left the range", f"tick {state.tick}")
        )
    mp.was_in_range = state.in_range
    health = watch_health(mp, snap, marks) if mp.health_rule is not None else None
    if mp.regime is not None:
        from lpbot.jobs import regime

        now = regime.evaluate(mp, snap, state, health=health)
        if now is not None:
            regime.act(mp, now)
    return state


HEALTH_RECORD_SECONDS = 3600  # a pool_health audit entry at least this often, and on a change


def watch_health(mp: ManagedPosition, snap: PoolSnapshot, marks: Marks) -> PoolHealth | None:
    """The pool's health at the monitor's snapshot: an alert once when it falls below the rule
    (and once when it recovers), and a ``pool_health`` audit entry (what ``lpbot status``
    shows) on a change and at least hourly. None (logged) when the ticks read do not add up:
    the monitor's own work stands, and the gates check the pool again before acting."""
    from lpbot.execution.health import health_at

    assert mp.health_rule is not None
    try:
        health = health_at(
            snap, marks, symbols=mp.symbols, decimals=mp.decimals, rule=mp.health_rule
        )
    except ValueError as exc:
        log.warning("%s: no pool health at block %d: %s", mp.name, snap.block_number, exc)
        return None
    was = mp.pool_healthy
    if not health.healthy and was is not False:
        then = ""
        if health.wants_stress:
            then = "; health.on_unhealthy = 'stressed' asks for the stressed regime"
        mp.notifier.notify(
            Alert(
                "pool_unhealthy",
                f"{mp.name}: the pool fell below the health rule",
                "; ".join(health.problems)
                + f" (rule {mp.health_rule.describe()}); opening and rebalancing into it are "
                f"refused until it recovers{then}",
            )
        )
    elif health.healthy and was is False:
        mp._gate_alerted = False
        mp.notifier.notify(
            Alert("pool_healthy", f"{mp.name}: the pool is healthy again", health.line())
        )
    mp.pool_healthy = health.healthy
    if was != health.healthy or snap.block_timestamp - mp._health_recorded_at >= (
        HEALTH_RECORD_SECONDS
    ):
        with mp.sessions() as s, s.begin():
            repo.append_audit(
                s,
                "pool_health",
                list(health.reasons),
                subject=f"position:{mp.name}:{mp.token_id}",
                decision=health.verdict,
                data={"block": snap.block_number, "pool": mp.pool, **health.to_json()},
            )
        mp._health_recorded_at = snap.block_timestamp
    return health


def unchecked_marks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's ``unchecked`` price alerts on the tokens it is valued in: marks taken through
    a pool found through the factory, which no feed checks (anyone may create and move one)."""
    marks = report.get("marks") or {}
    used = {m["token"] for m in marks.get("used", [])}
    return [a for a in marks.get("alerts", []) if a["kind"] == "unchecked" and a["token"] in used]


def auto_execute_reasons(
    report: dict[str, Any],
    limit: Decimal | None,
    ready: bool,
    can_sign: bool,
    signing: str = "",
    module_refused: list[str] | None = None,
) -> list[str]:
    """Why a planned rebalance runs on its own or waits for a person: its value against the
    limit, naming the marks (source, route, block) the value is at; who would sign; and a
    refusal by the module, which only people may overrule."""
    value = Decimal(report["dry_run"]["value_usd"])
    marks = report.get("marks") or {"used": [], "block": report["snapshot"]["block"]}
    at = "; ".join(
        f"{m['token']} ${Decimal(m['usd']):,.6g} from {m['source']} {' -> '.join(m['route'])}"
        for m in marks["used"]
    )
    if limit is None:
        head = f"value ${value:,.2f}: auto-execute is off"
    else:
        head = (
            f"value ${value:,.2f} {'<=' if value <= limit else '>'} "
            f"auto-execute limit ${limit:,.2f}"
        )
    reasons = [f"{head}, at marks of block {marks['block']}: {at}"]
    reasons += [f"unchecked mark: {a['message']}" for a in unchecked_marks(report)]
    if not ready:
        failed = [c["name"] for c in report["checks"] if not c["ok"]]
        reasons.append(f"report failed its checks: {', '.join(failed)}")
    if module_refused:
        reasons.append(
            "the module refused it (" + "; ".join(module_refused) + "): its limits are the "
            "owners' to lift, so the multisig plan waits for a person"
        )
    if not can_sign:
        reasons.append(signing or "no owner keys to sign with")
    return reasons


def bot_can_sign(
    owner_signers: Sequence[Signer], allow_hot_quorum: bool, report: dict[str, Any]
) -> tuple[bool, str]:
    """Whether the bot may carry out the report without a person, and why (not).

    Through the module: the operator key, the chain enforcing the owners' limits. Through the
    multisig: owner keys for the Safe's threshold, where an MPC owner signs only what its
    co-signer's own policy allows; keys the bot holds itself reaching the threshold only with
    ``allow_hot_quorum``. Fewer never make a policy approval (the rest would need people)."""
    if "module_tx" in report:
        return True, "the module's operator key, within the limits the owners set on chain"
    owners = {o.lower() for o in report.get("owners", [])}
    threshold = int(report.get("threshold", 0))
    signers = [s for s in owner_signers if s.address.lower() in owners]
    cosigned = {s.address for s in signers if isinstance(s, ReportSigner)}
    hot = {s.address for s in signers} - cosigned
    if len(hot) + len(cosigned) < threshold:
        return False, (
            f"the bot holds {len(hot) + len(cosigned)} of the {threshold} owner keys the Safe "
            "needs: the owners sign"
        )
    if len(hot) >= threshold and not allow_hot_quorum:
        return False, (
            f"the bot holds {len(hot)} owner keys (threshold {threshold}) but "
            "signer.allow_hot_quorum is off: the owners sign"
        )
    if cosigned:
        return True, (
            f"{len(hot)} owner key(s) the bot holds and the MPC owner, whose co-signer applies "
            "its own policy"
        )
    return True, f"{len(hot)} owner keys the bot holds (signer.allow_hot_quorum = true)"


def policy_approves(
    sessions: sessionmaker[Session],
    report: dict[str, Any],
    limit: Decimal | None,
    *,
    can_sign: bool,
    subject: str,
    signing: str = "",
    module_refused: list[str] | None = None,
) -> tuple[bool, list[str]]:
    """Whether the auto-execute policy runs a planned report on its own (every check passed,
    its value within the limit, keys to sign with), with its reasons, written to the audit log.

    The limit is read against the report's value: the price source's marks at the plan's
    block, checks applied (a flagged mark fails the report, so it is never auto-executed); a
    value at a mark no feed checks (``unchecked_marks``) is a person's to approve."""
    ready = all(c["ok"] for c in report["checks"])
    value = Decimal(report["dry_run"]["value_usd"])
    auto = not module_refused and ready and limit is not None and value <= limit and can_sign
    auto = auto and not unchecked_marks(report)
    why = auto_execute_reasons(report, limit, ready, can_sign, signing, module_refused)
    with sessions() as s, s.begin():
        repo.append_audit(
            s, "auto-execute", why, subject=subject, decision="execute" if auto else "ask"
        )
    return auto, why


def _module_refused(mp: ManagedPosition, report: dict[str, Any], what: str) -> list[str]:
    """The module's refusal of a planned report: its failed checks, and an alert."""
    refused = [f"{c['name']}: {c['detail']}" for c in report["checks"] if not c["ok"]]
    mp.notifier.notify(
        Alert(
            "module_refused",
            f"{mp.name}: the module refused {what} {report['report_id']}",
            "; ".join(refused),
        )
    )
    return refused


def decision_policy(mp: ManagedPosition) -> RebalancePolicy:
    """The policy the rebalance check decides with: the configured one, its strategy's widths
    scaled by ``[risk.elevated] widen_factor`` while the market regime is not normal
    (``lpbot.risk.actions.policy_for``), so the next range is wider."""
    if mp.regime is None:
        return mp.policy
    from lpbot.risk.actions import policy_for

    return policy_for(mp.policy, mp.regime.for_level())


def regime_band(mp: ManagedPosition) -> None:
    """The hedge band for the market regime: ``band_abs`` and ``band_pct`` as configured times
    ``[risk.elevated] hedge_band_factor`` while the regime is not normal (``band_abs`` never
    below the venue's minimum order), as configured when normal."""
    if mp.regime is None or mp.hedge is None:
        return
    c = mp.hedge
    try:
        minimum = c.market.min_amount  # resolves band_abs 0 to the venue's narrowest band
    except LpbotError as exc:  # the venue down: the sync says so itself
        log.warning("%s: hedge band left as it is: %s", mp.name, exc)
        return
    if mp.regime.hedge_band is None:
        mp.regime.hedge_band = (c.config.band_abs, c.config.band_pct)
    base_abs, base_pct = mp.regime.hedge_band
    f = Decimal(str(mp.regime.for_level().hedge_band_factor))
    band = (max(base_abs * f, minimum), base_pct * f)
    if (c.config.band_abs, c.config.band_pct) != band:
        log.info("%s: hedge band %s tokens / %s%% (regime %s)", mp.name, *band, mp.regime.level)
        c.config = c.config.model_copy(update={"band_abs": band[0], "band_pct": band[1]})


def rebalance_check(mp: ManagedPosition) -> str:
    """Decide; on Rebalance plan and dry-run, then auto-execute if allowed, else ask."""
    if (note := withdrawn_note(mp)) is not None:
        return note
    # unfinished rebalances first, checked against the chain (a step left by an error or a
    # kill): one found executed moves the position to the NFT it minted; a report the Safe's
    # nonce has left behind expires; another position's are left to its own check, which
    # follows the NFT they mint
    for done in service.resume(mp.ctx, token_ids={mp.token_id}):
        if done.kind == "withdraw" and done.state.value == "CONFIRMED":
            if done.token_id == mp.token_id:  # a withdraw sent before a kill, found mined
                mp.reload_ledger()
                after_withdraw(mp)
                return f"withdrawn: #{mp.token_id} (withdraw {done.id}, resumed); not managed"
            continue
        new = (done.result or {}).get("new_token_id")
        if (
            done.kind == "rebalance"
            and done.state.value == "CONFIRMED"
            and done.token_id == mp.token_id
            and new
        ):
            follow_nft(mp, int(new))
            if mp.deposit_recorded:
                record_confirmed(mp, done.result or {})
    marks = mp.fetch_marks(mp.ctx.w3.eth.block_number)
    prices = mp.prices(marks)
    view = decide_position(
        mp.ctx.w3,
        mp.reader,
        mp.pool,
        mp.token_id,
        decision_policy(mp),
        decimals=mp.decimals,
        usd=(prices.token0, prices.token1),
        native_usd=prices.eth,
        opened_at=mp.opened_at,
        block=marks.block,  # the pool read at the marks' block
    )
    decision = view.decision
    with mp.sessions() as s, s.begin():
        repo.append_audit(
            s,
            "decision",
            list(decision.reasons) or [decision.reason],
            subject=f"position:{mp.name}:{mp.token_id}",
            decision=type(decision).__name__,
        )
    ratio = _alert_expected_loss(mp, view)
    if ratio is not None and mp.on_expected_loss == "withdraw":
        return _withdraw_on_loss(mp, ratio)
    if isinstance(decision, Compound):
        return compound(mp, decision)
    if isinstance(decision, Hold):
        return f"hold: {decision.reason}"
    assert isinstance(decision, Rebalance)
    refused = _health_gate(mp, view, marks)
    if refused:
        return refused
    # small moves may go through the module (operator key alone, the chain enforcing its
    # limits); larger ones, or any the module's dry-run refuses, through the full multisig
    state = _state(mp, view.snapshot)
    small = mp.auto_execute_max_usd is not None and state.value_usd <= mp.auto_execute_max_usd
    mp.ctx.via = "module" if small and mp.auto_via == "module" else "multisig"
    record, report, paths = service.plan_rebalance(
        mp.ctx, mp.token_id, decision.new_range, decision.reason
    )
    ready = all(c["ok"] for c in report["checks"])
    module_refused: list[str] = []
    if not ready and mp.ctx.via == "module":
        # the module refuses it (a limit the owners set, the TWAP or the anchor check): an
        # alert, and a multisig plan for the owners to approve; never owner keys the bot holds
        module_refused = _module_refused(mp, report, "rebalance")
        mp.ctx.via = "multisig"
        record, report, paths = service.plan_rebalance(
            mp.ctx, mp.token_id, decision.new_range, decision.reason + " (module refused)"
        )
    can_sign, signing = bot_can_sign(mp.owner_signers, mp.allow_hot_quorum, report)
    auto, why = policy_approves(
        mp.sessions,
        report,
        mp.auto_execute_max_usd,
        can_sign=can_sign,
        subject=f"position:{mp.name}:{mp.token_id}",
        signing=signing,
        module_refused=module_refused,
    )
    if not auto:
        mp.notifier.notify(
            Alert(
                "approval_needed",
                f"{mp.name}: rebalance {report['report_id']} awaits approval",
                f"{decision.reason}; {'; '.join(why)}; report {paths.get('html', '')}",
            )
        )
        return f"rebalance planned: report {report['report_id']} awaits approval"
    approver = f"policy: auto-execute up to ${mp.auto_execute_max_usd}"
    if record.state.value == "SIMULATED":  # not when an earlier run approved it already
        service.approve(mp.ctx, report["report_id"], approver=approver)
    try:
        record = service.execute(mp.ctx, report["report_id"], signers=mp.owner_signers)
    except LpbotError as exc:
        # the co-signer down or refusing, a key that cannot open: say why; nothing signs in
        # its place, and an approved rebalance that was not signed is left as it is
        now = mp.ctx.repo.get(record.id)
        unsigned = now is not None and now.state.value == "APPROVED"
        mp.notifier.notify(
            Alert(
                "not_signed" if unsigned else "failure",
                f"{mp.name}: rebalance {report['report_id']} "
                + ("not signed" if unsigned else "not executed"),
                f"{exc}" + ("; nothing was signed or sent" if unsigned else ""),
            )
        )
        raise
    if record.result is None or record.state.value != "CONFIRMED":
        if record.result is not None and record.result.get("tx_hash"):
            # a reverted transaction still paid its gas: reconcile recorded it in the ledger
            mp.tally.gas_wei += _gas_paid(mp, record.id, str(record.result["tx_hash"]))
            mp.reload_ledger()
        mp.notifier.notify(Alert("failure", f"{mp.name}: rebalance {record.id} {record.state}"))
        raise Refused(f"rebalance {record.id} ended {record.state.value}: {record.error}")
    result = record.result
    fees0, fees1 = (int(x) for x in report["dry_run"]["fees_collected"])
    mp.tally.fees_collected0 += fees0
    mp.tally.fees_collected1 += fees1
    record_confirmed(mp, result)
    follow_nft(mp, int(result["new_token_id"]))  # the store made the same move with CONFIRMED
    mp.opened_at = view.snapshot.block_timestamp
    how = "the module's operator key"
    if mp.ctx.via != "module":
        cosigned = {s.address for s in mp.owner_signers if isinstance(s, ReportSigner)}
        signed_by = [str(s["owner"]) for s in record.signatures]
        how = f"{len(signed_by)} Safe signatures"
        if cosigned & set(signed_by):
            how += " (one by the MPC owner: this host's party and the co-signer)"
    event = (
        f"rebalanced into [{decision.new_range.tick_lower}, {decision.new_range.tick_upper}) "
        f"as #{mp.token_id}: report {report['report_id']}, {how}, "
        f"gas {result['gas_used']:,}"
    )
    mp.tally.events.append(event)
    mp.notifier.notify(Alert("rebalanced", f"{mp.name}: {event}"))
    return event


def compound(mp: ManagedPosition, decision: Compound) -> str:
    """Collect the fees, swap what does not fit the range's ratio, increaseLiquidity: planned
    and dry-run, then executed where the auto-execute policy allows it, else asked for; the
    reinvested fees go to the ledger as fees collected and put back (never a deposit)."""
    from lpbot.execution.state import RebalanceState as S

    if decision.plan is None:
        return "hold (compounding advised, but the fees cannot pay for any liquidity)"
    waiting = [
        r
        for r in mp.ctx.repo.unfinished()
        if r.kind == "compound"
        and r.token_id == mp.token_id
        and r.chain_id == mp.ctx.chain_id  # one Safe address and NFT id on another chain
        and r.safe.lower() == mp.ctx.safe.lower()
        and r.state in (S.SIMULATED, S.APPROVED)
    ]
    for r in waiting:
        r = service.resume_one(mp.ctx, r)  # expired when its report is stale
        if not r.state.terminal:
            return f"compound {r.id} (report {r.report_id}) awaits approval"
    small = (
        mp.auto_execute_max_usd is not None
        and Decimal(str(decision.fees_usd)) <= mp.auto_execute_max_usd
    )
    mp.ctx.via = "module" if small and mp.auto_via == "module" else "multisig"
    why_text = f"{decision.reason}: {decision.reasons[-1] if decision.reasons else ''}"
    record, report, paths = service.plan_compound(mp.ctx, mp.token_id, why_text)
    module_refused: list[str] = []
    if not all(c["ok"] for c in report["checks"]) and mp.ctx.via == "module":
        # the module refuses it: an alert and a plan for the owners, never keys the bot holds;
        # the refused module plan is done with (it can never be approved)
        module_refused = _module_refused(mp, report, "compound")
        mp.ctx.repo.transition(record.id, S.SIMULATED, S.STALE, error="the module refused it")
        if any("RangeOffTwap" in r for r in module_refused):
            # the pool's TWAP is outside the range for now: compounding can wait for it to
            # come back, so the owners are not asked to sign what the module would take later
            return (
                "hold (compounding waits: the pool's TWAP is outside the range, where the "
                "module refuses deposits)"
            )
        mp.ctx.via = "multisig"
        record, report, paths = service.plan_compound(
            mp.ctx, mp.token_id, why_text + " (module refused)"
        )
    subject = f"position:{mp.name}:{mp.token_id}"
    can_sign, signing = bot_can_sign(mp.owner_signers, mp.allow_hot_quorum, report)
    auto, why = policy_approves(
        mp.sessions,
        report,
        mp.auto_execute_max_usd,
        can_sign=can_sign,
        subject=subject,
        signing=signing,
        module_refused=module_refused,
    )
    if not auto:
        mp.notifier.notify(
            Alert(
                "approval_needed",
                f"{mp.name}: compound {report['report_id']} awaits approval",
                f"{decision.reason}; {'; '.join(why)}; report {paths.get('html', '')}",
            )
        )
        return f"compound planned: report {report['report_id']} awaits approval"
    service.approve(
        mp.ctx,
        report["report_id"],
        approver=f"policy: auto-execute up to ${mp.auto_execute_max_usd}",
    )
    record = service.execute(mp.ctx, report["report_id"], signers=mp.owner_signers)
    if record.result is None or record.state != S.CONFIRMED:
        if record.result is not None and record.result.get("tx_hash"):
            # a reverted transaction still paid its gas: reconcile recorded it in the ledger
            mp.tally.gas_wei += _gas_paid(mp, record.id, str(record.result["tx_hash"]))
            mp.reload_ledger()
        mp.notifier.notify(Alert("failure", f"{mp.name}: compound {record.id} {record.state}"))
        raise Refused(f"compound {record.id} ended {record.state.value}: {record.error}")
    result = record.result
    collected = tuple(int(x) for x in result["collected"])
    mp.tally.fees_collected0 += collected[0]
    mp.tally.fees_collected1 += collected[1]
    wei = _gas_paid(mp, record.id, str(result["tx_hash"]))
    mp.tally.gas_wei += wei
    # its flows (nothing burned: the fees collected are all it moved) and gas were recorded in
    # the store's ledger when it was reconciled, as every route's are
    mp.reload_ledger()
    mp.tally.compounds += 1
    mp._last_seen = None  # the liquidity lpbot just added is not an outside change
    how = "the module's operator key" if mp.ctx.via == "module" else "2 Safe signatures"
    event = (
        f"compounded fees {collected[0]}/{collected[1]} (raw) into #{mp.token_id}: liquidity "
        f"+{result['new_liquidity']}, report {report['report_id']}, {how}, "
        f"gas {result['gas_used']:,}"
    )
    mp.tally.events.append(event)
    mp.notifier.notify(Alert("compounded", f"{mp.name}: {event}"))
    return event


def _health_gate(mp: ManagedPosition, view: PositionView, marks: Marks) -> str:
    """Why a rebalance into the position's pool is refused (it is below the health rule at the
    decision's snapshot and the position is not accepted), or "" to go on; the refusal is in
    the audit log each time and alerted once while the pool stays unhealthy."""
    from lpbot.execution.health import UnhealthyPool, health_at, refuse_unhealthy

    if mp.health_rule is None:
        return ""
    health = health_at(
        view.snapshot, marks, symbols=mp.symbols, decimals=mp.decimals, rule=mp.health_rule
    )
    try:
        refuse_unhealthy(health, what="rebalance", label=mp.name, accepted=mp.accept_unhealthy)
    except UnhealthyPool as exc:
        with mp.sessions() as s, s.begin():
            repo.append_audit(
                s,
                "health_gate",
                list(health.problems),
                subject=f"position:{mp.name}:{mp.token_id}",
                decision="refuse",
                data=health.to_json(),
            )
        if not mp._gate_alerted:
            mp.notifier.notify(Alert("pool_unhealthy", f"{mp.name}: rebalance refused", str(exc)))
            mp._gate_alerted = True
        return f"hold: {exc}"
    return ""


def _alert_expected_loss(mp: ManagedPosition, view: PositionView) -> float | None:
    """Once when a managed pool turns negative for the model (its fees below its LVR, rule
    "ev"): every range there is expected to lose; a person decides whether to withdraw, or
    ``policy.on_expected_loss = "withdraw"`` does (the caller, with the ratio returned).
    The pool's fee-to-LVR ratio when below 1, else None."""
    if mp.policy.rebalance_rule != "ev":
        return None
    pool = pool_snapshot(view.snapshot, *mp.decimals)
    ratio = mp.policy.pool_fee_to_lvr(pool, view.history, view.market)
    if not ratio < 1:  # nan (no history yet) or fees at or above LVR
        mp.loss_alerted = mp.withdraw_asked = False
        return None
    if mp.on_expected_loss == "withdraw":
        return ratio  # the withdraw's own alerts say it
    if not mp.loss_alerted:
        mp.notifier.notify(
            Alert(
                "expected_loss",
                f"{mp.name}: the model expects #{mp.token_id} to lose (fee/LVR {ratio:.2f})",
                "the pool's fees are below what arbitrage takes (LVR) at its volatility: every "
                "range loses there; withdrawing to tokens loses least",
            )
        )
        mp.loss_alerted = True
    return ratio


def check_withdrawn(mp: ManagedPosition) -> bool:
    """Whether ``mp``'s NFT was withdrawn (a confirmed withdraw in the store, by the daemon or
    ``lpbot rebalance execute``); the first time it is seen, its hedge is brought to the new
    delta, zero (``after_withdraw``)."""
    if mp.withdrawn:
        return True
    with mp.sessions() as s:
        found = repo.withdrawal_of(s, mp.ctx.chain_id, mp.token_id)
    if found is None:
        return False
    after_withdraw(mp)
    return True


def withdrawn_note(mp: ManagedPosition) -> str | None:
    """What a job of a withdrawn position says instead of running; None while it is managed."""
    if check_withdrawn(mp):
        if mp.regime is not None and mp.regime.withdrawn_for_stress:
            return (
                f"withdrawn for the stressed market: #{mp.token_id}'s liquidity and fees are in "
                "the Safe; waits there until the owners open it again"
            )
        return f"withdrawn: #{mp.token_id}'s liquidity and fees are in the Safe; not managed"
    return None


def after_withdraw(mp: ManagedPosition) -> str:
    """A confirmed withdraw: the position is no longer managed, and its hedge goes to the
    position's delta now, zero (the hedge path's own sync on the emptied NFT, its orders
    recorded as any sync's)."""
    mp.withdrawn = True
    mp._last_seen = None  # lpbot emptied the NFT itself: no outside change to alert on
    if mp.hedge is None:
        _last_snapshot(mp)
        return "no hedge"
    snap = mp.reader.fetch_pool_state(mp.pool, token_ids=[mp.token_id], twap_seconds=(0,))
    try:
        result = mp.hedge_runner.sync(snap) if mp.hedge_runner else mp.hedge.sync(Decimal(0))
    except LpbotError as exc:
        mp.notifier.notify(
            Alert("failure", f"{mp.name}: the hedge of the withdrawn position not synced", str(exc))
        )
        _last_snapshot(mp)
        return f"hedge not synced: {exc}"
    for alert in result.alerts:
        mp.notifier.notify(Alert("hedge_margin", f"{mp.name}: {alert}"))
    _last_snapshot(mp)
    return f"hedge {result.hedge:+.4f} vs LP delta {result.lp_delta:.4f}"


def _last_snapshot(mp: ManagedPosition) -> None:
    """The withdrawn NFT's last snapshot (nothing in it, the withdraw's flows and gas in the
    ledger, the collected tokens idle): the ledger's point after the withdraw, which status,
    export and the dashboard read. Only where the position's ledger has started."""
    if not mp.deposit_recorded:
        return
    mp._last_seen = None  # emptied by lpbot's withdraw, not by someone else
    mp.was_in_range = False  # no range exit to report for an empty NFT
    try:
        monitor(mp)
    except LpbotError as exc:
        log.error("%s: no snapshot after the withdraw: %s", mp.name, exc)


def plan_withdraw(mp: ManagedPosition, reason: str) -> RebalanceRecord:
    """Withdraw ``mp``'s liquidity and fees to the Safe for ``reason`` (the model's expected
    loss, a stressed market): planned and dry-run, then executed where the auto-execute policy
    allows it (through the module when it is the configured route and it accepts the
    withdraw), else the owners are asked, once (it heads ``lpbot status``'s approvals). A
    withdraw waiting or under way is returned as it is; one confirmed ends the position's
    management and flattens its hedge to the new delta. Returns the withdraw's record."""
    from lpbot.execution.state import RebalanceState as S

    ctx = mp.ctx
    waiting = service.withdraw_under_way(ctx, mp.token_id)
    if waiting is not None and waiting.state in (S.SIGNED, S.SUBMITTED):
        waiting = service.resume_one(ctx, waiting)  # sent: finished, never sent twice
        if waiting.state == S.CONFIRMED:
            after_withdraw(mp)
            return waiting
    use_module = mp.auto_execute_max_usd is not None and mp.auto_via == "module"
    ctx.via = "module" if use_module else "multisig"
    record, report, paths = service.plan_withdraw(ctx, mp.token_id, reason)
    if "module_tx" in report and record.state == S.SIMULATED:
        over = Decimal(report["dry_run"]["value_usd"]) > (mp.auto_execute_max_usd or 0)
        module_refused: list[str] = []
        if not all(c["ok"] for c in report["checks"]):
            module_refused = _module_refused(mp, report, "withdraw")
        if module_refused or over:
            # refused by the module, or above the auto-execute limit: a Safe transaction for
            # the owners instead; the module plan is done with
            ctx.repo.transition(
                record.id,
                S.SIMULATED,
                S.STALE,
                error="the module refused it" if module_refused else "above the limit",
            )
            ctx.via = "multisig"
            suffix = " (module refused)" if module_refused else ""
            record, report, paths = service.plan_withdraw(ctx, mp.token_id, reason + suffix)
    if record.state == S.SIMULATED:
        subject = f"position:{mp.name}:{mp.token_id}"
        can_sign, signing = bot_can_sign(mp.owner_signers, mp.allow_hot_quorum, report)
        auto, why = policy_approves(
            mp.sessions,
            report,
            mp.auto_execute_max_usd,
            can_sign=can_sign,
            subject=subject,
            signing=signing,
        )
        if not auto:
            # asked once: not again for a withdraw planned before (a restart finds it
            # waiting), nor for the fresh report of one whose report went stale
            if paths and not mp.withdraw_asked:
                mp.notifier.notify(
                    Alert(
                        "approval_needed",
                        f"{mp.name}: withdraw {report['report_id']} awaits approval",
                        f"{reason}; {'; '.join(why)}; report {paths.get('html', '')}",
                    )
                )
            mp.withdraw_asked = True
            return record
        service.approve(
            ctx,
            report["report_id"],
            approver=f"policy: auto-execute up to ${mp.auto_execute_max_usd}",
        )
        record = ctx.repo.get(record.id) or record
    if record.state == S.APPROVED and (
        "module_tx" in report or bot_can_sign(mp.owner_signers, mp.allow_hot_quorum, report)[0]
    ):
        record = service.execute(ctx, report["report_id"], signers=mp.owner_signers)
    if record.state == S.CONFIRMED:
        assert record.result is not None
        mp.reload_ledger()
        hedge = after_withdraw(mp)
        received = record.result["collected"]
        event = (
            f"withdrew #{mp.token_id} to the Safe: {received[0]}/{received[1]} (raw), report "
            f"{report['report_id']}, gas {record.result['gas_used']:,}; {hedge}"
        )
        mp.tally.events.append(event)
        mp.notifier.notify(Alert("withdrawn", f"{mp.name}: {event}"))
    elif record.state.terminal:
        mp.notifier.notify(Alert("failure", f"{mp.name}: withdraw {record.id} {record.state}"))
    return record


def _withdraw_on_loss(mp: ManagedPosition, ratio: float) -> str:
    """``policy.on_expected_loss = "withdraw"``: the pool's fees are below its LVR."""
    reason = (
        f"expected loss: the pool's fees are {ratio:.2f} of its LVR (fee/LVR {ratio:.2f} < 1) "
        "at its volatility: every range loses there; withdrawing to tokens loses least "
        "(policy.on_expected_loss = withdraw)"
    )
    record = plan_withdraw(mp, reason)
    if record.state.value == "CONFIRMED":
        return mp.tally.events[-1] if mp.tally.events else f"withdrew #{mp.token_id}"
    return f"withdraw {record.id} ({record.state.value}): {reason}"


def open_position(po: PendingOpen) -> str:
    """Open ``po``'s position: plan and dry-run (once: a second call finds the first open),
    then execute where the auto-execute policy allows it, else ask the owners; on
    confirmation record the NFT from the receipt as the position's (``po.token_id``)."""
    from lpbot.execution.decide import open_range
    from lpbot.execution.health import UnhealthyPool
    from lpbot.execution.state import RebalanceState as S
    from lpbot.jobs.runtime import adopt_opened
    from lpbot.position_commands import ExpectedLoss

    ctx = po.ctx
    ctx.via = "multisig"  # opening new capital is the owners' (or their policy's) decision
    choose = po.choose_range or (
        lambda snap: open_range(ctx.w3, snap, po.strategy, decimals=po.decimals)
    )
    try:
        record, report, paths = service.plan_open(
            ctx,
            po.name,
            po.pool,
            po.capital,
            choose,
            f"open {po.name} with {po.capital_text} ([positions.open])",
        )
    except (ExpectedLoss, UnhealthyPool) as exc:
        # nothing recorded: a person decides (or the pool recovers), the job asks again later
        kind = "pool_unhealthy" if isinstance(exc, UnhealthyPool) else "expected_loss"
        if po.loss_alerted != kind:
            po.notifier.notify(Alert(kind, f"{po.name}: open refused", str(exc)))
            po.loss_alerted = kind
        return f"open waits: {exc}"
    po.loss_alerted = ""
    subject = f"position:{po.name}:open"
    if record.state in (S.SIGNED, S.SUBMITTED):
        record = service.resume_one(ctx, record)
    elif record.state == S.PLANNED:
        return f"open {record.id} is being planned"
    elif record.state in (S.SIMULATED, S.APPROVED):
        assert report is not None
        if record.state == S.SIMULATED:
            auto, why = policy_approves(
                po.sessions,
                report,
                po.auto_execute_max_usd,
                can_sign=bot_can_sign(po.owner_signers, po.allow_hot_quorum, report)[0],
                subject=subject,
                signing=bot_can_sign(po.owner_signers, po.allow_hot_quorum, report)[1],
            )
            if not auto:
                if paths:  # newly planned: ask once
                    po.notifier.notify(
                        Alert(
                            "approval_needed",
                            f"{po.name}: open {report['report_id']} awaits approval",
                            f"{'; '.join(why)}; report {paths.get('html', '')}",
                        )
                    )
                return f"open planned: report {report['report_id']} awaits approval"
            service.approve(
                ctx,
                report["report_id"],
                approver=f"policy: auto-execute up to ${po.auto_execute_max_usd}",
            )
        if not po.owner_signers:
            return f"open {record.id} approved: awaits the owners' signatures"
        record = service.execute(ctx, report["report_id"], signers=po.owner_signers)
    if record.state == S.CONFIRMED:
        assert record.result is not None
        po.token_id = adopt_opened(po.sessions, ctx, po.name, record)
        npm = ctx.contract("NonfungiblePositionManager").functions.positions(po.token_id).call()
        event = (
            f"opened #{po.token_id} in [{npm[5]}, {npm[6]}) with liquidity {npm[7]} from "
            f"{po.capital_text}: open {record.id}, gas {record.result['gas_used']:,}"
        )
        po.notifier.notify(Alert("opened", f"{po.name}: {event}"))
        return event
    if record.state.terminal:
        po.notifier.notify(Alert("failure", f"{po.name}: open {record.id} {record.state.value}"))
        raise Refused(f"open {record.id} ended {record.state.value}: {record.error}")
    return f"open {record.id}: {record.state.value}"


def _gas_paid(mp: ManagedPosition, rebalance_id: int, tx_hash: str) -> int:
    """The wei a mined transaction of the rebalance paid, as the store's transactions table
    recorded it from its receipt; the receipt itself only for one lpbot did not send (the
    Safe transaction executed by someone else)."""
    for t in mp.ctx.repo.transactions(rebalance_id):
        if t.tx_hash == tx_hash and t.gas_used is not None:
            return t.fee_wei
    receipt = mp.ctx.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def record_confirmed(mp: ManagedPosition, result: dict[str, Any]) -> None:
    """A confirmed rebalance's flows and gas in the position's ledger (at the marks just before
    its block), once: a rebalance a restart found confirmed is recorded like one just made."""
    tx_hash = str(result["tx_hash"])
    receipt = mp.ctx.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    mp.tally.gas_wei += wei
    with mp.sessions() as s:
        start = ledger_store.load(s, mp.name)
    if start is not None and any(g.tx_hash == tx_hash for _b, _f, g in start.rebalances):
        # reconcile recorded it (``ExecutionContext.on_reconciled``, every route): take it
        mp.reload_ledger()
        mp.tally.rebalances += 1
        return
    # the marks just before the rebalance's block: its swap's fee and impact are against them
    at = mp.prices(mp.fetch_marks(int(result["block"]) - 1))
    gas = GasPaid(tx_hash, wei, at.eth, failed=False)
    flow = _flow(result, at)
    receipt_block = mp.ctx.w3.eth.get_block(int(result["block"]))
    mp.tally.gas.append(gas)
    mp.tally.flows.append(flow)
    mp.tally.rebalances += 1
    with mp.sessions() as s, s.begin():
        # the store closed the old NFT and recorded the new one with CONFIRMED (one transaction)
        ledger_store.record_rebalance(
            s, mp.name, flow, gas, int(result["block"]), int(receipt_block["timestamp"])
        )


# the flows of a reconciled rebalance (kept under this name for the backtest's tests)
_flow = ledger_store.flow_of


def hedge_sync(mp: ManagedPosition) -> str:
    """Keep the perp short within the band of the position's delta."""
    if mp.hedge is None:
        return "no hedge configured"
    regime_band(mp)
    snap = mp.reader.fetch_pool_state(mp.pool, token_ids=[mp.token_id], twap_seconds=(0,))
    try:
        mp.fetch_marks(snap.block_number)
    except NoPriceRoute as exc:
        # a position that cannot be valued is not hedged: a trade would be blind to its value
        mp.notifier.notify(
            Alert(
                "failure", f"{mp.name}: hedge not synced, the position cannot be valued", str(exc)
            )
        )
        return f"not traded: {exc}"
    d0, d1 = mp.decimals
    delta = lp_delta(
        snap,
        mp.token_id,
        decimals0=d0,
        decimals1=d1,
        risky=mp.hedge_risky,  # type: ignore[arg-type]
        include_fees=delta_includes_fees(mp.hedge_runner),
    )
    try:
        result = mp.hedge_runner.sync(snap) if mp.hedge_runner else mp.hedge.sync(delta)
    except LpbotError as exc:
        mp.notifier.notify(Alert("failure", f"{mp.name}: hedge sync failed", str(exc)))
        raise
    for alert in result.alerts:
        mp.notifier.notify(Alert("hedge_margin", f"{mp.name}: {alert}"))
    if result.orders:
        return f"hedge {result.hedge:+.4f} vs LP delta {result.lp_delta:.4f} (traded)"
    return f"hedge {result.hedge:+.4f} vs LP delta {result.lp_delta:.4f}"


def run_safely(name: str, fn: Callable[[], Any], notifier: Notifier) -> Any:
    """Run a job body: lpbot's own errors become an alert and a logged error, not a crash."""
    try:
        return fn()
    except Refused as exc:  # a guard or a policy said no: expected, nothing was changed
        log.warning("job %s: refused: %s", name, exc)
        return f"refused: {exc}"
    except LpbotError as exc:
        # lpbot's own error says what happened and what next: one line, not a traceback
        # (``--debug`` logs keep it at debug level); anything else is a bug and propagates
        log.error("job %s failed: %s", name, exc)
        log.debug("job %s failed", name, exc_info=True)
        notifier.notify(Alert("failure", f"job {name} failed", str(exc)))
        return None
