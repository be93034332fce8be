"""``lpbot run`` (the daemon), ``lpbot status`` (one screen) and ``lpbot report`` (HTML)."""

from __future__ import annotations

import argparse
import html
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text


def _config(args: argparse.Namespace) -> Any:
    from lpbot.config import load_config, resolve_config_path

    return load_config(resolve_config_path(args.config, os.environ))


def _cmd_run(args: argparse.Namespace) -> int:
    from lpbot.jobs import scheduler
    from lpbot.jobs.runtime import build_runtime
    from lpbot.store import migrate
    from lpbot.store.session import make_engine

    config = _config(args)
    engine = make_engine(config.resolve_database_url())
    migrate.upgrade(engine)
    lock = scheduler.take_lock(engine)  # before anything else: one instance per database
    try:
        runtime = build_runtime(config, engine=engine)
    except BaseException:
        lock.release()
        raise
    scheduler.start(runtime, lock, run_for_seconds=args.seconds)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from lpbot.store import repo
    from lpbot.store.models import AuditEntry, Position
    from lpbot.store.session import make_engine, session_factory

    config = _config(args)
    engine = make_engine(config.resolve_database_url())
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    print(f"lpbot status at {now:%Y-%m-%d %H:%M:%S} UTC")
    with sessions() as s:
        latest = repo.latest_snapshots(s)
        print("\npositions")
        for position in s.scalars(select(Position).order_by(Position.id)):
            snap = latest.get(position.id)
            state = "closed" if position.closed_at else "open"
            line = (
                f"  {position.label:<16} #{position.token_id} [{position.tick_lower}, "
                f"{position.tick_upper}) {state}"
            )
            if snap is not None:
                in_range = position.tick_lower <= snap.tick < position.tick_upper
                line += (
                    f"  tick {snap.tick} {'in range' if in_range else 'OUT'}"
                    f"  value ${snap.value_usd or 0:,.2f}"
                    f"  delta {snap.delta or 0:.4f}  at {snap.taken_at:%H:%M:%S}"
                )
            print(line)
        print("\nvalue against holding (the ledger at each position's last snapshot)")
        for label, text_ in ledger_lines(s):
            print(f"  {label:<16} {text_}")
        print("\npending approvals")
        pending = repo.pending_approvals(s)
        for r in pending:
            print(f"  rebalance {r.id}: report {r.report_id} - {r.reason}")
        if not pending:
            print("  none")
        print("\nunfinished rebalances")
        unfinished = [r for r in repo.unfinished_rebalances(s) if r.state.value != "SIMULATED"]
        for r in unfinished:
            print(f"  rebalance {r.id}: {r.state.value}")
        if not unfinished:
            print("  none")
        _print_gas_lost(s)
        print("\nnext jobs")
        try:
            rows = s.execute(
                text("SELECT id, next_run_time FROM apscheduler_jobs ORDER BY next_run_time")
            ).all()
        except Exception:  # no job table until `lpbot run` first started
            rows = []
        for job_id, next_run in rows:
            when = datetime.fromtimestamp(next_run, UTC) if next_run else None
            print(f"  {job_id:<32} {when:%H:%M:%S} UTC" if when else f"  {job_id:<32} paused")
        if not rows:
            print("  none scheduled (start `lpbot run`)")
        print("\nlast decisions")
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(5)).all()
        for e in entries:
            print(f"  {e.at:%H:%M:%S} {e.kind:<22} {e.decision or '':<10} {e.subject or ''}")
    return 0


def ledger_lines(session: Any) -> list[tuple[str, str]]:
    """One line per position with a recorded deposit: its ledger at the last snapshot."""
    from lpbot.errors import NeedsAttention
    from lpbot.jobs.ledger import history, labels

    out = []
    for label in labels(session):
        try:
            last = history(session, label).last
        except NeedsAttention as exc:
            out.append((label, str(exc)))
            continue
        if last is None:
            out.append((label, "no snapshot yet"))
            continue
        u = last.usd
        out.append(
            (
                label,
                f"block {last.block}: value ${u.value:,.2f} vs hold ${u.hold:,.2f}; fees "
                f"${u.fees:,.2f}, IL ${u.il:,.2f}, hedge ${u.hedge_pnl:,.2f}, funding "
                f"${u.funding:,.2f}, gas ${u.gas:,.2f}, swaps ${u.swap_costs:,.2f}: net "
                f"${u.net:,.2f}",
            )
        )
    return out


def _print_gas_lost(s: Any) -> None:
    """Gas paid for transactions that did not rebalance (reverted, cancelled), per rebalance."""
    from lpbot.store import repo
    from lpbot.store.models import Rebalance

    txs = repo.rebalance_transactions(s)
    print("\ngas lost to reverted or cancelled transactions")
    by_rebalance: dict[int, list[Any]] = {}
    for t in txs:
        by_rebalance.setdefault(t.rebalance_id or 0, []).append(t)
    lost = {rid: repo.wasted_gas(ts) for rid, ts in by_rebalance.items()}
    for rid, wei in lost.items():
        if wei:
            r = s.get(Rebalance, rid)
            print(f"  rebalance {rid} ({r.state.value}): {wei / 10**18:.8f} ETH ({wei:,} wei)")
    total = sum(lost.values())
    print(f"  total {total / 10**18:.8f} ETH" if total else "  none")
    needs = [r for r in s.scalars(select(Rebalance)) if r.state.value in ("STALE", "CANCELLED")]
    for r in needs:
        print(f"  rebalance {r.id} {r.state.value}: lpbot rebalance replan {r.id}")


def _transaction_rows(s: Any) -> list[dict[str, Any]]:
    """The gas of every rebalance transaction that did not rebalance: reverted, cancelled
    (the zero-value self-transfer) and replaced ones (0 if never mined), in the ledger's
    columns; the confirmed ones are the ledger's own rebalance rows."""
    from lpbot.jobs.ledger import EXPORT_COLUMNS
    from lpbot.store import repo

    out = []
    for t in repo.rebalance_transactions(s):
        cancel = (t.to_address or "").lower() == t.from_address.lower()
        if t.status.value == "CONFIRMED" and not cancel:
            continue
        row = {
            "at": t.updated_at.isoformat(),
            "kind": f"{'cancel' if cancel else 'rebalance'} transaction {t.status.value}",
            "position": f"rebalance:{t.rebalance_id}",
            "block": t.block_number,
            "tx_hash": t.tx_hash,
            "gas_wei": str(int(t.gas_used or 0) * int(t.effective_gas_price or 0)),
            "failed": True,
        }
        out.append({c: row.get(c) for c in EXPORT_COLUMNS})
    return out


def _svg_lines(series: list[tuple[str, list[float], str]], width: int = 760) -> str:
    height, pad = 220, 30
    values = [v for _, vs, _ in series for v in vs]
    if not values:
        return "<p>no data yet</p>"
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1
    n = max(len(vs) for _, vs, _ in series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for label, vs, colour in series:
        pts = " ".join(
            f"{pad + i / max(n - 1, 1) * (width - 2 * pad):.1f},"
            f"{height - pad - (v - lo) / (hi - lo) * (height - 2 * pad):.1f}"
            for i, v in enumerate(vs)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{pad}" y="{14 + 14 * len(parts) // 2}" fill="{colour}">'
                     f"{html.escape(label)}</text>")  # fmt: skip
    parts.append(f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">{hi:,.2f} max, '
                 f"{lo:,.2f} min</text></svg>")  # fmt: skip
    return "".join(parts)


def _cmd_report(args: argparse.Namespace) -> int:
    from lpbot.jobs.ledger import history as ledger_history
    from lpbot.jobs.ledger import labels as ledger_labels
    from lpbot.store.session import make_engine, session_factory

    config = _config(args)
    sessions = session_factory(make_engine(config.resolve_database_url()))
    sections = []
    with sessions() as s:
        for label in ledger_labels(s):
            h = ledger_history(s, label)
            if not h.points:
                continue
            ticks = [float(p.snapshot.tick) for p in h.points]
            value = [float(p.ledger.usd.value) for p in h.points]
            hold = [float(p.ledger.usd.hold) for p in h.points]
            net = [float(p.ledger.usd.net) for p in h.points]
            fees = [float(p.ledger.usd.fees) for p in h.points]
            last = h.points[-1]
            u = last.ledger.usd
            table = "".join(
                f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{v:,.2f}</td></tr>"
                for k, v in (
                    ("value", u.value), ("hold the deposit", u.hold), ("fees", u.fees),
                    ("IL", u.il), ("hedge PnL", u.hedge_pnl), ("funding", u.funding),
                    ("gas", -u.gas), ("swap fee + impact", -u.swap_costs),
                    ("net vs holding", u.net),
                )
            )  # fmt: skip
            sections.append(
                f"<h2>{html.escape(label)} #{last.token_id}</h2>"
                f"<p>ledger at block {last.ledger.block} (USD, at that block's marks)</p>"
                f"<table>{table}</table>"
                "<h3>price (tick) against the range</h3>"
                + _svg_lines(
                    [
                        ("tick", ticks, "black"),
                        ("lower", [float(p.tick_lower) for p in h.points], "#d9534f"),
                        ("upper", [float(p.tick_upper) for p in h.points], "#2e8b57"),
                    ]
                )
                + "<h3>value against holding (USD, marked to the market)</h3>"
                + _svg_lines([("LP value", value, "#1f77b4"), ("hold", hold, "#ff7f0e")])
                + "<h3>net against holding and fees earned (USD)</h3>"
                + _svg_lines([("net", net, "#9467bd"), ("fees", fees, "#2ca02c")])
            )
    out = Path(args.out) if args.out else config.reports_path / "performance.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>lpbot report</title></head>"
        "<body style='font-family:sans-serif;max-width:820px;margin:2em auto'>"
        f"<h1>lpbot performance</h1>{''.join(sections) or '<p>no snapshots yet</p>'}"
        "</body></html>\n"
    )
    print(f"report written to {out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """The ledger as CSV or JSON rows: one per snapshot and per action (``jobs.ledger``)."""
    import csv
    import json

    from lpbot.jobs.ledger import EXPORT_COLUMNS, export_rows
    from lpbot.store.session import make_engine, session_factory

    config = _config(args)
    sessions = session_factory(make_engine(config.resolve_database_url()))
    with sessions() as s:
        rows = export_rows(s) + _transaction_rows(s)
    out = Path(args.out or f"lpbot-ledger.{args.format}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        if args.format == "json":
            json.dump(rows, f, indent=1)
            f.write("\n")
        else:
            w = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    print(f"{len(rows)} rows written to {out}")
    return 0


def register(sub: Any) -> None:
    for name, func, text_ in (
        ("run", _cmd_run, "the daemon: monitor, rebalance checks, hedge, on a schedule"),
        ("status", _cmd_status, "one screen: positions, approvals, next jobs, last decisions"),
        ("report", _cmd_report, "an HTML performance report from the stored snapshots"),
        ("export", _cmd_export, "the ledger, one row per snapshot and action (CSV or JSON)"),
    ):
        p = sub.add_parser(name, help=text_)
        p.add_argument("--config", help="lpbot.toml (default: $LPBOT_CONFIG or ./lpbot.toml)")
        if name == "run":
            p.add_argument("--seconds", type=float, help="stop after this long (tests, demos)")
        if name == "report":
            p.add_argument("--out", help="output file (default <reports>/performance.html)")
        if name == "export":
            p.add_argument("--out", help="output file (default lpbot-ledger.csv or .json)")
            p.add_argument("--format", choices=("csv", "json"), default="csv")
        p.set_defaults(func=func)
