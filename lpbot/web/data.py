"""What the dashboard's pages show, read from the store and the ledger exactly as the CLI reads
them: ``lpbot status``'s ``status_data``, the ledger's ``history`` (``lpbot export``), the
rebalances' ``rebalance_rows`` (``lpbot rebalance list``), the dry-run reports and the kept
backtests on disk; one read of the chain, ``fetch_position_market``, is ``lpbot position
show``'s (``show_position``), and the liquidity bars are the pool's ticks as read.

Nothing here computes a figure of its own: every USD amount is a ledger line, passed on as the
ledger's ``Decimal``; prices drawn from ticks are for display only (labelled floats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lpbot.report.chains import EXPLORERS  # a transaction's page per chain id (a real chain's)

if TYPE_CHECKING:
    from lpbot.analytics.ledger import GasPaid, LedgerLines, RebalanceFlow
    from lpbot.app import App
    from lpbot.jobs.ledger import LedgerHistory
    from lpbot.report.chains import ChainRef

__all__ = [
    "EXPLORERS",
    "backtest_page",
    "backtests_page",
    "fetch_position_market",
    "hedge_page",
    "overview",
    "position_page",
    "rebalances_page",
    "regime_of",
    "usd",
    "version",
]

_STABLES = ("USDC", "USDT", "DAI", "USDC.e")
LEDGER_LINES = (
    ("value", "value"),
    ("hold", "hold the deposit"),
    ("fees", "fees"),
    ("il", "IL"),
    ("hedge_pnl", "hedge PnL"),
    ("funding", "funding"),
    ("gas", "gas"),
    ("swap_costs", "swap fee + impact"),
    ("net", "net vs holding"),
    ("full_range", "passive full range"),
    ("net_vs_full_range", "net vs full range"),
)


def usd(value: Decimal | float | None) -> str:
    """A USD figure as every surface prints it (``lpbot status``: ``1,234.56``)."""
    return "" if value is None else f"{value:,.2f}"


@dataclass(frozen=True)
class Quote:
    """How a pool's price is shown: ``base`` in ``quote`` (a stablecoin quotes when there is
    one), from a tick. Display only: a float."""

    base: str
    quote: str
    invert: bool  # True: token1 in token0
    decimals: tuple[int, int]

    def price(self, tick: int) -> float:
        d0, d1 = self.decimals
        p1_per_0 = 1.0001**tick * 10.0 ** (d0 - d1)  # token1 per token0, whole tokens
        return 1 / p1_per_0 if self.invert else p1_per_0


def quote_of(symbols: tuple[str, str], decimals: tuple[int, int]) -> Quote:
    if symbols[1] in _STABLES and symbols[0] not in _STABLES:
        return Quote(symbols[0], symbols[1], False, decimals)
    return Quote(symbols[1], symbols[0], True, decimals)


def _lines(lines: LedgerLines | None) -> dict[str, Decimal | None] | None:
    if lines is None:
        return None
    return {key: getattr(lines, key) for key, _label in LEDGER_LINES}


def _chain_refs(a: App) -> dict[int, ChainRef]:
    """The configured chains by id (``lpbot.report.chains``: their explorer a real chain's
    only)."""
    from lpbot.report.chains import configured_chains

    return {c.chain_id: c for c in configured_chains(a.config, a.environ)}


def _chain_ref(refs: dict[int, ChainRef], chain_id: int) -> ChainRef:
    from lpbot.report.chains import ChainRef

    return refs.get(chain_id) or ChainRef(chain_id, None)


def _tx_kind(flow: RebalanceFlow | None, gas: GasPaid) -> str:
    """A ledger transaction's kind, as ``lpbot export`` names it."""
    if flow is None:
        return "failed transaction" if gas.failed else "opening transaction"
    return "compound" if flow.burned == (0, 0) else "rebalance"


def _histories(session: Any) -> dict[str, LedgerHistory | str]:
    """Each position with a recorded deposit: its ledger history, or why there is none."""
    from lpbot.errors import NeedsAttention
    from lpbot.jobs.ledger import history, labels

    out: dict[str, LedgerHistory | str] = {}
    for label in labels(session):
        try:
            out[label] = history(session, label)
        except NeedsAttention as exc:
            out[label] = str(exc)
    return out


def overview(a: App) -> dict[str, Any]:
    """Every position (its current NFT) with its range against the price and the ledger at its
    last snapshot, in a section per chain with the chain's totals, and the grand total (``lpbot
    status``'s); the jobs' next runs; the last decisions and alerts (``lpbot status``)."""
    from sqlalchemy import select

    from lpbot.cli.daemon import status_data
    from lpbot.report.chains import Totals
    from lpbot.store.models import Position

    status = status_data(a)
    positions: list[dict[str, Any]] = []
    refs = _chain_refs(a)
    if status["positions"]:
        with a.sessions() as s:
            histories = _histories(s)
            rows = {
                (p.label, int(p.token_id)): p
                for p in s.scalars(select(Position).order_by(Position.id))
            }
        current: dict[str, dict[str, Any]] = {}
        for p in status["positions"]:  # a rebalance's new NFT comes after the one it replaced
            if p["state"] == "open" or p["name"] not in current:
                current[p["name"]] = p
        for label, p in current.items():
            row = rows.get((label, p["token_id"]))
            h = histories.get(label)
            ref = _chain_ref(refs, p["chain_id"])
            item: dict[str, Any] = {
                "label": label,
                "token_id": p["token_id"],
                "state": p["state"],
                "chain": ref.name or f"chain {ref.chain_id}",
                "chain_id": ref.chain_id,
                "pool": row.pool_address if row else "",
                "last_tx": None,
                "tick_lower": p["tick_lower"],
                "tick_upper": p["tick_upper"],
                "last": p["last"],
                "ledger": None,
                "ledger_problem": h if isinstance(h, str) else None,
                "regime": regime_of(a, label),
            }
            if h is not None and not isinstance(h, str) and h.points:
                q = quote_of(h.symbols, h.decimals)
                last = h.points[-1]
                ledger = last.ledger
                prices = sorted((q.price(p["tick_lower"]), q.price(p["tick_upper"])))
                item.update(
                    pair=f"{h.symbols[0]}/{h.symbols[1]}",
                    quote=f"{q.base} in {q.quote}",
                    price=q.price(last.snapshot.tick),
                    price_low=prices[0],
                    price_high=prices[1],
                    in_range=last.in_range,
                    block=ledger.block,
                    ledger=_lines(ledger.usd),
                    ledger_eth=_lines(ledger.eth),
                )
            if h is not None and not isinstance(h, str) and h.rebalances:
                (block, flow, gas), when = h.rebalances[-1], h.times[-1]
                item["last_tx"] = {
                    "kind": _tx_kind(flow, gas),
                    "block": block,
                    "tx_hash": gas.tx_hash,
                    "at": datetime.fromtimestamp(when, UTC).isoformat(),
                    "link": ref.tx_link(gas.tx_hash),
                }
            positions.append(item)
    chains = []
    for g in status["chains"]:
        ref = _chain_ref(refs, g["chain_id"])
        chains.append(
            {
                "title": ref.title,
                "name": ref.name,
                "chain_id": ref.chain_id,
                "positions": [p for p in positions if p["chain_id"] == ref.chain_id],
                "totals": Totals.from_json(g["totals"]),
                "without_ledger": g["without_ledger"],
            }
        )
    return {
        "at": status["at"],
        "config": status["config"],
        "database": status["database"],
        "positions": positions,
        # the positions in a section per chain, each with its totals; the grand total
        "chains": chains,
        "totals": Totals.from_json(status["totals"]),
        "pending_approvals": status["pending_approvals"],
        "unfinished_rebalances": status["unfinished_rebalances"],
        "jobs": status["jobs"],
        "last_decisions": status["last_decisions"],
        "alerts": _alerts(a),
    }


def _alerts(a: App, limit: int = 10) -> list[dict[str, Any]]:
    """The last decisions that asked for a person or refused (the audit log's refusals,
    failures and waits), newest first."""
    from sqlalchemy import select

    from lpbot.store.models import AuditEntry

    with a.sessions() as s:
        rows = s.scalars(
            select(AuditEntry)
            .where(~AuditEntry.kind.startswith("ledger_"))
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "at": str(e.at)[:19].replace("T", " "),
                "kind": e.kind,
                "decision": e.decision or "",
                "subject": e.subject or "",
                "reasons": "; ".join(str(r) for r in (e.reasons or []))[:300],
            }
            for e in rows
        ]


def position_page(a: App, label: str) -> dict[str, Any]:
    """One position's ledger over time: price against its range with every rebalance, value
    against holding, the breakdown at the last snapshot and its transactions."""
    from sqlalchemy import select

    from lpbot.errors import NeedsAttention, Refused
    from lpbot.jobs.ledger import history, labels
    from lpbot.store.models import Position

    with a.sessions() as s:
        if label not in labels(s):
            raise Refused(f"no position {label!r} with a ledger")
        try:
            h = history(s, label)
        except NeedsAttention as exc:
            return {"label": label, "problem": str(exc), "points": [], "regime": None}
        chain_ids = {
            int(p.chain_id) for p in s.scalars(select(Position).where(Position.label == label))
        }
    q = quote_of(h.symbols, h.decimals)
    chain_id = next(iter(chain_ids)) if len(chain_ids) == 1 else None
    ref = None if chain_id is None else _chain_ref(_chain_refs(a), chain_id)
    points = []
    for p in h.points:
        u = p.ledger.usd
        low, high = sorted((q.price(p.tick_lower), q.price(p.tick_upper)))
        points.append(
            {
                "at": p.snapshot.taken_at.isoformat(),
                "block": p.snapshot.block_number,
                "token_id": p.token_id,
                "price": q.price(p.snapshot.tick),
                "low": low,
                "high": high,
                "in_range": p.in_range,
                "value": str(u.value),
                "hold": str(u.hold),
                "hold_5050": str(u.hold_5050),
                "net": str(u.net),
                "fees": str(u.fees),
                # the passive full-range benchmark (None before its first snapshot)
                "full_range": None if u.full_range is None else str(u.full_range),
            }
        )
    transactions = []
    for (block, flow, gas), when in zip(h.rebalances, h.times, strict=True):
        transactions.append(
            {
                "at": datetime.fromtimestamp(when, UTC).isoformat(),
                "kind": _tx_kind(flow, gas),
                "block": block,
                "tx_hash": gas.tx_hash,
                # the explorer's page on a real chain only (none on the devnet, a local node)
                "link": ref.tx_link(gas.tx_hash) if ref else None,
                "gas_wei": gas.wei,
                "gas_usd": gas.usd.quantize(Decimal("0.01")),
            }
        )
    last = h.last
    return {
        "label": label,
        "problem": None,
        "regime": regime_of(a, label),
        "pair": f"{h.symbols[0]}/{h.symbols[1]}",
        "quote": f"{q.base} in {q.quote}",
        "chain_id": chain_id,
        "points": points,
        "rebalance_blocks": [
            t["block"] for t in transactions if t["kind"] != "opening transaction"
        ],
        "ledger": _lines(last.usd) if last else None,
        "ledger_eth": _lines(last.eth) if last else None,
        "block": last.block if last else None,
        "full_range_note": h.full_range_note,
        "transactions": transactions,
    }


MAX_BARS = 120  # the liquidity chart's bars at most (wider bars beyond)


def _current_row(a: App, label: str) -> dict[str, Any] | None:
    """The store's record of position ``label``'s current NFT (the last opened one still
    open, else the last one): its token id, chain id and pool."""
    from sqlalchemy import select

    from lpbot.store.models import Position

    with a.sessions() as s:
        rows = [
            {
                "token_id": int(p.token_id),
                "chain_id": int(p.chain_id),
                "pool": str(p.pool_address),
                "open": p.closed_at is None,
            }
            for p in s.scalars(
                select(Position).where(Position.label == label).order_by(Position.id)
            )
            if int(p.token_id) != 0
        ]
    if not rows:
        return None
    return ([r for r in rows if r["open"]] or rows)[-1]


def liquidity_bars(
    ticks_net: dict[int, int], active: int, tick: int, spacing: int, window: tuple[int, int]
) -> list[tuple[int, int, int]]:
    """The pool's liquidity over ``window`` (ticks, within the initialized ticks read) in bars
    of a whole number of tick spacings, at most ``MAX_BARS``: (first tick, end tick, the
    liquidity in force from the first tick on). Exact: the active liquidity plus the
    ``liquidityNet`` of every initialized tick crossed from ``tick``."""
    lo = window[0] // spacing * spacing
    hi = -(-window[1] // spacing) * spacing
    n = max((hi - lo) // spacing, 1)
    width = -(-n // MAX_BARS) * spacing
    crossed = sorted(ticks_net)

    def at(x: int) -> int:
        if x > tick:
            return active + sum(ticks_net[t] for t in crossed if tick < t <= x)
        return active - sum(ticks_net[t] for t in crossed if x < t <= tick)

    return [(x, min(x + width, hi), at(x)) for x in range(lo, hi, width)]


def fetch_position_market(a: App, label: str) -> dict[str, Any]:
    """Position ``label``'s current NFT as the chain shows it now, read as ``lpbot position
    show`` reads it (``show_position``): its greeks and VaR (``report``: that command's
    ``--json``), and the pool's liquidity around the price in bars with the range and the
    price. ``problem`` says why not (the chain does not answer, or is not configured here)."""
    from web3.exceptions import Web3Exception

    from lpbot.errors import LpbotError, Refused, RetryLater
    from lpbot.position_commands import Chain, report_json, show_position

    row = _current_row(a, label)
    if row is None:
        raise Refused(f"no position {label!r} recorded")
    out: dict[str, Any] = {"label": label, "token_id": row["token_id"], "problem": None}
    chain_id = row["chain_id"]
    name = next((n for n, cid in _configured_chains(a).items() if cid == chain_id), None)
    if name is None:
        out["problem"] = (
            f"chain unreachable: chain {chain_id} is not in this configuration ({a.source})"
        )
        return out
    try:
        chain = Chain.of(a, name)
        r = show_position(chain, row["token_id"])
    except (RetryLater, OSError) as exc:  # no answer (requests' errors are OSErrors)
        out["problem"] = f"chain unreachable: {exc}"
        return out
    except (LpbotError, ValueError, Web3Exception) as exc:
        out["problem"] = f"chain {name}: NFT #{row['token_id']} could not be read: {exc}"
        return out
    if r.pool.info.address.lower() != row["pool"].lower():
        out["problem"] = (
            f"NFT #{row['token_id']} on chain {name} is in pool {r.pool.info.address}, not "
            f"this position's {row['pool']}: the store and the chain disagree"
        )
        return out
    snap = r.snapshot
    t0, t1 = r.pool.token0, r.pool.token1
    q = quote_of((t0.symbol, t1.symbol), (t0.decimals, t1.decimals))
    tick = snap.slot0.tick
    known_lo, known_hi = snap.tick_range_known
    lo, hi = min(r.tick_lower, tick), max(r.tick_upper, tick)
    margin = max((hi - lo) // 2, 10 * snap.tick_spacing)
    window = (max(lo - margin, known_lo), min(hi + margin, known_hi))
    bars = liquidity_bars(
        {t: info.liquidity_net for t, info in snap.ticks.items()},
        snap.liquidity,
        tick,
        snap.tick_spacing,
        window,
    )
    out.update(
        chain=name,
        block=snap.block_number,
        report=report_json(r),
        risky=r.pool.risky_token.symbol,
        quote_symbol=r.pool.quote_token.symbol,
        quote=f"{q.base} in {q.quote}",
        tick=tick,
        tick_lower=r.tick_lower,
        tick_upper=r.tick_upper,
        active_liquidity=str(snap.liquidity),
        bars=[
            {
                "tick": x,
                "end": end,
                "liquidity": str(liquidity),
                "price": q.price(x),
                "in_range": r.tick_lower <= x < r.tick_upper,
            }
            for x, end, liquidity in bars
        ],
    )
    return out


def _configured_chains(a: App) -> dict[str, int]:
    """Each configured chain's name -> its chain id (those this environment can resolve)."""
    from lpbot.errors import ConfigError

    out: dict[str, int] = {}
    for name in a.config.chains:
        try:
            out[name] = a.config.resolve_chain(name, a.environ).chain_id
        except ConfigError:
            continue
    return out


def rebalances_page(a: App) -> dict[str, Any]:
    """Every rebalance with its state; each one's dry-run report rendered as its HTML report
    is, and whether a person may approve it now."""
    from lpbot.errors import LpbotError
    from lpbot.report.dryrun import approvable, read_report, render_body
    from lpbot.store.rebalances import rebalance_rows

    with a.sessions() as s:
        items = rebalance_rows(s)
    for item in items:
        item["report_html"] = None
        item["approvable"] = False
        if not item["report_id"]:
            continue
        try:
            report = read_report(a.reports_dir, item["report_id"])
        except LpbotError as exc:  # not in this configuration's report_dir
            item["report_problem"] = str(exc)
            continue
        except (OSError, ValueError, KeyError) as exc:
            item["report_problem"] = f"report {item['report_id']} not readable: {exc!r}"
            continue
        item["report_html"] = render_body(report)
        item["approvable"] = item["state"] == "SIMULATED" and approvable(report)
    items.reverse()  # newest first
    return {"rebalances": items}


def hedge_page(a: App) -> dict[str, Any]:
    """The hedge: its configuration (market, band), each position's hedge figures at its last
    snapshot (the ledger's), the orders and fills and funding payments stored."""
    from sqlalchemy import select

    from lpbot.store.models import FundingPayment, HedgeFill, HedgeOrder

    cfg = a.config.hedge
    out: dict[str, Any] = {
        "config": None
        if cfg is None
        else {
            "exchange": cfg.exchange,
            "symbol": cfg.symbol,
            "band_abs": cfg.band_abs,
            "band_pct": cfg.band_pct,
            "max_leverage": cfg.max_leverage,
            "max_funding_apr_pct": cfg.max_funding_apr_pct,
        },
        "positions": [],
        "orders": [],
        "funding": [],
    }
    with a.sessions() as s:
        for label, h in _histories(s).items():
            if isinstance(h, str) or not h.points:
                continue
            last = h.points[-1]
            figures = json.loads(last.snapshot.hedge) if last.snapshot.hedge else {}
            out["positions"].append(
                {
                    "label": label,
                    "block": last.ledger.block,
                    "delta": last.snapshot.delta,
                    "hedge_pnl": last.ledger.usd.hedge_pnl,
                    "funding": last.ledger.usd.funding,
                    "figures": figures,
                }
            )
        for order in s.scalars(select(HedgeOrder).order_by(HedgeOrder.id.desc()).limit(100)):
            fills = s.scalars(select(HedgeFill).where(HedgeFill.order_id == order.id)).all()
            out["orders"].append(
                {
                    "id": order.client_order_id,
                    "at": str(order.created_at)[:19],
                    "side": order.side.value,
                    "amount": order.amount,
                    "filled": order.filled,
                    "price": order.average_price,
                    "status": order.status.value,
                    "reason": order.reason or "",
                    "fills": [
                        {
                            "amount": f.amount,
                            "price": f.price,
                            "fee": f.fee,
                            "at": str(f.filled_at)[:19],
                        }
                        for f in fills
                    ],
                }
            )
        for pay in s.scalars(select(FundingPayment).order_by(FundingPayment.id.desc()).limit(100)):
            out["funding"].append(
                {
                    "at": str(pay.paid_at)[:19],
                    "symbol": pay.symbol,
                    "amount": pay.amount,
                    "currency": pay.currency,
                    "rate": pay.rate,
                }
            )
    return out


def regime_of(a: App, label: str | None = None) -> dict[str, Any] | None:
    """The market regime the risk controls last evaluated for position ``label``, as stored:
    ``{"regime": name, "at": ISO time, "reasons": [text, ...]}``; None while the store holds
    none (the pages then say "not evaluated"). The one place the pages read it from."""
    from lpbot.jobs.regime import stored_regime

    with a.sessions() as s:
        return stored_regime(s, label)


def backtests_page(a: App) -> dict[str, Any]:
    """Every backtest run and sweep kept in ``<report_dir>/backtests``, newest first."""
    from lpbot.backtest.saved import FOLDER, list_saved

    directory = a.reports_dir / FOLDER
    return {"directory": str(directory), "backtests": list_saved(directory)}


def backtest_page(a: App, backtest_id: str) -> dict[str, Any]:
    """One kept backtest: a run's report, or a sweep's rows as the command prints them."""
    from lpbot.backtest.saved import FOLDER, read_saved

    return read_saved(a.reports_dir / FOLDER, backtest_id)


def version(a: App) -> str:
    """A fingerprint of what the pages show: it changes when a snapshot, an audit entry (a
    decision, an alert), a rebalance's state or a hedge fill is stored, or a backtest kept."""
    from sqlalchemy import text

    from lpbot.backtest.saved import FOLDER

    parts = []
    with a.engine.connect() as c:
        for query in (
            "SELECT max(id) FROM position_snapshots",
            "SELECT max(id) FROM audit_log",
            "SELECT max(updated_at) FROM rebalances",
            "SELECT count(*) FROM hedge_fills",
        ):
            parts.append(str(c.execute(text(query)).scalar()))
    kept = a.reports_dir / FOLDER
    parts.append(
        str(max((p.name for p in kept.iterdir()), default=None) if kept.is_dir() else None)
    )
    return ":".join(parts)
