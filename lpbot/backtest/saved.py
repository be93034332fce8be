"""Backtests kept for later: each run or sweep in its own folder under the reports directory.

``lpbot backtest run`` and ``sweep`` save what they print and write (a run: its HTML report and
JSON summary, exactly as ``--html`` and ``--json-out`` write them; a sweep: its rows, as
``--json-out`` writes them, with the grid and the data it ran on) in
``<report_dir>/backtests/<id>/``, where the dashboard lists them. ``<id>`` is the UTC time, the
kind and the label: ``20261202T191500Z-run-eth-usdc``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lpbot.errors import Refused

if TYPE_CHECKING:
    from lpbot.backtest.ledger import BacktestResult
    from lpbot.backtest.sweep import SweepRow

__all__ = [
    "FOLDER",
    "list_saved",
    "read_saved",
    "save_run",
    "save_sweep",
    "sweep_cells",
]

FOLDER = "backtests"  # under the reports directory
SUMMARY, REPORT, ROWS = "summary.json", "report.html", "sweep.json"
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-(run|sweep)-[a-z0-9-]{1,60}$")


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
    return slug or "backtest"


def _new_folder(directory: Path, kind: str, name: str, now: datetime | None = None) -> Path:
    """A fresh folder for one backtest; a second one in the same second gets a suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{kind}-{_slug(name)}"
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = directory / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise Refused(f"{directory}: too many backtests named {base}")


def _pair(pool: dict[str, Any]) -> str:
    fee = pool.get("fee") or 0
    return f"{pool.get('symbol0') or 'token0'}/{pool.get('symbol1') or 'token1'} {fee / 10_000:g}%"


def save_run(
    directory: Path, result: BacktestResult, comparison: dict[str, Any] | None = None
) -> Path:
    """Keep one run: its report page and summary, as ``write_report`` writes them."""
    from lpbot.backtest.report import write_report

    name = result.label or _pair(result.pool)
    path = _new_folder(directory, "run", name)
    write_report(result, path / REPORT, path / SUMMARY, comparison)
    return path


def save_sweep(
    directory: Path,
    rows: list[SweepRow],
    *,
    grid: dict[str, list[Any]],
    data: str,
    engine: str,
    label: str | None = None,
) -> Path:
    """Keep one sweep: its rows (``--json-out``'s), the grid and the data it ran on."""
    path = _new_folder(directory, "sweep", label or " ".join(grid))
    document = {
        "kind": "sweep",
        "label": label,
        "data": data,
        "engine": engine,
        "grid": grid,
        "rows": [asdict(r) for r in rows],
    }
    (path / ROWS).write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def sweep_cells(row: dict[str, Any]) -> dict[str, str]:
    """A sweep row's figures as ``lpbot backtest sweep`` prints them."""
    params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
    if row.get("error"):
        return {"params": params, "error": str(row["error"])}
    m, b = row["metrics"], row["breakdown"]
    return {
        "params": params,
        "apr": f"{m['apr']:+.2%}",
        "lp_vs_hold": f"{m['lp_vs_hold']:+.2%}",
        "fees": f"${b['fees']:,.2f}",
        "gas": f"${b['gas']:,.2f}",
        "rebalances": f"{m['rebalances']}",
        "max_drawdown": f"{m['max_drawdown']:.2%}",
        "time_in_range": f"{m['time_in_range']:.1%}",
    }


def sweep_line(row: dict[str, Any]) -> str:
    """One sweep row as the command prints it."""
    c = sweep_cells(row)
    if "error" in c:
        return f"{c['params']}: refused: {c['error']}"
    return (
        f"{c['params']}: APR {c['apr']}, LP minus hold {c['lp_vs_hold']}, fees {c['fees']}, "
        f"gas {c['gas']}, {c['rebalances']} rebalances, drawdown {c['max_drawdown']}, "
        f"in range {c['time_in_range']}"
    )


def _kind(backtest_id: str) -> str:
    m = _ID.match(backtest_id)
    return m.group(1) if m else ""


def _created(backtest_id: str) -> str:
    at = datetime.strptime(backtest_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return at.isoformat()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Refused(f"{path} is not readable: {exc}") from None


def list_saved(directory: Path) -> list[dict[str, Any]]:
    """Every saved backtest, newest first: its id, kind, time and headline."""
    if not directory.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for path in sorted(directory.iterdir(), reverse=True):
        if not path.is_dir() or not _ID.match(path.name):
            continue
        item: dict[str, Any] = {
            "id": path.name,
            "kind": _kind(path.name),
            "created": _created(path.name),
            "problem": None,
        }
        try:
            item.update(_headline(path, item["kind"]))
        except Refused as exc:
            item["problem"] = str(exc)
        except (KeyError, TypeError, AttributeError) as exc:
            item["problem"] = f"{path.name}: not a backtest's summary ({exc!r})"
        out.append(item)
    return out


def _headline(path: Path, kind: str) -> dict[str, Any]:
    if kind == "run":
        s = _read_json(path / SUMMARY)
        m, strategy = s["metrics"], s["config"].get("strategy") or {}
        return {
            "title": f"{_pair(s['pool'])}, {strategy.get('kind', '?')} ({s['engine']} engine)",
            "label": s.get("label"),
            "apr": f"{m['apr']:+.2%}",
            "lp_vs_hold": f"{m['lp_vs_hold']:+.3%}",
            "rebalances": m["rebalances"],
        }
    d = _read_json(path / ROWS)
    return {
        "title": f"{len(d['rows'])} points over {', '.join(d['grid'])} ({d['engine']} engine)",
        "label": d.get("label"),
        "apr": None,
        "lp_vs_hold": None,
        "rebalances": None,
    }


def read_saved(directory: Path, backtest_id: str) -> dict[str, Any]:
    """One saved backtest: a run's report (its page's content) and summary, or a sweep's
    rows with each one's figures as the command prints them. ``Refused`` for an unknown id."""
    if not _ID.match(backtest_id) or not (directory / backtest_id).is_dir():
        raise Refused(f"no backtest {backtest_id!r}")
    path = directory / backtest_id
    if _kind(backtest_id) == "run":
        page = (path / REPORT).read_text() if (path / REPORT).exists() else ""
        start, end = page.find("<body>"), page.rfind("</body>")
        if start < 0 or end < 0:
            raise Refused(f"{path / REPORT} is not a backtest report")
        return {
            "id": backtest_id,
            "kind": "run",
            "created": _created(backtest_id),
            "summary": _read_json(path / SUMMARY),
            "report_html": page[start + len("<body>") : end],
        }
    d = _read_json(path / ROWS)
    return {
        "id": backtest_id,
        "kind": "sweep",
        "created": _created(backtest_id),
        "sweep": d,
        "rows": [sweep_cells(r) for r in d["rows"]],
    }


def report_page(directory: Path, backtest_id: str) -> str:
    """A saved run's HTML report, the whole page."""
    if not _ID.match(backtest_id) or _kind(backtest_id) != "run":
        raise Refused(f"no backtest run {backtest_id!r}")
    path = directory / backtest_id / REPORT
    if not path.is_file():
        raise Refused(f"no backtest run {backtest_id!r}")
    return path.read_text()
