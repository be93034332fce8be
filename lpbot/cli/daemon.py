"""``lpbot run`` (the daemon), ``lpbot status`` (one screen), ``lpbot report`` (HTML) and
``lpbot export`` (CSV), all from the one application context."""

from __future__ import annotations

import argparse
import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
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
    takeover_seconds = a.config.schedule.standby_takeover_seconds
    takeover = None
    if getattr(args, "standby", False):
        from lpbot.jobs.runtime import check_start

        # a wrong password or an unreachable price source is found now, not at the takeover
        check_start(a)
        # waits (heartbeat recorded, `lpbot status` lists it) until the active one ends
        lock, takeover = scheduler.wait_for_lock(a.engine, takeover_seconds=takeover_seconds)
    else:  # before anything else: one instance per database
        lock = scheduler.take_lock(a.engine, takeover_seconds=takeover_seconds)
    started = takeover.started_at if takeover is not None else None
    with scheduler.active_heartbeat(a.engine, takeover_seconds, started_at=started):
        try:
            runtime = build_runtime(a, lock=lock)
        except BaseException:
            lock.release()
            raise
        dashboard = getattr(args, "dashboard", False)
        if dashboard:
            from lpbot.cli.dashboard import settings, start_in_background

            try:
                web = start_in_background(a, settings(a))
            except BaseException:
                lock.release()
                raise
        try:
            scheduler.start(runtime, lock, run_for_seconds=args.seconds, takeover=takeover)
        finally:
            if dashboard:
                web.should_exit = True
    return 0


_UNFINISHED = ("PLANNED", "APPROVED", "SIGNED", "SUBMITTED")  # SIMULATED: awaits approval


def _at(value: Any) -> str:
    """A stored time as ``YYYY-MM-DD HH:MM:SS`` (SQLite returns text, others datetimes)."""
    return str(value)[:19].replace("T", " ") if value is not None else ""


def _health(q: Any, subject: str) -> dict[str, Any] | None:
    """The pool's health at the monitor's last ``pool_health`` entry for the position (written
    on a change of verdict and at least hourly), or None."""
    import json

    from sqlalchemy import text

    row = q(
        text(
            "SELECT at, decision, reasons, data FROM audit_log WHERE kind = 'pool_health' "
            "AND subject = :s ORDER BY id DESC LIMIT 1"
        ),
        {"s": subject},
    ).first()
    if row is None:
        return None
    at, verdict, reasons, data = row
    reasons = json.loads(reasons) if isinstance(reasons, str) else reasons
    data = json.loads(data) if isinstance(data, str) else (data or {})
    depth = (data.get("depth") or {}).get("1pct") or {}
    spread = data.get("spread") or {}
    return {
        "verdict": verdict,
        "at": _at(at),
        "block": data.get("block"),
        "depth_1pct_below_usd": depth.get("down_usd"),
        "depth_1pct_above_usd": depth.get("up_usd"),
        "spread_bps": spread.get("bps"),
        "problems": data.get("problems") or [],
        "reasons": list(reasons or []),
    }


def status_data(a: Any) -> dict[str, Any]:
    """What ``lpbot status`` shows: positions with their last snapshot, grouped by chain with
    each chain's totals and the grand total (``lpbot.report.chains``), approvals waiting,
    unfinished rebalances, every configured job with its next run, the last decisions.

    Read with SQLAlchemy Core and plain queries (no ORM, no Alembic): ``status`` starts in
    well under half a second."""
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    from lpbot.jobs.regime_view import regime_view
    from lpbot.report.chains import configured_chains, group_by_chain

    now = datetime.now(UTC)
    chains = configured_chains(a.config, a.environ)
    chain_names = {c.chain_id: c.name for c in chains}
    ledgers: dict[str, Any] = {}  # a position name's ledger totals at its last snapshot
    out: dict[str, Any] = {
        "at": now.isoformat(),
        "config": a.source,
        "database": "ok",
        "daemon": None,  # who runs `lpbot run` on this database (pid@host), or None
        # every `lpbot run` on it, the active one and those standing by (`--standby`)
        "instances": [],
        # the chains the running daemon could not connect (``chains_waiting``)
        "chains_waiting": [],
        "positions": [],
        # the positions' chains, each with its positions' names and totals; the grand total
        "chains": [],
        "totals": None,
        "pending_approvals": [],
        "unfinished_rebalances": [],
        "jobs": [],
        "last_decisions": [],
        "ledger": [],
        "gas_lost": [],
        "to_replan": [],
    }
    scheduled: dict[str, float | None] = {}
    engine = a.read_engine()
    if engine is None:
        out["database"] = "not created yet (the first `lpbot run` or rebalance creates it)"
    else:
        with engine.connect() as c:
            q = c.execute
            # the positions closed by a confirmed withdraw (their tokens in the Safe), and the
            # kind of every rebalance awaiting approval (a withdraw is shown first)
            withdrawn: set[int] = set()
            kinds: dict[int, str] = {}
            for rid, pid, state, decision in q(
                text(
                    "SELECT id, position_id, state, decision FROM rebalances "
                    "WHERE state IN ('CONFIRMED', 'SIMULATED')"
                )
            ).all():
                data = json.loads(decision) if isinstance(decision, str) else decision or {}
                kind = str(data.get("kind", "rebalance"))
                kinds[rid] = kind
                if state == "CONFIRMED" and kind == "withdraw":
                    withdrawn.add(pid)
            regimes: dict[str, dict[str, Any] | None] = {}
            for subject, data, at in q(
                text(
                    "SELECT subject, data, at FROM audit_log WHERE id IN (SELECT MAX(id) "
                    "FROM audit_log WHERE kind = 'risk_regime' GROUP BY subject)"
                )
            ).all():
                regimes[str(subject).removeprefix("regime:")] = regime_view(data, at)
            for pid, label, token, low, high, closed, chain_id in q(
                text(
                    "SELECT id, label, token_id, tick_lower, tick_upper, closed_at, chain_id "
                    "FROM positions ORDER BY id"
                )
            ).all():
                if int(token) == 0:  # the rows of opens not minted yet
                    continue
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
                    # the chain's name in [chains] (None: this configuration does not name it)
                    "chain": chain_names.get(int(chain_id)),
                    "chain_id": int(chain_id),
                    "tick_lower": low,
                    "tick_upper": high,
                    "state": ("withdrawn" if pid in withdrawn else "closed" if closed else "open"),
                    "last": None,
                    "health": _health(q, f"position:{label}:{int(token)}"),
                    # the market regime the monitor last stored for this name (lpbot.jobs.regime)
                    "regime": regimes.get(label),
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
                out["pending_approvals"].append(
                    {
                        "id": rid,
                        "kind": kinds.get(rid, "rebalance"),
                        "report_id": report,
                        "reason": reason,
                    }
                )
            # a withdraw waiting for the owners is what they should see first
            out["pending_approvals"].sort(key=lambda r: r["kind"] != "withdraw")
            has_rebalances = bool(q(text("SELECT count(*) FROM rebalances")).scalar())
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
            # a daemon holds the instance lock while it runs (no lease row: none runs)
            leased = engine.dialect.name != "sqlite" or bool(
                q(text("SELECT count(*) FROM instance_locks")).scalar()
            )
            chain_rows = q(
                text(
                    "SELECT subject, decision, reasons, at FROM audit_log WHERE id IN (SELECT "
                    "MAX(id) FROM audit_log WHERE kind IN ('chain_deferred', 'chain_connected', "
                    "'chain_failed') GROUP BY subject)"
                )
            ).all()
            for at, kind, decision, subject in q(
                text("SELECT at, kind, decision, subject FROM audit_log ORDER BY id DESC LIMIT 5")
            ).all():
                out["last_decisions"].append(
                    {"at": _at(at), "kind": kind, "decision": decision, "subject": subject}
                )
        from lpbot.store.instances import instances
        from lpbot.store.lock import LOCK_NAME, lock_holder, lock_interval

        if leased:
            out["daemon"] = lock_holder(engine, LOCK_NAME)

        every = lock_interval(a.config.schedule.standby_takeover_seconds)
        for i in instances(engine, interval_seconds=every):
            if i.role == "active" and i.owner != out["daemon"]:
                continue  # an active that lost the lock and has not stopped yet
            out["instances"].append(
                {
                    "owner": i.owner,
                    "role": i.role,
                    "heartbeat_at": i.heartbeat_at.isoformat(),
                    "since": (i.active_since or i.started_at).isoformat(),
                }
            )
        engine.dispose()
        out["chains_waiting"] = chains_waiting(chain_rows, out["instances"], out["daemon"])
        if has_rebalances:
            with a.sessions() as session:
                out["gas_lost"], out["to_replan"] = gas_lost(session)
        if any(p["last"] for p in out["positions"]):
            # value against holding: the ledger at each position's last snapshot
            with a.sessions() as session:
                out["ledger"], ledgers = _ledgers(session)
    groups, totals = group_by_chain(chains, out["positions"], ledgers)
    out["chains"] = [g.as_json() for g in groups]
    out["totals"] = totals.as_json()
    if out["daemon"] is None:  # the jobs `lpbot run` left in the database wait for the next
        scheduled = {job_id: None for job_id in scheduled}
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
                    "scheduled"
                    if next_run
                    else "paused"
                    if job_id in scheduled and out["daemon"] is not None
                    else "not started"
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
                    "state": (
                        "scheduled" if next_run else "paused" if out["daemon"] else "not started"
                    ),
                }
            )
    return out


_POSITION_COLUMNS = ["name", "NFT", "range", "state", "regime", "tick", "value $", "delta", "at"]


def _position_row(p: dict[str, Any]) -> tuple[Any, ...]:
    last = p["last"] or {}
    return (
        p["name"],
        f"#{p['token_id']}",
        f"[{p['tick_lower']}, {p['tick_upper']})",
        p["state"],
        (p.get("regime") or {}).get("regime", "-"),
        "" if not last else f"{last['tick']} {'in' if last['in_range'] else 'OUT'}",
        "" if not last else f"{last['value_usd'] or 0:,.2f}",
        "" if not last else f"{last['delta'] or 0:.4f}",
        "" if not last else str(last["taken_at"])[11:19],
    )


def _positions_by_chain(data: dict[str, Any]) -> None:
    """The positions under a line per chain, each chain's subtotal, then the total (the
    ledgers at each position's last snapshot)."""
    from lpbot.report.chains import ChainRef, Totals

    if not data["positions"]:
        table(
            "positions",
            _POSITION_COLUMNS,
            [],
            empty="none recorded yet (the monitor records them: `lpbot run`)",
        )
        return
    shown = 0
    for g in data["chains"]:
        title = ChainRef(g["chain_id"], g["name"]).title
        mine = [p for p in data["positions"] if p["chain_id"] == g["chain_id"]]
        if not mine:
            click.echo(f"{title}: no positions")
            continue
        shown += 1
        n = len(g["positions"])
        table(
            f"{title}: {n} position{'s' if n != 1 else ''}, {g['open']} open NFT"
            f"{'s' if g['open'] != 1 else ''}",
            _POSITION_COLUMNS,
            [_position_row(p) for p in mine],
            right=["value $", "delta"],
        )
        t = Totals.from_json(g["totals"])
        missing = g["without_ledger"]
        note = f" (without a ledger, not counted: {', '.join(missing)})" if missing else ""
        label = g["name"] or f"chain {g['chain_id']}"
        click.echo(
            f"subtotal {label}: {t.line()}{note}"
            if t.ledgers
            else f"subtotal {label}: no ledger yet{note}"
        )
    total = Totals.from_json(data["totals"])
    click.echo(
        f"total of {shown} chain{'s' if shown != 1 else ''}: "
        + (total.line() if total.ledgers else "no ledger yet")
    )


def chains_waiting(
    rows: Sequence[Any], instances: Sequence[dict[str, Any]], daemon: str | None
) -> list[dict[str, Any]]:
    """The chains the running daemon deferred at its start (its node did not answer) and has
    not connected since, or found misconfigured when it answered: each chain's last
    ``chain_*`` audit entry, written since the active instance became active."""
    active = next((i for i in instances if i["owner"] == daemon and i["role"] == "active"), None)
    if active is None:
        return []

    def utc(value: Any) -> datetime:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return t if t.tzinfo is not None else t.replace(tzinfo=UTC)

    since = utc(active["since"])
    out = []
    for subject, decision, reasons, at in rows:
        if utc(at) < since or decision not in ("deferred", "needs_attention"):
            continue
        reasons = json.loads(reasons) if isinstance(reasons, str) else reasons or []
        out.append(
            {
                "chain": str(subject).removeprefix("chain:"),
                "state": "waiting" if decision == "deferred" else "needs attention",
                "since": _at(at),
                "reason": reasons[-1] if reasons else "",
            }
        )
    return out


def _cmd_status(args: argparse.Namespace) -> int:
    data = status_data(app())
    if args.json:
        emit_json(data)
        return 0
    click.echo(f"lpbot status at {data['at'][:19].replace('T', ' ')} UTC ({data['config']})")
    daemon = data["daemon"]
    click.echo(f"daemon: running ({daemon})" if daemon else "daemon: not running (`lpbot run`)")
    for w in data["chains_waiting"]:
        click.echo(f"chain {w['chain']}: {w['state']} since {w['since']} ({w['reason']})")
    for i in data["instances"]:
        if i["role"] == "standby":
            click.echo(
                f"standby: {i['owner']} (since {_at(i['since'])}, last heartbeat "
                f"{_at(i['heartbeat_at'])[11:]})"
            )
    _positions_by_chain(data)
    checked = [p for p in data["positions"] if p["health"]]
    if checked:
        table(
            "pool health (the monitor's last check; `lpbot pools health` reads it now)",
            ["position", "health", "depth ±1% $ (below / above)", "spread bps", "at", "why"],
            [
                (
                    p["name"],
                    h["verdict"],
                    f"{Decimal(h['depth_1pct_below_usd'] or 0):,.0f} / "
                    f"{Decimal(h['depth_1pct_above_usd'] or 0):,.0f}",
                    h["spread_bps"] or "n/a",
                    h["at"],
                    "; ".join(h["problems"]),
                )
                for p in checked
                for h in (p["health"],)
            ],
        )
    seen: set[str] = set()
    for p in data["positions"]:
        r = p.get("regime")
        if r is None or p["name"] in seen or p["state"] != "open":
            continue
        seen.add(p["name"])
        why = "; ".join(r["reasons"]) or "every signal below its thresholds"
        click.echo(f"regime of {p['name']}: {r['regime']} since {(r['since'] or '')[:19]}: {why}")
    if data["ledger"]:
        table(
            "value against holding (the ledger at each position's last snapshot)",
            ["position", "ledger"],
            [(x["position"], x["line"]) for x in data["ledger"]],
        )
    table(
        "pending approvals",
        ["rebalance", "kind", "report", "reason"],
        [(r["id"], r["kind"], r["report_id"], r["reason"]) for r in data["pending_approvals"]],
    )
    table(
        "unfinished rebalances",
        ["rebalance", "state"],
        [(r["id"], r["state"]) for r in data["unfinished_rebalances"]],
        empty="none",
    )
    if data["gas_lost"] or data["to_replan"]:
        lost_rows = [
            (
                f"rebalance {g['id']} ({g['state']})",
                f"{int(g['wei']) / 10**18:.8f} ETH ({int(g['wei']):,} wei)",
            )
            for g in data["gas_lost"]
        ]
        lost_rows += [
            (f"rebalance {r['id']} {r['state']}", f"lpbot rebalance replan {r['id']}")
            for r in data["to_replan"]
        ]
        table(
            "gas lost to reverted or cancelled transactions", ["rebalance", "gas / next"], lost_rows
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


def ledger_items(session: Any) -> list[dict[str, Any]]:
    """Per position with a recorded deposit: its ledger at the last snapshot as one line, and
    the passive full-range benchmark's figures (USD strings, the ledger's; None without one)
    with where it starts (``lpbot status --json``'s ``ledger``)."""
    return _ledgers(session)[0]


def _ledgers(session: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``ledger_items``, and each position name's ledger totals at its last snapshot
    (``lpbot.report.chains.Totals``; a name whose ledger cannot be read has none)."""
    from lpbot.errors import NeedsAttention
    from lpbot.jobs.ledger import history, labels
    from lpbot.report.chains import Totals

    out: list[dict[str, Any]] = []
    totals: dict[str, Totals] = {}
    for label in labels(session):
        item: dict[str, Any] = {
            "position": label,
            "line": "",
            "block": None,
            "full_range_usd": None,
            "full_range_fees_usd": None,
            "net_vs_full_range_usd": None,
            "full_range_note": None,
        }
        out.append(item)
        try:
            h = history(session, label)
        except NeedsAttention as exc:
            item["line"] = str(exc)
            continue
        last = h.last
        if last is None:
            item["line"] = "no snapshot yet"
            continue
        u = last.usd
        totals[label] = Totals.of_ledger(u)
        line = (
            f"block {last.block}: value ${u.value:,.2f} vs hold ${u.hold:,.2f}; fees "
            f"${u.fees:,.2f}, IL ${u.il:,.2f}, hedge ${u.hedge_pnl:,.2f}, funding "
            f"${u.funding:,.2f}, gas ${u.gas:,.2f}, swaps ${u.swap_costs:,.2f}: net "
            f"${u.net:,.2f}"
        )
        item["block"] = last.block
        item["full_range_note"] = h.full_range_note
        if u.full_range is not None and u.net_vs_full_range is not None:
            line += (
                f"; full range ${u.full_range:,.2f} (fees ${u.full_range_fees or 0:,.2f}): net "
                f"vs it ${u.net_vs_full_range:,.2f} ({h.full_range_note})"
            )
            item.update(
                full_range_usd=str(u.full_range),
                full_range_fees_usd=str(u.full_range_fees),
                net_vs_full_range_usd=str(u.net_vs_full_range),
            )
        else:
            line += f"; {h.full_range_note}"
        item["line"] = line
    return out, totals


def ledger_lines(session: Any) -> list[tuple[str, str]]:
    """One line per position with a recorded deposit: its ledger at the last snapshot."""
    return [(x["position"], x["line"]) for x in ledger_items(session)]


def _svg_lines(series: Sequence[tuple[str, Sequence[float | None], str]], width: int = 760) -> str:
    """Line charts over the points' index; a None is a point the series has no value at."""
    height, pad = 220, 30
    values = [v for _, vs, _ in series for v in vs if v is not None]
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
            if v is not None
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

    a = app()
    sessions = a.sessions
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
            full: list[float | None] = [
                None if p.ledger.usd.full_range is None else float(p.ledger.usd.full_range)
                for p in h.points
            ]
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
                    *((("passive full range", u.full_range),
                       ("its fees", u.full_range_fees or Decimal(0)),
                       ("net vs full range", u.net_vs_full_range or Decimal(0)))
                      if u.full_range is not None else ()),
                )
            )  # fmt: skip
            sections.append(
                f"<h2>{html.escape(label)} #{last.token_id}</h2>"
                f"<p>ledger at block {last.ledger.block} (USD, at that block's marks); "
                f"{html.escape(h.full_range_note)}</p>"
                f"<table>{table}</table>"
                "<h3>price (tick) against the range</h3>"
                + _svg_lines(
                    [
                        ("tick", ticks, "black"),
                        ("lower", [float(p.tick_lower) for p in h.points], "#d9534f"),
                        ("upper", [float(p.tick_upper) for p in h.points], "#2e8b57"),
                    ]
                )
                + "<h3>value against holding and a passive full range (USD, marked to the "
                "market)</h3>"
                + _svg_lines(
                    [
                        ("LP value", value, "#1f77b4"),
                        ("hold", hold, "#ff7f0e"),
                        ("full range", full, "#8c564b"),
                    ]
                )
                + "<h3>net against holding and fees earned (USD)</h3>"
                + _svg_lines([("net", net, "#9467bd"), ("fees", fees, "#2ca02c")])
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


def gas_lost(session: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Gas paid for transactions that did not rebalance (reverted, cancelled), per rebalance;
    and the STALE or CANCELLED rebalances to re-plan."""
    from sqlalchemy import select

    from lpbot.store import repo
    from lpbot.store.models import Rebalance

    by_rebalance: dict[int, list[Any]] = {}
    for t in repo.rebalance_transactions(session):
        by_rebalance.setdefault(t.rebalance_id or 0, []).append(t)
    lost = []
    for rid, ts in by_rebalance.items():
        wei = repo.wasted_gas(ts)
        if wei:
            r = session.get(Rebalance, rid)
            lost.append({"id": rid, "state": r.state.value if r else "", "wei": str(wei)})
    replan = [
        {"id": r.id, "state": r.state.value}
        for r in session.scalars(select(Rebalance))
        if r.state.value in ("STALE", "CANCELLED")
    ]
    return lost, replan


EXPORT_CHAIN_COLUMNS = ("chain", "chain_id")  # after the ledger's own columns


def _cmd_export(args: argparse.Namespace) -> int:
    """The ledger as CSV or JSON rows: one per snapshot and per action (``jobs.ledger``), each
    with its chain, grouped by chain; ``--chain NAME``: that chain's rows only."""
    import csv
    import json

    from sqlalchemy import select

    from lpbot.errors import Refused
    from lpbot.jobs.ledger import EXPORT_COLUMNS, export_rows
    from lpbot.report.chains import chain_refs, configured_chains, rows_by_chain
    from lpbot.store.models import Position, Rebalance

    a = app()
    configured = configured_chains(a.config, a.environ)
    wanted = getattr(args, "chain", None)
    if wanted is not None and wanted not in {c.name for c in configured}:
        if wanted in a.config.chains:  # the devnet's, whose manifest is not there
            raise Refused(
                f"--chain {wanted}: its chain id is not known here (is the devnet up?); "
                "nothing written"
            )
        raise Refused(
            f"--chain {wanted}: no such chain in [chains] (have: {', '.join(a.config.chains)}); "
            "nothing written"
        )
    with a.sessions() as s:
        rows = export_rows(s)
        nfts = [(p.label, int(p.token_id), int(p.chain_id)) for p in s.scalars(select(Position))]
        chain_of = {p.id: int(p.chain_id) for p in s.scalars(select(Position))}
        rebalances = {
            int(r.id): chain_of[r.position_id]
            for r in s.scalars(select(Rebalance))
            if r.position_id in chain_of
        }
    refs = chain_refs(configured, (cid for _n, _t, cid in nfts))
    rows = rows_by_chain(rows, refs, nfts, rebalances)
    if wanted is not None:
        rows = [r for r in rows if r["chain"] == wanted]
    out = Path(args.out or f"lpbot-ledger.{args.format}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        if args.format == "json":
            json.dump(rows, f, indent=1)
            f.write("\n")
        else:
            w = csv.DictWriter(f, fieldnames=[*EXPORT_COLUMNS, *EXPORT_CHAIN_COLUMNS])
            w.writeheader()
            w.writerows(rows)
    print(f"{len(rows)} rows written to {out}" + (f" (chain {wanted})" if wanted else ""))
    return 0


@click.command()
@config_option
@click.option("--seconds", type=float, help="stop after this long (tests, demos)")
@click.option("--dashboard", is_flag=True, help="serve the web dashboard too ([dashboard])")
@click.option(
    "--standby",
    is_flag=True,
    help="hot standby: wait while another `lpbot run` holds the database's instance lock, "
    "then take over (within [schedule] standby_takeover_seconds of its end), resume what it "
    "left unfinished and alert",
)
def run(seconds: float | None, dashboard: bool, standby: bool) -> int:
    """The daemon: the configured jobs on their schedule, until Ctrl-C or SIGTERM.

    One instance acts per database. Without --standby a second one refuses to start; with
    it, it stands by (shown by `lpbot status`) and takes over when the active one dies or
    loses its database. An active instance that cannot renew its lock stops acting and exits
    with code 2. Use PostgreSQL for a standby on another machine; on SQLite a standby works
    on the same machine only (the database is a local file)."""
    return _cmd_run(argparse.Namespace(seconds=seconds, dashboard=dashboard, standby=standby))


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
@click.option("--out", help="output file (default lpbot-ledger.csv or .json)")
@click.option("--format", "format_", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)  # fmt: skip
@click.option("--chain", metavar="NAME", help="that chain's rows only (its name in [chains])")
def export(out: str | None, format_: str, chain: str | None) -> int:
    """The ledger, one row per snapshot and action (CSV or JSON), for your own accounting;
    each row names its chain, the rows grouped by chain."""
    return _cmd_export(argparse.Namespace(out=out, format=format_, chain=chain))
