"""The ledger from the store: every surface (demo, status, report, export) reads it here.

What the monitor stores is enough to derive every figure again: each snapshot's raw amounts,
uncollected fees, marks (with their sources) and hedge figures; the deposit and its marks
(audit entry ``ledger_deposit``); each rebalance's token flows, the marks before its block and
its gas by transaction hash (``ledger_rebalance``). ``history`` recomputes the ledger
(``analytics.ledger.compute_ledger``) at every snapshot of a position, across the NFTs that
replaced each other under its name.

The passive full-range benchmark (``analytics.full_range``) opens with the deposit's tokens at
the pool's state recorded with the deposit (its price and fee growth at the deposit's block)
and is valued at every snapshot from the pool's fee growth stored with it. A deposit recorded
before the store kept fee growth has none: the benchmark then opens at the first snapshot that
has it, with the deposit's tokens held until then, and says so (``FullRangeFigures.note``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lpbot.analytics.full_range import FullRangeOpen, PoolFeeState, open_full_range, value_at
from lpbot.analytics.ledger import (
    FullRangeFigures,
    GasPaid,
    HedgeFigures,
    Ledger,
    PathSums,
    Prices,
    RebalanceFlow,
    full_range_figures,
    full_range_note,
    ledger_at,
)
from lpbot.errors import NeedsAttention
from lpbot.pricing.base import Marks
from lpbot.pricing.marks import Pricer
from lpbot.store import repo
from lpbot.store.models import AuditEntry, Position, PositionSnapshot

DEPOSIT = "ledger_deposit"
REBALANCE = "ledger_rebalance"
GAS = "ledger_gas"  # a transaction that paid gas but moved nothing (a failed one)
OPENING = "ledger_opening"  # a transaction of the opening (approvals, the mint): its gas


def _subject(label: str) -> str:
    return f"ledger:{label}"


def _prices_json(p: Prices) -> dict[str, Any]:
    return {
        "token0": str(p.token0),
        "token1": str(p.token1),
        "eth": str(p.eth),
        "btc": None if p.btc is None else str(p.btc),
        "block": p.block,
    }


def _prices(d: dict[str, Any]) -> Prices:
    btc = d.get("btc")
    return Prices(
        Decimal(d["token0"]),
        Decimal(d["token1"]),
        Decimal(d["eth"]),
        None if btc is None else Decimal(btc),
        block=int(d["block"]),
    )


def _pair(x: Sequence[Any]) -> tuple[int, int]:
    return int(x[0]), int(x[1])


def hedge_json(h: HedgeFigures) -> str:
    return json.dumps(
        {k: str(getattr(h, k)) for k in ("realised", "unrealised", "fees", "funding")}
    )


def fee_state_json(p: PoolFeeState) -> dict[str, Any]:
    """A pool's fee state as JSON (the Q128 figures as decimal strings)."""
    return {
        "block": p.block,
        "sqrt_price_x96": str(p.sqrt_price_x96),
        "tick": p.tick,
        "fee": p.fee,
        "tick_spacing": p.tick_spacing,
        "fee_growth_global": [str(p.fee_growth_global0_x128), str(p.fee_growth_global1_x128)],
        "lower_outside": None if p.lower_outside is None else [str(x) for x in p.lower_outside],
        "upper_outside": None if p.upper_outside is None else [str(x) for x in p.upper_outside],
    }


def _fee_state(d: dict[str, Any]) -> PoolFeeState:
    lower, upper = d.get("lower_outside"), d.get("upper_outside")
    return PoolFeeState(
        block=int(d["block"]),
        sqrt_price_x96=int(d["sqrt_price_x96"]),
        tick=int(d["tick"]),
        fee=int(d["fee"]),
        tick_spacing=int(d["tick_spacing"]),
        fee_growth_global0_x128=int(d["fee_growth_global"][0]),
        fee_growth_global1_x128=int(d["fee_growth_global"][1]),
        lower_outside=None if lower is None else _pair(lower),
        upper_outside=None if upper is None else _pair(upper),
    )


def snapshot_fee_state(snap: PositionSnapshot) -> PoolFeeState | None:
    """The pool's price and fee growth a snapshot keeps (None: taken before they were kept)."""
    if (
        snap.fee_growth_global0_x128 is None
        or snap.fee_growth_global1_x128 is None
        or snap.pool_fee is None
        or snap.tick_spacing is None
        or snap.block_number is None
    ):
        return None
    lo0, lo1 = snap.full_range_lower_outside0_x128, snap.full_range_lower_outside1_x128
    up0, up1 = snap.full_range_upper_outside0_x128, snap.full_range_upper_outside1_x128
    return PoolFeeState(
        block=int(snap.block_number),
        sqrt_price_x96=int(snap.sqrt_price_x96),
        tick=int(snap.tick),
        fee=int(snap.pool_fee),
        tick_spacing=int(snap.tick_spacing),
        fee_growth_global0_x128=int(snap.fee_growth_global0_x128),
        fee_growth_global1_x128=int(snap.fee_growth_global1_x128),
        lower_outside=None if lo0 is None or lo1 is None else (int(lo0), int(lo1)),
        upper_outside=None if up0 is None or up1 is None else (int(up0), int(up1)),
    )


def record_deposit(
    session: Session,
    label: str,
    *,
    deposit: tuple[int, int],
    decimals: tuple[int, int],
    symbols: tuple[str, str],
    marks: Prices,
    fees_at_start: tuple[int, int] = (0, 0),
    opening: Sequence[tuple[int, int, GasPaid]] = (),
    pool: PoolFeeState | None = None,
) -> None:
    """The ledger's start: the deposit and its marks, the pool's price and fee growth at the
    deposit's block (where the full-range benchmark opens; None when unknown: it opens at the
    first snapshot that has them), and the gas of the transactions that opened the position
    (block, block time, gas), when lpbot opened it."""
    if pool is not None and pool.block != marks.block:
        raise ValueError(f"pool state of block {pool.block} for a deposit at {marks.block}")
    repo.append_audit(
        session,
        DEPOSIT,
        [f"deposit {deposit[0]} {symbols[0]} + {deposit[1]} {symbols[1]} (raw)"],
        subject=_subject(label),
        data={
            "deposit": [str(a) for a in deposit],
            "fees_at_start": [str(a) for a in fees_at_start],
            "decimals": list(decimals),
            "symbols": list(symbols),
            "marks": _prices_json(marks),
            **({"full_range": fee_state_json(pool)} if pool is not None else {}),
        },
    )
    for block, timestamp, gas in opening:
        repo.append_audit(
            session,
            OPENING,
            [f"opening transaction {gas.tx_hash} paid {gas.wei} wei"],
            subject=_subject(label),
            data={"block": block, "timestamp": timestamp, "gas": _gas_json(gas)},
        )


def record_rebalance(
    session: Session,
    label: str,
    flow: RebalanceFlow,
    gas: GasPaid,
    block: int,
    timestamp: int,
    *,
    what: str = "rebalance",
) -> None:
    """A rebalance's flows, or a compound's (``what="compound"``: nothing burned, the fees
    collected and reinvested in the same NFT as ``minted``; never a deposit)."""
    repo.append_audit(
        session,
        REBALANCE,
        [f"{what} in {gas.tx_hash}"],
        subject=_subject(label),
        data={
            "what": what,
            "block": block,
            "timestamp": timestamp,
            "burned": [str(a) for a in flow.burned],
            "fees": [str(a) for a in flow.fees],
            "swap_in": [str(a) for a in flow.swap_in],
            "swap_out": [str(a) for a in flow.swap_out],
            "minted": [str(a) for a in flow.minted],
            "marks": _prices_json(flow.marks),
            "gas": _gas_json(gas),
            **({"slippage_usd": str(flow.slippage_usd)} if flow.slippage_usd else {}),
        },
    )


def _gas_json(gas: GasPaid) -> dict[str, Any]:
    return {
        "tx_hash": gas.tx_hash,
        "wei": str(gas.wei),
        "eth_usd": str(gas.eth_usd),
        "failed": gas.failed,
    }


def record_gas(session: Session, label: str, gas: GasPaid, block: int, timestamp: int) -> None:
    repo.append_audit(
        session,
        GAS,
        [f"{'failed ' if gas.failed else ''}transaction {gas.tx_hash} paid {gas.wei} wei"],
        subject=_subject(label),
        data={"block": block, "timestamp": timestamp, "gas": _gas_json(gas)},
    )


def ledger_prices(marks: Marks, symbols: tuple[str, str]) -> Prices:
    """The ledger's marks of the pool's two tokens, ETH and BTC (when priced) at their block."""
    btc = marks.marks.get("WBTC")
    return Prices(
        marks.usd(symbols[0]),
        marks.usd(symbols[1]),
        marks.usd("WETH"),
        btc.usd if btc else None,
        block=marks.block,
    )


def flow_of(result: Mapping[str, Any], marks: Prices) -> RebalanceFlow:
    """A reconciled rebalance's token flows (``execution.service.reconcile``'s outcome)."""
    burned = tuple(int(x) for x in result["decreased"])
    collected = tuple(int(x) for x in result["collected"])
    deltas = tuple(int(x) for x in result["swap"]) if result["swap"] else (0, 0)
    minted = tuple(int(x) for x in result["minted"])
    return RebalanceFlow(
        burned=(burned[0], burned[1]),
        fees=(collected[0] - burned[0], collected[1] - burned[1]),
        swap_in=(max(deltas[0], 0), max(deltas[1], 0)),
        swap_out=(max(-deltas[0], 0), max(-deltas[1], 0)),
        minted=(minted[0], minted[1]),
        marks=marks,
    )


def recorded_hashes(session: Session, label: str) -> set[str]:
    """The transactions (by hash, lower case) whose gas the ledger of ``label`` already has."""
    entries = session.scalars(
        select(AuditEntry).where(
            AuditEntry.subject == _subject(label),
            AuditEntry.kind.in_((REBALANCE, GAS, OPENING)),
        )
    ).all()
    return {str((e.data or {})["gas"]["tx_hash"]).lower() for e in entries}


def record_reconciled(
    session: Session,
    label: str,
    outcome: Mapping[str, Any],
    *,
    gas_wei: int,
    confirmed: bool,
    marks: Prices,
    timestamp: int,
    what: str = "rebalance",
) -> tuple[RebalanceFlow | None, GasPaid] | None:
    """The ledger entry of a reconciled rebalance transaction: its flows and gas when it
    rebalanced, its gas alone when it reverted; ``marks`` are those just before its block (its
    swap's fee and impact are against them). Once per transaction hash: None when the ledger
    has it already (a resumed rebalance reconciled again)."""
    tx_hash = str(outcome["tx_hash"])
    if tx_hash.lower() in recorded_hashes(session, label):
        return None
    gas = GasPaid(tx_hash, gas_wei, marks.eth, failed=not confirmed)
    block = int(outcome["block"])
    if not confirmed:
        record_gas(session, label, gas, block, timestamp)
        return None, gas
    flow = flow_of(outcome, marks)
    record_rebalance(session, label, flow, gas, block, timestamp, what=what)
    return flow, gas


def reconciled_recorder(
    sessions: sessionmaker[Session],
    w3: Any,
    pricer: Pricer,
    names: Callable[[int], Sequence[str]],
) -> Callable[[Any, dict[str, Any], dict[str, Any], Any, bool], None]:
    """``ExecutionContext.on_reconciled``: a reconciled rebalance's ledger entry, whichever
    route executed it (the daemon, ``lpbot rebalance execute``, ``resume``), under the first of
    ``names(token_id)`` (the positions that manage the rebalanced NFT) with a recorded deposit;
    nothing when none has one (no ledger has started, so none can count it)."""

    def on_reconciled(
        record: Any, outcome: dict[str, Any], report: dict[str, Any], receipt: Any, ok: bool
    ) -> None:
        what = str(getattr(record, "kind", "rebalance"))
        if what not in ("rebalance", "compound", "withdraw"):
            return  # an open: the ledger of the position it opens starts after it
        # a withdraw's flows: all burned and collected, nothing minted (idle in the Safe)
        candidates = names(int(record.token_id))
        tx_hash = str(outcome["tx_hash"]).lower()
        with sessions() as s:
            with_deposit = set(labels(s))
            label = next((n for n in candidates if n in with_deposit), None)
            if label is None or tx_hash in recorded_hashes(s, label):
                return
        # the chain is read outside any transaction: a slow node holds no write lock that the
        # other chains' jobs wait for (SQLite's one writer)
        symbols = (str(report["tokens"][0]["symbol"]), str(report["tokens"][1]["symbol"]))
        block = int(receipt["blockNumber"])
        marks = ledger_prices(pricer.fetch_marks(list(symbols), block - 1), symbols)
        timestamp = int(w3.eth.get_block(block)["timestamp"])
        wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        with sessions() as s, s.begin():  # once per hash (``record_reconciled`` checks again)
            record_reconciled(
                s, label, outcome, gas_wei=wei, confirmed=ok, marks=marks, timestamp=timestamp,
                what=what,
            )  # fmt: skip

    return on_reconciled


@dataclass(frozen=True)
class LedgerPoint:
    snapshot: PositionSnapshot
    token_id: int
    tick_lower: int
    tick_upper: int
    ledger: Ledger

    @property
    def in_range(self) -> bool:
        return self.tick_lower <= self.snapshot.tick < self.tick_upper


@dataclass(frozen=True)
class LedgerHistory:
    label: str
    symbols: tuple[str, str]
    decimals: tuple[int, int]
    deposit: tuple[int, int]
    points: list[LedgerPoint]
    rebalances: list[tuple[int, RebalanceFlow | None, GasPaid]]  # (block, flow, gas)
    times: list[int]  # each rebalance's block time (unix seconds)
    full_range: FullRangeOpen | None = None  # the benchmark's opening (None: no fee growth)
    full_range_late: bool = False  # it opens after the deposit (no fee growth before)
    full_range_marks: Prices | None = None  # the marks it opened at

    @property
    def full_range_note(self) -> str:
        """Where the full-range benchmark starts, or why there is none, in words."""
        if self.full_range is None:
            return "no full-range benchmark: no snapshot carries the pool's fee growth"
        return full_range_note(self.full_range.at.block, self.full_range_late)

    @property
    def last(self) -> Ledger | None:
        return self.points[-1].ledger if self.points else None


def mark_sources_json(prices: Prices, marks: Marks) -> str:
    """What a snapshot keeps of its marks: the exact USD prices used, and each mark's source,
    route, block and time."""
    return json.dumps(
        {
            "prices": _prices_json(prices),
            "sources": {
                t: [m.source, m.route_text, m.block, m.timestamp] for t, m in marks.marks.items()
            },
        }
    )


def snapshot_prices(snap: PositionSnapshot) -> Prices:
    """The exact marks a snapshot was valued at."""
    stored = json.loads(snap.mark_sources) if snap.mark_sources else None
    if not stored or "prices" not in stored:
        raise NeedsAttention(f"snapshot {snap.id} has no marks (taken before marks were stored)")
    return _prices(stored["prices"])


@dataclass(frozen=True)
class LedgerStart:
    """What the store knows of a position's ledger apart from its snapshots."""

    deposit: tuple[int, int]
    fees_at_start: tuple[int, int]
    decimals: tuple[int, int]
    symbols: tuple[str, str]
    entry: Prices
    rebalances: list[tuple[int, RebalanceFlow | None, GasPaid]]  # (block, flow, gas)
    times: list[int]
    pool: PoolFeeState | None = None  # the pool at the deposit's block (the full range's open)
    opening_gas: tuple[GasPaid, ...] = ()  # the opening's transactions (lpbot opened it)


def load(session: Session, label: str) -> LedgerStart | None:
    """The deposit, its marks and every recorded rebalance and gas payment of ``label``."""
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.subject == _subject(label)).order_by(AuditEntry.id)
    ).all()
    deposit = next((e for e in entries if e.kind == DEPOSIT), None)
    if deposit is None:
        return None
    d: dict[str, Any] = deposit.data or {}
    rebalances: list[tuple[int, RebalanceFlow | None, GasPaid]] = []
    times: list[int] = []
    opening_gas: list[GasPaid] = []
    for e in entries:
        if e.kind not in (REBALANCE, GAS, OPENING):
            continue
        r: dict[str, Any] = e.data or {}
        g = r["gas"]
        flow = (
            RebalanceFlow(
                _pair(r["burned"]),
                _pair(r["fees"]),
                _pair(r["swap_in"]),
                _pair(r["swap_out"]),
                _pair(r["minted"]),
                _prices(r["marks"]),
                Decimal(r.get("slippage_usd", 0)),
            )
            if e.kind == REBALANCE
            else None
        )
        gas = GasPaid(g["tx_hash"], int(g["wei"]), Decimal(g["eth_usd"]), bool(g["failed"]))
        if e.kind == OPENING:
            opening_gas.append(gas)
        rebalances.append((int(r["block"]), flow, gas))
        times.append(int(r.get("timestamp", 0)))
    return LedgerStart(
        deposit=_pair(d["deposit"]),
        fees_at_start=_pair(d.get("fees_at_start", (0, 0))),
        decimals=_pair(d["decimals"]),
        symbols=(str(d["symbols"][0]), str(d["symbols"][1])),
        entry=_prices(d["marks"]),
        rebalances=rebalances,
        times=times,
        pool=_fee_state(d["full_range"]) if d.get("full_range") else None,
        opening_gas=tuple(opening_gas),
    )


def history(session: Session, label: str) -> LedgerHistory:
    """The ledger of the position named ``label`` at every block one of its NFTs was
    snapshotted at (the block's last snapshot: several at one block hold the same state)."""
    start = load(session, label)
    if start is None:
        raise NeedsAttention(f"position {label}: no deposit recorded, so no ledger")
    decimals, symbols, entry = start.decimals, start.symbols, start.entry
    rebalances, times = start.rebalances, start.times
    positions = session.scalars(
        select(Position).where(Position.label == label).order_by(Position.id)
    ).all()
    token_of = {p.id: p.token_id for p in positions}
    ranges = {p.id: (p.tick_lower, p.tick_upper) for p in positions}
    snaps = session.scalars(
        select(PositionSnapshot)
        .where(PositionSnapshot.position_id.in_(list(token_of)))
        .order_by(PositionSnapshot.block_number, PositionSnapshot.id)
    ).all()
    points: list[LedgerPoint] = []
    deposit_amounts = start.deposit
    sums = PathSums(start=deposit_amounts)
    k = 0
    seen: dict[int, PositionSnapshot] = {}
    # the full-range benchmark: the deposit's tokens (those held) at the deposit's pool state,
    # else at the first snapshot with one; it pays the real opening's gas
    held = (
        deposit_amounts[0] + start.fees_at_start[0],
        deposit_amounts[1] + start.fees_at_start[1],
    )
    fr: FullRangeOpen | None = None
    fr_marks = entry
    fr_late = False
    if start.pool is not None and max(held) > 0:
        fr = open_full_range(held, start.pool)
    fr_gas = sum((g.usd for g in start.opening_gas), Decimal(0))
    for snap in snaps:
        block = int(snap.block_number or 0)
        if block < entry.block:
            continue  # taken before the ledger started (the deposit's marks are at its block)
        before = seen.get(snap.position_id)
        seen[snap.position_id] = snap
        by_lpbot = before is not None and any(
            int(before.block_number or 0) < b <= block for b, _flow, _gas in rebalances
        )  # a compound or a withdraw of the NFT in between: its flows are in the ledger
        if (
            before is not None
            and not by_lpbot
            and (
                int(snap.liquidity) != int(before.liquidity)
                or snap.fees0 < before.fees0
                or snap.fees1 < before.fees1
            )
        ):
            # lpbot never adds to, takes from or collects an NFT it keeps (a rebalance mints a
            # new one): liquidity added or removed, or fees collected, by someone else would be
            # counted as IL or lost fees; refuse rather than print a wrong ledger
            raise NeedsAttention(
                f"position {label}: #{token_of[snap.position_id]} changed outside lpbot between "
                f"blocks {before.block_number} and {block} (liquidity {before.liquidity} -> "
                f"{snap.liquidity}, fees owed {before.fees0}/{before.fees1} -> "
                f"{snap.fees0}/{snap.fees1}): the ledger cannot explain value against holding "
                "past that"
            )
        while k < len(rebalances) and rebalances[k][0] <= block:
            _, flow, gas = rebalances[k]
            sums = (sums.fold(flow, decimals) if flow is not None else sums).pay(gas)
            k += 1
        h = json.loads(snap.hedge) if snap.hedge else {}
        hedge = HedgeFigures(**{key: Decimal(v) for key, v in h.items()})
        marks = snapshot_prices(snap)
        pool_now = snapshot_fee_state(snap)
        if fr is None and pool_now is not None and max(held) > 0:
            fr, fr_marks, fr_late = open_full_range(held, pool_now), marks, block > entry.block
        benchmark: FullRangeFigures | None = None
        if fr is not None and pool_now is not None and block >= fr.at.block:
            benchmark = full_range_figures(
                value_at(fr, pool_now),
                marks=marks,
                opened_at=fr_marks,
                decimals=decimals,
                gas_usd=fr_gas,
                late=fr_late,
            )
        led = ledger_at(
            sums,
            decimals=decimals,
            deposit=deposit_amounts,
            entry=entry,
            principal=(snap.amount0, snap.amount1),
            uncollected=(snap.fees0, snap.fees1),
            marks=marks,
            hedge=hedge,
            fees_at_start=start.fees_at_start,
            full_range=benchmark,
        )
        lo, hi = ranges[snap.position_id]
        point = LedgerPoint(snap, token_of[snap.position_id], lo, hi, led)
        last = points[-1].snapshot if points else None
        if last is before is not None and before.block_number == snap.block_number:
            # a second snapshot of the NFT at the same block (the monitor ran again before the
            # next block): the same state; the block's last one stands for it
            points[-1] = point
        else:
            points.append(point)
    return LedgerHistory(
        label, symbols, decimals, start.deposit, points, rebalances, times, fr, fr_late,
        fr_marks if fr is not None else None,
    )  # fmt: skip


def labels(session: Session) -> list[str]:
    """The names of positions with a recorded deposit."""
    rows = session.scalars(
        select(AuditEntry.subject).where(AuditEntry.kind == DEPOSIT).order_by(AuditEntry.id)
    ).all()
    return [str(r).removeprefix("ledger:") for r in dict.fromkeys(rows) if r]


EXPORT_COLUMNS = (
    "at", "kind", "position", "token_id", "block", "tx_hash", "token0", "token1",
    "amount0", "amount1", "fees0", "fees1", "token0_usd", "token1_usd", "eth_usd", "btc_usd",
    "mark_sources", "value_usd", "hold_usd", "hold_5050_usd", "hold_usd_only", "fees_usd",
    "il_usd", "hedge_pnl_usd", "funding_usd", "gas_usd", "swap_costs_usd", "net_usd",
    "value_eth", "hold_eth", "net_eth", "value_btc", "hold_btc", "net_btc", "gas_wei", "failed",
    "full_range_usd", "full_range_fees_usd", "net_vs_full_range_usd", "full_range_from_block",
)  # fmt: skip


def _units(raw: int, decimals: int) -> str:
    return str(Decimal(raw).scaleb(-decimals))


def _transaction_rows(session: Session) -> list[dict[str, Any]]:
    """The gas of every rebalance transaction that did not rebalance: reverted, cancelled
    (the zero-value self-transfer) and replaced ones (0 if never mined); the confirmed ones are
    the ledger's own rebalance rows."""
    from lpbot.store import repo

    out = []
    for t in repo.rebalance_transactions(session):
        cancel = (t.to_address or "").lower() == t.from_address.lower()
        if t.status.value == "CONFIRMED" and not cancel:
            continue
        out.append(
            {
                "at": t.updated_at.isoformat(),
                "kind": f"{'cancel' if cancel else 'rebalance'} transaction {t.status.value}",
                "position": f"rebalance:{t.rebalance_id}",
                "block": t.block_number,
                "tx_hash": t.tx_hash,
                "gas_wei": str(int(t.gas_used or 0) * int(t.effective_gas_price or 0)),
                "failed": True,
            }
        )
    return out


def export_rows(session: Session) -> list[dict[str, Any]]:
    """The ledger as rows: one per block a position's NFT was snapshotted at (its amounts in
    token units, marks and sources, every ledger line in USD, ETH and BTC; the block's last
    snapshot, as ``history``) and one per transaction hash that paid gas (a ledger entry, with
    its flows in units and the marks before its block; else, for a rebalance transaction the
    ledger does not hold, its gas from the rebalance's records). Hedge fills follow, one row
    each."""
    from lpbot.store.models import HedgeFill, HedgeOrder

    rows: list[dict[str, Any]] = []
    for label in labels(session):
        h = history(session, label)
        d0, d1 = h.decimals
        for p in h.points:
            snap = p.snapshot
            m = snapshot_prices(snap)
            stored = json.loads(snap.mark_sources or "{}").get("sources", {})
            row: dict[str, Any] = {
                "at": snap.taken_at.isoformat(),
                "kind": "snapshot",
                "position": label,
                "token_id": p.token_id,
                "block": snap.block_number,
                "token0": h.symbols[0],
                "token1": h.symbols[1],
                "amount0": _units(snap.amount0, d0),
                "amount1": _units(snap.amount1, d1),
                "fees0": _units(snap.fees0, d0),
                "fees1": _units(snap.fees1, d1),
                "token0_usd": str(m.token0),
                "token1_usd": str(m.token1),
                "eth_usd": str(m.eth),
                "btc_usd": None if m.btc is None else str(m.btc),
                "mark_sources": "; ".join(f"{t}: {v[0]} {v[1]}" for t, v in stored.items()),
            }
            u = p.ledger.usd
            row.update(
                value_usd=str(u.value), hold_usd=str(u.hold), hold_5050_usd=str(u.hold_5050),
                hold_usd_only=str(u.hold_numeraire), fees_usd=str(u.fees), il_usd=str(u.il),
                hedge_pnl_usd=str(u.hedge_pnl), funding_usd=str(u.funding), gas_usd=str(u.gas),
                swap_costs_usd=str(u.swap_costs), net_usd=str(u.net),
            )  # fmt: skip
            fr = p.ledger.full_range
            if fr is not None and u.full_range is not None:
                # the passive full-range benchmark (none before the first snapshot with fee
                # growth: ``full_range_from_block`` says where it opened)
                row.update(
                    full_range_usd=str(u.full_range),
                    full_range_fees_usd=str(u.full_range_fees),
                    net_vs_full_range_usd=str(u.net_vs_full_range),
                    full_range_from_block=fr.since_block,
                )
            for unit, lines in (("eth", p.ledger.eth), ("btc", p.ledger.btc)):
                if lines is not None:
                    row[f"value_{unit}"] = str(lines.value)
                    row[f"hold_{unit}"] = str(lines.hold)
                    row[f"net_{unit}"] = str(lines.net)
            rows.append(row)
        for (block, flow, gas), when in zip(h.rebalances, h.times, strict=True):
            row = {
                "at": datetime.fromtimestamp(when, UTC).isoformat(),
                # a compound burns nothing: it collects the fees and adds them to the same NFT
                "kind": (
                    ("failed transaction" if gas.failed else "opening transaction")
                    if flow is None
                    else "compound"
                    if flow.burned == (0, 0)
                    else "rebalance"
                ),
                "position": label,
                "block": block,
                "tx_hash": gas.tx_hash,
                "token0": h.symbols[0],
                "token1": h.symbols[1],
                "eth_usd": str(gas.eth_usd),
                "gas_wei": str(gas.wei),
                "gas_usd": str(gas.usd.quantize(Decimal("0.01"))),
                "failed": gas.failed,
            }
            if flow is not None:
                # the position's net flow: out of the old position and its fees, through the
                # swap, into the new one (token units; what stayed idle is the remainder)
                row.update(
                    amount0=_units(flow.minted[0], d0),
                    amount1=_units(flow.minted[1], d1),
                    fees0=_units(flow.fees[0], d0),
                    fees1=_units(flow.fees[1], d1),
                    token0_usd=str(flow.marks.token0),
                    token1_usd=str(flow.marks.token1),
                    swap_costs_usd=str(
                        (
                            flow.marks.usd(flow.swap_in, h.decimals)
                            - flow.marks.usd(flow.swap_out, h.decimals)
                        ).quantize(Decimal("0.01"))
                    ),
                )
            rows.append(row)
    # each transaction once: the ledger's row (with its marks) before the rebalance's record
    paid = {str(r["tx_hash"]).lower() for r in rows if r.get("tx_hash")}
    for row in _transaction_rows(session):
        if str(row["tx_hash"]).lower() not in paid:
            paid.add(str(row["tx_hash"]).lower())
            rows.append(row)
    fills = session.execute(
        select(HedgeFill, HedgeOrder).join(HedgeOrder, HedgeFill.order_id == HedgeOrder.id)
    ).all()
    for fill, order in fills:
        rows.append(
            {
                "at": fill.filled_at.isoformat(),
                "kind": f"hedge {order.side.value}",
                "position": order.client_order_id,
                "amount1": str(fill.amount),
                "token1_usd": str(fill.price),
                "fees_usd": str(fill.fee),
            }
        )
    return [{c: r.get(c) for c in EXPORT_COLUMNS} for r in rows]
