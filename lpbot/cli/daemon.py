"""``lpbot run`` (the daemon), ``lpbot status`` (one screen), ``lpbot report`` (HTML) and
``lpbot export`` (CSV), all from the one application context."""

from __future__ import annotations

import argparse
import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from lpbot.cli.common import app, config_option, emit_json, json_option, resume_hint, table


def _cmd_run(args: argparse.Namespace) -> int:
    from lpbot.jobs import scheduler
    from lpbot.jobs.runtime import build_runtime

    a = app()
    resume_hint(
        "The daemon stopped after its current job; an interrupted rebalance is resumed by the "
        "next `lpbot run` (or `lpbot rebalance resume`)."
    )
    lock = scheduler.take_lock(a.engine)  # before anything else: one instance per database
    try:
        runtime = build_runtime(a)
    except BaseException:
        lock.release()
        raise
    scheduler.start(runtime, lock, run_for_seconds=args.seconds)
    return 0


_UNFINISHED = ("PLANNED", "APPROVED", "SIGNED", "SUBMITTED")  # SIMULATED: awaits approval


def _at(value: Any) -> str:
    """A stored time as ``YYYY-MM-DD HH:MM:SS`` (SQLite returns text, others datetimes)."""
    return str(value)[:19].replace("T", " ") if value is not None else ""


def status_data(a: Any) -> dict[str, Any]:
    """What ``lpbot status`` shows: positions with their last snapshot, approvals waiting,
    unfinished rebalances, every configured job with its next run, the last decisions.

    Read with SQLAlchemy Core and plain queries (no ORM, no Alembic): ``status`` starts in
    well under half a second."""
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    now = datetime.now(UTC)
    out: dict[str, Any] = {
        "at": now.isoformat(),
        "config": a.source,
        "database": "ok",
        "positions": [],
        "pending_approvals": [],
        "unfinished_rebalances": [],
        "jobs": [],
        "last_decisions": [],
    }
    scheduled: dict[str, float | None] = {}
    engine = a.read_engine()
    if engine is None:
        out["database"] = "not created yet (the first `lpbot run` or rebalance creates it)"
    else:
        with engine.connect() as c:
            q = c.execute
            for pid, label, token, low, high, closed in q(
                text(
                    "SELECT id, label, token_id, tick_lower, tick_upper, closed_at "
                    "FROM positions ORDER BY id"
                )
            ).all():
                snap = q(
                    text(
                        "SELECT tick, value_usd, il_usd, delta, taken_at FROM position_snapshots "
                        "WHERE position_id = :p ORDER BY taken_at DESC, id DESC LIMIT 1"
                    ),
                    {"p": pid},
                ).first()
                item: dict[str, Any] = {
                    "name": label,
                    "token_id": int(token),
                    "tick_lower": low,
                    "tick_upper": high,
                    "state": "closed" if closed else "open",
                    "last": None,
                }
                if snap is not None:
                    tick, value, il, delta, taken = snap
                    item["last"] = {
                        "tick": tick,
                        "in_range": low <= tick < high,
                        "value_usd": value,
                        "il_usd": il,
                        "delta": delta,
                        "taken_at": _at(taken),
                    }
                out["positions"].append(item)
            for rid, report, reason in q(
                text(
                    "SELECT id, report_id, reason FROM rebalances WHERE state = 'SIMULATED' "
                    "ORDER BY id"
                )
            ).all():
                out["pending_approvals"].append({"id": rid, "report_id": report, "reason": reason})
            marks = ", ".join(f"'{st}'" for st in _UNFINISHED)
            for rid, state in q(
                text(f"SELECT id, state FROM rebalances WHERE state IN ({marks}) ORDER BY id")
            ).all():
                out["unfinished_rebalances"].append({"id": rid, "state": state})
            try:
                with c.begin_nested():
                    rows = q(text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
                scheduled = {str(job_id): next_run for job_id, next_run in rows}
            except DatabaseError:  # no job table until `lpbot run` first started
                scheduled = {}
            for at, kind, decision, subject in q(
                text("SELECT at, kind, decision, subject FROM audit_log ORDER BY id DESC LIMIT 5")
            ).all():
                out["last_decisions"].append(
                    {"at": _at(at), "kind": kind, "decision": decision, "subject": subject}
                )
        engine.dispose()
    configured = a.jobs()
    known = {job_id for job_id, _w, _s in configured}
    for job_id, what, seconds in configured:
        next_run = scheduled.get(job_id)
        out["jobs"].append(
            {
                "id": job_id,
                "what": what,
                "every_seconds": seconds,
                "next_run": (
                    datetime.fromtimestamp(next_run, UTC).isoformat() if next_run else None
                ),
                "state": (
                    "scheduled" if next_run else "paused" if job_id in scheduled else "not started"
                ),
            }
        )
    for job_id, next_run in sorted(scheduled.items()):
        if job_id not in known:  # scheduled by `lpbot run`, no longer (or not) configured
            out["jobs"].append(
                {
                    "id": job_id,
                    "what": job_id.split(":")[0].replace("_", " "),
                    "every_seconds": None,
                    "next_run": (
                        datetime.fromtimestamp(next_run, UTC).isoformat() if next_run else None
                    ),
                    "state": "scheduled" if next_run else "paused",
                }
            )
    return out


def _cmd_status(args: argparse.Namespace) -> int:
    data = status_data(app())
    if args.json:
        emit_json(data)
        return 0
    click.echo(f"lpbot status at {data['at'][:19].replace('T', ' ')} UTC ({data['config']})")
    rows = []
    for p in data["positions"]:
        last = p["last"] or {}
        rows.append(
            (
                p["name"],
                f"#{p['token_id']}",
                f"[{p['tick_lower']}, {p['tick_upper']})",
                p["state"],
                "" if not last else f"{last['tick']} {'in' if last['in_range'] else 'OUT'}",
                "" if not last else f"{last['value_usd'] or 0:,.2f}",
                "" if not last else f"{last['il_usd'] or 0:,.2f}",
                "" if not last else f"{last['delta'] or 0:.4f}",
                "" if not last else str(last["taken_at"])[11:19],
            )
        )
    table(
        "positions",
        ["name", "NFT", "range", "state", "tick", "value $", "IL $", "delta", "at"],
        rows,
        empty="none recorded yet (the monitor records them: `lpbot run`)",
        right=["value $", "IL $", "delta"],
    )
    table(
        "pending approvals",
        ["rebalance", "report", "reason"],
        [(r["id"], r["report_id"], r["reason"]) for r in data["pending_approvals"]],
    )
    table(
        "unfinished rebalances",
        ["rebalance", "state"],
        [(r["id"], r["state"]) for r in data["unfinished_rebalances"]],
        empty="none",
    )
    table(
        "jobs",
        ["job", "every", "next run (UTC)", "state"],
        [
            (
                j["id"],
                f"{j['every_seconds']} s" if j["every_seconds"] else "-",
                (j["next_run"] or "")[:19].replace("T", " ") or "-",
                j["state"] if j["state"] != "not started" else "not started (`lpbot run`)",
            )
            for j in data["jobs"]
        ],
        empty="none configured ([[positions]] and [schedule])",
    )
    table(
        "last decisions",
        ["at", "kind", "decision", "subject"],
        [
            (d["at"][11:19], d["kind"], d["decision"] or "", d["subject"] or "")
            for d in data["last_decisions"]
        ],
    )
    return 0


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
    from sqlalchemy import select

    from lpbot.store import repo
    from lpbot.store.models import Position

    a = app()
    sessions = a.sessions
    sections = []
    with sessions() as s:
        for position in s.scalars(select(Position).order_by(Position.id)):
            snaps = repo.snapshots(s, position.id)
            if not snaps:
                continue
            ticks = [float(x.tick) for x in snaps]
            value = [x.value_usd or 0.0 for x in snaps]
            hold = [(x.value_usd or 0.0) - (x.il_usd or 0.0) for x in snaps]
            fees = [float(x.fees0) for x in snaps]
            sections.append(
                f"<h2>{html.escape(position.label)} #{position.token_id}</h2>"
                "<h3>price (tick) against the range</h3>"
                + _svg_lines(
                    [
                        ("tick", ticks, "black"),
                        ("lower", [float(position.tick_lower)] * len(ticks), "#d9534f"),
                        ("upper", [float(position.tick_upper)] * len(ticks), "#2e8b57"),
                    ]
                )
                + "<h3>value against holding (USD)</h3>"
                + _svg_lines([("LP value", value, "#1f77b4"), ("hold", hold, "#ff7f0e")])
                + "<h3>uncollected fees, token0 (raw)</h3>"
                + _svg_lines([("fees", fees, "#2ca02c")])
            )
    out = Path(args.out) if args.out else a.reports_dir / "performance.html"
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
    """Every action and fill as CSV rows, for the LP's own accounting."""
    import csv
    import json

    from sqlalchemy import select

    from lpbot.store.models import AuditEntry, HedgeFill, HedgeOrder, Rebalance

    sessions = app().sessions
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with sessions() as s, out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["at", "kind", "subject", "decision", "details"])
        for r in s.scalars(select(Rebalance).order_by(Rebalance.id)):
            result = (r.plan or {}).get("result") or {}
            w.writerow([
                (r.confirmed_at or r.updated_at).isoformat(), "rebalance", f"rebalance:{r.id}",
                r.state.value, json.dumps({"report": r.report_id, **result}, sort_keys=True),
            ])  # fmt: skip
            rows += 1
        fills = s.execute(
            select(HedgeFill, HedgeOrder).join(HedgeOrder, HedgeFill.order_id == HedgeOrder.id)
        ).all()
        for fill, order in fills:
            w.writerow([
                fill.filled_at.isoformat(), "hedge_fill", order.client_order_id,
                order.side.value, json.dumps({"amount": str(fill.amount), "price": str(fill.price),
                                              "fee": str(fill.fee), "currency": fill.fee_currency}),
            ])  # fmt: skip
            rows += 1
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id)):
            w.writerow([e.at.isoformat(), e.kind, e.subject, e.decision, json.dumps(e.reasons)])
            rows += 1
    print(f"{rows} rows written to {out}")
    return 0


@click.command()
@config_option
@click.option("--seconds", type=float, help="stop after this long (tests, demos)")
def run(seconds: float | None) -> int:
    """The daemon: the configured jobs on their schedule, until Ctrl-C or SIGTERM."""
    return _cmd_run(argparse.Namespace(seconds=seconds))


@click.command()
@config_option
@json_option
def status(as_json: bool) -> int:
    """One screen: positions, approvals, unfinished rebalances, every job's next run."""
    return _cmd_status(argparse.Namespace(json=as_json))


@click.command()
@config_option
@click.option("--out", help="output file (default <report_dir>/performance.html)")
def report(out: str | None) -> int:
    """An HTML performance report from the stored snapshots."""
    return _cmd_report(argparse.Namespace(out=out))


@click.command()
@config_option
@click.option("--out", default="lpbot-actions.csv", show_default=True)
def export(out: str) -> int:
    """Every action and fill as CSV, for your own accounting."""
    return _cmd_export(argparse.Namespace(out=out))
